import { Status, decodeReadReply, encodeReadRequest } from '@cairn/protocol';
import type { Logger, Subjects } from '@cairn/messaging';
import type { NatsConnection } from 'nats';
import type { ClusterView } from '../cluster/cluster-view';
import { backoffMs, delay } from './backoff';

/** Reads per ReadRequest to one storage node. */
const READS_PER_REQUEST_MAX = 1024;
/** One read request's timeout, ms (the node itself waits at most its readWaitMs for its applied index). */
const READ_REQUEST_TIMEOUT_MS = 3000;

export interface ReadResult {
  status: Status;
  revision: number;
  value: Uint8Array;
  message: string;
}

interface QueuedRead {
  key: Uint8Array;
  minIndex: number;
  deadlineMs: number;
  attempt: number;
  avoid: string | null;
  resolve(r: ReadResult): void;
}

/**
 * Client reads → storage nodes. A read carries `minIndex` (the index of the connection's last
 * acknowledged write) and is routed to a live node that has applied at least that index when one
 * is known, else to the most advanced node, which waits for it. Reads queued in the same tick are
 * batched per node. A node that times out or answers UNAVAILABLE is avoided on the retry; after
 * `readTimeoutMs` the read is answered UNAVAILABLE.
 */
export class ReadPath {
  private queue: QueuedRead[] = [];
  private flushScheduled = false;
  private rr = 0;

  constructor(
    private readonly nc: NatsConnection,
    private readonly subjects: Subjects,
    private readonly view: ClusterView,
    private readonly opts: { readTimeoutMs: number },
    private readonly log: Logger,
  ) {}

  get(key: Uint8Array, minIndex: number): Promise<ReadResult> {
    return new Promise((resolve) => {
      this.enqueue({ key, minIndex, deadlineMs: Date.now() + this.opts.readTimeoutMs, attempt: 0, avoid: null, resolve });
    });
  }

  private enqueue(r: QueuedRead): void {
    this.queue.push(r);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private choose(minIndex: number, avoid: string | null): string | null {
    const live = this.view.liveStorageNodes().filter((n) => n.id !== avoid);
    if (live.length === 0) return avoid && this.view.liveStorageNodes().length ? avoid : null;
    const ready = live.filter((n) => n.appliedIndex >= minIndex);
    if (ready.length) return ready[this.rr++ % ready.length].id;
    return live[0].id; // most advanced; it waits until it has applied minIndex
  }

  private flush(): void {
    const queue = this.queue;
    this.queue = [];
    const byNode = new Map<string, QueuedRead[]>();
    for (const r of queue) {
      const node = this.choose(r.minIndex, r.avoid);
      if (!node) {
        void this.retry(r, 'no storage node is alive');
        continue;
      }
      let list = byNode.get(node);
      if (!list) byNode.set(node, (list = []));
      list.push(r);
    }
    for (const [node, reads] of byNode) {
      for (let i = 0; i < reads.length; i += READS_PER_REQUEST_MAX) void this.send(node, reads.slice(i, i + READS_PER_REQUEST_MAX));
    }
  }

  private async send(node: string, reads: QueuedRead[]): Promise<void> {
    const remainingMs = Math.max(1, Math.min(...reads.map((r) => r.deadlineMs)) - Date.now());
    try {
      const res = await this.nc.request(this.subjects.read(node), encodeReadRequest({ reads: reads.map((r) => ({ key: r.key, minIndex: r.minIndex })) }), {
        timeout: Math.min(remainingMs, READ_REQUEST_TIMEOUT_MS),
      });
      const reply = decodeReadReply(res.data);
      this.view.noteApplied(node, reply.appliedIndex);
      if (reply.results.length !== reads.length) throw new Error(`storage node ${node} answered ${reply.results.length} results for ${reads.length} reads`);
      reads.forEach((r, i) => {
        const out = reply.results[i];
        if (out.status === Status.Unavailable || out.status === Status.Error) {
          r.avoid = node;
          void this.retry(r, out.message);
        } else {
          r.resolve({ status: out.status, revision: out.revision, value: out.value, message: out.message });
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

  private async retry(r: QueuedRead, why: string): Promise<void> {
    if (Date.now() >= r.deadlineMs) {
      r.resolve({ status: Status.Unavailable, revision: 0, value: new Uint8Array(0), message: `read not served within ${this.opts.readTimeoutMs} ms: ${why}` });
      return;
    }
    await delay(backoffMs(r.attempt++));
    this.enqueue(r);
  }
}
