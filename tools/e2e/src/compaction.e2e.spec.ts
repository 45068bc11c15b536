import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { useImportedCluster } from './bus-cluster.spec-helpers';
import { pollUntil, runCli } from './fixtures';

/**
 * Raft log compaction and InstallSnapshot on real processes (Raft §7; docs/raft.md): replicas drop
 * the prefix both storage nodes durably applied; a replica added afterwards catches up through a
 * snapshot; a replica SIGKILLed after compacting restarts from its snapshot file plus the log.
 */
describe('raft log compaction end to end', () => {
  const ROWS = 3000;
  const e2e = useImportedCluster('e2e-compaction', ROWS, { consensus: { logRetainedEntries: 200, compactionIntervalMs: 100, segmentBytesMax: 64 * 1024 }, storage: { snapshotIntervalMs: 500 } });

  /** Polls the status heartbeats (every 100 ms) until `pred` holds for every running replica. */
  function replicasUntil(what: string, pred: (s: { id: string; firstIndex?: number; lastIndex: number; commitIndex: number }) => boolean) {
    const live = () => e2e.cluster.statuses().consensus.filter((s) => e2e.cluster.ids('consensus').includes(s.id) && s.ageMs < 1000);
    return pollUntil(
      `replicas ${what}`,
      () => {
        const st = live();
        return st.length === e2e.cluster.ids('consensus').length && st.every(pred) ? st : null;
      },
      { last: () => JSON.stringify(live()) },
    );
  }

  it('every replica compacts its log below what both storage nodes applied', async () => {
    // Compaction follows the storage nodes' durable applied index (and the lease table's background
    // save) a step at a time: on a loaded box the first heartbeat past the middle can show a step on
    // the way (seen: 1,538 entries left). Wait for where it ends, the log cut to its last ROWS / 2.
    const short = (s: { firstIndex?: number; lastIndex: number }) => (s.firstIndex ?? 1) > ROWS / 2 && s.lastIndex - (s.firstIndex ?? 1) < ROWS / 2;
    const st = await replicasUntil('compacted to their last ROWS / 2 entries', short);
    for (const s of st) expect(s.lastIndex - (s.firstIndex ?? 1)).toBeLessThan(ROWS / 2);
  });

  it('storage nodes take engine snapshots on their own every storage.snapshotIntervalMs', async () => {
    const dir = join(e2e.cluster.config.dataDir, 's1', 'engine', 'snapshots');
    await pollUntil(`a committed snapshot in ${dir}`, () => (existsSync(dir) && readdirSync(dir).some((n) => /^\d+$/.test(n)) ? true : null));
  });

  it('a replica added after compaction catches up through InstallSnapshot', async () => {
    await e2e.cluster.join('c4', 'consensus');
    const add = await runCli(['member', 'add', 'c4', '--http', e2e.http]);
    expect(add.stderr).toBe('');
    expect(add.code).toBe(0);
    expect(readFileSync(e2e.cluster.logPath('c4'), 'utf8')).toContain("installed the leader's snapshot");
    const leader = e2e.cluster.statuses().consensus.find((s) => s.role === 'leader')!;
    await replicasUntil('caught up', (s) => s.commitIndex >= leader.commitIndex);
  });

  it('a replica SIGKILLed after compacting restarts from its snapshot and the cluster serves every row', async () => {
    const leader = await e2e.cluster.leaderId();
    const follower = e2e.cluster.ids('consensus').find((id) => id !== leader && id !== 'c4')!;
    await e2e.cluster.kill(follower, 'SIGKILL');
    await e2e.cluster.restart(follower);
    expect(readFileSync(e2e.cluster.logPath(follower), 'utf8')).toMatch(/"snapshotIndex":[1-9]/);
    // Remove the leader: a replica that joined from a snapshot may now lead.
    expect((await runCli(['member', 'remove', leader, '--http', e2e.http])).code).toBe(0);
    await e2e.cluster.forget(leader);
    const put = await runCli(['--gateway', e2e.gateway, 'put', 'after-compaction', 'ok']);
    expect(put.code).toBe(0);
    const verify = await runCli(['--gateway', e2e.gateway, 'verify', e2e.tsv]);
    expect(verify.stdout).toMatch(/missing=0 mismatched=0/);
    expect(verify.code).toBe(0);
  });
});
