import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** A peer's server binary and the Debian package that ships it. */
export interface PeerPackage {
  binary: string;
  aptPackage: string;
}

/** Debian bookworm: etcd-server 3.4.23, redis-server 7.0.15, nats-server 2.9 (JetStream). */
export const PEER_PACKAGES = {
  etcd: { binary: 'etcd', aptPackage: 'etcd-server' },
  redis: { binary: 'redis-server', aptPackage: 'redis-server' },
  nats: { binary: 'nats-server', aptPackage: 'nats-server' },
} as const satisfies Record<string, PeerPackage>;

/** Where a binary is looked for besides PATH (Debian puts nats-server in /usr/sbin, often not on a user's PATH). */
const EXTRA_DIRS = ['/usr/sbin', '/usr/bin', '/usr/local/bin', '/usr/local/sbin'];

/** The first executable `name` on PATH or in the usual system directories, or null. */
export function findBinary(name: string, pathEnv = process.env.PATH ?? ''): string | null {
  for (const dir of [...pathEnv.split(delimiter).filter((d) => d !== ''), ...EXTRA_DIRS]) {
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return null;
}

/** A peer's binary, or why it is not there (the run skips that peer and says so). */
export type InstallOutcome = { path: string; installed: boolean } | { skipped: string };

/** The facts `ensurePeer` decides on (tests inject them). */
export interface InstallEnv {
  find(name: string): string | null;
  isRoot: boolean;
  /** Runs `apt-get args…` (output to the user's terminal); its exit code. */
  aptGet(args: string[]): number;
  log(line: string): void;
}

/**
 * The peer's binary; when missing and `install`, `apt-get install -y <package>` (then
 * `apt-get update` and once more when that fails, as .ci/run does). Never throws: no apt-get,
 * not root, `--no-install` or a failed install skip the peer with a message naming the command to run.
 */
export function ensurePeer(pkg: PeerPackage, install: boolean, env: InstallEnv): InstallOutcome {
  const found = env.find(pkg.binary);
  if (found !== null) return { path: found, installed: false };
  const howTo = `apt-get install -y ${pkg.aptPackage}`;
  if (!install) return { skipped: `${pkg.binary} not found and --no-install given (install it with \`${howTo}\`)` };
  const apt = env.find('apt-get');
  if (apt === null) return { skipped: `${pkg.binary} not found and apt-get is not available on this machine: install ${pkg.aptPackage} (or ${pkg.binary}) by hand` };
  if (!env.isRoot) return { skipped: `${pkg.binary} not found and this process is not root: run \`sudo ${howTo}\`, then the benchmark again` };
  env.log(`peers: ${pkg.binary} not found; ${howTo}`);
  if (env.aptGet(['install', '-y', pkg.aptPackage]) !== 0) {
    env.log('peers: apt-get install failed; apt-get update, then once more');
    if (env.aptGet(['update']) !== 0 || env.aptGet(['install', '-y', pkg.aptPackage]) !== 0) return { skipped: `\`${howTo}\` failed (see its output above)` };
  }
  const path = env.find(pkg.binary);
  return path === null ? { skipped: `${pkg.aptPackage} installed but ${pkg.binary} is still not found` } : { path, installed: true };
}

/** The real machine: PATH lookup, uid 0, apt-get non-interactive with its output on stderr. */
export function systemInstallEnv(log: (line: string) => void): InstallEnv {
  return {
    find: (name) => findBinary(name),
    isRoot: typeof process.getuid === 'function' && process.getuid() === 0,
    aptGet: (args) => spawnSync('apt-get', args, { stdio: ['ignore', 2, 2], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } }).status ?? 1,
    log,
  };
}

/** First line of `binary --version` (e.g. `etcd Version: 3.4.23`), or 'unknown'. */
export function binaryVersion(path: string): string {
  const r = spawnSync(path, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  const line = `${r.stdout ?? ''}`.split('\n').find((l) => l.trim() !== '');
  return line?.trim() ?? 'unknown';
}
