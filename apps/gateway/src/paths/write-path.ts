import { Status, decodeProposeReply, encodeProposeRequest, type Command } from '@cairn/protocol';
import type { Logger, Subjects } from '@cairn/messaging';
import type { NatsConnection } from 'nats';
import type { ClusterView } from '../cluster/cluster-view';
import { backoffMs, delay } from './backoff';

/** One proposal's encoded commands stay under this, bytes (NATS max_payload; one command always fits). */
const PROPOSAL_BYTES_MAX = 1024 * 1024;
/** One proposal request's timeout, ms: a dead leader is detected this fast (then an election). */
const PROPOSE_TIMEOUT_MS = 2000;

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
}

/**
 * Client writes → proposals to the Raft leader. Writes from all connections are batched into one
 * ProposeRequest per flush (up to `commandsPerProposalMax` / PROPOSAL_BYTES_MAX), at most
 * `proposalsInflightMax` in flight. A batch follows NOT_LEADER hints and elections and is retried
 * until its oldest write's deadline (`writeTimeoutMs`), then answered UNAVAILABLE.
 *
 * Retried proposals may apply twice when a reply was lost after commit; SET and DEL are
 * idempotent in the value they leave, so the outcome is the same (exactly-once sessions come with
 * the duplicate-safe writes issue).
 */
export class WritePath {
  private queue: QueuedWrite[] = [];
  private inflight = 0;
  private flushScheduled = false;
  private stopped = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly subjects: Subjects,
    private readonly view: ClusterView,
    private readonly opts: WritePathOptions,
    private readonly log: Logger,
  ) {}

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
    const payload = encodeProposeRequest({ commands: batch.map((w) => w.command) });
    const deadlineMs = batch[0].deadlineMs;
    let lastError = 'no leader known';
    for (let attempt = 0; ; attempt++) {
      const remainingMs = deadlineMs - Date.now();
      if (remainingMs <= 0 || this.stopped) break;
      const leader = this.view.leaderId();
      if (!leader) {
        await this.view.waitForLeader(Math.min(remainingMs, 100));
        continue;
      }
      try {
        const res = await this.nc.request(this.subjects.propose(leader), payload, { timeout: Math.min(remainingMs, PROPOSE_TIMEOUT_MS) });
        const reply = decodeProposeReply(res.data);
        switch (reply.status) {
          case Status.Ok:
            for (let i = 0; i < batch.length; i++) batch[i].resolve({ status: Status.Ok, revision: reply.firstIndex + i, message: '' });
            return;
          case Status.NotLeader:
            lastError = `replica ${leader} is not the leader`;
            if (reply.leaderHint && reply.leaderHint !== leader) {
              this.view.hintLeader(reply.leaderHint);
              continue;
            }
            this.view.suspectLeader(leader);
            await this.view.waitForLeader(Math.min(remainingMs, 50));
            continue;
          case Status.Unavailable:
            lastError = reply.message;
            await delay(backoffMs(attempt));
            continue;
          default:
            for (const w of batch) w.resolve({ status: reply.status, revision: 0, message: reply.message });
            return;
        }
      } catch (e) {
        // Timeout or no responders: the leader is dead or partitioned; an election follows.
        lastError = `leader ${leader} did not answer: ${(e as Error).message}`;
        this.log.debug({ leader, err: e }, 'proposal failed; retrying');
        this.view.suspectLeader(leader);
        await delay(backoffMs(attempt));
      }
    }
    for (const w of batch) w.resolve({ status: Status.Unavailable, revision: 0, message: `write not acknowledged within ${this.opts.writeTimeoutMs} ms: ${lastError}` });
  }
}
