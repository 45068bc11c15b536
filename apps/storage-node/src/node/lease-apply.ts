import { ApplyOutcome, CommandOp, LeaseRefusal, RevokeCause, TxnOpKind, decodeCommand, peekCommandOp, decodeExpire, keptExpiry, decodeLeaseGrant, decodeLeaseRevoke, expireHolds, decodeU64Operand, type Command, type TxnRequest } from '@cairn/protocol';
import { EngineOp, type BatchMutation, type RangePage, type RangeQuery } from '@cairn/engine';
import type { ApplyResult } from './apply-result';
import { RESERVED_KEY_PREFIX, isReservedKey, latin1, metaDeleteBytes, metaSetBytes, revokeBytesOfKey, type LeaseIndex } from './lease-index';
import type { LeasedKey } from './txn-apply';

/**
 * The lease and TTL rules of the applier (docs/leases.md), evaluated in log order against the
 * LeaseIndex, so every storage node reaches the same outcome (no clock is read here: an expiry is
 * an absolute time written into the command, and deleting an expired key is the leader's
 * ExpireKey command).
 */

/** Ops whose whole meaning is lease/expiry state (ops 5..8). */
export const LEASE_OPS: ReadonlySet<CommandOp> = new Set([CommandOp.LeaseGrant, CommandOp.LeaseRevoke, CommandOp.Expire, CommandOp.ExpireKey]);

/**
 * Whether the command in `data` (a Normal entry's) deletes keys because time passed — an
 * ExpireKey, or a LeaseRevoke the leader proposed for a lease past its deadline (cause Expired) —
 * so their DELETE events are flagged EXPIRED (Redis reports them `expired`, not `del`).
 */
export function isExpiryCommand(data: Uint8Array): boolean {
  const op = peekCommandOp(data);
  if (op === CommandOp.ExpireKey) return true;
  if (op !== CommandOp.LeaseRevoke) return false;
  try {
    return decodeLeaseRevoke(decodeCommand(data).value).cause === RevokeCause.Expired;
  } catch {
    return false; // not a command this node can read: applied as a no-op, no events
  }
}

/** A client write aimed at the storage node's reserved keyspace: refused (ConditionFailed), never applied. */
export function targetsReservedKey(c: Command): boolean {
  return isReservedKey(c.key);
}

type Get = (key: Uint8Array) => unknown;

/** Whether a txn writes in the reserved keyspace (a put or delete of a reserved key, or a delete range starting in it): refused whole (ConditionFailed), as a plain Set of one is. */
export function txnWritesReserved(t: TxnRequest): boolean {
  return [...t.success, ...t.failure].some((o) => (o.kind === TxnOpKind.Put || o.kind === TxnOpKind.Delete) && isReservedKey(o.key));
}

/**
 * The store as a txn sees it: without the reserved keyspace (a get of a reserved key is null, a
 * range stops where the keyspace starts), so a txn's range or delete range never reads or deletes
 * lease and expiry records.
 */
export function clientView<S>(get: (key: Uint8Array) => S | null, range: (q: RangeQuery) => RangePage): { get(key: Uint8Array): S | null; range(q: RangeQuery): RangePage } {
  return {
    get: (key) => (isReservedKey(key) ? null : get(key)),
    range: (q) => {
      if (Buffer.compare(Buffer.from(q.start), RESERVED_KEY_PREFIX) >= 0) return { revision: 0, items: [], count: 0, more: false };
      const clamp = q.end === null || Buffer.compare(Buffer.from(q.end), RESERVED_KEY_PREFIX) > 0;
      return range(clamp ? { ...q, end: RESERVED_KEY_PREFIX } : q);
    },
  };
}

/** Outcome of a lease/TTL op at `index`. */
export function evaluateLeaseOp(c: Command, index: number, get: Get, leases: LeaseIndex): ApplyResult {
  const applied: ApplyResult = { outcome: ApplyOutcome.Applied, revision: index };
  const failed: ApplyResult = { outcome: ApplyOutcome.ConditionFailed, revision: index };
  switch (c.op) {
    case CommandOp.LeaseGrant:
      return leases.lease(decodeLeaseGrant(c.value).leaseId) ? failed : applied;
    case CommandOp.LeaseRevoke:
      return leases.lease(decodeLeaseRevoke(c.value).leaseId) ? applied : { ...failed, leaseRefusal: LeaseRefusal.NotFound };
    case CommandOp.Expire:
      return !isReservedKey(c.key) && get(c.key) && expireHolds(decodeExpire(c.value), leases.meta(c.key)?.expiresAtMs ?? 0) ? applied : failed;
    case CommandOp.ExpireKey: {
      const at = decodeU64Operand(c.value);
      return get(c.key) && at > 0 && leases.meta(c.key)?.expiresAtMs === at ? applied : failed;
    }
    default:
      throw new Error(`LeaseOp: op ${c.op} is not a lease op`);
  }
}

/**
 * Why an otherwise applicable Set is refused: its lease does not exist, or already holds
 * keysPerLeaseMax other keys, or one more key would make the lease's revoke record exceed
 * `mutationBytesMax` (the largest engine record); null when it may apply.
 */
export function refuseLeaseOnSet(c: Command, index: number, leases: LeaseIndex, keysPerLeaseMax: number, mutationBytesMax: number): ApplyResult | null {
  const leaseId = c.op === CommandOp.Set ? (c.meta?.leaseId ?? 0) : 0;
  if (leaseId === 0) return null;
  const lease = leases.lease(leaseId);
  if (!lease) return { outcome: ApplyOutcome.ConditionFailed, revision: index, leaseRefusal: LeaseRefusal.NotFound };
  if (lease.keys.has(Buffer.from(c.key).toString('latin1'))) return null;
  if (lease.keys.size >= keysPerLeaseMax || lease.revokeBytes + revokeBytesOfKey(c.key) > mutationBytesMax) return { outcome: ApplyOutcome.ConditionFailed, revision: index, leaseRefusal: LeaseRefusal.KeysFull };
  return null;
}

/**
 * The engine writes (besides the key's own Set/Delete) of an applied command, updating `leases`:
 * a Set's metadata record (a Set without META detaches its key and clears its expiry, as etcd's put
 * and Redis's SET do; KEEPTTL keeps the expiry), a Delete's removal, a grant's lease record, a
 * revoke's deletes (the lease record, each attached key and its metadata record: one batch record,
 * one revision), an Expire's new metadata, an ExpireKey's delete. An Incr keeps both (Redis INCR
 * keeps the TTL).
 */
export function leaseWrites(c: Command, index: number, get: Get, leases: LeaseIndex): BatchMutation[] {
  const one = (w: BatchMutation | null): BatchMutation[] => (w ? [w] : []);
  switch (c.op) {
    case CommandOp.Set: {
      const prev = leases.meta(c.key);
      const m = c.meta;
      return one(leases.setMeta(c.key, m ? { leaseId: m.leaseId, expiresAtMs: m.keepTtl ? keptExpiry(prev?.expiresAtMs ?? 0, m.expiresAtMs) : m.expiresAtMs } : NO_META));
    }
    case CommandOp.Delete:
      return one(leases.setMeta(c.key, NO_META));
    case CommandOp.LeaseGrant: {
      const g = decodeLeaseGrant(c.value);
      return [leases.grant(g.leaseId, g.ttlMs, index)];
    }
    case CommandOp.LeaseRevoke:
      return leases.revoke(decodeLeaseRevoke(c.value).leaseId);
    case CommandOp.Expire:
      return one(leases.setMeta(c.key, { leaseId: leases.meta(c.key)?.leaseId ?? 0, expiresAtMs: decodeExpire(c.value).expiresAtMs }));
    case CommandOp.ExpireKey:
      return get(c.key) ? [{ op: EngineOp.Delete, key: c.key, value: new Uint8Array(0) }, ...one(leases.setMeta(c.key, NO_META))] : [];
    default:
      return [];
  }
}

const NO_META = { leaseId: 0, expiresAtMs: 0 };

/**
 * Bytes a txn's metadata writes add to its batch record, at most: for each key of `leased` the Set
 * of its metadata record (`attachWrites`), for each other distinct key of `mutations` that has a
 * metadata record its Delete (`detachWrites`; counted for every written key, KEEP_TTL puts
 * included, so every node reaches the same verdict).
 */
export function detachBytes(mutations: readonly BatchMutation[], leases: LeaseIndex, leased: readonly LeasedKey[] = []): number {
  const seen = new Set<string>();
  let n = 0;
  for (const l of leased) {
    seen.add(l.key.toString('latin1'));
    n += metaSetBytes(l.key);
  }
  for (const m of mutations) {
    // Metadata first: with no key holding any (an import), no key string is built.
    if (!leases.meta(m.key)) continue;
    const k = latin1(m.key);
    if (seen.has(k)) continue;
    seen.add(k);
    n += metaDeleteBytes(m.key);
  }
  return n;
}

/** A txn's put with LEASE of `key`: it joins lease `leaseId` and loses any expiry of its own (etcd put with a lease); the write of its metadata record. */
export function attachWrites(l: LeasedKey, leases: LeaseIndex): BatchMutation[] {
  const w = leases.setMeta(l.key, { leaseId: l.leaseId, expiresAtMs: 0 });
  return w ? [w] : [];
}

/**
 * Why a txn whose puts name `leasesNamed` and attach `leased` must not apply (etcd
 * `checkRequestPut` at apply: the whole txn fails, nothing applied): a named lease that does not
 * exist (NotFound, first), or one that would then hold more than `keysPerLeaseMax` keys or whose
 * revoke would exceed `mutationBytesMax` (KeysFull, as a SET's); null when it may apply.
 */
export function refuseLeasedTxn(t: { leasesNamed: readonly number[]; leased: readonly LeasedKey[] }, leases: LeaseIndex, keysPerLeaseMax: number, mutationBytesMax: number): LeaseRefusal | null {
  if (t.leasesNamed.some((id) => !leases.lease(id))) return LeaseRefusal.NotFound;
  const { leased } = t;
  const added = new Map<number, { keys: number; bytes: number }>();
  for (const l of leased) {
    const lease = leases.lease(l.leaseId)!;
    if (lease.keys.has(l.key.toString('latin1'))) continue;
    const a = added.get(l.leaseId) ?? { keys: 0, bytes: 0 };
    a.keys++;
    a.bytes += revokeBytesOfKey(l.key);
    added.set(l.leaseId, a);
    if (lease.keys.size + a.keys > keysPerLeaseMax || lease.revokeBytes + a.bytes > mutationBytesMax) return LeaseRefusal.KeysFull;
  }
  return null;
}

/** A txn's put or delete of `key`: it leaves any lease and loses any expiry (etcd put without a lease); the write of its metadata record, if it had one. */
export function detachWrites(key: Uint8Array, leases: LeaseIndex): BatchMutation[] {
  const w = leases.setMeta(key, NO_META);
  return w ? [w] : [];
}
