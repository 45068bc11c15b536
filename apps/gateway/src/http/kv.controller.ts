import { Controller, Delete, Get, Inject, Put, Query, Req, Res } from '@nestjs/common';
import { CommandCondition, LeaseRefusal, Status } from '@cairn/protocol';
import { Transform } from 'class-transformer';
import { IsBoolean, IsInt, IsOptional, IsString, Matches, Min } from 'class-validator';
import type { Request, Response } from 'express';
import { KvSession, type KvResult } from '../paths/kv-session';
import { CairnHttpException } from './errors';
import { HTTP_DEPS, httpClock, type HttpDeps } from './http-deps';
import { KvKey } from './kv-key';
import type { ReadReservation } from '../server/flow';
import { identityOf } from './http-auth';

/** `GET /v1/kv/:key` query. */
export class GetKvQuery {
  /** Skip the linearizable read (no ReadIndex round, no wait for the node to catch up): any live storage node answers. */
  @IsOptional()
  @Transform(({ value }) => (value === 'true' ? true : value === 'false' ? false : value))
  @IsBoolean({ message: 'stale must be true or false' })
  stale?: boolean;
}

const toBool = ({ value }: { value: unknown }) => (value === 'true' ? true : value === 'false' ? false : value);

/**
 * `GET /v1/kv?…` query: a range read (docs/http.md "Range reads"). Keys are UTF-8 text here
 * (percent-encoded in the URL); `token` is the previous page's, as sent (base64url).
 */
export class RangeKvQuery {
  @IsOptional() @IsString() prefix?: string;
  @IsOptional() @IsString() start?: string;
  @IsOptional() @IsString() end?: string;
  @IsOptional()
  @Transform(({ value }) => (typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value))
  @IsInt({ message: 'limit must be a non-negative integer' })
  @Min(0, { message: 'limit must be a non-negative integer' })
  limit?: number;
  @IsOptional() @IsString() token?: string;
  @IsOptional() @Transform(toBool) @IsBoolean({ message: 'keys_only must be true or false' }) keys_only?: boolean;
  @IsOptional() @Transform(toBool) @IsBoolean({ message: 'count_only must be true or false' }) count_only?: boolean;
  @IsOptional() @Transform(toBool) @IsBoolean({ message: 'reverse must be true or false' }) reverse?: boolean;
  @IsOptional() @Transform(toBool) @IsBoolean({ message: 'stale must be true or false' }) stale?: boolean;
}

/** `if=revision:N`: N a decimal integer in 0..2^53-1 (at most 16 digits, so no precision is lost before the bound check). */
const IF_REVISION = /^revision:(\d{1,16})$/;

/** The compare-and-swap operand of an `if` query value, or undefined when it is not `revision:N`. */
function ifRevisionOf(q: string | undefined): number | undefined {
  const m = q === undefined ? null : IF_REVISION.exec(q);
  return m ? Number(m[1]) : undefined;
}

/** `ttl=`: at most 12 digits and a unit. */
export const TTL_QUERY = /^([1-9]\d{0,11})(ms|s|m|h)?$/;
const TTL_UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A `ttl` query value in ms (validated by PutKvQuery). */
export function ttlMsOf(q: string): number {
  const m = TTL_QUERY.exec(q)!;
  return Number(m[1]) * TTL_UNIT_MS[m[2] ?? 's'];
}

/** `PUT /v1/kv/:key` query. */
export class PutKvQuery {
  /**
   * Conditional write, evaluated atomically where it is applied: `absent` = only if the key does
   * not exist (SET NX), `present` = only if it does (SET XX), `revision:N` = only if the key's mod
   * revision is N (compare-and-swap; 0 = only if missing). Not applied → 412.
   */
  @IsOptional()
  @Matches(/^(absent|present|revision:\d{1,16})$/, { message: 'if must be absent, present or revision:N (N an integer in 0..2^53-1)' })
  if?: string;

  /**
   * Time to live (docs/leases.md): a positive integer with an optional unit `ms`, `s` (default),
   * `m` or `h`, e.g. `30s`. The key gets the absolute expiry now + ttl (this gateway's clock); a PUT
   * without `ttl` clears any expiry (as Redis SET).
   */
  @IsOptional()
  @Matches(TTL_QUERY, { message: 'ttl must be a positive integer with an optional unit ms, s, m or h (e.g. 30s)' })
  ttl?: string;

  /** Attach the key to this lease (etcd put with `lease`; docs/leases.md): deleted when the lease is revoked or expires. A lease that is not live → 404. */
  @IsOptional()
  @Matches(/^[1-9]\d{0,15}$/, { message: 'lease must be an integer in 1..2^53-1' })
  lease?: string;
}

/** `DELETE /v1/kv/:key` query. */
export class DeleteKvQuery {
  /** `revision:N`: delete only if the key's mod revision is N (compare-and-swap). Not applied → 412. */
  @IsOptional()
  @Matches(/^revision:\d{1,16}$/, { message: 'if must be revision:N (N an integer in 0..2^53-1)' })
  if?: string;
}

/**
 * The key-value routes (docs/http.md). The key is the path segment, percent-decoded to bytes
 * (kvKeyMiddleware); values are the raw body / response body. Each request is its own KvSession
 * (HTTP keeps no per-client state in the gateway): reads are linearizable by default, so a GET
 * sees every write acknowledged before it began, to any client through any gateway.
 */
@Controller('v1/kv')
export class KvController {
  constructor(@Inject(HTTP_DEPS) private readonly deps: HttpDeps) {}

  /**
   * A range read: one page of `[start, end)` or of `prefix`, JSON `{ revision, count, more, token,
   * kvs: [{ key, value, mod_revision, create_revision, version }] }` with key and value in base64
   * (etcd's JSON gateway does the same: keys and values are bytes).
   */
  @Get()
  async range(@Query() query: RangeKvQuery, @Req() req: Request, @Res() res: Response): Promise<void> {
    if (query.prefix !== undefined && (query.start !== undefined || query.end !== undefined)) throw new CairnHttpException(Status.BadRequest, 'prefix excludes start and end');
    const r = await this.session(req).range({
      start: Buffer.from(query.prefix ?? query.start ?? '', 'utf8'),
      end: query.end === undefined ? null : Buffer.from(query.end, 'utf8'),
      prefix: query.prefix !== undefined,
      limit: query.limit,
      token: query.token === undefined ? undefined : Buffer.from(query.token, 'base64url'),
      keysOnly: query.keys_only === true,
      countOnly: query.count_only === true,
      reverse: query.reverse === true,
      stale: query.stale === true,
    });
    if (r.status !== Status.Ok) throw new CairnHttpException(r.status, r.message || 'request failed');
    res.status(200).setHeader('X-Cairn-Revision', String(r.revision));
    res.json({
      revision: r.revision,
      count: r.count,
      more: r.more,
      token: r.more ? r.token.toString('base64url') : null,
      kvs: r.items.map((it) => ({
        key: Buffer.from(it.key).toString('base64'),
        ...(query.keys_only ? {} : { value: Buffer.from(it.value).toString('base64') }),
        mod_revision: it.revision,
        create_revision: it.createRevision,
        version: it.version,
      })),
    });
  }

  @Get(':key')
  async get(@KvKey() key: Buffer, @Query() query: GetKvQuery, @Req() req: Request, @Res() res: Response): Promise<void> {
    const r = await this.session(req).get(key, { stale: query.stale === true, reservation: res.locals.readReservation as ReadReservation | undefined });
    if (r.status === Status.NotFound) throw new CairnHttpException(Status.NotFound, 'no such key');
    check(r);
    this.deps.budget?.observeValue(r.value.byteLength);
    res.status(200).setHeader('Content-Type', 'application/octet-stream').setHeader('X-Cairn-Revision', String(r.revision));
    // Per-key metadata as etcd keeps it (docs/http.md): mod revision = X-Cairn-Revision.
    res.setHeader('Cairn-Mod-Revision', String(r.revision)).setHeader('Cairn-Create-Revision', String(r.createRevision ?? 0)).setHeader('Cairn-Version', String(r.version ?? 0));
    // The key's TTL (docs/leases.md): its absolute expiry, only when it has one.
    if (r.expiresAtMs) res.setHeader('Cairn-Expires-At', String(r.expiresAtMs));
    res.end(Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength));
  }

  @Put(':key')
  async put(@KvKey() key: Buffer, @Query() query: PutKvQuery, @Req() req: Request, @Res() res: Response): Promise<void> {
    const value = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    this.deps.budget?.observeValue(value.length);
    const condition = query.if === 'absent' ? CommandCondition.IfAbsent : query.if === 'present' ? CommandCondition.IfPresent : CommandCondition.None;
    const ifRevision = ifRevisionOf(query.if);
    const leaseId = query.lease === undefined ? 0 : Number(query.lease);
    if (leaseId > Number.MAX_SAFE_INTEGER) throw new CairnHttpException(Status.BadRequest, 'lease must be an integer in 1..2^53-1');
    const meta = query.ttl === undefined && leaseId === 0 ? undefined : { leaseId, expiresAtMs: query.ttl === undefined ? 0 : httpClock(this.deps).nowMs() + ttlMsOf(query.ttl), keepTtl: false };
    const r = await this.session(req).set(key, value, meta ? { condition, ifRevision, meta } : { condition, ifRevision });
    // The lease is not live (404, etcd "requested lease not found") or holds keysPerLeaseMax keys (413).
    if (r.status === Status.ConditionFailed && r.leaseRefusal !== undefined) throw new CairnHttpException(r.leaseRefusal === LeaseRefusal.NotFound ? Status.NotFound : Status.TooLarge, r.message);
    if (r.status === Status.ConditionFailed) {
      // 412 with the index the condition was evaluated at, so a client can read at least that state.
      res.setHeader('X-Cairn-Revision', String(r.revision));
      const why = query.if === 'absent' ? 'the key exists (if=absent)' : query.if === 'present' ? 'the key does not exist (if=present)' : `the key's mod revision is not ${ifRevision} (if=${query.if})`;
      throw new CairnHttpException(Status.ConditionFailed, why);
    }
    written(res, r);
  }

  @Delete(':key')
  async del(@KvKey() key: Buffer, @Query() query: DeleteKvQuery, @Req() req: Request, @Res() res: Response): Promise<void> {
    const ifRevision = ifRevisionOf(query.if);
    const r = await this.session(req).del(key, { ifRevision });
    if (r.status === Status.ConditionFailed) {
      res.setHeader('X-Cairn-Revision', String(r.revision));
      throw new CairnHttpException(Status.ConditionFailed, `the key's mod revision is not ${ifRevision} (if=${query.if})`);
    }
    written(res, r);
  }

  /** The request's session, its keys checked against the requester's permissions (docs/security.md). */
  private session(req: Request): KvSession {
    return new KvSession(this.deps.paths, this.deps.auth?.gate.guardFor(identityOf(req)));
  }
}

/** Throws the HTTP form of a non-OK result. */
function check(r: KvResult): void {
  if (r.status !== Status.Ok) throw new CairnHttpException(r.status, r.message || 'request failed');
}

/** PUT/DELETE OK: 200, `X-Cairn-Revision` = the index the write committed at, body `{ revision }`. */
function written(res: Response, r: KvResult): void {
  check(r);
  res.status(200).setHeader('X-Cairn-Revision', String(r.revision));
  res.json({ revision: r.revision });
}
