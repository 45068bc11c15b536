import { ApplyOutcome, decodeOutcomeReply, encodeOutcomeRequest } from '@cairn/protocol';
import type { Logger, Subjects } from '@cairn/messaging';
import type { NatsConnection } from 'nats';
import type { ClusterView } from '../cluster/cluster-view';
import { backoffMs, delay } from './backoff';

/** One outcome request's timeout, ms (the node itself waits at most its readWaitMs for its applied index). */
const OUTCOME_REQUEST_TIMEOUT_MS = 3000;

/** A committed write's outcome as a storage node recorded it, or why none could be learnt. */
export type OutcomeAnswer = { outcome: ApplyOutcome.Applied | ApplyOutcome.ConditionFailed; revision: number } | { unknown: string };

/**
 * Asks storage nodes what applying a committed entry did (docs/protocol.md, "Outcomes"): the
 * result of a conditional write's condition (and, for a re-sent write, whether it was a
 * duplicate). The query goes on `read.<node>` like a read: to a live node that has applied the
 * index when one is known, else to the most advanced one, which waits for it. A node that has not
 * applied it in time, has no record of it (restarted, or evicted from its bounded results table)
 * or fails is skipped for the next node; once every live node said Unknown, or at the deadline,
 * the outcome is unknown.
 */
export class OutcomePath {
  constructor(
    private readonly nc: NatsConnection,
    private readonly subjects: Subjects,
    private readonly view: ClusterView,
    private readonly log: Logger,
  ) {}

  /** `session`: the write's session id and seq, so the node can answer from its session table. */
  async outcome(index: number, deadlineMs: number, session?: { sessionId: bigint; seq: number }): Promise<OutcomeAnswer> {
    const saidUnknown = new Set<string>();
    let why = 'no storage node is alive';
    let avoid: string | null = null;
    for (let attempt = 0; Date.now() < deadlineMs; attempt++) {
      const live = this.view.liveStorageNodes().filter((n) => !saidUnknown.has(n.id));
      if (live.length === 0 && saidUnknown.size > 0) return { unknown: `no storage node has a record of index ${index} (${why})` };
      const candidates = live.length > 1 ? live.filter((n) => n.id !== avoid) : live;
      const node = candidates.find((n) => n.appliedIndex >= index) ?? candidates[0];
      if (node) {
        try {
          const res = await this.nc.request(this.subjects.read(node.id), encodeOutcomeRequest({ queries: [session ? { index, session } : { index }] }), {
            timeout: Math.max(1, Math.min(deadlineMs - Date.now(), OUTCOME_REQUEST_TIMEOUT_MS)),
          });
          const reply = decodeOutcomeReply(res.data);
          this.view.noteApplied(node.id, reply.appliedIndex);
          const r = reply.results[0];
          if (reply.results.length !== 1) throw new Error(`storage node ${node.id} answered ${reply.results.length} outcomes for 1 index`);
          if (r.outcome === ApplyOutcome.Applied || r.outcome === ApplyOutcome.ConditionFailed) return { outcome: r.outcome, revision: r.revision };
          if (r.outcome === ApplyOutcome.Unknown) {
            saidUnknown.add(node.id);
            why = `storage node ${node.id} has no record of it`;
            continue;
          }
          why = `storage node ${node.id} has not applied index ${index} yet`;
          avoid = node.id;
        } catch (e) {
          avoid = node.id;
          this.log.debug({ node: node.id, err: e }, 'outcome request failed; retrying');
          why = `storage node ${node.id}: ${(e as Error).message}`;
        }
      }
      await delay(Math.min(backoffMs(attempt), Math.max(0, deadlineMs - Date.now())));
    }
    return { unknown: why };
  }
}
