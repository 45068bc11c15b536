import { LEASE_STATE_REQUEST_TYPE, Status, decodeCommand, encodeCommand, decodeRaftMessages, encodeFetchReply, encodeStatus, decodeStatus, STATUS_INTERVAL_MS, STATUS_REFRESH_MS, type ConsensusStatus, type WireRaftMessage } from '@cairn/protocol';
import { EntryType, MessageType, RaftNode, isRaftMessage, type Entry, type Message, type Ready } from '@cairn/raft';
import { hopTrace, logNetworkFault, payloadBytesMax, publishSafe, serveRequests } from '@cairn/messaging';
import type { ProcessWorld } from '@cairn/nest-runtime';
import type { ConsensusConfig } from '@cairn/config';
import { type TimerHandle, type TransportSubscription } from '@cairn/world';
import { LeaseStateFile, nodeDisk, type Disk } from '@cairn/log';
import type { RaftLogStore } from '../storage/raft-log-store';
import { Proposals } from './proposals';
import { LeaseTable } from '../leases/lease-table';
import { answerLeaseRequest } from '../leases/lease-requests';
import { answerLeaseStateRequest, fetchLeaseState, type FetchedLeaseState } from '../leases/lease-state-transfer';
import { packRaftMessages } from './bus-batches';
import { compactionPlan } from './compaction-policy';
import { LogShipper } from './log-shipping';
import { MembershipChanges } from './membership-changes';
import { PersistenceError, RaftPersistence, durably } from './persistence';
import { ReadIndexRequests } from './read-index-requests';
import { ReadyWrites } from './ready-writes';

/** Entries and bytes per read of the restored log while folding it into the lease table at start. */
const LEASE_RESTORE_ENTRIES_MAX = 4096;
const LEASE_RESTORE_BYTES_MAX = 4 * 1024 * 1024;

export interface ReplicaOptions extends Omit<ProcessWorld, 'onFatal'> {
  id: string;
  /** The initial voters (config file); config entries in the log override them (thesis §4.1). */
  voters: string[];
  /** The initial storage-node list (config file), carried in the Raft configuration. */
  storage?: string[];
  config: ConsensusConfig;
  /** The disk under `dataDir` (default node:fs; the simulator passes a simulated disk). */
  disk?: Disk;
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
  /**
   * Where membership requests (`member.<replica>`) are served: 'bus' (default; the simulator)
   * subscribes on `bus`; 'external' leaves it to the process shell, which serves them on Nest's
   * NATS transport (apps/consensus membership.controller.ts) through `answerMember`.
   */
  memberRequests?: 'bus' | 'external';
}

/**
 * One consensus replica: drives the pure `RaftNode` (libs/raft) with timers, NATS and disk.
 *
 * The loop (etcd raft's Ready cycle): apply queued inputs (ticks, Raft messages, proposals) to the
 * node → take its Ready → persist hard state and entries (one group-committed fdatasync) → send
 * messages → answer committed proposals and ship committed entries to the storage nodes → advance.
 * Inputs arriving while a Ready is being persisted wait in bounded queues and all go into the next
 * Ready, which is how client writes are batched per fsync and per Append. With
 * `consensus.asyncStorageWrites` (opt-in; default off) the loop does not wait for a Ready's write: it starts
 * it (the log's group commit coalesces writes started meanwhile) and goes on with the next
 * inputs; the write's completion comes back to the node (`RaftNode.persisted`) and releases the
 * messages that acknowledge it (ready-writes.ts, bounded by `writesInflightMax` / `…BytesMax`).
 *
 * The loop and the role live here; each concern it drives is a module of this folder: the disk
 * (persistence.ts), client writes (proposals.ts), ReadIndex (read-index-requests.ts), membership
 * (membership-changes.ts, with the pure membership-plan.ts), shipping and fetch (log-shipping.ts),
 * compaction policy (compaction-policy.ts) and bus batching (bus-batches.ts).
 */
export class Replica {
  private node!: RaftNode;
  private persistence!: RaftPersistence;
  private store!: RaftLogStore;
  /** Durable applied index each storage node last reported (status heartbeats): what compaction may drop. */
  private readonly storageApplied = new Map<string, number>();
  /** Counts since start, read by the metrics endpoint (apps/consensus/src/metrics). */
  readonly counters = { compactions: 0, snapshotsSent: 0, snapshotsInstalled: 0, entryBytesPersisted: 0, leaseStateSaves: 0, leaseStatesAdopted: 0 };
  /** Set by the compaction timer; the Ready loop compacts (node, snapshot file, log prefix) when set. */
  private compactDue = false;

  private inbox: Message[] = [];
  /** ReadIndex (thesis §6.4), leader side. */
  private readonly reads: ReadIndexRequests;
  /** The membership control plane (thesis §4), leader side. */
  private readonly members: MembershipChanges;
  private readonly shipper: LogShipper;
  /** Set by stop(): hand leadership to this follower before leaving (thesis §3.10). */
  private transferTo: string | null = null;
  private leadershipLost: (() => void) | null = null;
  /** When the next Raft tick falls due, ms on the monotonic clock (applyTicks). */
  private tickDueMs = 0;
  /** The one-shot timer that wakes the loop for the next tick that may act (armTickTimer), and when it fires; null when none is armed. */
  private tickTimer: { handle: TimerHandle; atMs: number } | null = null;
  private running = false;
  /** True while `loop()` runs (a kicked loop waits for its deferred start first). */
  private inLoop = false;
  private stopped = false;
  /** Set once the fatal path ran (the loop or a background lease-state save). */
  private failed = false;
  private stopping: Promise<void> | null = null;
  private loopDone: Promise<void> = Promise.resolve();

  /** Client writes, leader side. */
  private readonly proposals: Proposals;
  /** Highest committed index this replica has handed on (answered, shipped). */
  private applied = 0;
  private role: 'follower' | 'candidate' | 'leader' = 'follower';
  private leaderId: string | null = null;
  private term = 0;

  private timers: TimerHandle[] = [];
  /** The last status heartbeat published: its JSON without `atMs`, and its `atMs` (publishStatus). */
  private lastStatus: { json: string; atMs: number } | null = null;
  /** Leases and key expiries (docs/leases.md "Leader lease table"). */
  private readonly leases: LeaseTable;
  /** Set by the expiry timer; the Ready loop proposes what is due. */
  private expiryDue = false;
  /** The lease table on disk, saved before a compaction drops the commands it was folded from (docs/leases.md "Restarts and compaction"). */
  private leaseFile!: LeaseStateFile;
  /** The lease table holds every committed command up to this index: a committed entry at or below it is not folded in again. */
  private leaseStateIndex = 0;
  /** Index of the lease table last saved to `leaseFile` by a save that completed (0: none): compaction may drop the log up to it, never past it. */
  private leaseFileIndex = 0;
  /** The background save of the lease table in progress (its index and completion), or null. */
  private leaseSave: { index: number; done: Promise<void> } | null = null;
  /** A save is wanted as soon as none is in progress (a peer asked for a newer file, or a fetched table must reach the disk). */
  private leaseSaveDue = false;
  /** The fetch of a peer's lease-state file in progress (after a snapshot install: docs/leases.md "Snapshot install"), or null. */
  private leaseFetch: Promise<void> | null = null;
  /** A table fetched from a peer, for the loop to adopt. */
  private fetchedLeases: FetchedLeaseState | null = null;
  /** Counts since start of lease-state fetches (metrics, tests). */
  readonly leaseFetchCounters = { attempts: 0, adopted: 0, refused: 0 };
  /** 0, or the index up to which the lease table may lack commands (a leader's snapshot installed, or a compacted log without a lease-state file). */
  private leaseGapThrough = 0;
  private subs: TransportSubscription[] = [];
  /** Ready writes in flight (consensus.asyncStorageWrites). */
  private readonly writes: ReadyWrites;

  constructor(private readonly opts: ReplicaOptions) {
    const { id, log } = opts;
    const kick = () => this.kick();
    const isLeader = () => this.role === 'leader';
    const leaderId = () => this.leaderId;
    const c = opts.config;
    this.leases = new LeaseTable({ leasesMax: c.leasesMax, ttlKeysMax: c.ttlKeysMax, expiriesPerCheckMax: c.expiriesPerCheckMax, expiryRetryMs: c.expiryRetryMs });
    this.proposals = new Proposals({ id, log, proposalsPendingMax: c.proposalsPendingMax, isLeader, leaderId, kick, refuse: (commands) => this.leases.refuseGrants(commands) });
    this.reads = new ReadIndexRequests({ id, log, isLeader, leaderId, kick });
    this.members = new MembershipChanges({
      id,
      log,
      clock: opts.world.clock,
      memberCatchUpTimeoutMs: opts.config.memberCatchUpTimeoutMs,
      node: () => this.node,
      isLeader,
      leaderId,
      stopped: () => this.stopped,
      kick,
    });
    this.shipper = new LogShipper({ id, bus: opts.bus, subjects: opts.subjects, log });
    this.writes = new ReadyWrites({ writesInflightMax: c.writesInflightMax, writesInflightBytesMax: c.writesInflightBytesMax, nowMs: () => opts.world.clock.nowMs(), kick: () => this.kick(true) });
  }

  /** Restores the log and hard state from disk, then starts ticking and serving. */
  async start(): Promise<void> {
    const { config, dataDir, log } = this.opts;
    const { persistence, restored } = await RaftPersistence.open(dataDir, config, this.opts.disk ?? nodeDisk, log, this.opts.world.clock);
    this.persistence = persistence;
    this.store = persistence.store;
    const { hardState: hs, commit, entries, onDisk, snapshot: snap } = restored;
    this.applied = commit;
    this.term = hs.term;
    this.restoreLeases(commit, snap?.index ?? 0);
    this.node = new RaftNode({
      id: this.opts.id,
      voters: this.opts.voters,
      storage: this.opts.storage ?? [],
      electionTicks: electionTicksOf(config),
      heartbeatTicks: Math.max(1, Math.round(config.heartbeatIntervalMs / config.tickMs)),
      inflightMsgsMax: config.inflightMsgsMax,
      entriesPerMsgMax: config.entriesPerMsgMax,
      msgBytesMax: config.msgBytesMax,
      random: () => this.opts.world.random.float(),
      preVote: config.preVote,
      checkQuorum: config.checkQuorum,
      readIndexPendingMax: config.readIndexPendingMax,
      ...readLeaseOf(config),
      restored: { hardState: { ...hs, commit }, entries, onDisk, ...(snap ? { snapshot: snap } : {}) },
      applied: commit,
      // Older entries are read back from the segment files (docs/raft.md "The log cache").
      logCache: { storage: this.store, bytesMax: config.logCacheBytesMax },
      asyncStorageWrites: config.asyncStorageWrites,
      // Followers learn a commit from the next Append or heartbeat: per put at low load no empty
      // Append, follower Ready and AppendResponse just to move their commit index (nothing reads it
      // there but the lease table's fold and status heartbeats; storage nodes get commits shipped).
      broadcastCommit: false,
    });
    log.info({ term: hs.term, vote: hs.vote, commit, firstIndex: this.store.firstIndex(), lastIndex: this.store.lastIndex(), snapshotIndex: snap?.index ?? 0 }, 'raft state restored');

    const { bus, subjects, id } = this.opts;
    const { clock } = this.opts.world;
    this.subs.push(
      bus.subscribe(subjects.raft(id), (msg) => this.onRaftMessages(msg.data)),
      bus.subscribe(subjects.propose(id), (msg) => this.proposals.onRequest(msg)),
      bus.subscribe(subjects.readIndex(id), (msg) => this.reads.onRequest(msg)),
      // Keep-alive, time to live, list: answered at once from the leader's table (not log entries).
      serveRequests(bus, subjects.lease(id), (data) => (data[0] === LEASE_STATE_REQUEST_TYPE ? this.answerLeaseState(data) : answerLeaseRequest({ table: this.leases, isLeader: () => this.role === 'leader', leaderId: () => this.leaderId, nowMs: () => clock.nowMs() }, data)), { log }),
      ...(this.opts.memberRequests === 'external' ? [] : [bus.subscribe(subjects.member(id), (msg) => void this.members.onMember(msg))]),
      bus.subscribe(subjects.storageStatus(), (msg) => {
        const st = decodeStatus(msg.data);
        if (st?.kind === 'storage') this.storageApplied.set(st.id, st.appliedIndex);
      }),
      serveRequests(bus, subjects.fetch(id), (data) => this.shipper.fetchReply(data, this.store, this.applied), {
        log,
        onError: (e) => encodeFetchReply({ status: Status.Error, commitIndex: this.applied, entries: [], message: String(e) }),
      }),
    );
    this.timers.push(
      clock.setInterval(() => this.publishStatus(), STATUS_INTERVAL_MS),
      clock.setInterval(() => {
        this.compactDue = true;
        this.kick();
      }, config.compactionIntervalMs),
      // The leader's expiry check (docs/leases.md): what is due is proposed from the Ready loop.
      // An empty table has nothing to expire: no loop turn.
      clock.setInterval(() => {
        if (this.role !== 'leader' || (this.leases.leaseCount === 0 && this.leases.trackedKeyCount === 0)) return;
        this.expiryDue = true;
        this.kick();
      }, config.expiryCheckIntervalMs),
    );
    this.tickDueMs = this.monotonicMs() + config.tickMs;
    this.armTickTimer();
    this.startLeaseFetch();
  }

  /** One membership request (docs/protocol.md MemberRequest bytes) → the MemberReply bytes; never rejects (MembershipChanges.answer). */
  answerMember(data: Uint8Array): Promise<Uint8Array> {
    return this.members.answer(data);
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
    this.opts.world.clock.clearTimer(this.tickTimer?.handle);
    for (const s of this.subs) s.unsubscribe();
    await this.loopDone;
    // A save in progress stops at its next slice (stopped), leaving the previous file; a fetch at its next chunk.
    await this.leaseSave?.done;
    await this.leaseFetch;
    this.proposals.failPending('replica shutting down');
    this.members.failConfChanges('replica shutting down');
    this.members.checkCatchUp(false);
    this.reads.failAll('replica shutting down');
    this.proposals.failQueued('replica shutting down');
    await this.writes.allSettled();
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
    this.opts.world.clock.clearTimer(this.tickTimer?.handle);
    for (const s of this.subs) s.unsubscribe();
    if (this.inLoop) await this.loopDone;
    await this.store?.close();
  }

  /** The Ready being processed, when one is (the simulator waits for it before advancing virtual time); else null. */
  busy(): Promise<void> | null {
    return this.inLoop ? this.loopDone : null;
  }

  /** Entries this replica appended as leader for proposals since start (read by the metrics endpoint). */
  proposedEntries(): number {
    return this.proposals.entriesProposed;
  }

  /**
   * On the leader: its last log index minus each other member's match index (Raft §5.3), entries,
   * keyed by member id (voters and learners); null on a follower or candidate. Read-only.
   */
  followerMatchLag(): Record<string, number> | null {
    const st = this.node.status();
    if (st.role !== 'leader' || !st.progress) return null;
    const lag: Record<string, number> = {};
    for (const [id, pr] of Object.entries(st.progress)) if (id !== this.opts.id) lag[id] = Math.max(0, st.lastIndex - pr.match);
    return lag;
  }

  /** The lease-state file: the index of the last completed save (0: none), and the index of the save in progress (null: none). Read-only. */
  leaseFileStatus(): { savedIndex: number; savingIndex: number | null } {
    return { savedIndex: this.leaseFileIndex, savingIndex: this.leaseSave?.index ?? null };
  }

  /** Live leases and tracked key expiries in this replica's lease table (docs/leases.md "Leader lease table"). */
  leaseCounts(): { leases: number; trackedKeys: number } {
    return { leases: this.leases.leaseCount, trackedKeys: this.leases.trackedKeyCount };
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
      if (hopTrace.enabled) hopTrace.mark(`raft.recv.${MessageType[m.type]}`);
      this.inbox.push(m);
    }
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

  // ---- the Ready loop ---------------------------------------------------------------------

  /**
   * Starts the loop unless it runs: deferred to the end of the turn (inputs of one turn go into one
   * Ready), or at once (`now`) for a completed write, whose messages and commit are the hot path
   * (the loop without async writes goes on in the same turn after its fsync, too).
   */
  private kick(now = false): void {
    if (this.running || this.stopped) return;
    this.running = true;
    this.loopDone = new Promise<void>((resolve) => (now ? void this.loop().finally(resolve) : this.opts.world.clock.defer(() => void this.loop().finally(resolve))));
  }

  private async loop(): Promise<void> {
    this.inLoop = true;
    if (hopTrace.enabled) hopTrace.mark(`${this.role}.loop`);
    try {
      while (!this.stopped) {
        this.completeWrites();
        this.drainInputs();
        if (this.fetchedLeases) this.adoptFetchedLeases();
        if (this.leaseSaveDue && !this.leaseSave) this.startLeaseSave();
        // Progress (a learner's match index) and the role only move when inputs are stepped.
        this.members.checkCatchUp(false);
        if (this.compactDue) {
          this.compactDue = false;
          const firstIndex = this.store.firstIndex();
          await durably('log compaction', () => this.maybeCompact());
          if (this.store.firstIndex() > firstIndex) this.counters.compactions++;
        }
        if (!this.node.hasReady()) break;
        if (this.writes.full()) {
          // Bounded (writesInflightMax / writesInflightBytesMax): the oldest write completes first.
          await this.writes.oldestSettled();
          continue;
        }
        const rd = this.node.ready();
        if (hopTrace.enabled) hopTrace.mark(`${this.role}.ready`);
        if (this.opts.config.asyncStorageWrites) await this.startWrite(rd);
        else await this.writeThenSend(rd);
        // From here on only the network and bookkeeping: publishes and replies never throw (a
        // failed one is a lost message: Raft retransmits, shipping is backfilled by fetch, a
        // proposer times out and asks for the outcome).
        // Role first: a leader that stepped down in this Ready fails its proposals as "unknown"
        // before any commit could be misread, and a new leader ships what commits in it.
        // Config commits before the role: a leader that removed itself steps down in the very
        // Ready that commits its removal, and that change did succeed (thesis §4.2.2).
        this.members.resolveConfWaiters(rd.committedEntries);
        if (rd.softState) this.handleSoftState(rd.softState);
        this.handleCommitted(rd.committedEntries);
        // Async storage writes: a put committed by a majority of durable copies is answered now,
        // not once the leader's own write of it is done (it is shipped and applied then).
        if (rd.hardState && this.role === 'leader' && rd.hardState.term === this.term) this.proposals.onCommitIndex(rd.hardState.commit, rd.hardState.term);
        this.reads.handleReadStates(rd);
        this.node.advance(rd);
      }
    } catch (e) {
      this.fail(e as Error);
    } finally {
      this.running = false;
      this.inLoop = false;
    }
    if (this.stopped) return;
    if (this.inbox.length || this.proposals.hasQueued() || this.reads.hasQueued() || this.members.hasQueued() || this.writes.hasCompleted()) this.kick();
    this.armTickTimer();
  }

  // ---- ticks --------------------------------------------------------------------------------

  /** The world's monotonic clock (Clock.monotonicMs; the virtual clock's nowMs). */
  private monotonicMs(): number {
    const { clock } = this.opts.world;
    return clock.monotonicMs ? clock.monotonicMs() : clock.nowMs();
  }

  /**
   * Applies the Raft ticks whose time has come, one per tickMs since the last, before the loop's
   * other inputs: ticks are counted from the clock, not delivered by a 10 ms interval timer, so an
   * idle replica does not wake 100 times a second. RaftNode.ticksUntilDue says the ticks before the
   * one that may act only count, so applying them in a batch here gives the node the same state as
   * one by one. After a stall of more than an election timeout the surplus is dropped, as an
   * interval timer's would be (elections and CheckQuorum see at most one election timeout at once).
   */
  private applyTicks(): void {
    const { tickMs } = this.opts.config;
    const now = this.monotonicMs();
    if (now < this.tickDueMs) return;
    let n = Math.floor((now - this.tickDueMs) / tickMs) + 1;
    this.tickDueMs += n * tickMs;
    const cap = electionTicksOf(this.opts.config);
    if (n > cap) {
      n = cap;
      this.tickDueMs = now + tickMs;
    }
    for (let i = 0; i < n; i++) this.node.tick();
  }

  /**
   * Arms a one-shot timer for the next tick that may act (RaftNode.ticksUntilDue: a heartbeat, an
   * election timeout, CheckQuorum), unless one is armed as early: it kicks the loop, which applies
   * the ticks due (applyTicks). One armed too early just wakes the loop, which arms the next. No
   * timer for a node that no tick would move (a learner), until an input changes that.
   */
  private armTickTimer(): void {
    if (this.stopped) return;
    const k = this.node.ticksUntilDue();
    if (!Number.isFinite(k)) return;
    const atMs = this.tickDueMs + (k - 1) * this.opts.config.tickMs;
    if (this.tickTimer && this.tickTimer.atMs <= atMs) return;
    const { clock } = this.opts.world;
    clock.clearTimer(this.tickTimer?.handle);
    // +1 ms: Node's timers round down to whole ms of a loop time taken earlier than the monotonic clock here.
    const handle = clock.setTimeout(() => {
      this.tickTimer = null;
      this.kick();
    }, Math.max(0, Math.ceil(atMs - this.monotonicMs())) + (clock.monotonicMs ? 1 : 0));
    this.tickTimer = { handle, atMs };
  }

  /** `asyncStorageWrites` off: the Ready's write completes before the loop goes on; with `leaderAppendsInParallel`, the leader's Appends leave before it (thesis §10.2.1). */
  private async writeThenSend(rd: Ready): Promise<void> {
    const [early, afterPersist] = this.splitBeforePersist(rd);
    this.send(early);
    const persistStartMs = this.opts.world.clock.nowMs();
    await durably('persisting a Ready', () => this.persist(rd));
    this.opts.onPersisted?.(this.opts.world.clock.nowMs() - persistStartMs, rd.entries.length);
    if (hopTrace.enabled) hopTrace.mark(`${this.role}.persisted`);
    this.send(afterPersist);
  }

  /**
   * Async storage writes (thesis §10.2.1, etcd raft's AsyncStorageWrites): sends the messages that
   * may leave now (with `leaderAppendsInParallel` off, none) and starts the Ready's write, queued
   * behind the earlier ones, without waiting for it: the loop goes on stepping acknowledgements
   * and proposals meanwhile, and `completeWrites` reports it and sends the rest once durable. A
   * Ready that changes the term or vote, installs a snapshot or truncates the log first waits for
   * every earlier write, then is written before the loop goes on.
   */
  private async startWrite(rd: Ready): Promise<void> {
    const startMs = this.opts.world.clock.nowMs();
    const now = this.opts.config.leaderAppendsInParallel ? rd.messages : [];
    const after = now === rd.messages ? rd.messagesAfterPersist : [...rd.messages, ...rd.messagesAfterPersist];
    this.send(now);
    if (this.persistence.waitsForEarlierWrites(rd)) {
      await this.writes.allSettled();
      this.writes.assertNoneFailed();
      await durably('persisting a Ready', () => this.persist(rd));
      this.writes.add(rd, after, startMs, Promise.resolve());
    } else if (rd.entries.length || after.length) {
      for (const e of rd.entries) this.counters.entryBytesPersisted += e.data.length;
      this.writes.add(rd, after, startMs, this.persistence.append(rd));
    }
  }

  /** Async storage writes: reports the writes completed since, oldest first, to the node (the leader's own copy now counts toward commit) and sends the messages they held. @throws PersistenceError for a failed write */
  private completeWrites(): void {
    for (const w of this.writes.takeCompleted()) {
      if (w.entries > 0) this.node.persisted(w.lastIndex, w.lastTerm);
      this.opts.onPersisted?.(w.doneMs - w.startMs, w.entries);
      if (hopTrace.enabled) hopTrace.mark(`${this.role}.persisted`);
      this.send(w.messages);
    }
  }

  /**
   * A failed fsync/append (disk full, I/O error) leaves durability unknown: Raft must not go on
   * acknowledging. Stop with a clear error; a supervisor restarts the process and recovery re-reads
   * what is durable. The only other way here is a violated invariant (an Error named after it): a
   * bug, and going on could break safety. Once.
   */
  private fail(e: Error): void {
    if (this.failed) return;
    this.failed = true;
    if (e instanceof PersistenceError) this.opts.log.fatal({ err: e.cause, step: e.step }, 'raft persistence failed; stopping the replica');
    else this.opts.log.fatal({ err: e }, 'raft invariant violated; stopping the replica');
    this.stopped = true;
    this.opts.onFatal(e);
  }

  private drainInputs(): void {
    this.applyTicks();
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
    this.proposals.drain(this.node);
    if (this.expiryDue) this.proposeExpiries();
    this.reads.drain(this.node);
    this.members.drain(this.node);
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

  /**
   * A Ready's messages as [sent before its persist, sent after]: with `leaderAppendsInParallel`,
   * a leader's Append and Heartbeat messages go first when the Ready changes no term, vote or
   * snapshot (RaftPersistence.mayReplicateBeforePersist); every answer (votes, Append and
   * Heartbeat responses) acknowledges durable state and always waits.
   */
  private splitBeforePersist(rd: Ready): [Message[], Message[]] {
    if (!this.opts.config.leaderAppendsInParallel || rd.messages.length === 0 || !this.persistence.mayReplicateBeforePersist(rd)) return [[], rd.messages];
    const early: Message[] = [];
    const later: Message[] = [];
    for (const m of rd.messages) (m.type === MessageType.Append || m.type === MessageType.Heartbeat ? early : later).push(m);
    return [early, later];
  }

  private persist(rd: Ready): Promise<void> {
    for (const e of rd.entries) this.counters.entryBytesPersisted += e.data.length;
    return this.persistence.persist(rd, (snapshot) => {
      this.applied = snapshot.index;
      if (this.leaseStateIndex < snapshot.index) this.noteLeaseGap(snapshot.index);
      this.startLeaseFetch();
      this.counters.snapshotsInstalled++;
      this.opts.log.info({ index: snapshot.index, term: snapshot.term, conf: snapshot.conf }, 'installed the leader\'s snapshot');
    });
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
      if (hopTrace.enabled) hopTrace.mark(`raft.send.${MessageType[m.type]}`);
      let batch = byPeer.get(m.to);
      if (!batch) byPeer.set(m.to, (batch = []));
      batch.push(m);
    }
    const { bus, subjects, log } = this.opts;
    const bytesMax = payloadBytesMax(bus);
    let heartbeat = false;
    for (const [peer, batch] of byPeer) {
      for (const payload of packRaftMessages(batch, this.opts.coalesceRaftMessages ? Infinity : bytesMax)) publishSafe(bus, subjects.raft(peer), payload, log);
      heartbeat ||= batch.some((m) => m.type === MessageType.Heartbeat);
    }
    // The storage nodes' commit heartbeat rides with the Raft heartbeat: same turn, one socket write.
    if (heartbeat && this.role === 'leader') this.shipper.commitHeartbeat(this.term, this.applied, this.opts.world.clock.nowMs());
  }

  private handleCommitted(entries: Entry[]): void {
    if (entries.length === 0) return;
    if (entries[0].index !== this.applied + 1) {
      throw new Error(`committed entries start at ${entries[0].index}, expected ${this.applied + 1}`);
    }
    if (hopTrace.enabled) hopTrace.mark(`${this.role}.committed`);
    this.proposals.onCommitted(entries);
    this.foldLeases(entries);
    this.applied = entries[entries.length - 1].index;
    if (this.role === 'leader') this.shipper.ship(entries, this.term, this.opts.world.clock.nowMs());
  }

  /** Folds committed commands into the lease table (every replica: whichever becomes leader has it); those at or below leaseStateIndex are in it already. */
  private foldLeases(entries: Entry[]): void {
    const nowMs = this.opts.world.clock.nowMs();
    for (const e of entries) {
      if (e.index <= this.leaseStateIndex) continue;
      this.leaseStateIndex = e.index;
      if (e.type !== EntryType.Normal || e.data.length === 0 || !this.leases.mayChange(e.data)) continue;
      try {
        this.leases.applyCommitted(decodeCommand(e.data), nowMs);
      } catch {
        // Not a command this replica can read (storage nodes apply such an entry as a no-op too).
      }
    }
  }

  /**
   * At start: the lease table from the lease-state file (the commands up to its index), then the
   * committed entries of the restored log after that index (docs/leases.md "Restarts and
   * compaction"). A log compacted past what the file holds (a leader's snapshot installed, or a
   * directory from before the file existed) leaves a gap, logged.
   */
  private restoreLeases(commit: number, snapshotIndex: number): void {
    this.leaseFile = new LeaseStateFile(this.opts.dataDir, this.opts.disk ?? nodeDisk);
    const saved = this.leaseFile.read();
    if (saved) {
      this.leases.restore(saved);
      this.leaseStateIndex = this.leaseFileIndex = saved.index;
      this.leaseGapThrough = saved.gapThrough;
    }
    if (this.leaseStateIndex < snapshotIndex) this.noteLeaseGap(snapshotIndex);
    this.foldLeasesFromLog(Math.max(this.leaseStateIndex + 1, this.store.firstIndex()), commit);
    this.opts.log.info({ leases: this.leases.leaseCount, trackedKeys: this.leases.trackedKeyCount, savedIndex: this.leaseFileIndex, leaseStateIndex: this.leaseStateIndex, gapThrough: this.leaseGapThrough }, 'lease table restored');
  }

  /** Folds the committed entries `from..to` of the stored log into the lease table, in bounded reads from the segment files (most of the log is not in memory: the log cache). */
  private foldLeasesFromLog(from: number, to: number): void {
    while (from <= to) {
      const batch = from > this.store.lastIndex() ? [] : this.store.entries(from, Math.min(to, from + LEASE_RESTORE_ENTRIES_MAX - 1), LEASE_RESTORE_BYTES_MAX);
      if (batch.length === 0) throw new Error(`LeaseFoldPastLog: folding ${from}..${to}, the log holds ${this.store.firstIndex()}..${this.store.lastIndex()}`);
      this.foldLeases(batch);
      from += batch.length;
    }
  }

  // ---- the lease table after a snapshot install (docs/leases.md "Snapshot install") ----------

  /** A peer's LeaseStateRequest: a chunk of this replica's last completed lease-state file; one behind the requester's gap asks for a save. */
  private answerLeaseState(data: Uint8Array): Uint8Array {
    return answerLeaseStateRequest(this.leaseFile, data, {
      chunkBytesMax: this.opts.config.leaseStateChunkBytesMax,
      payloadBytesMax: payloadBytesMax(this.opts.bus),
      onBehind: () => {
        this.leaseSaveDue = true;
        this.kick();
      },
    });
  }

  /**
   * While the lease table has a gap (a leader's snapshot installed; a compacted log without a
   * lease-state file), fetches a peer's lease-state file that covers it: from the leader, else the
   * other members in turn; after a failed attempt it waits the minimum election timeout, doubling
   * up to leaseStateFetchTimeoutMs. The loop adopts it.
   */
  private startLeaseFetch(): void {
    if (this.leaseFetch || this.stopped || this.leaseGapThrough === 0) return;
    const { config, world, bus, subjects, log } = this.opts;
    const run = async () => {
      // Retries start soon (a peer asked for a newer file saves it in the background) and back off to leaseStateFetchTimeoutMs.
      for (let attempt = 0, waitMs = config.electionTimeoutMinMs; !this.stopped && this.leaseGapThrough > 0 && !this.fetchedLeases; attempt++, waitMs = Math.min(2 * waitMs, config.leaseStateFetchTimeoutMs)) {
        const peer = this.leaseStatePeer(attempt);
        if (peer) {
          this.leaseFetchCounters.attempts++;
          try {
            const got = await fetchLeaseState({
              bus,
              subject: subjects.lease(peer),
              minIndex: this.leaseGapThrough,
              chunkBytesMax: Math.min(config.leaseStateChunkBytesMax, payloadBytesMax(bus)),
              timeoutMs: config.leaseStateFetchTimeoutMs,
              table: { leasesMax: config.leasesMax, ttlKeysMax: config.ttlKeysMax, expiriesPerCheckMax: config.expiriesPerCheckMax, expiryRetryMs: config.expiryRetryMs },
              stopped: () => this.stopped,
            });
            if (got) {
              log.info({ peer, index: got.index, gapThrough: got.gapThrough, leases: got.table.leaseCount, trackedKeys: got.table.trackedKeyCount }, 'lease table fetched from a peer');
              this.fetchedLeases = got;
              this.kick();
              return;
            }
          } catch (e) {
            log.warn({ err: e, peer }, 'lease-state transfer refused');
          }
        }
        await new Promise<void>((resolve) => world.clock.setTimeout(resolve, waitMs));
      }
    };
    this.leaseFetch = run().finally(() => (this.leaseFetch = null));
  }

  /** The peer to ask on `attempt`: the leader when it is another replica, else the other members in turn; null alone. */
  private leaseStatePeer(attempt: number): string | null {
    // The node's view: during the Ready that installs a snapshot, its sender is the leader there already.
    const { conf, leaderId } = this.node.status();
    const others = [...conf.voters, ...conf.learners].filter((m) => m !== this.opts.id);
    if (leaderId && leaderId !== this.opts.id && attempt % 2 === 0) return leaderId;
    return others.length ? others[attempt % others.length] : null;
  }

  /**
   * Adopts a fetched table when it covers the gap (its index ≥ gapThrough, its own gap smaller)
   * and the log after its index is still here to fold in (or it is ahead of this table); then the
   * committed entries up to this table's index are folded on top of it, and a save is due so a
   * restart has it. Else the fetch starts again.
   */
  private adoptFetchedLeases(): void {
    const f = this.fetchedLeases!;
    this.fetchedLeases = null;
    const to = this.leaseStateIndex;
    if (f.index < this.leaseGapThrough || f.gapThrough >= this.leaseGapThrough || (f.index < to && (f.index + 1 < this.store.firstIndex() || to > this.store.lastIndex()))) {
      this.leaseFetchCounters.refused++;
      this.opts.log.info({ index: f.index, gapThrough: f.gapThrough, ours: { gapThrough: this.leaseGapThrough, leaseStateIndex: to, firstIndex: this.store.firstIndex() } }, 'fetched lease table does not cover the gap; fetching again');
      this.startLeaseFetch();
      return;
    }
    this.leases.adopt(f.table, this.opts.world.clock.nowMs(), 2 * this.opts.config.electionTimeoutMinMs);
    this.leaseStateIndex = f.index;
    this.leaseGapThrough = f.gapThrough;
    this.foldLeasesFromLog(f.index + 1, to);
    this.leaseFetchCounters.adopted++;
    this.counters.leaseStatesAdopted++;
    this.leaseSaveDue = true;
    this.opts.log.info({ index: f.index, leaseStateIndex: this.leaseStateIndex, leases: this.leases.leaseCount, trackedKeys: this.leases.trackedKeyCount }, 'lease table adopted: the gap of the snapshot install is closed');
  }

  /** The lease table lacks the commands up to `index` (their log is gone): expiries of keys and leases granted before it may not be proposed by this replica as leader. */
  private noteLeaseGap(index: number): void {
    this.leaseGapThrough = Math.max(this.leaseGapThrough, index);
    this.leaseStateIndex = Math.max(this.leaseStateIndex, index);
    this.opts.log.warn({ gapThrough: this.leaseGapThrough }, 'lease table lacks commands compacted away before this index (docs/leases.md "Restarts and compaction")');
  }

  /**
   * Starts saving the lease table at leaseStateIndex (≥ applied) in the background, unless a save
   * is in progress: a copy-on-write snapshot taken here (O(1), LeaseTable.snapshot), encoded and
   * written in slices of `leaseStateSliceBytesMax` while the loop goes on (docs/leases.md
   * "Restarts and compaction"). When it completes, `leaseFileIndex` moves to its index and a
   * compaction is due; a failed disk write or fsync is fatal like any Raft state write.
   */
  private startLeaseSave(): void {
    if (this.leaseSave || this.stopped) return;
    this.leaseSaveDue = false;
    const index = this.leaseStateIndex;
    const gapThrough = this.leaseGapThrough;
    const table = this.leases.snapshot();
    const write = this.leaseFile.save({ index, gapThrough, table }, this.opts.config.leaseStateSliceBytesMax, () => this.stopped);
    const done = write.then(
      (completed) => {
        if (!completed) return;
        this.leaseFileIndex = Math.max(this.leaseFileIndex, index);
        this.counters.leaseStateSaves++;
        // Rare (about once per logRetainedEntries entries, and after a fetched table is adopted): info.
        this.opts.log.info({ index, gapThrough }, 'lease table saved');
        this.compactDue = true;
        this.kick();
      },
      (e: unknown) => this.fail(new PersistenceError('saving the lease table', e)),
    );
    this.leaseSave = { index, done: done.finally(() => {
      table.end();
      this.leaseSave = null;
    }) };
  }

  /** Leader: proposes the LeaseRevoke / ExpireKey entries now due (LeaseTable.due bounds and paces them). */
  private proposeExpiries(): void {
    this.expiryDue = false;
    if (this.role !== 'leader') return;
    const due = this.leases.due(this.opts.world.clock.nowMs());
    if (due.length === 0) return;
    try {
      this.node.propose(due.map(encodeCommand));
    } catch (e) {
      // Not leader any more (or a transfer in progress): the next leader proposes them after promotion.
      this.opts.log.info({ err: e, count: due.length }, 'expiry proposals refused');
    }
  }

  private handleSoftState(ss: { role: 'follower' | 'candidate' | 'leader'; leaderId: string | null; term: number }): void {
    this.opts.onSoftState?.(ss);
    const wasLeader = this.role === 'leader';
    this.role = ss.role;
    this.leaderId = ss.leaderId;
    this.term = ss.term;
    if (ss.role === 'leader' && !wasLeader) {
      this.opts.log.info({ term: ss.term }, 'became leader');
      // etcd Promote: no lease expires before ttl + the longest election timeout from now.
      this.leases.promote(this.opts.world.clock.nowMs(), 2 * this.opts.config.electionTimeoutMinMs);
    } else if (wasLeader && ss.role !== 'leader') {
      this.opts.log.info({ term: ss.term, leaderId: ss.leaderId }, 'lost leadership');
      this.leases.demote();
      this.proposals.failPending('leadership lost before commit; outcome unknown');
      this.members.failConfChanges('leadership lost before the configuration change committed; outcome unknown (list the members)');
      this.members.checkCatchUp(false);
      this.leadershipLost?.();
    }
  }

  // ---- log shipping ------------------------------------------------------------------------


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
    // Nothing changed since the last one: only a bounded refresh (STATUS_REFRESH_MS) keeps it alive for the gateways.
    const { atMs, ...rest } = status;
    const json = JSON.stringify(rest);
    if (this.lastStatus?.json === json && atMs - this.lastStatus.atMs < STATUS_REFRESH_MS) return;
    this.lastStatus = { json, atMs };
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
    // Never past the lease table's last completed save: the log prefix it was folded from must stay
    // until a save covers it. A save is started (in the background) when the plan passes it; it is
    // taken at the applied index, ahead of the target, so about once per logRetainedEntries entries.
    if (plan.compactTo > this.leaseFileIndex) this.startLeaseSave();
    const target = Math.min(plan.compactTo, this.leaseFileIndex);
    if (target < st.firstIndex) return;
    if (target > this.leaseFileIndex) throw new Error(`LeaseStateBehindCompaction: lease table saved at ${this.leaseFileIndex}, compacting to ${target}`);
    await this.persistence.compact(this.node, target);
    log.debug({ compactedTo: target, planned: plan.compactTo, leaseFileIndex: this.leaseFileIndex, firstIndex: this.store.firstIndex(), segments: this.store.segmentCount() }, 'raft log compacted');
  }
}

/** The minimum election timeout in ticks (RaftConfig.electionTicks). */
function electionTicksOf(config: ConsensusConfig): number {
  return Math.max(2, Math.round(config.electionTimeoutMinMs / config.tickMs));
}

/** `consensus.readLeaseMs` as RaftConfig.readLeaseTicks (rounded down to whole ticks, below the election ticks); nothing when off. */
function readLeaseOf(config: ConsensusConfig): { readLeaseTicks?: number } {
  if (config.readLeaseMs <= 0) return {};
  const electionTicks = electionTicksOf(config);
  return { readLeaseTicks: Math.max(1, Math.min(electionTicks - 1, Math.floor(config.readLeaseMs / config.tickMs))) };
}
