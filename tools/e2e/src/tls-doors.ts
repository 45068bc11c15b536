import { makeTestPki, tlsConnected, type TestPki } from '@cairn/messaging/testing';
import type { ClientTlsOptions } from '@cairn/client';
import { ReplyDecoder, type RespValue } from '@cairn/resp';
import { once } from 'node:events';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

/** What a suite's checks read from an HTTP answer (the part of fetch's Response they use). */
export interface DoorResponse {
  status: number;
  /** Response headers, names in lower case. */
  headers: IncomingMessage['headers'];
  text(): Promise<string>;
}

/** The serial number of the certificate a new TLS connection to `port` on 127.0.0.1 is served. */
export async function servedSerial(port: number, ca: Buffer): Promise<string> {
  const socket = await tlsConnected(port, { ca });
  const serial = socket.getPeerCertificate().serialNumber;
  socket.destroy();
  return serial;
}

/**
 * Waits until a new TLS connection to `port` is served a certificate other than serial `before`
 * (a door polls its files every reloadIntervalMs); resolves with the new serial, or `before` at `deadline` (ms since epoch).
 */
export async function rotatedSerial(port: number, ca: Buffer, before: string, deadline: number): Promise<string> {
  let serial = before;
  while (serial === before && Date.now() < deadline) serial = await servedSerial(port, ca);
  return serial;
}

/**
 * How an e2e suite reaches the gateway's three doors: plain TCP, or TLS with a CA made at test
 * time (`tls` true: `configure` gives the gateway a certificate for all three doors, and every
 * socket, client, CLI run and HTTP request of the suite goes through TLS, trusting that CA).
 * Lets a suite (bad-input: CAIRN_BAD_INPUT_TLS=1) run the same attacks and assertions either way.
 */
export class DoorTransport {
  private ca: Buffer | null = null;
  private caFile = '';
  private pki: TestPki | null = null;

  constructor(readonly tls: boolean) {}

  /**
   * With TLS: makes the CA and the gateway's certificate in `dir` and sets `tls` on the config's
   * first gateway (`reloadIntervalMs`: how often its doors check the files; absent: the default).
   */
  configure(config: { gateway: Record<string, unknown> }, dir: string, reloadIntervalMs?: number): void {
    if (!this.tls) return;
    const pki = makeTestPki(dir);
    const server = pki.issue('gateway', 'server');
    this.pki = pki;
    this.ca = pki.ca;
    this.caFile = pki.caFile;
    const gateways = config.gateway.gateways as Record<string, unknown>[];
    gateways[0].tls = { mode: 'tls', certFile: server.certFile, keyFile: server.keyFile, ...(reloadIntervalMs === undefined ? {} : { reloadIntervalMs }) };
  }

  /** The test CA's certificate (PEM); throws in plain TCP. */
  get caCert(): Buffer {
    if (!this.ca) throw new Error('DoorTransport: no CA in plain TCP');
    return this.ca;
  }

  /** Issues a new certificate for the gateway over the files `configure` wrote (a rotation on disk). */
  replaceServerCertificate(): void {
    if (!this.pki) throw new Error('DoorTransport: no certificate in plain TCP');
    this.pki.issue('gateway', 'server');
  }

  /** The event after which a socket from `socket()` carries application bytes. */
  get connectEvent(): 'connect' | 'secureConnect' {
    return this.tls ? 'secureConnect' : 'connect';
  }

  /** A new connection to a door on 127.0.0.1 (not yet connected: wait for `connectEvent`). */
  socket(port: number, allowHalfOpen = false): Socket {
    const raw = netConnect({ port, host: '127.0.0.1', allowHalfOpen });
    if (!this.tls) return raw;
    // Over the TCP socket: the TLS socket takes its allowHalfOpen.
    return tlsConnect({ socket: raw, servername: 'localhost', ca: this.ca ?? undefined });
  }

  /** `tls` for CairnClient / CairnPool (undefined in plain TCP). */
  clientTls(): ClientTlsOptions | undefined {
    return this.tls ? { ca: this.ca ?? undefined, servername: 'localhost' } : undefined;
  }

  /** The `cairn` flags for this transport. */
  cliFlags(): string[] {
    return this.tls ? ['--cacert', this.caFile] : [];
  }

  /** `http://127.0.0.1:port` or `https://…`. */
  url(port: number): string {
    return `${this.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  }

  /** A fetch-like HTTP(S) request on a fresh connection (global fetch cannot be given a CA). */
  fetch(url: string, init: { method?: string; body?: string; headers?: Record<string, string> } = {}): Promise<DoorResponse> {
    return new Promise((resolve, reject) => {
      const body = init.body === undefined ? undefined : Buffer.from(init.body);
      const options = { method: init.method ?? 'GET', agent: false as const, headers: { ...init.headers, ...(body ? { 'content-length': body.length } : {}) }, ...(this.tls ? { ca: this.ca ?? undefined, servername: 'localhost' } : {}) };
      const onResponse = (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.once('error', reject);
        res.once('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: async () => Buffer.concat(chunks).toString() }));
      };
      const req = this.tls ? httpsRequest(url, options, onResponse) : httpRequest(url, options, onResponse);
      req.once('error', reject);
      req.end(body);
    });
  }

  /** A bare RESP client (RespSocketClient's `send` and `socket`) on this transport. */
  async resp(port: number): Promise<{ socket: Socket; send(bytes: Buffer | string, expected: number): Promise<RespValue[]> }> {
    const socket = this.socket(port);
    await once(socket, this.connectEvent);
    const decoder = new ReplyDecoder();
    const replies: RespValue[] = [];
    let waiter: (() => void) | null = null;
    socket.on('data', (chunk: Buffer) => {
      replies.push(...decoder.push(chunk));
      waiter?.();
    });
    socket.once('close', () => waiter?.());
    return {
      socket,
      async send(bytes, expected) {
        const start = replies.length;
        socket.write(bytes);
        while (replies.length < start + expected) {
          if (socket.destroyed) throw new Error(`RESP connection closed after ${replies.length - start} of ${expected} replies`);
          await new Promise<void>((r) => (waiter = r));
        }
        return replies.slice(start, start + expected);
      },
    };
  }
}
