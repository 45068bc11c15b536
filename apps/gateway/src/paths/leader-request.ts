import { Status } from '@cairn/protocol';
import { asTransport, type Subjects } from '@cairn/messaging';
import type { Logger } from '@cairn/logging';
import { isTransportError, realWorld, sleep, type Transport, type World } from '@cairn/world';
import type { NatsConnection } from 'nats';
import type { ClusterView } from '../cluster/cluster-view';
import { retryBackoffMs } from './backoff';

/** One request's timeout towards the leader, ms: a dead leader is detected this fast (then an election). */
const LEADER_REQUEST_TIMEOUT_MS = 2000;
/**
 * What one attempt gets on top of LEADER_REQUEST_TIMEOUT_MS per MiB of its payload, ms. A
 * multi-MiB proposal crosses the bus before the leader can even start on it (and the leader then
 * writes and replicates it): on the loaded 2-core box a 7 MiB proposal took 2.5–5 s to reach its
 * responder, so a flat 2 s timed out a healthy leader, suspected it and re-sent the whole payload
 * (docs/benchmarks.md "Coalesced publishes and own request/reply"). A dead leader is still noticed
 * by the cluster view's heartbeats first for re-sendable requests (`watchLeader`).
 */
export const LEADER_REQUEST_MS_PER_MIB = 1000;

/** One attempt's timeout for a `payloadBytes` request: LEADER_REQUEST_TIMEOUT_MS plus LEADER_REQUEST_MS_PER_MIB per MiB, ms. */
export function leaderAttemptTimeoutMs(payloadBytes: number): number {
  return LEADER_REQUEST_TIMEOUT_MS + Math.floor((payloadBytes * LEADER_REQUEST_MS_PER_MIB) / (1024 * 1024));
}

/** The fields every leader reply carries (ProposeReply, ReadIndexReply). */
export interface LeaderReply {
  status: Status;
  leaderHint: string;
  message: string;
  /** UNAVAILABLE: true when the request definitely had no effect (ProposeReply.retrySafe). */
  retrySafe?: boolean;
}

export interface LeaderRequestDeps {
  /** The bus (a nats.js connection is wrapped by `asTransport`). */
  nc: Transport | NatsConnection;
  subjects: Subjects;
  view: ClusterView;
  log: Logger;
  /** Time and randomness; default the real ones. */
  world?: World;
}

/**
 * Sends `payload` to whichever replica leads, following NOT_LEADER hints and elections and retrying
 * with backoff, until `deadlineMs`.
 *
 * With `idempotent` (ReadIndex) every failure is retried. Without it (proposals), only failures
 * that prove the request had no effect are: NOT_LEADER, UNAVAILABLE with `retrySafe`, and NATS "no
 * responders" (nobody received it). A timeout or an UNAVAILABLE without `retrySafe` may hide an
 * applied write, and re-sending it could apply it twice after another client's write: the caller
 * gets `{ unknown }` and the client decides (docs/protocol.md, UNAVAILABLE). Session writes are
 * deduplicated where they are applied, so the write path sends them as `idempotent` and learns
 * through `onAmbiguous` that an earlier attempt may have been applied (then it asks a storage node
 * for the true outcome instead of trusting the index of the final reply).
 * `requestTimeoutMs` (default 2000 + 1000 per MiB of payload, `leaderAttemptTimeoutMs`) bounds one attempt: a slow operation (a membership change
 * waits for a new replica to catch up) needs longer, at the price of noticing a dead leader later.
 *
 * Failover: an `idempotent` attempt does not wait out its timeout on a leader that is gone. It is
 * abandoned as soon as the cluster view learns that its leader no longer leads (a new leader's
 * heartbeat or a NOT_LEADER hint, the leader's own heartbeat with another role, its heartbeats
 * stopping for STATUS_STALE_MS, or another request to it answering NOT_LEADER or finding no
 * responders; `ClusterView.watchLeader`) and
 * re-sent to the new leader at once, so a leader kill or isolation costs about one election
 * timeout plus one status interval, not `requestTimeoutMs`. The abandoned attempt counts as
 * ambiguous (`onAmbiguous`: the old leader may have appended it and the new one committed it).
 * A non-idempotent attempt is never abandoned: only its reply or its timeout ends it.
 * @returns the first final reply (OK or a definite error), `{ unknown: reason }`, or
 *   `{ timedOut: reason }` when the deadline passed first.
 */
export async function requestLeader<R extends LeaderReply>(
  deps: LeaderRequestDeps,
  subject: (leader: string) => string,
  payload: Uint8Array,
  decode: (data: Uint8Array) => R,
  deadlineMs: number,
  opts: { idempotent: boolean; stopped?: () => boolean; onAmbiguous?: (reason: string) => void; requestTimeoutMs?: number },
): Promise<R | { timedOut: string } | { unknown: string }> {
  let lastError = 'no leader known';
  const bus = asTransport(deps.nc);
  const { clock, random } = deps.world ?? realWorld;
  for (let attempt = 0; ; attempt++) {
    const remainingMs = deadlineMs - clock.nowMs();
    if (remainingMs <= 0 || opts.stopped?.()) return { timedOut: lastError };
    const leader = deps.view.leaderId();
    if (!leader) {
      await deps.view.waitForLeader(Math.min(remainingMs, 100));
      continue;
    }
    const watch = opts.idempotent ? deps.view.watchLeader(leader) : null;
    try {
      const request = bus.request(subject(leader), payload, { timeoutMs: Math.min(remainingMs, opts.requestTimeoutMs ?? leaderAttemptTimeoutMs(payload.length)) });
      // An abandoned request still settles (reply or timeout) later: nobody awaits it then.
      request.catch(() => undefined);
      const res = watch ? await Promise.race([request, watch.moved.then((why) => ({ moved: why }))]) : await request;
      if ('moved' in res) {
        lastError = `leader ${leader} was replaced while the request was in flight: ${res.moved}`;
        opts.onAmbiguous?.(lastError);
        deps.log.debug({ leader, why: res.moved }, 'leader request abandoned: the leader changed; re-sending');
        if (!deps.view.leaderId()) await deps.view.waitForLeader(Math.min(Math.max(0, deadlineMs - clock.nowMs()), 100));
        continue;
      }
      const reply = decode(res.data);
      if (reply.status === Status.NotLeader) {
        lastError = `replica ${leader} is not the leader`;
        if (reply.leaderHint && reply.leaderHint !== leader) {
          deps.view.hintLeader(reply.leaderHint);
          continue;
        }
        deps.view.suspectLeader(leader, `replica ${leader} answered NOT_LEADER`);
        await deps.view.waitForLeader(Math.min(remainingMs, 50));
        continue;
      }
      if (reply.status === Status.Unavailable) {
        if (!opts.idempotent && !reply.retrySafe) return { unknown: reply.message };
        if (!reply.retrySafe) opts.onAmbiguous?.(reply.message);
        lastError = reply.message;
        await sleep(clock, retryBackoffMs(attempt, random));
        continue;
      }
      return reply;
    } catch (e) {
      // Timeout or no responders: the leader is dead or partitioned; an election follows.
      const neverDelivered = isTransportError(e, 'NO_RESPONDERS');
      if (!opts.idempotent && !neverDelivered) {
        deps.view.suspectLeader(leader);
        return { unknown: `leader ${leader} did not answer within the request timeout` };
      }
      lastError = `leader ${leader} did not answer: ${(e as Error).message}`;
      if (!neverDelivered) opts.onAmbiguous?.(lastError);
      deps.log.debug({ leader, err: e }, 'leader request failed; retrying');
      deps.view.suspectLeader(leader, neverDelivered ? `no process subscribes to replica ${leader}'s subject` : undefined);
      await sleep(clock, retryBackoffMs(attempt, random));
    } finally {
      watch?.cancel();
    }
  }
}
