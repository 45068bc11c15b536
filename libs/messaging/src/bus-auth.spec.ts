import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NatsConnection } from 'nats';
import { BUS_ROLES, BusCredentialError, busConnectOptions, busPermissions, connectNats, createNkeyUser, natsServerAuthorization, readNkeySeed, Subjects, type BusRole } from './index';
import { nextPermissionViolation as nextViolation, startNatsServer, type NatsServerHandle } from './testing';

const s = new Subjects('t');

describe('bus permissions (docs/security.md "The internal bus")', () => {
  it('never lets a gateway or admin publish Raft, ship or status, nor a gateway membership or snapshots', () => {
    const p = busPermissions(s);
    for (const r of ['gateway', 'admin'] as const) {
      for (const denied of [s.raft('*'), s.ship(), s.consensusStatus(), s.storageStatus(), s.fetch('*')]) expect(p[r].publish).not.toContain(denied);
    }
    expect(p.gateway.publish).not.toContain(s.member('*'));
    expect(p.gateway.publish).not.toContain(s.snapshot('*'));
    expect(p.storage.publish).not.toContain(s.propose('*'));
    expect(p.storage.publish).not.toContain(s.raft('*'));
    // Consensus too: a replica fetches a peer's lease-state file after a snapshot install (request/reply).
    for (const r of BUS_ROLES) expect(p[r].subscribe.filter((x) => x.startsWith('_INBOX'))).toEqual([`_INBOX.cairn.t.${r}.>`]);
  });

  it('gives every subject of Subjects a publishing and a subscribing role (a new subject needs its row in the table)', () => {
    const p = Object.values(busPermissions(s));
    const published = new Set(p.flatMap((r) => r.publish));
    const subscribed = new Set(p.flatMap((r) => r.subscribe));
    const names = Object.getOwnPropertyNames(Subjects.prototype).filter((n) => n !== 'constructor' && n !== 'inboxPrefix');
    expect(names.length).toBeGreaterThan(8);
    for (const n of names) {
      const method: unknown = Reflect.get(s, n);
      if (typeof method !== 'function') throw new Error(`Subjects.${n} is not a method`);
      const subject = String(method.call(s, '*'));
      expect([n, subject, published.has(subject), subscribed.has(subject)]).toEqual([n, subject, true, true]);
    }
  });

  it('reads seed files and rejects what is not an NKey user seed', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cairn-nkey-'));
    const u = createNkeyUser();
    writeFileSync(join(dir, 'ok.nk'), `${u.seed}\n`);
    expect(readNkeySeed(join(dir, 'ok.nk')).publicKey).toBe(u.publicKey);
    writeFileSync(join(dir, 'bad.nk'), 'SUNOTASEED');
    expect(() => readNkeySeed(join(dir, 'bad.nk'))).toThrow(BusCredentialError);
    expect(() => readNkeySeed(join(dir, 'missing.nk'))).toThrow(/cannot read/);
    expect(busConnectOptions({ servers: ['nats://x'], credentials: { admin: { seedFile: join(dir, 'ok.nk') } } }, 'gateway', s, 'g')).toBeNull();
    expect(busConnectOptions({ servers: ['nats://x'] }, 'gateway', s, 'g')).toEqual({ servers: ['nats://x'], name: 'g', inboxPrefix: '_INBOX.cairn.t.gateway' });
  });

  describe('against a real nats-server', () => {
    let server: NatsServerHandle;
    let dir: string;
    const conns: NatsConnection[] = [];
    const as = async (role: BusRole): Promise<NatsConnection> => {
      const o = busConnectOptions({ servers: [server.url], credentials: Object.fromEntries(BUS_ROLES.map((r) => [r, { seedFile: join(dir, `${r}.nk`) }])) }, role, s, role);
      const nc = await connectNats(o!);
      conns.push(nc);
      return nc;
    };
    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'cairn-bus-auth-'));
      const keys: Partial<Record<BusRole, string>> = {};
      for (const r of BUS_ROLES) {
        const u = createNkeyUser();
        writeFileSync(join(dir, `${r}.nk`), u.seed, { mode: 0o600 });
        keys[r] = u.publicKey;
      }
      server = await startNatsServer({ dir, extraConfig: natsServerAuthorization(s, keys) });
    });
    afterAll(async () => {
      for (const nc of conns) await nc.close();
      await server?.stop();
    });

    it('refuses a connection without a credential, or with an unknown key', async () => {
      await expect(connectNats({ servers: [server.url], name: 'anon' })).rejects.toMatchObject({ code: 'AUTHORIZATION_VIOLATION' });
      const stranger = join(dir, 'stranger.nk');
      writeFileSync(stranger, createNkeyUser().seed);
      await expect(connectNats({ servers: [server.url], name: 'x', seed: readNkeySeed(stranger).seed })).rejects.toMatchObject({ code: 'AUTHORIZATION_VIOLATION' });
    });

    it('carries each role request to its responder and the reply back (allow_responses, per-role inboxes)', async () => {
      const consensus = await as('consensus');
      const storage = await as('storage');
      const gateway = await as('gateway');
      const admin = await as('admin');
      consensus.subscribe(s.propose('*'), { callback: (_e, m) => m.respond(Buffer.from('proposed')) });
      consensus.subscribe(s.member('*'), { callback: (_e, m) => m.respond(Buffer.from('member')) });
      storage.subscribe(s.read('*'), { callback: (_e, m) => m.respond(Buffer.from('row')) });
      await Promise.all([consensus.flush(), storage.flush()]);
      expect(Buffer.from((await gateway.request(s.propose('c1'), Buffer.from('w'))).data).toString()).toBe('proposed');
      expect(Buffer.from((await gateway.request(s.read('s1'), Buffer.from('r'))).data).toString()).toBe('row');
      expect(Buffer.from((await admin.request(s.member('c1'), Buffer.from('m'))).data).toString()).toBe('member');
    });

    it('refuses a gateway publishing raft.*, ship or member.*, and subscribing to raft.> or another role\'s inbox', async () => {
      const gateway = await as('gateway');
      for (const subject of [s.raft('c1'), s.ship(), s.member('c1')]) {
        const violation = nextViolation(gateway, 'publish');
        gateway.publish(subject, Buffer.from('forged'));
        expect(await violation).toBe(subject);
      }
      for (const subject of [`${s.prefix}.raft.>`, '_INBOX.cairn.t.storage.>', '>']) {
        const violation = nextViolation(gateway, 'subscription');
        gateway.subscribe(subject);
        expect(await violation).toBe(subject);
      }
    });

    it('refuses a storage node proposing', async () => {
      const storage = await as('storage');
      const violation = nextViolation(storage, 'publish');
      storage.publish(s.propose('c1'), Buffer.from('forged'));
      expect(await violation).toBe(s.propose('c1'));
    });
  });
});
