import { realClock, type Clock } from './clock';
import { systemRandom, type Random } from './random';

/** Time and randomness, injected together into every component below a process shell. */
export interface World {
  clock: Clock;
  random: Random;
}

/** Real timers and system randomness: what the process shells pass. */
export const realWorld: World = { clock: realClock, random: systemRandom };

/**
 * What a process shell passes as `onFatal` (a failed disk write or fsync, a violated invariant):
 * exit code 70 and SIGTERM, so the process shuts down through its normal hooks and a supervisor
 * restarts it; recovery re-reads what is durable.
 */
export function exitProcessOnFatal(): void {
  process.exitCode = 70;
  process.kill(process.pid, 'SIGTERM');
}
