import { AUTH_VALUE_BYTES_MAX, Opcode, ProtocolError, ResponseDecoder, ResponseFlags, Status, VALUE_BYTES_CEILING, WatchFrameKind, decodeHelloReply, decodeWatchFrame, encodeRequest, opcodeName, statusName, type HelloReply, type Response, type WatchFrame } from '@cairn/protocol';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { AbortError, ClientOverloadedError, ConnectionClosedError, ResponseProtocolError, TimeoutError, errorForResponse } from './errors';
import { KvCommands, positiveInt, toBuffer, type RequestOptions } from './commands';
import { ClientSession } from './session';
import { watchBatchLoop, watchLoop, type ClientWatchOptions, type WatchBatch, type WatchItem } from './watch';

export type { GetOptions, GetResult, RequestOptions } from './commands';

/**
 * TLS to a gateway door (docs/security.md); names as node:tls, nats.js and etcd clients use them.
 * PEM contents, not file names (the CLI reads `--cacert`, `--cert`, `--key` files).
 */
export interface ClientTlsOptions {
  /** CA certificates the gateway's certificate must chain to; default Node's bundled root CAs. */
  ca?: string | Buffer | (string | Buffer)[];
  /** Client certificate chain, for a door with mTLS (`clientCertRequired`). */
  cert?: string | Buffer;
  /** Private key of `cert`. */
  key?: string | Buffer;
  /** Name sent as SNI and checked against the gateway's certificate; default `host` (checked against its IP SANs when an address). */
  servername?: string;
  /** false skips the certificate check (tests only: anyone in the path can then read everything); default true. */
  rejectUnauthorized?: boolean;
}

/**
 * How a connection logs in (docs/protocol.md "HELLO and AUTH"): a user name and its password, or a
 * bearer token (HTTP `POST /v1/auth/token`). `token` may be a function, asked at every connect, so
 * a long-lived CairnPool can hand out a fresh token when it reconnects after the last one expired.
 */
export interface ClientCredentials {
  /** User name (etcd clientv3 and node-redis call it `username`); needs `password`. */
  username?: string;
  password?: string;
  /** A bearer token, or a function giving one; excludes `username`. */
  token?: string | (() => string | Promise<string>);
}

export interface ClientOptions extends ClientCredentials {
  host: string;
  port: number;
  /** TLS to the gateway (`true`: with the default CAs); absent: plain TCP. */
  tls?: ClientTlsOptions | boolean;
  /** TCP connect timeout, ms; default 5000. */
  connectTimeoutMs?: number;
  /** Per-request timeout, ms, counted from the call (waiting for an in-flight slot included); default 16000: a gateway answers a write within writeTimeoutMs + readTimeoutMs + 0.2 s (10 + 5 s by default; docs/protocol.md, "The longest wait for a final answer"). */
  requestTimeoutMs?: number;
  /** Pipelined requests in flight on the connection; callers beyond wait. Default 1024. */
  inflightMax?: number;
  /** Callers allowed to wait for an in-flight slot; beyond that calls reject ClientOverloadedError. Default 1,000,000. */
  waitingMax?: number;
  /** Largest response payload accepted, bytes; a larger one is a protocol violation. Default 16 MiB (the value ceiling). */
  payloadBytesMax?: number;
  /** The connection's session id for INCR (docs/protocol.md "INCR"); default a random 64-bit number. */
  sessionId?: bigint;
}

const DEFAULTS = { connectTimeoutMs: 5000, requestTimeoutMs: 16_000, inflightMax: 1024, waitingMax: 1_000_000 };

interface Call {
  opcode: Opcode;
  flags: number;
  key: Buffer;
  value: Buffer;
  resolve(r: Response): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout | null;
  timeoutMs: number;
  /** Set once resolved/rejected; a settled call still in the waiting queue is skipped. */
  settled: boolean;
  requestId: number;
  /** The encoded frame between dispatch and flush; a call settled before the flush is never written. */
  frame: Buffer | null;
  /** Handed to the socket: from here on the gateway may have received (and applied) it. */
  written: boolean;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | null;
  /** A request whose later frames (response flag WATCH) go to a listener: registered at dispatch under the request id. */
  stream: OpenStream | null;
}

/**
 * Receives the server-streamed frames of one request (docs/protocol.md "WATCH": responses with flag
 * WATCH and that request's id, after its OK answer).
 */
export interface StreamListener {
  /**
   * One frame, in arrival order. `decoded`: the payload, decoded by the connection when one frame
   * is for several streams (a SHARED_EVENTS watch frame: decoded once, the same object for each).
   */
  frame(res: Response, decoded?: WatchFrame): void;
  /** The connection closed: no frame follows. */
  closed(err: ConnectionClosedError): void;
}

interface OpenStream {
  listener: StreamListener;
  requestId: number;
}

type ResolvedOptions = Required<Omit<ClientOptions, 'tls' | 'sessionId' | keyof ClientCredentials>> & { tls: ClientTlsOptions | null; sessionId?: bigint; credentials: ClientCredentials | null };

/** A fresh client session id: 64 random bits from the platform's CSPRNG (Web Crypto), so two clients never share one in practice. */
export function newSessionId(): bigint {
  const w = globalThis.crypto.getRandomValues(new Uint32Array(2));
  return (BigInt(w[0]) << 32n) | BigInt(w[1]);
}

/** Options with defaults applied. @throws RangeError on a non-positive or non-integer bound. */
function resolveOptions(o: ClientOptions): ResolvedOptions {
  const payloadBytesMax = o.payloadBytesMax ?? VALUE_BYTES_CEILING;
  if (!Number.isSafeInteger(payloadBytesMax) || payloadBytesMax < 0 || payloadBytesMax > 0xffff_ffff) throw new RangeError(`payloadBytesMax must be a u32, got ${payloadBytesMax}`);
  return {
    host: o.host,
    port: o.port,
    tls: o.tls === true ? {} : o.tls || null,
    connectTimeoutMs: positiveInt('connectTimeoutMs', o.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs),
    requestTimeoutMs: positiveInt('requestTimeoutMs', o.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs),
    inflightMax: positiveInt('inflightMax', o.inflightMax ?? DEFAULTS.inflightMax),
    waitingMax: positiveInt('waitingMax', o.waitingMax ?? DEFAULTS.waitingMax),
    payloadBytesMax,
    sessionId: o.sessionId,
    credentials: checkCredentials(o),
  };
}

/**
 * The credentials of `o`, or null when it has none.
 * @throws RangeError on `username` without `password` (or the reverse), or both `username` and `token`.
 */
export function checkCredentials(o: ClientCredentials): ClientCredentials | null {
  const { username, password, token } = o;
  if (username === undefined && password === undefined && token === undefined) return null;
  if (token !== undefined && (username !== undefined || password !== undefined)) throw new RangeError('give either username and password, or token, not both');
  if (token === undefined && (typeof username !== 'string' || username.length === 0 || typeof password !== 'string')) throw new RangeError('username needs a password (and a password a username)');
  return token !== undefined ? { token } : { username, password };
}

function tlsConnectionOptions(host: string, port: number, t: ClientTlsOptions): ConnectionOptions {
  return { host, port, ca: t.ca, cert: t.cert, key: t.key, servername: t.servername, rejectUnauthorized: t.rejectUnauthorized ?? true };
}

/**
 * Cairn client over one TCP connection speaking protocol v1 (docs/protocol.md).
 *
 * - Pipelined: up to `inflightMax` requests in flight, matched by requestId; responses may arrive
 *   in any order. Further callers wait (FIFO) for a slot, up to `waitingMax`.
 * - Writes are coalesced: frames produced in the same tick leave in one corked (writev) write.
 * - Every request has a timeout (`requestTimeoutMs`, from the call) → TimeoutError; a response
 *   arriving after that is dropped (counted in `stats().lateResponses`).
 * - Losing the connection rejects every pending call with ConnectionClosedError; so does every
 *   later call. A protocol violation by the server closes the connection; the offending request
 *   (when identifiable) rejects ResponseProtocolError.
 *
 * Reads on a connection see that connection's acknowledged writes (read-your-writes); a request
 * pipelined behind an unacknowledged write may not. Not reconnecting: create a new client.
 */
export class CairnClient extends KvCommands {
  private readonly decoder: ResponseDecoder;
  private readonly inflightCalls = new Map<number, Call>();
  /** Requests with server-streamed frames (open watches), by request id; their ids are not reused while open. */
  private readonly streams = new Map<number, OpenStream>();
  /** FIFO of calls waiting for an in-flight slot; `waitingHead` is the next one to dispatch. */
  private waitingCalls: Call[] = [];
  private waitingHead = 0;
  private outgoing: Call[] = [];
  private flushScheduled = false;
  private lastRequestId = 0;
  private closedError: ConnectionClosedError | null = null;
  private closing: Promise<void> | null = null;
  private closeWaiters: (() => void)[] = [];
  private idleWaiters: (() => void)[] = [];
  private lateResponses = 0;
  /** The last answer with requestId 0 (a notice before the gateway closes, e.g. a refused connection), for the close error. */
  private closeNotice = '';
  private readonly closedPromise: Promise<ConnectionClosedError>;
  private resolveClosed!: (e: ConnectionClosedError) => void;
  protected readonly session: ClientSession;

  private constructor(
    private readonly socket: Socket,
    private readonly opts: ResolvedOptions,
  ) {
    super();
    this.session = new ClientSession(opts.sessionId ?? newSessionId());
    this.decoder = new ResponseDecoder({ payloadBytesMax: opts.payloadBytesMax });
    this.closedPromise = new Promise((r) => (this.resolveClosed = r));
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    let socketError: Error | undefined;
    socket.on('error', (e) => (socketError = e));
    socket.on('close', () =>
      this.shutDown(
        new ConnectionClosedError(this.closing ? 'connection closed by the client' : `connection to the server closed${this.closeNotice ? ` after its notice ${this.closeNotice}` : ''}${socketError ? `: ${socketError.message}` : ''}`, socketError),
      ),
    );
  }

  /**
   * Opens the connection (with `tls`: a TLS handshake too, within `connectTimeoutMs`).
   * @throws the socket error of a failed connect (e.g. code ECONNREFUSED, ENOTFOUND) or handshake
   * (e.g. UNABLE_TO_VERIFY_LEAF_SIGNATURE, ERR_TLS_CERT_ALTNAME_INVALID, a TLS alert such as
   * "certificate required"), TimeoutError after `connectTimeoutMs`, RangeError on bad options.
   * With credentials the connection logs in (AUTH) before this resolves, so no request is ever
   * sent ahead of it: UnauthenticatedError when refused (the connection is closed then).
   */
  static async connect(options: ClientOptions): Promise<CairnClient> {
    const opts = resolveOptions(options);
    const client = await CairnClient.open(opts);
    if (!opts.credentials) return client;
    try {
      await client.authenticate(opts.credentials);
    } catch (e) {
      client.destroy();
      throw e;
    }
    return client;
  }

  private static open(opts: ResolvedOptions): Promise<CairnClient> {
    const { connectTimeoutMs } = opts;
    return new Promise((resolve, reject) => {
      const socket = opts.tls ? tlsConnect(tlsConnectionOptions(opts.host, opts.port, opts.tls)) : netConnect({ host: opts.host, port: opts.port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new TimeoutError(`no connection to ${opts.host}:${opts.port} within ${connectTimeoutMs} ms`));
      }, connectTimeoutMs);
      const onError = (e: Error) => {
        clearTimeout(timer);
        reject(e);
      };
      socket.once('error', onError);
      socket.once(opts.tls ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        resolve(new CairnClient(socket, opts));
      });
    });
  }

  /**
   * Sends any request and resolves with the raw response, whatever its status (no error mapping).
   * Rejects only with TimeoutError, ConnectionClosedError, ResponseProtocolError,
   * ClientOverloadedError, AbortError (`opts.signal`), or RangeError from the encoder or a bad
   * `opts.timeoutMs`. Errors that prove the frame was never written carry `requestSent: false`.
   */
  request(opcode: Opcode, key: string | Uint8Array, value: string | Uint8Array, flags = 0, opts: RequestOptions = {}): Promise<Response> {
    return this.send(opcode, key, value, flags, opts, null);
  }

  /**
   * Sends a request whose answer is followed by server-streamed frames (WATCH): `listener` gets
   * every frame with its request id until `endStream`, or `closed` when the connection closes.
   * Resolves the answer and the request id (the watch id); a non-OK answer or a failed request
   * ends the stream at once. Rejects as `request`.
   */
  async openStream(opcode: Opcode, key: string | Uint8Array, value: string | Uint8Array, listener: StreamListener, opts: RequestOptions = {}): Promise<{ response: Response; requestId: number }> {
    const stream: OpenStream = { listener, requestId: 0 };
    try {
      const response = await this.send(opcode, key, value, 0, opts, stream);
      if (response.status !== Status.Ok) this.endStream(stream.requestId, listener);
      return { response, requestId: stream.requestId };
    } catch (e) {
      this.endStream(stream.requestId, listener);
      throw e;
    }
  }

  /** Stops routing frames of `requestId` to `listener` (frames arriving later are counted as late responses). */
  endStream(requestId: number, listener: StreamListener): void {
    if (this.streams.get(requestId)?.listener === listener) this.streams.delete(requestId);
  }

  private send(opcode: Opcode, key: string | Uint8Array, value: string | Uint8Array, flags: number, opts: RequestOptions, stream: OpenStream | null): Promise<Response> {
    if (this.closedError) return Promise.reject(new ConnectionClosedError(this.closedError.message, this.closedError.cause, false));
    if (this.closing) return Promise.reject(new ConnectionClosedError('client is closing', undefined, false));
    const { signal } = opts;
    if (signal?.aborted) return Promise.reject(new AbortError(`${opcodeName(opcode)} aborted before it was sent`, signal.reason));
    return new Promise<Response>((resolve, reject) => {
      const timeoutMs = opts.timeoutMs === undefined ? this.opts.requestTimeoutMs : positiveInt('timeoutMs', opts.timeoutMs);
      const call: Call = { opcode, flags, key: toBuffer(key), value: toBuffer(value), resolve, reject, timer: null, timeoutMs, settled: false, requestId: 0, frame: null, written: false, signal, onAbort: null, stream };
      if (this.inflightCalls.size < this.opts.inflightMax && this.waitingHead === this.waitingCalls.length) {
        this.dispatch(call); // may throw RangeError from the encoder → rejects this promise
      } else if (this.waitingCalls.length - this.waitingHead >= this.opts.waitingMax) {
        throw new ClientOverloadedError(this.opts.waitingMax);
      } else {
        this.waitingCalls.push(call);
      }
      call.timer = setTimeout(() => this.onTimeout(call), timeoutMs);
      if (signal) {
        call.onAbort = () => this.onAbort(call);
        signal.addEventListener('abort', call.onAbort, { once: true });
      }
    });
  }

  /**
   * AUTH (docs/protocol.md "HELLO and AUTH"): logs this connection in as `username` with
   * `password`, or with a bearer `token`; later requests run as that user. Resolves the user name.
   * A failed AUTH leaves the connection's user as it was; the gateway closes the connection at its
   * `failuresPerConnectionMax`-th failure.
   * @throws UnauthenticatedError (wrong credentials, bad or expired token, too many failures from
   * this address), UnavailableError (the gateway does not know the auth state yet), RangeError on
   * bad credentials or a value over AUTH_VALUE_BYTES_MAX, and the errors of `request`.
   */
  async authenticate(credentials: ClientCredentials, opts: RequestOptions = {}): Promise<string> {
    const c = checkCredentials(credentials);
    if (!c) throw new RangeError('authenticate needs username and password, or token');
    const token = typeof c.token === 'function' ? await c.token() : c.token;
    const key = token === undefined ? Buffer.from(c.username!, 'utf8') : Buffer.alloc(0);
    const value = Buffer.from(token ?? c.password!, 'utf8');
    if (value.length === 0 || value.length > AUTH_VALUE_BYTES_MAX) throw new RangeError(`a password or token is 1..${AUTH_VALUE_BYTES_MAX} bytes, got ${value.length}`);
    const res = await this.request(Opcode.Auth, key, value, 0, opts);
    if (res.status !== Status.Ok) throw errorForResponse(res);
    return res.payload.toString('utf8');
  }

  /** HELLO: the gateway's protocol version, whether auth is enabled, and the user this connection is (null before AUTH). */
  async hello(opts: RequestOptions = {}): Promise<HelloReply> {
    const res = await this.request(Opcode.Hello, '', '', 0, opts);
    if (res.status !== Status.Ok) throw errorForResponse(res);
    try {
      return decodeHelloReply(res.payload);
    } catch (e) {
      throw new ResponseProtocolError(`HELLO reply: ${(e as Error).message}`, e);
    }
  }

  /**
   * Watch (docs/watch.md "Client"; etcd clientv3 Watch): `for await (const ev of client.watch({ prefix: 'app/' }))`.
   * Events in revision order; many watches share this connection. A watch cancelled UNAVAILABLE
   * is re-opened on it from the last revision seen + 1 (no gap, no duplicate); when the connection
   * closes (SHUTDOWN included) the loop throws ConnectionClosedError: CairnPool resumes on another
   * gateway instead. @throws as `watchLoop` (WatchCompactedError, WatchSlowError, AbortError...).
   */
  watch(opts: ClientWatchOptions): AsyncGenerator<WatchItem, void, undefined> {
    return watchLoop(this.watchConnector, opts);
  }

  /**
   * The same watch, one item per watch frame (etcd clientv3 WatchResponse): `for await (const b of
   * client.watchBatches({ prefix: 'app/' })) for (const ev of b.events) …`. One promise per frame,
   * not per event; the events of a SHARED_EVENTS frame are decoded once and the same array is
   * handed to every watch it names (read-only). Same resumption and errors as `watch`.
   */
  watchBatches(opts: ClientWatchOptions): AsyncGenerator<WatchBatch, void, undefined> {
    return watchBatchLoop(this.watchConnector, opts);
  }

  /** This connection while it is open: a watch resumes on it, or ends with its ConnectionClosedError. */
  private readonly watchConnector = async (): Promise<CairnClient> => {
    if (this.closedError) throw new ConnectionClosedError(this.closedError.message, this.closedError.cause, false);
    if (this.closing) throw new ConnectionClosedError('client is closing', undefined, false);
    return this;
  };

  /** Resolves (never rejects) once the connection is closed, for any reason, with the error pending calls got. */
  whenClosed(): Promise<ConnectionClosedError> {
    return this.closedPromise;
  }

  /**
   * Stops accepting requests, waits for the in-flight and waiting ones to settle (each within its
   * timeout), then closes the connection. Idempotent.
   */
  close(): Promise<void> {
    if (this.closedError) return Promise.resolve();
    this.closing ??= (async () => {
      if (this.pendingCount() > 0) await new Promise<void>((r) => this.idleWaiters.push(r));
      if (this.closedError) return;
      await new Promise<void>((r) => {
        this.closeWaiters.push(r);
        this.socket.end();
      });
    })();
    return this.closing;
  }

  /** Closes the connection at once; pending calls reject ConnectionClosedError. */
  destroy(): void {
    this.socket.destroy();
  }

  /** Counters for diagnostics: calls in flight / waiting for a slot, responses that arrived after their request timed out. */
  stats(): { inflight: number; waiting: number; lateResponses: number; closed: boolean } {
    return { inflight: this.inflightCalls.size, waiting: this.waitingCalls.length - this.waitingHead, lateResponses: this.lateResponses, closed: this.closedError !== null };
  }

  private pendingCount(): number {
    return this.inflightCalls.size + this.waitingCalls.length - this.waitingHead;
  }

  private dispatch(call: Call): void {
    let id = this.lastRequestId;
    // Id 0 is never used: the gateway answers with requestId 0 what belongs to no request (docs/protocol.md, "Request ids").
    do id = (id + 1) >>> 0;
    while (id === 0 || this.inflightCalls.has(id) || this.streams.has(id));
    this.lastRequestId = id;
    if (call.stream) {
      call.stream.requestId = id;
      this.streams.set(id, call.stream);
    }
    call.frame = encodeRequest({ opcode: call.opcode, flags: call.flags, requestId: id, key: call.key, value: call.value });
    this.outgoing.push(call);
    call.requestId = id;
    this.inflightCalls.set(id, call);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(() => this.flush());
    }
  }

  /** One corked write (writev) for every frame produced this tick; calls settled meanwhile (timeout, abort) are not sent. */
  private flush(): void {
    this.flushScheduled = false;
    const calls = this.outgoing;
    this.outgoing = [];
    if (this.closedError || calls.length === 0) return;
    this.socket.cork();
    for (const c of calls) {
      if (!c.settled) {
        this.socket.write(c.frame!);
        c.written = true;
      }
      c.frame = null;
    }
    this.socket.uncork();
  }

  /** Moves waiting calls into free in-flight slots, in call order. */
  private pump(): void {
    while (this.inflightCalls.size < this.opts.inflightMax && this.waitingHead < this.waitingCalls.length) {
      const call = this.waitingCalls[this.waitingHead++];
      if (call.settled) continue;
      try {
        this.dispatch(call);
      } catch (e) {
        this.settle(call, null, e as Error);
      }
    }
    if (this.waitingHead === this.waitingCalls.length) {
      this.waitingCalls = [];
      this.waitingHead = 0;
    } else if (this.waitingHead > 1024 && this.waitingHead * 2 > this.waitingCalls.length) {
      this.waitingCalls = this.waitingCalls.slice(this.waitingHead);
      this.waitingHead = 0;
    }
    if (this.pendingCount() === 0 && this.idleWaiters.length) for (const w of this.idleWaiters.splice(0)) w();
  }

  private settle(call: Call, res: Response | null, err: Error | null): void {
    if (call.settled) return;
    call.settled = true;
    if (call.timer) clearTimeout(call.timer);
    if (call.onAbort) call.signal!.removeEventListener('abort', call.onAbort);
    if (err) call.reject(err);
    else call.resolve(res!);
  }

  private onTimeout(call: Call): void {
    if (call.settled) return;
    this.release(call);
    this.settle(call, null, new TimeoutError(`no response to ${opcodeName(call.opcode)} (request ${call.written ? call.requestId : 'not sent'}) within ${call.timeoutMs} ms`, call.written));
    this.pump();
  }

  private onAbort(call: Call): void {
    if (call.settled) return;
    this.release(call);
    this.settle(call, null, new AbortError(`${opcodeName(call.opcode)} aborted ${call.written ? 'after it was sent (it may still be applied)' : 'before it was sent'}`, call.signal!.reason));
    this.pump();
  }

  /** An in-flight call gives up its slot early; the server may still answer it (dropped as late). */
  private release(call: Call): void {
    if (this.inflightCalls.get(call.requestId) === call) this.inflightCalls.delete(call.requestId);
  }

  private onData(chunk: Buffer): void {
    try {
      this.decoder.pushTo(chunk, (res) => this.onResponse(res));
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      const call = e.requestId === undefined ? undefined : this.inflightCalls.get(e.requestId);
      if (call) {
        this.inflightCalls.delete(e.requestId!);
        this.settle(call, null, new ResponseProtocolError(`response to request ${e.requestId}: ${e.message}`, e));
      }
      this.shutDown(new ConnectionClosedError(`connection closed: the server broke the protocol: ${e.message}`, e));
      this.socket.destroy();
    }
  }

  private onResponse(res: Response): void {
    if (res.flags & ResponseFlags.Watch) {
      if (res.payload[0] === WatchFrameKind.SharedEvents) return this.onSharedWatchFrame(res);
      const stream = this.streams.get(res.requestId);
      if (stream) stream.listener.frame(res);
      else this.lateResponses++;
      return;
    }
    const call = this.inflightCalls.get(res.requestId);
    if (!call) {
      if (res.requestId === 0) this.closeNotice = `${statusName(res.status)} "${res.payload.toString('utf8')}"`;
      else this.lateResponses++;
      return;
    }
    this.inflightCalls.delete(res.requestId);
    this.settle(call, res, null);
    this.pump();
  }

  /**
   * A SHARED_EVENTS frame (docs/protocol.md "WATCH"): decoded once, handed to the stream of every
   * watch id it names. @throws ProtocolError on a malformed frame (the connection closes: onData)
   */
  private onSharedWatchFrame(res: Response): void {
    const f = decodeWatchFrame(res.payload);
    if (f.kind !== WatchFrameKind.SharedEvents) throw new ProtocolError('unreachable: SHARED_EVENTS kind decoded as another');
    for (const id of f.watchIds) {
      const stream = this.streams.get(id);
      if (stream) stream.listener.frame(res, f);
      else this.lateResponses++;
    }
  }

  /** Rejects everything pending with `err` and refuses later calls. */
  private shutDown(err: ConnectionClosedError): void {
    if (!this.closedError) {
      this.closedError = err;
      const calls = [...this.inflightCalls.values(), ...this.waitingCalls.slice(this.waitingHead)];
      this.inflightCalls.clear();
      this.waitingCalls = [];
      this.waitingHead = 0;
      this.outgoing = [];
      for (const c of calls) this.settle(c, null, new ConnectionClosedError(err.message, err.cause, c.written));
      const streams = [...this.streams.values()];
      this.streams.clear();
      for (const s of streams) s.listener.closed(err);
      for (const w of this.idleWaiters.splice(0)) w();
      this.resolveClosed(err);
    }
    if (this.socket.destroyed) for (const w of this.closeWaiters.splice(0)) w();
  }
}
