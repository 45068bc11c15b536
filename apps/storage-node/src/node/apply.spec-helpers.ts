import * as fs from 'node:fs';
import * as os from 'node:os';
import { BitcaskEngine } from '@cairn/engine';
import { encodeCommand, type Command, type WireEntry } from '@cairn/protocol';
import { ENTRY_TYPE_NOOP } from './command-applier';
import { realClock } from '@cairn/world';

/**
 * Committed Raft entries at indexes `from`, `from + 1`, … of term 1, as the leader ships them: a
 * command's encoding (entry type 0: EntryType.Normal of libs/raft), or for `'noop'` the empty entry a new leader appends (Raft §8).
 */
export function entriesOf(from: number, cmds: readonly (Command | 'noop')[]): WireEntry[] {
  return cmds.map((c, i) => (c === 'noop' ? { index: from + i, term: 1, type: ENTRY_TYPE_NOOP, data: new Uint8Array(0) } : { index: from + i, term: 1, type: 0, data: encodeCommand(c) }));
}

/** Registers a fresh directory under the OS temp dir for each test, removed after it; the returned function gives the current test's. */
export function useTempDir(): () => string {
  let dir = '';
  beforeEach(() => {
    dir = fs.mkdtempSync(os.tmpdir() + '/cairn-');
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
  return () => dir;
}

/**
 * One engine for a whole describe: opened in a fresh temp dir and filled by `fill` before all its
 * tests, closed and removed after them. The returned function gives the engine.
 */
export function useFilledEngine(fill: (engine: BitcaskEngine) => Promise<unknown>): () => BitcaskEngine {
  let dir = '';
  let engine: BitcaskEngine | undefined;
  beforeAll(async () => {
    dir = fs.mkdtempSync(os.tmpdir() + '/cairn-');
    engine = await BitcaskEngine.open({ clock: realClock, dir });
    await fill(engine);
  });
  afterAll(async () => {
    await engine?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return () => engine!;
}
