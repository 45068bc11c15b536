import {
  Status,
  decodeFetchRequest,
  decodeProposeRequest,
  decodeRaftMessages,
  decodeReadIndexRequest,
  encodeCommand,
  encodeFetchReply,
  encodeProposeReply,
  encodeRaftMessages,
  encodeReadIndexReply,
  encodeShipBatch,
  type ProposeReply,
  type ReadIndexReply,
  type WireEntry,
  type WireRaftMessage,
} from '@cairn/protocol';
import { NotLeaderError, RaftNode, ReadIndexPendingFullError, type Entry, type Message, type Ready } from '@cairn/raft';
import { encodeStatus, serveRequests, STATUS_INTERVAL_MS, type ConsensusStatus, type Logger, type Subjects } from '@cairn/messaging';
import type { ConsensusConfig } from '@cairn/config';
import type { Msg, NatsConnection, Subscription } from 'nats';
import { HardStateFile } from '../storage/hard-state-file';
import { RaftLogStore } from '../storage/raft-log-store';
import { PendingProposals, type ProposalOutcome } from './pending-proposals';

/** Largest ShipBatch payload, bytes (entries beyond go in the next batch; one entry always fits). */
const SHIP_BATCH_BYTES_MAX = 512 * 1024;
/** Largest entry count per ShipBatch. */
const SHIP_BATCH_ENTRIES_MAX = 4096;

export interface ReplicaOptions {
  id: string;
  voters: string[];
  config: ConsensusConfig;
  dataDir: string;
  nc: NatsConnection;
  subjects: Subjects;
  log: Logger;
}

interface QueuedProposal {
  commands: Uint8Array[];
  msg: Msg;
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
  private persistedTerm = 0;
  private persistedVote: string | null = null;

  private inbox: Message[] = [];
  private proposals: QueuedProposal[] = [];
  /** ReadIndex requests (thesis §6.4) waiting to be handed to the state machine. */
  private readRequests: Msg[] = [];
  /** ReadIndex requests handed to the state machine, by the context number given to it. */
  private readsPending = new Map<number, Msg>();
  private readSeq = 0;
  /** Set by stop(): hand leadership to this follower before leaving (thesis §3.10). */
  private transferTo: string | null = null;
  private leadershipLost: (() => void) | null = null;
  private ticks = 0;
  private running = false;
  private stopped = false;
  private stopping: Promise<void> | null = null;
  private loopDone: Promise<void> = Promise.resolve();

  private pending: PendingProposals;
  /** Highest committed index this replica has handed on (answered, shipped). */
  private applied = 0;
  private role: 'follower' | 'candidate' | 'leader' = 'follower';
  private leaderId: string | null = null;
  private term = 0;

  private timers: NodeJS.Timeout[] = [];
  private subs: Subscription[] = [];

  constructor(private readonly opts: ReplicaOptions) {
    this.pending = new PendingProposals(opts.config.proposalsPendingMax);
  }

  /** Restores the log and hard state from disk, then starts ticking and serving. */
  async start(): Promise<void> {
    const { config, dataDir, log } = this.opts;
    this.store = await RaftLogStore.open(`${dataDir}/raft-log`, { segmentBytesMax: config.segmentBytesMax, fsyncPolicy: config.fsyncPolicy });
    if (this.store.recovery.tornTail) log.warn({ tornTail: this.store.recovery.tornTail }, 'raft log: torn tail truncated on recovery');
    this.hardStateFile = new HardStateFile(dataDir);
    const hs = this.hardStateFile.read() ?? { term: 0, vote: null, commit: 0 };
    const entries = this.store.readAll();
    const commit = Math.min(hs.commit, this.store.lastIndex());
    this.persistedTerm = hs.term;
    this.persistedVote = hs.vote;
    this.applied = commit;
    this.term = hs.term;
    this.node = new RaftNode({
      id: this.opts.id,
      voters: this.opts.voters,
      electionTicks: Math.max(2, Math.round(config.electionTimeoutMinMs / config.tickMs)),
      heartbeatTicks: Math.max(1, Math.round(config.heartbeatIntervalMs / config.tickMs)),
      inflightMsgsMax: config.inflightMsgsMax,
      entriesPerMsgMax: config.entriesPerMsgMax,
      msgBytesMax: config.msgBytesMax,
      random: Math.random,
      preVote: config.preVote,
      checkQuorum: config.checkQuorum,
      readIndexPendingMax: config.readIndexPendingMax,
      restored: { hardState: { ...hs, commit }, entries },
      applied: commit,
    });
    log.info({ term: hs.term, vote: hs.vote, commit, lastIndex: this.store.lastIndex() }, 'raft state restored');

    const { nc, subjects, id } = this.opts;
    this.subs.push(
      nc.subscribe(subjects.raft(id), {
        callback: (err, msg) => {
          if (!err) this.onRaftMessages(msg.data);
        },
      }),
      nc.subscribe(subjects.propose(id), {
        callback: (err, msg) => {
          if (!err) this.onPropose(msg);
        },
      }),
      nc.subscribe(subjects.readIndex(id), {
        callback: (err, msg) => {
          if (!err) this.onReadIndex(msg);
        },
      }),
      serveRequests(nc, subjects.fetch(id), (data) => this.onFetch(data), {
        log,
        onError: (e) => encodeFetchReply({ status: Status.Error, commitIndex: this.applied, entries: [], message: String(e) }),
      }),
    );
    this.timers.push(
      setInterval(() => {
        this.ticks++;
        this.kick();
      }, config.tickMs),
      setInterval(() => this.publishStatus(), STATUS_INTERVAL_MS),
      // Commit heartbeat to the storage nodes: tells a node that missed a ShipBatch how far to backfill.
      setInterval(() => this.shipCommitHeartbeat(), config.heartbeatIntervalMs),
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
    for (const t of this.timers) clearInterval(t);
    for (const s of this.subs) s.unsubscribe();
    await this.loopDone;
    this.pending.failAll('replica shutting down');
    this.failReads([...this.readsPending.values(), ...this.readRequests], 'replica shutting down');
    this.readsPending.clear();
    this.readRequests = [];
    for (const p of this.proposals) this.reply(p.msg, { status: Status.Unavailable, retrySafe: true, firstIndex: 0, lastIndex: 0, leaderHint: '', message: 'replica shutting down' });
    this.proposals = [];
    await this.store.close();
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
      atMs: Date.now(),
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
      // Raft tolerates lost messages (retransmission): dropping beyond the bound keeps memory bounded.
      if (this.inbox.length >= this.opts.config.inboxMessagesMax) break;
      this.inbox.push(m as unknown as Message);
    }
    this.kick();
  }

  private onPropose(msg: Msg): void {
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

  private onReadIndex(msg: Msg): void {
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
    if (!st || st.role !== 'leader' || !st.progress || this.opts.voters.length < 2) return;
    const target = Object.entries(st.progress)
      .filter(([id]) => id !== this.opts.id)
      .sort((a, b) => b[1].match - a[1].match)[0]?.[0];
    if (!target) return;
    this.opts.log.info({ target }, 'transferring leadership before shutdown');
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, this.opts.config.transferLeadershipTimeoutMs);
      this.leadershipLost = () => {
        clearTimeout(timer);
        resolve();
      };
      this.transferTo = target;
      this.kick();
    });
    this.leadershipLost = null;
  }

  private onFetch(data: Uint8Array): Uint8Array {
    const req = decodeFetchRequest(data);
    const to = Math.min(this.applied, req.fromIndex + Math.max(1, req.entriesMax) - 1);
    const entries = req.fromIndex >= 1 && req.fromIndex <= to ? this.store.entries(req.fromIndex, to, req.bytesMax) : [];
    return encodeFetchReply({ status: Status.Ok, commitIndex: this.applied, entries: entries as WireEntry[], message: '' });
  }

  // ---- the Ready loop ---------------------------------------------------------------------

  private kick(): void {
    if (this.running || this.stopped) return;
    this.running = true;
    this.loopDone = new Promise<void>((resolve) => setImmediate(() => this.loop().finally(resolve)));
  }

  private async loop(): Promise<void> {
    try {
      while (!this.stopped) {
        this.drainInputs();
        if (!this.node.hasReady()) break;
        const rd = this.node.ready();
        await this.persist(rd);
        this.send(rd.messages);
        // Role first: a leader that stepped down in this Ready fails its proposals as "unknown"
        // before any commit could be misread, and a new leader ships what commits in it.
        if (rd.softState) this.handleSoftState(rd.softState);
        this.handleCommitted(rd.committedEntries);
        this.handleReadStates(rd);
        this.node.advance(rd);
      }
    } catch (e) {
      // A failed fsync/append (disk full, I/O error) leaves durability unknown: Raft must not go on
      // acknowledging. Stop the process with a clear error; a supervisor restarts it and recovery
      // re-reads what is durable.
      this.opts.log.fatal({ err: e }, 'raft persistence failed; stopping the replica');
      process.exitCode = 70;
      process.kill(process.pid, 'SIGTERM');
      this.stopped = true;
    } finally {
      this.running = false;
    }
    if (!this.stopped && (this.inbox.length || this.proposals.length || this.readRequests.length || this.ticks)) this.kick();
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

  private readIndex(msg: Msg): void {
    const ctx = ++this.readSeq;
    try {
      this.node.readIndex(ctx);
      this.readsPending.set(ctx, msg);
    } catch (e) {
      if (e instanceof NotLeaderError) {
        this.replyRead(msg, { status: Status.NotLeader, readIndex: 0, leaderHint: e.leaderId ?? '', message: 'not the leader' });
      } else if (e instanceof ReadIndexPendingFullError) {
        this.replyRead(msg, { status: Status.Unavailable, readIndex: 0, leaderHint: this.opts.id, message: 'leader overloaded: too many reads pending' });
      } else throw e;
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

  private failReads(msgs: Msg[], message: string): void {
    for (const msg of msgs) this.replyRead(msg, { status: Status.Unavailable, readIndex: 0, leaderHint: '', message });
  }

  private replyRead(msg: Msg, r: ReadIndexReply): void {
    if (msg.reply) msg.respond(encodeReadIndexReply(r));
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
      throw e;
    }
    this.pending.add({ ...r, resolve: (o) => this.reply(p.msg, this.outcomeReply(o)) });
  }

  private async persist(rd: Ready): Promise<void> {
    const hs = rd.hardState;
    if (hs && (hs.term !== this.persistedTerm || hs.vote !== this.persistedVote)) {
      // Term/vote must be durable before any message reflecting them leaves (Raft Figure 2).
      this.hardStateFile.write(hs);
      this.persistedTerm = hs.term;
      this.persistedVote = hs.vote;
    }
    await this.store.persist(rd.entries);
  }

  private send(messages: Message[]): void {
    if (messages.length === 0) return;
    const byPeer = new Map<string, WireRaftMessage[]>();
    for (const m of messages) {
      let batch = byPeer.get(m.to);
      if (!batch) byPeer.set(m.to, (batch = []));
      batch.push(m as unknown as WireRaftMessage);
    }
    for (const [peer, batch] of byPeer) this.opts.nc.publish(this.opts.subjects.raft(peer), encodeRaftMessages(batch));
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
    const wasLeader = this.role === 'leader';
    this.role = ss.role;
    this.leaderId = ss.leaderId;
    this.term = ss.term;
    if (ss.role === 'leader' && !wasLeader) {
      this.opts.log.info({ term: ss.term }, 'became leader');
    } else if (wasLeader && ss.role !== 'leader') {
      this.opts.log.info({ term: ss.term, leaderId: ss.leaderId }, 'lost leadership');
      this.pending.failAll('leadership lost before commit; outcome unknown');
      this.leadershipLost?.();
    }
  }

  // ---- log shipping ------------------------------------------------------------------------

  /** Publishes committed entries to every storage node, in index order, in bounded batches. */
  private ship(entries: Entry[]): void {
    let start = 0;
    while (start < entries.length) {
      let bytes = 0;
      let end = start;
      while (end < entries.length && end - start < SHIP_BATCH_ENTRIES_MAX && (end === start || bytes + entries[end].data.length <= SHIP_BATCH_BYTES_MAX)) {
        bytes += entries[end].data.length;
        end++;
      }
      const batch = entries.slice(start, end);
      this.opts.nc.publish(
        this.opts.subjects.ship(),
        encodeShipBatch({ leaderId: this.opts.id, term: this.term, commitIndex: batch[batch.length - 1].index, entries: batch as WireEntry[] }),
      );
      start = end;
    }
  }

  private shipCommitHeartbeat(): void {
    if (this.role !== 'leader' || this.stopped) return;
    this.opts.nc.publish(this.opts.subjects.ship(), encodeShipBatch({ leaderId: this.opts.id, term: this.term, commitIndex: this.applied, entries: [] }));
  }

  private publishStatus(): void {
    if (this.stopped) return;
    this.opts.nc.publish(this.opts.subjects.consensusStatus(), encodeStatus(this.status()));
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

  private reply(msg: Msg, r: ProposeReply): void {
    if (msg.reply) msg.respond(encodeProposeReply(r));
  }
}
