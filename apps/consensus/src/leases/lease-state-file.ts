import { join } from 'node:path';
import { ChecksummedFile, type Disk } from '@cairn/log';
import { ByteReader, ByteWriter } from '@cairn/protocol';
import type { LeaseTableContent } from './lease-table';

const MAGIC = 0x43524c53; // "CRLS"
const VERSION = 1;
/** u64 index · u64 gapThrough · u32 leaseCount · u32 keyCount. */
const FIXED_BYTES = 24;

/** The lease-state file exists but fails its checksum or layout check. */
export class LeaseStateFileCorruptionError extends Error {
  readonly code = 'LEASE_STATE_FILE_CORRUPTION';
}

/** A replica's lease table as saved before a log compaction (docs/leases.md "Restarts and compaction"). */
export interface SavedLeaseState extends LeaseTableContent {
  /** The table holds every committed command up to this log index (its applied index when saved). */
  index: number;
  /** 0, or the last index of a leader's snapshot this replica installed (Raft §7) while the table lacked the commands before it: the table may miss leases and expiries committed up to there. */
  gapThrough: number;
}

/**
 * The consensus replica's lease table on disk (`<dataDir>/lease-state`), so a replica that
 * restarts from a compacted log still has the leases and key expiries committed before the
 * compaction point (docs/leases.md "Restarts and compaction"). Written before the log prefix it
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

  constructor(dir: string, disk?: Disk) {
    this.file = new ChecksummedFile(join(dir, 'lease-state'), MAGIC, VERSION, (m) => new LeaseStateFileCorruptionError(m), disk);
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

  /** Durably replaces the file with `s` (synchronous, like the Raft snapshot and hard-state files). @throws what the disk throws */
  write(s: SavedLeaseState): void {
    this.file.write(encodeLeaseState(s));
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
