/**
 * The disk as the log, the storage engine and the consensus state files see it: the handful of
 * file operations they call, injected so that the whole-cluster simulator (tools/sim) can run them
 * on a simulated disk (libs/world `SimDisk`: in memory, on virtual time, with faults). Production
 * passes nothing and gets `nodeDisk` (node:fs, no dependency).
 *
 * Contract (what node:fs gives and the simulated disk keeps): positions and lengths are bytes;
 * errors are `Error`s with a POSIX `code` (ENOENT, EEXIST, ENOTDIR, EISDIR, ENOTEMPTY, ENOSPC, EIO);
 * data written is durable only after `sync`/`datasync` of that file; a creation, rename or removal
 * is durable after `sync` of its directory (opened with flag 'r').
 */
import * as fs from 'node:fs';
import { promisify } from 'node:util';

/** What `stat` reports: size in bytes, and whether the path is a directory. */
export interface DiskStat {
  size: number;
  isDirectory(): boolean;
}

/**
 * How a file is opened (node:fs semantics): 'r' read (also a directory, for its fsync); 'r+' read
 * and write; 'w' / 'w+' create or truncate; 'wx' create, EEXIST if it exists; 'a' create, append.
 */
export type DiskOpenFlags = 'r' | 'r+' | 'w' | 'w+' | 'wx' | 'a';

/** An open file. `position` null or omitted: the file's current position (its end for 'a'). */
export interface DiskFile {
  read(buf: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  write(buf: Uint8Array, offset?: number, length?: number, position?: number | null): Promise<{ bytesWritten: number }>;
  writev(bufs: readonly Uint8Array[], position?: number | null): Promise<{ bytesWritten: number }>;
  /** Writes `data` at position 0 (a freshly opened file: the whole file). */
  writeFile(data: Uint8Array): Promise<void>;
  truncate(lengthBytes?: number): Promise<void>;
  /** Makes the file's data and metadata durable (fsync). */
  sync(): Promise<void>;
  /** Makes the file's data durable (fdatasync). */
  datasync(): Promise<void>;
  stat(): Promise<DiskStat>;
  close(): Promise<void>;
  /** Synchronous preads (the log's and the engine's read paths). @returns bytes read. */
  readSync(buf: Uint8Array, offset: number, length: number, position: number): number;
  writeSync(buf: Uint8Array, offset?: number, length?: number, position?: number | null): number;
  syncSync(): void;
  statSync(): DiskStat;
  closeSync(): void;
}

/** The file operations Cairn's storage code calls. Paths are absolute or relative to the process's cwd. */
export interface Disk {
  open(path: string, flags: DiskOpenFlags): Promise<DiskFile>;
  openSync(path: string, flags: DiskOpenFlags): DiskFile;
  readFile(path: string): Promise<Buffer>;
  readFileSync(path: string): Buffer;
  /** Names in a directory (not sorted). */
  readdir(path: string): Promise<string[]>;
  mkdir(path: string, opts?: { recursive?: boolean }): Promise<void>;
  mkdirSync(path: string, opts?: { recursive?: boolean }): void;
  /** `force`: no error when missing; `recursive`: a directory and everything in it. */
  rm(path: string, opts?: { recursive?: boolean; force?: boolean }): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  renameSync(from: string, to: string): void;
  /** A hard link `newPath` to the file at `existing`. */
  link(existing: string, newPath: string): Promise<void>;
  stat(path: string): Promise<DiskStat>;
  statSync(path: string): DiskStat;
}

const p = {
  read: promisify(fs.read),
  write: (fd: number, buf: Uint8Array, offset: number, length: number, position: number | null): Promise<number> =>
    new Promise((resolve, reject) => fs.write(fd, buf, offset, length, position, (e, n) => (e ? reject(e) : resolve(n)))),
  writev: (fd: number, bufs: readonly Uint8Array[], position: number | null): Promise<number> =>
    new Promise((resolve, reject) => fs.writev(fd, bufs, position, (e, n) => (e ? reject(e) : resolve(n)))),
  ftruncate: promisify(fs.ftruncate),
  fsync: promisify(fs.fsync),
  fdatasync: promisify(fs.fdatasync),
  fstat: promisify(fs.fstat),
  close: promisify(fs.close),
};

/** A node:fs file descriptor behind the DiskFile interface. */
class NodeDiskFile implements DiskFile {
  constructor(private readonly fd: number) {}
  async read(buf: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number }> {
    return { bytesRead: await p.read(this.fd, buf, offset, length, position).then((r) => r.bytesRead) };
  }
  async write(buf: Uint8Array, offset = 0, length = buf.length - offset, position: number | null = null): Promise<{ bytesWritten: number }> {
    return { bytesWritten: await p.write(this.fd, buf, offset, length, position) };
  }
  async writev(bufs: readonly Uint8Array[], position: number | null = null): Promise<{ bytesWritten: number }> {
    return { bytesWritten: await p.writev(this.fd, bufs, position) };
  }
  async writeFile(data: Uint8Array): Promise<void> {
    for (let done = 0; done < data.length; ) done += await p.write(this.fd, data, done, data.length - done, done);
  }
  truncate(lengthBytes = 0): Promise<void> {
    return p.ftruncate(this.fd, lengthBytes);
  }
  sync(): Promise<void> {
    return p.fsync(this.fd);
  }
  datasync(): Promise<void> {
    return p.fdatasync(this.fd);
  }
  stat(): Promise<DiskStat> {
    return p.fstat(this.fd);
  }
  close(): Promise<void> {
    return p.close(this.fd);
  }
  readSync(buf: Uint8Array, offset: number, length: number, position: number): number {
    return fs.readSync(this.fd, buf, offset, length, position);
  }
  writeSync(buf: Uint8Array, offset = 0, length = buf.length - offset, position: number | null = null): number {
    return fs.writeSync(this.fd, buf, offset, length, position);
  }
  syncSync(): void {
    fs.fsyncSync(this.fd);
  }
  statSync(): DiskStat {
    return fs.fstatSync(this.fd);
  }
  closeSync(): void {
    fs.closeSync(this.fd);
  }
}

const openAsync = promisify(fs.open);

/** The real disk (node:fs): what every process shell uses. */
export const nodeDisk: Disk = {
  open: async (path, flags) => new NodeDiskFile(await openAsync(path, flags)),
  openSync: (path, flags) => new NodeDiskFile(fs.openSync(path, flags)),
  readFile: (path) => fs.promises.readFile(path),
  readFileSync: (path) => fs.readFileSync(path),
  readdir: (path) => fs.promises.readdir(path),
  mkdir: async (path, opts) => {
    await fs.promises.mkdir(path, opts);
  },
  mkdirSync: (path, opts) => {
    fs.mkdirSync(path, opts);
  },
  rm: (path, opts) => fs.promises.rm(path, opts),
  rename: (from, to) => fs.promises.rename(from, to),
  renameSync: (from, to) => fs.renameSync(from, to),
  link: (existing, newPath) => fs.promises.link(existing, newPath),
  stat: (path) => fs.promises.stat(path),
  statSync: (path) => fs.statSync(path),
};
