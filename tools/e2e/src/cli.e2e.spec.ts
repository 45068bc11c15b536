import { LocalCluster } from '@cairn/cluster';
import { decodeStatus } from '@cairn/protocol';
import { connectNats, Subjects } from '@cairn/messaging';
import { freePort } from '@cairn/messaging/testing';
import type { NatsConnection } from 'nats';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, REPO_ROOT, datasetSlice, runCli, writeTestConfig } from './fixtures';

/**
 * The `cairn` CLI on real processes with two gateways: endpoint lists (`--endpoints`,
 * `CAIRN_ENDPOINTS`) with failover through CairnPool, an import that goes on when the gateway it
 * was using is SIGKILLed; `--version`, `--json`, `status` marking an unreachable endpoint, and
 * the message for a cluster that is not running.
 */
describe('cairn CLI end to end', () => {
  const ROWS = 20_000;
  let cluster: LocalCluster;
  let nc: NatsConnection;
  let g1: string;
  let g2: string;
  let dead: string;
  let tsv: string;

  beforeAll(async () => {
    const cfg = await writeTestConfig();
    const config = JSON.parse(readFileSync(cfg.configPath, 'utf8')) as { gateway: { gateways: object[] } };
    const g2Port = await freePort();
    config.gateway.gateways.push({ id: 'g2', host: '127.0.0.1', port: g2Port });
    writeFileSync(cfg.configPath, JSON.stringify(config, null, 2));
    g1 = `127.0.0.1:${cfg.gatewayPort}`;
    g2 = `127.0.0.1:${g2Port}`;
    dead = `127.0.0.1:${await freePort()}`; // nothing listens there
    tsv = await datasetSlice(cfg.dir, ROWS);
    cluster = await LocalCluster.start({ configPath: cfg.configPath });
    nc = await connectNats({ servers: cluster.config.nats.servers, name: 'e2e-cli' });
  });

  afterAll(async () => {
    await nc?.close();
    await cluster?.stop();
  });

  it('--endpoints with an unreachable endpoint first: put, get and del go to a live one', async () => {
    const eps = ['--endpoints', `${dead},${g1}`];
    const put = await runCli([...eps, 'put', 'cli-key', 'v1']);
    expect(put).toMatchObject({ code: 0 });
    expect(put.stdout).toMatch(/^\d+\n$/);
    expect(await runCli([...eps, 'get', 'cli-key'])).toMatchObject({ code: 0, stdout: 'v1' });
    expect(await runCli(['--gateway', g2, 'get', 'cli-key'])).toMatchObject({ code: 0, stdout: 'v1' });
    expect(await runCli([...eps, 'del', 'cli-key'])).toMatchObject({ code: 0 });
    expect(await runCli([...eps, 'get', 'cli-key'])).toMatchObject({ code: 1 });
  });

  it('--version, --json on get/put, status marking an unreachable endpoint, and a down cluster explained', async () => {
    const { version } = JSON.parse(readFileSync(join(REPO_ROOT, 'apps/cli/package.json'), 'utf8')) as { version: string };
    expect(await runCli(['--version'])).toMatchObject({ code: 0, stdout: `${version}\n` });
    const put = await runCli(['--gateway', g1, 'put', 'json-key', 'ñ v', '--json']);
    expect(put.code).toBe(0);
    const { revision } = JSON.parse(put.stdout) as { revision: number };
    expect(JSON.parse((await runCli(['--gateway', g2, '--json', 'get', 'json-key'])).stdout)).toEqual({ key: 'json-key', value: 'ñ v', revision, createRevision: revision, version: 1 });
    const status = await runCli(['--endpoints', `${g1},${dead}`, 'status']);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain(`endpoints: ${g1} up, ${dead} UNREACHABLE`);
    expect(status.stdout).toMatch(/leader: {2}c\d/);
    // Every configured member reports (none UNREACHABLE), and the replicas' conf the CLI checks that against is in the real STATUS.
    const json = JSON.parse((await runCli(['--gateway', g1, 'status', '--json'])).stdout) as { consensus: { conf?: { voters: string[] } }[]; unreachable: unknown };
    expect(json.unreachable).toEqual({ replicas: [], storage: [] });
    expect(json.consensus.some((c) => c.conf?.voters.length === 3)).toBe(true);
    const down = await runCli(['--gateway', dead, 'get', 'json-key']);
    expect(down.code).toBe(3);
    expect(down.stderr).toBe(`cairn: no gateway at ${dead} (connection refused) — is the cluster running? \`npm start\` starts one (else point --endpoints or $CAIRN_ENDPOINTS at a running gateway)\n`);
  });

  it('completion: bash and zsh scripts from @bomb.sh/tab; a real bash completes commands and option choices through `cairn complete`', async () => {
    const bash = await runCli(['completion', 'bash']);
    expect(bash.code).toBe(0);
    expect(bash.stdout).toContain('complete -F __cairn_complete cairn');
    const zsh = await runCli(['completion', 'zsh']);
    expect(zsh.code).toBe(0);
    expect(zsh.stdout).toMatch(/^#compdef cairn/);
    expect((await runCli(['completion', 'tcsh'])).code).toBe(2);
    // `cairn` on PATH as the script expects; _get_comp_words_by_ref (bash-completion) stubbed with the words typed.
    const bin = mkdtempSync(join(tmpdir(), 'cairn-bin-'));
    writeFileSync(join(bin, 'cairn'), `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`, { mode: 0o755 });
    const complete = (...words: string[]) =>
      new Promise<string[]>((resolve, reject) => {
        const script = [
          `_get_comp_words_by_ref() { words=(${words.map((w) => `'${w}'`).join(' ')}); cword=${words.length - 1}; cur='${words[words.length - 1]}'; prev='${words[words.length - 2]}'; }`,
          'source <(cairn completion bash)',
          '__cairn_complete',
          'printf "%s\\n" "${COMPREPLY[@]}"',
        ].join('\n');
        execFile('bash', ['-c', script], { env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } }, (e, stdout) => (e ? reject(e) : resolve(stdout.split('\n').filter((l) => l !== ''))));
      });
    expect(await complete('cairn', 'st')).toEqual(['status']);
    expect(await complete('cairn', 'import', 'rows.tsv', '--skip-header', '')).toEqual(['auto', 'yes', 'no']);
    expect(await complete('cairn', '--end')).toEqual(['--endpoints']);
  });

  it('imports with CAIRN_ENDPOINTS=g1,g2 while g1 is SIGKILLed, then verifies through g2 alone', async () => {
    const leader = await cluster.leaderId();
    const subjects = new Subjects(cluster.config.clusterName);
    /** Resolves with the leader's commit index once it is at least `min` (its status heartbeats, no sleeps). */
    const leaderCommit = (min: number) =>
      new Promise<number>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`the leader's commit index did not reach ${min}`)), 120_000);
        const sub = nc.subscribe(subjects.consensusStatus(), {
          callback: (_e, m) => {
            const s = decodeStatus(m.data);
            if (s?.kind !== 'consensus' || s.id !== leader || s.commitIndex < min) return;
            clearTimeout(t);
            sub.unsubscribe();
            resolve(s.commitIndex);
          },
        });
      });
    const startCommit = await leaderCommit(0);
    let importExited = false;
    // A small window (64 rows in flight: 8 TXNs of 8 rows, each one log entry; a TXN's answer waits for
    // its outcome from a storage node, so about as fast as 16 SETs in flight were) keeps the import going
    // for seconds, so g1 dies in the middle of it, with TXNs in flight through it.
    const rowsPerTxn = 8;
    const importing = runCli(['import', tsv, '--rows-per-txn', String(rowsPerTxn), '--txns-inflight', '8'], { env: { CAIRN_ENDPOINTS: `${g1},${g2}` } }).finally(() => (importExited = true));
    await leaderCommit(startCommit + ROWS / 3 / rowsPerTxn);
    expect(importExited).toBe(false);
    await cluster.kill('g1', 'SIGKILL');
    const imported = await importing;
    expect(imported.stderr).not.toMatch(/Error:/);
    expect(imported.code).toBe(0);
    expect(imported.stdout).toMatch(new RegExp(`^imported rows=${ROWS} `));
    const verified = await runCli(['--endpoints', g2, 'verify', tsv]);
    expect(verified.stdout).toContain(`rows=${ROWS} ok=${ROWS} missing=0 mismatched=0`);
    expect(verified.code).toBe(0);
    await cluster.restart('g1');
  });
});
