import { ENGINE_CRASH_PRELUDE, crashOutcome, crashPoint, runCrashChild, seedFraction } from './crash-child.spec-helpers';
import { flipByte, testClock, useTempEngines } from './engine-model.spec-helpers';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  BitcaskEngine,
  ENGINE_DEFAULTS,
  EngineOp,
  INSTALL_READY_DIR_NAME,
  INSTALL_STAGING_DIR_NAME,
  SNAPSHOTS_DIR_NAME,
  SNAPSHOT_CHUNK_OVERHEAD_BYTES,
  SNAPSHOT_MANIFEST_FILE_NAME,
  SnapshotCorruptionError,
  SnapshotInstaller,
  SnapshotSequenceError,
  SnapshotTargetOpenError,
  decodeSnapshotChunk,
  decodeSnapshotManifest,
  encodeSnapshotChunk,
  installSnapshot,
  verifySnapshot,
  type EngineEntry,
  type EngineSnapshot,
  type MergeStep,
  type SnapshotChunk,
  type SnapshotStep,
} from './index';

/** Key → value after folding entries 1..index of `entryAt` (deleted keys absent). */
type State = Map<string, { value: string; revision: number }>;

/** A deterministic workload: entry `index` overwrites or deletes one of `keys` keys, a no-op every 50th. */
function entryAt(index: number, keys = 400, tag = 'v'): EngineEntry {
  const key = Buffer.from(`key-${(index * 7) % keys}`);
  if (index % 50 === 0) return { index, op: EngineOp.Noop, key: Buffer.alloc(0), value: Buffer.alloc(0) };
  if (index % 9 === 0) return { index, op: EngineOp.Delete, key, value: Buffer.alloc(0) };
  return { index, op: EngineOp.Set, key, value: Buffer.from(`${tag}-${index}-${'x'.repeat(index % 60)}`) };
}

function stateAt(index: number, keys = 400, tag = 'v'): State {
  const state: State = new Map();
  for (let i = 1; i <= index; i++) {
    const e = entryAt(i, keys, tag);
    if (e.op === EngineOp.Set) state.set(e.key.toString(), { value: Buffer.from(e.value).toString(), revision: i });
    else if (e.op === EngineOp.Delete) state.delete(e.key.toString());
  }
  return state;
}

async function applyUpTo(e: BitcaskEngine, last: number, keys = 400, tag = 'v', batch = 500): Promise<void> {
  while (e.appliedIndex() < last) {
    const entries: EngineEntry[] = [];
    for (let i = e.appliedIndex() + 1; i <= last && entries.length < batch; i++) entries.push(entryAt(i, keys, tag));
    await e.apply(entries);
  }
}

/** The engine holds exactly `state`: every key of the workload checked, and the key count. */
function expectState(e: BitcaskEngine, state: State, keys = 400): void {
  for (let k = 0; k < keys; k++) {
    const key = `key-${k}`;
    const got = e.get(Buffer.from(key));
    const want = state.get(key);
    expect(got ? { value: got.value.toString(), revision: got.revision } : null).toEqual(want ?? null);
  }
  expect(e.stats().keys).toBe(state.size);
}

/** Every file below `dir` with its bytes (to assert a store is unchanged). */
function treeOf(dir: string, out: Record<string, string> = {}, base = dir): Record<string, string> {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) treeOf(p, out, base);
    else out[path.relative(base, p)] = fs.readFileSync(p).toString('base64');
  }
  return out;
}

async function collect(chunks: AsyncIterable<SnapshotChunk>): Promise<SnapshotChunk[]> {
  const out: SnapshotChunk[] = [];
  for await (const c of chunks) out.push({ ...c, bytes: Buffer.from(c.bytes) });
  return out;
}

describe('engine snapshots', () => {
  const { tempDir, open } = useTempEngines({ segmentBytesMax: 16 * 1024 });

  /** Streams `snap` from `source` as encoded chunk messages into `target`, pulling `installer.next()` like a request/reply client. */
  const transfer = async (source: BitcaskEngine, snap: EngineSnapshot, target: string, chunkBytesMax = 4096): Promise<{ messages: Buffer[] }> => {
    const reader = source.openSnapshotReader(snap.appliedIndex, chunkBytesMax);
    const installer = await SnapshotInstaller.begin(target, reader.manifestBytes, { chunkBytesMax, clock: testClock });
    const messages: Buffer[] = [];
    for (let want = installer.next(); want; want = installer.next()) {
      const msg = encodeSnapshotChunk(await reader.readChunk(want.file, want.offset));
      messages.push(msg);
      await installer.write(msg);
    }
    await reader.close();
    await installer.finish();
    return { messages };
  };

  it('a snapshot taken while writes and a merge go on holds exactly the state at its applied index', async () => {
    const dir = tempDir();
    const steps: SnapshotStep[] = [];
    let merging: Promise<unknown> | null = null;
    let mergeWaiting: Promise<void> | null = null;
    const ref: { e?: BitcaskEngine } = {};
    let mergeSwitched = (): void => undefined;
    const e = (ref.e = await open(dir, {
      snapshotChunkBytesMax: 8 * 1024,
      // Between capture and linking a merge commits and reaches its delete step: it must wait for the links.
      mergeHook: (step: MergeStep) => void (step === 'switched' && mergeSwitched()),
      snapshotHook: async (step) => {
        steps.push(step);
        if (step === 'captured') {
          mergeWaiting = new Promise<void>((resolve) => (mergeSwitched = resolve));
          merging = ref.e!.merge();
          await mergeWaiting;
        }
        // Writes go on at every step, some into the active file being copied.
        await applyUpTo(ref.e!, ref.e!.appliedIndex() + 150);
      },
    }));
    await applyUpTo(e, 3_000);
    await e.merge();
    await applyUpTo(e, 4_000);
    const snap = await e.createSnapshot({ termAt: (index) => (index === 4_000 ? 7 : -1) });
    await merging;
    expect(snap).toMatchObject({ appliedIndex: 4_000, term: 7 });
    expect(steps.filter((s) => s !== 'file')).toEqual(['captured', 'linked', 'written', 'committed', 'pruned']);
    expect(e.appliedIndex()).toBeGreaterThan(4_000 + 150 * 5);
    expect(e.stats()).toMatchObject({ merges: 2, snapshots: 1, lastSnapshotIndex: 4_000, snapshotting: false });
    expect(snap.files.map((f) => f.name)).toEqual(expect.arrayContaining(['merge.manifest', expect.stringMatching(/^merged-\d{20}\.hint$/), expect.stringMatching(/^\d{20}\.seg$/)]));
    await verifySnapshot(snap);
    expect(decodeSnapshotManifest(fs.readFileSync(path.join(snap.dir, SNAPSHOT_MANIFEST_FILE_NAME)))).toEqual({ appliedIndex: 4_000, term: 7, createdAtMs: snap.createdAtMs, files: snap.files });

    const target = tempDir();
    await transfer(e, snap, target);
    const r = await open(target);
    expect(r.appliedIndex()).toBe(4_000);
    expectState(r, stateAt(4_000));
    expect(r.openReport).toMatchObject({ hintFilesLoaded: r.openReport.mergedFiles, mergedFilesScanned: 0, warnings: [] });
    expectState(e, stateAt(e.appliedIndex()));
  });

  it('stream + install into a fresh directory: all keys, tombstones respected, applied index carried over; the copy goes on from there', async () => {
    const source = await open(tempDir(), { snapshotChunkBytesMax: 1000 });
    await applyUpTo(source, 2_500);
    await source.merge();
    await applyUpTo(source, 3_333);
    const snap = await source.createSnapshot();
    expect(snap).toMatchObject({ appliedIndex: 3_333, term: 0 });
    const reader = source.openSnapshotReader();
    expect(reader.snapshot).toBe(snap);
    const chunks = await collect(reader.chunks());
    await reader.close();
    // Chunk bound and order: each file whole, in manifest order, only the final chunk marked last.
    expect(Math.max(...chunks.map((c) => c.bytes.length))).toBe(1000);
    expect(chunks.filter((c) => c.last)).toEqual([chunks[chunks.length - 1]]);
    for (const f of snap.files) {
      const mine = chunks.filter((c) => c.file === f.name);
      expect(mine.map((c) => c.offset)).toEqual(mine.map((_, i) => i * 1000));
      expect(mine.reduce((n, c) => n + c.bytes.length, 0)).toBe(f.sizeBytes);
    }
    const messages = chunks.map(encodeSnapshotChunk);
    expect(Math.max(...messages.map((m) => m.length))).toBeLessThanOrEqual(1000 + SNAPSHOT_CHUNK_OVERHEAD_BYTES + 'merged-00000000000000000001.data'.length);
    expect(messages.map((m) => decodeSnapshotChunk(m))).toEqual(chunks);

    const target = tempDir();
    const report = await installSnapshot(target, snap.manifestBytes, messages, { chunkBytesMax: 1000, clock: testClock });
    expect(report).toMatchObject({ appliedIndex: 3_333, files: snap.files.length, bytes: snap.sizeBytes, replacedFiles: [] });
    expect(fs.readdirSync(target).sort()).toEqual(snap.files.map((f) => f.name).sort());
    const r = await open(target);
    expect(r.appliedIndex()).toBe(3_333);
    const state = stateAt(3_333);
    expect(state.size).toBeLessThan(400); // some keys are deleted at that index
    expectState(r, state);
    const sourceStats = source.stats();
    expect(r.stats()).toMatchObject({ keys: sourceStats.keys, liveBytes: sourceStats.liveBytes, dataBytes: sourceStats.dataBytes, mergedFiles: sourceStats.mergedFiles });
    // The installed store applies the next entries and snapshots like any other.
    await applyUpTo(r, 4_000);
    expectState(r, stateAt(4_000));
    expect((await r.createSnapshot()).appliedIndex).toBe(4_000);
  });

  it('an empty store and a store that never merged round-trip too', async () => {
    for (const last of [0, 700]) {
      const source = await open(tempDir());
      await applyUpTo(source, last);
      const snap = await source.createSnapshot();
      expect(snap.appliedIndex).toBe(last);
      expect(snap.files.some((f) => f.name === 'merge.manifest')).toBe(false);
      const target = tempDir();
      await transfer(source, snap, target);
      const r = await open(target);
      expect(r.appliedIndex()).toBe(last);
      expectState(r, stateAt(last));
    }
  });

  it('installing over an existing store replaces its engine files and snapshots, and nothing else in the directory', async () => {
    const source = await open(tempDir());
    await applyUpTo(source, 1_800, 400, 'new');
    await source.merge();
    const snap = await source.createSnapshot();
    expect(snap.files.some((f) => f.name === 'merge.manifest')).toBe(true);
    const target = tempDir();
    const old = await open(target);
    await applyUpTo(old, 5_000, 400, 'old');
    await old.merge();
    await applyUpTo(old, 5_100, 400, 'old');
    await old.createSnapshot();
    fs.writeFileSync(path.join(target, 'operator-notes.txt'), 'keep me');
    // Staging runs while the old engine serves; the commit needs it closed.
    const reader = source.openSnapshotReader();
    const installer = await SnapshotInstaller.begin(target, reader.manifestBytes, { clock: testClock });
    for await (const c of reader.chunks()) await installer.write(c);
    await expect(installer.finish()).rejects.toBeInstanceOf(SnapshotTargetOpenError);
    expectState(old, stateAt(5_100, 400, 'old'));
    await old.close();
    const report = await installer.finish();
    expect(report.replacedFiles.length).toBeGreaterThan(0);
    const r = await open(target);
    expect(r.appliedIndex()).toBe(1_800);
    expectState(r, stateAt(1_800, 400, 'new'));
    expect(r.snapshots()).toEqual([]);
    expect(fs.readFileSync(path.join(target, 'operator-notes.txt'), 'utf8')).toBe('keep me');
    expect(fs.readdirSync(target).filter((n) => n.startsWith('snapshot-install'))).toEqual([]);
  });

  it('retention keeps snapshotsRetainedMax snapshots; one a reader holds is deleted when the reader closes', async () => {
    const dir = tempDir();
    const e = await open(dir, { snapshotsRetainedMax: 2 });
    const taken: number[] = [];
    for (let round = 1; round <= 4; round++) {
      await applyUpTo(e, round * 300);
      taken.push((await e.createSnapshot()).appliedIndex);
      expect(e.snapshots().map((s) => s.appliedIndex)).toEqual(taken.slice(-2));
      expect(fs.readdirSync(path.join(dir, SNAPSHOTS_DIR_NAME)).sort()).toEqual(taken.slice(-2).map((i) => String(i).padStart(20, '0')));
    }
    // No write since: the same snapshot, not a new one.
    expect(await e.createSnapshot()).toBe(e.latestSnapshot());
    const reader = e.openSnapshotReader(900);
    await applyUpTo(e, 1_500);
    await e.createSnapshot();
    expect(e.snapshots().map((s) => s.appliedIndex)).toEqual([900, 1_200, 1_500]); // 900 is held
    const chunks = await collect(reader.chunks()); // still readable
    expect(chunks.length).toBeGreaterThan(0);
    await reader.close();
    expect(e.snapshots().map((s) => s.appliedIndex)).toEqual([1_200, 1_500]);
    expect(fs.existsSync(path.join(dir, SNAPSHOTS_DIR_NAME, String(900).padStart(20, '0')))).toBe(false);
    await e.close();
    const r = await open(dir, { snapshotsRetainedMax: 2 });
    expect(r.snapshots().map((s) => s.appliedIndex)).toEqual([1_200, 1_500]);
    expect(r.stats()).toMatchObject({ snapshots: 2, lastSnapshotIndex: 1_500 });
    expect(() => r.openSnapshotReader(900)).toThrow(expect.objectContaining({ code: 'ENGINE_SNAPSHOT_NOT_FOUND' }));
  });

  it('chunks are bounded by chunkBytesMax (default 1 MiB); an installer refuses a larger one', async () => {
    expect(ENGINE_DEFAULTS.snapshotChunkBytesMax).toBe(1024 * 1024);
    const source = await open(tempDir(), { segmentBytesMax: 4 * 1024 * 1024 });
    await applyUpTo(source, 15_000, 5_000);
    const snap = await source.createSnapshot();
    expect(snap.sizeBytes).toBeGreaterThan(1024 * 1024); // one file of more than a chunk
    const defaults = await collect(source.openSnapshotReader().chunks());
    expect(defaults.map((c) => c.bytes.length).sort((x, y) => y - x)[0]).toBe(1024 * 1024);
    const target = tempDir();
    const installer = await SnapshotInstaller.begin(target, snap.manifestBytes, { chunkBytesMax: 512 * 1024, clock: testClock });
    await expect(installer.write(defaults[0])).rejects.toMatchObject({ code: 'ENGINE_SNAPSHOT_SEQUENCE', file: defaults[0].file, offset: 0 });
    expect(fs.readdirSync(target)).toEqual([]);
  });

  it('chunks out of order, of another snapshot, or a finish before the last chunk are refused; a failed install restarts from scratch', async () => {
    const source = await open(tempDir());
    await applyUpTo(source, 1_000);
    const snap = await source.createSnapshot();
    const chunks = await collect(source.openSnapshotReader(undefined, 2048).chunks());
    const target = tempDir();
    const old = await open(target);
    await applyUpTo(old, 77, 400, 'old');
    await old.close();
    const before = treeOf(target);
    const attempts: [string, (i: SnapshotInstaller) => Promise<unknown>, object][] = [
      ['skips a chunk', (i) => i.write(chunks[1]), { code: 'ENGINE_SNAPSHOT_SEQUENCE', file: chunks[1].file, offset: 2048 }],
      ['another snapshot', (i) => i.write({ ...chunks[0], appliedIndex: 999 }), { code: 'ENGINE_SNAPSHOT_SEQUENCE' }],
      ['last too early', (i) => i.write({ ...chunks[0], last: true }), { code: 'ENGINE_SNAPSHOT_SEQUENCE' }],
      ['finish before the end', async (i) => (await i.write(chunks[0]), i.finish()), { code: 'ENGINE_SNAPSHOT_SEQUENCE', file: chunks[1].file, offset: chunks[1].offset }],
    ];
    for (const [, attempt, error] of attempts) {
      const installer = await SnapshotInstaller.begin(target, snap.manifestBytes, { chunkBytesMax: 2048, clock: testClock });
      await expect(attempt(installer)).rejects.toMatchObject(error);
      await installer.abort();
      expect(treeOf(target)).toEqual(before);
    }
    // A fresh begin after a failure installs the whole snapshot.
    await installSnapshot(target, snap.manifestBytes, chunks, { chunkBytesMax: 2048, clock: testClock });
    const r = await open(target);
    expectState(r, stateAt(1_000));
  });

  describe('one flipped byte: the installer rejects it with a typed error naming the file; the target store is unchanged', () => {
    const setup = async (): Promise<{ source: BitcaskEngine; snap: EngineSnapshot; target: string; before: Record<string, string> }> => {
      const source = await open(tempDir());
      await applyUpTo(source, 2_000);
      await source.merge();
      await applyUpTo(source, 2_400);
      const snap = await source.createSnapshot();
      const target = tempDir();
      const old = await open(target);
      await applyUpTo(old, 300, 400, 'old');
      await old.close();
      return { source, snap, target, before: treeOf(target) };
    };
    const expectOldStore = async (target: string, before: Record<string, string>): Promise<void> => {
      expect(treeOf(target)).toEqual(before);
      const r = await open(target);
      expect(r.appliedIndex()).toBe(300);
      expectState(r, stateAt(300, 400, 'old'));
      await r.close();
    };

    it('in a snapshot file on disk (each kind): a whole-file CRC32 mismatch naming that file; the sender\'s stream stops too', async () => {
      const { source, snap, target, before } = await setup();
      for (const kind of [/\.seg$/, /\.data$/, /\.hint$/, /^merge\.manifest$/]) {
        const f = snap.files.find((x) => kind.test(x.name))!;
        const file = path.join(snap.dir, f.name);
        flipByte(file, f.sizeBytes >> 1);
        await expect(transfer(source, snap, target)).rejects.toEqual(expect.objectContaining({ code: 'ENGINE_SNAPSHOT_CORRUPT', file: f.name, offset: null }));
        await expect(transfer(source, snap, target)).rejects.toBeInstanceOf(SnapshotCorruptionError);
        await expect(collect(source.openSnapshotReader().chunks())).rejects.toMatchObject({ code: 'ENGINE_SNAPSHOT_CORRUPT', file: f.name });
        await expect(verifySnapshot(snap)).rejects.toMatchObject({ file: f.name });
        await expectOldStore(target, before);
        flipByte(file, f.sizeBytes >> 1); // repaired for the next kind
      }
      await transfer(source, snap, target);
      expectState(await open(target), stateAt(2_400));
    });

    it('in a chunk message in transit: a chunk CRC32 mismatch naming the file and the chunk offset', async () => {
      const { source, snap, target, before } = await setup();
      const messages = (await collect(source.openSnapshotReader(undefined, 4096).chunks())).map(encodeSnapshotChunk);
      const victim = messages.findIndex((m) => decodeSnapshotChunk(m).offset === 8192);
      const { file } = decodeSnapshotChunk(messages[victim]);
      for (const at of [28 + file.length + 10, messages[victim].length - 2]) {
        const bad = messages.map((m, i) => (i === victim ? Buffer.from(m) : m));
        bad[victim][at] ^= 0x01;
        await expect(installSnapshot(target, snap.manifestBytes, bad, { chunkBytesMax: 4096, clock: testClock })).rejects.toMatchObject({ code: 'ENGINE_SNAPSHOT_CORRUPT', file, offset: 8192 });
        await expectOldStore(target, before);
      }
    });

    it('in the manifest, anywhere: SnapshotCorruptionError naming snapshot.manifest before anything is written', async () => {
      const { source, snap, target, before } = await setup();
      const chunks = await collect(source.openSnapshotReader().chunks());
      const size = snap.manifestBytes.length;
      for (const at of [0, 12, 21, 24, 29, 33, 40, size >> 1, size - 1]) {
        const manifest = Buffer.from(snap.manifestBytes);
        manifest[at] ^= 0x40;
        const err = await installSnapshot(target, manifest, chunks, { clock: testClock }).then(
          () => null,
          (x: unknown) => x,
        );
        expect(err).toBeInstanceOf(SnapshotCorruptionError);
        expect(err).toMatchObject({ file: SNAPSHOT_MANIFEST_FILE_NAME, offset: expect.any(Number) });
        await expectOldStore(target, before);
      }
      // The manifest of the snapshot on disk: open deletes that snapshot (a copy) with a warning; the store is intact.
      await source.close();
      flipByte(path.join(snap.dir, SNAPSHOT_MANIFEST_FILE_NAME), 30);
      const r = await open(path.dirname(path.dirname(snap.dir)));
      expect(r.snapshots()).toEqual([]);
      expect(r.openReport.warnings).toEqual([expect.stringMatching(/snapshot .* unusable .*snapshot\.manifest.*: deleted/)]);
      expectState(r, stateAt(2_400));
    });
  });

  it('open deletes a half-written snapshot and an unfinished install, and completes an install past its commit point', async () => {
    const dir = tempDir();
    const e = await open(dir);
    await applyUpTo(e, 900);
    const first = await e.createSnapshot();
    await applyUpTo(e, 1_000);
    // A snapshot that fails in a running engine removes its .tmp (a crash leaves it for open, below).
    const failingDir = tempDir();
    const failing = await open(failingDir, {
      snapshotHook: (s) => {
        if (s === 'written') throw new Error('injected');
      },
    });
    await applyUpTo(failing, 10);
    await expect(failing.createSnapshot()).rejects.toThrow('injected');
    expect(fs.readdirSync(path.join(failingDir, SNAPSHOTS_DIR_NAME))).toEqual([]);
    expect(failing.snapshots()).toEqual([]);
    fs.cpSync(first.dir, path.join(dir, SNAPSHOTS_DIR_NAME, String(1_000).padStart(20, '0') + '.tmp'), { recursive: true });
    fs.mkdirSync(path.join(dir, INSTALL_STAGING_DIR_NAME));
    fs.writeFileSync(path.join(dir, INSTALL_STAGING_DIR_NAME, '00000000000000000001.seg'), 'half');
    await e.close();
    const r = await open(dir);
    expect(r.openReport.removedFiles).toEqual(expect.arrayContaining([INSTALL_STAGING_DIR_NAME, path.join(SNAPSHOTS_DIR_NAME, String(1_000).padStart(20, '0') + '.tmp')]));
    expect(r.snapshots().map((s) => s.appliedIndex)).toEqual([900]);
    expectState(r, stateAt(1_000));
    await verifySnapshot(r.snapshots()[0]);

    // An install that crashed after its commit point (the ready directory is complete) is finished by open.
    const target = tempDir();
    const installer = await SnapshotInstaller.begin(target, first.manifestBytes, {
      clock: testClock,
      hook: (step) => {
        if (step === 'moved') throw new Error('crash after the first move');
      },
    });
    for await (const c of r.openSnapshotReader(900).chunks()) await installer.write(c);
    await expect(installer.finish()).rejects.toThrow('crash after the first move');
    expect(fs.existsSync(path.join(target, INSTALL_READY_DIR_NAME))).toBe(true);
    const t = await open(target);
    expect(t.openReport.installCompleted).toMatchObject({ appliedIndex: 900 });
    expect(t.appliedIndex()).toBe(900);
    expectState(t, stateAt(900));
    expect(fs.existsSync(path.join(target, INSTALL_READY_DIR_NAME))).toBe(false);
  });

  it('close() during a snapshot aborts it and leaves nothing behind', async () => {
    const dir = tempDir();
    let closing: Promise<void> | null = null;
    const ref: { e?: BitcaskEngine } = {};
    const e = (ref.e = await open(dir, { snapshotChunkBytesMax: 1024, snapshotHook: (s) => void (s === 'file' && !closing && (closing = ref.e!.close())) }));
    await applyUpTo(e, 1_500);
    await expect(e.createSnapshot()).rejects.toMatchObject({ code: 'ENGINE_SNAPSHOT_ABORTED' });
    await closing;
    expect(fs.readdirSync(path.join(dir, SNAPSHOTS_DIR_NAME))).toEqual([]);
    const r = await open(dir);
    expect(r.snapshots()).toEqual([]);
    expectState(r, stateAt(1_500));
  });

  it('the chunk message layout is the documented one; a chunk naming a path outside the manifest is refused', async () => {
    const msg = encodeSnapshotChunk({ appliedIndex: 7, file: 'merge.manifest', offset: 3, bytes: Buffer.from('ab'), last: true });
    expect(msg.subarray(0, 28).toString('hex')).toBe('43534e4b' + '01' + '01' + '0000000000000007' + '0000000000000003' + '00000002' + '000e');
    expect(msg.length).toBe(SNAPSHOT_CHUNK_OVERHEAD_BYTES + 14 + 2);
    expect(decodeSnapshotChunk(msg)).toEqual({ appliedIndex: 7, file: 'merge.manifest', offset: 3, bytes: Buffer.from('ab'), last: true });
    const source = await open(tempDir());
    await applyUpTo(source, 20);
    const snap = await source.createSnapshot();
    const target = tempDir();
    const installer = await SnapshotInstaller.begin(target, snap.manifestBytes, { clock: testClock });
    await expect(installer.write({ appliedIndex: 20, file: '../../evil.seg', offset: 0, bytes: Buffer.from('x'), last: false })).rejects.toBeInstanceOf(SnapshotSequenceError);
    expect(fs.readdirSync(target)).toEqual([]);
    await expect(SnapshotInstaller.begin(target, Buffer.from('nope'), { clock: testClock })).rejects.toBeInstanceOf(SnapshotCorruptionError);
  });
});

describe('a process SIGKILLed at a seeded moment of a snapshot or an install', () => {
  // The child compiles the engine's TypeScript sources with swc (as Jest does), as merge.spec.ts's
  // crash test does; it SIGKILLs itself at the seed's hook call or after the seed's number of
  // event-loop turns (so also between steps: mid-link, mid-copy, mid-rename, mid-move).
  const prelude = `${ENGINE_CRASH_PRELUDE}
    startTicks();
  `;
  /** a = engine dir, b = a JSON file of entries to apply while the snapshot runs. */
  const snapshotChild = `${prelude}
    (async () => {
      const e = await engine.BitcaskEngine.open({ dir: a, clock, autoMerge: false, segmentBytesMax: 16 * 1024, snapshotChunkBytesMax: 4096, snapshotHook: hook });
      const entries = JSON.parse(fs.readFileSync(b, 'utf8')).map(([index, op, key, value]) => ({ index, op, key: Buffer.from(key, 'base64'), value: Buffer.from(value, 'base64') }));
      const writing = (async () => { for (let i = 0; i < entries.length; i += 50) await e.apply(entries.slice(i, i + 50)); })();
      await e.createSnapshot();
      await writing;
      await e.close();
      process.stdout.write('done');
    })().catch((err) => { console.error(err); process.exit(2); });
  `;
  /** a = target engine dir, b = a committed snapshot directory to install from. */
  const installChild = `${prelude}
    (async () => {
      const snap = await snapshot.readSnapshot(b);
      const reader = new snapshot.SnapshotReader(snap, 4096);
      const installer = await snapshot.SnapshotInstaller.begin(a, snap.manifestBytes, { chunkBytesMax: 4096, hook, clock });
      for await (const c of reader.chunks()) await installer.write(c);
      await installer.finish();
      process.stdout.write('done');
    })().catch((err) => { console.error(err); process.exit(2); });
  `;
  const runChild = runCrashChild;
  const { tempDir, open } = useTempEngines({ segmentBytesMax: 16 * 1024 });
  const leftovers = (dir: string): string[] => [
    ...fs.readdirSync(dir).filter((n) => n.startsWith('snapshot-install')),
    ...(fs.existsSync(path.join(dir, SNAPSHOTS_DIR_NAME)) ? fs.readdirSync(path.join(dir, SNAPSHOTS_DIR_NAME)).filter((n) => !/^\d{20}$/.test(n)) : []),
  ];

  it('snapshot, 8 seeds: the store holds exactly a prefix of the applied entries, the previous snapshot is intact, a half-written one is removed at open', async () => {
    const base = tempDir();
    const e = await open(base);
    await applyUpTo(e, 2_000);
    await e.merge();
    await applyUpTo(e, 2_500);
    const previous = await e.createSnapshot();
    await e.close();
    const entriesFile = path.join(tempDir(), 'entries.json');
    const more: [number, number, string, string][] = [];
    for (let i = 2_501; i <= 3_500; i++) {
      const x = entryAt(i);
      more.push([x.index, x.op, Buffer.from(x.key).toString('base64'), Buffer.from(x.value).toString('base64')]);
    }
    fs.writeFileSync(entriesFile, JSON.stringify(more));
    const outcomes: string[] = [];
    for (let seed = 1; seed <= 8; seed++) {
      const dir = tempDir();
      fs.cpSync(base, dir, { recursive: true });
      // hook calls: captured, linked, one per file (more than the previous snapshot's), written, committed, pruned
      const { mode, n } = crashPoint(seed, previous.files.length + 3, { from: 1_500, span: 7_000 });
      const ended = crashOutcome(await runChild(snapshotChild, [dir, entriesFile, mode, String(n)]));
      const halfWritten = leftovers(dir);
      const r = await open(dir);
      outcomes.push(`${mode}:${n}:${ended}:${halfWritten.length ? 'tmp' : ''}:${r.snapshots().length}`);
      expect(r.appliedIndex()).toBeGreaterThanOrEqual(2_500);
      expectState(r, stateAt(r.appliedIndex()));
      expect(leftovers(dir)).toEqual([]);
      expect(r.openReport.removedFiles.filter((f) => f.startsWith(SNAPSHOTS_DIR_NAME))).toEqual(halfWritten.map((f) => path.join(SNAPSHOTS_DIR_NAME, f)));
      const snaps = r.snapshots();
      expect(snaps[0]).toMatchObject({ appliedIndex: 2_500, files: previous.files });
      for (const s of snaps) await verifySnapshot(s);
      if (snaps.length === 2) {
        // The new snapshot, committed before the kill: it installs as the state at its index.
        const target = tempDir();
        const reader = r.openSnapshotReader(snaps[1].appliedIndex);
        await installSnapshot(target, reader.manifestBytes, reader.chunks(), { clock: testClock });
        await reader.close();
        const t = await open(target);
        expect(t.appliedIndex()).toBe(snaps[1].appliedIndex);
        expectState(t, stateAt(snaps[1].appliedIndex));
      }
    }
    // Some runs really were killed mid-snapshot, leaving a half-written one behind.
    expect(outcomes.filter((o) => o.includes('SIGKILL')).length).toBeGreaterThanOrEqual(4);
    expect(outcomes.filter((o) => o.includes(':tmp:')).length).toBeGreaterThanOrEqual(2);
  });

  it('install, 8 seeds: the target opens as the old store or exactly the snapshot, never a mix; the staging directory is discarded', async () => {
    const source = await open(tempDir());
    await applyUpTo(source, 3_000, 400, 'new');
    await source.merge();
    await applyUpTo(source, 3_300, 400, 'new');
    const snap = await source.createSnapshot();
    await source.close();
    const old = tempDir();
    const o = await open(old);
    await applyUpTo(o, 1_200, 400, 'old');
    await o.merge();
    await applyUpTo(o, 1_400, 400, 'old');
    await o.close();
    // Install hook calls: one per chunk, staged, ready (the commit point), one per file moved, replaced.
    const chunks = snap.files.reduce((n, f) => n + Math.max(1, Math.ceil(f.sizeBytes / 4096)), 0);
    const points = [Math.floor(chunks / 2), chunks + 1, chunks + 2, chunks + 3, chunks + 2 + snap.files.length + 1];
    const outcomes: string[] = [];
    for (let seed = 1; seed <= 8; seed++) {
      const target = tempDir();
      fs.cpSync(old, target, { recursive: true });
      const mode = seed <= points.length ? 'hook' : 'ticks';
      const n = mode === 'hook' ? points[seed - 1] : 20 + Math.floor(seedFraction(seed) * 400);
      const ended = crashOutcome(await runChild(installChild, [target, snap.dir, mode, String(n)]));
      const r = await open(target);
      const installed = r.appliedIndex() === 3_300;
      outcomes.push(`${mode}:${n}:${ended}:${installed ? 'new' : 'old'}`);
      if (installed) expectState(r, stateAt(3_300, 400, 'new'));
      else {
        expect(r.appliedIndex()).toBe(1_400);
        expectState(r, stateAt(1_400, 400, 'old'));
      }
      expect(leftovers(target)).toEqual([]);
      // Before the commit point the old store is untouched, byte for byte.
      if (mode === 'hook' && n <= chunks + 1) expect(installed).toBe(false);
      if (mode === 'hook' && n >= chunks + 2) expect(installed).toBe(true);
    }
    expect(outcomes.filter((x) => x.includes('SIGKILL:old')).length).toBeGreaterThanOrEqual(2);
    expect(outcomes.filter((x) => x.includes('SIGKILL:new')).length).toBeGreaterThanOrEqual(2);
  });
});
