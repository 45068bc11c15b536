/**
 * Summaries of V8 CPU profiles (`.cpuprofile`, as `node --cpu-prof` writes them; the launcher's
 * `--cpu-prof DIR` gives one per Cairn process): where a process spent its samples, by owner
 * (a Cairn lib or app, an npm package, Node's internals, GC) and by function. Used by
 * `cpu-profile-summary.ts` (docs/benchmarks.md, "Where the time goes").
 *
 * Profile shape (Chrome DevTools protocol `Profiler.Profile`): `nodes[]` (id, callFrame
 * {functionName, url, lineNumber}), `samples[]` (node ids, in time order) and `timeDeltas[]`
 * (µs since the previous sample). A sample's self time is the delta of the NEXT sample, as
 * DevTools counts it.
 */

export interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Self time of one owner or function, µs. */
export interface SelfTime {
  name: string;
  selfUs: number;
}

export interface ProfileSummary {
  /** Wall time the profile covers, µs. */
  wallUs: number;
  /** Samples not in `(idle)`: time on the CPU (JS, GC, native), µs. */
  busyUs: number;
  /** Busy time by owner, most first. */
  owners: SelfTime[];
  /** Busy time by function (`name url:line`), most first, at most `functionsMax`. */
  functions: SelfTime[];
}

/** The owner of a frame: `gc`, `idle`, `program`, `cairn:<lib or app>`, `npm:<package>`, `node`, or `native`. */
export function ownerOf(functionName: string, url: string): string {
  if (functionName === '(garbage collector)') return 'gc';
  if (functionName === '(idle)') return 'idle';
  if (functionName === '(program)') return 'program';
  if (url.startsWith('node:')) return 'node';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1].startsWith('@cairn/') ? `cairn:${pkg[1].slice('@cairn/'.length)}` : `npm:${pkg[1]}`;
  const own = /\/(?:apps|libs|tools)\/([^/]+)\//.exec(url);
  if (own) return `cairn:${own[1]}`;
  return url === '' ? 'native' : 'other';
}

function sorted(m: Map<string, number>, max = Infinity): SelfTime[] {
  return [...m.entries()]
    .map(([name, selfUs]) => ({ name, selfUs }))
    .sort((a, b) => b.selfUs - a.selfUs)
    .slice(0, max);
}

/**
 * Summarises one profile; with `lastUs`, only the samples of its last `lastUs` µs (the measured
 * window of a benchmark that ran last, without the process's start-up), and `wallUs` is then that
 * window. @throws TypeError when `p` has no samples/timeDeltas of equal length.
 */
export function summarize(p: CpuProfile, functionsMax = 20, lastUs = Infinity): ProfileSummary {
  if (!Array.isArray(p.samples) || !Array.isArray(p.timeDeltas) || p.samples.length !== p.timeDeltas.length) {
    throw new TypeError('not a V8 CPU profile: samples and timeDeltas missing or of different lengths');
  }
  const byId = new Map(p.nodes.map((n) => [n.id, n.callFrame]));
  const owners = new Map<string, number>();
  const functions = new Map<string, number>();
  const fromUs = p.endTime - lastUs;
  let busyUs = 0;
  let atUs = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    atUs += p.timeDeltas[i];
    const us = p.timeDeltas[i + 1] ?? 0;
    const f = byId.get(p.samples[i]);
    if (!f || us <= 0 || atUs < fromUs) continue;
    const owner = ownerOf(f.functionName, f.url);
    if (owner === 'idle') continue;
    busyUs += us;
    owners.set(owner, (owners.get(owner) ?? 0) + us);
    const where = f.url ? ` ${f.url.replace(/^.*\/(node_modules|apps|libs|tools)\//, '$1/')}:${f.lineNumber + 1}` : '';
    const fn = `${f.functionName || '(anonymous)'}${where}`;
    functions.set(fn, (functions.get(fn) ?? 0) + us);
  }
  return { wallUs: Math.min(lastUs, p.endTime - p.startTime), busyUs, owners: sorted(owners), functions: sorted(functions, functionsMax) };
}
