import { ApplyOutcome, CommandOp, CounterRefusal, LeaseRefusal, Status, COMMAND_SESSION_BYTES, commandBodyBytes, decodeProposeReply, decodeTxnResult, encodeProposeRequest, isAuthOp, type Command, type CommandSession, type OutcomeResult, type TxnResult } from '@cairn/protocol';
import { asTransport, payloadBytesMax, type Subjects } from '@cairn/messaging';
import type { Logger } from '@cairn/logging';
import { realWorld, type Transport, type World } from '@cairn/world';
import type { NatsConnection } from 'nats';
import type { ClusterView } from '../cluster/cluster-view';
import { requestLeader } from './leader-request';
import { OutcomePath } from './outcome-path';

/** A ProposeRequest around its commands: `header(2) | u32 count`. */
const PROPOSE_REQUEST_BASE_BYTES = 2 + 4;
/** The session fields every command carries here: a zero session gives the same encoded size as the real one. */
/**
 * OK: applied at `revision`. CONDITION_FAILED: a conditional write whose condition was false when
 * applied at `revision` (nothing written). Other statuses: `message` says why.
 */
export interface WriteResult {
  status: Status;
  revision: number;
  message: string;
  /** OK of an Incr: the key's new value (a signed 64-bit integer). */
  counter?: bigint;
  /** CONDITION_FAILED of an Incr: why it was refused (`message` says it in Redis's words). */
  refusal?: CounterRefusal;
  /** OK of a Txn (etcd TxnResponse): whether its compares held and one response per op of the branch that ran. */
  txn?: TxnResult;
  /** CONDITION_FAILED of a lease-related write: why (the lease is not live, or holds storage.keysPerLeaseMax keys). */
  leaseRefusal?: LeaseRefusal;
}

/** The message of a lease-related write refused at apply (CONDITION_FAILED). */
export const LEASE_REFUSAL_MESSAGES: Record<LeaseRefusal, string> = {
  [LeaseRefusal.NotFound]: 'lease not found',
  [LeaseRefusal.KeysFull]: 'lease full: it holds storage.keysPerLeaseMax keys, or its revoke would exceed the largest engine record',
};

/** Redis's error texts (t_string.c) for a refused INCR family command. */
export const COUNTER_REFUSAL_MESSAGES: Record<CounterRefusal, string> = {
  [CounterRefusal.NotInteger]: 'value is not an integer or out of range',
  [CounterRefusal.Overflow]: 'increment or decrement would overflow',
};

interface QueuedWrite {
  command: Command;
  seq: number;
  sizeBytes: number;
  deadlineMs: number;
  resolve(r: WriteResult): void;
}

export interface WritePathOptions {
  commandsPerProposalMax: number;
  proposalsInflightMax: number;
  writeTimeoutMs: number;
  /** Budget for learning a write's outcome from a storage node after it committed, ms; default writeTimeoutMs. */
  readTimeoutMs?: number;
  /** This gateway's client-session id (Raft thesis §6.3); default random 64-bit. */
  sessionId?: bigint;
}

/**
 * Client writes → proposals to the Raft leader. Writes from all connections are batched into one
 * ProposeRequest per flush (up to `commandsPerProposalMax` commands and the NATS payload bound,
 * docs/protocol.md "Message size bounds on the internal bus"), at most
 * `proposalsInflightMax` in flight. A batch follows NOT_LEADER hints and elections and is retried
 * until its oldest write's deadline (`writeTimeoutMs`), then answered UNAVAILABLE.
 *
 * Every write carries this gateway's session id, a seq, and the lowest seq still awaiting its
 * reply; storage nodes apply each (session, seq) at most once (docs/reliability.md,
 * "Duplicate-safe writes"). So a batch whose outcome is unknown (the leader died after appending
 * it, a reply was lost) is re-sent, to the new leader, until the deadline; when it finally
 * commits, the true outcome of each write (applied by this copy, by an earlier copy at an earlier
 * index, or a failed condition) is asked from a storage node. A batch that never needed a re-send
 * is answered from the commit reply alone (conditional writes excepted): no extra round trip.
 */
export class WritePath {
  private queue: QueuedWrite[] = [];
  private inflight = 0;
  private flushScheduled = false;
  private stopped = false;
  private readonly outcomes: OutcomePath;
  readonly sessionId: bigint;
  private nextSeq = 1;
  /** Seqs submitted and not yet answered; `lowestPending` is the smallest (or nextSeq when none). */
  private readonly pending = new Set<number>();
  private lowestPending = 1;
  private readonly nc: Transport;

  /** `world`: time and randomness (default the real ones; the simulator passes its own). */
  constructor(
    bus: Transport | NatsConnection,
    private readonly subjects: Subjects,
    private readonly view: ClusterView,
    private readonly opts: WritePathOptions,
    private readonly log: Logger,
    private readonly world: World = realWorld,
  ) {
    this.nc = asTransport(bus);
    this.outcomes = new OutcomePath(this.nc, subjects, view, log, world);
    this.sessionId = opts.sessionId ?? world.random.uint64();
  }

  /**
   * Proposes one write. A `command.session` (a client's own session, e.g. TLV INCR) is kept as
   * given — the client numbers its writes and re-sends them through any gateway — instead of this
   * gateway's session and seq.
   */
  submit(command: Command): Promise<WriteResult> {
    if (this.stopped) return Promise.resolve({ status: Status.Unavailable, revision: 0, message: 'gateway shutting down' });
    return new Promise((resolve) => {
      const own = command.session === undefined;
      const seq = own ? this.nextSeq++ : 0;
      if (own) this.pending.add(seq);
      const done = (r: WriteResult) => {
        if (own) {
          this.pending.delete(seq);
          while (this.lowestPending < this.nextSeq && !this.pending.has(this.lowestPending)) this.lowestPending++;
        }
        resolve(r);
      };
      // Counted with the session fields send() adds (no copy of the command for it).
      const sizeBytes = commandBodyBytes(command) + (command.session ? 0 : COMMAND_SESSION_BYTES);
      const bytesMax = payloadBytesMax(this.nc);
      if (PROPOSE_REQUEST_BASE_BYTES + sizeBytes > bytesMax) {
        // Only a configuration the start-up payload check refuses lets this happen: this write alone fails.
        done({ status: Status.TooLarge, revision: 0, message: `the write (${sizeBytes} bytes encoded) cannot fit in one internal message of at most ${bytesMax} bytes (NATS max_payload)` });
        return;
      }
      this.queue.push({ command, seq, sizeBytes, deadlineMs: this.world.clock.nowMs() + this.opts.writeTimeoutMs, resolve: done });
      this.scheduleFlush();
    });
  }

  stop(): void {
    this.stopped = true;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    this.world.clock.defer(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    const bytesMax = payloadBytesMax(this.nc);
    while (this.queue.length && this.inflight < this.opts.proposalsInflightMax) {
      let n = 0;
      let bytes = PROPOSE_REQUEST_BASE_BYTES;
      // A LeaseGrant goes alone: the leader may refuse its whole proposal (consensus.leasesMax).
      while (n < this.queue.length && n < this.opts.commandsPerProposalMax && (n === 0 || (bytes + this.queue[n].sizeBytes <= bytesMax && !isGrant(this.queue[n]) && !isGrant(this.queue[0])))) {
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
    // Fixed for every attempt: a re-sent copy is the same (session, seq), which the applier recognizes.
    const firstPendingSeq = this.lowestPending;
    const commands = batch.map((w) => (w.command.session ? w.command : { ...w.command, session: this.sessionOf(w, firstPendingSeq) }));
    let ambiguous: string | null = null;
    const reply = await requestLeader(
      { nc: this.nc, subjects: this.subjects, view: this.view, log: this.log, world: this.world },
      (leader) => this.subjects.propose(leader),
      encodeProposeRequest({ commands }),
      decodeProposeReply,
      batch[0].deadlineMs,
      {
        idempotent: true,
        stopped: () => this.stopped,
        onAmbiguous: (why) => {
          ambiguous = why;
        },
      },
    );
    if ('unknown' in reply || 'timedOut' in reply) {
      const why = 'unknown' in reply ? reply.unknown : reply.timedOut;
      const message = ambiguous
        ? `outcome unknown (the write may have been applied): not acknowledged within ${this.opts.writeTimeoutMs} ms after ${ambiguous}: ${why}`
        : `write not acknowledged within ${this.opts.writeTimeoutMs} ms: ${why}`;
      for (const w of batch) w.resolve({ status: Status.Unavailable, revision: 0, message });
    } else if (reply.status === Status.Ok) {
      if (ambiguous) this.log.info({ sessionId: this.sessionId.toString(16), firstSeq: batch[0].seq, writes: batch.length, index: reply.firstIndex, after: ambiguous }, 're-sent writes committed; asking storage for their outcome');
      for (let i = 0; i < batch.length; i++) {
        const w = batch[i];
        const index = reply.firstIndex + i;
        // A plain write sent once: the commit is the outcome (no extra round trip). A conditional
        // write, or any write re-sent after an unknown outcome (this copy may be a duplicate of an
        // earlier one): ask a storage node what applying it did.
        // An Incr's reply is its new value, a Txn's its TxnResult: only the applying storage node knows them.
        // An auth change (ops 9..12) may be refused at apply: asked too; so may a Set on a lease (lease not found / full).
        // A lease grant or revoke may be refused at apply (the id is live / not live).
        // An Expire applies only to a live key (and under its NX/XX/GT/LT): asked too.
        if (w.command.condition || w.command.op === CommandOp.Incr || w.command.op === CommandOp.Txn || w.command.op === CommandOp.Expire || isAuthOp(w.command.op) || w.command.meta?.leaseId || isLeaseOp(w.command.op) || ambiguous) void this.resolveOutcome(w, index);
        else w.resolve({ status: Status.Ok, revision: index, message: '' });
      }
    } else {
      for (const w of batch) w.resolve({ status: reply.status, revision: 0, message: reply.message });
    }
  }

  /** This gateway's session fields for `w` (a write submitted without a client session). */
  private sessionOf(w: QueuedWrite, firstPendingSeq: number): CommandSession {
    return { sessionId: this.sessionId, seq: w.seq, firstPendingSeq };
  }

  private async resolveOutcome(w: QueuedWrite, index: number): Promise<void> {
    const s = w.command.session ?? this.sessionOf(w, 0);
    const a = await this.outcomes.outcome(index, this.world.clock.nowMs() + (this.opts.readTimeoutMs ?? this.opts.writeTimeoutMs), { sessionId: s.sessionId, seq: s.seq });
    if ('unknown' in a) w.resolve({ status: Status.Unavailable, revision: 0, message: `outcome unknown: the write committed at index ${index} but no storage node reported whether it applied: ${a.unknown}` });
    else if (w.command.op === CommandOp.Incr) w.resolve(counterResult(a, index));
    else if (w.command.op === CommandOp.Txn) w.resolve(txnResult(a, index));
    else if (a.outcome === ApplyOutcome.Applied) w.resolve({ status: Status.Ok, revision: a.revision, message: '' });
    else if (a.leaseRefusal !== undefined) w.resolve({ status: Status.ConditionFailed, revision: a.revision, message: LEASE_REFUSAL_MESSAGES[a.leaseRefusal], leaseRefusal: a.leaseRefusal });
    else w.resolve({ status: Status.ConditionFailed, revision: a.revision, message: 'condition not met' });
  }
}

const isGrant = (w: QueuedWrite): boolean => w.command.op === CommandOp.LeaseGrant;
const isLeaseOp = (op: CommandOp): boolean => op === CommandOp.LeaseGrant || op === CommandOp.LeaseRevoke;

/**
 * A Txn's answer from its outcome: OK with its TxnResult (also when its compares failed:
 * `succeeded` false); CONDITION_FAILED with the refusal when a put's lease does not exist or is
 * full (etcd ErrLeaseNotFound; nothing applied); TOO_LARGE when the storage nodes refused it
 * (nothing applied); an applied txn whose result the nodes no longer hold is an ERROR (never
 * re-applied).
 */
function txnResult(a: OutcomeResult, index: number): WriteResult {
  if (a.outcome === ApplyOutcome.ConditionFailed && a.leaseRefusal !== undefined) return { status: Status.ConditionFailed, revision: a.revision || index, message: `transaction refused: a put's ${LEASE_REFUSAL_MESSAGES[a.leaseRefusal]} (nothing applied)`, leaseRefusal: a.leaseRefusal };
  if (a.outcome === ApplyOutcome.Applied && a.txn !== undefined) return { status: Status.Ok, revision: a.revision, message: '', txn: decodeTxnResult(a.txn) };
  if (a.outcome === ApplyOutcome.Applied) return { status: Status.Error, revision: a.revision, message: `the transaction was applied at revision ${a.revision}, but its result is no longer known (the storage nodes restarted or dropped it since); read the keys` };
  return { status: Status.TooLarge, revision: a.revision || index, message: 'transaction refused: its result exceeds resultBytesMax, it touches more than keysMax keys, or its writes exceed the largest engine record (nothing applied)' };
}

/** An Incr's answer from its outcome: the new value, or the refusal; an applied Incr whose value the nodes no longer hold (recorded before a restart) is an ERROR, not a retryable failure. */
function counterResult(a: { outcome: ApplyOutcome; revision: number; counter?: bigint; refusal?: CounterRefusal }, index: number): WriteResult {
  if (a.outcome === ApplyOutcome.Applied && a.counter !== undefined) return { status: Status.Ok, revision: a.revision, message: '', counter: a.counter };
  if (a.outcome === ApplyOutcome.Applied) return { status: Status.Error, revision: a.revision, message: `the increment was applied at index ${a.revision}, but its result is no longer known (the storage nodes restarted since); read the key` };
  const refusal = a.refusal ?? CounterRefusal.NotInteger;
  return { status: Status.ConditionFailed, revision: a.revision || index, message: COUNTER_REFUSAL_MESSAGES[refusal], refusal };
}
