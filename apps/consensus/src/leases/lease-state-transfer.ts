import { crc32 } from 'node:zlib';
import { KEY_BYTES_CEILING, LEASE_STATE_REPLY_BASE_BYTES, Status, decodeLeaseStateReply, decodeLeaseStateRequest, encodeLeaseStateReply, encodeLeaseStateRequest, type LeaseStateReply } from '@cairn/protocol';
import type { Transport } from '@cairn/world';
import { LeaseStateFile } from '@cairn/log';
import { LeaseTable, type LeaseTableOptions } from './lease-table';

/** A fetched table that cannot be used: the peer's answer broke the transfer's rules (its bounds, its layout, its CRC). */
export class LeaseStateTransferError extends Error {
  readonly code = 'LEASE_STATE_TRANSFER';
}

/** Bytes a LeaseStateReply may add to its data (its fixed fields and a message cut to this many bytes). */
const REPLY_OVERHEAD_BYTES = LEASE_STATE_REPLY_BASE_BYTES + 1024;

const reply = (r: Partial<LeaseStateReply> & { status: Status }): Uint8Array => encodeLeaseStateReply({ message: '', index: 0, gapThrough: 0, crc32: 0, bodyBytes: 0, data: Buffer.alloc(0), ...r });

/**
 * A replica's answer to a LeaseStateRequest on `lease.<replica>` (docs/leases.md "Snapshot
 * install"): one chunk of its last completed lease-state file, at most min(the request's bytesMax,
 * `chunkBytesMax`, the bus's payload bound less the reply's fields) bytes. A file below the
 * requester's minIndex (or none) is UNAVAILABLE and `onBehind` asks the replica for a save; a file
 * with a gap reaching minIndex is UNAVAILABLE; a file whose CRC is not the request's (replaced by a
 * newer save) is NOT_FOUND. Never throws.
 */
export function answerLeaseStateRequest(file: LeaseStateFile, data: Uint8Array, opts: { chunkBytesMax: number; payloadBytesMax: number; onBehind: () => void }): Uint8Array {
  let q;
  try {
    q = decodeLeaseStateRequest(data);
  } catch (e) {
    return reply({ status: Status.BadRequest, message: `bad lease-state request: ${(e as Error).message}` });
  }
  const bytesMax = Math.max(1, Math.min(q.bytesMax, opts.chunkBytesMax, opts.payloadBytesMax - REPLY_OVERHEAD_BYTES));
  let chunk;
  try {
    chunk = file.readChunk(q.offset, bytesMax);
  } catch (e) {
    return reply({ status: Status.Error, message: `reading the lease-state file: ${(e as Error).message}` });
  }
  if (!chunk || chunk.index < q.minIndex) {
    opts.onBehind();
    return reply({ status: Status.Unavailable, message: `lease-state file at ${chunk?.index ?? 'none'}, below ${q.minIndex}: saving one`, index: chunk?.index ?? 0 });
  }
  // Its table lacks the same commands (a cluster whose every replica installed the snapshot): no use, and no save.
  if (chunk.gapThrough >= q.minIndex) return reply({ status: Status.Unavailable, message: `lease-state file lacks the commands through ${chunk.gapThrough} too`, index: chunk.index, gapThrough: chunk.gapThrough });
  if (q.crc32 !== 0 && q.crc32 !== chunk.crc32) return reply({ status: Status.NotFound, message: 'the lease-state file was replaced: start over' });
  return reply({ status: Status.Ok, ...chunk });
}

/** A lease table fetched from a peer, as of its file's index. */
export interface FetchedLeaseState {
  index: number;
  gapThrough: number;
  table: LeaseTable;
}

/**
 * Fetches `peer`'s lease-state file chunk by chunk (one request in flight, each reply under the
 * payload bound) and decodes it as it comes into a new LeaseTable (`LeaseStateDecoder`), so the
 * memory is the table's, bounded by leasesMax and ttlKeysMax; the whole body's CRC32 is checked at
 * the end. @returns the table, or null when the peer refused (UNAVAILABLE: its file is below
 * `minIndex`), the file changed under the transfer, a request timed out or failed, or `stopped()`.
 * @throws LeaseStateTransferError when the body breaks its bounds, its layout or its CRC.
 */
export async function fetchLeaseState(o: {
  bus: Transport;
  subject: string;
  minIndex: number;
  chunkBytesMax: number;
  timeoutMs: number;
  table: LeaseTableOptions;
  stopped: () => boolean;
}): Promise<FetchedLeaseState | null> {
  const table = new LeaseTable(o.table);
  const decoder = new LeaseStateDecoder(table, o.table);
  let fileCrc = 0;
  let crc = 0;
  let first: LeaseStateReply | null = null;
  for (let offset = 0; ; ) {
    if (o.stopped()) return null;
    let r: LeaseStateReply;
    try {
      const m = await o.bus.request(o.subject, encodeLeaseStateRequest({ minIndex: o.minIndex, crc32: fileCrc, offset, bytesMax: o.chunkBytesMax }), { timeoutMs: o.timeoutMs });
      r = decodeLeaseStateReply(m.data);
    } catch {
      return null;
    }
    if (r.status !== Status.Ok) return null;
    first ??= r;
    if (r.crc32 !== first.crc32 || r.bodyBytes !== first.bodyBytes || r.index !== first.index) return null;
    fileCrc = r.crc32;
    if (r.data.length > o.chunkBytesMax) throw new LeaseStateTransferError(`a chunk of ${r.data.length} bytes, over ${o.chunkBytesMax}`);
    decoder.push(r.data);
    crc = crc32(r.data, crc);
    offset += r.data.length;
    if (offset >= r.bodyBytes || r.data.length === 0) break;
  }
  decoder.finish();
  if (crc !== fileCrc) throw new LeaseStateTransferError(`body CRC32 ${crc} is not the file's ${fileCrc}`);
  if (decoder.index !== first.index) throw new LeaseStateTransferError(`body index ${decoder.index} is not the file's ${first.index}`);
  return { index: decoder.index, gapThrough: decoder.gapThrough, table };
}

/**
 * Decodes a lease-state body (layout: LeaseStateFile) given in chunks cut anywhere, adding its
 * entries to `table` as they complete (LeaseTable.restoreMore): the carried bytes are at most one
 * entry. Refuses counts above leasesMax / ttlKeysMax and keys above the 64 KiB key ceiling before
 * reading them. @throws LeaseStateTransferError
 */
export class LeaseStateDecoder {
  index = 0;
  gapThrough = 0;
  private carry: Buffer = Buffer.alloc(0);
  private phase: 'head' | 'leases' | 'keyCount' | 'keys' | 'done' = 'head';
  private left = 0;

  constructor(
    private readonly table: LeaseTable,
    private readonly bounds: { leasesMax: number; ttlKeysMax: number },
  ) {}

  push(chunk: Uint8Array): void {
    const b = this.carry.length ? Buffer.concat([this.carry, chunk]) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let at = 0;
    const leases: { leaseId: number; ttlMs: number }[] = [];
    const keys: { key: Buffer; expiresAtMs: number }[] = [];
    const u64 = (p: number) => b.readUInt32BE(p) * 0x1_0000_0000 + b.readUInt32BE(p + 4);
    for (;;) {
      if (this.phase === 'head') {
        if (b.length - at < 20) break;
        this.index = u64(at);
        this.gapThrough = u64(at + 8);
        this.left = this.count(b.readUInt32BE(at + 16), this.bounds.leasesMax, 'leases');
        at += 20;
        this.phase = 'leases';
      } else if (this.phase === 'leases') {
        if (this.left === 0) this.phase = 'keyCount';
        else if (b.length - at < 16) break;
        else {
          leases.push({ leaseId: u64(at), ttlMs: u64(at + 8) });
          at += 16;
          this.left--;
        }
      } else if (this.phase === 'keyCount') {
        if (b.length - at < 4) break;
        this.left = this.count(b.readUInt32BE(at), this.bounds.ttlKeysMax, 'keys');
        at += 4;
        this.phase = 'keys';
      } else if (this.phase === 'keys') {
        if (this.left === 0) this.phase = 'done';
        else if (b.length - at < 4) break;
        else {
          const n = b.readUInt32BE(at);
          if (n > KEY_BYTES_CEILING) throw new LeaseStateTransferError(`a key of ${n} bytes, over ${KEY_BYTES_CEILING}`);
          if (b.length - at < 12 + n) break;
          keys.push({ key: Buffer.from(b.subarray(at + 4, at + 4 + n)), expiresAtMs: u64(at + 4 + n) });
          at += 12 + n;
          this.left--;
        }
      } else {
        if (at < b.length) throw new LeaseStateTransferError(`${b.length - at} bytes after the last entry`);
        break;
      }
    }
    this.carry = Buffer.from(b.subarray(at));
    this.table.restoreMore({ leases, keys });
  }

  /** @throws LeaseStateTransferError when the body ended before its last entry. */
  finish(): void {
    this.push(Buffer.alloc(0));
    if (this.phase !== 'done' || this.carry.length > 0) throw new LeaseStateTransferError(`the body ended inside its ${this.phase}`);
  }

  private count(n: number, max: number, what: string): number {
    if (n > max) throw new LeaseStateTransferError(`${n} ${what}, over this replica's bound ${max}`);
    return n;
  }
}
