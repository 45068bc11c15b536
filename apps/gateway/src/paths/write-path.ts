import { ApplyOutcome, Status, decodeProposeReply, encodeProposeRequest, type Command } from '@cairn/protocol';
import type { Logger, Subjects } from '@cairn/messaging';
import type { NatsConnection } from 'nats';
import type { ClusterView } from '../cluster/cluster-view';
import { requestLeader } from './leader-request';
import { OutcomePath } from './outcome-path';

/** One proposal's encoded commands stay under this, bytes (NATS max_payload; one command always fits). */
const PROPOSAL_BYTES_MAX = 1024 * 1024;

/**
 * OK: applied at `revision`. CONDITION_FAILED: a conditional write whose condition was false when
 * applied at `revision` (nothing written). Other statuses: `message` says why.
 */
export interface WriteResult {
  status: Status;
  revision: number;
  message: string;
}

interface QueuedWrite {
  command: Command;
  sizeBytes: number;
  deadlineMs: number;
  resolve(r: WriteResult): void;
}

export interface WritePathOptions {
  commandsPerProposalMax: number;
  proposalsInflightMax: number;
  writeTimeoutMs: number;
  /** Budget for learning a conditional write's outcome from a storage node after it committed, ms; default writeTimeoutMs. */
  readTimeoutMs?: number;
}

/**
 * Client writes → proposals to the Raft leader. Writes from all connections are batched into one
 * ProposeRequest per flush (up to `commandsPerProposalMax` / PROPOSAL_BYTES_MAX), at most
 * `proposalsInflightMax` in flight. A batch follows NOT_LEADER hints and elections and is retried
 * until its oldest write's deadline (`writeTimeoutMs`), then answered UNAVAILABLE.
 *
 * A batch is re-sent only when that cannot apply it twice (see requestLeader); an unknown outcome
 * is answered UNAVAILABLE ("may have been applied") for the client to decide, because a blind
 * re-send could re-apply an old value over another client's later write.
 */
export class WritePath {
  private queue: QueuedWrite[] = [];
  private inflight = 0;
  private flushScheduled = false;
  private stopped = false;
  private readonly outcomes: OutcomePath;

  constructor(
    private readonly nc: NatsConnection,
    private readonly subjects: Subjects,
    private readonly view: ClusterView,
    private readonly opts: WritePathOptions,
    private readonly log: Logger,
  ) {
    this.outcomes = new OutcomePath(nc, subjects, view, log);
  }

  submit(command: Command): Promise<WriteResult> {
    if (this.stopped) return Promise.resolve({ status: Status.Unavailable, revision: 0, message: 'gateway shutting down' });
    return new Promise((resolve) => {
      this.queue.push({ command, sizeBytes: command.key.length + command.value.length + 16, deadlineMs: Date.now() + this.opts.writeTimeoutMs, resolve });
      this.scheduleFlush();
    });
  }

  stop(): void {
    this.stopped = true;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    while (this.queue.length && this.inflight < this.opts.proposalsInflightMax) {
      let n = 0;
      let bytes = 0;
      while (n < this.queue.length && n < this.opts.commandsPerProposalMax && (n === 0 || bytes + this.queue[n].sizeBytes <= PROPOSAL_BYTES_MAX)) {
        bytes += this.queue[n].sizeBytes;
        n++;
      }
      const batch = this.queue.splice(0, n);
      this.inflight++;
      void this.send(batch).finally(() => {
        this.inflight--;
        if (this.queue.length) this.scheduleFlush();
      });
    }
  }

  private async send(batch: QueuedWrite[]): Promise<void> {
    const reply = await requestLeader(
      { nc: this.nc, subjects: this.subjects, view: this.view, log: this.log },
      (leader) => this.subjects.propose(leader),
      encodeProposeRequest({ commands: batch.map((w) => w.command) }),
      decodeProposeReply,
      batch[0].deadlineMs,
      { idempotent: false, stopped: () => this.stopped },
    );
    if ('unknown' in reply) {
      for (const w of batch) w.resolve({ status: Status.Unavailable, revision: 0, message: `outcome unknown (the write may have been applied): ${reply.unknown}` });
    } else if ('timedOut' in reply) {
      for (const w of batch) w.resolve({ status: Status.Unavailable, revision: 0, message: `write not acknowledged within ${this.opts.writeTimeoutMs} ms: ${reply.timedOut}` });
    } else if (reply.status === Status.Ok) {
      for (let i = 0; i < batch.length; i++) {
        const w = batch[i];
        const index = reply.firstIndex + i;
        // Plain writes: the commit is the outcome (no extra round trip). Conditional ones: ask a storage node what applying them did.
        if (w.command.condition) void this.resolveOutcome(w, index);
        else w.resolve({ status: Status.Ok, revision: index, message: '' });
      }
    } else {
      for (const w of batch) w.resolve({ status: reply.status, revision: 0, message: reply.message });
    }
  }

  private async resolveOutcome(w: QueuedWrite, index: number): Promise<void> {
    const a = await this.outcomes.outcome(index, Date.now() + (this.opts.readTimeoutMs ?? this.opts.writeTimeoutMs));
    if ('unknown' in a) w.resolve({ status: Status.Unavailable, revision: 0, message: `outcome unknown: the conditional write committed at index ${index} but no storage node reported whether it applied: ${a.unknown}` });
    else if (a.outcome === ApplyOutcome.Applied) w.resolve({ status: Status.Ok, revision: a.revision, message: '' });
    else w.resolve({ status: Status.ConditionFailed, revision: a.revision, message: 'condition not met' });
  }
}
