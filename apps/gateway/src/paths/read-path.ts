import { READ_REQUEST_BOUND_BYTES, READ_REQUEST_BYTES_BASE, Status, decodeLeaseKeysReply, decodeRangeReply, decodeReadReply, encodeLeaseKeysRequest, encodeRangeRequest, encodeReadRequest, readRequestItemBytes, type LeaseKeysReply, type LeaseKeysRequest, type RangeReply, type RangeRequest, type StorageStatus } from '@cairn/protocol';
import { asTransport, payloadBytesMax, type Subjects } from '@cairn/messaging';
import type { Logger } from '@cairn/logging';
import { realWorld, sleep, type TimerHandle, type Transport, type World } from '@cairn/world';
import type { NatsConnection } from 'nats';
import type { ClusterView } from '../cluster/cluster-view';
import { retryBackoffMs } from './backoff';
import type { ByteBudget, ReadReservation } from '../server/flow';

/** Reads per ReadRequest to one storage node (and the request's bytes stay under the NATS payload bound). */
const READS_PER_REQUEST_MAX = 1024;
/** One read request's timeout, ms (the node itself waits at most its readWaitMs for its applied index). */
const READ_REQUEST_TIMEOUT_MS = 3000;

export interface ReadResult {
  status: Status;
  /** OK: the key's mod revision (the Raft index of the write that set the value). */
  revision: number;
  /** OK: the key's create revision and version (writes since creation), as etcd's mvcc keeps them. */
  createRevision?: number;
  version?: number;
  /** OK: the key's absolute expiry, ms since the Unix epoch (0 = none; docs/leases.md). Absent from a node that predates it. */
  expiresAtMs?: number;
  value: Uint8Array;
  message: string;
  /**
   * A storage node's answer (OK, NOT_FOUND, TOO_LARGE): the node's applied index when it read it
   * (ReadReply.appliedIndex: the node reads every result of a reply in one synchronous step at
   * that index, its state holding every committed entry up to it). Absent on the gateway's own
   * answers (UNAVAILABLE after readTimeoutMs, the client gone).
   */
  appliedIndex?: number;
}

interface QueuedRead {
  key: Uint8Array;
  minIndex: number;
  deadlineMs: number;
  attempt: number;
  avoid: string | null;
  /** Value bytes reserved for the answer (read flow control); absent: unbounded (payload bound only). */
  reservation?: ReadReservation;
  /** Bytes this read's reservation grew by, granted by ByteBudget.mayGrow and not yet settled. */
  grown: number;
  resolve(r: ReadResult): void;
}

/**
 * Client reads → storage nodes. A read carries `minIndex` (the index of the connection's last
 * acknowledged write) and is routed to a live node that has applied at least that index when one
 * is known, else to the most advanced node, which waits for it. Reads queued in the same tick are
 * batched per node, each request under READS_PER_REQUEST_MAX reads and the NATS payload bound. A
 * node answers the reads whose results fit its reply's payload bound (a prefix, docs/protocol.md
 * "Message size bounds on the internal bus"); the rest are asked again at once. A node that times
 * out or answers UNAVAILABLE is avoided on the retry; after `readTimeoutMs` the read is answered
 * UNAVAILABLE.
 *
 * Read flow control (docs/protocol.md, "Read flow control"): a read with a ReadReservation asks for
 * at most its reserved value bytes. A value the node withheld as larger is asked again once the
 * reservation has grown to the value's exact size, which waits (in arrival order) until
 * ByteBudget.mayGrow allows it: the value bytes in flight never exceed what is reserved, plus one
 * value. A read whose client has gone (ReadReservation.cancelled) is not sent: it is answered
 * UNAVAILABLE at once and releases its reservation.
 */
export class ReadPath {
  private queue: QueuedRead[] = [];
  private flushScheduled = false;
  private rr = 0;
  private readonly nc: Transport;
  /** Reads whose value was withheld, waiting (FIFO) for their reservation to grow by `bytes`. */
  private growQueue: { read: QueuedRead; bytes: number }[] = [];
  private growWaiting = false;
  /** Fires at the deadline of the read at the head of growQueue. */
  private growTimer: TimerHandle | null = null;

  /** `world`: time and randomness (default the real ones; the simulator passes its own). */
  constructor(
    bus: Transport | NatsConnection,
    private readonly subjects: Subjects,
    private readonly view: ClusterView,
    private readonly opts: { readTimeoutMs: number },
    private readonly log: Logger,
    private readonly world: World = realWorld,
  ) {
    this.nc = asTransport(bus);
  }

  /** `reservation`: the value bytes reserved for the answer (absent: no bound but the payload bound). */
  get(key: Uint8Array, minIndex: number, reservation?: ReadReservation): Promise<ReadResult> {
    return new Promise((resolve) => {
      this.enqueue({ key, minIndex, deadlineMs: this.world.clock.nowMs() + this.opts.readTimeoutMs, attempt: 0, avoid: null, reservation, grown: 0, resolve });
    });
  }

  /** Answers a read: a grown reservation is settled with its budget (the caller holds the bytes until it has written the answer). */
  private finish(r: QueuedRead, out: ReadResult): void {
    if (r.grown > 0) {
      const grown = r.grown;
      r.grown = 0;
      r.reservation?.budget.growing(-grown);
    }
    r.resolve(out);
  }

  /** The node withheld a value of `valueBytes`: grow the read's reservation to it, then ask again. */
  private withheld(r: QueuedRead, valueBytes: number): void {
    const bytes = valueBytes - (r.reservation?.bytes ?? valueBytes);
    if (bytes <= 0) return this.enqueue(r);
    this.growQueue.push({ read: r, bytes });
    this.grow();
  }

  /**
   * Grants the waiting grows in order while ByteBudget.mayGrow allows; else waits for bytes to be
   * released or for the head's deadline (a read that cannot get its bytes in time is UNAVAILABLE).
   */
  private grow(): void {
    while (this.growQueue.length > 0) {
      const { read, bytes } = this.growQueue[0];
      const reservation = read.reservation!;
      if (reservation.cancelled() || this.world.clock.nowMs() >= read.deadlineMs) {
        this.growQueue.shift();
        this.finish(read, { status: Status.Unavailable, revision: 0, value: new Uint8Array(0), message: reservation.cancelled() ? 'the client has gone' : `read not served within ${this.opts.readTimeoutMs} ms: waiting for gateway memory (pendingBytesMax) for a value of ${reservation.bytes + bytes} bytes` });
        continue;
      }
      if (!reservation.budget.mayGrow(bytes)) return this.waitToGrow(reservation.budget, read.deadlineMs);
      this.growQueue.shift();
      reservation.grow(bytes);
      reservation.budget.growing(bytes);
      read.grown += bytes;
      this.enqueue(read);
    }
    this.clearGrowTimer();
  }

  private waitToGrow(budget: ByteBudget, deadlineMs: number): void {
    if (!this.growWaiting) {
      this.growWaiting = true;
      budget.whenReleased(() => {
        this.growWaiting = false;
        this.grow();
      });
    }
    if (this.growTimer === null) {
      this.growTimer = this.world.clock.setTimeout(() => {
        this.growTimer = null;
        this.grow();
      }, Math.max(0, deadlineMs - this.world.clock.nowMs()));
    }
  }

  private clearGrowTimer(): void {
    if (this.growTimer === null) return;
    this.world.clock.clearTimer(this.growTimer);
    this.growTimer = null;
  }

  private enqueue(r: QueuedRead): void {
    this.queue.push(r);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    this.world.clock.defer(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  /** `nodes`: the live storage nodes, most advanced first (ClusterView.liveStorageNodes; a flush asks once for all its reads). */
  private choose(minIndex: number, avoid: string | null, nodes: readonly Pick<StorageStatus, 'id' | 'appliedIndex'>[] = this.view.liveStorageNodes()): string | null {
    const live = avoid === null ? nodes : nodes.filter((n) => n.id !== avoid);
    if (live.length === 0) return avoid && nodes.length ? avoid : null;
    // Round robin over the nodes that applied minIndex (counted, not copied: this runs per read).
    let ready = 0;
    for (const n of live) if (n.appliedIndex >= minIndex) ready++;
    if (ready) {
      let k = this.rr++ % ready;
      for (const n of live) if (n.appliedIndex >= minIndex && k-- === 0) return n.id;
    }
    return live[0].id; // most advanced; it waits until it has applied minIndex
  }

  private flush(): void {
    const queue = this.queue;
    this.queue = [];
    const byNode = new Map<string, QueuedRead[]>();
    const nodes = this.view.liveStorageNodes();
    for (const r of queue) {
      if (r.reservation?.cancelled()) {
        this.finish(r, { status: Status.Unavailable, revision: 0, value: new Uint8Array(0), message: 'the client has gone' });
        continue;
      }
      const node = this.choose(r.minIndex, r.avoid, nodes);
      if (!node) {
        void this.retry(r, 'no storage node is alive');
        continue;
      }
      let list = byNode.get(node);
      if (!list) byNode.set(node, (list = []));
      list.push(r);
    }
    const bytesMax = payloadBytesMax(this.nc);
    for (const [node, reads] of byNode) for (const batch of splitReads(reads, bytesMax)) void this.send(node, batch);
  }

  private async send(node: string, reads: QueuedRead[]): Promise<void> {
    const remainingMs = Math.max(1, Math.min(...reads.map((r) => r.deadlineMs)) - this.world.clock.nowMs());
    try {
      const res = await this.nc.request(this.subjects.read(node), encodeReadRequest({ reads: reads.map((r) => ({ key: r.key, minIndex: r.minIndex, valueBytesMax: r.reservation?.bytes })), withExpiry: true }), {
        timeoutMs: Math.min(remainingMs, READ_REQUEST_TIMEOUT_MS),
      });
      const reply = decodeReadReply(res.data);
      this.view.noteApplied(node, reply.appliedIndex);
      if (reply.results.length > reads.length || (reply.results.length === 0 && reads.length > 0)) {
        throw new Error(`storage node ${node} answered ${reply.results.length} results for ${reads.length} reads`);
      }
      // The reads left out did not fit the node's reply: asked again now (no backoff, no attempt
      // counted: the node made progress); each reply answers at least one read.
      for (const r of reads.slice(reply.results.length)) this.enqueue(r);
      reply.results.forEach((out, i) => {
        const r = reads[i];
        if (out.status === Status.Unavailable || out.status === Status.Error) {
          r.avoid = node;
          void this.retry(r, out.message);
        } else if (out.withheldBytes) {
          this.withheld(r, out.withheldBytes);
        } else {
          this.finish(r, { status: out.status, revision: out.revision, createRevision: out.createRevision, version: out.version, expiresAtMs: out.expiresAtMs, value: out.value, message: out.message, appliedIndex: reply.appliedIndex });
        }
      });
    } catch (e) {
      this.log.debug({ node, err: e }, 'read request failed; retrying elsewhere');
      for (const r of reads) {
        r.avoid = node;
        void this.retry(r, `storage node ${node}: ${(e as Error).message}`);
      }
    }
  }

  /**
   * One page of a range read from one storage node that has applied `req.minIndex` (routed as a
   * read; not batched: a page is its own request). A node that times out or answers
   * UNAVAILABLE / ERROR is avoided on the retry, with backoff, until `readTimeoutMs`; then
   * UNAVAILABLE. Other statuses (OK, TOO_LARGE) are the answer.
   */
  range(req: RangeRequest): Promise<RangeReply> {
    return this.routed(req.minIndex, encodeRangeRequest(req), decodeRangeReply, (r) => r.revision, (message) => ({ status: Status.Unavailable, revision: 0, count: 0, more: false, message: `range read not served within ${this.opts.readTimeoutMs} ms: ${message}`, items: [] }));
  }

  /**
   * The keys attached to a lease (LEASE_TTL with KEYS, docs/leases.md) from one storage node that
   * has applied `req.minIndex`, routed and retried as a range page. OK, or NOT_FOUND when the
   * lease is not granted at that index; UNAVAILABLE after `readTimeoutMs`.
   */
  leaseKeys(req: LeaseKeysRequest): Promise<LeaseKeysReply> {
    return this.routed(req.minIndex, encodeLeaseKeysRequest(req), decodeLeaseKeysReply, (r) => r.appliedIndex, (message) => ({ status: Status.Unavailable, appliedIndex: 0, message: `lease keys not read within ${this.opts.readTimeoutMs} ms: ${message}`, more: false, keys: [] }));
  }

  /** One request on `read.<node>` to a node that applied `minIndex`, retried elsewhere on a timeout, UNAVAILABLE or ERROR until readTimeoutMs. */
  private async routed<R extends { status: Status; message: string }>(minIndex: number, payload: Uint8Array, decode: (b: Uint8Array) => R, appliedOf: (r: R) => number, unavailable: (why: string) => R): Promise<R> {
    const deadlineMs = this.world.clock.nowMs() + this.opts.readTimeoutMs;
    let avoid: string | null = null;
    let why = 'no storage node is alive';
    for (let attempt = 0; ; attempt++) {
      const node = this.choose(minIndex, avoid);
      if (node) {
        try {
          const timeoutMs = Math.max(1, Math.min(deadlineMs - this.world.clock.nowMs(), READ_REQUEST_TIMEOUT_MS));
          const reply = decode((await this.nc.request(this.subjects.read(node), payload, { timeoutMs })).data);
          if (reply.status !== Status.Unavailable && reply.status !== Status.Error) {
            if (reply.status === Status.Ok) this.view.noteApplied(node, appliedOf(reply));
            return reply;
          }
          why = reply.message;
        } catch (e) {
          this.log.debug({ node, err: e }, 'routed read failed; retrying elsewhere');
          why = `storage node ${node}: ${(e as Error).message}`;
        }
        avoid = node;
      }
      if (this.world.clock.nowMs() >= deadlineMs) return unavailable(why);
      await sleep(this.world.clock, retryBackoffMs(attempt, this.world.random));
    }
  }

  private async retry(r: QueuedRead, why: string): Promise<void> {
    if (this.world.clock.nowMs() >= r.deadlineMs) {
      this.finish(r, { status: Status.Unavailable, revision: 0, value: new Uint8Array(0), message: `read not served within ${this.opts.readTimeoutMs} ms: ${why}` });
      return;
    }
    await sleep(this.world.clock, retryBackoffMs(r.attempt++, this.world.random));
    this.enqueue(r);
  }
}

/**
 * Splits one node's reads into requests of at most READS_PER_REQUEST_MAX reads and `bytesMax`
 * encoded bytes (a read alone always forms a request: a key is at most 64 KiB).
 */
export function splitReads<T extends { key: Uint8Array }>(reads: T[], bytesMax: number): T[][] {
  const out: T[][] = [];
  let batch: T[] = [];
  let bytes = READ_REQUEST_BYTES_BASE;
  for (const r of reads) {
    // Counted with the valueBytesMax trailer's 8 bytes, whether or not the request carries it.
    const size = readRequestItemBytes(r.key) + READ_REQUEST_BOUND_BYTES;
    if (batch.length > 0 && (batch.length >= READS_PER_REQUEST_MAX || bytes + size > bytesMax)) {
      out.push(batch);
      batch = [];
      bytes = READ_REQUEST_BYTES_BASE;
    }
    batch.push(r);
    bytes += size;
  }
  if (batch.length) out.push(batch);
  return out;
}
