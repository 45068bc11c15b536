/**
 * Prints the hop-by-hop latency of one-client puts and gets from a run's hop traces
 * (docs/benchmarks.md "Where one request's time goes"; the method is in hop-breakdown.ts).
 *
 * Run (after `npx tsc -b tools/bench/tsconfig.build.json`), on the DIR every Cairn process of a
 * cluster started with CAIRN_HOP_TRACE_DIR=DIR wrote at exit:
 *   node tools/bench/dist/hop-breakdown-summary.js DIR [--json]
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { breakdown, parseHops, type HopMark } from './hop-breakdown';

function main(): void {
  const dir = process.argv[2];
  if (!dir || dir.startsWith('--')) {
    process.stderr.write('usage: hop-breakdown-summary DIR [--json]\n');
    process.exit(2);
  }
  const marks: HopMark[] = [];
  for (const f of fs.readdirSync(dir).filter((f) => f.endsWith('.hops.tsv'))) for (const m of parseHops(fs.readFileSync(path.join(dir, f), 'utf8'))) marks.push(m);
  const out = breakdown(marks);
  if (process.argv.includes('--json')) {
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    return;
  }
  for (const b of out) {
    process.stdout.write(`\n== ${b.op}: ${b.windows} requests, p50 ${b.totalP50Us.toFixed(0)} µs from the request's bytes to its reply\n`);
    process.stdout.write(`${'hop (time since the previous hop)'.padEnd(44)} ${'p50 µs'.padStart(8)} ${'p90 µs'.padStart(8)} ${'n'.padStart(6)}\n`);
    for (const r of b.rows) process.stdout.write(`${r.hop.padEnd(44)} ${r.p50Us.toFixed(0).padStart(8)} ${r.p90Us.toFixed(0).padStart(8)} ${String(r.n).padStart(6)}\n`);
    if (b.reads) process.stdout.write(`storage reads: ${b.reads.beside} gets read only beside the ReadIndex round (4 bus hops in sequence), ${b.reads.after} only after it (6), ${b.reads.again} beside and again after it (6)\n`);
    for (const r of b.side) if (r.n > 0) process.stdout.write(`${`(beside) ${r.hop} since the start`.padEnd(44)} ${r.p50Us.toFixed(0).padStart(8)} ${r.p90Us.toFixed(0).padStart(8)} ${String(r.n).padStart(6)}\n`);
  }
}

main();
