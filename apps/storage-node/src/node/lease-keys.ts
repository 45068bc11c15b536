import { LEASE_KEYS_REPLY_BASE_BYTES, Status, encodeLeaseKeysReply, type LeaseKeysRequest } from '@cairn/protocol';
import type { LeaseIndex } from './lease-index';

/**
 * The LeaseKeysReply to `req` (docs/protocol.md "Internal messages"; LEASE_TTL with KEYS): the
 * keys attached to the lease at `appliedIndex`, in byte order, leaving out keys whose own expiry
 * has passed at `nowMs` (hidden like every read). At most `req.keysMax` keys and `req.bytesMax`
 * key bytes (the first key always goes), and the reply within `payloadBytesMax`; `more` when cut.
 * NOT_FOUND when no such lease is granted here.
 */
export function leaseKeysReply(leases: LeaseIndex, req: LeaseKeysRequest, appliedIndex: number, nowMs: number, payloadBytesMax: number): Uint8Array {
  const lease = leases.lease(req.leaseId);
  if (!lease) return encodeLeaseKeysReply({ status: Status.NotFound, appliedIndex, message: `lease ${req.leaseId} not found`, more: false, keys: [] });
  // Attached keys are latin1 strings of their bytes: sorting them sorts the bytes.
  const all = [...lease.keys].sort();
  const keys: Buffer[] = [];
  let keyBytes = 0;
  let replyBytes = LEASE_KEYS_REPLY_BASE_BYTES;
  let more = false;
  for (const k of all) {
    const key = Buffer.from(k, 'latin1');
    if (leases.expired(key, nowMs)) continue;
    if (keys.length > 0 && (keys.length >= req.keysMax || keyBytes + key.length > req.bytesMax || replyBytes + 4 + key.length > payloadBytesMax)) {
      more = true;
      break;
    }
    keys.push(key);
    keyBytes += key.length;
    replyBytes += 4 + key.length;
  }
  return encodeLeaseKeysReply({ status: Status.Ok, appliedIndex, message: '', more, keys });
}
