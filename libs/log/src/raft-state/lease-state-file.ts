import { join } from 'node:path';
import { ByteReader, ByteWriter } from '@cairn/protocol';
import { nodeDisk, type Disk } from '../disk';
import { CHECKSUMMED_HEADER_BYTES, ChecksummedFile } from './checksummed-file';

const MAGIC = 0x43524c53; // "CRLS"
const VERSION = 1;
/** u64 index · u64 gapThrough · u32 leaseCount · u32 keyCount. */
const FIXED_BYTES = 24;

/** The lease-state file exists but fails its checksum or layout check. */
export class LeaseStateFileCorruptionError extends Error {
  readonly code = 'LEASE_STATE_FILE_CORRUPTION';
}

/** A consensus replica's lease table without the leader's deadlines: leases by id with their TTL, tracked key expiries (absolute, ms since the Unix epoch). */
export interface LeaseStateContent {
  leases: { leaseId: number; ttlMs: number }[];
  keys: { key: Buffer; expiresAtMs: number }[];
}

/**
 * One side of a table read as of one instant while it keeps changing (the consensus replica's
 * copy-on-write `SnapshotMap` reader): `next` visits at most `max` entries (key, saved number)
 * and returns how many it visited (0: done); a visit returning false stops it early.
 */
export interface LeaseStateSliceReader<K> {
  readonly size: number;
  next(max: number, visit: (k: K, saved: number) => boolean | void): number;
}

/** A lease table's content as of one instant: leases as `[leaseId, ttlMs]`, tracked keys as `[key (latin1), expiresAtMs]`. */
export interface LeaseStateSnapshot {
  leases: LeaseStateSliceReader<number>;
  keys: LeaseStateSliceReader<string>;
}

/** A replica's lease table as saved before a log compaction (docs/leases.md "Restarts and compaction"), or as `cairn snapshot restore` rebuilds it from a backup's reserved keyspace. */
export interface SavedLeaseState extends LeaseStateContent {
  /** The table holds every committed command up to this log index (its applied index when saved). */
  index: number;
  /** 0, or the last index of a leader's snapshot this replica installed (Raft §7) while the table lacked the commands before it: the table may miss leases and expiries committed up to there. */
  gapThrough: number;
}

/**
 * The consensus replica's lease table on disk (`<dataDir>/lease-state`), so a replica that
 * restarts from a compacted log still has the leases and key expiries committed before the
 * compaction point (docs/leases.md "Restarts and compaction"), and a cluster made by `cairn
 * snapshot restore` has the backup's (docs/operations.md "Backup and restore"). Written before the log prefix it
 * covers is dropped, at the replica's applied index (≥ the compaction point); replaced atomically
 * (ChecksummedFile: tmp file, fsync, rename, directory fsync). Bounded by consensus.leasesMax and
 * ttlKeysMax (≤ 16 bytes a lease, 12 bytes plus the key a tracked expiry).
 *
 * Body (big-endian, after the ChecksummedFile header with magic "CRLS", version 1):
 * `u64 index · u64 gapThrough · u32 leaseCount · (u64 leaseId · u64 ttlMs)* · u32 keyCount ·
 * (u32 keyLength · key · u64 expiresAtMs)*`.
 */
export class LeaseStateFile {
  private readonly file: ChecksummedFile;

  constructor(
    dir: string,
    private readonly disk: Disk = nodeDisk,
  ) {
    this.file = new ChecksummedFile(join(dir, 'lease-state'), MAGIC, VERSION, (m) => new LeaseStateFileCorruptionError(m), disk);
  }

  /**
   * One chunk of the saved body for a peer (LeaseStateRequest, docs/leases.md "Snapshot install"):
   * `bytesMax` bytes at most from `offset` (empty at or past the end), with the file's index,
   * gapThrough, CRC32 and body size; null when no file was ever saved. Synchronous preads, so
   * every chunk comes from one file (a save renames the new one in between two chunks at most; the
   * CRC tells the requester). @throws LeaseStateFileCorruptionError on a bad header; what the disk throws
   */
  readChunk(offset: number, bytesMax: number): { index: number; gapThrough: number; crc32: number; bodyBytes: number; data: Buffer } | null {
    let f;
    try {
      f = this.disk.openSync(this.file.path, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
    try {
      const bodyBytes = f.statSync().size - CHECKSUMMED_HEADER_BYTES;
      const head = Buffer.alloc(CHECKSUMMED_HEADER_BYTES + 16);
      if (bodyBytes < FIXED_BYTES || f.readSync(head, 0, head.length, 0) !== head.length || head.readUInt32BE(0) !== MAGIC || head[4] !== VERSION) {
        throw new LeaseStateFileCorruptionError(`${this.file.path}: bad magic, version or size`);
      }
      const index = new ByteReader(head.subarray(CHECKSUMMED_HEADER_BYTES)).u64();
      const gapThrough = new ByteReader(head.subarray(CHECKSUMMED_HEADER_BYTES + 8)).u64();
      const data = Buffer.alloc(Math.max(0, Math.min(bytesMax, bodyBytes - offset)));
      for (let done = 0, n; done < data.length; done += n) {
        n = f.readSync(data, done, data.length - done, CHECKSUMMED_HEADER_BYTES + offset + done);
        if (n === 0) throw new LeaseStateFileCorruptionError(`${this.file.path}: shorter than its size`);
      }
      return { index, gapThrough, crc32: head.readUInt32BE(5), bodyBytes, data };
    } finally {
      f.closeSync();
    }
  }

  /** @returns the saved state, or null when none was ever written. @throws LeaseStateFileCorruptionError */
  read(): SavedLeaseState | null {
    const body = this.file.read(FIXED_BYTES);
    if (!body) return null;
    try {
      return decodeLeaseState(body);
    } catch (e) {
      throw new LeaseStateFileCorruptionError(`${this.file.path}: ${(e as Error).message}`);
    }
  }

  /** Durably replaces the file with `s` in one synchronous step (tests and small tables; the replica saves with `save`). @throws what the disk throws */
  write(s: SavedLeaseState): void {
    this.file.write(encodeLeaseState(s));
  }

  /**
   * Durably replaces the file with a snapshot of the table (`LeaseTable.snapshot`) at `index`,
   * encoded and written in slices of at most `sliceBytesMax` bytes (whole entries; consensus
   * `leaseStateSliceBytesMax`), each awaited before the next is encoded, so the event loop (the
   * Ready loop included) runs between them: ChecksummedFile.writeSlices (tmp, fsync, rename,
   * directory fsync). `cancelled()` (the replica stopping) stops before the next slice, leaving the
   * previous file in place. Does not end the snapshot.
   * @returns false when cancelled. @throws what the disk throws; an Error named
   * LeaseStateSnapshotSizeChanged when a reader yields another count than it announced (a bug).
   */
  save(s: { index: number; gapThrough: number; table: LeaseStateSnapshot }, sliceBytesMax: number, cancelled: () => boolean): Promise<boolean> {
    return this.file.writeSlices(encodeLeaseStateSlices(s, sliceBytesMax), cancelled);
  }
}

/** Bytes of one saved key expiry besides the key: u32 keyLength · u64 expiresAtMs. */
const KEY_ENTRY_OVERHEAD_BYTES = 12;
const LEASE_ENTRY_BYTES = 16;

/**
 * The file's body (layout: LeaseStateFile) from a table snapshot, as slices of at most
 * `sliceBytesMax` bytes holding whole entries (an entry longer than that, a key near the 64 KiB
 * key ceiling with a small `sliceBytesMax`, goes in a slice of its own). Each `next()` reads from
 * the snapshot only the entries of one slice, written straight into the slice's buffer.
 */
export function* encodeLeaseStateSlices(s: { index: number; gapThrough: number; table: LeaseStateSnapshot }, sliceBytesMax: number): Generator<Buffer> {
  const { leases, keys } = s.table;
  const out = new SliceBuffer(sliceBytesMax);
  out.u64(s.index).u64(s.gapThrough).u32(leases.size);
  let count = 0;
  // Each step stops as soon as a slice is full, and yields it: one slice's work per step.
  const putLease = (leaseId: number, ttlMs: number): boolean => {
    out.room(LEASE_ENTRY_BYTES).u64(leaseId).u64(ttlMs);
    count++;
    return !out.hasFull();
  };
  const putKey = (k: string, expiresAtMs: number): boolean => {
    out.room(KEY_ENTRY_OVERHEAD_BYTES + k.length).u32(k.length).latin1(k).u64(expiresAtMs);
    count++;
    return !out.hasFull();
  };
  const leasesPerStep = Math.max(1, Math.floor(sliceBytesMax / LEASE_ENTRY_BYTES));
  while (leases.next(leasesPerStep, putLease) > 0) yield* out.takeFull();
  if (count !== leases.size) throw new Error(`LeaseStateSnapshotSizeChanged: ${count} leases read, ${leases.size} announced`);
  out.room(4).u32(keys.size);
  count = 0;
  const keysPerStep = Math.max(1, Math.floor(sliceBytesMax / KEY_ENTRY_OVERHEAD_BYTES));
  while (keys.next(keysPerStep, putKey) > 0) yield* out.takeFull();
  if (count !== keys.size) throw new Error(`LeaseStateSnapshotSizeChanged: ${count} keys read, ${keys.size} announced`);
  yield* out.takeAll();
}

/** Big-endian writes into a sequence of slices of `sliceBytesMax` bytes: `room(n)` starts a new slice when n bytes do not fit the current one. */
class SliceBuffer {
  private buf: Buffer;
  private used = 0;
  private readonly full: Buffer[] = [];

  constructor(private readonly sliceBytesMax: number) {
    this.buf = Buffer.allocUnsafe(sliceBytesMax);
  }

  room(bytes: number): this {
    if (this.used + bytes <= this.buf.length) return this;
    if (this.used > 0) this.full.push(this.buf.subarray(0, this.used));
    this.buf = Buffer.allocUnsafe(Math.max(this.sliceBytesMax, bytes));
    this.used = 0;
    return this;
  }

  u32(v: number): this {
    this.used = this.buf.writeUInt32BE(v, this.used);
    return this;
  }

  /** A non-negative safe integer. */
  u64(v: number): this {
    this.buf.writeUInt32BE(Math.floor(v / 0x1_0000_0000), this.used);
    this.used = this.buf.writeUInt32BE(v >>> 0, this.used + 4);
    return this;
  }

  /** A key held as a latin1 string (one byte a char, the LeaseTable's key form). */
  latin1(k: string): this {
    this.used += this.buf.write(k, this.used, 'latin1');
    return this;
  }

  hasFull(): boolean {
    return this.full.length > 0;
  }

  /** The slices filled so far. */
  *takeFull(): Generator<Buffer> {
    while (this.full.length > 0) yield this.full.shift()!;
  }

  /** Every slice, the current one included. */
  *takeAll(): Generator<Buffer> {
    yield* this.takeFull();
    if (this.used > 0) yield this.buf.subarray(0, this.used);
    this.used = 0;
  }
}

/** The file's body (layout: LeaseStateFile). */
export function encodeLeaseState(s: SavedLeaseState): Buffer {
  let size = FIXED_BYTES + 16 * s.leases.length;
  for (const k of s.keys) size += 12 + k.key.length;
  const w = new ByteWriter(size).u64(s.index).u64(s.gapThrough).u32(s.leases.length);
  for (const l of s.leases) w.u64(l.leaseId).u64(l.ttlMs);
  w.u32(s.keys.length);
  for (const k of s.keys) w.bytes(k.key).u64(k.expiresAtMs);
  return w.finish();
}

/** @throws ProtocolError on truncation or trailing bytes. */
export function decodeLeaseState(body: Uint8Array): SavedLeaseState {
  const r = new ByteReader(body);
  const index = r.u64();
  const gapThrough = r.u64();
  const leases: SavedLeaseState['leases'] = new Array(r.count(16));
  for (let i = 0; i < leases.length; i++) leases[i] = { leaseId: r.u64(), ttlMs: r.u64() };
  const keys: SavedLeaseState['keys'] = new Array(r.count(12));
  for (let i = 0; i < keys.length; i++) keys[i] = { key: Buffer.from(r.bytes()), expiresAtMs: r.u64() };
  r.end();
  return { index, gapThrough, leases, keys };
}
