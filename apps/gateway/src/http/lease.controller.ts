import { Controller, Delete, Get, HttpCode, Inject, Param, Post, Query, Req, Res } from '@nestjs/common';
import { LEASE_LIST_PAGE_MAX, Status } from '@cairn/protocol';
import { Transform } from 'class-transformer';
import { IsBoolean, IsInt, IsOptional, Matches, Max, Min } from 'class-validator';
import type { Request, Response } from 'express';
import { KvSession, type KvResult } from '../paths/kv-session';
import { CairnHttpException } from './errors';
import { HTTP_DEPS, type HttpDeps } from './http-deps';
import { identityOf } from './http-auth';
import { TTL_QUERY, ttlMsOf } from './kv.controller';

/** A lease id in a path or query: a decimal integer in 1..2^53-1 (at most 16 digits). */
const LEASE_ID = /^[1-9]\d{0,15}$/;

const int = ({ value }: { value: unknown }) => (typeof value === 'string' && /^\d{1,16}$/.test(value) ? Number(value) : value);

/** `POST /v1/lease` query. */
export class GrantLeaseQuery {
  /** The lease's TTL: a positive integer with an optional unit `ms`, `s` (default), `m` or `h`. */
  @Matches(TTL_QUERY, { message: 'ttl must be a positive integer with an optional unit ms, s, m or h (e.g. 10s)' })
  ttl!: string;
  /** The id to grant (1..2^53-1); absent: the gateway picks one. */
  @IsOptional() @Matches(LEASE_ID, { message: 'id must be an integer in 1..2^53-1' }) id?: string;
}

/** `GET /v1/lease/:id` query. */
export class LeaseTtlQuery {
  @IsOptional()
  @Transform(({ value }) => (value === 'true' ? true : value === 'false' ? false : value))
  @IsBoolean({ message: 'keys must be true or false' })
  keys?: boolean;
}

/** `GET /v1/lease` query: one page of live ids > `after`, at most `limit`. */
export class ListLeasesQuery {
  @IsOptional() @Transform(int) @IsInt({ message: 'after must be a non-negative integer' }) @Min(0, { message: 'after must be a non-negative integer' }) after?: number;
  @IsOptional()
  @Transform(int)
  @IsInt({ message: `limit must be an integer in 1..${LEASE_LIST_PAGE_MAX}` })
  @Min(1, { message: `limit must be an integer in 1..${LEASE_LIST_PAGE_MAX}` })
  @Max(LEASE_LIST_PAGE_MAX, { message: `limit must be an integer in 1..${LEASE_LIST_PAGE_MAX}` })
  limit?: number;
}

/**
 * Leases on the HTTP door (docs/http.md "Leases"; etcd's Lease API): grant, keep-alive, revoke,
 * time to live (with the attached keys), list. Each request is its own KvSession on the gateway's
 * paths, so the same checks and errors as the TLV door apply; a lease that is not live is 404.
 */
@Controller('v1/lease')
export class LeaseController {
  constructor(@Inject(HTTP_DEPS) private readonly deps: HttpDeps) {}

  /** Grant: 200 `{ id, ttl_ms, revision }`; 412 when `id` is live; 413 at consensus.leasesMax. */
  @Post()
  @HttpCode(200)
  async grant(@Query() query: GrantLeaseQuery, @Req() req: Request, @Res() res: Response): Promise<void> {
    const r = await this.session(req).leaseGrant(ttlMsOf(query.ttl), query.id === undefined ? 0 : Number(query.id));
    check(r);
    res.setHeader('X-Cairn-Revision', String(r.revision)).json({ id: r.lease!.leaseId, ttl_ms: r.lease!.ttlMs, revision: r.revision });
  }

  /** Keep-alive at the consensus leader: 200 `{ id, ttl_ms }`; 404 when not live. */
  @Post(':id/keepalive')
  @HttpCode(200)
  async keepAlive(@Param('id') id: string, @Req() req: Request, @Res() res: Response): Promise<void> {
    const leaseId = leaseIdOf(id);
    const r = await this.session(req).leaseKeepAlive(leaseId);
    check(r);
    res.json({ id: leaseId, ttl_ms: r.lease!.ttlMs });
  }

  /** Revoke: 200 `{ revision }` (every attached key deleted at it); 404 when not live. */
  @Delete(':id')
  async revoke(@Param('id') id: string, @Req() req: Request, @Res() res: Response): Promise<void> {
    const r = await this.session(req).leaseRevoke(leaseIdOf(id));
    check(r);
    res.status(200).setHeader('X-Cairn-Revision', String(r.revision)).json({ revision: r.revision });
  }

  /** Time to live: 200 `{ id, ttl_ms, remaining_ms }` and with `keys=true` `keys` (base64) and `more`; 404 when not live. */
  @Get(':id')
  async timeToLive(@Param('id') id: string, @Query() query: LeaseTtlQuery, @Req() req: Request, @Res() res: Response): Promise<void> {
    const leaseId = leaseIdOf(id);
    const r = await this.session(req).leaseTimeToLive(leaseId, query.keys === true);
    check(r);
    const l = r.lease!;
    res.json({ id: leaseId, ttl_ms: l.ttlMs, remaining_ms: l.remainingMs, ...(l.keys ? { keys: l.keys.map((k) => k.toString('base64')), more: l.more ?? false } : {}) });
  }

  /** List: 200 `{ leases: [id…], more }`, ids ascending. */
  @Get()
  async list(@Query() query: ListLeasesQuery, @Req() req: Request, @Res() res: Response): Promise<void> {
    const r = await this.session(req).leaseList(query.after ?? 0, query.limit ?? LEASE_LIST_PAGE_MAX);
    check(r);
    res.json({ leases: r.lease!.ids ?? [], more: r.lease!.more ?? false });
  }

  private session(req: Request): KvSession {
    return new KvSession(this.deps.paths, this.deps.auth?.gate.guardFor(identityOf(req)));
  }
}

function leaseIdOf(id: string): number {
  if (!LEASE_ID.test(id) || Number(id) > Number.MAX_SAFE_INTEGER) throw new CairnHttpException(Status.BadRequest, `lease id must be an integer in 1..2^53-1, got ${JSON.stringify(id)}`);
  return Number(id);
}

function check(r: KvResult): void {
  if (r.status !== Status.Ok) throw new CairnHttpException(r.status, r.message || 'request failed');
}
