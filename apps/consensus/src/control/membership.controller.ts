import { Controller, Inject, type Type } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import { COMPONENT } from '@cairn/nest-runtime';

/** What the membership controller needs of its component (the Replica). */
export interface MemberAnswerer {
  /** MemberRequest bytes → MemberReply bytes (docs/protocol.md); never rejects. */
  answerMember(data: Uint8Array): Promise<Uint8Array>;
}

/**
 * The replica's membership requests on Nest's NATS transport: a `@MessagePattern` on `subject`
 * (`<cluster>.member.<replica>`, known only at start, hence a class per process) whose handler is
 * a thin shell over the library code (`Replica.answerMember` → MembershipChanges). The body is the
 * codec's bytes both ways (nest-runtime's raw serializers), so the wire is docs/protocol.md's.
 */
export function membershipController(subject: string): Type<unknown> {
  @Controller()
  class MembershipController {
    constructor(@Inject(COMPONENT) private readonly replica: MemberAnswerer) {}

    @MessagePattern(subject)
    member(@Payload() data: Uint8Array): Promise<Uint8Array> {
      return this.replica.answerMember(data);
    }
  }
  return MembershipController;
}
