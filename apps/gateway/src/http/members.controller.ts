import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Query } from '@nestjs/common';
import { Status, type MemberReply, type MemberRequest } from '@cairn/protocol';
import { Type } from 'class-transformer';
import { IsIn, IsInt, IsOptional, Matches, Max, Min } from 'class-validator';
import { CairnHttpException } from './errors';
import { HTTP_DEPS, type HttpDeps } from './http-deps';

const MEMBER_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** Body of `POST /v1/cluster/members`. */
export class AddMemberBody {
  @Matches(MEMBER_ID, { message: 'id must be 1-64 of [A-Za-z0-9_-]' })
  id!: string;

  @IsOptional()
  @IsIn(['replica', 'storage'])
  kind: 'replica' | 'storage' = 'replica';
}

/** Query of both membership writes. */
export class MemberQuery {
  /** How long to wait for the change (adding a replica waits for it to catch up), ms. */
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(100)
  @Max(3_600_000)
  timeoutMs?: number;

  /** `DELETE` only: which kind of member `:id` is (default replica). */
  @IsOptional()
  @IsIn(['replica', 'storage'])
  kind?: 'replica' | 'storage';
}

/** MemberReply status → HTTP answer. `ok` → 200 with the configuration. */
function toHttp(reply: MemberReply) {
  switch (reply.status) {
    case 'ok':
      return { status: 'ok', message: reply.message, conf: reply.conf, confIndex: reply.confIndex };
    case 'invalid':
      // e.g. removing the last voter: a conflict with the cluster's state, not a malformed request.
      throw new CairnHttpException(Status.ConditionFailed, reply.message);
    case 'bad_request':
      throw new CairnHttpException(Status.BadRequest, reply.message);
    default:
      throw new CairnHttpException(Status.Unavailable, reply.message);
  }
}

/**
 * Membership (docs/http.md "Membership", Raft thesis §4): list, add and remove consensus replicas
 * and storage nodes. Each write is forwarded to the leader and answered once committed; writes are
 * idempotent (asking for the current state answers 200), so retrying after a 503 is safe.
 */
@Controller('v1/cluster/members')
export class MembersController {
  constructor(@Inject(HTTP_DEPS) private readonly deps: HttpDeps) {}

  /** The configuration in effect: voters, learners, storage nodes, its log index and whether it is committed. */
  @Get()
  list() {
    const m = this.deps.view.members();
    if (!m) throw new CairnHttpException(Status.Unavailable, 'no live consensus replica has reported the configuration yet');
    return m;
  }

  /** Adds a replica (learner → caught up → voter) or a storage node. */
  @Post()
  @HttpCode(200)
  async add(@Body() body: AddMemberBody, @Query() q: MemberQuery) {
    return toHttp(await this.change({ op: 'add', kind: body.kind ?? 'replica', id: body.id }, q.timeoutMs));
  }

  /** Removes a replica (the leader included) or, with `?kind=storage`, a storage node. */
  @Delete(':id')
  async remove(@Param('id') id: string, @Query() q: MemberQuery) {
    if (!MEMBER_ID.test(id)) throw new CairnHttpException(Status.BadRequest, 'id must be 1-64 of [A-Za-z0-9_-]');
    return toHttp(await this.change({ op: 'remove', kind: q.kind ?? 'replica', id }, q.timeoutMs));
  }

  private change(req: MemberRequest, timeoutMs?: number): Promise<MemberReply> {
    if (!this.deps.members) throw new CairnHttpException(Status.Unavailable, 'membership changes are not wired on this gateway');
    return this.deps.members.change(req, timeoutMs);
  }
}
