import pino from 'pino';
import { parseClusterConfig, type StorageConfig } from '@cairn/config';
import { Subjects, payloadBytesMax } from '@cairn/messaging';
import {
  CommandOp,
  Permission,
  PermissionsChange,
  RolesChange,
  Status,
  authCommand,
  decodeAuthState,
  decodeRangeReply,
  decodeReadReply,
  encodeRangeRequest,
  encodeReadRequest,
  encodeShipBatch,
  encodeU64Operand,
  encodeWatchInterest,
  decodeWatchEvents,
  WATCH_INTEREST_MS,
  WATCH_INTEREST_MS_MAX,
  type Command,
  type ReadReply,
} from '@cairn/protocol';
import { SimDisk, SimNetwork, SimScheduler, seededRandom, type Incarnation, type Transport } from '@cairn/world';
import { entriesOf } from './apply.spec-helpers';
import { StorageNode } from './storage-node';

/**
 * StorageNode through the injected world (issue 10): the real node on a SimScheduler (virtual
 * time), a SimNetwork (max_payload enforced) and a SimDisk; the test plays the leader (ShipBatch)
 * and the gateway (ReadRequest). No sleeps.
 */

const MAX_PAYLOAD_BYTES = 576 * 1024;

function storageConfig(): StorageConfig {
  return parseClusterConfig({
    clusterName: 't',
    nats: { servers: ['nats://sim.invalid:4222'] },
    consensus: { replicas: [{ id: 'c1' }] },
    storage: { nodes: [{ id: 's1' }], readWaitMs: 1000 },
    gateway: { gateways: [{ id: 'g1', host: '127.0.0.1', port: 7380 }] },
  }).storage;
}

class World {
  readonly sched = new SimScheduler(11);
  readonly net = new SimNetwork(this.sched, { maxPayloadBytes: MAX_PAYLOAD_BYTES, latencyMsMin: 1, latencyMsMax: 1 });
  readonly subjects = new Subjects('t');
  readonly disk = new SimDisk(this.sched, seededRandom(5));
  readonly fatal: unknown[] = [];
  /** Entries the node reported applied, in order. */
  readonly applied: number[] = [];
  /** Waits for the applied index the node reported (onReadWait), virtual ms. */
  readonly readWaits: number[] = [];
  /** The test's end of the bus: the leader's ShipBatches and the gateway's reads. */
  readonly peer: Transport = this.net.connect(this.sched.incarnation('test'));
  inc!: Incarnation;
  node!: StorageNode;

  async start(): Promise<StorageNode> {
    this.inc = this.sched.incarnation('s1');
    this.node = new StorageNode({
      id: 's1',
      replicaIds: ['c1'],
      config: storageConfig(),
      dataDir: '/data/s1',
      disk: this.disk.view(this.inc),
      bus: this.net.connect(this.inc),
      world: { clock: this.inc.clock, random: seededRandom(3) },
      subjects: this.subjects,
      log: pino({ level: 'silent' }),
      onFatal: (e) => this.fatal.push(e),
      onApplied: (entries) => this.applied.push(...entries.map((e) => e.index)),
      onReadWait: (ms) => this.readWaits.push(ms),
    });
    await this.settle(this.node.start());
    return this.node;
  }

  /** A crash: the incarnation dies and the disk loses what was not fsynced. */
  crash(): void {
    this.inc.kill();
    this.disk.crash();
    void this.node.abandon().catch(() => undefined);
  }

  /** Steps virtual time until `p` settles. @throws when it does not within `budgetMs` virtual ms. */
  async settle<T>(p: Promise<T>, budgetMs = 10_000): Promise<T> {
    let done = false;
    const out = p.finally(() => (done = true));
    await this.until(() => done, budgetMs);
    return out;
  }

  /** Steps until `cond` holds (letting the promise chains each event resumes run). @throws when it does not within `budgetMs` virtual ms. */
  async until(cond: () => boolean, budgetMs = 10_000): Promise<void> {
    const until = this.sched.nowMs + budgetMs;
    await new Promise<void>((r) => setImmediate(r));
    while (!cond()) {
      if (this.sched.nowMs > until || !this.sched.step()) throw new Error(`not reached within ${budgetMs} virtual ms`);
      await new Promise<void>((r) => setImmediate(r));
    }
  }

  /** Ships Sets of `key -> value` at consecutive indexes from `from`, as the leader would, with the commit index at the last. */
  ship(from: number, writes: [string, Buffer][]): void {
    this.shipCommands(from, writes.map(([key, value]) => ({ op: CommandOp.Set, key: Buffer.from(key), value })));
  }

  /** Ships `commands` at consecutive indexes from `from`, committed. */
  shipCommands(from: number, commands: Command[]): void {
    this.peer.publish(this.subjects.ship(), encodeShipBatch({ leaderId: 'c1', term: 1, commitIndex: from + commands.length - 1, entries: entriesOf(from, commands) }));
  }

  async read(keys: string[], minIndex: number): Promise<{ reply: ReadReply; bytes: number }> {
    const msg = await this.settle(this.peer.request(this.subjects.read('s1'), encodeReadRequest({ reads: keys.map((k) => ({ key: Buffer.from(k), minIndex })) }), { timeoutMs: 3000 }));
    return { reply: decodeReadReply(msg.data), bytes: msg.data.length };
  }
}

/** A value of `bytes` bytes that names its key. */
function valueOf(key: string, bytes: number): Buffer {
  const v = Buffer.alloc(bytes, 0x76);
  v.write(key);
  return v;
}

describe('StorageNode (injected world)', () => {
  it('publishes WatchEvents only while a gateway asked for them (WatchInterest, at most WATCH_INTEREST_MS_MAX), chained to the history across the batches it did not publish', async () => {
    const w = new World();
    await w.start();
    const got: { prev: number; last: number; revisions: number[] }[] = [];
    w.peer.subscribe(w.subjects.watch('s1'), (msg) => {
      const m = decodeWatchEvents(msg.data);
      got.push({ prev: m.prevRevision, last: m.lastRevision, revisions: m.events.map((e) => e.modRevision) });
    });
    w.ship(1, [['a', Buffer.from('1')]]);
    await w.until(() => w.applied.length === 1);
    w.peer.publish(w.subjects.read('s1'), encodeWatchInterest({ forMs: WATCH_INTEREST_MS }));
    const asked = w.sched.nowMs;
    await w.until(() => w.sched.nowMs >= asked + 5); // the interest arrives (1 ms)
    w.ship(2, [['b', Buffer.from('2')]]);
    await w.until(() => got.length === 1);
    expect(got).toEqual([{ prev: 1, last: 2, revisions: [2] }]); // revision 1 was not published; the gateway pages it
    // Past the interest: applied and recorded, not published.
    await w.until(() => w.sched.nowMs >= asked + WATCH_INTEREST_MS + 10, WATCH_INTEREST_MS + 1000);
    w.ship(3, [['c', Buffer.from('3')]]);
    await w.until(() => w.applied.length === 3);
    // An interest longer than the bound is cut to it.
    w.peer.publish(w.subjects.read('s1'), encodeWatchInterest({ forMs: 0xffff_ffff }));
    const longAsked = w.sched.nowMs;
    await w.until(() => w.sched.nowMs >= longAsked + 5);
    w.ship(4, [['d', Buffer.from('4')]]);
    await w.until(() => got.length === 2);
    expect(got[1]).toEqual({ prev: 3, last: 4, revisions: [4] });
    await w.until(() => w.sched.nowMs >= longAsked + WATCH_INTEREST_MS_MAX + 10, WATCH_INTEREST_MS_MAX + 1000);
    w.ship(5, [['e', Buffer.from('5')]]);
    await w.until(() => w.applied.length === 5);
    const applied5 = w.sched.nowMs;
    await w.until(() => w.sched.nowMs >= applied5 + 5); // a message published would have arrived (1 ms)
    expect(got.length).toBe(2);
    expect(w.fatal).toEqual([]);
  });

  it('answers a read batch larger than max_payload with the prefix that fits; asked again for the rest, it answers them', async () => {
    const w = new World();
    await w.start();
    const keys = Array.from({ length: 8 }, (_, i) => `big${i}`);
    // 8 values of 150 KiB: ~1.2 MB in one reply, about twice max_payload.
    for (let i = 0; i < keys.length; i++) w.ship(i + 1, [[keys[i], valueOf(keys[i], 150 * 1024)]]);
    await w.until(() => w.node.status().appliedIndex === keys.length);

    const got = new Map<string, Buffer>();
    let asks = 0;
    let rest = keys;
    while (rest.length) {
      const { reply, bytes } = await w.read(rest, keys.length);
      asks++;
      expect(bytes).toBeLessThanOrEqual(payloadBytesMax(w.peer));
      // A prefix, in request order, of at least one read.
      expect(reply.results.length).toBeGreaterThanOrEqual(1);
      expect(reply.results.length).toBeLessThanOrEqual(rest.length);
      reply.results.forEach((r, i) => {
        expect(r.status).toBe(Status.Ok);
        got.set(rest[i], Buffer.from(r.value));
      });
      rest = rest.slice(reply.results.length);
    }
    expect(asks).toBeGreaterThan(1);
    for (const k of keys) expect(got.get(k)?.equals(valueOf(k, 150 * 1024))).toBe(true);
    expect(w.net.firstPayloadRefused).toBeNull();
    expect(w.fatal).toEqual([]);
  });

  it('a read ahead of the applied index waits for it and reports the wait; one already applied reports none', async () => {
    const w = new World();
    await w.start();
    const t0 = w.sched.nowMs;
    const pending = w.settle(w.peer.request(w.subjects.read('s1'), encodeReadRequest({ reads: [{ key: Buffer.from('k'), minIndex: 1 }] }), { timeoutMs: 3000 }));
    // The read arrives (1 ms) and waits; index 1 is shipped 20 virtual ms later.
    await w.until(() => w.sched.nowMs >= t0 + 20);
    w.ship(1, [['k', Buffer.from('v')]]);
    const reply = decodeReadReply((await pending).data);
    expect(reply.results[0].status).toBe(Status.Ok);
    expect(w.readWaits.length).toBe(1);
    expect(w.readWaits[0]).toBeGreaterThanOrEqual(19);
    await w.read(['k'], 1);
    expect(w.readWaits.length).toBe(1);
  });

  it('restarts from its disk after a crash at the applied index it made durable, and resumes applying the next entries', async () => {
    const w = new World();
    await w.start();
    w.ship(1, [
      ['a', Buffer.from('1')],
      ['b', Buffer.from('2')],
      ['a', Buffer.from('3')],
    ]);
    await w.until(() => w.applied.length === 3);
    w.crash();

    const node = await w.start();
    // Applied entries were fsynced before the node reported them (onApplied): nothing is lost.
    expect(node.status().appliedIndex).toBe(3);
    expect(w.applied).toEqual([1, 2, 3]);
    w.ship(4, [
      ['b', Buffer.from('4')],
      ['c', Buffer.from('5')],
    ]);
    await w.until(() => node.status().appliedIndex === 5);
    expect(w.applied).toEqual([1, 2, 3, 4, 5]);
    const { reply } = await w.read(['a', 'b', 'c'], 5);
    expect(reply.results.map((r) => [Status[r.status], Buffer.from(r.value).toString(), r.revision])).toEqual([
      ['Ok', '3', 3],
      ['Ok', '4', 4],
      ['Ok', '5', 5],
    ]);
    expect(w.fatal).toEqual([]);
  });

  it('a failed fsync while applying takes the fatal path and reports nothing more applied', async () => {
    const w = new World();
    await w.start();
    w.ship(1, [['a', Buffer.from('1')]]);
    await w.until(() => w.applied.length === 1);
    w.disk.faults.fsyncErrorRate = 1;
    w.ship(2, [['a', Buffer.from('2')]]);
    await w.until(() => w.fatal.length > 0);
    expect(String((w.fatal[0] as Error).message)).toMatch(/EIO/);
    expect(w.applied).toEqual([1]);
  });

  it('applies auth changes into the empty key (auth revision on its heartbeat), keeps them across a crash, and never lets a range read return that key', async () => {
    const w = new World();
    await w.start();
    const HASH = 'scrypt$16384$8$1$c2FsdA$aGFzaA';
    w.shipCommands(1, [
      { op: CommandOp.Set, key: Buffer.from('a'), value: Buffer.from('1') },
      authCommand({ op: 'rolePut', name: 'app', ifAbsent: true, ifPresent: false, value: { change: PermissionsChange.Replace, permissions: [{ prefix: Buffer.from('app/'), permission: Permission.ReadWrite }] } }),
      authCommand({ op: 'userPut', name: 'alice', ifAbsent: true, ifPresent: false, value: { passwordHash: HASH, rolesChange: RolesChange.Replace, roles: ['app'] } }),
      // refused (alice exists): applied as nothing, the auth revision stays at 3
      authCommand({ op: 'userPut', name: 'alice', ifAbsent: true, ifPresent: false, value: { passwordHash: HASH, rolesChange: RolesChange.None, roles: [] } }),
      // a key command on the empty key is never applied
      { op: CommandOp.Set, key: Buffer.alloc(0), value: Buffer.from('forged') },
    ]);
    await w.until(() => w.node.status().appliedIndex === 5);
    expect(w.node.status().authRevision).toBe(3);
    const { reply } = await w.read([''], 5);
    expect(reply.results[0].revision).toBe(3);
    expect([...decodeAuthState(reply.results[0].value).users.keys()]).toEqual(['alice']);
    const range = await w.settle(
      w.peer.request(w.subjects.read('s1'), encodeRangeRequest({ minIndex: 5, start: Buffer.alloc(0), end: null, limit: 100, bytesMax: 1 << 20, keysOnly: true, countOnly: false, reverse: false }), { timeoutMs: 3000 }),
    );
    const page = decodeRangeReply(range.data);
    expect(page.items.map((i) => Buffer.from(i.key).toString())).toEqual(['a']);
    expect(page.count).toBe(1);
    w.crash();
    const node = await w.start();
    expect(node.status().authRevision).toBe(3);
    expect(w.fatal).toEqual([]);
  });

  it('never serves an expired key while its delete waits for the session journal: the hide follows the engine, not the applier running ahead (the 43 ms chaos lease violation)', async () => {
    const w = new World();
    await w.start();
    const t0 = w.sched.nowMs;
    const expiresAtMs = t0 + 100;
    const ttl = (key: string): Command => ({ op: CommandOp.Set, key: Buffer.from(key), value: Buffer.from('v'), meta: { leaseId: 0, expiresAtMs, keepTtl: false } });
    w.shipCommands(1, [ttl('gone'), ttl('overwritten'), ttl('extended')]);
    await w.until(() => w.node.status().appliedIndex === 3);
    await w.until(() => w.sched.nowMs >= expiresAtMs);
    // Every async disk call now takes 20 virtual ms: the batch below, which carries a gateway
    // session, waits that long for its session journal before the engine is handed its writes.
    w.disk.faults.latencyMsMin = 20;
    w.disk.faults.latencyMsMax = 20;
    const shipped = w.sched.nowMs;
    w.shipCommands(4, [
      { op: CommandOp.Set, key: Buffer.from('other'), value: Buffer.from('x'), session: { sessionId: 7n, seq: 1, firstPendingSeq: 1 } },
      { op: CommandOp.ExpireKey, key: Buffer.from('gone'), value: encodeU64Operand(expiresAtMs) },
      { op: CommandOp.Set, key: Buffer.from('overwritten'), value: Buffer.from('new') },
      { op: CommandOp.Set, key: Buffer.from('extended'), value: Buffer.from('new'), meta: { leaseId: 0, expiresAtMs: expiresAtMs + 60_000, keepTtl: false } },
    ]);
    await w.until(() => w.sched.nowMs >= shipped + 5);
    // The read lands while the node holds the batch (decoded, lease index updated) but the engine has not got it.
    const during = (await w.read(['gone', 'overwritten', 'extended'], 3)).reply;
    expect(during.appliedIndex).toBe(3);
    expect(during.results.map((r) => Status[r.status])).toEqual(['NotFound', 'NotFound', 'NotFound']);
    await w.until(() => w.node.status().appliedIndex === 7);
    const after = (await w.read(['gone', 'overwritten', 'extended'], 7)).reply;
    expect(after.results.map((r) => [Status[r.status], Buffer.from(r.value).toString()])).toEqual([
      ['NotFound', ''],
      ['Ok', 'new'],
      ['Ok', 'new'],
    ]);
    expect(w.fatal).toEqual([]);
  });
});
