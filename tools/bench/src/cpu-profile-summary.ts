/**
 * Prints where each profiled Cairn process spent its CPU (docs/benchmarks.md, "Where the time
 * goes"): for every `.cpuprofile` in DIR (the launcher's `--cpu-prof DIR`), busy ms, CPU share of
 * the wall time, busy time by owner, the top functions, and with `--ops N` the CPU µs per
 * operation of the run; with `--last-s S` only each profile's last S seconds (the measured
 * window when the benchmark ended just before the processes stopped: no start-up).
 *
 * Run (after `npx tsc -b tools/bench/tsconfig.build.json`):
 *   node tools/bench/dist/cpu-profile-summary.js DIR [--ops N] [--top 15] [--last-s S] [--json]
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { summarize, type CpuProfile } from './cpu-profile';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

function main(): void {
  const dir = process.argv[2];
  if (!dir || dir.startsWith('--')) {
    process.stderr.write('usage: cpu-profile-summary DIR [--ops N] [--top 15] [--last-s S] [--json]\n');
    process.exit(2);
  }
  const ops = Number(arg('--ops') ?? 0);
  const top = Number(arg('--top') ?? 15);
  const lastS = arg('--last-s');
  const lastUs = lastS === undefined ? Infinity : Number(lastS) * 1e6;
  if (!(lastUs > 0)) {
    process.stderr.write(`--last-s wants seconds > 0, got ${lastS}\n`);
    process.exit(2);
  }
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).sort();
  const out = files.map((file) => {
    const s = summarize(JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as CpuProfile, top, lastUs);
    return { process: file.replace(/\.cpuprofile$/, ''), ...s, cpuUsPerOp: ops > 0 ? Math.round(s.busyUs / ops) : null };
  });
  if (process.argv.includes('--json')) {
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    return;
  }
  const ms = (us: number) => (us / 1000).toFixed(0);
  const pct = (part: number, whole: number) => `${((100 * part) / Math.max(1, whole)).toFixed(1)}%`;
  for (const p of out) {
    process.stdout.write(`\n== ${p.process}: busy ${ms(p.busyUs)} ms of ${ms(p.wallUs)} ms wall (${pct(p.busyUs, p.wallUs)})${p.cpuUsPerOp !== null ? `, ${p.cpuUsPerOp} µs CPU per op` : ''}\n`);
    process.stdout.write(`   owners: ${p.owners.slice(0, 10).map((o) => `${o.name} ${pct(o.selfUs, p.busyUs)}`).join(', ')}\n`);
    for (const f of p.functions) process.stdout.write(`   ${pct(f.selfUs, p.busyUs).padStart(6)}  ${f.name}\n`);
  }
}

main();
