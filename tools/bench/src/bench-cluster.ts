import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '@cairn/messaging/testing';

/** Shared by the cluster benchmarks (watch-bench, lease-bench): durations, a local cluster's config, CPU of a process, the text report. */

/** `30s`, `500ms`, `2m` or a bare number of seconds → ms. @throws Error on another form. */
export function durationMs(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(s);
  if (!m) throw new Error(`bad duration ${s}`);
  return Number(m[1]) * (m[2] === 'm' ? 60_000 : m[2] === 'ms' ? 1 : 1000);
}

/** CPU seconds (user + system) of a process from /proc (Linux), or NaN. */
export function cpuSeconds(pid: number | null): number {
  if (pid === null) return NaN;
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
  } catch {
    return NaN;
  }
}

/** Writes `<dir>/cairn.json`: 3 consensus replicas, 2 storage nodes, gateway g1 with all three doors on free ports, log level warn, `consensus` settings merged in. */
export async function writeBenchConfig(dir: string, clusterName: string, consensus: Record<string, unknown> = {}): Promise<{ configPath: string; port: number }> {
  const port = await freePort();
  const config = {
    clusterName,
    dataDir: join(dir, 'data'),
    nats: { servers: [`nats://127.0.0.1:${await freePort()}`] },
    consensus: { replicas: [{ id: 'c1' }, { id: 'c2' }, { id: 'c3' }], ...consensus },
    storage: { nodes: [{ id: 's1' }, { id: 's2' }] },
    gateway: { gateways: [{ id: 'g1', host: '127.0.0.1', port, httpPort: await freePort(), respPort: await freePort() }] },
    logLevel: 'warn',
  };
  const configPath = join(dir, 'cairn.json');
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  return { configPath, port };
}

/** One `key: value` line per field (objects as JSON). */
export function formatReport(r: Record<string, unknown>): string {
  return Object.entries(r)
    .map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
    .join('\n') + '\n';
}

/** Reads `--flag value` pairs (`valued[flag](value)`) and bare `--flag`s (`bare[flag]()`) from `argv`. @throws Error on an unknown flag or a missing value. */
export function readFlags(argv: string[], valued: Record<string, (v: string) => void>, bare: Record<string, () => void> = {}): void {
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const set = valued[flag];
    if (set) {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      set(v);
    } else if (bare[flag]) bare[flag]();
    else throw new Error(`unknown flag ${flag}`);
  }
}
