import { fullJitterBackoffMs } from '@cairn/client';
import type { Random } from '@cairn/world';

/** First retry's backoff ceiling towards the cluster, ms: an election or a catching-up node is short. */
export const RETRY_BACKOFF_BASE_MS = 5;
/** Backoff ceiling, ms: a retry is never postponed by more than this. */
export const RETRY_BACKOFF_CAP_MS = 200;

/**
 * The gateway's wait before retry `attempt` (0 = the first retry) towards a leader or a storage
 * node, ms: full jitter (`fullJitterBackoffMs` of @cairn/client, the one backoff of Cairn) from
 * 5 ms doubling to 200 ms, drawn from the injected `random`.
 */
export function retryBackoffMs(attempt: number, random: Random): number {
  return fullJitterBackoffMs(attempt, RETRY_BACKOFF_BASE_MS, RETRY_BACKOFF_CAP_MS, () => random.float());
}
