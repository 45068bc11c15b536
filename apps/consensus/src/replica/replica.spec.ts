import pino from 'pino';
import { parseClusterConfig, type ConsensusConfig } from '@cairn/config';
import { Subjects, payloadBytesMax } from '@cairn/messaging';
import {
  CommandOp,
  LeaseRequestKind,
  Status,
  decodeLeaseReply,
  decodeProposeReply,
  decodeRaftMessages,
  decodeReadIndexReply,
  encodeLeaseGrant,
  encodeLeaseRequest,
  encodeProposeRequest,
  encodeReadIndexRequest,
  encodeStatus,
  type Command,
  type ProposeReply,
} from '@cairn/protocol';
import { SimDisk, SimNetwork, SimScheduler, seededRandom, type Incarnation } from '@cairn/world';
import { HardStateFile, LeaseStateFile, SnapshotFile } from '@cairn/log';
import { Replica } from './replica';

/**
 * Replica through the injected world (issue 10): the real Replica on a SimScheduler (virtual
 * time), a SimNetwork (core-NATS semantics, max_payload enforced) and a SimDisk, no sleeps.
 */

/** nats-server max_payload of the simulated bus, bytes (what the simulator uses: the start-up check accepts it). */
const MAX_PAYLOAD_BYTES = 576 * 1024;

class World {
  readonly sched = new SimScheduler(7);
  readonly net = new SimNetwork(this.sched, { maxPayloadBytes: MAX_PAYLOAD_BYTES, latencyMsMin: 1, latencyMsMax: 1 });
  readonly subjects = new Subjects('t');
  readonly disks = new Map<string, SimDisk>();
  readonly fatal: { id: string; err: Error }[] = [];
  readonly replicas = new Map<string, Replica>();
  readonly incarnations = new Map<string, Incarnation>();
  private seed = 1;
  /** The test's own end of the bus (a gateway). */
  readonly client = this.net.connect(this.sched.incarnation('gw'));

  constructor(readonly config: ConsensusConfig) {}

  disk(id: string): SimDisk {
    let d = this.disks.get(id);
    if (!d) this.disks.set(id, (d = new SimDisk(this.sched, seededRandom(this.seed++))));
    return d;
  }

  async start(id: string, voters: string[], opts: { coalesceRaftMessages?: boolean; storage?: string[] } = {}): Promise<Replica> {
    const inc: Incarnation = this.sched.incarnation(id);
    this.incarnations.set(id, inc);
    const { storage = [], ...rest } = opts;
    const r = new Replica({
      id,
      voters,
      storage,
      config: this.config,
      dataDir: `/data/${id}`,
      disk: this.disk(id).view(inc),
      bus: this.net.connect(inc),
      world: { clock: inc.clock, random: seededRandom(this.seed++) },
      subjects: this.subjects,
      log: pino({ level: 'silent' }),
      onFatal: (err) => this.fatal.push({ id, err }),
      ...rest,
    });
    this.replicas.set(id, r);
    await this.settle(r.start());
    return r;
  }

  /** Steps virtual time until `p` settles (letting the promise chains each event resumes run). @throws when it does not within `budgetMs` virtual ms. */
  async settle<T>(p: Promise<T>, budgetMs = 10_000): Promise<T> {
    let done = false;
    const out = p.finally(() => (done = true));
    const until = this.sched.nowMs + budgetMs;
    await new Promise<void>((r) => setImmediate(r));
    while (!done) {
      if (this.sched.nowMs > until || !this.sched.step()) throw new Error(`not settled within ${budgetMs} virtual ms`);
      await new Promise<void>((r) => setImmediate(r));
    }
    return out;
  }

  /** Steps until `cond` holds. @throws when it does not within `budgetMs` virtual ms. */
  async until(cond: () => boolean, budgetMs = 10_000): Promise<void> {
    const until = this.sched.nowMs + budgetMs;
    while (!cond()) {
      if (this.sched.nowMs > until || !this.sched.step()) throw new Error(`condition not reached within ${budgetMs} virtual ms`);
      await new Promise<void>((r) => setImmediate(r));
    }
  }

  leader(): Replica | undefined {
    return [...this.replicas.values()].find((r) => r.status().role === 'leader');
  }

  /** Sends one Set per value to `leaderId` as a gateway would (the reply comes as virtual time is stepped). */
  send(leaderId: string, values: number[]): Promise<ProposeReply> {
    const commands = values.map((bytes, i) => ({ op: CommandOp.Set, key: Buffer.from(`k${i}`), value: Buffer.alloc(bytes, 0x61 + (i % 26)) }));
    return this.client.request(this.subjects.propose(leaderId), encodeProposeRequest({ commands }), { timeoutMs: 5000 }).then((m) => decodeProposeReply(m.data));
  }

  /** Proposes `commands` to `leaderId`, stepping until the reply. */
  proposeCommands(leaderId: string, commands: Command[]): Promise<ProposeReply> {
    return this.settle(this.client.request(this.subjects.propose(leaderId), encodeProposeRequest({ commands }), { timeoutMs: 5000 }).then((m) => decodeProposeReply(m.data)));
  }

  /** A crash of `id` (as tools/sim's): its incarnation dies and its disk loses what was not fsynced. */
  crash(id: string): void {
    this.incarnations.get(id)!.kill();
    this.disks.get(id)!.crash();
    // Releases its handles; it never finishes (its disk completions died with it), as in tools/sim.
    void this.replicas.get(id)!.abandon().catch(() => undefined);
    this.replicas.delete(id);
  }

  /** `send`, stepping until the reply. */
  propose(leaderId: string, values: number[]): Promise<ProposeReply> {
    return this.settle(this.send(leaderId, values));
  }
}

function config(over: Record<string, unknown> = {}): ConsensusConfig {
  return parseClusterConfig({
    clusterName: 't',
    nats: { servers: ['nats://sim.invalid:4222'] },
    storage: { nodes: [{ id: 's1' }] },
    gateway: { gateways: [{ id: 'g1', host: '127.0.0.1', port: 7380 }] },
    consensus: { replicas: [{ id: 'c1' }, { id: 'c2' }, { id: 'c3' }], tickMs: 10, electionTimeoutMinMs: 150, heartbeatIntervalMs: 50, msgBytesMax: 64 * 1024, entriesPerMsgMax: 64, ...over },
  }).consensus;
}

describe('Replica (injected world)', () => {
  /** 3 replicas elect a leader; returns it with the world. */
  async function threeReplicas(opts: { coalesceRaftMessages?: boolean } = {}, over: Record<string, unknown> = {}): Promise<{ w: World; leader: Replica }> {
    const w = new World(config(over));
    const voters = ['c1', 'c2', 'c3'];
    for (const id of voters) await w.start(id, voters, opts);
    await w.until(() => w.leader() !== undefined);
    return { w, leader: w.leader()! };
  }

  /** 8 proposals of 5 writes of 30 KiB each, sent at once (the bus delivers them at the same virtual instant). */
  function burst(w: World, leaderId: string): Promise<ProposeReply[]> {
    return Promise.all(Array.from({ length: 8 }, () => w.send(leaderId, [30 * 1024, 30 * 1024, 30 * 1024, 30 * 1024, 30 * 1024])));
  }

  /** Every RaftMessages payload the leader publishes to each follower, by the virtual ms it was sent. */
  function watchRaftPayloads(w: World, leaderId: string): { peer: string; atMs: number; bytes: number; appends: number }[] {
    const seen: { peer: string; atMs: number; bytes: number; appends: number }[] = [];
    const watcher = w.net.connect(w.sched.incarnation('watcher'));
    for (const peer of ['c1', 'c2', 'c3'].filter((p) => p !== leaderId)) {
      watcher.subscribe(w.subjects.raft(peer), (m) => {
        const msgs = decodeRaftMessages(m.data).filter((x) => x.from === leaderId);
        if (msgs.length) seen.push({ peer, atMs: w.sched.nowMs, bytes: m.data.length, appends: msgs.filter((x) => x.entries.length > 0).length });
      });
    }
    return seen;
  }

  it('a leader splits one Ready\'s Raft messages per peer into publishes under payloadBytesMax', async () => {
    const { w, leader } = await threeReplicas();
    const seen = watchRaftPayloads(w, leader.status().id);
    // 8 proposals of 5 writes of 30 KiB, arriving at the same virtual instant: one Ready with
    // ~1.2 MB of Append messages (64 KiB each) per follower, about twice max_payload.
    const replies = await w.settle(burst(w, leader.status().id));
    expect(replies.map((r) => Status[r.status])).toEqual(replies.map(() => 'Ok'));
    const bound = payloadBytesMax(w.client);
    expect(seen.every((s) => s.bytes <= bound)).toBe(true);
    // The follower got the batch in several publishes sent at the same virtual instant (one Ready).
    const perInstant = new Map<string, number>();
    for (const s of seen.filter((x) => x.appends > 0)) perInstant.set(`${s.peer}@${s.atMs}`, (perInstant.get(`${s.peer}@${s.atMs}`) ?? 0) + 1);
    expect(Math.max(...perInstant.values())).toBeGreaterThan(1);
    expect(w.net.firstPayloadRefused).toBeNull();
    expect(w.fatal).toEqual([]);
  });

  it('with the coalescing bug switched back on, the same Ready is one publish per peer, refused over max_payload (the test can fail)', async () => {
    const { w, leader } = await threeReplicas({ coalesceRaftMessages: true });
    const id = leader.status().id;
    burst(w, id).catch(() => undefined);
    await w.until(() => w.net.firstPayloadRefused !== null);
    const refused = w.net.firstPayloadRefused!;
    expect(refused.host).toBe(id);
    expect(['c1', 'c2', 'c3'].filter((p) => p !== id).map((p) => w.subjects.raft(p))).toContain(refused.subject);
    expect(refused.bytes).toBeGreaterThan(MAX_PAYLOAD_BYTES);
  });

  /** 3 replicas with config `over` and a leader that committed a first write, which moved every follower's progress from probe to replicate (Raft §5.3: one Append in flight while probing). */
  async function warmedUp(over: Record<string, unknown>): Promise<{ w: World; id: string }> {
    const { w, leader } = await threeReplicas({}, over);
    const id = leader.status().id;
    expect(Status[(await w.propose(id, [100])).status]).toBe('Ok');
    return { w, id };
  }

  /**
   * Virtual ms from a proposal reaching `leaderId` until its first Append leaves for a follower,
   * with the leader's disk taking 20 virtual ms per operation (the followers' none).
   */
  async function appendDelayMs(leaderAppendsInParallel: boolean): Promise<{ delayMs: number; status: string; fatal: number }> {
    const { w, id } = await warmedUp({ leaderAppendsInParallel });
    Object.assign(w.disk(id).faults, { latencyMsMin: 20, latencyMsMax: 20 });
    const seen = watchRaftPayloads(w, id);
    const sentAtMs = w.sched.nowMs;
    const reply = await w.propose(id, [100]);
    const first = seen.find((x) => x.appends > 0);
    // The bus takes 1 virtual ms to the leader.
    return { delayMs: first ? first.atMs - sentAtMs - 1 : -1, status: Status[reply.status], fatal: w.fatal.length };
  }

  it('a leader sends its Appends while its own fsync runs (thesis §10.2.1); with leaderAppendsInParallel off they wait for it (the test can fail)', async () => {
    // The leader's disk takes 20 virtual ms per operation: an Append that waits for its fsync leaves 20 ms or more after the proposal.
    const parallel = await appendDelayMs(true);
    expect(parallel.status).toBe('Ok');
    expect(parallel.delayMs).toBeLessThan(20);
    const serial = await appendDelayMs(false);
    expect(serial.status).toBe('Ok');
    expect(serial.delayMs).toBeGreaterThanOrEqual(20);
    expect([parallel.fatal, serial.fatal]).toEqual([0, 0]);
  });

  /**
   * Virtual ms from a second proposal reaching `leaderId` until its Append leaves, sent while the
   * leader's write of the first one runs (its disk takes 20 virtual ms per operation).
   */
  async function appendDelayDuringWriteMs(asyncStorageWrites: boolean): Promise<{ delayMs: number; statuses: string[]; fatal: number }> {
    const { w, id } = await warmedUp({ asyncStorageWrites });
    Object.assign(w.disk(id).faults, { latencyMsMin: 20, latencyMsMax: 20 });
    const seen = watchRaftPayloads(w, id);
    const first = w.send(id, [100]);
    await w.until(() => seen.some((x) => x.appends > 0));
    const sentAtMs = w.sched.nowMs;
    const second = w.send(id, [100]);
    await w.until(() => seen.some((x) => x.appends > 0 && x.atMs > sentAtMs));
    const atMs = seen.find((x) => x.appends > 0 && x.atMs > sentAtMs)!.atMs;
    const replies = await w.settle(Promise.all([first, second]));
    // The bus takes 1 virtual ms to the leader.
    return { delayMs: atMs - sentAtMs - 1, statuses: replies.map((r) => Status[r.status]), fatal: w.fatal.length };
  }

  it('with asyncStorageWrites a leader steps a proposal and sends its Append while its previous write runs; without, the proposal waits for that write (the test can fail)', async () => {
    const overlapped = await appendDelayDuringWriteMs(true);
    expect(overlapped.statuses).toEqual(['Ok', 'Ok']);
    expect(overlapped.delayMs).toBeLessThan(20);
    const serial = await appendDelayDuringWriteMs(false);
    expect(serial.statuses).toEqual(['Ok', 'Ok']);
    expect(serial.delayMs).toBeGreaterThanOrEqual(20);
    expect([overlapped.fatal, serial.fatal]).toEqual([0, 0]);
  });

  /** Virtual ms a proposal to `leaderId` takes to be answered with the leader's disk at 20 virtual ms per operation (the followers' none). */
  async function proposeWithSlowLeaderDiskMs(asyncStorageWrites: boolean): Promise<{ ms: number; status: string; fatal: number }> {
    const { w, id } = await warmedUp({ asyncStorageWrites });
    Object.assign(w.disk(id).faults, { latencyMsMin: 20, latencyMsMax: 20 });
    const startMs = w.sched.nowMs;
    const reply = await w.propose(id, [100]);
    return { ms: w.sched.nowMs - startMs, status: Status[reply.status], fatal: w.fatal.length };
  }

  it('with asyncStorageWrites the two followers\' durable copies commit a write and it is answered before the leader\'s own fsync; without, the answer waits for it (the test can fail)', async () => {
    const early = await proposeWithSlowLeaderDiskMs(true);
    const serial = await proposeWithSlowLeaderDiskMs(false);
    expect([early.status, serial.status]).toEqual(['Ok', 'Ok']);
    // The bus takes 1 virtual ms per hop: 4 hops, the followers' disks take none.
    expect(early.ms).toBeLessThan(20);
    expect(serial.ms).toBeGreaterThanOrEqual(20);
    expect([early.fatal, serial.fatal]).toEqual([0, 0]);
  });

  /** Virtual ms a ReadIndex request to the leader takes, after a warm-up write and read, with `readLeaseMs` (0 = off). */
  async function readIndexMs(readLeaseMs: number): Promise<{ ms: number; status: string }> {
    const { w, id } = await warmedUp({ readLeaseMs });
    const ask = () => w.client.request(w.subjects.readIndex(id), encodeReadIndexRequest({ reads: 1 }), { timeoutMs: 5000 }).then((m) => decodeReadIndexReply(m.data));
    await w.settle(ask());
    const startMs = w.sched.nowMs;
    const reply = await w.settle(ask());
    return { ms: w.sched.nowMs - startMs, status: Status[reply.status] };
  }

  it('with readLeaseMs a leader answers ReadIndex from its lease, without the round trip to the followers (thesis §6.4.1)', async () => {
    // The bus takes 1 virtual ms each way: a round to the followers adds 2 ms.
    const withRound = await readIndexMs(0);
    const fromLease = await readIndexMs(100);
    expect([withRound.status, fromLease.status]).toEqual(['Ok', 'Ok']);
    expect(fromLease.ms).toBeLessThan(withRound.ms);
    expect(fromLease.ms).toBeLessThanOrEqual(2);
  });

  /** One voter, which elects itself. */
  async function alone(): Promise<{ w: World; r: Replica }> {
    const w = new World(config());
    const r = await w.start('c1', ['c1']);
    await w.until(() => r.status().role === 'leader');
    return { w, r };
  }

  it('a replica restarted from a compacted log keeps its leases and key expiries (lease-state file), and still expires them as leader (the test can fail)', async () => {
    const w = new World(config({ logRetainedEntries: 0, compactionIntervalMs: 10, expiryCheckIntervalMs: 10 }));
    let r = await w.start('c1', ['c1'], { storage: ['s1'] });
    await w.until(() => r.status().role === 'leader');
    const expiresAtMs = w.sched.nowMs + 2_000;
    const grant: Command = { op: CommandOp.LeaseGrant, key: Buffer.alloc(0), value: encodeLeaseGrant(5, 600_000) };
    const ttlKey: Command = { op: CommandOp.Set, key: Buffer.from('ttl'), value: Buffer.from('v'), meta: { leaseId: 0, expiresAtMs, keepTtl: false } };
    expect((await w.proposeCommands('c1', [grant, ttlKey])).status).toBe(Status.Ok);
    // s1 reports it applied everything: compaction drops the whole log.
    const applied = r.status().appliedIndex;
    w.client.publish(w.subjects.storageStatus(), encodeStatus({ kind: 'storage', id: 's1', appliedIndex: applied, knownCommitIndex: applied, keys: 1, dataBytes: 1, atMs: w.sched.nowMs }));
    await w.until(() => (r.status().firstIndex ?? 0) > applied);
    expect(r.leaseCounts()).toEqual({ leases: 1, trackedKeys: 1 });
    // One more grant stays in the log (s1 has not reported it): restored by folding the log after the file.
    expect((await w.proposeCommands('c1', [{ ...grant, value: encodeLeaseGrant(6, 600_000) }])).status).toBe(Status.Ok);

    w.crash('c1');
    r = await w.start('c1', ['c1'], { storage: ['s1'] });
    await w.until(() => r.status().role === 'leader');
    expect(r.status().firstIndex).toBe(applied + 1);
    expect(r.leaseCounts()).toEqual({ leases: 2, trackedKeys: 1 });
    const ttl = decodeLeaseReply((await w.settle(w.client.request(w.subjects.lease('c1'), encodeLeaseRequest({ kind: LeaseRequestKind.TimeToLive, leaseId: 5, limit: 0 }), { timeoutMs: 5000 }))).data);
    expect({ status: Status[ttl.status], ttlMs: ttl.ttlMs }).toEqual({ status: 'Ok', ttlMs: 600_000 });
    // The key's expiry passes: this leader proposes its ExpireKey, which commits and leaves the table.
    await w.until(() => r.leaseCounts().trackedKeys === 0);
    expect(w.sched.nowMs).toBeGreaterThanOrEqual(expiresAtMs);
    expect(w.fatal).toEqual([]);
  });

  describe('the lease-state save runs in the background (docs/leases.md "Restarts and compaction")', () => {
    const grant = (id: number): Command => ({ op: CommandOp.LeaseGrant, key: Buffer.alloc(0), value: encodeLeaseGrant(id, 600_000) });
    /** s1 reports it applied everything c1 applied: the compaction plan may drop the whole log. */
    const reportApplied = (w: World, r: Replica) => {
      const applied = r.status().appliedIndex;
      w.client.publish(w.subjects.storageStatus(), encodeStatus({ kind: 'storage', id: 's1', appliedIndex: applied, knownCommitIndex: applied, keys: 1, dataBytes: 1, atMs: w.sched.nowMs }));
    };
    /** The file as c1's disk holds it (read through another incarnation's view). */
    const savedFile = (w: World) => new LeaseStateFile('/data/c1', w.disk('c1').view(w.sched.incarnation('reader'))).read();
    /** Every step: the log is never compacted past the last completed save. */
    const compactionBehindSave = (r: Replica, seen: { worst: number }) => () => {
      const st = r.status();
      seen.worst = Math.max(seen.worst, (st.firstIndex ?? 1) - 1 - r.leaseFileStatus().savedIndex);
      return true;
    };

    async function slowSaving(): Promise<{ w: World; r: Replica; seen: { worst: number } }> {
      const w = new World(config({ logRetainedEntries: 0, compactionIntervalMs: 10, leaseStateSliceBytesMax: 16 * 1024 }));
      const r = await w.start('c1', ['c1'], { storage: ['s1'] });
      await w.until(() => r.status().role === 'leader');
      // 1,000 leases; every disk operation takes 30 virtual ms from now on (slices: lease-state-file.spec.ts).
      expect((await w.proposeCommands('c1', Array.from({ length: 1000 }, (_, i) => grant(1 + i)))).status).toBe(Status.Ok);
      Object.assign(w.disk('c1').faults, { latencyMsMin: 30, latencyMsMax: 30 });
      const seen = { worst: -Infinity };
      reportApplied(w, r);
      await w.until(() => compactionBehindSave(r, seen)() && r.leaseFileStatus().savingIndex !== null);
      return { w, r, seen };
    }

    it('entries commit while a save is in progress, the file holds the table at its index, and compaction never passes the last completed save (the test can fail)', async () => {
      const { w, r, seen } = await slowSaving();
      const savingIndex = r.leaseFileStatus().savingIndex!;
      expect(r.leaseFileStatus().savedIndex).toBe(0);
      expect(r.status().firstIndex).toBe(1);
      // Writes commit while the save runs: the loop is not blocked by it.
      for (const id of [20_001, 20_002]) expect((await w.proposeCommands('c1', [grant(id)])).status).toBe(Status.Ok);
      expect(r.leaseFileStatus().savingIndex).toBe(savingIndex);
      const check = compactionBehindSave(r, seen);
      await w.until(() => check() && r.leaseFileStatus().savedIndex === savingIndex);
      const file = savedFile(w)!;
      expect(file.index).toBe(savingIndex);
      // The table as of its index: the leases granted while it was written are not in it.
      expect(file.leases.length).toBe(1000);
      expect(file.leases.some((l) => l.leaseId > 20_000)).toBe(false);
      // Then the log is compacted up to the save, not beyond, and the later grants are in the table.
      await w.until(() => check() && (r.status().firstIndex ?? 1) > 1);
      expect(r.status().firstIndex! - 1).toBeLessThanOrEqual(savingIndex);
      expect(seen.worst).toBeLessThanOrEqual(0);
      expect(r.leaseCounts().leases).toBe(1002);
      expect(w.fatal).toEqual([]);
    });

    it('a crash in the middle of a save leaves the previous file valid, and the restart folds the log after it (the test can fail)', async () => {
      const { w, r } = await slowSaving();
      const first = r.leaseFileStatus().savingIndex!;
      await w.until(() => r.leaseFileStatus().savedIndex === first);
      expect((await w.proposeCommands('c1', [grant(30_001), grant(30_002)])).status).toBe(Status.Ok);
      reportApplied(w, r);
      await w.until(() => (r.leaseFileStatus().savingIndex ?? 0) > first);
      // Let it write its first slice, then crash before it completes.
      const disk = w.disk('c1');
      const writesBefore = disk.stats.writes;
      await w.until(() => disk.stats.writes > writesBefore);
      expect(r.leaseFileStatus().savedIndex).toBe(first);
      w.crash('c1');
      expect(savedFile(w)!.index).toBe(first);
      Object.assign(disk.faults, { latencyMsMin: 0, latencyMsMax: 0 });
      const back = await w.start('c1', ['c1'], { storage: ['s1'] });
      expect(back.leaseFileStatus().savedIndex).toBe(first);
      expect(back.status().firstIndex).toBeLessThanOrEqual(first + 1);
      // The grants after the file are folded in from the log once they are committed again.
      await w.until(() => back.status().role === 'leader' && back.status().appliedIndex >= first + 1);
      expect(back.leaseCounts().leases).toBe(1002);
      expect(w.fatal).toEqual([]);
    });
  });

  it('a replica that installs a leader\'s snapshot fetches the lease table from a peer, and as leader keeps those leases alive and expires their keys (docs/leases.md "Snapshot install"; the test can fail)', async () => {
    const w = new World(config({ logRetainedEntries: 0, compactionIntervalMs: 10, expiryCheckIntervalMs: 10, leaseStateChunkBytesMax: 4096 }));
    const voters = ['c1', 'c2', 'c3'];
    for (const id of voters) await w.start(id, voters, { storage: ['s1'] });
    await w.until(() => w.leader() !== undefined);
    const lead = w.leader()!.status().id;
    const [lag, other] = voters.filter((v) => v !== lead);
    w.crash(lag);
    // Lease 5 and a key with a TTL, plus 300 more leases (~5 KB of lease state: two chunks of 4 KiB), committed while `lag` is down.
    const expiresAtMs = w.sched.nowMs + 3_000;
    const grant = (id: number): Command => ({ op: CommandOp.LeaseGrant, key: Buffer.alloc(0), value: encodeLeaseGrant(id, 600_000) });
    const ttlKey: Command = { op: CommandOp.Set, key: Buffer.from('ttl'), value: Buffer.from('v'), meta: { leaseId: 0, expiresAtMs, keepTtl: false } };
    expect((await w.proposeCommands(lead, [grant(5), ttlKey, ...Array.from({ length: 300 }, (_, i) => grant(100 + i))])).status).toBe(Status.Ok);
    const applied = w.replicas.get(lead)!.status().appliedIndex;
    w.client.publish(w.subjects.storageStatus(), encodeStatus({ kind: 'storage', id: 's1', appliedIndex: applied, knownCommitIndex: applied, keys: 1, dataBytes: 1, atMs: w.sched.nowMs }));
    await w.until(() => [lead, other].every((id) => (w.replicas.get(lead)!.status().firstIndex ?? 0) > applied && (w.replicas.get(id)!.status().firstIndex ?? 0) > applied));

    // `lag` comes back behind the compaction point: InstallSnapshot, then the lease table from a peer.
    const back = await w.start(lag, voters, { storage: ['s1'] });
    await w.until(() => back.counters.snapshotsInstalled > 0 && back.leaseFetchCounters.adopted > 0);
    expect(back.leaseCounts()).toEqual({ leases: 301, trackedKeys: 1 });

    // Make it the leader: `other` misses a write, then the old leader goes; only `lag` has the newest log.
    w.crash(other);
    expect((await w.proposeCommands(lead, [{ op: CommandOp.Set, key: Buffer.from('x'), value: Buffer.from('1') }])).status).toBe(Status.Ok);
    w.crash(lead);
    await w.start(other, voters, { storage: ['s1'] });
    await w.until(() => back.status().role === 'leader');
    const keepAlive = decodeLeaseReply((await w.settle(w.client.request(w.subjects.lease(lag), encodeLeaseRequest({ kind: LeaseRequestKind.KeepAlive, leaseId: 5, limit: 0 }), { timeoutMs: 5000 }))).data);
    expect({ status: Status[keepAlive.status], ttlMs: keepAlive.ttlMs }).toEqual({ status: 'Ok', ttlMs: 600_000 });
    // The key's expiry passes: the new leader proposes its ExpireKey, which commits.
    await w.until(() => back.leaseCounts().trackedKeys === 0);
    expect(w.sched.nowMs).toBeGreaterThanOrEqual(expiresAtMs);
    expect(w.fatal).toEqual([]);
  });

  it('a cluster made by `cairn snapshot restore` (Raft state at the backup\'s revision, a lease table rebuilt from it, an empty log): its first leader gives every lease its full TTL, renews a kept one, revokes the unrenewed one after its TTL and expires a key whose time passed (docs/operations.md "Backup and restore"; the test can fail)', async () => {
    const w = new World(config({ expiryCheckIntervalMs: 10 }));
    const voters = ['c1', 'c2', 'c3'];
    const revision = 500;
    // What apps/cli snapshot.ts restoreSnapshot writes into every replica's directory.
    for (const id of voters) {
      const disk = w.disk(id).view(w.sched.incarnation(`restore-${id}`));
      await w.settle(disk.mkdir(`/data/${id}`, { recursive: true }));
      await w.settle(new SnapshotFile(`/data/${id}`, disk).write({ index: revision, term: 3, conf: { voters, learners: [], storage: ['s1'] } }));
      new LeaseStateFile(`/data/${id}`, disk).write({ index: revision, gapThrough: 0, leases: [{ leaseId: 5, ttlMs: 60_000 }, { leaseId: 6, ttlMs: 1_000 }], keys: [{ key: Buffer.from('ttl'), expiresAtMs: 1 }] });
      new HardStateFile(`/data/${id}`, disk).write({ term: 3, vote: null, commit: revision });
    }
    for (const id of voters) await w.start(id, voters, { storage: ['s1'] });
    await w.until(() => w.leader() !== undefined);
    const electedAtMs = w.sched.nowMs;
    const lead = w.leader()!;
    expect(lead.status().firstIndex).toBe(revision + 1);
    const ask = async (kind: LeaseRequestKind, leaseId: number) => decodeLeaseReply((await w.settle(w.client.request(w.subjects.lease(lead.status().id), encodeLeaseRequest({ kind, leaseId, limit: 0 }), { timeoutMs: 5000 }))).data);
    // Promoted on election (etcd Promote): the full TTL plus the election timeout from now.
    const ttl = await ask(LeaseRequestKind.TimeToLive, 5);
    expect({ status: Status[ttl.status], ttlMs: ttl.ttlMs }).toEqual({ status: 'Ok', ttlMs: 60_000 });
    expect(ttl.remainingMs).toBeGreaterThan(60_000);
    const renewed = await ask(LeaseRequestKind.KeepAlive, 5);
    expect({ status: Status[renewed.status], ttlMs: renewed.ttlMs }).toEqual({ status: 'Ok', ttlMs: 60_000 });
    // The key expired long ago: its ExpireKey commits at once; lease 6, never renewed, goes only after its whole TTL.
    await w.until(() => lead.leaseCounts().trackedKeys === 0);
    await w.until(() => lead.leaseCounts().leases === 1);
    expect(w.sched.nowMs - electedAtMs).toBeGreaterThanOrEqual(1_000);
    expect(Status[(await ask(LeaseRequestKind.KeepAlive, 6)).status]).toBe('NotFound');
    expect(w.fatal).toEqual([]);
  });

  it('a failed fsync of a Ready takes the fatal path (RAFT_PERSISTENCE), once, and the write is never acknowledged', async () => {
    const { w, r } = await alone();
    expect((await w.propose('c1', [100])).status).toBe(Status.Ok);
    w.disk('c1').faults.fsyncErrorRate = 1;
    const commitBefore = r.status().commitIndex;
    const outcome: string[] = [];
    w.send('c1', [100]).then(
      (rep) => outcome.push(Status[rep.status]),
      (e: Error) => outcome.push(e.message),
    );
    await w.until(() => w.fatal.length > 0);
    expect(w.fatal).toHaveLength(1);
    expect(w.fatal[0].err).toMatchObject({ code: 'RAFT_PERSISTENCE' });
    expect(w.fatal[0].err.message).toMatch(/EIO/);
    // The replica stopped its loop: the write it could not persist is never acknowledged (the
    // gateway's request times out) and its commit index does not move.
    await w.until(() => outcome.length > 0);
    expect(outcome).not.toContain('Ok');
    expect(r.status().commitIndex).toBe(commitBefore);
  });

  it('a publish refused by the bus (over max_payload) is a lost message, not a fatal error: the replica goes on committing', async () => {
    const { w, r } = await alone();
    // The proposal goes out under the bound; then the bound shrinks, so the replica's ShipBatch of
    // that 20 KiB entry to the storage nodes is refused by the bus.
    const pending = w.client.request(w.subjects.propose('c1'), encodeProposeRequest({ commands: [{ op: CommandOp.Set, key: Buffer.from('big'), value: Buffer.alloc(20 * 1024) }] }), { timeoutMs: 5000 });
    w.net.faults.maxPayloadBytes = 8 * 1024;
    const reply = decodeProposeReply((await w.settle(pending)).data);
    expect(reply.status).toBe(Status.Ok);
    expect(w.net.firstPayloadRefused).toMatchObject({ host: 'c1', subject: w.subjects.ship() });
    expect((await w.propose('c1', [10])).status).toBe(Status.Ok);
    expect(r.status().commitIndex).toBe(reply.lastIndex + 1);
    expect(w.fatal).toEqual([]);
  });
});
