import { INCR_SESSION_REQUEST_BYTES, Opcode, Status, type Response } from '@cairn/protocol';
import { CairnClient, checkCredentials, newSessionId, type ClientCredentials, type ClientTlsOptions } from './client';
import { AbortError, AuthError, ConnectionClosedError, NoGatewayError, errorForResponse } from './errors';
import { KvCommands, positiveInt, toBuffer, type RequestOptions } from './commands';
import { RetryBudget, fullJitterBackoffMs, mayRetry, type RetryWrites } from './retry';
import { ClientSession } from './session';
import { watchBatchLoop, watchLoop, type ClientWatchOptions, type WatchBatch, type WatchConnection, type WatchItem } from './watch';

export interface GatewayAddress {
  host: string;
  port: number;
}

/**
 * `username` / `password` or `token` (ClientCredentials): every connection logs in with them
 * when it opens and when it reconnects, before any request goes out on it.
 */
export interface PoolOptions extends ClientCredentials {
  /** Gateways to spread requests over (at least one). */
  gateways: GatewayAddress[];
  /** Pipelined connections kept open to each gateway; default 1. */
  connectionsPerGateway?: number;
  /** TCP connect timeout, ms; default 5000. */
  connectTimeoutMs?: number;
  /** TLS to every gateway (CairnClient's `tls`); absent: plain TCP. */
  tls?: ClientTlsOptions | boolean;
  /** Default deadline of one call, ms, from the call: every attempt, backoff wait and wait for a live gateway included. Default 16000 (a gateway's longest wait for a write with default settings, docs/protocol.md). */
  requestTimeoutMs?: number;
  /** Timeout of a single attempt, ms (a hung gateway is given up on after this and the request retried elsewhere, when allowed); default = the call's deadline. */
  attemptTimeoutMs?: number;
  /** Per connection, as CairnClient's `inflightMax` (1024) and `waitingMax` (1,000,000). */
  inflightMax?: number;
  waitingMax?: number;
  /** Largest response payload accepted, bytes; default 16 MiB. */
  payloadBytesMax?: number;
  /** Which writes may be sent again (see RetryWrites); default 'safe'. GET/PING/STATUS are always retried on retryable errors. */
  retryWrites?: RetryWrites;
  /** Attempts per call, the first included; default 4. */
  attemptsMax?: number;
  /** Retry backoff, full jitter: uniform in [0, min(backoffMaxMs, backoffBaseMs · 2^retry)); defaults 10 and 1000 ms. */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** Retry budget (RetryBudget): a burst of `retryBudgetTokensMax` retries (20), refilled by `retryBudgetRatio` (0.1) per success. */
  retryBudgetTokensMax?: number;
  retryBudgetRatio?: number;
  /** Background reconnects of a lost connection, full jitter on consecutive failures; defaults 100 and 5000 ms. */
  reconnectBackoffBaseMs?: number;
  reconnectBackoffMaxMs?: number;
  /** Told when a gateway goes down (its last live connection is lost or it cannot be reached) or comes back up. */
  onGatewayStateChange?: (gateway: GatewayAddress, up: boolean, cause?: unknown) => void;
  /** Randomness of the jitter; default Math.random (tests inject a fixed one). */
  random?: () => number;
  /** The pool's session id for INCR (docs/protocol.md "INCR"); default a random 64-bit number. */
  sessionId?: bigint;
}

export interface PoolStats {
  gateways: { host: string; port: number; up: boolean; connections: number; inflight: number; waiting: number }[];
  /** Retries sent since the pool was created. */
  retries: number;
  retryBudgetTokens: number;
}

type Resolved = Required<Omit<PoolOptions, 'onGatewayStateChange' | 'attemptTimeoutMs' | 'tls' | 'sessionId' | keyof ClientCredentials>> & Pick<PoolOptions, 'onGatewayStateChange' | 'attemptTimeoutMs' | 'tls' | 'sessionId' | keyof ClientCredentials>;

interface Gateway {
  addr: GatewayAddress;
  /** One live connection per slot, or null while (re)connecting. */
  slots: (CairnClient | null)[];
  /** Round-robin position among the slots. */
  next: number;
  /** Consecutive failed connects: the reconnect backoff exponent. */
  failures: number;
  up: boolean;
  /** The gateway refused the last connect's credentials (AUTH): the error, until a connect succeeds. */
  authRefusal: AuthError | null;
}

function resolvePoolOptions(o: PoolOptions): Resolved {
  if (!Array.isArray(o.gateways) || o.gateways.length === 0) throw new RangeError('gateways must list at least one gateway');
  const r: Resolved = {
    connectionsPerGateway: 1,
    connectTimeoutMs: 5000,
    requestTimeoutMs: 16_000,
    inflightMax: 1024,
    waitingMax: 1_000_000,
    payloadBytesMax: 16 * 1024 * 1024,
    retryWrites: 'safe',
    attemptsMax: 4,
    backoffBaseMs: 10,
    backoffMaxMs: 1000,
    retryBudgetTokensMax: 20,
    retryBudgetRatio: 0.1,
    reconnectBackoffBaseMs: 100,
    reconnectBackoffMaxMs: 5000,
    random: Math.random,
    ...Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)),
  } as Resolved;
  for (const k of ['connectionsPerGateway', 'requestTimeoutMs', 'attemptsMax'] as const) positiveInt(k, r[k]);
  if (r.attemptTimeoutMs !== undefined) positiveInt('attemptTimeoutMs', r.attemptTimeoutMs);
  checkCredentials(r);
  if (r.retryWrites !== 'never' && r.retryWrites !== 'safe') throw new RangeError(`retryWrites must be 'never' or 'safe', got ${String(r.retryWrites)}`);
  return r;
}

/**
 * Cairn client over several gateways: `connectionsPerGateway` pipelined CairnClient connections to
 * each, requests spread round-robin over the gateways that are up.
 *
 * - **Deadline and abort**: each call has `timeoutMs` (default `requestTimeoutMs`) covering all its
 *   attempts, and an optional `signal`; aborting rejects AbortError and frees the in-flight slot.
 * - **Retries**: a failed attempt is retried (on another gateway when one is up) with full-jitter
 *   exponential backoff, at most `attemptsMax` attempts, within the deadline and the shared retry
 *   budget — for GET/PING/STATUS on any retryable error; for SET/DEL only as `retryWrites` allows
 *   (`'safe'`: only when the frame provably never reached a gateway; see `provablyNotSent`).
 *   A write whose outcome is unknown (UNAVAILABLE reply, timeout or lost connection after the
 *   write) is never re-sent: the caller gets the error and decides (e.g. reads the key back).
 * - **Failover**: a lost connection is replaced in the background (full-jitter backoff on
 *   consecutive failures; with credentials each new connection logs in before it takes any
 *   request); a gateway with no live connection is down and gets no requests. When
 *   every gateway is down, calls wait (within their deadline) for one to come back, then reject
 *   NoGatewayError.
 *
 * Consistency: read-your-writes holds per connection (docs/protocol.md), and the pool spreads
 * requests over connections, so a GET may not see an acknowledged SET sent on another connection.
 * Use a single CairnClient when a reader must see its own writes.
 */
export class CairnPool extends KvCommands {
  private readonly gateways: Gateway[];
  private readonly budget: RetryBudget;
  private readonly timers = new Set<NodeJS.Timeout>();
  private gatewayWaiters: (() => void)[] = [];
  private rr = 0;
  private retries = 0;
  private closed = false;
  protected readonly session: ClientSession;

  private constructor(private readonly opts: Resolved) {
    super();
    this.session = new ClientSession(opts.sessionId ?? newSessionId());
    this.gateways = opts.gateways.map((addr) => ({ addr: { host: addr.host, port: addr.port }, slots: new Array(opts.connectionsPerGateway).fill(null), next: 0, failures: 0, up: false, authRefusal: null }));
    this.budget = new RetryBudget(opts.retryBudgetTokensMax, opts.retryBudgetRatio);
  }

  /**
   * Opens every connection; resolves once the first round of connects settled with at least one
   * live connection (the failed ones keep reconnecting in the background).
   * @throws RangeError on bad options; the first connect error when no gateway could be reached.
   */
  static async connect(options: PoolOptions): Promise<CairnPool> {
    const pool = new CairnPool(resolvePoolOptions(options));
    const attempts = pool.gateways.flatMap((gw) => gw.slots.map((_, i) => pool.connectSlot(gw, i)));
    const errors = (await Promise.all(attempts)).filter((e) => e !== null);
    if (!pool.gateways.some((g) => g.up)) {
      pool.destroy();
      throw errors[0];
    }
    return pool;
  }

  /**
   * Any request with the pool's retry rules. Resolves the raw response of the last attempt when
   * its status is final (OK, NOT_FOUND, BAD_REQUEST, TOO_LARGE, ERROR...); rejects with the typed
   * error of the last attempt when it failed retryably (UnavailableError, NotLeaderError,
   * TimeoutError, ConnectionClosedError...) and no retry was allowed, AbortError, or NoGatewayError.
   */
  async request(opcode: Opcode, key: string | Uint8Array, value: string | Uint8Array, flags = 0, opts: RequestOptions = {}): Promise<Response> {
    const { signal } = opts;
    const deadline = Date.now() + (opts.timeoutMs === undefined ? this.opts.requestTimeoutMs : positiveInt('timeoutMs', opts.timeoutMs));
    const k = toBuffer(key);
    const v = toBuffer(value);
    let avoid: Gateway | null = null;
    for (let attempt = 0; ; ) {
      if (signal?.aborted) throw new AbortError(`request aborted before attempt ${attempt + 1}`, signal.reason);
      if (this.closed) throw new ConnectionClosedError('pool is closed', undefined, false);
      const target = this.pick(avoid);
      if (!target) {
        // Every gateway refuses our credentials: say so now rather than NoGatewayError at the deadline.
        const refusal = this.gateways.every((g) => g.authRefusal !== null) ? this.gateways[0].authRefusal : null;
        if (refusal) throw refusal;
        await this.waitForGateway(deadline, signal); // does not count as an attempt: nothing was sent
        continue;
      }
      attempt++;
      const remainingMs = Math.max(1, Math.min(deadline - Date.now(), this.opts.attemptTimeoutMs ?? Infinity));
      let err: unknown;
      try {
        const res = await target.client.request(opcode, k, v, flags, { timeoutMs: remainingMs, signal });
        if (res.status !== Status.Unavailable && res.status !== Status.NotLeader) {
          this.budget.onSuccess();
          return res;
        }
        err = errorForResponse(res);
      } catch (e) {
        err = e;
      }
      if (attempt >= this.opts.attemptsMax || !mayRetry(opcode, err, this.opts.retryWrites, opcode === Opcode.Incr && v.length === INCR_SESSION_REQUEST_BYTES)) throw err;
      const waitMs = fullJitterBackoffMs(attempt - 1, this.opts.backoffBaseMs, this.opts.backoffMaxMs, this.opts.random);
      if (Date.now() + waitMs >= deadline || !this.budget.trySpend()) throw err;
      this.retries++;
      avoid = target.gw;
      await this.sleep(waitMs, signal);
    }
  }

  /**
   * Watch (docs/watch.md "Client"; etcd clientv3 Watch), as CairnClient's, opened on one of the
   * pool's connections; when its gateway fails (connection lost, SHUTDOWN, UNAVAILABLE) it is
   * re-opened on another gateway that is up from the last revision seen + 1: no gap, no duplicate.
   * @throws as `watchLoop`; NoGatewayError when no gateway comes up within `resumeTimeoutMs`.
   */
  watch(opts: ClientWatchOptions): AsyncGenerator<WatchItem, void, undefined> {
    return watchLoop((previous, deadlineMs, signal) => this.watchConnection(previous, deadlineMs, signal), opts);
  }

  /** The same watch, one item per watch frame (CairnClient.watchBatches; etcd WatchResponse), resumed as `watch`. */
  watchBatches(opts: ClientWatchOptions): AsyncGenerator<WatchBatch, void, undefined> {
    return watchBatchLoop((previous, deadlineMs, signal) => this.watchConnection(previous, deadlineMs, signal), opts);
  }

  /** A connection for a watch: on a gateway that is up, another than `previous`'s when one is. */
  private async watchConnection(previous: WatchConnection | null, deadlineMs: number, signal: AbortSignal | undefined): Promise<CairnClient> {
    const avoid = previous ? (this.gateways.find((g) => g.slots.includes(previous as CairnClient)) ?? null) : null;
    for (;;) {
      if (this.closed) throw new ConnectionClosedError('pool is closed', undefined, false);
      const target = this.pick(avoid);
      if (target) return target.client;
      await this.waitForGateway(deadlineMs, signal);
    }
  }

  /** Stops reconnecting, closes every connection gracefully (in-flight requests settle first). Idempotent. */
  async close(): Promise<void> {
    this.shutDown();
    await Promise.all(this.liveClients().map((c) => c.close()));
  }

  /** Closes every connection at once; pending calls reject ConnectionClosedError. */
  destroy(): void {
    this.shutDown();
    for (const c of this.liveClients()) c.destroy();
  }

  stats(): PoolStats {
    return {
      gateways: this.gateways.map((g) => {
        const live = g.slots.filter((c): c is CairnClient => c !== null).map((c) => c.stats());
        return { host: g.addr.host, port: g.addr.port, up: g.up, connections: live.length, inflight: live.reduce((a, s) => a + s.inflight, 0), waiting: live.reduce((a, s) => a + s.waiting, 0) };
      }),
      retries: this.retries,
      retryBudgetTokens: this.budget.available(),
    };
  }

  private liveClients(): CairnClient[] {
    return this.gateways.flatMap((g) => g.slots.filter((c): c is CairnClient => c !== null));
  }

  private shutDown(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const w of this.gatewayWaiters.splice(0)) w();
  }

  /** The next gateway that is up (round-robin), other than `avoid` when another is up; its next connection. */
  private pick(avoid: Gateway | null): { gw: Gateway; client: CairnClient } | null {
    const n = this.gateways.length;
    let fallback: { gw: Gateway; client: CairnClient } | null = null;
    for (let i = 0; i < n; i++) {
      const gw = this.gateways[(this.rr + i) % n];
      if (!gw.up) continue;
      const client = this.nextConnection(gw);
      if (!client) continue;
      if (gw === avoid && n > 1) {
        fallback ??= { gw, client };
        continue;
      }
      this.rr = (this.rr + i + 1) % n;
      return { gw, client };
    }
    return fallback;
  }

  private nextConnection(gw: Gateway): CairnClient | null {
    for (let i = 0; i < gw.slots.length; i++) {
      const c = gw.slots[(gw.next + i) % gw.slots.length];
      if (c && !c.stats().closed) {
        gw.next = (gw.next + i + 1) % gw.slots.length;
        return c;
      }
    }
    return null;
  }

  /** Connects one slot; on failure schedules a reconnect. Resolves the connect error, or null. */
  private async connectSlot(gw: Gateway, slot: number): Promise<unknown> {
    const o = this.opts;
    try {
      const c = await CairnClient.connect({ host: gw.addr.host, port: gw.addr.port, connectTimeoutMs: o.connectTimeoutMs, requestTimeoutMs: o.requestTimeoutMs, inflightMax: o.inflightMax, waitingMax: o.waitingMax, payloadBytesMax: o.payloadBytesMax, tls: o.tls, username: o.username, password: o.password, token: o.token });
      if (this.closed) {
        c.destroy();
        return null;
      }
      gw.slots[slot] = c;
      gw.failures = 0;
      gw.authRefusal = null;
      this.updateState(gw, undefined);
      void c.whenClosed().then((err) => {
        if (gw.slots[slot] === c) gw.slots[slot] = null;
        this.updateState(gw, err);
        this.scheduleReconnect(gw, slot);
      });
      return null;
    } catch (e) {
      gw.failures++;
      gw.authRefusal = e instanceof AuthError ? e : null;
      this.updateState(gw, e);
      this.scheduleReconnect(gw, slot);
      // Callers waiting for a gateway learn that the credentials are refused.
      if (gw.authRefusal) for (const w of this.gatewayWaiters.splice(0)) w();
      return e;
    }
  }

  private scheduleReconnect(gw: Gateway, slot: number): void {
    if (this.closed) return;
    // After a refused AUTH, never faster than reconnectBackoffMaxMs: each attempt costs the gateway
    // a password check and counts toward its failed-attempt bound for this address.
    const jitterMs = fullJitterBackoffMs(gw.failures, this.opts.reconnectBackoffBaseMs, this.opts.reconnectBackoffMaxMs, this.opts.random);
    const delayMs = gw.authRefusal ? this.opts.reconnectBackoffMaxMs + jitterMs : jitterMs;
    const t = setTimeout(() => {
      this.timers.delete(t);
      void this.connectSlot(gw, slot);
    }, delayMs);
    t.unref(); // reconnecting alone does not keep the process alive
    this.timers.add(t);
  }

  private updateState(gw: Gateway, cause: unknown): void {
    const up = gw.slots.some((c) => c !== null && !c.stats().closed);
    if (up === gw.up) return;
    gw.up = up;
    this.opts.onGatewayStateChange?.({ ...gw.addr }, up, cause);
    if (up) for (const w of this.gatewayWaiters.splice(0)) w();
  }

  /** Waits until some gateway is up. @throws NoGatewayError at the deadline, AbortError on abort. */
  private waitForGateway(deadline: number, signal: AbortSignal | undefined): Promise<void> {
    const what = () => `no gateway of ${this.gateways.map((g) => `${g.addr.host}:${g.addr.port}`).join(', ')} is reachable`;
    return this.wait(deadline - Date.now(), signal, () => new NoGatewayError(`${what()} (nothing was sent)`), this.gatewayWaiters);
  }

  private sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
    return this.wait(ms, signal, null, null);
  }

  /** Resolves after `ms` (or rejects `onTimeout()` then), or when woken through `waiters`; rejects AbortError on abort. */
  private wait(ms: number, signal: AbortSignal | undefined, onTimeout: (() => Error) | null, waiters: (() => void)[] | null): Promise<void> {
    return new Promise<void>((res, rej) => {
      const done = (err: Error | null) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        const i = waiters ? waiters.indexOf(wake) : -1;
        if (i >= 0) waiters!.splice(i, 1);
        if (err) rej(err);
        else res();
      };
      const wake = () => done(null);
      const onAbort = () => done(new AbortError('request aborted while waiting to retry', signal!.reason));
      const timer = setTimeout(() => done(onTimeout ? onTimeout() : null), Math.max(0, ms));
      signal?.addEventListener('abort', onAbort, { once: true });
      waiters?.push(wake);
    });
  }
}
