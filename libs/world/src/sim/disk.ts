import * as nodePath from 'node:path';
import type { Disk, DiskFile, DiskOpenFlags, DiskStat } from '@cairn/log';
import type { Random } from '../random';
import type { Incarnation, SimScheduler } from './scheduler';

/** Disk faults of one simulated disk; rates are per operation, 0..1. Change them at any time. */
export interface DiskFaults {
  /** An fsync / fdatasync fails with EIO (the process must take its fatal path, as in production). */
  fsyncErrorRate: number;
  /** A write fails with ENOSPC. */
  enospcRate: number;
  /** Latency of an async operation, virtual ms (uniform in [min, max]; 0: resolves at once). */
  latencyMsMin: number;
  latencyMsMax: number;
  /** On a crash, the share of files whose unsynced writes are torn (a prefix survives, the last write cut) rather than all lost. */
  tornWriteRate: number;
}

export const DISK_FAULTS_NONE: DiskFaults = { fsyncErrorRate: 0, enospcRate: 0, latencyMsMin: 0, latencyMsMax: 0, tornWriteRate: 0 };

/** What the disk did, for the run summary. */
export interface DiskStats {
  writes: number;
  fsyncs: number;
  fsyncErrors: number;
  enospc: number;
  crashes: number;
  /** Unsynced writes undone by crashes (wholly or torn). */
  lostWrites: number;
  tornWrites: number;
}

/** An unsynced change and what it overwrote, to undo it on a crash. */
interface Undo {
  pos: number;
  /** Bytes at [pos, pos + old.length) before the change (only the part inside the old size). */
  old: Buffer;
  oldSize: number;
  /** Bytes written (0 for a truncate). */
  bytes: number;
}

class Inode {
  buf = Buffer.alloc(0);
  size = 0;
  undo: Undo[] = [];
  read(at: number, out: Uint8Array, offset: number, length: number): number {
    const n = Math.max(0, Math.min(length, this.size - at));
    if (n > 0) out.set(this.buf.subarray(at, at + n), offset);
    return n;
  }
  write(at: number, src: Uint8Array): void {
    const end = at + src.length;
    const oldEnd = Math.min(end, this.size);
    this.undo.push({ pos: at, old: Buffer.from(this.buf.subarray(Math.min(at, this.size), Math.max(oldEnd, Math.min(at, this.size)))), oldSize: this.size, bytes: src.length });
    this.grow(end);
    if (at > this.size) this.buf.fill(0, this.size, at);
    this.buf.set(src, at);
    this.size = Math.max(this.size, end);
  }
  truncate(len: number): void {
    this.undo.push({ pos: Math.min(len, this.size), old: Buffer.from(this.buf.subarray(Math.min(len, this.size), this.size)), oldSize: this.size, bytes: 0 });
    this.grow(len);
    if (len > this.size) this.buf.fill(0, this.size, len);
    this.size = len;
  }
  /** Crash: keeps the first `keep` unsynced changes, tears the next one at `tornBytes` (if a write), undoes the rest. */
  revert(keep: number, tornBytes: number): void {
    for (let i = this.undo.length - 1; i >= keep; i--) {
      const u = this.undo[i];
      const from = i === keep && u.bytes > 0 ? Math.min(tornBytes, u.old.length) : 0;
      this.buf.set(u.old.subarray(from), u.pos + from);
      this.size = i === keep && u.bytes > 0 && tornBytes > 0 ? Math.max(u.oldSize, Math.min(u.pos + tornBytes, u.pos + u.bytes)) : u.oldSize;
    }
    this.undo = [];
  }
  private grow(end: number): void {
    if (end <= this.buf.length) return;
    // Unzeroed: every byte past `size` is written or zero-filled (write, truncate) before it is read.
    const next = Buffer.allocUnsafe(Math.max(end, this.buf.length * 2, 4096));
    this.buf.copy(next, 0, 0, this.size);
    this.buf = next;
  }
}

function diskError(code: string, syscall: string, path: string): NodeJS.ErrnoException {
  const e = new Error(`${code}: simulated disk, ${syscall} '${path}'`) as NodeJS.ErrnoException;
  e.code = code;
  e.syscall = syscall;
  e.path = path;
  return e;
}

const fileStat = (size: number): DiskStat => ({ size, isDirectory: () => false });
const DIR_STAT: DiskStat = { size: 4096, isDirectory: () => true };

/**
 * One process's simulated disk (in memory, on virtual time): a namespace of directories and files
 * (inodes, so hard links and renames keep data), with the durability rules of a real one made
 * explicit: a file's data written since its last fsync is unsynced, and `crash()` loses it
 * (all of it, or torn: a prefix of the unsynced writes survives and the next one is cut). Names
 * (create, rename, unlink, mkdir) are durable at once — a simplification: real file systems need
 * a directory fsync, which the code under test does anyway.
 *
 * Faults (`faults`, drawn from the given Random so a seed replays): fsync EIO, write ENOSPC,
 * latency on virtual time. `view(incarnation)` is the `Disk` one process incarnation uses: its
 * async operations complete on the scheduler as that incarnation's events, so they never complete
 * after it crashed, and its synchronous calls throw EIO once it is dead.
 */
export class SimDisk {
  readonly faults: DiskFaults = { ...DISK_FAULTS_NONE };
  readonly stats: DiskStats = { writes: 0, fsyncs: 0, fsyncErrors: 0, enospc: 0, crashes: 0, lostWrites: 0, tornWrites: 0 };
  private readonly files = new Map<string, Inode>();
  private readonly dirs = new Set<string>(['/']);

  constructor(
    private readonly sched: SimScheduler,
    private readonly random: Random,
  ) {}

  /** The disk as incarnation `inc` sees it. */
  view(inc: Incarnation): Disk {
    return new SimDiskView(this, inc);
  }

  /** A crash of the process (power loss for its disk): unsynced data is lost or torn. */
  crash(): void {
    this.stats.crashes++;
    for (const ino of new Set(this.files.values())) {
      if (ino.undo.length === 0) continue;
      const torn = this.random.float() < this.faults.tornWriteRate;
      const keep = torn ? Math.floor(this.random.float() * ino.undo.length) : 0;
      const next = ino.undo[keep];
      const tornBytes = torn && next.bytes > 0 ? Math.floor(this.random.float() * next.bytes) : 0;
      this.stats.lostWrites += ino.undo.length - keep;
      if (torn) this.stats.tornWrites++;
      ino.revert(keep, tornBytes);
    }
  }

  // ---- used by SimDiskView ---------------------------------------------------------------------

  /** @returns the completion delay of one async operation, virtual ms. */
  latencyMs(): number {
    const { latencyMsMin: lo, latencyMsMax: hi } = this.faults;
    return hi <= 0 ? 0 : lo + Math.floor(this.random.float() * (hi - lo + 1));
  }

  schedule(inc: Incarnation, ms: number, fn: () => void): void {
    this.sched.schedule(this.sched.nowMs + ms, fn, inc);
  }

  fault(rate: number): boolean {
    return rate > 0 && this.random.float() < rate;
  }

  inode(path: string, syscall: string): Inode {
    const ino = this.files.get(path);
    if (!ino) throw diskError(this.dirs.has(path) ? 'EISDIR' : 'ENOENT', syscall, path);
    return ino;
  }

  openInode(path: string, flags: DiskOpenFlags): Inode | null {
    if (flags === 'r' && this.dirs.has(path)) return null;
    this.parentMustExist(path, 'open');
    let ino = this.files.get(path);
    if (ino && flags === 'wx') throw diskError('EEXIST', 'open', path);
    if (!ino) {
      if (flags === 'r' || flags === 'r+') throw diskError('ENOENT', 'open', path);
      if (this.dirs.has(path)) throw diskError('EISDIR', 'open', path);
      this.files.set(path, (ino = new Inode()));
    } else if (flags === 'w' || flags === 'w+') ino.truncate(0);
    return ino;
  }

  write(ino: Inode, path: string, at: number, src: Uint8Array): number {
    if (this.fault(this.faults.enospcRate)) {
      this.stats.enospc++;
      throw diskError('ENOSPC', 'write', path);
    }
    this.stats.writes++;
    ino.write(at, src);
    return src.length;
  }

  fsync(ino: Inode | null, path: string): void {
    if (this.fault(this.faults.fsyncErrorRate)) {
      this.stats.fsyncErrors++;
      throw diskError('EIO', 'fsync', path);
    }
    this.stats.fsyncs++;
    if (ino) ino.undo = [];
  }

  readdir(path: string): string[] {
    if (!this.dirs.has(path)) throw diskError(this.files.has(path) ? 'ENOTDIR' : 'ENOENT', 'scandir', path);
    const out: string[] = [];
    for (const k of [...this.files.keys(), ...this.dirs]) if (k !== path && nodePath.dirname(k) === path) out.push(nodePath.basename(k));
    return out;
  }

  mkdir(path: string, recursive: boolean): void {
    if (this.dirs.has(path)) {
      if (recursive) return;
      throw diskError('EEXIST', 'mkdir', path);
    }
    if (this.files.has(path)) throw diskError('EEXIST', 'mkdir', path);
    const parent = nodePath.dirname(path);
    if (!this.dirs.has(parent)) {
      if (!recursive) throw diskError('ENOENT', 'mkdir', path);
      this.mkdir(parent, true);
    }
    this.dirs.add(path);
  }

  rm(path: string, recursive: boolean, force: boolean): void {
    if (this.files.delete(path)) return;
    if (!this.dirs.has(path)) {
      if (force) return;
      throw diskError('ENOENT', 'rm', path);
    }
    const inside = [...this.files.keys(), ...this.dirs].filter((k) => k.startsWith(path + '/'));
    if (inside.length && !recursive) throw diskError('ENOTEMPTY', 'rm', path);
    for (const k of inside) {
      this.files.delete(k);
      this.dirs.delete(k);
    }
    this.dirs.delete(path);
  }

  rename(from: string, to: string): void {
    this.parentMustExist(to, 'rename');
    const ino = this.files.get(from);
    if (ino) {
      if (this.dirs.has(to)) throw diskError('EISDIR', 'rename', to);
      this.files.delete(from);
      this.files.set(to, ino);
      return;
    }
    if (!this.dirs.has(from)) throw diskError('ENOENT', 'rename', from);
    if (this.files.has(to)) throw diskError('ENOTDIR', 'rename', to);
    if ([...this.files.keys(), ...this.dirs].some((k) => k.startsWith(to + '/'))) throw diskError('ENOTEMPTY', 'rename', to);
    this.dirs.delete(to);
    const moves = [...this.files.entries()].filter(([k]) => k.startsWith(from + '/'));
    const dirMoves = [...this.dirs].filter((k) => k === from || k.startsWith(from + '/'));
    for (const [k] of moves) this.files.delete(k);
    for (const k of dirMoves) this.dirs.delete(k);
    for (const [k, v] of moves) this.files.set(to + k.slice(from.length), v);
    for (const k of dirMoves) this.dirs.add(to + k.slice(from.length));
  }

  link(existing: string, newPath: string): void {
    const ino = this.inode(existing, 'link');
    this.parentMustExist(newPath, 'link');
    if (this.files.has(newPath) || this.dirs.has(newPath)) throw diskError('EEXIST', 'link', newPath);
    this.files.set(newPath, ino);
  }

  stat(path: string): DiskStat {
    if (this.dirs.has(path)) return DIR_STAT;
    return fileStat(this.inode(path, 'stat').size);
  }

  private parentMustExist(path: string, syscall: string): void {
    if (!this.dirs.has(nodePath.dirname(path))) throw diskError('ENOENT', syscall, path);
  }
}

/** An open file of a SimDiskView. Its position moves with reads and writes at position null (and is the end for 'a'). */
class SimFile implements DiskFile {
  private pos = 0;
  private closed = false;
  constructor(
    private readonly v: SimDiskView,
    private readonly ino: Inode | null,
    private readonly path: string,
    private readonly append: boolean,
  ) {}
  private file(syscall: string): Inode {
    this.v.alive(syscall, this.path);
    if (this.closed) throw diskError('EBADF', syscall, this.path);
    if (!this.ino) throw diskError('EISDIR', syscall, this.path);
    return this.ino;
  }
  readSync(buf: Uint8Array, offset: number, length: number, position: number): number {
    return this.file('read').read(position, buf, offset, length);
  }
  writeSync(buf: Uint8Array, offset = 0, length = buf.length - offset, position: number | null = null): number {
    const ino = this.file('write');
    const at = this.append ? ino.size : (position ?? this.pos);
    const n = this.v.disk.write(ino, this.path, at, buf.subarray(offset, offset + length));
    if (position === null || this.append) this.pos = at + n;
    return n;
  }
  syncSync(): void {
    this.v.alive('fsync', this.path);
    this.v.disk.fsync(this.ino, this.path);
  }
  statSync(): DiskStat {
    return this.ino ? fileStat(this.file('fstat').size) : DIR_STAT;
  }
  closeSync(): void {
    this.closed = true;
  }
  read(buf: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number }> {
    return this.v.async(() => ({ bytesRead: this.readSync(buf, offset, length, position) }));
  }
  write(buf: Uint8Array, offset?: number, length?: number, position?: number | null): Promise<{ bytesWritten: number }> {
    return this.v.async(() => ({ bytesWritten: this.writeSync(buf, offset, length, position ?? null) }));
  }
  writev(bufs: readonly Uint8Array[], position?: number | null): Promise<{ bytesWritten: number }> {
    return this.v.async(() => ({ bytesWritten: this.writeSync(Buffer.concat(bufs), 0, undefined, position ?? null) }));
  }
  writeFile(data: Uint8Array): Promise<void> {
    return this.v.async(() => void this.writeSync(data, 0, data.length, 0));
  }
  truncate(lengthBytes = 0): Promise<void> {
    return this.v.async(() => this.file('ftruncate').truncate(lengthBytes));
  }
  sync(): Promise<void> {
    return this.v.async(() => this.syncSync());
  }
  datasync(): Promise<void> {
    return this.v.async(() => this.syncSync());
  }
  stat(): Promise<DiskStat> {
    return this.v.async(() => this.statSync());
  }
  close(): Promise<void> {
    return this.v.async(() => this.closeSync());
  }
}

/** The Disk of one incarnation: operations run at call time; async ones resolve after the drawn latency, as events of the incarnation. */
class SimDiskView implements Disk {
  constructor(
    readonly disk: SimDisk,
    private readonly inc: Incarnation,
  ) {}

  alive(syscall: string, path: string): void {
    if (!this.inc.alive) throw diskError('EIO', syscall, `${path} (process crashed)`);
  }

  /** Runs `op` now; its result arrives after the latency (never, if the incarnation dies first). */
  async<T>(op: () => T): Promise<T> {
    let out: { ok: true; v: T } | { ok: false; e: unknown };
    try {
      out = { ok: true, v: op() };
    } catch (e) {
      out = { ok: false, e };
    }
    const ms = this.disk.latencyMs();
    const settle = (resolve: (v: T) => void, reject: (e: unknown) => void): void => (out.ok ? resolve(out.v) : reject(out.e));
    if (ms === 0 && this.inc.alive) return new Promise(settle);
    return new Promise((resolve, reject) => this.disk.schedule(this.inc, ms, () => settle(resolve, reject)));
  }

  private abs(path: string): string {
    return nodePath.resolve('/', path);
  }

  openSync(path: string, flags: DiskOpenFlags): DiskFile {
    const p = this.abs(path);
    this.alive('open', p);
    return new SimFile(this, this.disk.openInode(p, flags), p, flags === 'a');
  }
  open(path: string, flags: DiskOpenFlags): Promise<DiskFile> {
    return this.async(() => this.openSync(path, flags));
  }
  readFileSync(path: string): Buffer {
    const p = this.abs(path);
    this.alive('read', p);
    const ino = this.disk.inode(p, 'open');
    return Buffer.from(ino.buf.subarray(0, ino.size));
  }
  readFile(path: string): Promise<Buffer> {
    return this.async(() => this.readFileSync(path));
  }
  readdir(path: string): Promise<string[]> {
    return this.async(() => (this.alive('scandir', path), this.disk.readdir(this.abs(path))));
  }
  mkdirSync(path: string, opts?: { recursive?: boolean }): void {
    this.alive('mkdir', path);
    this.disk.mkdir(this.abs(path), opts?.recursive ?? false);
  }
  mkdir(path: string, opts?: { recursive?: boolean }): Promise<void> {
    return this.async(() => this.mkdirSync(path, opts));
  }
  rm(path: string, opts?: { recursive?: boolean; force?: boolean }): Promise<void> {
    return this.async(() => (this.alive('rm', path), this.disk.rm(this.abs(path), opts?.recursive ?? false, opts?.force ?? false)));
  }
  renameSync(from: string, to: string): void {
    this.alive('rename', from);
    this.disk.rename(this.abs(from), this.abs(to));
  }
  rename(from: string, to: string): Promise<void> {
    return this.async(() => this.renameSync(from, to));
  }
  link(existing: string, newPath: string): Promise<void> {
    return this.async(() => (this.alive('link', existing), this.disk.link(this.abs(existing), this.abs(newPath))));
  }
  statSync(path: string): DiskStat {
    this.alive('stat', path);
    return this.disk.stat(this.abs(path));
  }
  stat(path: string): Promise<DiskStat> {
    return this.async(() => this.statSync(path));
  }
}
