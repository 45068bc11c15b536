import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CairnClient } from '@cairn/client';
import { LocalCluster } from '@cairn/cluster';
import { BUS_ROLES, busConnectOptions, connectNats, natsSecurityOptions, Subjects, type BusRole } from '@cairn/messaging';
import { nextPermissionViolation as nextViolation, opensslAvailable } from '@cairn/messaging/testing';
import { connect, type NatsConnection } from 'nats';
import { writeTestConfig } from './fixtures';

/*
 * The internal bus with credentials and TLS (docs/security.md "The internal bus"): every process
 * connects with its role's NKey over TLS with a client certificate (the launcher makes the seeds,
 * a private CA and the certificates, as for `npm start`); the cluster serves writes, reads, a membership request and a snapshot pull (the
 * gateway's `admin` connection); outside clients without a credential, without TLS, or with the
 * gateway's credential trying what the gateway may not, are refused by nats-server.
 */
const haveOpenssl = opensslAvailable();
if (!haveOpenssl) process.stderr.write('nats-auth e2e skipped: openssl is not on PATH (the launcher makes the bus CA with it)\n');
const describeAuth = haveOpenssl ? describe : describe.skip;

describeAuth('NATS bus with per-role credentials and TLS (e2e)', () => {
  let cfg: Awaited<ReturnType<typeof writeTestConfig>>;
  let cluster: LocalCluster;
  const conns: NatsConnection[] = [];

  beforeAll(async () => {
    cfg = await writeTestConfig();
    // As cairn.config.json (npm start): the launcher makes the seeds, the CA and the certificates.
    const config = JSON.parse(readFileSync(cfg.configPath, 'utf8'));
    config.nats.credentials = Object.fromEntries(BUS_ROLES.map((r) => [r, { seedFile: `bus/${r}.nk` }]));
    config.nats.tls = { caFile: 'bus/ca.crt', certFile: 'bus/client.crt', keyFile: 'bus/client.key' };
    writeFileSync(cfg.configPath, JSON.stringify(config));
    cluster = await LocalCluster.start({ configPath: cfg.configPath });
  });
  afterAll(async () => {
    for (const nc of conns) await nc.close().catch(() => undefined);
    await cluster?.stop();
  });

  const connectAs = async (role: BusRole): Promise<NatsConnection> => {
    const nc = await connectNats(busConnectOptions(cluster.config.nats, role, new Subjects(cluster.config.clusterName), `e2e-${role}`)!);
    conns.push(nc);
    return nc;
  };

  it('made one seed file per role and the TLS keys, mode 0600, and kept no CA key', () => {
    const bus = join(cfg.dir, 'bus');
    for (const f of [...BUS_ROLES.map((r) => `${r}.nk`), 'client.key', 'nats-server.key']) expect([f, statSync(join(bus, f)).mode & 0o777]).toEqual([f, 0o600]);
    expect(readdirSync(bus).sort()).toEqual([...BUS_ROLES.map((r) => `${r}.nk`), 'ca.crt', 'client.crt', 'client.key', 'nats-server.crt', 'nats-server.key'].sort());
  });

  it('serves writes, reads, leases, a membership request and a snapshot pull', async () => {
    const client = await CairnClient.connect({ host: '127.0.0.1', port: cfg.gatewayPort });
    try {
      const { revision } = await client.set('bus:k', 'v');
      expect((await client.get('bus:k'))?.value.toString()).toBe('v');
      expect(revision).toBeGreaterThan(0);
      // A keep-alive and a time to live go to the leader on lease.<replica> (gateway publishes, consensus answers).
      const { leaseId } = await client.leaseGrant(30_000);
      expect(await client.leaseKeepAliveOnce(leaseId)).toBe(30_000);
      expect(await client.leaseTimeToLive(leaseId)).toMatchObject({ ttlMs: 30_000 });
    } finally {
      await client.close();
    }
    const http = `http://127.0.0.1:${cfg.httpPort}`;
    // Asking for the current state is success: the gateway's `admin` connection reached the leader and back.
    const member = await fetch(`${http}/v1/cluster/members`, { method: 'POST', body: JSON.stringify({ id: 's2', kind: 'storage' }), headers: { 'content-type': 'application/json' } });
    expect(member.status).toBe(200);
    const snap = await fetch(`${http}/v1/snapshot`);
    expect(snap.status).toBe(200);
    expect((await snap.arrayBuffer()).byteLength).toBeGreaterThan(0);
  });

  it('refuses a client without a credential, and one without TLS', async () => {
    // One attempt each (connectNats would retry forever: a Cairn process outlives NATS restarts).
    const once = { servers: cluster.config.nats.servers, maxReconnectAttempts: 0, reconnect: false };
    await expect(connect({ ...once, name: 'anon', tls: cluster.config.nats.tls })).rejects.toMatchObject({ code: 'AUTHORIZATION_VIOLATION' });
    const gateway = busConnectOptions(cluster.config.nats, 'gateway', new Subjects(cluster.config.clusterName), 'plain')!;
    // The gateway's seed without the CA and client certificate: nats.js upgrades to TLS since the server requires it, and the handshake fails.
    await expect(connect({ ...once, ...natsSecurityOptions({ ...gateway, tls: undefined }) })).rejects.toThrow();
  });

  it('refuses each role what it must not publish or subscribe to, while the cluster keeps serving', async () => {
    const s = new Subjects(cluster.config.clusterName);
    const inbox = (r: BusRole) => `${s.inboxPrefix(r)}.>`;
    // What each role's processes never do: nats-server answers each with a permissions violation and drops it.
    const forbidden: Record<BusRole, { publish: string[]; subscribe: string[] }> = {
      consensus: { publish: [s.propose('c1'), s.read('s1'), s.member('c1'), s.snapshot('s1')], subscribe: [s.ship(), s.read('*'), inbox('gateway')] },
      storage: { publish: [s.propose('c1'), s.raft('c1'), s.ship(), s.member('c1')], subscribe: [s.propose('*'), s.raft('*'), inbox('admin')] },
      gateway: { publish: [s.raft('c1'), s.ship(), s.member('c1'), s.snapshot('s1'), s.storageStatus()], subscribe: [`${s.prefix}.raft.>`, s.ship(), inbox('storage'), '>'] },
      admin: { publish: [s.raft('c1'), s.ship(), s.propose('c1'), s.read('s1')], subscribe: [s.raft('*'), s.ship(), s.read('*'), inbox('gateway')] },
    };
    for (const role of BUS_ROLES) {
      const nc = await connectAs(role);
      for (const subject of forbidden[role].publish) {
        const violation = nextViolation(nc, 'publish');
        nc.publish(subject, Uint8Array.of(1));
        expect([role, await violation]).toEqual([role, subject]);
      }
      for (const subject of forbidden[role].subscribe) {
        const violation = nextViolation(nc, 'subscription');
        nc.subscribe(subject);
        expect([role, await violation]).toEqual([role, subject]);
      }
    }
    // The cluster still serves: nothing forged reached it.
    const client = await CairnClient.connect({ host: '127.0.0.1', port: cfg.gatewayPort });
    try {
      await client.set('bus:after', 'ok');
      expect((await client.get('bus:after'))?.value.toString()).toBe('ok');
    } finally {
      await client.close();
    }
  });

  it('never refused the cluster\'s own processes anything (no permissions violation in their logs)', () => {
    const logs = cluster.logDir;
    const denied = readdirSync(logs)
      .filter((f) => f.endsWith('.log') && f !== 'nats-server.log')
      .flatMap((f) => readFileSync(join(logs, f), 'utf8').split('\n').filter((l) => l.includes('"denied"') || l.includes('PERMISSIONS_VIOLATION')).map((l) => `${f}: ${l}`));
    expect(denied).toEqual([]);
  });
});
