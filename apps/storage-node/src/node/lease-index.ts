import { EngineOp, RECORD_HEADER_BYTES, batchRecordBytes, type BatchMutation, type BitcaskEngine } from '@cairn/engine';
import { ByteWriter, RESERVED_KEY_PREFIX, encodeKeyMeta, isReservedKey, keyMetaRecordKey, leaseRecordKey, reservedRecords, type KeyLeaseMeta } from '@cairn/protocol';

export { RESERVED_KEY_PREFIX, isReservedKey, encodeKeyMeta, keyMetaRecordKey, leaseRecordKey, type KeyLeaseMeta };

/*
 * Where a storage node keeps lease and expiry state in its engine (docs/leases.md "Storage"): the
 * reserved keyspace (@cairn/protocol reserved-keys.ts: `prefix | 'L' | u64 leaseId` → `u64
 * ttlMs`, `prefix | 'K' | key` → `u64 leaseId | u64 expiresAtMs`), never a client's (the gateway
 * refuses them; reads and ranges never return them). So lease state is in the same records,
 * merges, snapshots, bootstrap transfers and backups as the data, at the same applied index, with
 * no second store.
 */

/** A granted lease as a storage node knows it. */
export interface StoredLease {
  ttlMs: number;
  /** Revision of its grant. */
  grantRevision: number;
  /** Attached keys (latin1 strings of the key bytes). */
  keys: Set<string>;
  /** Bytes of the batch record its revoke writes (engine `batchRecordBytes`): bounded, so the revoke fits one record. */
  revokeBytes: number;
}

/** Bytes the Delete of `key`'s metadata record adds to a batch record. */
export function metaDeleteBytes(key: Uint8Array): number {
  return batchRecordBytes([del(keyMetaRecordKey(key))]) - RECORD_HEADER_BYTES;
}

/** Bytes the Set of `key`'s metadata record (16 bytes of value) adds to a batch record. */
export function metaSetBytes(key: Uint8Array): number {
  return batchRecordBytes([{ op: EngineOp.Set, key: keyMetaRecordKey(key), value: META_VALUE }]) - RECORD_HEADER_BYTES;
}

/** Bytes attaching `key` adds to its lease's revoke record: the key's Delete and its metadata record's Delete. */
export function revokeBytesOfKey(key: Uint8Array): number {
  return batchRecordBytes([del(key), del(keyMetaRecordKey(key))]) - RECORD_HEADER_BYTES;
}

function newLease(leaseId: number, ttlMs: number, grantRevision: number): StoredLease {
  return { ttlMs, grantRevision, keys: new Set(), revokeBytes: batchRecordBytes([del(leaseRecordKey(leaseId))]) };
}

function attach(lease: StoredLease | undefined, k: string): void {
  if (!lease || lease.keys.has(k)) return;
  lease.keys.add(k);
  lease.revokeBytes += revokeBytesOfKey(Buffer.from(k, 'latin1'));
}

function detach(lease: StoredLease | undefined, k: string): void {
  if (!lease || !lease.keys.delete(k)) return;
  lease.revokeBytes -= revokeBytesOfKey(Buffer.from(k, 'latin1'));
}

const del = (key: Uint8Array): BatchMutation => ({ op: EngineOp.Delete, key, value: EMPTY });

/** A key's bytes as a latin1 string (one char per byte, no copy of the bytes): a Map key. */
export const latin1 = (k: Uint8Array): string => Buffer.from(k.buffer, k.byteOffset, k.byteLength).toString('latin1');

/**
 * The in-memory view of the reserved keyspace: leases (with their attached keys) and per-key
 * metadata, kept equal to the engine's reserved records. Rebuilt from the engine at open (`load`);
 * the applier updates it in log order as it turns entries into engine writes.
 *
 * The applier runs ahead of the engine: it updates this index when it turns a batch into engine
 * writes, and the storage node hands them to the engine only after the batch's session records
 * reached their journal (an await, milliseconds on a loaded disk). Reads served meanwhile get the
 * engine's values, so the expiry that hides them (`expiryOf`, `expired`) is the one the engine's
 * state still has: the index keeps it for every key whose metadata changed since the engine was
 * last handed its writes, until `handedToEngine`. (Without that, an ExpireKey in that window
 * dropped the key's expiry while the engine still served its value: an expired key was returned,
 * the 43 ms lease violation of the seed-7 chaos run, docs/reliability.md.)
 */
export class LeaseIndex {
  private readonly leases = new Map<number, StoredLease>();
  private readonly metas = new Map<string, KeyLeaseMeta>();
  /** Keys whose metadata changed in writes not yet handed to the engine → the expiry the engine's state has (0: none). Bounded by the keys of one apply batch. */
  private readonly engineExpiries = new Map<string, number>();

  /** Reads every reserved record of `engine` (paged ranges over the prefix). */
  static load(engine: Pick<BitcaskEngine, 'range'>): LeaseIndex {
    const idx = new LeaseIndex();
    const keyed: { key: string; meta: KeyLeaseMeta }[] = [];
    for (const { record, revision } of reservedRecords((q) => engine.range(q))) {
      if (record.kind === 'lease') idx.leases.set(record.leaseId, newLease(record.leaseId, record.ttlMs, revision));
      else keyed.push({ key: latin1(record.key), meta: record.meta });
    }
    for (const { key, meta } of keyed) {
      idx.metas.set(key, meta);
      if (meta.leaseId) attach(idx.leases.get(meta.leaseId), key);
    }
    return idx;
  }

  lease(leaseId: number): StoredLease | undefined {
    return this.leases.get(leaseId);
  }

  /** Every lease id, ascending (bounded by the leader's leasesMax). */
  leaseIds(): number[] {
    return [...this.leases.keys()].sort((a, b) => a - b);
  }

  meta(key: Uint8Array): KeyLeaseMeta | undefined {
    // No key has metadata (an import, a store without TTLs): no key string to build.
    if (this.metas.size === 0) return undefined;
    return this.metas.get(latin1(key));
  }

  /**
   * The absolute expiry (ms since the Unix epoch, 0 = none) of `key`'s value as the engine serves it:
   * while the applier is ahead of the engine (see the class doc), the one the engine's state has.
   */
  expiryOf(key: Uint8Array): number {
    if (this.metas.size === 0 && this.engineExpiries.size === 0) return 0;
    const k = latin1(key);
    return this.engineExpiries.get(k) ?? this.metas.get(k)?.expiresAtMs ?? 0;
  }

  /** Whether the value the engine serves for `key` has an expiry at or before `nowMs` (a read must not return it). */
  expired(key: Uint8Array, nowMs: number): boolean {
    if (this.metas.size === 0 && this.engineExpiries.size === 0) return false;
    const at = this.expiryOf(key);
    return at > 0 && at <= nowMs;
  }

  /**
   * The engine has been handed every write the updates so far returned (BitcaskEngine.apply takes
   * them into its keydir when called): reads follow this index's metadata again.
   */
  handedToEngine(): void {
    this.engineExpiries.clear();
  }

  /** Before `k`'s metadata changes: remember the expiry the engine's state has for it, unless an earlier unhanded change already did. */
  private aheadOfEngine(k: string): void {
    if (!this.engineExpiries.has(k)) this.engineExpiries.set(k, this.metas.get(k)?.expiresAtMs ?? 0);
  }

  /** Keys with an expiry, with it (for the leader's expiry table after a failover; bounded by the caller). */
  *expiries(): Generator<{ key: Buffer; expiresAtMs: number }> {
    for (const [k, m] of this.metas) if (m.expiresAtMs > 0) yield { key: Buffer.from(k, 'latin1'), expiresAtMs: m.expiresAtMs };
  }

  // ---- updates, by the applier in log order; each returns the engine writes that make it durable ----

  grant(leaseId: number, ttlMs: number, index: number): BatchMutation {
    this.leases.set(leaseId, newLease(leaseId, ttlMs, index));
    return { op: EngineOp.Set, key: leaseRecordKey(leaseId), value: new ByteWriter(8).u64(ttlMs).finish() };
  }

  /** Removes the lease and its keys' metadata: the writes delete the lease record, each key and its metadata record. */
  revoke(leaseId: number): BatchMutation[] {
    const lease = this.leases.get(leaseId);
    const writes: BatchMutation[] = [{ op: EngineOp.Delete, key: leaseRecordKey(leaseId), value: EMPTY }];
    if (!lease) return writes;
    this.leases.delete(leaseId);
    for (const k of lease.keys) {
      const key = Buffer.from(k, 'latin1');
      this.aheadOfEngine(k);
      this.metas.delete(k);
      writes.push({ op: EngineOp.Delete, key, value: EMPTY }, { op: EngineOp.Delete, key: keyMetaRecordKey(key), value: EMPTY });
    }
    return writes;
  }

  /** Gives `key` metadata `next` ({0, 0}: none); returns the write of its metadata record, or null when nothing changes on disk. */
  setMeta(key: Uint8Array, next: KeyLeaseMeta): BatchMutation | null {
    // No metadata before or after, and no key has any: nothing to change (the bulk of an import).
    if (next.leaseId === 0 && next.expiresAtMs === 0 && this.metas.size === 0) return null;
    const k = latin1(key);
    const prev = this.metas.get(k);
    if (prev?.leaseId && prev.leaseId !== next.leaseId) detach(this.leases.get(prev.leaseId), k);
    if (next.leaseId) attach(this.leases.get(next.leaseId), k);
    if (next.leaseId === 0 && next.expiresAtMs === 0) {
      if (!prev) return null;
      this.aheadOfEngine(k);
      this.metas.delete(k);
      return { op: EngineOp.Delete, key: keyMetaRecordKey(key), value: EMPTY };
    }
    if (prev && prev.leaseId === next.leaseId && prev.expiresAtMs === next.expiresAtMs) return null;
    this.aheadOfEngine(k);
    this.metas.set(k, next);
    return { op: EngineOp.Set, key: keyMetaRecordKey(key), value: encodeKeyMeta(next) };
  }
}

const EMPTY = new Uint8Array(0);
/** The size of a metadata record's value (`encodeKeyMeta`). */
const META_VALUE = new Uint8Array(16);
