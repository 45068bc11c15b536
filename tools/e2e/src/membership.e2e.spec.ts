import { useImportedCluster } from './bus-cluster.spec-helpers';
import { pollUntil, runCli, type CliRun } from './fixtures';

/**
 * Membership through the `cairn member` CLI on real processes (Raft thesis §4; docs/cli.md): a
 * storage node joins with `--join`, is added and serves every key once the original storage
 * nodes are gone; a replica joins, is added as voter, the leader is removed and the cluster keeps
 * committing. The replica changes under load with the linearizability checker are the chaos
 * membership run (tools/chaos, `--membership`).
 */
describe('membership end to end (cairn member)', () => {
  const e2e = useImportedCluster('e2e-membership', 2000);

  beforeAll(() => {
    // Every row went in at the first attempt: the membership steps start from a quiet cluster.
    expect(e2e.importWarnings).toEqual([]);
  });

  /** `cairn member list --json`, polled until `pred` holds (the list comes from 100 ms heartbeats). */
  function membersUntil(pred: (c: { voters: string[]; learners: string[]; storage: string[] }) => boolean) {
    let r: CliRun | undefined;
    const check = async () => {
      r = await runCli(['member', 'list', '--json', '--http', e2e.http]);
      const c = r.code === 0 ? (JSON.parse(r.stdout) as { voters: string[]; learners: string[]; storage: string[] }) : null;
      return c && pred(c) ? c : null;
    };
    return pollUntil('a member list that matched', check, { everyMs: 0, last: () => `${r?.code} ${r?.stdout} ${r?.stderr}` });
  }

  it('a storage node joins, is added, and serves every key after the original storage nodes stop', async () => {
    await e2e.cluster.join('s3', 'storage');
    const add = await runCli(['member', 'add', 's3', '--storage', '--http', e2e.http]);
    expect(add.stderr).toBe('');
    expect(add.code).toBe(0);
    expect(add.stdout).toContain('storage:  s1, s2, s3');
    await e2e.cluster.kill('s1', 'SIGTERM');
    await e2e.cluster.kill('s2', 'SIGTERM');
    const verify = await runCli(['--gateway', e2e.gateway, 'verify', e2e.tsv]);
    expect(verify.stdout).toMatch(/missing=0 mismatched=0/);
    expect(verify.code).toBe(0);
    const remove = await runCli(['member', 'remove', 's1', '--storage', '--http', e2e.http]);
    expect(remove.code).toBe(0);
    expect(remove.stdout).toContain('storage:  s2, s3');
    await e2e.cluster.forget('s1');
    await e2e.cluster.restart('s2');
  });

  it('a replica joins and becomes a voter; removing the leader hands over and the cluster keeps committing', async () => {
    await e2e.cluster.join('c4', 'consensus');
    const add = await runCli(['member', 'add', 'c4', '--http', e2e.http]);
    expect(add.stderr).toBe('');
    expect(add.code).toBe(0);
    expect(add.stdout).toContain('voters:   c1, c2, c3, c4');
    // Idempotent: adding a voter again answers ok with the same configuration.
    expect((await runCli(['member', 'add', 'c4', '--http', e2e.http])).stdout).toContain('already a voter');

    const leader = await e2e.cluster.leaderId();
    const remove = await runCli(['member', 'remove', leader, '--http', e2e.http]);
    expect(remove.stderr).toBe('');
    expect(remove.code).toBe(0);
    await e2e.cluster.forget(leader);
    const conf = await membersUntil((c) => !c.voters.includes(leader));
    expect(conf.voters).toHaveLength(3);
    expect(conf.voters).toContain('c4');
    const next = await e2e.cluster.leaderId();
    expect(next).not.toBe(leader);

    const put = await runCli(['--gateway', e2e.gateway, 'put', 'after-membership', 'yes']);
    expect(put.code).toBe(0);
    const get = await runCli(['--gateway', e2e.gateway, 'get', 'after-membership']);
    expect(get.stdout).toBe('yes');

    // Removing down to one voter works; removing the last one cannot apply: exit 6.
    const left = conf.voters.filter((v) => v !== next);
    for (const v of left) {
      expect((await runCli(['member', 'remove', v, '--http', e2e.http])).code).toBe(0);
      await e2e.cluster.forget(v);
    }
    const last = await runCli(['member', 'remove', next, '--http', e2e.http]);
    expect(last.code).toBe(6);
    expect(last.stderr).toMatch(/last voter/);
    expect((await runCli(['--gateway', e2e.gateway, 'put', 'single-voter', 'ok'])).code).toBe(0);
  });
});
