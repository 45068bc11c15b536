import { randomBytes } from 'node:crypto';
import { mulberry32 } from '@cairn/raft';

/**
 * Randomness as a process sees it (election timeouts, backoff jitter, session ids). Production
 * passes `systemRandom`; the simulator passes `seededRandom(seed)` so a seed replays a run.
 */
export interface Random {
  /** A float in [0, 1). */
  float(): number;
  /** A uniformly random unsigned 64-bit integer. */
  uint64(): bigint;
}

/** `Math.random` for floats, the OS's CSPRNG for 64-bit ids (a gateway's session id must not collide). */
export const systemRandom: Random = {
  float: () => Math.random(),
  uint64: () => randomBytes(8).readBigUInt64BE(0),
};

/** A deterministic Random (mulberry32, not cryptographic): the same seed gives the same sequence. */
export function seededRandom(seed: number): Random {
  const next = mulberry32(seed >>> 0);
  return {
    float: next,
    uint64: () => (BigInt(Math.floor(next() * 2 ** 32)) << 32n) | BigInt(Math.floor(next() * 2 ** 32)),
  };
}
