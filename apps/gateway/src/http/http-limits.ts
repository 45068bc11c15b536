import { Status, statusName } from '@cairn/protocol';
import type { NextFunction, Request, Response } from 'express';
import type { EventEmitter } from 'node:events';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Server as TlsServer } from 'node:tls';
import { realClock, type Clock, type TimerHandle } from '@cairn/world';
import { destroyWithin } from '../server/close-deadline';
import type { ByteBudget, ReadReservation } from '../server/flow';
import { sendError } from './errors';
import { KV_PREFIX, isTxnUrl } from './kv-key';

/** Bounds of the HTTP door (gateway config; docs/http.md, "Limits"). */
export interface HttpLimits {
  /** Open connections; one more gets its first request answered 503 (`Connection: close`) and is closed. */
  connectionsMax: number;
  /** Bytes of a request's headers (Node's maxHeaderSize): beyond, Node answers 431 and closes. */
  headerBytesMax: number;
  /** Headers, and the whole request, must arrive within this, ms (Node answers 408 and closes). */
  frameDeadlineMs: number;
  /** Keep-alive connections idle this long are closed, ms. */
  idleTimeoutMs: number;
  /** A connection over the cap or answered 413 from its headers is destroyed at the latest after this, ms. */
  closeTimeoutMs: number;
  /** Requests of one connection in flight (pipelined, not yet answered; `gateway.httpInflightPerConnectionMax`); one more is answered 503 without being run. */
  inflightPerConnectionMax: number;
  /** Response bytes a connection has not read (socket.writableLength); above it while requests are pipelined behind, the connection is closed. */
  connectionReplyBytesMax: number;
}

/** The HttpLimits of a gateway config. */
export function httpLimits(g: {
  connectionsMax: number;
  httpHeaderBytesMax: number;
  frameDeadlineMs: number;
  idleTimeoutMs: number;
  closeTimeoutMs: number;
  httpInflightPerConnectionMax: number;
  connectionReplyBytesMax: number;
}): HttpLimits {
  return {
    connectionsMax: g.connectionsMax,
    headerBytesMax: g.httpHeaderBytesMax,
    frameDeadlineMs: g.frameDeadlineMs,
    idleTimeoutMs: g.idleTimeoutMs,
    closeTimeoutMs: g.closeTimeoutMs,
    inflightPerConnectionMax: g.httpInflightPerConnectionMax,
    connectionReplyBytesMax: g.connectionReplyBytesMax,
  };
}

/** Largest JSON body of `POST /v1/cluster/members`, bytes (`{"id":"c4","kind":"replica"}` is 28). */
export const MEMBERS_BODY_BYTES_MAX = 4096;
/** A `/v1/auth/...` JSON body, bytes at most (a user with its roles, or up to 64 short permissions; docs/security.md). */
export const AUTH_BODY_BYTES_MAX = 64 * 1024;

const overCap = new WeakSet<Socket>();

/** What applyHttpLimits uses of Node's HTTP(S) server. */
export type HttpLimitsServer = Pick<EventEmitter, 'on' | 'prependListener' | 'emit'> & Pick<Server, 'headersTimeout' | 'requestTimeout' | 'keepAliveTimeout'>;

/**
 * Applies the limits to the Node server under the Nest app: request targets in origin form
 * (toOriginForm), header size, header and request deadlines, keep-alive idle timeout, the connection cap (counted here; `count()` for metrics),
 * and `Expect: 100-continue` decided by our middleware (`bodyLimitMiddleware`) instead of Node's
 * automatic `100 Continue`, so an oversized body is refused before the client sends it. Our
 * deadlines (request deadline, close timeouts) run on `clock` (Node's timers in the process; a
 * virtual clock in tests).
 */
export function applyHttpLimits(server: HttpLimitsServer, limits: HttpLimits, clock: Clock = realClock): { count: () => number } {
  let open = 0;
  // Read by Node for each new connection's parser (http.Server option of the same name).
  (server as HttpLimitsServer & { maxHeaderSize?: number }).maxHeaderSize = limits.headerBytesMax;
  server.headersTimeout = limits.frameDeadlineMs;
  server.requestTimeout = limits.frameDeadlineMs;
  server.keepAliveTimeout = Math.min(limits.idleTimeoutMs, 2 ** 31 - 1);
  // Over HTTPS, the request's socket (req.socket) is the TLSSocket of a completed handshake.
  server.on(server instanceof TlsServer ? 'secureConnection' : 'connection', (socket: Socket) => {
    open++;
    socket.once('close', () => open--);
    requestDeadline(socket, limits, clock);
    if (open > limits.connectionsMax) {
      overCap.add(socket);
      destroyWithin(socket, limits.closeTimeoutMs, clock);
    }
  });
  server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
    toOriginForm(req);
    // Headers are in: the deadline now waits for the body (fully read: 'end'), or the answer.
    const clear = deadlines.get(req.socket);
    if (clear) {
      req.once('end', clear);
      res.once('finish', clear);
    }
  });
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => server.emit('request', req, res));
  return { count: () => open };
}

const deadlines = new WeakMap<Socket, () => void>();
const REQUEST_TIMEOUT = Buffer.from('HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');

/**
 * The request deadline, ours because Node checks `requestTimeout` only every 30 s: from the first
 * byte of a request, its headers and body must arrive within `frameDeadlineMs`; otherwise 408,
 * `Connection: close`, and the socket is destroyed within `closeTimeoutMs`. Between requests
 * (keep-alive) only the idle timeout applies.
 */
function requestDeadline(socket: Socket, limits: HttpLimits, clock: Clock): void {
  let timer: TimerHandle | null = null;
  const clear = () => {
    if (timer) clock.clearTimer(timer);
    timer = null;
  };
  deadlines.set(socket, clear);
  // Before Node's parser sees the bytes, so a request completed by this chunk clears it after.
  socket.prependListener('data', () => {
    timer ??= clock.setTimeout(() => {
      destroyWithin(socket, limits.closeTimeoutMs, clock);
      socket.end(REQUEST_TIMEOUT, () => socket.destroy());
    }, limits.frameDeadlineMs);
  });
  socket.once('close', clear);
}

const inflight = new WeakMap<Socket, number>();
/** Refused (503) answers a connection may have waiting unsent, per request it may have in flight. */
const REFUSED_PER_INFLIGHT = 4;
/** Per socket: requests answered 503 whose answer is not yet handed to the socket. */
const refused = new WeakMap<Socket, number>();
/** Per socket: the releases of its requests in flight (all run when the socket closes). */
const releases = new WeakMap<Socket, Set<() => void>>();

/**
 * Bounds pipelined HTTP/1.1 requests (docs/http.md, "Limits"). Node's HTTP server parses and
 * dispatches every request a client pipelines, and HTTP/1.1 answers strictly in order, so the
 * gateway can neither stop reading one request nor answer a later one first. Hence, at a
 * request's arrival (first middleware, before any read or write starts):
 * - the connection already has more than `connectionReplyBytesMax` of responses it has not read
 *   (socket.writableLength) and sends yet another request, or a response is handed to the socket
 *   over that bound while more requests of it are in flight: it is closed at once (destroyed, as
 *   Redis's client-output-buffer-limit does), which frees everything it held;
 * - `inflightPerConnectionMax` requests of the connection are in flight, or (a /v1/kv request) the
 *   gateway holds `pendingBytesMax` (ByteBudget over): answered 503 UNAVAILABLE at once, unrun;
 *   once 4 × `inflightPerConnectionMax` such answers wait unsent behind the ones in flight, the next
 *   request closes the connection (destroyed): a client pipelining that far ahead is not reading;
 * - otherwise it runs, reserving in the gateway-wide ByteBudget its body (Content-Length) plus,
 *   for a GET, the size its answer is expected to have (ByteBudget.readEstimate), released when
 *   its response is handed to the socket or the connection closes. A /v1/kv GET's reservation is
 *   its read's ReadReservation (`res.locals.readReservation`, read flow control): a larger value
 *   grows it before it is fetched.
 */
export function pipelineLimitMiddleware(limits: HttpLimits, budget: ByteBudget | undefined) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const socket = req.socket;
    const n = inflight.get(socket) ?? 0;
    // A request parsed from input read before the socket died: nobody can get its answer, and its
    // socket's 'close' may have been emitted already, which would never release a reservation.
    if (socket.destroyed) return;
    if (socket.writableLength > limits.connectionReplyBytesMax) {
      socket.destroy();
      return;
    }
    // Operations routes (/metrics, /healthz, /readyz, members) stay answerable when the KV load is over budget.
    const kv = req.url.startsWith(KV_PREFIX) || isTxnUrl(req.url);
    if (n >= limits.inflightPerConnectionMax || (kv && budget?.over())) {
      // Node parses a whole TCP chunk of pipelined requests at once (~1,600 short GETs in 64 KiB,
      // ~15 KB of heap each while their answers wait in order): past this many refusals not yet
      // answered, the client is not reading them either, so the connection goes.
      const r = refused.get(socket) ?? 0;
      if (r >= REFUSED_PER_INFLIGHT * limits.inflightPerConnectionMax) {
        socket.destroy();
        return;
      }
      refused.set(socket, r + 1);
      const unrefuse = () => refused.set(socket, (refused.get(socket) ?? 1) - 1);
      res.once('finish', unrefuse);
      const why = n >= limits.inflightPerConnectionMax ? `${n} requests of this connection in flight (httpInflightPerConnectionMax)` : 'the gateway holds pendingBytesMax of unanswered requests and unread replies';
      return sendError(res, 503, { error: statusName(Status.Unavailable), message: `overloaded: ${why}; read the answers, then retry` });
    }
    const length = Number(req.headers['content-length'] ?? 0);
    const valueBytes = req.method === 'GET' && budget ? budget.readEstimate() : 0;
    let reserved = (Number.isFinite(length) && length > 0 ? length : 0) + valueBytes;
    inflight.set(socket, n + 1);
    budget?.take(reserved);
    let done = false;
    if (kv && req.method === 'GET' && budget) {
      // Read flow control (docs/protocol.md): the read asks the storage node for no more than this;
      // a larger value grows it (taken from the budget, released with the rest).
      let bytes = valueBytes;
      const reservation: ReadReservation = {
        budget,
        get bytes() {
          return bytes;
        },
        grow(more: number) {
          bytes += more;
          if (done) return;
          reserved += more;
          budget.take(more);
        },
        cancelled: () => socket.destroyed,
      };
      res.locals.readReservation = reservation;
    }
    const release = () => {
      if (done) return;
      done = true;
      releases.get(socket)?.delete(release);
      const left = (inflight.get(socket) ?? 1) - 1;
      inflight.set(socket, left);
      budget?.give(reserved);
      // Handed to the socket, this response joins what the client has not read; with more
      // requests still in flight behind it, a client over the bound is not reading: close it.
      if (left > 0 && socket.writableLength > limits.connectionReplyBytesMax) socket.destroy();
    };
    res.once('finish', release);
    res.once('close', release);
    // A response queued behind an unfinished one emits neither when the socket dies: release with it.
    let held = releases.get(socket);
    if (!held) {
      const set = new Set<() => void>();
      releases.set(socket, (held = set));
      socket.once('close', () => [...set].forEach((r) => r()));
    }
    held.add(release);
    next();
  };
}

/**
 * Largest JSON body of `POST /v1/txn`, bytes: 2 × valueBytesMax. The txn it encodes is held to
 * valueBytesMax as on the TLV door (KvSession.txn); its JSON is larger (base64 is 4/3 of the
 * bytes, plus field names and quotes).
 */
export function txnBodyBytesMax(valueBytesMax: number): number {
  return 2 * valueBytesMax;
}

/** What a route accepts as a body, bytes; null: no bound here (no body parser reads it). */
function bodyBytesMaxOf(req: Request, valueBytesMax: number): { max: number; name: string } | null {
  const path = req.url;
  if (path.startsWith(KV_PREFIX)) return { max: valueBytesMax, name: 'valueBytesMax' };
  if (req.method === 'POST' && isTxnUrl(path)) return { max: txnBodyBytesMax(valueBytesMax), name: 'the txn body limit (2 × valueBytesMax)' };
  if (req.method === 'POST' && (path === '/v1/cluster/members' || path.startsWith('/v1/cluster/members?'))) return { max: MEMBERS_BODY_BYTES_MAX, name: 'the membership body limit' };
  if (path.startsWith('/v1/auth/')) return { max: AUTH_BODY_BYTES_MAX, name: 'the auth body limit' };
  return null;
}

/**
 * First middleware of the HTTP door:
 * - a request on a connection over `connectionsMax` is answered 503 UNAVAILABLE with
 *   `Connection: close`;
 * - a body whose `Content-Length` is over the route's bound is answered 413 TOO_LARGE from the
 *   headers alone, with `Connection: close`: the body is never read (a client that sent
 *   `Expect: 100-continue` never sends it) and the connection closes once the answer is flushed;
 * - otherwise `100 Continue` is sent when the client asked for it.
 */
export function bodyLimitMiddleware(valueBytesMax: number, closeTimeoutMs: number, clock: Clock = realClock) {
  return (req: Request, res: Response, next: NextFunction): void => {
    if (overCap.has(req.socket)) {
      res.setHeader('Connection', 'close');
      return sendError(res, 503, { error: statusName(Status.Unavailable), message: 'too many connections: connectionsMax reached' });
    }
    const bound = bodyBytesMaxOf(req, valueBytesMax);
    const length = Number(req.headers['content-length'] ?? 0);
    if (bound && Number.isFinite(length) && length > bound.max) {
      closeAfterAnswer(req, res, closeTimeoutMs, clock);
      const what = req.url.startsWith(KV_PREFIX) ? 'value' : 'body';
      return sendError(res, 413, { error: statusName(Status.TooLarge), message: `${what} is ${length} bytes; ${bound.name} is ${bound.max}` });
    }
    if (/100-continue/i.test(req.headers.expect ?? '')) res.writeContinue();
    next();
  };
}

/** `Connection: close` on the answer; the socket is ended once it is flushed and destroyed within closeTimeoutMs on `clock`. */
function closeAfterAnswer(req: Request, res: Response, closeTimeoutMs: number, clock: Clock): void {
  res.setHeader('Connection', 'close');
  const socket = req.socket;
  socket.pause(); // the body is not read
  res.once('finish', () => {
    destroyWithin(socket, closeTimeoutMs, clock);
    socket.end(() => socket.destroy());
  });
}

/**
 * Rewrites an absolute-form request target (`GET http://host/v1/kv/k`, what a client sends to a
 * proxy, RFC 9112 §3.2.2) to its origin form (`/v1/kv/k`) so every route and the key decoding see
 * the same path; the authority is ignored, as the Host header is. Done on the Node request before
 * Express sees it (Express's router keeps the scheme and authority aside and would put them back).
 */
export function toOriginForm(req: IncomingMessage): void {
  const url = req.url ?? '/';
  const m = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/?#]*/.exec(url);
  if (!m) return;
  const rest = url.slice(m[0].length);
  req.url = rest.startsWith('/') ? rest : `/${rest}`;
}
