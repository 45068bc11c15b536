import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import { Status, statusName } from '@cairn/protocol';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { RequestObserver, RequestOp } from '../metrics/request-metrics';
import { bodyParserErrors, sendError, statusOfHttp } from './errors';

/** Path prefix of the key routes; the key is the one path segment after it. */
export const KV_PREFIX = '/v1/kv/';
/** The transaction route (`POST /v1/txn`, txn.controller.ts). */
export const TXN_PATH = '/v1/txn';

/** Whether `url` (path and query) is the transaction route. */
export function isTxnUrl(url: string): boolean {
  return url === TXN_PATH || url.startsWith(TXN_PATH + '?');
}

/** What the key segment is rewritten to once decoded (the controllers read the bytes, not the param). */
const KEY_PLACEHOLDER = '_';

const keys = new WeakMap<Request, Buffer>();

/**
 * Percent-decodes a path segment to bytes: `%XX` is the byte 0xXX, any other character its UTF-8
 * bytes. Unlike decodeURIComponent it accepts bytes that are not UTF-8 (`%FF`), so every key is
 * addressable. Returns null on a malformed escape (`%`, `%G1`).
 */
export function percentDecode(segment: string): Buffer | null {
  if (!segment.includes('%')) return Buffer.from(segment, 'utf8');
  const out: number[] = [];
  for (let i = 0; i < segment.length; i++) {
    const c = segment.charCodeAt(i);
    if (c === 0x25) {
      const hex = segment.slice(i + 1, i + 3);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) return null;
      out.push(parseInt(hex, 16));
      i += 2;
    } else if (c < 0x80) out.push(c);
    else {
      const cp = segment.codePointAt(i)!;
      for (const b of Buffer.from(String.fromCodePoint(cp), 'utf8')) out.push(b);
      if (cp > 0xffff) i++;
    }
  }
  return Buffer.from(out);
}

/** The key bytes of a /v1/kv/ request, decoded by `kvKeyMiddleware`. */
export const KvKey = createParamDecorator((_: unknown, ctx: ExecutionContext): Buffer => {
  const key = keys.get(ctx.switchToHttp().getRequest<Request>());
  if (!key) throw new Error('KvKeyDecoded: kvKeyMiddleware must run before the /v1/kv routes');
  return key;
});

const OP_OF_METHOD: Record<string, RequestOp> = { GET: 'get', HEAD: 'get', PUT: 'set', DELETE: 'del' };

/**
 * Runs before routing, for `/v1/kv/<key>` (and `/v1/txn`, only counted, as `other`):
 * - decodes the raw key segment to bytes itself (Express would decodeURIComponent it and answer
 *   a bare 400 for non-UTF-8 bytes), keeps them for `@KvKey()`, and rewrites the segment to a
 *   placeholder so routing never sees the key;
 * - counts the request for `cairn_gateway_requests_total{door="http"}` and its duration when the
 *   response is finished, whoever answered (controller, ValidationPipe, body limit, 404).
 */
export function kvKeyMiddleware(observer: RequestObserver) {
  return (req: Request, res: Response, next: NextFunction): void => {
    if (isTxnUrl(req.url)) {
      const startMs = performance.now();
      res.once('finish', () => observer.observe('other', statusOfHttp(res.statusCode), (performance.now() - startMs) / 1000));
      return next();
    }
    if (!req.url.startsWith(KV_PREFIX)) return next();
    const q = req.url.indexOf('?');
    const segment = req.url.slice(KV_PREFIX.length, q < 0 ? undefined : q);
    if (segment.includes('/')) return next(); // not a key route: Nest answers 404
    const startMs = performance.now();
    const op = OP_OF_METHOD[req.method] ?? 'other';
    res.once('finish', () => observer.observe(op, statusOfHttp(res.statusCode), (performance.now() - startMs) / 1000));
    const key = percentDecode(segment);
    if (!key) return sendError(res, 400, { error: statusName(Status.BadRequest), message: `malformed percent-encoding in key "${segment}"` });
    keys.set(req, key);
    req.url = KV_PREFIX + KEY_PLACEHOLDER + (q < 0 ? '' : req.url.slice(q));
    next();
  };
}

/**
 * The request body as raw bytes (any Content-Type), at most `valueBytesMax`: over it the answer
 * is 413 TOO_LARGE (bodyLimitMiddleware answers from Content-Length before reading; here, a
 * chunked body as soon as it crosses the limit), with the same JSON error body as every other error.
 */
export function rawBodyMiddleware(valueBytesMax: number) {
  const parse = express.raw({ type: () => true, limit: valueBytesMax });
  const onError = bodyParserErrors('valueBytesMax', valueBytesMax, 'value');
  return (req: Request, res: Response, next: NextFunction): void => {
    parse(req, res, (err?: unknown) => (err ? onError(err, res) : next()));
  };
}
