import { Status, decodeReadIndexReply, encodeReadIndexRequest } from '@cairn/protocol';
import { realWorld } from '@cairn/world';
import { requestLeader, type LeaderRequestDeps } from './leader-request';

export type ReadIndexResult = { ok: true; index: number } | { ok: false; status: Status; message: string };

interface Waiter {
  deadlineMs: number;
  resolve(r: ReadIndexResult): void;
}

/**
 * Linearizable reads (ReadIndex, Raft thesis §6.4): before a read, ask the leader for the index
 * at which reading is linearizable; a storage node that has applied that index then serves it.
 * Every read that arrives in the same event-loop turn shares one request (and the leader batches
 * the requests of all gateways into one heartbeat round). A read never joins a request that was
 * already sent: the index must be fixed after the read began.
 */
export class ReadIndexClient {
  private waiting: Waiter[] = [];
  private scheduled = false;

  /**
   * Config `gateway.readAlongsideReadIndex`: a linearizable read's storage read is sent together
   * with its ReadIndex request instead of after the answer (KvSession; docs/architecture.md "Read
   * path"). Absent from `opts`: false.
   */
  readonly readAlongside: boolean;

  constructor(
    private readonly deps: LeaderRequestDeps,
    private readonly opts: { readTimeoutMs: number; readAlongsideReadIndex?: boolean },
  ) {
    this.readAlongside = opts.readAlongsideReadIndex === true;
  }

  readIndex(): Promise<ReadIndexResult> {
    return new Promise((resolve) => {
      const { clock } = this.deps.world ?? realWorld;
      this.waiting.push({ deadlineMs: clock.nowMs() + this.opts.readTimeoutMs, resolve });
      if (this.scheduled) return;
      this.scheduled = true;
      clock.defer(() => {
        this.scheduled = false;
        const batch = this.waiting;
        this.waiting = [];
        void this.send(batch);
      });
    });
  }

  private async send(batch: Waiter[]): Promise<void> {
    const reply = await requestLeader(
      this.deps,
      (leader) => this.deps.subjects.readIndex(leader),
      encodeReadIndexRequest({ reads: batch.length }),
      decodeReadIndexReply,
      batch[0].deadlineMs,
      { idempotent: true },
    );
    const result: ReadIndexResult =
      'timedOut' in reply || 'unknown' in reply
        ? { ok: false, status: Status.Unavailable, message: `read index not confirmed within ${this.opts.readTimeoutMs} ms: ${'timedOut' in reply ? reply.timedOut : reply.unknown}` }
        : reply.status === Status.Ok
          ? { ok: true, index: reply.readIndex }
          : { ok: false, status: reply.status, message: reply.message };
    for (const w of batch) w.resolve(result);
  }
}
