import { mulberry32 } from '../prng';
import { RaftNode } from '../raft-node';
import type { ConfChange, ConfState, Entry, HardState, Message, NodeId, RaftConfig, ReadContext, ReadState, ReadStateFailed, Ready } from '../types';
import { DurableStore } from './durable-store';
import { SafetyChecker } from './safety';

export interface SimulatorOptions {
  /** Node ids (default `n1..n3`). */
  ids?: NodeId[];
  /** The initial voters (default: every id); the other ids start outside the configuration, ready to be added. */
  voters?: NodeId[];
  /** Seeds the network PRNG and every node's election-timeout PRNG. */
  seed?: number;
  /** Overrides for every node's RaftConfig (defaults: electionTicks 10, heartbeatTicks 2, inflightMsgsMax 64, entriesPerMsgMax 64, msgBytesMax 1 MiB). */
  config?: Partial<Omit<RaftConfig, 'id' | 'voters' | 'random' | 'restored' | 'applied'>>;
  /** Run the SafetyChecker after every Ready (default true). */
  checkSafety?: boolean;
  /** Durable state to start some nodes from (e.g. paper Figure 7/8 logs), as if restarted from disk. */
  restored?: Record<NodeId, { hardState: HardState; entries: Entry[] }>;
  /** Every node with a bounded log cache of this many bytes over its DurableStore (RaftConfig.logCache); default none. */
  logCacheBytesMax?: number;
}

/** A message in flight, tagged with a sequence number for stable ordering. */
interface InFlight {
  seq: number;
  msg: Message;
  /** Delivery rounds still to skip (delay fault); each message is delayed at most once. */
  hold: number;
  delayed: boolean;
}

/**
 * Deterministic in-memory cluster for Raft tests: N `RaftNode`s, one `DurableStore` each, and a
 * message queue with controllable delivery. No timers: time advances only through `tick()`.
 *
 * - Ready loop per node exactly like a driver: persist (`DurableStore.persist`), enqueue messages,
 *   record committed entries (`applied`), `advance`.
 * - Faults (decided at delivery, with the seeded PRNG): `dropRate`, `duplicateRate`, `reorder`,
 *   `delayRate` (hold a message back 1..`delayRoundsMax` delivery rounds),
 *   `dropIf(filter)`, `partition(...groups)` / `isolate(id)` / `heal()`, `crash(id)` (keeps only
 *   the DurableStore), `crashAfterNextPersist(id)` (between fsync and send) and `restart(id)`.
 * - Safety: a `SafetyChecker` observes every node after each Ready (election safety, leader
 *   completeness, state machine safety); call `checkLogMatching()` whenever you like.
 */
export class Simulator {
  readonly ids: NodeId[];
  /** The initial voters every node starts from (the log's config entries override it). */
  readonly initialVoters: NodeId[];
  readonly stores = new Map<NodeId, DurableStore>();
  /** Every committed entry each node delivered, in order (its applied state machine input). */
  readonly applied = new Map<NodeId, Entry[]>();
  readonly checker = new SafetyChecker();
  /** Every message handed to the network (before faults), for assertions. */
  readonly sent: Message[] = [];
  /** Every Ready processed, per node, for assertions. */
  readonly readies = new Map<NodeId, Ready[]>();
  recordReadies = false;
  recordSent = false;
  /** Every ReadIndex confirmation (`Ready.readStates`) each node emitted, in order. */
  readonly readStates = new Map<NodeId, ReadState[]>();
  /** Every ReadIndex failure (`Ready.readStatesFailed`) each node emitted, in order. */
  readonly readStatesFailed = new Map<NodeId, ReadStateFailed[]>();
  /** Called with every Ready after it is persisted, before `advance` (not for a Ready lost in a crash). */
  onReady: ((id: NodeId, rd: Ready) => void) | null = null;

  dropRate = 0;
  duplicateRate = 0;
  reorder = false;
  /** Probability that a deliverable message is held back instead (once per message). */
  delayRate = 0;
  /** A delayed message waits 1..delayRoundsMax delivery rounds. */
  delayRoundsMax = 3;
  private dropFilter: ((m: Message) => boolean) | null = null;
  private cut = new Set<string>();
  private readonly crashAfterPersist = new Set<NodeId>();
  private queue: InFlight[] = [];
  private seq = 0;
  private readonly nodes = new Map<NodeId, RaftNode | null>();
  private readonly restarts = new Map<NodeId, number>();
  private readonly rng: () => number;
  private readonly seed: number;
  private readonly baseConfig: Omit<RaftConfig, 'id' | 'voters' | 'random'>;
  private readonly checkSafety: boolean;
  private readonly logCacheBytesMax: number | undefined;

  constructor(opts: SimulatorOptions = {}) {
    this.ids = opts.ids ?? ['n1', 'n2', 'n3'];
    this.initialVoters = opts.voters ?? this.ids;
    this.seed = opts.seed ?? 1;
    this.rng = mulberry32(this.seed);
    this.checkSafety = opts.checkSafety ?? true;
    this.logCacheBytesMax = opts.logCacheBytesMax;
    this.baseConfig = { electionTicks: 10, heartbeatTicks: 2, inflightMsgsMax: 64, entriesPerMsgMax: 64, msgBytesMax: 1 << 20, ...opts.config };
    for (const id of this.ids) {
      this.stores.set(id, new DurableStore());
      this.applied.set(id, []);
      this.readies.set(id, []);
      this.readStates.set(id, []);
      this.readStatesFailed.set(id, []);
      this.restarts.set(id, 0);
      const r = opts.restored?.[id];
      if (r) {
        // Restored-at-start nodes have applied their committed prefix already.
        this.stores.get(id)!.persist({ hardState: r.hardState, entries: r.entries });
        const prefix = r.entries.slice(0, r.hardState.commit);
        this.applied.set(id, prefix);
        if (this.checkSafety) this.checker.onCommitted(id, prefix);
      }
      this.nodes.set(id, this.build(id, !!r));
    }
  }

  /** The live node `id`. @throws if it is crashed. */
  node(id: NodeId): RaftNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`node ${id} is ${n === null ? 'crashed' : 'unknown'}`);
    return n;
  }

  isUp(id: NodeId): boolean {
    return !!this.nodes.get(id);
  }

  liveNodes(): RaftNode[] {
    return this.ids.filter((id) => this.isUp(id)).map((id) => this.node(id));
  }

  /** The live leader with the highest term, or null. */
  leader(): NodeId | null {
    let best: RaftNode | null = null;
    for (const n of this.liveNodes()) {
      const st = n.status();
      if (st.role === 'leader' && (!best || st.term > best.status().term)) best = n;
    }
    return best ? best.id : null;
  }

  /** Messages currently in flight (copies of the references). */
  inFlight(): Message[] {
    return this.queue.map((f) => f.msg);
  }

  // ---- driving ----------------------------------------------------------------------------

  /** Runs the driver's Ready loop on `id` until it has nothing pending. */
  processReady(id: NodeId): void {
    const n = this.nodes.get(id);
    if (!n) return;
    while (n.hasReady()) {
      const rd = n.ready();
      this.stores.get(id)!.persist(rd);
      if (this.crashAfterPersist.delete(id)) {
        // Crash between fsync and send: the Ready is durable, its messages and applies are lost.
        this.nodes.set(id, null);
        return;
      }
      for (const m of rd.messages) this.enqueue(m);
      if (rd.committedEntries.length) {
        const log = this.applied.get(id)!;
        // A snapshot installed from a leader moves the applied index past entries never delivered.
        const want = Math.max(log.length ? log[log.length - 1].index : 0, this.stores.get(id)!.snapshot?.index ?? 0) + 1;
        if (rd.committedEntries[0].index !== want) throw new Error(`AppliedNotContiguous: ${id} got committed ${rd.committedEntries[0].index}, expected ${want}`);
        log.push(...rd.committedEntries);
        if (this.checkSafety) this.checker.onCommitted(id, rd.committedEntries);
      }
      if (rd.readStates.length) this.readStates.get(id)!.push(...rd.readStates);
      if (rd.readStatesFailed.length) this.readStatesFailed.get(id)!.push(...rd.readStatesFailed);
      if (this.recordReadies) this.readies.get(id)!.push(rd);
      if (this.onReady) this.onReady(id, rd);
      n.advance(rd);
      if (this.checkSafety) this.checker.observe(n);
    }
  }

  processAll(): void {
    for (const id of this.ids) this.processReady(id);
  }

  /** One tick on every live node (or just `only`), then their Ready loops. */
  tick(only?: NodeId[]): void {
    for (const id of only ?? this.ids) {
      const n = this.nodes.get(id);
      if (n) n.tick();
    }
    this.processAll();
  }

  /**
   * Delivers the messages in flight now (in send order, or shuffled if `reorder`), applying faults.
   * Messages produced meanwhile wait for the next call. Returns how many were stepped.
   */
  deliver(): number {
    const batch = this.queue;
    this.queue = [];
    if (this.reorder) shuffle(batch, this.rng);
    let n = 0;
    for (const f of batch) {
      if (f.hold > 0) {
        f.hold--;
        this.queue.push(f);
        continue;
      }
      if (this.duplicateRate > 0 && this.rng() < this.duplicateRate) this.queue.push({ seq: this.seq++, msg: f.msg, hold: 0, delayed: false });
      if (!this.deliverable(f.msg)) continue;
      if (this.dropRate > 0 && this.rng() < this.dropRate) continue;
      if (this.delayRate > 0 && !f.delayed && this.rng() < this.delayRate) {
        f.delayed = true;
        f.hold = Math.floor(this.rng() * this.delayRoundsMax);
        this.queue.push(f);
        continue;
      }
      this.node(f.msg.to).step(f.msg);
      this.processReady(f.msg.to);
      n++;
    }
    return n;
  }

  /** Processes Readies and delivers until no message is in flight (or `roundsMax` rounds). */
  stabilize(roundsMax = 1000): void {
    this.processAll();
    for (let r = 0; r < roundsMax && this.queue.length; r++) {
      this.deliver();
      this.processAll();
    }
  }

  /** `ticks` times: tick every live node, then deliver one round of messages. */
  run(ticks: number): void {
    for (let t = 0; t < ticks; t++) {
      this.tick();
      this.deliver();
    }
  }

  /** Makes `id` campaign and delivers until quiet. Returns whether it became leader. */
  elect(id: NodeId): boolean {
    this.node(id).campaign();
    this.stabilize();
    return this.node(id).status().role === 'leader';
  }

  /** Proposes UTF-8 strings on `id` (must be leader) and returns the index range. */
  propose(id: NodeId, ...data: string[]): { firstIndex: number; lastIndex: number; term: number } {
    const r = this.node(id).propose(data.map((s) => new TextEncoder().encode(s)));
    this.processReady(id);
    return r;
  }

  /** `proposeConfChange(cc)` on `id` (thesis §4.1), then its Ready loop. @throws as RaftNode.proposeConfChange. */
  proposeConfChange(id: NodeId, cc: ConfChange): { index: number; term: number; conf: ConfState } {
    const r = this.node(id).proposeConfChange(cc);
    this.processReady(id);
    return r;
  }

  /** Log compaction on `id` up to `index` (<= its applied index), as a driver does: the node, then its durable store. */
  compact(id: NodeId, index: number): void {
    const n = this.node(id);
    n.compact(index);
    this.stores.get(id)!.compact(n.snapshot());
  }

  /** `readIndex(ctx)` on `id` (thesis §6.4), then its Ready loop. @throws NotLeaderError on a non-leader. */
  readIndex(id: NodeId, ctx: ReadContext): void {
    this.node(id).readIndex(ctx);
    this.processReady(id);
  }

  /** `transferLeadership(to)` on `id` (thesis §3.10), then its Ready loop. @throws NotLeaderError on a non-leader. */
  transferLeadership(id: NodeId, to: NodeId): void {
    this.node(id).transferLeadership(to);
    this.processReady(id);
  }

  // ---- faults -----------------------------------------------------------------------------

  /** Drops in-flight and future messages matching `filter` (null clears). */
  dropIf(filter: ((m: Message) => boolean) | null): void {
    this.dropFilter = filter;
  }

  /** Cuts every link between different groups (nodes not listed form their own group). */
  partition(...groups: NodeId[][]): void {
    this.cut.clear();
    const groupOf = new Map<NodeId, number>();
    groups.forEach((g, i) => g.forEach((id) => groupOf.set(id, i)));
    for (const a of this.ids) {
      for (const b of this.ids) {
        if (a !== b && (groupOf.get(a) ?? `solo-${a}`) !== (groupOf.get(b) ?? `solo-${b}`)) this.cut.add(`${a}>${b}`);
      }
    }
  }

  isolate(id: NodeId): void {
    this.partition(this.ids.filter((x) => x !== id));
  }

  heal(): void {
    this.cut.clear();
  }

  /** Stops `id`: it loses all volatile state; only its DurableStore survives. */
  crash(id: NodeId): void {
    this.node(id);
    this.nodes.set(id, null);
  }

  /** Crashes `id` right after it persists its next Ready, before sending its messages or applying. */
  crashAfterNextPersist(id: NodeId): void {
    this.node(id);
    this.crashAfterPersist.add(id);
  }

  /** Forgets every pending `crashAfterNextPersist`. */
  cancelPendingCrashes(): void {
    this.crashAfterPersist.clear();
  }

  /**
   * Ends every fault: loss, duplication, delay and reordering off, drop filter cleared,
   * partitions healed, pending crashes cancelled, crashed nodes restarted. Messages in flight stay.
   */
  calm(): void {
    this.dropRate = 0;
    this.duplicateRate = 0;
    this.delayRate = 0;
    this.reorder = false;
    this.dropFilter = null;
    this.heal();
    this.cancelPendingCrashes();
    for (const id of this.ids) if (!this.isUp(id)) this.restart(id);
  }

  /** Rebuilds `id` from its DurableStore (applied = what it delivered before the crash). */
  restart(id: NodeId): RaftNode {
    if (this.isUp(id)) throw new Error(`node ${id} is up`);
    this.crashAfterPersist.delete(id);
    this.restarts.set(id, this.restarts.get(id)! + 1);
    const n = this.build(id, true);
    this.nodes.set(id, n);
    return n;
  }

  /** Throws SafetyViolationError if two live logs violate Log Matching. */
  checkLogMatching(): void {
    this.checker.checkLogMatching(this.liveNodes());
  }

  /** Throws SafetyViolationError if a live node's log differs from what was committed at or below its commit index. */
  checkCommittedPrefixes(): void {
    this.checker.checkCommittedPrefixes(this.liveNodes());
  }

  private build(id: NodeId, restore: boolean): RaftNode {
    const store = this.stores.get(id)!;
    const applied = this.applied.get(id)!;
    const salt = this.ids.indexOf(id) * 7919 + this.restarts.get(id)! * 104729;
    return new RaftNode({
      ...this.baseConfig,
      id,
      voters: this.initialVoters,
      random: mulberry32((this.seed * 2654435761 + salt) >>> 0),
      ...(this.logCacheBytesMax === undefined ? {} : { logCache: { storage: { entries: (lo: number, hi: number, bytesMax: number) => store.read(lo, hi, bytesMax) }, bytesMax: this.logCacheBytesMax } }),
      ...(restore
        ? {
            restored: { hardState: { ...store.hardState }, entries: store.entries.slice(), ...(store.snapshot ? { snapshot: store.snapshot } : {}) },
            applied: Math.max(applied.length ? applied[applied.length - 1].index : 0, store.snapshot?.index ?? 0),
          }
        : {}),
    });
  }

  private enqueue(m: Message): void {
    if (this.recordSent) this.sent.push(m);
    this.queue.push({ seq: this.seq++, msg: m, hold: 0, delayed: false });
  }

  private deliverable(m: Message): boolean {
    if (!this.isUp(m.to) || this.cut.has(`${m.from}>${m.to}`)) return false;
    return !(this.dropFilter && this.dropFilter(m));
  }
}

function shuffle<T>(a: T[], rng: () => number): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
}
