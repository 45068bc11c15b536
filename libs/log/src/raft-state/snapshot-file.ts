import { join } from 'node:path';
import { decodeConfState, encodeConfState, type Snapshot } from '@cairn/raft';
import type { Disk } from '../disk';
import { ChecksummedFile } from './checksummed-file';

const MAGIC = 0x4352534e; // "CRSN"
const VERSION = 1;

/** Thrown when the snapshot file exists but fails its checksum or layout check. */
export class SnapshotFileCorruptionError extends Error {
  readonly code = 'SNAPSHOT_FILE_CORRUPTION';
}

/**
 * The replica's Raft snapshot (Raft §7): the last index and term of the compacted log prefix and
 * the configuration in effect there. A consensus replica keeps no state machine of its own
 * (storage nodes do), so this is all its snapshot holds. Replaced atomically (ChecksummedFile)
 * BEFORE the log prefix is dropped or the log is reset for an installed snapshot, so a crash in
 * between leaves a snapshot that covers what the log lost.
 *
 * Body (big-endian, after the ChecksummedFile header with magic "CRSN", version 1): u64 index |
 * u64 term | u32 confLength | conf (UTF-8 JSON, libs/raft encodeConfState).
 */
export class SnapshotFile {
  private readonly file: ChecksummedFile;
  constructor(dir: string, disk?: Disk) {
    this.file = new ChecksummedFile(join(dir, 'raft-snapshot'), MAGIC, VERSION, (m) => new SnapshotFileCorruptionError(m), disk);
  }

  /** @returns the stored snapshot, or null when none was ever written. @throws SnapshotFileCorruptionError */
  read(): Snapshot | null {
    const body = this.file.read(20);
    if (!body) return null;
    const index = Number(body.readBigUInt64BE(0));
    const term = Number(body.readBigUInt64BE(8));
    const confLength = body.readUInt32BE(16);
    if (body.length !== 20 + confLength) throw new SnapshotFileCorruptionError(`${this.file.path}: bad configuration length`);
    try {
      return { index, term, conf: decodeConfState(body.subarray(20)) };
    } catch (e) {
      throw new SnapshotFileCorruptionError(`${this.file.path}: ${(e as Error).message}`);
    }
  }

  /** Durably replaces the snapshot. */
  async write(s: Snapshot): Promise<void> {
    const conf = Buffer.from(encodeConfState(s.conf));
    const body = Buffer.alloc(20 + conf.length);
    body.writeBigUInt64BE(BigInt(s.index), 0);
    body.writeBigUInt64BE(BigInt(s.term), 8);
    body.writeUInt32BE(conf.length, 16);
    conf.copy(body, 20);
    this.file.write(body);
  }
}
