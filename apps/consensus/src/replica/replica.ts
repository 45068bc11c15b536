import {
  Status,
  decodeFetchRequest,
  decodeProposeRequest,
  decodeRaftMessages,
  decodeReadIndexRequest,
  encodeCommand,
  encodeFetchReply,
  encodeProposeReply,
  encodeReadIndexReply,
  encodeShipBatch,
  type ProposeReply,
  type ReadIndexReply,
  type WireEntry,
  type WireRaftMessage,
  decodeStatus,
  decodeMemberRequest,
  encodeMemberReply,
  encodeStatus,
  STATUS_INTERVAL_MS,
  type ConsensusStatus,
  type MemberReply,
  type MemberRequest,
} from '@cairn/protocol';
import {
  ConfChangeInProgressError,
  ConfChangeInvalidError,
  EntryType,
  MessageType,
  NotLeaderError,
  RaftNode,
  ReadIndexPendingFullError,
  isRaftMessage,
  type ConfChange,
  type Entry,
  type Message,
  type Ready,
} from '@cairn/raft';
import { logNetworkFault, payloadBytesMax, publishSafe, respondSafe, serveRequests, type Subjects } from '@cairn/messaging';
import type { Logger } from '@cairn/logging';
import type { ConsensusConfig } from '@cairn/config';
import { type TimerHandle, type Transport, type TransportMsg, type TransportSubscription, type World } from '@cairn/world';
import { nodeDisk, type Disk } from '@cairn/log';
import { HardStateFile } from '../storage/hard-state-file';
import { SnapshotFile } from '../storage/snapshot-file';
import { RaftLogStore } from '../storage/raft-log-store';
import { PendingProposals, type ProposalOutcome } from './pending-proposals';
import { clampFetchEntries, packRaftMessages, packShipBatches } from './bus-batches';
import { compactionPlan } from './compaction-policy';
import { catchUpVerdict, planMembership } from './membership-plan';

/** A disk write, fsync or file operation of the Raft state failed: the only fault that stops a replica. */
class PersistenceError extends Error {
  readonly code = 'RAFT_PERSISTENCE';
  constructor(
    readonly step: string,
    override readonly cause: unknown,
  ) {
    super(`${step} failed: ${(cause as Error)?.message ?? String(cause)}`);
    this.name = 'PersistenceError';
  }
}

/** Largest entry count per ShipBatch (bytes: bounded by the server's max_payload, payloadBytesMax). */
const SHIP_BATCH_ENTRIES_MAX = 4096;
const EMPTY = new Uint8Array(0);

/**
 * What storage nodes receive in place of a Raft config entry: a no-op at the same index (they hold
 * no Raft configuration, and their apply loop needs every index).
 */
function forStorage(e: Entry): Entry {
  return e.type === EntryType.Config ? { index: e.index, term: e.term, type: EntryType.Noop, data: EMPTY } : e;
}

/** A membership step that failed; `status` is the MemberReply status to answer with. */
class MemberStepError extends Error {
  constructor(
    readonly status: MemberReply['status'],
    message: string,
    readonly leaderHint = '',
  ) {
    super(message);
    this.name = 'MemberStepError';
  }
}

export interface ReplicaOptions {
  id: string;
  /** The initial voters (config file); config entries in the log override them (thesis §4.1). */
  voters: string[];
  /** The initial storage-node list (config file), carried in the Raft configuration. */
  storage?: string[];
  config: ConsensusConfig;
  dataDir: string;
  /** The disk under `dataDir` (default node:fs; the simulator passes a simulated disk). */
  disk?: Disk;
  /** The message bus (production: `natsTransport(nc)`; simulation: `SimNetwork.connect`). */
  bus: Transport;
  /** Time and randomness (production: `realWorld`; simulation: the scheduler's). */
  world: World;
  subjects: Subjects;
  log: Logger;
  /**
   * Called once when the replica must stop: a failed disk write or fsync (`err.code` RAFT_PERSISTENCE)
   * or a violated Raft invariant. The replica has already stopped its loop; the process shell ends
   * the process (exit code 70), the simulator records a failure.
   */
  onFatal: (err: Error) => void;
  /**
   * Test switch for the simulator (never set in production): one publish per peer per Ready with
   * all its messages, whatever their size, restoring the coalescing bug of issue 9 (a batch over
   * max_payload is refused and lost, so a large Append never reaches its follower). Default false.
   */
  coalesceRaftMessages?: boolean;
  /** Called on every soft-state change a Ready carries (role, term, leader), before the replica acts on it; the simulator checks election safety here. */
  onSoftState?: (ss: { role: 'follower' | 'candidate' | 'leader'; leaderId: string | null; term: number }) => void;
  /** Called after each Ready's hard state and entries are durable (its group-committed fdatasync), with how long that took on the world's clock, ms, and the entries it appended; metrics observe it. */
  onPersisted?: (durationMs: number, entries: number) => void;
}

interface QueuedProposal {
  commands: Uint8Array[];
  msg: TransportMsg;
}

/**
 * One consensus replica: drives the pure `RaftNode` (libs/raft) with timers, NATS and disk.
 *
 * The loop (etcd raft's Ready cycle): apply queued inputs (ticks, Raft messages, proposals) to the
 * node → take its Ready → persist hard state and entries (one group-committed fdatasync) → send
 * messages → answer committed proposals and ship committed entries to the storage nodes → advance.
 * Inputs arriving while a Ready is being persisted wait in bounded queues and all go into the next
 * Ready, which is how client writes are batched per fsync and per Append.
 */
export class Replica {
  private node!: RaftNode;
  private store!: RaftLogStore;
  private hardStateFile!: HardStateFile;
  private snapshotFile!: SnapshotFile;
  /** Durable applied index each storage node last reported (status heartbeats): what compaction may drop. */
  private readonly storageApplied = new Map<string, number>();
  /** Counts since start, read by the metrics endpoint (apps/consensus/src/metrics). */
  readonly counters = { compactions: 0, snapshotsSent: 0, snapshotsInstalled: 0 };
  /** Set by the compaction timer; the Ready loop compacts (node, snapshot file, log prefix) when set. */
  private compactDue = false;
  private persistedTerm = 0;
  private persistedVote: string | null = null;

  private inbox: Message[] = [];
  private proposals: QueuedProposal[] = [];
  /** ReadIndex requests (thesis §6.4) waiting to be handed to the state machine. */
  private readRequests: TransportMsg[] = [];
  /** ReadIndex requests handed to the state machine, by the context number given to it. */
  private readsPending = new Map<number, TransportMsg>();
  private readSeq = 0;
  /** Membership changes waiting to be handed to the state machine (thesis §4.1). */
  private confChanges: { cc: ConfChange; resolve: () => void; reject: (e: Error) => void }[] = [];
  /** Proposed config entries awaiting commit, by index. */
  private confWaiters = new Map<number, { term: number; resolve: () => void; reject: (e: Error) => void }>();
  /** One membership operation at a time per replica (the state machine allows one change at a time anyway). */
  private memberBusy = false;
  /** The learner being waited for (thesis §4.2.1), checked after each batch of inputs; at most one (memberBusy). */
  private catchUp: { node: string; target: number; timer: TimerHandle; resolve: () => void; reject: (e: Error) => void } | null = null;
  /** Set by stop(): hand leadership to this follower before leaving (thesis §3.10). */
  private transferTo: string | null = null;
  private leadershipLost: (() => void) | null = null;
  private ticks = 0;
  private running = false;
  /** True while `loop()` runs (a kicked loop waits for its deferred start first). */
  private inLoop = false;
  private stopped = false;
  private stopping: Promise<void> | null = null;
  private loopDone: Promise<void> = Promise.resolve();

  private pending: PendingProposals;
  /** Highest committed index this replica has handed on (answered, shipped). */
  private applied = 0;
  private role: 'follower' | 'candidate' | 'leader' = 'follower';
  private leaderId: string | null = null;
  private term = 0;

  private timers: TimerHandle[] = [];
  private subs: TransportSubscription[] = [];

  constructor(private readonly opts: ReplicaOptions) {
    this.pending = new PendingProposals(opts.config.proposalsPendingMax);
  }

  /** Restores the log and hard state from disk, then starts ticking and serving. */
  async start(): Promise<void> {
    const { config, dataDir, log } = this.opts;
    const disk = this.opts.disk ?? nodeDisk;
    disk.mkdirSync(dataDir, { recursive: true });
    this.snapshotFile = new SnapshotFile(dataDir, disk);
    const snap = this.snapshotFile.read();
    this.store = await RaftLogStore.open(`${dataDir}/raft-log`, { segmentBytesMax: config.segmentBytesMax, fsyncPolicy: config.fsyncPolicy, disk }, snap ? snap.index + 1 : 1);
    if (this.store.recovery.tornTail) log.warn({ tornTail: this.store.recovery.tornTail }, 'raft log: torn tail truncated on recovery');
    if (snap && (await this.store.alignWithSnapshot(snap))) {
      log.warn({ snapshot: { index: snap.index, term: snap.term } }, 'raft log did not continue the snapshot (crash while installing one): discarded');
    }
    this.hardStateFile = new HardStateFile(dataDir, disk);
    const hs = this.hardStateFile.read() ?? { term: 0, vote: null, commit: 0 };
    const entries = this.store.readAll(snap ? snap.index + 1 : 1);
    const commit = Math.max(Math.min(hs.commit, this.store.lastIndex()), snap?.index ?? 0);
    this.persistedTerm = hs.term;
    this.persistedVote = hs.vote;
    this.applied = commit;
    this.term = hs.term;
    this.node = new RaftNode({
      id: this.opts.id,
      voters: this.opts.voters,
      storage: this.opts.storage ?? [],
      electionTicks: Math.max(2, Math.round(config.electionTimeoutMinMs / config.tickMs)),
      heartbeatTicks: Math.max(1, Math.round(config.heartbeatIntervalMs / config.tickMs)),
      inflightMsgsMax: config.inflightMsgsMax,
      entriesPerMsgMax: config.entriesPerMsgMax,
      msgBytesMax: config.msgBytesMax,
      random: () => this.opts.world.random.float(),
      preVote: config.preVote,
      checkQuorum: config.checkQuorum,
      readIndexPendingMax: config.readIndexPendingMax,
      restored: { hardState: { ...hs, commit }, entries, ...(snap ? { snapshot: snap } : {}) },
      applied: commit,
    });
    log.info({ term: hs.term, vote: hs.vote, commit, firstIndex: this.store.firstIndex(), lastIndex: this.store.lastIndex(), snapshotIndex: snap?.index ?? 0 }, 'raft state restored');

    const { bus, subjects, id } = this.opts;
    const { clock } = this.opts.world;
    this.subs.push(
      bus.subscribe(subjects.raft(id), (msg) => this.onRaftMessages(msg.data)),
      bus.subscribe(subjects.propose(id), (msg) => this.onPropose(msg)),
      bus.subscribe(subjects.readIndex(id), (msg) => this.onReadIndex(msg)),
      bus.subscribe(subjects.member(id), (msg) => void this.onMember(msg)),
      bus.subscribe(subjects.storageStatus(), (msg) => {
        const st = decodeStatus(msg.data);
        if (st?.kind === 'storage') this.storageApplied.set(st.id, st.appliedIndex);
      }),
      serveRequests(bus, subjects.fetch(id), (data) => this.onFetch(data), {
        log,
        onError: (e) => encodeFetchReply({ status: Status.Error, commitIndex: this.applied, entries: [], message: String(e) }),
      }),
    );
    this.timers.push(
      clock.setInterval(() => {
        this.ticks++;
        this.kick();
      }, config.tickMs),
      clock.setInterval(() => this.publishStatus(), STATUS_INTERVAL_MS),
      clock.setInterval(() => {
        this.compactDue = true;
        this.kick();
      }, config.compactionIntervalMs),
      // Commit heartbeat to the storage nodes: tells a node that missed a ShipBatch how far to backfill.
      clock.setInterval(() => this.shipCommitHeartbeat(), config.heartbeatIntervalMs),
    );
  }

  /** Stops serving, fails pending proposals, waits for the loop, closes the log. */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    await this.transferLeadershipAway();
    this.stopped = true;
    for (const t of this.timers) this.opts.world.clock.clearTimer(t);
    for (const s of this.subs) s.unsubscribe();
    await this.loopDone;
    this.pending.failAll('replica shutting down');
    this.failConfChanges('replica shutting down');
    this.checkCatchUp(false);
    this.failReads([...this.readsPending.values(), ...this.readRequests], 'replica shutting down');
    this.readsPending.clear();
    this.readRequests = [];
    for (const p of this.proposals) this.reply(p.msg, { status: Status.Unavailable, retrySafe: true, firstIndex: 0, lastIndex: 0, leaderHint: '', message: 'replica shutting down' });
    this.proposals = [];
    await this.store.close();
  }

  /**
   * A crash as the simulator models it (the process vanishes; its world incarnation is killed by
   * the caller): no leadership transfer, no replies, nothing more sent. Waits for a Ready being
   * persisted, then closes the log so a new Replica can open the same directory.
   */
  async abandon(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) this.opts.world.clock.clearTimer(t);
    for (const s of this.subs) s.unsubscribe();
    if (this.inLoop) await this.loopDone;
    await this.store?.close();
  }

  /** The Ready being processed, when one is (the simulator waits for it before advancing virtual time); else null. */
  busy(): Promise<void> | null {
    return this.inLoop ? this.loopDone : null;
  }

  status(): ConsensusStatus {
    const st = this.node.status();
    return {
      kind: 'consensus',
      id: this.opts.id,
      role: st.role,
      term: st.term,
      leaderId: st.leaderId,
      commitIndex: st.commit,
      lastIndex: st.lastIndex,
      appliedIndex: this.applied,
      logBytes: this.store.sizeBytes(),
      firstIndex: st.firstIndex,
      conf: st.conf,
      confIndex: st.confIndex,
      atMs: this.opts.world.clock.nowMs(),
    };
  }

  // ---- inputs -------------------------------------------------------------------------------

  private onRaftMessages(data: Uint8Array): void {
    let msgs: WireRaftMessage[];
    try {
      msgs = decodeRaftMessages(data);
    } catch (e) {
      this.opts.log.warn({ err: e }, 'dropping undecodable raft message batch');
      return;
    }
    for (const m of msgs) {
      if (m.to !== this.opts.id) continue;
      // A type this version does not know is a lost message to Raft, never a broken invariant.
      if (!isRaftMessage(m)) {
        this.opts.log.warn({ type: m.type, from: m.from }, 'dropping raft message of unknown type');
        continue;
      }
      // Raft tolerates lost messages (retransmission): dropping beyond the bound keeps memory bounded.
      if (this.inbox.length >= this.opts.config.inboxMessagesMax) break;
      this.inbox.push(m);
    }
    this.kick();
  }

  private onPropose(msg: TransportMsg): void {
    let commands: Uint8Array[];
    try {
      commands = decodeProposeRequest(msg.data).commands.map(encodeCommand);
    } catch (e) {
      this.reply(msg, { status: Status.BadRequest, firstIndex: 0, lastIndex: 0, leaderHint: '', message: `bad proposal: ${(e as Error).message}` });
      return;
    }
    if (this.role !== 'leader') {
      this.reply(msg, this.notLeader());
      return;
    }
    if (commands.length === 0) {
      this.reply(msg, { status: Status.BadRequest, firstIndex: 0, lastIndex: 0, leaderHint: '', message: 'empty proposal' });
      return;
    }
    this.proposals.push({ commands, msg });
    this.kick();
  }

  private onReadIndex(msg: TransportMsg): void {
    try {
      decodeReadIndexRequest(msg.data);
    } catch (e) {
      this.replyRead(msg, { status: Status.BadRequest, readIndex: 0, leaderHint: '', message: `bad read index request: ${(e as Error).message}` });
      return;
    }
    if (this.role !== 'leader') {
      this.replyRead(msg, { status: Status.NotLeader, readIndex: 0, leaderHint: this.leaderId ?? '', message: 'not the leader' });
      return;
    }
    this.readRequests.push(msg);
    this.kick();
  }

  /**
   * Graceful shutdown of a leader: hand leadership to a follower first (thesis §3.10) so a rolling
   * restart costs no election timeout. Bounded by transferLeadershipTimeoutMs; on timeout the
   * replica leaves anyway and the others elect a leader as after a crash.
   */
  private async transferLeadershipAway(): Promise<void> {
    const st = this.node?.status();
    if (!st || st.role !== 'leader' || !st.progress || st.conf.voters.length < 2) return;
    const target = Object.entries(st.progress)
      .filter(([id]) => id !== this.opts.id && st.conf.voters.includes(id))
      .sort((a, b) => b[1].match - a[1].match)[0]?.[0];
    if (!target) return;
    this.opts.log.info({ target }, 'transferring leadership before shutdown');
    await new Promise<void>((resolve) => {
      const { clock } = this.opts.world;
      const timer = clock.setTimeout(resolve, this.opts.config.transferLeadershipTimeoutMs);
      this.leadershipLost = () => {
        clock.clearTimer(timer);
        resolve();
      };
      this.transferTo = target;
      this.kick();
    });
    this.leadershipLost = null;
  }

  private onFetch(data: Uint8Array): Uint8Array {
    const req = decodeFetchRequest(data);
    if (req.fromIndex < this.store.firstIndex()) {
      // Raft §7: compacted. The storage node must bootstrap from a storage snapshot of a peer.
      return encodeFetchReply({ status: Status.Error, commitIndex: this.applied, entries: [], message: `compacted: entries before ${this.store.firstIndex()} are gone from the Raft log; bootstrap from a storage snapshot` });
    }
    const to = Math.min(this.applied, req.fromIndex + Math.max(1, req.entriesMax) - 1);
    // The reply must fit one NATS message whatever the requester asked for.
    const bytesMax = Math.min(req.bytesMax, payloadBytesMax(this.opts.bus));
    const entries = req.fromIndex >= 1 && req.fromIndex <= to ? this.store.entries(req.fromIndex, to, bytesMax) : [];
    return encodeFetchReply({ status: Status.Ok, commitIndex: this.applied, entries: clampFetchEntries(entries.map(forStorage) as WireEntry[], bytesMax), message: '' });
  }

  // ---- the Ready loop ---------------------------------------------------------------------

  private kick(): void {
    if (this.running || this.stopped) return;
    this.running = true;
    this.loopDone = new Promise<void>((resolve) => this.opts.world.clock.defer(() => void this.loop().finally(resolve)));
  }

  private async loop(): Promise<void> {
    this.inLoop = true;
    try {
      while (!this.stopped) {
        this.drainInputs();
        // Progress (a learner's match index) and the role only move when inputs are stepped.
        this.checkCatchUp(false);
        if (this.compactDue) {
          this.compactDue = false;
          const firstIndex = this.store.firstIndex();
          await this.durably('log compaction', () => this.maybeCompact());
          if (this.store.firstIndex() > firstIndex) this.counters.compactions++;
        }
        if (!this.node.hasReady()) break;
        const rd = this.node.ready();
        const persistStartMs = this.opts.world.clock.nowMs();
        await this.durably('persisting a Ready', () => this.persist(rd));
        this.opts.onPersisted?.(this.opts.world.clock.nowMs() - persistStartMs, rd.entries.length);
        // From here on only the network and bookkeeping: publishes and replies never throw (a
        // failed one is a lost message: Raft retransmits, shipping is backfilled by fetch, a
        // proposer times out and asks for the outcome).
        this.send(rd.messages);
        // Role first: a leader that stepped down in this Ready fails its proposals as "unknown"
        // before any commit could be misread, and a new leader ships what commits in it.
        // Config commits before the role: a leader that removed itself steps down in the very
        // Ready that commits its removal, and that change did succeed (thesis §4.2.2).
        this.resolveConfWaiters(rd.committedEntries);
        if (rd.softState) this.handleSoftState(rd.softState);
        this.handleCommitted(rd.committedEntries);
        this.handleReadStates(rd);
        this.node.advance(rd);
      }
    } catch (e) {
      // A failed fsync/append (disk full, I/O error) leaves durability unknown: Raft must not go on
      // acknowledging. Stop the process with a clear error; a supervisor restarts it and recovery
      // re-reads what is durable. The only other way here is a violated invariant of the Raft
      // state machine (an Error named after it): a bug, and going on could break safety.
      if (e instanceof PersistenceError) this.opts.log.fatal({ err: e.cause, step: e.step }, 'raft persistence failed; stopping the replica');
      else this.opts.log.fatal({ err: e }, 'raft invariant violated; stopping the replica');
      this.stopped = true;
      this.opts.onFatal(e as Error);
    } finally {
      this.running = false;
      this.inLoop = false;
    }
    if (!this.stopped && (this.inbox.length || this.proposals.length || this.readRequests.length || this.confChanges.length || this.ticks)) this.kick();
  }

  /** Runs a disk step of the loop; its failure is a PersistenceError (the fatal path). */
  private async durably(step: string, fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (e) {
      throw new PersistenceError(step, e);
    }
  }

  private drainInputs(): void {
    for (; this.ticks > 0; this.ticks--) this.node.tick();
    const inbox = this.inbox;
    this.inbox = [];
    for (const m of inbox) {
      try {
        this.node.step(m);
      } catch (e) {
        // A malformed or misaddressed message from the wire must not stop the replica: drop it.
        this.opts.log.warn({ err: e, type: m.type, from: m.from }, 'dropping a raft message the state machine refused');
      }
    }
    const proposals = this.proposals;
    this.proposals = [];
    for (const p of proposals) this.propose(p);
    const reads = this.readRequests;
    this.readRequests = [];
    for (const msg of reads) this.readIndex(msg);
    const changes = this.confChanges;
    this.confChanges = [];
    for (const c of changes) {
      try {
        const r = this.node.proposeConfChange(c.cc);
        // Registered before the next Ready, so its commit cannot be missed.
        this.confWaiters.set(r.index, { term: r.term, resolve: c.resolve, reject: c.reject });
      } catch (e) {
        c.reject(e as Error);
      }
    }
    if (this.transferTo) {
      const to = this.transferTo;
      this.transferTo = null;
      try {
        this.node.transferLeadership(to);
      } catch (e) {
        this.opts.log.warn({ err: e, to }, 'leadership transfer refused');
        this.leadershipLost?.();
      }
    }
  }

  private readIndex(msg: TransportMsg): void {
    const ctx = ++this.readSeq;
    try {
      this.node.readIndex(ctx);
      this.readsPending.set(ctx, msg);
    } catch (e) {
      if (e instanceof NotLeaderError) {
        this.replyRead(msg, { status: Status.NotLeader, readIndex: 0, leaderHint: e.leaderId ?? '', message: 'not the leader' });
      } else if (e instanceof ReadIndexPendingFullError) {
        this.replyRead(msg, { status: Status.Unavailable, readIndex: 0, leaderHint: this.opts.id, message: 'leader overloaded: too many reads pending' });
      } else {
        this.opts.log.error({ err: e }, 'read index refused');
        this.replyRead(msg, { status: Status.Unavailable, readIndex: 0, leaderHint: this.leaderId ?? '', message: `read index refused: ${(e as Error).message}` });
      }
    }
  }

  /** Answers confirmed reads with their read index, and fails those the state machine dropped. */
  private handleReadStates(rd: Ready): void {
    for (const rs of rd.readStates) {
      const msg = this.readsPending.get(rs.ctx as number);
      if (!msg) continue;
      this.readsPending.delete(rs.ctx as number);
      this.replyRead(msg, { status: Status.Ok, readIndex: rs.index, leaderHint: this.opts.id, message: '' });
    }
    for (const f of rd.readStatesFailed) {
      const msg = this.readsPending.get(f.ctx as number);
      if (!msg) continue;
      this.readsPending.delete(f.ctx as number);
      this.replyRead(msg, { status: Status.NotLeader, readIndex: 0, leaderHint: this.leaderId ?? '', message: 'leadership lost before the read was confirmed' });
    }
  }

  private failReads(msgs: TransportMsg[], message: string): void {
    for (const msg of msgs) this.replyRead(msg, { status: Status.Unavailable, readIndex: 0, leaderHint: '', message });
  }

  private replyRead(msg: TransportMsg, r: ReadIndexReply): void {
    respondSafe(msg, encodeReadIndexReply(r), this.opts.log);
  }

  private propose(p: QueuedProposal): void {
    if (this.pending.full()) {
      this.reply(p.msg, { status: Status.Unavailable, retrySafe: true, firstIndex: 0, lastIndex: 0, leaderHint: this.opts.id, message: 'leader overloaded: too many proposals pending' });
      return;
    }
    let r: { firstIndex: number; lastIndex: number; term: number };
    try {
      r = this.node.propose(p.commands);
    } catch (e) {
      if (e instanceof NotLeaderError) {
        // During a leadership transfer the error names the transferee: send the gateway there.
        this.reply(p.msg, { ...this.notLeader(), leaderHint: e.leaderId ?? this.leaderId ?? '' });
        return;
      }
      // Nothing was appended: the gateway may re-send.
      this.opts.log.error({ err: e }, 'proposal refused');
      this.reply(p.msg, { status: Status.Unavailable, retrySafe: true, firstIndex: 0, lastIndex: 0, leaderHint: this.leaderId ?? '', message: `proposal refused: ${(e as Error).message}` });
      return;
    }
    this.pending.add({ ...r, resolve: (o) => this.reply(p.msg, this.outcomeReply(o)) });
  }

  private async persist(rd: Ready): Promise<void> {
    if (rd.snapshot) {
      // InstallSnapshot (Raft §7): the snapshot is durable before the log it replaces goes.
      await this.snapshotFile.write(rd.snapshot);
      await this.store.reset(rd.snapshot.index + 1);
      this.applied = rd.snapshot.index;
      this.counters.snapshotsInstalled++;
      this.opts.log.info({ index: rd.snapshot.index, term: rd.snapshot.term, conf: rd.snapshot.conf }, 'installed the leader\'s snapshot');
    }
    const hs = rd.hardState;
    if (hs && (hs.term !== this.persistedTerm || hs.vote !== this.persistedVote)) {
      // Term/vote must be durable before any message reflecting them leaves (Raft Figure 2).
      this.hardStateFile.write(hs);
      this.persistedTerm = hs.term;
      this.persistedVote = hs.vote;
    }
    await this.store.persist(rd.entries);
  }

  /**
   * Publishes a Ready's messages, per peer in order, in as many publishes as it takes to keep each
   * under payloadBytesMax (one Append alone always fits: start-up validation). A failed publish is
   * a lost message (Raft §5.3 retransmission), never an error of the loop.
   */
  private send(messages: Message[]): void {
    if (messages.length === 0) return;
    const byPeer = new Map<string, WireRaftMessage[]>();
    for (const m of messages) {
      if (m.type === MessageType.Snapshot) this.counters.snapshotsSent++;
      let batch = byPeer.get(m.to);
      if (!batch) byPeer.set(m.to, (batch = []));
      batch.push(m);
    }
    const { bus, subjects, log } = this.opts;
    const bytesMax = payloadBytesMax(bus);
    for (const [peer, batch] of byPeer) {
      for (const payload of packRaftMessages(batch, this.opts.coalesceRaftMessages ? Infinity : bytesMax)) publishSafe(bus, subjects.raft(peer), payload, log);
    }
  }

  private handleCommitted(entries: Entry[]): void {
    if (entries.length === 0) return;
    if (entries[0].index !== this.applied + 1) {
      throw new Error(`committed entries start at ${entries[0].index}, expected ${this.applied + 1}`);
    }
    this.pending.onCommitted(entries);
    this.applied = entries[entries.length - 1].index;
    if (this.role === 'leader') this.ship(entries);
  }

  private handleSoftState(ss: { role: 'follower' | 'candidate' | 'leader'; leaderId: string | null; term: number }): void {
    this.opts.onSoftState?.(ss);
    const wasLeader = this.role === 'leader';
    this.role = ss.role;
    this.leaderId = ss.leaderId;
    this.term = ss.term;
    if (ss.role === 'leader' && !wasLeader) {
      this.opts.log.info({ term: ss.term }, 'became leader');
    } else if (wasLeader && ss.role !== 'leader') {
      this.opts.log.info({ term: ss.term, leaderId: ss.leaderId }, 'lost leadership');
      this.pending.failAll('leadership lost before commit; outcome unknown');
      this.failConfChanges('leadership lost before the configuration change committed; outcome unknown (list the members)');
      this.checkCatchUp(false);
      this.leadershipLost?.();
    }
  }

  // ---- log shipping ------------------------------------------------------------------------

  /**
   * Publishes committed entries to every storage node, in index order, in batches of at most
   * payloadBytesMax bytes and SHIP_BATCH_ENTRIES_MAX entries. A lost batch is backfilled: the
   * node sees the gap and fetches (commit heartbeat below).
   */
  private ship(entries: Entry[]): void {
    const { bus, subjects, log, id } = this.opts;
    const batches = packShipBatches(entries.map(forStorage) as WireEntry[], { leaderId: id, term: this.term, bytesMax: payloadBytesMax(bus), entriesMax: SHIP_BATCH_ENTRIES_MAX });
    for (const payload of batches) publishSafe(bus, subjects.ship(), payload, log);
  }

  private shipCommitHeartbeat(): void {
    if (this.role !== 'leader' || this.stopped) return;
    publishSafe(this.opts.bus, this.opts.subjects.ship(), encodeShipBatch({ leaderId: this.opts.id, term: this.term, commitIndex: this.applied, entries: [] }), this.opts.log);
  }

  private publishStatus(): void {
    if (this.stopped) return;
    let status: ConsensusStatus;
    try {
      status = this.status();
    } catch (e) {
      // The log is closed for a moment while a leader's snapshot is installed (RaftLogStore.reset):
      // skip this heartbeat; a timer callback that throws would end the process.
      logNetworkFault(this.opts.log, 'status:unavailable', { err: e }, 'status heartbeat skipped', this.opts.world.clock);
      return;
    }
    publishSafe(this.opts.bus, this.opts.subjects.consensusStatus(), encodeStatus(status), this.opts.log);
  }

  // ---- log compaction (Raft §7) ------------------------------------------------------------

  /**
   * Drops the log prefix `compactionPlan` allows (what every storage node of the configuration has
   * durably applied, less `logRetainedEntries`; past `logEntriesMax` entries, regardless). Runs
   * inside the Ready loop (between Readies): the node, then the snapshot file, then the segments.
   */
  private async maybeCompact(): Promise<void> {
    const { config, log } = this.opts;
    const st = this.node.status();
    const plan = compactionPlan({
      applied: this.applied,
      firstIndex: st.firstIndex,
      lastIndex: st.lastIndex,
      storage: st.conf.storage,
      storageApplied: this.storageApplied,
      logRetainedEntries: config.logRetainedEntries,
      logEntriesMax: config.logEntriesMax,
    });
    if (plan.forced) {
      log.warn({ kept: plan.keptEntries, logEntriesMax: config.logEntriesMax, storageApplied: Object.fromEntries(this.storageApplied), forced: plan.compactTo }, 'raft log over logEntriesMax: compacting past a lagging storage node');
    }
    if (plan.compactTo === null) return;
    const target = plan.compactTo;
    this.node.compact(target);
    await this.snapshotFile.write(this.node.snapshot());
    await this.store.dropPrefix(target + 1);
    log.debug({ compactedTo: target, firstIndex: this.store.firstIndex(), segments: this.store.segmentCount() }, 'raft log compacted');
  }

  // ---- membership (thesis §4) -------------------------------------------------------------

  private async onMember(msg: TransportMsg): Promise<void> {
    const answer = (r: Omit<MemberReply, 'conf' | 'confIndex'>): void => {
      const st = this.node.status();
      respondSafe(msg, encodeMemberReply({ ...r, conf: st.conf, confIndex: st.confIndex }), this.opts.log);
    };
    let req: MemberRequest;
    try {
      req = decodeMemberRequest(msg.data);
    } catch (e) {
      return answer({ status: 'bad_request', message: (e as Error).message, leaderHint: '' });
    }
    if (this.role !== 'leader' || this.stopped) return answer({ status: 'not_leader', message: 'not the leader', leaderHint: this.leaderId ?? '' });
    if (this.memberBusy) return answer({ status: 'busy', message: 'another membership change is in progress on this leader', leaderHint: this.opts.id });
    this.memberBusy = true;
    try {
      const message = await this.changeMembership(req);
      this.opts.log.info({ req, conf: this.node.status().conf }, `membership: ${message}`);
      answer({ status: 'ok', message, leaderHint: this.opts.id });
    } catch (e) {
      const err = e instanceof MemberStepError ? e : null;
      this.opts.log.warn({ req, err: e }, 'membership change failed');
      answer({ status: err?.status ?? 'unavailable', message: (e as Error).message, leaderHint: err?.leaderHint ?? this.leaderId ?? '' });
    } finally {
      this.memberBusy = false;
    }
  }

  /**
   * Runs one membership operation as the single-server changes `planMembership` gives (thesis
   * §4.1), each committed (or caught up) before the next. Idempotent: asking for what is already
   * true answers ok. @returns a human-readable summary. @throws MemberStepError
   */
  private async changeMembership(req: MemberRequest): Promise<string> {
    const plan = planMembership(this.node.status().conf, req);
    for (const step of plan.steps) {
      if (step.kind === 'confChange') await this.commitConfChange(step.cc);
      else await this.waitCaughtUp(step.node);
    }
    return plan.message;
  }

  /** Proposes `cc` through the Ready loop and resolves once its entry is committed. @throws MemberStepError (rejections carry it, or a state machine error mapped here) */
  private async commitConfChange(cc: ConfChange): Promise<void> {
    try {
      await new Promise<void>((resolve, reject) => {
        this.confChanges.push({ cc, resolve, reject });
        this.kick();
      });
    } catch (e) {
      if (e instanceof ConfChangeInProgressError) throw new MemberStepError('busy', e.message, this.opts.id);
      if (e instanceof ConfChangeInvalidError) throw new MemberStepError('invalid', e.message, this.opts.id);
      if (e instanceof NotLeaderError) throw new MemberStepError('not_leader', e.message, e.leaderId ?? '');
      throw e;
    }
  }

  /**
   * Thesis §4.2.1: a new server joins as a learner and becomes a voter only once its log has
   * caught up with the leader's commit index as of the start of the wait, so adding it does not
   * stall commits. Checked (catchUpVerdict) now, after each batch of inputs the Ready loop steps,
   * and at the deadline.
   * @throws MemberStepError 'unavailable' after memberCatchUpTimeoutMs, 'not_leader' on leadership loss or stop.
   */
  private waitCaughtUp(node: string): Promise<void> {
    const target = this.node.status().commit;
    return new Promise<void>((resolve, reject) => {
      const timer = this.opts.world.clock.setTimeout(() => this.checkCatchUp(true), this.opts.config.memberCatchUpTimeoutMs);
      this.catchUp = { node, target, timer, resolve, reject };
      this.checkCatchUp(false);
    });
  }

  /** Settles the catch-up wait, if there is one and `catchUpVerdict` says it is over. */
  private checkCatchUp(expired: boolean): void {
    const w = this.catchUp;
    if (!w) return;
    const v = catchUpVerdict(this.node.status(), w.node, w.target, expired, this.stopped);
    if (v.kind === 'waiting') return;
    this.catchUp = null;
    this.opts.world.clock.clearTimer(w.timer);
    if (v.kind === 'caughtUp') w.resolve();
    else if (v.kind === 'notLeader') w.reject(new MemberStepError('not_leader', 'leadership lost while the new replica was catching up', v.leaderHint));
    else {
      w.reject(new MemberStepError('unavailable', `replica ${w.node} did not catch up within ${this.opts.config.memberCatchUpTimeoutMs} ms (match ${v.match}, target ${w.target}); it stays a learner: is it running with --join? run the add again to retry`));
    }
  }

  private resolveConfWaiters(entries: Entry[]): void {
    if (this.confWaiters.size === 0) return;
    for (const e of entries) {
      if (e.type !== EntryType.Config) continue;
      const w = this.confWaiters.get(e.index);
      if (!w) continue;
      this.confWaiters.delete(e.index);
      if (e.term === w.term) w.resolve();
      else w.reject(new MemberStepError('unavailable', 'configuration change overwritten by a new leader; not applied'));
    }
  }

  private failConfChanges(message: string): void {
    for (const c of this.confChanges) c.reject(new MemberStepError('unavailable', message));
    this.confChanges = [];
    for (const w of this.confWaiters.values()) w.reject(new MemberStepError('unavailable', message));
    this.confWaiters.clear();
  }

  // ---- replies -----------------------------------------------------------------------------

  private notLeader(): ProposeReply {
    return { status: Status.NotLeader, retrySafe: true, firstIndex: 0, lastIndex: 0, leaderHint: this.leaderId ?? '', message: 'not the leader' };
  }

  private outcomeReply(o: ProposalOutcome): ProposeReply {
    switch (o.kind) {
      case 'committed':
        return { status: Status.Ok, firstIndex: o.firstIndex, lastIndex: o.lastIndex, leaderHint: this.opts.id, message: '' };
      case 'overwritten':
        return { status: Status.Unavailable, retrySafe: true, firstIndex: 0, lastIndex: 0, leaderHint: this.leaderId ?? '', message: 'proposal overwritten by a new leader; not applied' };
      case 'unknown':
        return { status: Status.Unavailable, firstIndex: 0, lastIndex: 0, leaderHint: this.leaderId ?? '', message: o.reason };
    }
  }

  private reply(msg: TransportMsg, r: ProposeReply): void {
    respondSafe(msg, encodeProposeReply(r), this.opts.log);
  }
}
