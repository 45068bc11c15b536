import { readFileSync, statSync } from 'node:fs';
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { createSecureContext, createServer as createTlsServer, type Server as TlsServer, type TlsOptions } from 'node:tls';
import type { ListenerTlsConfig } from '@cairn/config';
import type { Logger } from '@cairn/logging';
import { realClock, type Clock, type TimerHandle } from '@cairn/world';
import { CodedError } from '@cairn/protocol';

/** The TLS settings of one door in effect: files, mTLS, minimum version, reload interval (config: ListenerTlsConfig with mode "tls"). */
export interface DoorTls {
  certFile: string;
  keyFile: string;
  caFile?: string;
  clientCertRequired: boolean;
  minVersion: 'TLSv1.2' | 'TLSv1.3';
  reloadIntervalMs: number;
}

/** A door left without TLS on an address other than loopback: plain TCP must be chosen explicitly (mode "plain"). */
export class PlainTcpNotChosenError extends CodedError {
  readonly code = 'PLAIN_TCP_NOT_CHOSEN';
  constructor(door: string, host: string) {
    super(`gateway ${door} door on ${host} has no TLS setting: set gateway.gateways[].tls (or respTls/httpTls) with mode "tls", or mode "plain" to serve plain TCP on a non-loopback address (docs/security.md)`);
  }
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

/**
 * The TLS of a door from its member config: `doorTls` (respTls / httpTls) or else the member's
 * `tls`; null for plain TCP.
 * @throws PlainTcpNotChosenError when neither is set and `host` is not a loopback address.
 */
export function doorTlsOf(door: 'TLV' | 'RESP' | 'HTTP', host: string, own: ListenerTlsConfig | undefined, shared: ListenerTlsConfig | undefined): DoorTls | null {
  const t = own ?? shared;
  if (!t) {
    if (LOOPBACK.test(host)) return null;
    throw new PlainTcpNotChosenError(door, host);
  }
  if (t.mode === 'plain') return null;
  if (!t.certFile || !t.keyFile) throw new Error(`DoorTlsHasFiles: the ${door} door's TLS setting names no certFile/keyFile`);
  return { certFile: t.certFile, keyFile: t.keyFile, caFile: t.caFile, clientCertRequired: t.clientCertRequired, minVersion: t.minVersion, reloadIntervalMs: t.reloadIntervalMs };
}

/** The tls.createServer options of a door (a subset of TlsOptions that Nest's HttpsOptions also accepts, plus minVersion and handshakeTimeout). */
export type DoorTlsOptions = Pick<TlsOptions, 'cert' | 'key' | 'ca' | 'minVersion' | 'requestCert' | 'rejectUnauthorized' | 'handshakeTimeout'>;

/**
 * node:tls server options of a door: certificate, key and CA read now from their PEM files,
 * `requestCert`/`rejectUnauthorized` for mTLS, `minVersion`, and the handshake bounded by
 * `handshakeTimeoutMs` (the door's frameDeadlineMs: a handshake is a frame that has started).
 * @throws the read error (ENOENT, EACCES) of a file.
 */
export function tlsServerOptions(t: DoorTls, handshakeTimeoutMs: number): DoorTlsOptions {
  return {
    ...secureContextOptions(t),
    minVersion: t.minVersion,
    requestCert: t.clientCertRequired,
    rejectUnauthorized: t.clientCertRequired,
    handshakeTimeout: handshakeTimeoutMs,
  };
}

function secureContextOptions(t: DoorTls): { cert: Buffer; key: Buffer; ca?: Buffer; minVersion: DoorTls['minVersion'] } {
  return { cert: readFileSync(t.certFile), key: readFileSync(t.keyFile), ...(t.caFile ? { ca: readFileSync(t.caFile) } : {}), minVersion: t.minVersion };
}

/** What identifies the files' current content for the reload poll: size, mtime and inode of each (a missing file: 'missing'). */
function filesSignature(t: DoorTls): string {
  return [t.certFile, t.keyFile, t.caFile]
    .filter((f): f is string => f !== undefined)
    .map((f) => {
      try {
        const s = statSync(f);
        return `${s.ino}:${s.size}:${s.mtimeMs}`;
      } catch {
        return 'missing';
      }
    })
    .join('|');
}

/**
 * Re-reads a door's certificate, key and CA when their files change and gives the new secure
 * context to `server.setSecureContext`: new connections get it, open ones keep theirs. A bounded
 * poll (three stat calls every `reloadIntervalMs`) rather than fs.watch, which misses the symlink
 * swap of a Kubernetes Secret volume and the rename of an editor. A set of files that does not
 * load (half-written, key not matching the certificate) is logged and skipped: the door keeps
 * serving the previous one, and loads again at the files' next change.
 */
export class CertificateReloader {
  private timer: TimerHandle | null = null;
  private seen: string;

  /** `onReload`: told after each attempt (error: the files did not load). `clock` runs the poll (unref'd: it never keeps the process up). */
  constructor(
    private readonly server: TlsServer,
    private readonly t: DoorTls,
    private readonly log: Logger | undefined,
    private readonly onReload?: (error?: Error) => void,
    private readonly clock: Clock = realClock,
  ) {
    this.seen = filesSignature(t);
  }

  start(): void {
    this.timer ??= this.clock.setInterval(() => this.check(), this.t.reloadIntervalMs, { unref: true });
  }

  stop(): void {
    this.clock.clearTimer(this.timer ?? undefined);
    this.timer = null;
  }

  /** One poll: loads the files when their signature changed since the last attempt. */
  check(): void {
    const now = filesSignature(this.t);
    if (now === this.seen) return;
    this.seen = now;
    try {
      const options = secureContextOptions(this.t);
      createSecureContext(options); // throws on a key not matching its certificate, bad PEM
      this.server.setSecureContext(options);
      this.log?.info({ certFile: this.t.certFile }, 'TLS certificate reloaded');
      this.onReload?.();
    } catch (e) {
      this.log?.warn({ certFile: this.t.certFile, err: (e as Error).message }, 'TLS files changed but do not load: still serving the previous certificate');
      this.onReload?.(e as Error);
    }
  }
}

/** A door's listener: plain (net) or TLS (node:tls), with its certificate reloader. */
export interface DoorServer {
  server: Server;
  reloader: CertificateReloader | null;
}

/**
 * Creates a door's listener. Plain: net.createServer, `onSocket` per connection. TLS: tls.createServer,
 * `onSocket` per connection once its handshake succeeded (a tls.TLSSocket: the doors' flow control
 * and limits work on it unchanged). A TLS door holds at most 2 × `connectionsMax` sockets
 * (net.Server.maxConnections), so handshakes in progress are bounded too: beyond, a socket is
 * closed at accept, unanswered (there is no TLS session yet to answer in). Failed handshakes
 * (a plain-TCP client, no or a bad client certificate under mTLS) are logged at debug.
 * @throws the read error of a certificate, key or CA file.
 */
export function createDoorServer(
  o: { door: string; tls: DoorTls | null; connectionsMax: number; handshakeTimeoutMs: number; allowHalfOpen?: boolean; log: Logger; clock?: Clock },
  onSocket: (socket: Socket) => void,
): DoorServer {
  const allowHalfOpen = o.allowHalfOpen ?? false;
  if (!o.tls) return { server: createNetServer({ allowHalfOpen }, onSocket), reloader: null };
  // Half-open only once the handshake is done: a client that sends FIN during the handshake (it
  // does not trust our certificate) must not hold a socket until handshakeTimeoutMs.
  const server = createTlsServer(tlsServerOptions(o.tls, o.handshakeTimeoutMs), (socket) => {
    socket.allowHalfOpen = allowHalfOpen;
    onSocket(socket);
  });
  watchTlsErrors(server, o.door, o.log);
  server.maxConnections = 2 * o.connectionsMax;
  return { server, reloader: new CertificateReloader(server, o.tls, o.log, undefined, o.clock) };
}

/** Logs a TLS door's failed handshakes at debug (a scanner or a plain client must not fill the log). */
export function watchTlsErrors(server: TlsServer, door: string, log: Logger | undefined): void {
  server.on('tlsClientError', (e: Error & { code?: string }, socket: Socket) => log?.debug({ door, remote: socket.remoteAddress, code: e.code, err: e.message }, 'TLS handshake failed'));
}
