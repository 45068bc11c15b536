import { join } from 'node:path';
import type { HardState } from '@cairn/raft';
import type { Disk } from '../disk';
import { ChecksummedFile } from './checksummed-file';

const MAGIC = 0x43524853; // "CRHS"
const VERSION = 1;

/** Thrown when the hard state file exists but fails its checksum or layout check. */
export class HardStateCorruptionError extends Error {
  readonly code = 'HARD_STATE_CORRUPTION';
}

/**
 * The Raft hard state (term, vote, commit; Raft §5.1 "persistent state on all servers") in one
 * small file, replaced atomically: write `hardstate.tmp`, fsync, rename over `hardstate`, fsync the
 * directory. A replica never answers a vote or an append before this returns (Raft Figure 2).
 *
 * Layout (big-endian): u32 magic "CRHS" | u8 version=1 | u32 CRC32 of the rest | u64 term |
 * u64 commit | u16 voteLength | vote (UTF-8; length 0 = no vote).
 */
export class HardStateFile {
  private readonly file: ChecksummedFile;
  constructor(dir: string, disk?: Disk) {
    this.file = new ChecksummedFile(join(dir, 'hardstate'), MAGIC, VERSION, (m) => new HardStateCorruptionError(m), disk);
  }

  /** @returns the stored hard state, or null when none was ever written. @throws HardStateCorruptionError */
  read(): HardState | null {
    const body = this.file.read(18);
    if (!body) return null;
    const term = Number(body.readBigUInt64BE(0));
    const commit = Number(body.readBigUInt64BE(8));
    const voteLength = body.readUInt16BE(16);
    if (body.length !== 18 + voteLength) throw new HardStateCorruptionError(`${this.file.path}: bad vote length`);
    const vote = voteLength ? body.subarray(18).toString('utf8') : null;
    return { term, vote, commit };
  }

  /** Durably replaces the hard state (synchronous: it is rare — term or vote changed). */
  write(hs: HardState): void {
    const vote = Buffer.from(hs.vote ?? '', 'utf8');
    const body = Buffer.alloc(18 + vote.length);
    body.writeBigUInt64BE(BigInt(hs.term), 0);
    body.writeBigUInt64BE(BigInt(hs.commit), 8);
    body.writeUInt16BE(vote.length, 16);
    vote.copy(body, 18);
    this.file.write(body);
  }
}
