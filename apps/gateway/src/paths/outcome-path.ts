import { ApplyOutcome, decodeOutcomeReply, encodeOutcomeRequest, type OutcomeResult } from '@cairn/protocol';
import { asTransport, type Subjects } from '@cairn/messaging';
import type { Logger } from '@cairn/logging';
import { realWorld, sleep, type Transport, type World } from '@cairn/world';
import type { NatsConnection } from 'nats';
import type { ClusterView } from '../cluster/cluster-view';
import { retryBackoffMs } from './backoff';

/** One outcome request's timeout, ms (the node itself waits at most its readWaitMs for its applied index). */
const OUTCOME_REQUEST_TIMEOUT_MS = 3000;

/** A committed write's outcome as a storage node recorded it (an Incr's new value or refusal included), or why none could be learnt. */
export type OutcomeAnswer = (OutcomeResult & { outcome: ApplyOutcome.Applied | ApplyOutcome.ConditionFailed }) | { unknown: string };

/**
 * Asks storage nodes what applying a committed entry did (docs/protocol.md, "Outcomes"): the
 * result of a conditional write's condition (and, for a re-sent write, whether it was a
 * duplicate). The query goes on `read.<node>` like a read: to a live node that has applied the
 * index when one is known, else to the most advanced one, which waits for it. A node that has not
 * applied it in time, has no record of it (restarted, or evicted from its bounded results table)
 * or fails is skipped for the next node; once every live node said Unknown, or at the deadline,
 * the outcome is unknown.
 */
/** Queries per OutcomeRequest of the first, batched attempt (≤ 25 bytes each: far under any payload bound the start-up check accepts). */
const QUERIES_PER_REQUEST_MAX = 1024;

type Query = { index: number; session?: { sessionId: bigint; seq: number } };
type Result = OutcomeResult;

/** The answer a known result gives (Applied / ConditionFailed, extras kept), or null when it is not one. */
function known(r: Result | undefined): OutcomeAnswer | null {
  if (!r || (r.outcome !== ApplyOutcome.Applied && r.outcome !== ApplyOutcome.ConditionFailed)) return null;
  return { ...r, outcome: r.outcome };
}

interface Pending {
  query: Query;
  deadlineMs: number;
  resolve(a: OutcomeAnswer): void;
}

export class OutcomePath {
  private batch: Pending[] = [];
  private flushScheduled = false;
  private readonly nc: Transport;

  constructor(
    bus: Transport | NatsConnection,
    private readonly subjects: Subjects,
    private readonly view: ClusterView,
    private readonly log: Logger,
    private readonly world: World = realWorld,
  ) {
    this.nc = asTransport(bus);
  }

  /**
   * `session`: the write's session id and seq, so the node can answer from its session table.
   * Queries made in the same event-loop turn share one request to one node on their first
   * attempt; a query that attempt does not settle goes on alone.
   */
  outcome(index: number, deadlineMs: number, session?: { sessionId: bigint; seq: number }): Promise<OutcomeAnswer> {
    return new Promise((resolve) => {
      this.batch.push({ query: session ? { index, session } : { index }, deadlineMs, resolve });
      if (this.flushScheduled) return;
      this.flushScheduled = true;
      this.world.clock.defer(() => {
        this.flushScheduled = false;
        const all = this.batch;
        this.batch = [];
        for (let i = 0; i < all.length; i += QUERIES_PER_REQUEST_MAX) void this.firstAttempt(all.slice(i, i + QUERIES_PER_REQUEST_MAX));
      });
    });
  }

  private async firstAttempt(batch: Pending[]): Promise<void> {
    const maxIndex = Math.max(...batch.map((p) => p.query.index));
    const live = this.view.liveStorageNodes();
    const node = live.find((n) => n.appliedIndex >= maxIndex) ?? live[0];
    let results: Result[] | null = null;
    if (node) {
      try {
        results = await this.ask(node.id, batch.map((p) => p.query), Math.min(...batch.map((p) => p.deadlineMs)));
      } catch (e) {
        this.log.debug({ node: node.id, err: e }, 'outcome request failed; retrying one by one');
      }
    }
    batch.forEach((p, i) => {
      const r = results?.[i];
      const a = known(r);
      if (a) p.resolve(a);
      // No result (request failed, or left out of a reply at the node's payload bound): on its own.
      else void this.retry(p.query, p.deadlineMs, node && r?.outcome === ApplyOutcome.Unknown ? node.id : null, results && !r ? null : (node?.id ?? null)).then(p.resolve);
    });
  }

  /** One query, node by node, until a node knows the outcome, every live node said Unknown, or the deadline. */
  private async retry(query: Query, deadlineMs: number, saidUnknownFirst: string | null, avoidFirst: string | null): Promise<OutcomeAnswer> {
    const { index } = query;
    const saidUnknown = new Set<string>(saidUnknownFirst ? [saidUnknownFirst] : []);
    let why = saidUnknownFirst ? `storage node ${saidUnknownFirst} has no record of it` : 'no storage node is alive';
    let avoid: string | null = avoidFirst;
    const { clock } = this.world;
    for (let attempt = 0; clock.nowMs() < deadlineMs; attempt++) {
      const live = this.view.liveStorageNodes().filter((n) => !saidUnknown.has(n.id));
      if (live.length === 0 && saidUnknown.size > 0) return { unknown: `no storage node has a record of index ${index} (${why})` };
      const candidates = live.length > 1 ? live.filter((n) => n.id !== avoid) : live;
      const node = candidates.find((n) => n.appliedIndex >= index) ?? candidates[0];
      if (node) {
        try {
          const [r] = await this.ask(node.id, [query], deadlineMs);
          const a = known(r);
          if (a) return a;
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
      await sleep(clock, Math.min(retryBackoffMs(attempt, this.world.random), Math.max(0, deadlineMs - clock.nowMs())));
    }
    return { unknown: why };
  }

  /**
   * One OutcomeRequest to `node`; its results in query order, for a prefix of the queries when the
   * whole reply would not fit the node's payload bound (at least one). @throws on a timeout, no
   * responders or a malformed reply.
   */
  private async ask(node: string, queries: Query[], deadlineMs: number): Promise<Result[]> {
    const res = await this.nc.request(this.subjects.read(node), encodeOutcomeRequest({ queries }), {
      timeoutMs: Math.max(1, Math.min(deadlineMs - this.world.clock.nowMs(), OUTCOME_REQUEST_TIMEOUT_MS)),
    });
    const reply = decodeOutcomeReply(res.data);
    this.view.noteApplied(node, reply.appliedIndex);
    if (reply.results.length > queries.length || reply.results.length === 0) throw new Error(`storage node ${node} answered ${reply.results.length} outcomes for ${queries.length} indexes`);
    return reply.results;
  }
}
