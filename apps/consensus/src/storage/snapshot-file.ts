import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { writeFileAtomic } from '@cairn/log';
import { decodeConfState, encodeConfState, type Snapshot } from '@cairn/raft';

const MAGIC = 0x4352534e; // "CRSN"
const VERSION = 1;
const HEADER_BYTES = 9;

/** Thrown when the snapshot file exists but fails its checksum or layout check. */
export class SnapshotFileCorruptionError extends Error {
  readonly code = 'SNAPSHOT_FILE_CORRUPTION';
}

/**
 * The replica's Raft snapshot (Raft §7): the last index and term of the compacted log prefix and
 * the configuration in effect there. A consensus replica keeps no state machine of its own
 * (storage nodes do), so this is all its snapshot holds. Replaced atomically (write tmp, fsync,
 * rename, fsync dir) BEFORE the log prefix is dropped or the log is reset for an installed
 * snapshot, so a crash in between leaves a snapshot that covers what the log lost.
 *
 * Layout (big-endian): u32 magic "CRSN" | u8 version=1 | u32 CRC32 of the rest | u64 index |
 * u64 term | u32 confLength | conf (UTF-8 JSON, libs/raft encodeConfState).
 */
export class SnapshotFile {
  private readonly path: string;
  constructor(dir: string) {
    this.path = join(dir, 'raft-snapshot');
  }

  /** @returns the stored snapshot, or null when none was ever written. @throws SnapshotFileCorruptionError */
  read(): Snapshot | null {
    let buf: Buffer;
    try {
      buf = readFileSync(this.path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
    if (buf.length < HEADER_BYTES + 20 || buf.readUInt32BE(0) !== MAGIC || buf[4] !== VERSION) {
      throw new SnapshotFileCorruptionError(`${this.path}: bad magic, version or size (${buf.length} bytes)`);
    }
    const body = buf.subarray(HEADER_BYTES);
    if (crc32(body) !== buf.readUInt32BE(5)) throw new SnapshotFileCorruptionError(`${this.path}: checksum mismatch`);
    const index = Number(body.readBigUInt64BE(0));
    const term = Number(body.readBigUInt64BE(8));
    const confLength = body.readUInt32BE(16);
    if (body.length !== 20 + confLength) throw new SnapshotFileCorruptionError(`${this.path}: bad configuration length`);
    try {
      return { index, term, conf: decodeConfState(body.subarray(20)) };
    } catch (e) {
      throw new SnapshotFileCorruptionError(`${this.path}: ${(e as Error).message}`);
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
    const head = Buffer.alloc(HEADER_BYTES);
    head.writeUInt32BE(MAGIC, 0);
    head[4] = VERSION;
    head.writeUInt32BE(crc32(body), 5);
    await writeFileAtomic(this.path, Buffer.concat([head, body]));
  }
}
