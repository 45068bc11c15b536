import { TransportError, type Transport, type TransportMsg, type TransportSubscription } from '../transport';
import type { Incarnation, SimScheduler } from './scheduler';

/**
 * Faults and limits of the simulated bus; every field may be changed while the simulation runs.
 * Probabilities are per message (per copy, per receiver).
 */
export interface NetworkFaults {
  /** nats-server's `max_payload`, bytes: a larger publish, reply or request is refused by the sender's client. */
  maxPayloadBytes: number;
  /** One-way latency of a message, drawn uniformly from [latencyMsMin, latencyMsMax]. */
  latencyMsMin: number;
  latencyMsMax: number;
  /** Probability that a message is lost. */
  dropRate: number;
  /** Probability that a message is delivered twice (the copy after its own latency). */
  duplicateRate: number;
  /** Probability that a message leaves its link's FIFO order (delivered after a fresh latency, possibly before earlier ones). */
  reorderRate: number;
  /** Messages queued towards one process at once; beyond, dropped (nats-server's slow-consumer cut, without the disconnect). */
  pendingMsgsMax: number;
  /** Bytes queued towards one process at once; beyond, dropped. */
  pendingBytesMax: number;
}

export const NETWORK_FAULTS_NONE: NetworkFaults = {
  maxPayloadBytes: 1024 * 1024,
  latencyMsMin: 1,
  latencyMsMax: 1,
  dropRate: 0,
  duplicateRate: 0,
  reorderRate: 0,
  pendingMsgsMax: 65_536,
  pendingBytesMax: 64 * 1024 * 1024,
};

/** What the network did, for reports and assertions. */
export interface NetworkStats {
  sent: number;
  delivered: number;
  dropped: number;
  duplicated: number;
  reordered: number;
  partitioned: number;
  slowConsumerDrops: number;
  payloadRefused: number;
  noResponders: number;
  timeouts: number;
}

interface Sub {
  subject: string;
  queue?: string;
  owner: Incarnation;
  callback: (msg: TransportMsg) => void;
  active: boolean;
}

interface PendingRequest {
  owner: Incarnation;
  settle: (msg: TransportMsg) => void;
}

/**
 * A deterministic core-NATS bus for one simulation: literal subjects, publish, queue groups,
 * request/reply with timeouts and `no responders`, `max_payload`, latency, loss, duplication,
 * reordering, slow-consumer drops and partitions between processes. All randomness and time come
 * from the SimScheduler. A message between two processes that a partition separates (at send or
 * at delivery) is lost, as on a real network cut; `no responders` is decided by subscription
 * alone (nats-server knows its subscribers even when the path to one of them is cut).
 */
export class SimNetwork {
  readonly faults: NetworkFaults;
  readonly stats: NetworkStats = { sent: 0, delivered: 0, dropped: 0, duplicated: 0, reordered: 0, partitioned: 0, slowConsumerDrops: 0, payloadRefused: 0, noResponders: 0, timeouts: 0 };
  private readonly subs = new Map<string, Sub[]>();
  private readonly inboxes = new Map<string, PendingRequest>();
  private readonly groupOf = new Map<string, number>();
  private partitioned = false;
  /** Last delivery time per link (`from>to`), for per-link FIFO. */
  private readonly linkLastMs = new Map<string, number>();
  private readonly pending = new Map<string, { msgs: number; bytes: number }>();
  private inboxSeq = 0;
  /** The first message refused for max_payload (stats.payloadRefused counts them all): a simulator's invariant. */
  firstPayloadRefused: { host: string; subject: string; bytes: number } | null = null;

  constructor(
    private readonly sched: SimScheduler,
    faults: Partial<NetworkFaults> = {},
  ) {
    this.faults = { ...NETWORK_FAULTS_NONE, ...faults };
  }

  /** The bus as seen by process incarnation `who`; everything it does dies with it. */
  connect(who: Incarnation): Transport {
    return new SimTransport(this, who);
  }

  /**
   * Partitions the processes into `groups` (by host name): messages flow only inside a group; a
   * host in no group is cut off from every other. `heal()` ends it.
   */
  partition(...groups: string[][]): void {
    this.groupOf.clear();
    groups.forEach((g, i) => g.forEach((h) => this.groupOf.set(h, i)));
    this.partitioned = groups.length > 0;
  }

  heal(): void {
    this.groupOf.clear();
    this.partitioned = false;
  }

  /** True when messages from host `a` reach host `b` now. */
  connected(a: string, b: string): boolean {
    if (a === b || !this.partitioned) return true;
    const ga = this.groupOf.get(a);
    return ga !== undefined && ga === this.groupOf.get(b);
  }

  // ---- used by SimTransport ----------------------------------------------------------------

  subscribe(sub: Sub): void {
    let list = this.subs.get(sub.subject);
    if (!list) this.subs.set(sub.subject, (list = []));
    list.push(sub);
  }

  unsubscribe(sub: Sub): void {
    sub.active = false;
    const list = this.subs.get(sub.subject);
    if (!list) return;
    const i = list.indexOf(sub);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.subs.delete(sub.subject);
  }

  hasSubscribers(subject: string): boolean {
    return this.liveSubs(subject).length > 0;
  }

  newInbox(owner: Incarnation, settle: (msg: TransportMsg) => void): string {
    const inbox = `_INBOX.${owner.host}.${++this.inboxSeq}`;
    this.inboxes.set(inbox, { owner, settle });
    return inbox;
  }

  closeInbox(inbox: string): void {
    this.inboxes.delete(inbox);
  }

  /** Size check shared by publish, respond and request. @throws TransportError MAX_PAYLOAD_EXCEEDED */
  checkPayload(from: Incarnation, subject: string, data: Uint8Array): void {
    if (data.length > this.faults.maxPayloadBytes) {
      this.stats.payloadRefused++;
      this.firstPayloadRefused ??= { host: from.host, subject, bytes: data.length };
      throw new TransportError('MAX_PAYLOAD_EXCEEDED', `message of ${data.length} bytes on ${subject} exceeds max_payload ${this.faults.maxPayloadBytes}`);
    }
  }

  /** Routes one message from `from`: to each plain subscriber and one member per queue group, or to a request's inbox. */
  route(from: Incarnation, subject: string, data: Uint8Array, reply?: string): void {
    this.stats.sent++;
    const payload = new Uint8Array(data); // a copy (one memcpy): the sender may reuse its buffer
    const inbox = this.inboxes.get(subject);
    if (inbox) {
      this.send(from, inbox.owner, payload.length, () => {
        if (!this.inboxes.has(subject)) return; // answered already or timed out
        this.inboxes.delete(subject);
        inbox.settle(this.message(inbox.owner, subject, payload));
      });
      return;
    }
    const targets: Sub[] = [];
    const groups = new Map<string, Sub[]>();
    for (const s of this.liveSubs(subject)) {
      if (!s.queue) targets.push(s);
      else {
        let g = groups.get(s.queue);
        if (!g) groups.set(s.queue, (g = []));
        g.push(s);
      }
    }
    for (const g of groups.values()) targets.push(g[Math.floor(this.sched.random.float() * g.length)]);
    for (const s of targets) {
      this.send(from, s.owner, payload.length, () => {
        if (s.active && s.owner.alive) s.callback(this.message(s.owner, subject, payload, reply));
      });
    }
  }

  /** Timeout of a request, as nats.js reports it. */
  timedOut(inbox: string): void {
    if (this.inboxes.delete(inbox)) this.stats.timeouts++;
  }

  private liveSubs(subject: string): Sub[] {
    return (this.subs.get(subject) ?? []).filter((s) => s.active && s.owner.alive);
  }

  private message(to: Incarnation, subject: string, data: Uint8Array, reply?: string): TransportMsg {
    return {
      subject,
      data,
      reply,
      respond: (out) => {
        if (!reply) return false;
        if (!to.alive) throw new TransportError('CLOSED', 'connection closed');
        this.checkPayload(to, reply, out);
        this.route(to, reply, out);
        return true;
      },
    };
  }

  /** One copy from `from` to `to` through the faults; `deliver` runs at arrival. */
  private send(from: Incarnation, to: Incarnation, bytes: number, deliver: () => void): void {
    const f = this.faults;
    const rnd = this.sched.random;
    if (!this.connected(from.host, to.host)) {
      this.stats.partitioned++;
      return;
    }
    if (rnd.float() < f.dropRate) {
      this.stats.dropped++;
      return;
    }
    const copies = rnd.float() < f.duplicateRate ? 2 : 1;
    if (copies === 2) this.stats.duplicated++;
    for (let c = 0; c < copies; c++) {
      const q = this.pending.get(to.host) ?? { msgs: 0, bytes: 0 };
      if (q.msgs + 1 > f.pendingMsgsMax || q.bytes + bytes > f.pendingBytesMax) {
        this.stats.slowConsumerDrops++;
        continue;
      }
      q.msgs++;
      q.bytes += bytes;
      this.pending.set(to.host, q);
      const latency = f.latencyMsMin + Math.floor(rnd.float() * (f.latencyMsMax - f.latencyMsMin + 1));
      const link = `${from.host}>${to.host}`;
      let at = this.sched.nowMs + latency;
      if (c === 0 && rnd.float() < f.reorderRate) this.stats.reordered++;
      else at = Math.max(at, this.linkLastMs.get(link) ?? 0);
      if (c === 0) this.linkLastMs.set(link, Math.max(at, this.linkLastMs.get(link) ?? 0));
      this.sched.schedule(at, () => {
        q.msgs--;
        q.bytes -= bytes;
        if (!to.alive) return;
        if (!this.connected(from.host, to.host)) {
          this.stats.partitioned++;
          return;
        }
        this.stats.delivered++;
        deliver();
      });
    }
  }
}

class SimTransport implements Transport {
  constructor(
    private readonly net: SimNetwork,
    private readonly who: Incarnation,
  ) {}

  maxPayloadBytes(): number {
    return this.net.faults.maxPayloadBytes;
  }

  publish(subject: string, data: Uint8Array): void {
    this.assertAlive();
    this.net.checkPayload(this.who, subject, data);
    this.net.route(this.who, subject, data);
  }

  subscribe(subject: string, callback: (msg: TransportMsg) => void, opts: { queue?: string } = {}): TransportSubscription {
    this.assertAlive();
    const sub: Sub = { subject, queue: opts.queue, owner: this.who, callback, active: true };
    this.net.subscribe(sub);
    return { unsubscribe: () => this.net.unsubscribe(sub) };
  }

  request(subject: string, data: Uint8Array, opts: { timeoutMs: number }): Promise<TransportMsg> {
    return new Promise((resolve, reject) => {
      this.assertAlive();
      this.net.checkPayload(this.who, subject, data);
      const clock = this.who.clock;
      if (!this.net.hasSubscribers(subject)) {
        // nats-server answers a request without interest with a 503 status, one round trip later.
        this.net.stats.noResponders++;
        clock.setTimeout(() => reject(new TransportError('NO_RESPONDERS', `no responders on ${subject}`)), 2 * this.net.faults.latencyMsMin);
        return;
      }
      const timer = clock.setTimeout(() => {
        this.net.timedOut(inbox);
        reject(new TransportError('TIMEOUT', `request on ${subject} timed out after ${opts.timeoutMs} ms`));
      }, opts.timeoutMs);
      const inbox = this.net.newInbox(this.who, (msg) => {
        clock.clearTimer(timer);
        resolve(msg);
      });
      this.net.route(this.who, subject, data, inbox);
    });
  }

  private assertAlive(): void {
    if (!this.who.alive) throw new TransportError('CLOSED', `connection of ${this.who.host} is closed`);
  }
}
