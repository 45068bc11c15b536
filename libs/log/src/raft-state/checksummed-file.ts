import { nodeDisk, type Disk } from '../disk';
import { fsyncDir } from '../files';
import { dirname } from 'node:path';
import { crc32 } from 'node:zlib';

/** Bytes of the header: u32 magic | u8 version | u32 CRC32 of the body. */
export const CHECKSUMMED_HEADER_BYTES = 9;

/**
 * A small file replaced atomically whose body is guarded by a CRC32 (hard state, Raft snapshot
 * metadata). Layout (big-endian): u32 magic | u8 version | u32 CRC32(body) | body.
 */
export class ChecksummedFile {
  constructor(
    readonly path: string,
    private readonly magic: number,
    private readonly version: number,
    private readonly corrupt: (message: string) => Error,
    private readonly disk: Disk = nodeDisk,
  ) {}

  /** @returns the body, or null when the file does not exist. @throws the `corrupt` error on a bad magic, version, size or checksum. */
  read(bodyBytesMin: number): Buffer | null {
    let buf: Buffer;
    try {
      buf = this.disk.readFileSync(this.path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
    if (buf.length < CHECKSUMMED_HEADER_BYTES + bodyBytesMin || buf.readUInt32BE(0) !== this.magic || buf[4] !== this.version) {
      throw this.corrupt(`${this.path}: bad magic, version or size (${buf.length} bytes)`);
    }
    const body = buf.subarray(CHECKSUMMED_HEADER_BYTES);
    if (crc32(body) !== buf.readUInt32BE(5)) throw this.corrupt(`${this.path}: checksum mismatch`);
    return body;
  }

  /** Durably replaces the file: write `<path>.tmp`, fsync, rename over `path`, fsync the directory (synchronous: these files are tiny and rare). */
  write(body: Buffer): void {
    const head = Buffer.alloc(CHECKSUMMED_HEADER_BYTES);
    head.writeUInt32BE(this.magic, 0);
    head[4] = this.version;
    head.writeUInt32BE(crc32(body), 5);
    const tmp = `${this.path}.tmp`;
    const f = this.disk.openSync(tmp, 'w');
    try {
      const data = Buffer.concat([head, body]);
      for (let done = 0; done < data.length; ) done += f.writeSync(data, done, data.length - done, done);
      f.syncSync();
    } finally {
      f.closeSync();
    }
    this.disk.renameSync(tmp, this.path);
    const d = this.disk.openSync(dirname(this.path), 'r');
    try {
      d.syncSync();
    } finally {
      d.closeSync();
    }
  }

  /**
   * Durably replaces the file with a body given in slices, for a body too large to build and write
   * in one synchronous step (the consensus lease-state file): each slice is written to
   * `<path>.tmp` at the next position as it comes (the caller's iterator runs between the awaited
   * writes, so the event loop turns), the CRC32 accumulated, the header written last; then fsync,
   * rename over `path`, directory fsync. A crash at any point leaves `path` as it was (old or new,
   * never a mix); the tmp file is garbage the next write overwrites. `cancelled()` is checked after
   * each slice and before the rename: true stops with `path` untouched.
   * @returns false when cancelled, true when `path` holds the new body. @throws what the disk throws
   */
  async writeSlices(slices: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, cancelled: () => boolean = () => false): Promise<boolean> {
    const tmp = `${this.path}.tmp`;
    const f = await this.disk.open(tmp, 'w');
    let crc = 0;
    try {
      let pos = CHECKSUMMED_HEADER_BYTES;
      for await (const slice of slices) {
        for (let done = 0; done < slice.length; ) done += (await f.write(slice, done, slice.length - done, pos + done)).bytesWritten;
        pos += slice.length;
        crc = crc32(slice, crc);
        if (cancelled()) return false;
      }
      const head = Buffer.alloc(CHECKSUMMED_HEADER_BYTES);
      head.writeUInt32BE(this.magic, 0);
      head[4] = this.version;
      head.writeUInt32BE(crc, 5);
      for (let done = 0; done < head.length; ) done += (await f.write(head, done, head.length - done, done)).bytesWritten;
      await f.sync();
    } finally {
      await f.close();
    }
    if (cancelled()) return false;
    await this.disk.rename(tmp, this.path);
    await fsyncDir(dirname(this.path), this.disk);
    return true;
  }
}
