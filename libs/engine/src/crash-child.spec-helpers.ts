import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Shared by the engine's crash tests (merge, log hint files, snapshots and installs): the start of
 * a child process's source that loads the engine's TypeScript sources through swc (as Jest does)
 * and arranges to SIGKILL itself at a seeded moment. The child's arguments end with `mode n`:
 * `mode` 'hook' dies at the n-th call of `hook` (pass it as the engine's test hook), 'ticks' dies
 * after n event-loop turns counted from `startTicks()`. Defines `fs`, `engine` (index.ts),
 * `snapshot` (snapshot.ts), `a`, `b` (the arguments before `mode`), `mode`, `n`, `hook`, `startTicks`.
 */
export const ENGINE_CRASH_PRELUDE = `
  const fs = require('node:fs');
  const swc = require(${JSON.stringify(require.resolve('@swc/core'))});
  require.extensions['.ts'] = (m, filename) => m._compile(swc.transformSync(fs.readFileSync(filename, 'utf8'), { filename, jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'commonjs' } }).code, filename);
  const engine = require(${JSON.stringify(path.join(__dirname, 'index.ts'))});
  const snapshot = require(${JSON.stringify(path.join(__dirname, 'snapshot.ts'))});
  const clock = new (require(${JSON.stringify(path.join(__dirname, '../../log/src/testing/index.ts'))}).VirtualClock)(0, true);
  const args = process.argv.slice(1); // node -e: the arguments start at 1
  const n = Number(args.pop());
  const mode = args.pop();
  const [a, b] = args;
  const die = () => process.kill(process.pid, 'SIGKILL');
  let calls = 0;
  const hook = () => { if (mode === 'hook' && ++calls === n) die(); };
  const startTicks = () => { if (mode === 'ticks') { let t = 0; const tick = () => (++t === n ? die() : setImmediate(tick)); setImmediate(tick); } };
`;

/** Runs a child (`ENGINE_CRASH_PRELUDE` + body) with `args`; resolves with how it ended and what it printed. */
export function runCrashChild(code: string, args: string[]): Promise<{ signal: string | null; code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--conditions=@cairn/source', '-e', code, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', reject);
    p.on('exit', (exitCode, signal) => resolve({ code: exitCode, signal, out }));
  });
}

/**
 * A child's source (ENGINE_CRASH_PRELUDE and the body) that opens the store in dir `a` with the
 * virtual clock, no auto merge and `openOptions` (members of an object literal, e.g. the test hook),
 * starts the ticks, awaits `action` (an expression on the open engine `e`), closes it and prints `doneOut`.
 */
export function engineCrashChild(openOptions: string, action: string, doneOut = 'done'): string {
  return `${ENGINE_CRASH_PRELUDE}
    (async () => {
      const e = await engine.BitcaskEngine.open({ dir: a, clock, autoMerge: false, ${openOptions} });
      startTicks();
      await ${action};
      await e.close();
      process.stdout.write(${JSON.stringify(doneOut)});
    })().catch((err) => { console.error(err); process.exit(2); });
  `;
}

/**
 * Copies the store in `dir` to the empty dir `at` (fs.cpSync) and runs `child` (engineCrashChild) on
 * the copy, killed where `seed` says (crashPoint with `hookCalls` and `ticks`).
 */
export async function crashCopy(child: string, dir: string, at: string, seed: number, hookCalls: number, ticks: { from: number; span: number }): Promise<{ mode: 'hook' | 'ticks'; n: number; res: Awaited<ReturnType<typeof runCrashChild>> }> {
  fs.cpSync(dir, at, { recursive: true });
  const { mode, n } = crashPoint(seed, hookCalls, ticks);
  return { mode, n, res: await runCrashChild(child, [at, mode, String(n)]) };
}

/** A fraction in [0, 1) fixed by `seed` (Knuth's multiplicative hash): where a seeded crash run dies. */
export function seedFraction(seed: number): number {
  return ((Math.imul(seed, 2654435761) >>> 0) % 1000) / 1000;
}

/**
 * Where seed `seed` kills the child: odd seeds at hook call 1..`hookCalls`, even seeds after
 * `ticks.from` + up to `ticks.span` event-loop turns.
 */
export function crashPoint(seed: number, hookCalls: number, ticks: { from: number; span: number }): { mode: 'hook' | 'ticks'; n: number } {
  const r = seedFraction(seed);
  return seed % 2 ? { mode: 'hook', n: 1 + Math.floor(r * hookCalls) } : { mode: 'ticks', n: ticks.from + Math.floor(r * ticks.span) };
}

/** Checks how a crash child ended (SIGKILLed, or exited 0 having printed `doneOut`); 'SIGKILL' or 'done'. */
export function crashOutcome(res: { signal: string | null; code: number | null; out: string }, doneOut = 'done'): string {
  expect(res.code === 0 ? res.out : res.signal).toBe(res.code === 0 ? doneOut : 'SIGKILL');
  return res.signal ?? 'done';
}
