/**
 * Engine snapshots on disk, their transfer in chunks, and their installation
 * (docs/engine.md "Snapshots"; byte layouts in `snapshot-format.ts`).
 *
 * Layout inside an engine directory `D`:
 * ```
 * D/snapshots/<applied index, 20 digits>/          a committed snapshot: hard links to the
 *     <engine files…>, snapshot.manifest           immutable files, a copy of the active file's prefix
 * D/snapshots/<applied index>.tmp/                 a snapshot being written (deleted at open)
 * D/snapshot-install.staging/                      an install receiving chunks (deleted at open)
 * D/snapshot-install.ready/                        a verified install past its commit point
 *                                                  (open finishes moving it into D)
 * ```
 * Pure: Node built-ins and `@cairn/log` only; transport is the caller's (a storage node sends the
 * manifest bytes and `encodeSnapshotChunk` messages over NATS request/reply).
 */
import * as nodePath from 'node:path';
import * as zlib from 'node:zlib';
import { fsyncDir, nodeDisk, writeNewFileDurable, type Clock, type Disk, type DiskFile } from '@cairn/log';
import { SnapshotCorruptionError, SnapshotNotFoundError, SnapshotSequenceError, SnapshotTargetOpenError } from './errors';
import {
  SNAPSHOT_MANIFEST_FILE_NAME,
  decodeSnapshotChunk,
  decodeSnapshotManifest,
  isSnapshotFileName,
  type SnapshotChunk,
  type SnapshotManifest,
} from './snapshot-format';

export const SNAPSHOTS_DIR_NAME = 'snapshots';
export const INSTALL_STAGING_DIR_NAME = 'snapshot-install.staging';
export const INSTALL_READY_DIR_NAME = 'snapshot-install.ready';
const SNAPSHOT_DIR_RE = /^\d{20}$/;
/** Engine files and their `.tmp` leftovers: what an install replaces (nothing else in the directory is touched). */
const ENGINE_TMP_RE = /^(\d{20}\.seg|merged-\d{20}\.(data|hint)|merge\.manifest)\.tmp$/;
/** Hint files of log data files (and their `.tmp`): never in a snapshot; the old store's describe files that are gone. */
const LOG_HINT_RE = /^\d{20}\.hint(\.tmp)?$/;
const MiB = 1024 * 1024;

/** Directories of this process that a `BitcaskEngine` has open, with how many engines (an install refuses to replace them). */
export const openEngineDirs = new Map<string, number>();

/** A committed snapshot on disk: its manifest plus where it is. */
export interface EngineSnapshot extends SnapshotManifest {
  /** Absolute path of the snapshot directory (`<engine dir>/snapshots/<applied index, 20 digits>`). */
  dir: string;
  /** The encoded manifest (`snapshot.manifest`): the first message of a transfer. */
  manifestBytes: Buffer;
  /** Sum of the files' sizes. */
  sizeBytes: number;
}

/** Test hook steps of an install, in order (`moved` once per file). A throw there simulates a crash. */
export type InstallStep = 'chunk' | 'staged' | 'ready' | 'moved' | 'replaced';

export interface SnapshotInstallerOptions {
  /** Largest chunk accepted (`SnapshotSequenceError` above); default 1 MiB, the reader's default. */
  chunkBytesMax?: number;
  /** Test hook, called at each `InstallStep`. */
  hook?: (step: InstallStep) => void | Promise<void>;
  /** The file operations (default `nodeDisk`). */
  disk?: Disk;
  /** The report's `durationMs` is read from it (process shells: `realClock` of @cairn/world). */
  clock: Clock;
}

/** What an install did. */
export interface SnapshotInstallReport {
  appliedIndex: number;
  term: number;
  files: number;
  bytes: number;
  /** Engine files of the replaced store that were deleted (files of the same name were replaced). */
  replacedFiles: string[];
  durationMs: number;
}

export function snapshotDirName(appliedIndex: number): string {
  return String(appliedIndex).padStart(20, '0');
}

const isEnoent = (err: unknown): boolean => (err as NodeJS.ErrnoException).code === 'ENOENT';

/**
 * Reads `path` sequentially in `chunkBytes` reads and returns its size and CRC32; `check` runs
 * between reads (it throws to abort, e.g. when the engine closes) and may yield.
 */
export async function fileCrc32(path: string, chunkBytes: number, check?: () => void | Promise<void>, disk: Disk = nodeDisk): Promise<{ sizeBytes: number; crc32: number }> {
  const fh = await disk.open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(chunkBytes);
    let crc = 0;
    let size = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, chunkBytes, size);
      if (bytesRead === 0) break;
      crc = zlib.crc32(buf.subarray(0, bytesRead), crc);
      size += bytesRead;
      if (check) await check();
    }
    return { sizeBytes: size, crc32: crc };
  } finally {
    await fh.close();
  }
}

/** Copies bytes `0 .. sizeBytes` of `from` into a new file `to` and fsyncs it. */
export async function copyPrefix(from: string, to: string, sizeBytes: number, chunkBytes: number, disk: Disk = nodeDisk): Promise<void> {
  const src = await disk.open(from, 'r');
  let dst: DiskFile | null = null;
  try {
    dst = await disk.open(to, 'wx');
    const buf = Buffer.allocUnsafe(Math.min(chunkBytes, Math.max(1, sizeBytes)));
    for (let at = 0; at < sizeBytes; ) {
      const { bytesRead } = await src.read(buf, 0, Math.min(buf.length, sizeBytes - at), at);
      if (bytesRead === 0) throw new Error(`SnapshotSourceComplete: ${from} ends at ${at}, before the ${sizeBytes} bytes applied`);
      await dst.write(buf, 0, bytesRead, at);
      at += bytesRead;
    }
    await dst.sync();
  } finally {
    await src.close();
    await dst?.close();
  }
}

/** Reads the committed snapshot in `dir` (its manifest decoded). @throws SnapshotCorruptionError, or an fs error. */
export async function readSnapshot(dir: string, disk: Disk = nodeDisk): Promise<EngineSnapshot> {
  const manifestBytes = await disk.readFile(nodePath.join(dir, SNAPSHOT_MANIFEST_FILE_NAME));
  const m = decodeSnapshotManifest(manifestBytes);
  if (nodePath.basename(dir) !== snapshotDirName(m.appliedIndex)) {
    throw new SnapshotCorruptionError(SNAPSHOT_MANIFEST_FILE_NAME, 12, `applied index ${m.appliedIndex} but the directory is ${nodePath.basename(dir)}`);
  }
  return { ...m, dir, manifestBytes, sizeBytes: m.files.reduce((n, f) => n + f.sizeBytes, 0) };
}

/**
 * Re-reads every file of a snapshot and checks its size and CRC32 against the manifest.
 * @throws SnapshotCorruptionError naming the first bad file.
 */
export async function verifySnapshot(s: EngineSnapshot, chunkBytes = MiB, disk: Disk = nodeDisk): Promise<void> {
  for (const f of s.files) {
    let got: { sizeBytes: number; crc32: number };
    try {
      got = await fileCrc32(nodePath.join(s.dir, f.name), chunkBytes, undefined, disk);
    } catch (err) {
      if (isEnoent(err)) throw new SnapshotCorruptionError(f.name, null, 'missing');
      throw err;
    }
    if (got.sizeBytes !== f.sizeBytes) throw new SnapshotCorruptionError(f.name, Math.min(got.sizeBytes, f.sizeBytes), `${got.sizeBytes} bytes, the manifest says ${f.sizeBytes}`);
    if (got.crc32 !== f.crc32) throw new SnapshotCorruptionError(f.name, null, `CRC32 ${hex(got.crc32)}, the manifest says ${hex(f.crc32)}`);
  }
}

const hex = (n: number): string => n.toString(16).padStart(8, '0');

/**
 * Open-time recovery of snapshot state in an engine directory, before the engine reads its files:
 * finishes an install past its commit point (`snapshot-install.ready`), discards an unfinished one
 * (`snapshot-install.staging`) and half-written snapshots (`snapshots/*.tmp`), then lists the
 * committed snapshots oldest first. A committed snapshot whose manifest does not decode is
 * deleted with a warning (it is a copy: the store itself is intact).
 */
export async function recoverSnapshots(engineDir: string, clock: Clock, disk: Disk = nodeDisk): Promise<{ removed: string[]; warnings: string[]; snapshots: EngineSnapshot[]; installed: SnapshotInstallReport | null }> {
  const removed: string[] = [];
  const warnings: string[] = [];
  let installed: SnapshotInstallReport | null = null;
  if (await exists(nodePath.join(engineDir, INSTALL_READY_DIR_NAME), disk)) installed = await rollForwardInstall(engineDir, clock, clock.nowMs(), undefined, disk);
  if (await exists(nodePath.join(engineDir, INSTALL_STAGING_DIR_NAME), disk)) {
    await disk.rm(nodePath.join(engineDir, INSTALL_STAGING_DIR_NAME), { recursive: true, force: true });
    removed.push(INSTALL_STAGING_DIR_NAME);
  }
  const snapshotsDir = nodePath.join(engineDir, SNAPSHOTS_DIR_NAME);
  const snapshots: EngineSnapshot[] = [];
  let names: string[] = [];
  try {
    names = await disk.readdir(snapshotsDir);
  } catch (err) {
    if (!isEnoent(err)) throw err;
  }
  for (const name of names.sort()) {
    const path = nodePath.join(snapshotsDir, name);
    if (SNAPSHOT_DIR_RE.test(name)) {
      try {
        snapshots.push(await readSnapshot(path, disk));
        continue;
      } catch (err) {
        warnings.push(`snapshot ${path} unusable (${(err as Error).message}): deleted`);
      }
    }
    await disk.rm(path, { recursive: true, force: true });
    removed.push(nodePath.join(SNAPSHOTS_DIR_NAME, name));
  }
  if (removed.length) await fsyncDir(engineDir, disk);
  if (names.length !== snapshots.length) await fsyncDir(snapshotsDir, disk);
  return { removed, warnings, snapshots, installed };
}

async function exists(path: string, disk: Disk): Promise<boolean> {
  try {
    await disk.stat(path);
    return true;
  } catch (err) {
    if (isEnoent(err)) return false;
    throw err;
  }
}

/**
 * Moves a verified install (`snapshot-install.ready`, past the commit point) into the engine
 * directory: renames each listed file over its namesake, deletes every other engine file of the
 * old store (and its snapshots), then removes the ready directory. Idempotent: a crash anywhere
 * in here is finished by the next call (open calls it), so open sees the new store only.
 */
async function rollForwardInstall(dir: string, clock: Clock, startedAtMs: number, hook: ((step: InstallStep) => void | Promise<void>) | undefined, disk: Disk): Promise<SnapshotInstallReport> {
  const ready = nodePath.join(dir, INSTALL_READY_DIR_NAME);
  const m = decodeSnapshotManifest(await disk.readFile(nodePath.join(ready, SNAPSHOT_MANIFEST_FILE_NAME)));
  const names = new Set(m.files.map((f) => f.name));
  for (const f of m.files) {
    try {
      await disk.rename(nodePath.join(ready, f.name), nodePath.join(dir, f.name));
    } catch (err) {
      if (!isEnoent(err)) throw err;
      // Moved before a crash: it must be there, whole.
      const st = await disk.stat(nodePath.join(dir, f.name)).catch(() => null);
      if (st?.size !== f.sizeBytes) throw new SnapshotCorruptionError(f.name, null, `missing from ${ready} and not installed in ${dir}`);
    }
    if (hook) await hook('moved');
  }
  await fsyncDir(dir, disk);
  const replacedFiles: string[] = [];
  for (const name of await disk.readdir(dir)) {
    if ((isSnapshotFileName(name) && !names.has(name)) || ENGINE_TMP_RE.test(name) || LOG_HINT_RE.test(name)) {
      await disk.rm(nodePath.join(dir, name), { force: true });
      replacedFiles.push(name);
    }
  }
  // The old store's snapshots describe a store that is gone.
  await disk.rm(nodePath.join(dir, SNAPSHOTS_DIR_NAME), { recursive: true, force: true });
  await fsyncDir(dir, disk);
  if (hook) await hook('replaced');
  await disk.rm(ready, { recursive: true, force: true });
  await fsyncDir(dir, disk);
  return { appliedIndex: m.appliedIndex, term: m.term, files: m.files.length, bytes: m.files.reduce((n, f) => n + f.sizeBytes, 0), replacedFiles, durationMs: clock.nowMs() - startedAtMs };
}

/**
 * Serves one committed snapshot in chunks of at most `chunkBytesMax` bytes (default 1 MiB), files
 * in manifest order, each file at least one chunk, `last` on the final one. Get one from
 * `BitcaskEngine.openSnapshotReader`; the snapshot is kept on disk (retention skips it) until
 * `close()`.
 */
export class SnapshotReader {
  private closed = false;

  constructor(
    readonly snapshot: EngineSnapshot,
    readonly chunkBytesMax: number,
    private readonly onClose: () => Promise<void> = () => Promise.resolve(),
    private readonly disk: Disk = nodeDisk,
  ) {
    if (!Number.isSafeInteger(chunkBytesMax) || chunkBytesMax <= 0) throw new RangeError(`chunkBytesMax must be a positive integer, got ${chunkBytesMax}`);
  }

  /** The encoded manifest: send it first; `SnapshotInstaller.begin` takes it. */
  get manifestBytes(): Buffer {
    return this.snapshot.manifestBytes;
  }

  /**
   * The chunk of `file` starting at `offset` (random access, for a stateless request/reply server:
   * the receiver asks for `installer.next()`). Not CRC-checked here: the installer checks.
   * @throws SnapshotSequenceError for a file not in the manifest or an offset that is not inside
   *   it; SnapshotNotFoundError when the snapshot's files are gone.
   */
  async readChunk(file: string, offset: number): Promise<SnapshotChunk> {
    if (this.closed) throw new Error('SnapshotReaderOpen: readChunk after close');
    const files = this.snapshot.files;
    const i = files.findIndex((f) => f.name === file);
    if (i < 0) throw new SnapshotSequenceError(file, offset, `not a file of snapshot ${this.snapshot.appliedIndex}`);
    const f = files[i];
    if (!Number.isSafeInteger(offset) || offset < 0 || (offset >= f.sizeBytes && !(offset === 0 && f.sizeBytes === 0))) {
      throw new SnapshotSequenceError(file, offset, `offset outside the file's ${f.sizeBytes} bytes`);
    }
    const n = Math.min(this.chunkBytesMax, f.sizeBytes - offset);
    const bytes = Buffer.allocUnsafe(n);
    let fh: DiskFile;
    try {
      fh = await this.disk.open(nodePath.join(this.snapshot.dir, f.name), 'r');
    } catch (err) {
      if (isEnoent(err)) throw new SnapshotNotFoundError(this.snapshot.appliedIndex);
      throw err;
    }
    try {
      for (let at = 0; at < n; ) {
        const { bytesRead } = await fh.read(bytes, at, n - at, offset + at);
        if (bytesRead === 0) throw new SnapshotCorruptionError(f.name, offset + at, `file ends before the ${f.sizeBytes} bytes of the manifest`);
        at += bytesRead;
      }
    } finally {
      await fh.close();
    }
    return { appliedIndex: this.snapshot.appliedIndex, file: f.name, offset, bytes, last: i === files.length - 1 && offset + n === f.sizeBytes };
  }

  /**
   * Every chunk in order. Each file's CRC32 is checked as it is read, so a sender never finishes
   * streaming a file it can tell is damaged.
   * @throws SnapshotCorruptionError naming the file whose CRC32 or size does not match.
   */
  async *chunks(): AsyncGenerator<SnapshotChunk> {
    for (const f of this.snapshot.files) {
      let crc = 0;
      let offset = 0;
      do {
        const chunk = await this.readChunk(f.name, offset);
        crc = zlib.crc32(chunk.bytes, crc);
        offset += chunk.bytes.length;
        if (offset === f.sizeBytes && crc !== f.crc32) throw new SnapshotCorruptionError(f.name, null, `CRC32 ${hex(crc)}, the manifest says ${hex(f.crc32)}`);
        yield chunk;
      } while (offset < f.sizeBytes);
    }
  }

  /** Releases the snapshot; resolves once retention deleted it, if it is now beyond `snapshotsRetainedMax`. Idempotent. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    return this.onClose();
  }
}

/**
 * Receives a snapshot (manifest, then its chunks in order) into `<dir>/snapshot-install.staging`,
 * checks every chunk's place and every file's size and CRC32 against the manifest, and on
 * `finish()` atomically replaces the engine files in `dir` with the snapshot's (nothing else in
 * `dir` is touched). After a crash, the next `BitcaskEngine.open(dir)` either discards the staging
 * directory (before the commit point: the old store, unchanged) or completes the replacement
 * (after it: exactly the snapshot's store). Installs do not resume: `begin` again restarts from
 * scratch. Any error discards the staging directory; the store in `dir` is untouched until
 * `finish()` commits.
 */
export class SnapshotInstaller {
  private fileIndex = 0;
  private offset = 0;
  private crc = 0;
  private fh: DiskFile | null = null;
  private failed: Error | null = null;
  private finished = false;
  private readonly startedAtMs: number;

  private constructor(
    readonly dir: string,
    readonly manifest: SnapshotManifest,
    private readonly staging: string,
    private readonly opts: Required<Omit<SnapshotInstallerOptions, 'hook'>> & Pick<SnapshotInstallerOptions, 'hook'>,
  ) {
    this.startedAtMs = opts.clock.nowMs();
  }

  /**
   * Decodes the manifest (before touching anything) and starts a fresh staging directory in
   * `dir` (created if missing), deleting a previous unfinished install's.
   * @throws SnapshotCorruptionError for a bad manifest.
   */
  static async begin(dir: string, manifestBytes: Uint8Array, options: SnapshotInstallerOptions): Promise<SnapshotInstaller> {
    const manifest = decodeSnapshotManifest(manifestBytes);
    const chunkBytesMax = options.chunkBytesMax ?? MiB;
    if (!Number.isSafeInteger(chunkBytesMax) || chunkBytesMax <= 0) throw new RangeError(`chunkBytesMax must be a positive integer, got ${options.chunkBytesMax}`);
    const abs = nodePath.resolve(dir);
    const staging = nodePath.join(abs, INSTALL_STAGING_DIR_NAME);
    const disk = options.disk ?? nodeDisk;
    await disk.mkdir(abs, { recursive: true });
    await disk.rm(staging, { recursive: true, force: true });
    await disk.mkdir(staging);
    await writeNewFileDurable(nodePath.join(staging, SNAPSHOT_MANIFEST_FILE_NAME), manifestBytes, disk);
    const installer = new SnapshotInstaller(abs, manifest, staging, { chunkBytesMax, hook: options.hook, disk, clock: options.clock });
    await installer.openFile();
    return installer;
  }

  /** The chunk needed next (`{ file, offset }`), or null when every chunk has arrived. */
  next(): { appliedIndex: number; file: string; offset: number } | null {
    const f = this.manifest.files[this.fileIndex];
    return f && !this.failed ? { appliedIndex: this.manifest.appliedIndex, file: f.name, offset: this.offset } : null;
  }

  /** Bytes received so far / in total (progress). */
  progress(): { bytes: number; bytesTotal: number } {
    let bytes = this.offset;
    for (let i = 0; i < this.fileIndex; i++) bytes += this.manifest.files[i].sizeBytes;
    return { bytes, bytesTotal: this.manifest.files.reduce((n, f) => n + f.sizeBytes, 0) };
  }

  /**
   * Writes the next chunk (a decoded `SnapshotChunk`, or a chunk message as received). When it
   * completes a file, the file is fsynced and its CRC32 checked.
   * @throws SnapshotSequenceError (not the chunk `next()` names, above `chunkBytesMax`, `last`
   *   wrong), SnapshotCorruptionError (a bad chunk message, bytes past the file's size, a file
   *   whose CRC32 does not match); after any error the install is dead and its staging deleted.
   */
  async write(chunk: SnapshotChunk | Uint8Array): Promise<void> {
    if (this.failed) throw this.failed;
    try {
      const c = chunk instanceof Uint8Array ? decodeSnapshotChunk(chunk) : chunk;
      const files = this.manifest.files;
      const f = files[this.fileIndex];
      if (!f || this.finished) throw new SnapshotSequenceError(c.file, c.offset, 'chunk after the last one');
      if (c.appliedIndex !== this.manifest.appliedIndex) throw new SnapshotSequenceError(c.file, c.offset, `chunk of snapshot ${c.appliedIndex}, installing ${this.manifest.appliedIndex}`);
      if (c.file !== f.name || c.offset !== this.offset) throw new SnapshotSequenceError(c.file, c.offset, `expected ${f.name} at byte offset ${this.offset}`);
      if (c.bytes.length > this.opts.chunkBytesMax) throw new SnapshotSequenceError(c.file, c.offset, `chunk of ${c.bytes.length} bytes above chunkBytesMax ${this.opts.chunkBytesMax}`);
      if (c.offset + c.bytes.length > f.sizeBytes) throw new SnapshotCorruptionError(f.name, f.sizeBytes, `chunk runs past the file's ${f.sizeBytes} bytes`);
      if (c.bytes.length === 0 && f.sizeBytes > 0) throw new SnapshotSequenceError(c.file, c.offset, 'empty chunk');
      const completes = c.offset + c.bytes.length === f.sizeBytes;
      const isLast = completes && this.fileIndex === files.length - 1;
      if (c.last !== isLast) throw new SnapshotSequenceError(c.file, c.offset, c.last ? 'marked last but more follows' : 'the final chunk is not marked last');
      const fh = this.fh!;
      for (let at = 0; at < c.bytes.length; ) {
        const { bytesWritten } = await fh.write(c.bytes, at, c.bytes.length - at, c.offset + at);
        at += bytesWritten;
      }
      this.crc = zlib.crc32(c.bytes, this.crc);
      this.offset += c.bytes.length;
      if (completes) {
        if (this.crc !== f.crc32) throw new SnapshotCorruptionError(f.name, null, `CRC32 ${hex(this.crc)}, the manifest says ${hex(f.crc32)}`);
        await fh.sync();
        await fh.close();
        this.fh = null;
        this.fileIndex++;
        this.offset = 0;
        this.crc = 0;
        if (this.fileIndex < files.length) await this.openFile();
      }
      if (this.opts.hook) await this.opts.hook('chunk');
    } catch (err) {
      await this.fail(err);
      throw err;
    }
  }

  /**
   * Commits the install: fsyncs the staging directory, renames it to `snapshot-install.ready`
   * (the commit point), fsyncs `dir`, then moves the files into place, deletes the old store's
   * other engine files and snapshots. Open an engine on `dir` afterwards: its `appliedIndex()` is
   * the snapshot's.
   * @throws SnapshotSequenceError before the last chunk; SnapshotTargetOpenError when an engine of
   *   this process has `dir` open (nothing changed; the install can still finish after close).
   */
  async finish(): Promise<SnapshotInstallReport> {
    if (this.failed) throw this.failed;
    const pending = this.next();
    if (pending) throw new SnapshotSequenceError(pending.file, pending.offset, 'finish() before the last chunk');
    if (openEngineDirs.has(this.dir)) throw new SnapshotTargetOpenError(this.dir);
    if (this.finished) throw new Error('SnapshotInstallOnce: finish() called twice');
    this.finished = true;
    try {
      await fsyncDir(this.staging, this.opts.disk);
      if (this.opts.hook) await this.opts.hook('staged');
      const ready = nodePath.join(this.dir, INSTALL_READY_DIR_NAME);
      await this.opts.disk.rm(ready, { recursive: true, force: true });
      await this.opts.disk.rename(this.staging, ready);
      await fsyncDir(this.dir, this.opts.disk);
    } catch (err) {
      await this.fail(err);
      throw err;
    }
    if (this.opts.hook) await this.opts.hook('ready');
    // Past the commit point: a failure from here on is finished by the next open.
    return rollForwardInstall(this.dir, this.opts.clock, this.startedAtMs, this.opts.hook, this.opts.disk);
  }

  /** Abandons the install and deletes its staging directory; the store in `dir` is unchanged. */
  async abort(): Promise<void> {
    if (this.finished && !this.failed) return;
    await this.fail(new Error('snapshot install aborted'));
  }

  private async openFile(): Promise<void> {
    const f = this.manifest.files[this.fileIndex];
    this.fh = await this.opts.disk.open(nodePath.join(this.staging, f.name), 'wx');
    if (f.sizeBytes === 0) {
      // An empty file has no bytes to wait for: it completes at once (its CRC32 is 0).
      if (f.crc32 !== 0) throw new SnapshotCorruptionError(f.name, null, `CRC32 0, the manifest says ${hex(f.crc32)}`);
    }
  }

  private async fail(err: unknown): Promise<void> {
    if (!this.failed) this.failed = err instanceof Error ? err : new Error(String(err));
    await this.fh?.close().catch(() => undefined);
    this.fh = null;
    await this.opts.disk.rm(this.staging, { recursive: true, force: true });
  }
}

/**
 * Installs a whole snapshot into `dir` from its manifest and its chunks (in order), then commits
 * (`SnapshotInstaller`); for a push stream. A storage node pulling over request/reply uses
 * `SnapshotInstaller` with `next()` instead.
 */
export async function installSnapshot(dir: string, manifestBytes: Uint8Array, chunks: AsyncIterable<SnapshotChunk | Uint8Array> | Iterable<SnapshotChunk | Uint8Array>, options: SnapshotInstallerOptions): Promise<SnapshotInstallReport> {
  const installer = await SnapshotInstaller.begin(dir, manifestBytes, options);
  try {
    for await (const c of chunks) await installer.write(c);
  } catch (err) {
    await installer.abort();
    throw err;
  }
  return installer.finish();
}
