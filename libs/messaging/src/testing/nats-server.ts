import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, join } from 'node:path';
import { CodedError } from '@cairn/protocol';

/** Thrown when no nats-server binary is found; the message says how to install one. */
export class NatsServerMissingError extends CodedError {
  readonly code = 'NATS_SERVER_MISSING';
  constructor() {
    super(
      'nats-server was not found on PATH or in /usr/sbin, /usr/local/bin.\n' +
        'Install it: `sudo apt-get install -y nats-server` (Debian/Ubuntu), `brew install nats-server` (macOS),\n' +
        'or download a release from https://github.com/nats-io/nats-server/releases and put it on PATH.\n' +
        'Or point CAIRN_NATS_SERVER at the binary.',
    );
  }
}

/** Locates the nats-server binary: $CAIRN_NATS_SERVER, then PATH, then the usual system paths. */
export function findNatsServer(): string {
  const candidates = [
    process.env.CAIRN_NATS_SERVER,
    ...(process.env.PATH ?? '').split(delimiter).map((d) => join(d, 'nats-server')),
    '/usr/sbin/nats-server',
    '/usr/local/bin/nats-server',
    '/usr/bin/nats-server',
  ].filter((p): p is string => !!p);
  for (const p of candidates) {
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // try the next one
    }
  }
  throw new NatsServerMissingError();
}

/** A free TCP port on 127.0.0.1 (bound then released), never one this process was already given. */
export async function freePort(): Promise<number> {
  // The kernel may hand a just-closed port out again: two calls of one test (a nats-server port
  // and a gateway port) got the same one, and the second listener failed with EADDRINUSE.
  for (;;) {
    const port = await kernelPort();
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
}

/** Ports freePort returned in this process: never returned twice. */
const handedOut = new Set<number>();

function kernelPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface NatsServerOptions {
  /** 0 or absent: a free port. */
  port?: number;
  /** Directory for the generated config and the server log. */
  dir: string;
  /** Largest message, bytes: must hold a value at valueBytesMax plus framing. Default 8 MiB. */
  maxPayloadBytes?: number;
  /** How long to wait for "Server is ready", ms. Default 10 000. */
  readyTimeoutMs?: number;
  /** Appended to the generated config, e.g. `natsServerAuthorization(…)` (docs/security.md "The internal bus"). */
  extraConfig?: string;
  /** TLS only (nats-server `tls {}`): the server's certificate and key; with `verify`, clients must present a certificate signed by `caFile`. Handshake timeout 5 s (nats-server's default 2 s fails on a loaded box). */
  tls?: { certFile: string; keyFile: string; caFile?: string; verify?: boolean };
}

export interface NatsServerHandle {
  url: string;
  port: number;
  pid: number;
  process: ChildProcess;
  /** SIGTERM, then SIGKILL after 5 s; resolves when the process has exited. */
  stop(): Promise<void>;
}

function tlsBlock(tls: NatsServerOptions['tls']): string {
  if (!tls) return '';
  const ca = tls.caFile ? `, ca_file: ${JSON.stringify(tls.caFile)}` : '';
  return `tls { cert_file: ${JSON.stringify(tls.certFile)}, key_file: ${JSON.stringify(tls.keyFile)}${ca}, verify: ${tls.verify ? 'true' : 'false'}, timeout: 5 }`;
}

/**
 * Starts a private nats-server bound to 127.0.0.1 and resolves once it logs that it is ready
 * (an event, not a sleep). Its log goes to `<dir>/nats-server.log`.
 * @throws NatsServerMissingError when the binary is absent; Error when it exits or is not ready in time.
 */
export async function startNatsServer(opts: NatsServerOptions): Promise<NatsServerHandle> {
  const bin = findNatsServer();
  mkdirSync(opts.dir, { recursive: true });
  const port = opts.port || (await freePort());
  const conf = join(opts.dir, 'nats-server.conf');
  writeFileSync(
    conf,
    [`host: 127.0.0.1`, `port: ${port}`, `max_payload: ${opts.maxPayloadBytes ?? 8 * 1024 * 1024}`, `max_pending: 268435456`, tlsBlock(opts.tls), opts.extraConfig ?? '', ''].join('\n'),
    { mode: 0o600 },
  );
  const logFd = openSync(join(opts.dir, 'nats-server.log'), 'a');
  const child = spawn(bin, ['-c', conf], { stdio: ['ignore', logFd, 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`nats-server did not become ready within ${opts.readyTimeoutMs ?? 10_000} ms: ${seen.slice(-500)}`));
    }, opts.readyTimeoutMs ?? 10_000);
    child.stderr!.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      if (seen.includes('Server is ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`nats-server exited with code ${code} before it was ready: ${seen.slice(-500)}`));
    });
  });
  // Keep draining stderr (the server logs there) so the pipe never fills and blocks it.
  child.stderr!.on('data', () => undefined);
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    pid: child.pid!,
    process: child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(t);
    },
  };
}
