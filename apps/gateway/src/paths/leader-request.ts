import { Status } from '@cairn/protocol';
import type { Logger, Subjects } from '@cairn/messaging';
import type { NatsConnection } from 'nats';
import type { ClusterView } from '../cluster/cluster-view';
import { backoffMs, delay } from './backoff';

/** One request's timeout towards the leader, ms: a dead leader is detected this fast (then an election). */
const LEADER_REQUEST_TIMEOUT_MS = 2000;

/** The fields every leader reply carries (ProposeReply, ReadIndexReply). */
export interface LeaderReply {
  status: Status;
  leaderHint: string;
  message: string;
}

export interface LeaderRequestDeps {
  nc: NatsConnection;
  subjects: Subjects;
  view: ClusterView;
  log: Logger;
}

/**
 * Sends `payload` to whichever replica leads, following NOT_LEADER hints and elections and retrying
 * lost requests and UNAVAILABLE answers with backoff, until `deadlineMs`.
 * @returns the first reply that is neither NOT_LEADER nor UNAVAILABLE (OK or a definite error), or
 *   `{ timedOut: reason }` when the deadline passed first.
 */
export async function requestLeader<R extends LeaderReply>(
  deps: LeaderRequestDeps,
  subject: (leader: string) => string,
  payload: Uint8Array,
  decode: (data: Uint8Array) => R,
  deadlineMs: number,
  stopped: () => boolean = () => false,
): Promise<R | { timedOut: string }> {
  let lastError = 'no leader known';
  for (let attempt = 0; ; attempt++) {
    const remainingMs = deadlineMs - Date.now();
    if (remainingMs <= 0 || stopped()) return { timedOut: lastError };
    const leader = deps.view.leaderId();
    if (!leader) {
      await deps.view.waitForLeader(Math.min(remainingMs, 100));
      continue;
    }
    try {
      const res = await deps.nc.request(subject(leader), payload, { timeout: Math.min(remainingMs, LEADER_REQUEST_TIMEOUT_MS) });
      const reply = decode(res.data);
      if (reply.status === Status.NotLeader) {
        lastError = `replica ${leader} is not the leader`;
        if (reply.leaderHint && reply.leaderHint !== leader) {
          deps.view.hintLeader(reply.leaderHint);
          continue;
        }
        deps.view.suspectLeader(leader);
        await deps.view.waitForLeader(Math.min(remainingMs, 50));
        continue;
      }
      if (reply.status === Status.Unavailable) {
        lastError = reply.message;
        await delay(backoffMs(attempt));
        continue;
      }
      return reply;
    } catch (e) {
      // Timeout or no responders: the leader is dead or partitioned; an election follows.
      lastError = `leader ${leader} did not answer: ${(e as Error).message}`;
      deps.log.debug({ leader, err: e }, 'leader request failed; retrying');
      deps.view.suspectLeader(leader);
      await delay(backoffMs(attempt));
    }
  }
}
