import { ClusterSim, type BugSwitches, type Reached, type SimOptions, type SimResult } from './cluster-sim';

/**
 * The whole-cluster simulation's test suite (docs/reliability.md, "Whole-cluster simulation"),
 * sharded over jest workers: shard `shard` of `shards` runs the seeds s with (s - 1) % shards ===
 * shard. Environment:
 * - CAIRN_SIM_SEEDS: `N` (seeds 1..N, default 500) or `A-B` (seeds A..B);
 * - CAIRN_SIM_SEED=n replays one seed (on shard 1 only): the replay command a failure prints;
 * - CAIRN_SIM_BUG=<switch> puts an old bug back (coalesceRaftMessages, unboundedReadReplies);
 * - CAIRN_SIM_OPTS: JSON SimOptions overriding the seed's shape, e.g. `{"faultyMs":12000,"calmMs":8000}`;
 * - CAIRN_SIM_LOG=1 echoes the processes' warnings; CAIRN_SIM_TIMEOUT_MS bounds each test.
 */
const env = process.env;
const one = env.CAIRN_SIM_SEED ? Number(env.CAIRN_SIM_SEED) : null;
const envBug = env.CAIRN_SIM_BUG as keyof BugSwitches | undefined;
const shape = JSON.parse(env.CAIRN_SIM_OPTS ?? '{}') as Partial<SimOptions>;
/** Seeds of its shard a bug-switch test may run before that bug must have been found. */
const BUG_SEEDS_MAX = 50;
/**
 * A bound on each test (virtual time never waits, but a loaded 2-core box is slow): a hang is a red
 * run, not a stuck one. A shard's 250 seeds take about 90 s of CPU; 5 min was too tight on a box
 * shared with other builds (two fresh-clone runs at load 13-30 timed out while every seed passed).
 */
const TEST_TIMEOUT_MS = Number(env.CAIRN_SIM_TIMEOUT_MS ?? 10 * 60_000);
/** Every fault kind of the mix must occur in a shard of at least this many seeds. */
const COVERAGE_SEEDS_MIN = 100;
/**
 * Least share of a shard's seeds (of at least COVERAGE_SEEDS_MIN) that must reach each compaction
 * path, so a change that stops the simulator reaching one is a red run. Measured on seeds 1–500
 * (docs/reliability.md): compactions ~60 %, replica snapshots ~12–15 %, storage snapshots ~8–12 %.
 */
const REACHED_SHARE_MIN: Record<keyof Reached, number> = { compactions: 0.4, replicaSnapshots: 0.06, storageSnapshots: 0.04 };
const FAULT_KINDS = ['network-weather', 'resp-stops-reading', 'slow-sender', 'idle-client', 'protocol-error-unread', 'partition', 'heal', 'crash', 'restart', 'disk-weather', 'disk-fatal', 'large-values-burst', 'member-add', 'member-add-ok', 'member-remove', 'member-remove-ok', 'wipe-storage-node', 'gateway-crash', 'client-stops-reading'];

/** Seeds A..B from CAIRN_SIM_SEEDS (`N` or `A-B`). @throws Error on any other form. */
function seedRange(): [number, number] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(env.CAIRN_SIM_SEEDS ?? '500');
  if (!m) throw new Error(`CAIRN_SIM_SEEDS must be N or A-B, got ${env.CAIRN_SIM_SEEDS}`);
  return m[2] === undefined ? [1, Number(m[1])] : [Number(m[1]), Number(m[2])];
}

function describeResult(r: SimResult): string {
  return `seed ${r.seed}: ${r.failure ?? 'ok'}; ${r.operations} ops (${r.okOperations} ok), ${r.steps} events, ${r.virtualMs} virtual ms, faults ${JSON.stringify(r.faults)}, net ${JSON.stringify(r.network)}\n  replay: ${r.replay}`;
}

/** Runs `seeds` in order; with `untilFailure`, stops at the first failing seed. */
async function runSeeds(seeds: number[], bugs: BugSwitches, untilFailure = false): Promise<SimResult[]> {
  const out: SimResult[] = [];
  for (const seed of seeds) {
    const r = await new ClusterSim({ ...shape, seed, bugs, logLevelEcho: env.CAIRN_SIM_LOG === '1' }).run();
    out.push(r);
    if (r.failure && !untilFailure) process.stderr.write(`SIMULATION FAILED ${describeResult(r)}\n`);
    if (r.failure && untilFailure) break;
  }
  return out;
}

function sum(results: SimResult[], pick: (r: SimResult) => object): Record<string, number> {
  const total: Record<string, number> = {};
  for (const r of results) for (const [k, v] of Object.entries(pick(r))) total[k] = (total[k] ?? 0) + (v as number);
  return total;
}

/** Per kind of Reached: how many seeds reached it at least once. */
function seedsReaching(results: SimResult[]): Record<keyof Reached, number> {
  const out: Record<keyof Reached, number> = { compactions: 0, replicaSnapshots: 0, storageSnapshots: 0 };
  for (const r of results) for (const k of Object.keys(out) as (keyof Reached)[]) if (r.reached[k] > 0) out[k]++;
  return out;
}

/** TTL keys over the seeds: written, and reads started after their expiry bound (each must have missed). */
function ttlTotals(results: SimResult[]): { writes: number; readsAfterExpiry: number } {
  return { writes: results.reduce((n, r) => n + (r.ttl?.writes ?? 0), 0), readsAfterExpiry: results.reduce((n, r) => n + (r.ttl?.ttlReadsAfterExpiry ?? 0), 0) };
}

function report(shard: string, results: SimResult[], seconds: number): string {
  const events = results.reduce((n, r) => n + r.steps, 0);
  const detail = results.length <= 20 ? `\n${results.map(describeResult).join('\n')}` : '';
  return `sim shard ${shard}: ${results.length} seeds in ${seconds.toFixed(1)} s (${(results.length / seconds).toFixed(2)} seeds/s, ${Math.round(events / Math.max(1, results.length))} events/seed); faults ${JSON.stringify(sum(results, (r) => r.faults))}; disk ${JSON.stringify(sum(results, (r) => r.disk))}; gateway pending bytes peak ${Math.max(0, ...results.map((r) => r.pendingBytesPeak))}; seeds reaching ${JSON.stringify(seedsReaching(results))} (totals ${JSON.stringify(sum(results, (r) => r.reached))}); TTL keys ${JSON.stringify(ttlTotals(results))}${detail}\n`;
}

/** Defines the tests of shard `shard` (0-based) of `shards`. */
export function simSuite(shard: number, shards: number): void {
  const [from, to] = seedRange();
  const mine = (n: number): number[] => {
    const out: number[] = [];
    for (let s = from; s <= to && out.length < n; s++) if ((s - 1) % shards === shard) out.push(s);
    return out;
  };
  const seeds = one !== null ? (shard === 0 ? [one] : []) : mine(Infinity);
  const name = `${shard + 1}/${shards}`;
  const label = one !== null ? `seed ${one}` : `seeds ${from}..${to}, shard ${name} (${seeds.length} seeds)`;

  describe('whole-cluster simulation', () => {
    it(`holds every invariant on ${seeds.length ? label : 'no seed (a replay runs on shard 1)'}`, async () => {
      const started = performance.now();
      const results = await runSeeds(seeds, envBug ? { [envBug]: true } : {});
      process.stdout.write(report(name, results, (performance.now() - started) / 1000));
      expect(results.filter((r) => r.failure).map(describeResult)).toEqual([]);
      const faults = sum(results, (r) => r.faults);
      if (results.length >= COVERAGE_SEEDS_MIN) {
        expect(FAULT_KINDS.filter((k) => !faults[k])).toEqual([]);
        const reached = seedsReaching(results);
        const short = Object.entries(REACHED_SHARE_MIN).filter(([k, min]) => reached[k as keyof Reached] < min * results.length);
        expect(short.map(([k, min]) => `${k}: ${reached[k as keyof Reached]} of ${results.length} seeds, at least ${Math.ceil(min * results.length)} required`)).toEqual([]);
        // The TTL check is not vacuous: on average at least one read per seed started after a key's expiry bound.
        expect(ttlTotals(results).readsAfterExpiry).toBeGreaterThanOrEqual(results.length);
      }
    }, TEST_TIMEOUT_MS);

    // Issue 9's two max_payload bugs, put back by a test switch, must make a seed of this shard fail (with its replay command).
    if (one === null && !envBug) {
      it.each<keyof BugSwitches>(['coalesceRaftMessages', 'unboundedReadReplies'])('finds the %s bug within its seeds', async (bug) => {
        const results = await runSeeds(mine(BUG_SEEDS_MAX), { [bug]: true }, true);
        const failed = results.find((r) => r.failure);
        process.stdout.write(`sim shard ${name} with ${bug}: ${failed ? describeResult(failed) : 'not found'}\n`);
        expect(failed?.failure).toMatch(/over max_payload/);
        expect(failed?.replay).toContain(`CAIRN_SIM_BUG=${bug} CAIRN_SIM_SEED=${failed?.seed}`);
      }, TEST_TIMEOUT_MS);
    }
  });
}
