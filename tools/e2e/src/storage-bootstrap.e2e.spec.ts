import { existsSync, mkdirSync, readFileSync, rmSync, watch } from 'node:fs';
import { join } from 'node:path';
import { useImportedCluster } from './bus-cluster.spec-helpers';
import { pollUntil, runCli } from './fixtures';

/**
 * A wiped storage node bootstraps from a peer storage node's snapshot plus the Raft log after it
 * (docs/architecture.md, "Storage node lifecycle"): the replicas compacted their log, so the log
 * alone can no longer rebuild it. Then only the bootstrapped node serves reads and every row
 * verifies; a node SIGKILLed while receiving/installing a snapshot restarts and ends consistent.
 */
describe('storage node bootstrap from a peer snapshot', () => {
  /** Enough rows (≈ 2.3 MB of snapshot, dozens of chunks) that a SIGKILL sent on the first inotify event of an install lands while the transfer is still running, even on a loaded box. */
  const ROWS = 20_000;
  const e2e = useImportedCluster('e2e-storage-bootstrap', ROWS, {
    consensus: { logRetainedEntries: 200, compactionIntervalMs: 100, segmentBytesMax: 64 * 1024 },
    // Small engine files: many of them, so many snapshot chunks.
    storage: { segmentBytesMax: 64 * 1024, snapshotTransferTimeoutMs: 2000, snapshotRetryBackoffMs: 100 },
  });
  const dataDir = () => e2e.cluster.config.dataDir;

  /** Polls heartbeats / logs of real processes (every 50 ms) until `check` returns a value. */
  const until = <T>(what: string, check: () => T | null, timeoutMs = 60_000): Promise<T> => pollUntil(what, check, { timeoutMs, everyMs: 50, last: () => JSON.stringify(e2e.cluster.statuses()) });

  const storage = (id: string) => e2e.cluster.statuses().storage.find((s) => s.id === id && s.ageMs < 1000) ?? null;
  const leaderCommit = () => Math.max(0, ...e2e.cluster.statuses().consensus.filter((s) => s.ageMs < 1000).map((s) => s.commitIndex));

  /** Waits until `id` applied at least what the leader had committed when called. */
  async function caughtUp(id: string): Promise<number> {
    const target = leaderCommit();
    const s = await until(`${id} caught up to ${target}`, () => {
      const st = storage(id);
      return st && st.appliedIndex >= target ? st : null;
    });
    return s.appliedIndex;
  }

  async function wipeAndRestart(id: string): Promise<number> {
    await e2e.cluster.kill(id, 'SIGKILL');
    rmSync(join(dataDir(), id), { recursive: true, force: true });
    const started = Date.now();
    await e2e.cluster.restart(id);
    return started;
  }

  async function verifyServedOnlyBy(survivor: string, stopped: string): Promise<void> {
    await e2e.cluster.kill(stopped, 'SIGTERM');
    const verify = await runCli(['--gateway', e2e.gateway, 'verify', e2e.tsv]);
    expect(verify.stdout).toMatch(/missing=0 mismatched=0/);
    expect(verify.code).toBe(0);
    expect(storage(survivor)).not.toBeNull();
    await e2e.cluster.restart(stopped);
    await caughtUp(stopped);
  }

  it('every replica compacts its log past the start', async () => {
    await until('compacted', () => {
      const st = e2e.cluster.statuses().consensus.filter((s) => s.ageMs < 1000);
      return st.length === 3 && st.every((s) => (s.firstIndex ?? 1) > ROWS / 2) ? st : null;
    });
  });

  it('a wiped storage node bootstraps from its peer snapshot, continues from the log, and alone serves every row', async () => {
    const started = await wipeAndRestart('s2');
    const applied = await caughtUp('s2');
    const log = readFileSync(e2e.cluster.logPath('s2'), 'utf8');
    expect(log).toContain('bootstrap: snapshot installed');
    const installed = JSON.parse(log.split('\n').find((l) => l.includes('bootstrap: snapshot installed'))!);
    process.stderr.write(`e2e: s2 bootstrapped ${installed.keys} keys (${installed.bytes} bytes, ${installed.chunks} chunks, snapshot index ${installed.appliedIndex}) in ${installed.totalMs} ms; caught up to ${applied} ${Date.now() - started} ms after the restart\n`);
    expect(installed.keys).toBeGreaterThan(0);
    expect(readFileSync(e2e.cluster.logPath('s1'), 'utf8')).toContain('snapshot transfer started');
    await verifyServedOnlyBy('s2', 's1');
  });

  /**
   * Restarts `id` (its engine directory prepared and watched) and SIGKILLs it the moment `entry`
   * appears in its engine directory (inotify event, not a timer): `snapshot-install.staging` = in
   * the middle of the transfer, `snapshot-install.ready` = past the install's commit point.
   */
  async function restartAndKillAt(id: string, entry: string): Promise<void> {
    const engineDir = join(dataDir(), id, 'engine');
    mkdirSync(engineDir, { recursive: true });
    let killed: Promise<void> | null = null;
    const seen = new Promise<void>((resolve) => {
      const w = watch(engineDir, (_event, name) => {
        if (name !== entry || killed !== null) return;
        killed = e2e.cluster.kill(id, 'SIGKILL'); // the signal is sent synchronously
        w.close();
        resolve();
      });
    });
    // Not awaited: the node may reach `entry` before its first heartbeat, and a killed node never
    // sends one; `restart` resolves with the next incarnation's heartbeat, or fails harmlessly.
    void e2e.cluster.restart(id, 120_000).catch(() => undefined);
    await seen;
    await killed;
  }

  it('a storage node SIGKILLed in the middle of the transfer, then past the install commit point, restarts and ends consistent', async () => {
    await e2e.cluster.kill('s2', 'SIGKILL');
    rmSync(join(dataDir(), 's2'), { recursive: true, force: true });
    await restartAndKillAt('s2', 'snapshot-install.staging');
    expect(existsSync(join(dataDir(), 's2', 'engine', 'snapshot-install.staging'))).toBe(true);
    await restartAndKillAt('s2', 'snapshot-install.ready');
    // The roll-forward after the commit point takes a few fsyncs; the SIGKILL normally lands in it.
    const interrupted = existsSync(join(dataDir(), 's2', 'engine', 'snapshot-install.ready'));
    process.stderr.write(`e2e: s2 SIGKILLed past the commit point, ${interrupted ? 'during' : 'after'} the roll-forward\n`);
    await e2e.cluster.restart('s2');
    await caughtUp('s2');
    if (interrupted) expect(readFileSync(e2e.cluster.logPath('s2'), 'utf8')).toContain('engine open finished a snapshot install interrupted past its commit point');
    await verifyServedOnlyBy('s2', 's1');
  });
});
