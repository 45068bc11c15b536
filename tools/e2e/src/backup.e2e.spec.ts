import { CairnClient, op } from '@cairn/client';
import { LocalCluster } from '@cairn/cluster';
import { copyFileSync, existsSync, openSync, readdirSync, readSync, statSync, truncateSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { datasetSlice, pollUntil, runCli, writeTestConfig } from './fixtures';

/**
 * Backup and restore (docs/operations.md "Backup and restore") on real processes and a real
 * nats-server: import a slice of the npm data set, `cairn snapshot save` through the gateway's
 * HTTP door, stop that cluster, `cairn snapshot restore` into a fresh cluster's data directories,
 * start it, and `cairn verify` the slice: 0 missing, 0 mismatched; keys keep their revisions and
 * new writes get revisions after the restored one. A corrupt or truncated file is refused. Leases
 * live at the save are live after the restore (the replicas' lease table is rebuilt from the
 * backup, docs/operations.md): one is renewed there, one whose keep-alive stopped expires with its
 * key.
 * `CAIRN_BACKUP_ROWS=226974` runs it on the whole data set.
 */
describe('snapshot save and restore', () => {
  const ROWS = Number(process.env.CAIRN_BACKUP_ROWS ?? 10_000);
  let source: LocalCluster | null = null;
  let restored: LocalCluster | null = null;
  let tsv: string;
  let file: string;
  let saved: { revision: number; node: string; bytes: number; fileBytes: number; files: number; ms: number };
  let marker: { revision: number; createRevision: number; version: number };
  /** Keys the source's storage nodes reported before the save (heartbeats may lag: a lower bound). */
  let sourceKeys: number;
  /**
   * Leases granted before the save: `kept` is renewed after the restore (its TTL outlasts the
   * restored cluster's start and verify on any box: it runs from the restored leader's election),
   * `gone` (2 s, kept alive through the save only) expires there.
   */
  const LEASE_KEPT_TTL_MS = 600_000;
  const LEASE_GONE_TTL_MS = 2000;
  let leases: { kept: number; gone: number };

  type Status = { storage: { id: string; appliedIndex: number; keys: number; live?: boolean }[] };

  afterAll(async () => {
    await source?.stop();
    await restored?.stop();
  });

  it('saves a consistent snapshot of a loaded cluster through the gateway', async () => {
    const a = await writeTestConfig();
    tsv = await datasetSlice(a.dir, ROWS);
    file = join(a.dir, 'backup.cairn');
    source = await LocalCluster.start({ configPath: a.configPath });
    const gw = ['--gateway', `127.0.0.1:${a.gatewayPort}`];
    const imported = await runCli([...gw, 'import', tsv]);
    expect({ code: imported.code, stderr: imported.stderr.slice(-2000) }).toMatchObject({ code: 0 });
    // A key written twice: its create revision and version must survive too.
    expect((await runCli([...gw, 'put', 'backup-marker', 'one'])).code).toBe(0);
    const put = await runCli([...gw, '--json', 'put', 'backup-marker', 'two']);
    expect(put.code).toBe(0);
    const got = await runCli([...gw, '--json', 'get', 'backup-marker']);
    marker = JSON.parse(got.stdout) as typeof marker;
    expect(marker.version).toBe(2);
    const before = JSON.parse((await runCli([...gw, '--json', 'status'])).stdout) as Status;
    sourceKeys = Math.min(...before.storage.map((n) => n.keys));
    expect(sourceKeys).toBeGreaterThan(ROWS / 2);
    // Two leases with a key each, after the key count above (the expiring one's key is gone after the restore).
    const c = await CairnClient.connect({ host: '127.0.0.1', port: a.gatewayPort, requestTimeoutMs: 15_000 });
    const keeper = await (async () => {
      leases = { kept: (await c.leaseGrant(LEASE_KEPT_TTL_MS)).leaseId, gone: (await c.leaseGrant(LEASE_GONE_TTL_MS)).leaseId };
      // Renewed from its grant on: it must be live at the save however slow the writes below are.
      const k = c.keepAlive(leases.gone);
      await c.set('backup-lease/kept', 'k', { lease: leases.kept });
      await c.txn().then(op.put('backup-lease/gone', 'g', { lease: leases.gone })).commit();
      return k;
    })().catch(async (e: unknown) => {
      await c.close();
      throw e;
    });
    const t0 = Date.now();
    const save = await runCli(['--json', 'snapshot', 'save', file, '--http', `127.0.0.1:${a.httpPort}`]);
    keeper.stop();
    await keeper.closed.catch(() => undefined);
    await c.close();
    expect(save.stderr).toBe('');
    expect(save.code).toBe(0);
    saved = JSON.parse(save.stdout) as typeof saved;
    process.stderr.write(`e2e backup: ${ROWS} rows saved at revision ${saved.revision} from ${saved.node}: ${saved.fileBytes} bytes, ${saved.files} engine files, ${Date.now() - t0} ms (CLI run)\n`);
    // Every acknowledged write is in: the save starts at ≥ the cluster's read index.
    expect(saved.revision).toBeGreaterThanOrEqual(marker.revision);
    expect(statSync(file).size).toBe(saved.fileBytes);
    expect(existsSync(`${file}.part`)).toBe(false);
    await source.stop();
    source = null;
  });

  it('refuses a corrupt or truncated file and leaves nothing behind', async () => {
    const b = await writeTestConfig();
    const corrupt = join(b.dir, 'corrupt.cairn');
    copyFileSync(file, corrupt);
    // Flip one byte in the middle of the file (inside some chunk's bytes or framing).
    const fd = openSync(corrupt, 'r+');
    const at = Math.floor(saved.fileBytes / 2);
    const byte = Buffer.alloc(1);
    readSync(fd, byte, 0, 1, at);
    byte[0] ^= 0xff;
    writeSync(fd, byte, 0, 1, at);
    closeSync(fd);
    const bad = await runCli(['--config', b.configPath, 'snapshot', 'restore', corrupt]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/corrupt backup at byte \d+/);
    expect(existsSync(join(b.dir, 'data')) ? readdirSync(join(b.dir, 'data')) : []).toEqual([]);

    const cut = join(b.dir, 'cut.cairn');
    copyFileSync(file, cut);
    truncateSync(cut, saved.fileBytes - 10);
    const short = await runCli(['--config', b.configPath, 'snapshot', 'restore', cut]);
    expect(short.code).toBe(2);
    expect(short.stderr).toMatch(/truncated backup/);
    expect(existsSync(join(b.dir, 'data')) ? readdirSync(join(b.dir, 'data')) : []).toEqual([]);
  });

  it('restores into a fresh cluster: verify finds every row, revisions are kept, new writes come after', async () => {
    const c = await writeTestConfig();
    const t0 = Date.now();
    const restore = await runCli(['--json', '--config', c.configPath, 'snapshot', 'restore', file]);
    expect(restore.stderr).toBe('');
    expect(restore.code).toBe(0);
    // Both leases were live at the save (the keep-alive held the 2 s one): the replicas' lease table has them.
    expect(JSON.parse(restore.stdout)).toMatchObject({ revision: saved.revision, storage: ['s1', 's2'], replicas: ['c1', 'c2', 'c3'], leases: 2, keyExpiries: 0 });
    process.stderr.write(`e2e backup: restored in ${Date.now() - t0} ms (CLI run)\n`);
    // Restore is for a fresh cluster only.
    const again = await runCli(['--config', c.configPath, 'snapshot', 'restore', file]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/is not empty/);

    restored = await LocalCluster.start({ configPath: c.configPath });
    const gw = ['--gateway', `127.0.0.1:${c.gatewayPort}`];
    const verified = await runCli([...gw, 'verify', tsv]);
    expect(verified.stderr.slice(-2000)).not.toMatch(/Error/);
    expect(verified.stdout).toMatch(new RegExp(`rows=${ROWS} ok=${ROWS} missing=0 mismatched=0`));
    expect(verified.code).toBe(0);
    const got = await runCli([...gw, '--json', 'get', 'backup-marker']);
    expect(JSON.parse(got.stdout)).toMatchObject({ value: 'two', revision: marker.revision, createRevision: marker.createRevision, version: 2 });
    const put = await runCli([...gw, '--json', 'put', 'after-restore', 'x']);
    expect(put.code).toBe(0);
    expect((JSON.parse(put.stdout) as { revision: number }).revision).toBeGreaterThan(saved.revision);
    // Both storage nodes hold the restored store and apply after it.
    const st = JSON.parse((await runCli([...gw, '--json', 'status'])).stdout) as Status;
    expect(st.storage.map((n) => n.id).sort()).toEqual(['s1', 's2']);
    for (const n of st.storage) {
      expect(n.appliedIndex).toBeGreaterThanOrEqual(saved.revision);
      expect(n.keys).toBeGreaterThanOrEqual(sourceKeys);
    }
  });

  it('restores the leases: one is live and renewed with its key, the one nobody renews expires with its key (the first leader gave it a full TTL)', async () => {
    const c = await CairnClient.connect({ host: '127.0.0.1', port: restored!.config.gateway.gateways[0].port, requestTimeoutMs: 15_000 });
    try {
      const gw = ['--gateway', `127.0.0.1:${restored!.config.gateway.gateways[0].port}`];
      // Without the rebuilt table the leader knows neither lease: `lease ttl` exit 1, the keep-alive NOT_FOUND, and the key never goes.
      const [ttl, renewed, gone] = await Promise.all([
        runCli([...gw, '--json', 'lease', 'ttl', String(leases.kept), '--keys']),
        c.leaseKeepAliveOnce(leases.kept),
        pollUntil('the unrenewed lease expired with its key', async () => ((await c.get('backup-lease/gone')) === null && (await c.leaseTimeToLive(leases.gone)) === null ? true : null), { timeoutMs: 30_000 }),
      ]);
      expect({ code: ttl.code, stderr: ttl.stderr }).toEqual({ code: 0, stderr: '' });
      expect(JSON.parse(ttl.stdout)).toMatchObject({ ttlMs: LEASE_KEPT_TTL_MS, keys: ['backup-lease/kept'] });
      expect(renewed).toBe(LEASE_KEPT_TTL_MS);
      expect(gone).toBe(true);
      expect(await c.get('backup-lease/kept')).not.toBeNull();
    } finally {
      await c.close();
    }
  });
});
