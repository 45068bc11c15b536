/**
 * Membership control plane (Raft thesis §4): gateway → leader replica on `member.<replica>`,
 * request/reply, JSON (rare, human-driven operations: readability beats compactness here, as
 * for status heartbeats).
 * Format: docs/protocol.md, "Control-plane messages (JSON)".
 */

import { CodedError } from './coded-error';

/** Which kind of process a change is about: a Raft replica (voter) or a storage node. */
export type MemberKind = 'replica' | 'storage';

/**
 * - `add` replica: the leader adds it as a learner, waits until it has caught up with the log
 *   (thesis §4.2.1), then promotes it to voter; each step is one committed single-server change.
 * - `remove` replica: one change; removing the leader itself works (thesis §4.2.2).
 * - `add`/`remove` storage: one change to the configuration's storage-node list.
 */
export interface MemberRequest {
  op: 'add' | 'remove';
  kind: MemberKind;
  id: string;
}

/**
 * `status`:
 * - `ok`: done and committed; `conf` is the configuration after it;
 * - `not_leader`: ask `leaderHint` (may be empty);
 * - `busy`: another change is in progress, or the leader has not committed an entry of its term yet: retry;
 * - `invalid`: the change does not apply (already a member, not a member, last voter, bad id);
 * - `unavailable`: the outcome is unknown (leadership lost, timeout, learner did not catch up); `list` and retry.
 */
export interface MemberReply {
  status: 'ok' | 'not_leader' | 'busy' | 'invalid' | 'unavailable' | 'bad_request';
  message: string;
  leaderHint: string;
  conf: { voters: string[]; learners: string[]; storage: string[] } | null;
  confIndex: number;
}

/** Thrown by `decodeMemberRequest` on a payload that is not a valid MemberRequest. */
export class MemberRequestInvalidError extends CodedError {
  readonly code = 'MEMBER_REQUEST_INVALID';
  constructor(why: string) {
    super(`invalid member request: ${why}`);
  }
}

export function encodeMemberRequest(r: MemberRequest): Uint8Array {
  return Buffer.from(JSON.stringify(r));
}

/** @throws MemberRequestInvalidError */
export function decodeMemberRequest(data: Uint8Array): MemberRequest {
  let v: Partial<MemberRequest>;
  try {
    v = JSON.parse(Buffer.from(data).toString('utf8')) as Partial<MemberRequest>;
  } catch (e) {
    throw new MemberRequestInvalidError(`not JSON: ${(e as Error).message}`);
  }
  if (!v || (v.op !== 'add' && v.op !== 'remove')) throw new MemberRequestInvalidError('op must be "add" or "remove"');
  if (v.kind !== 'replica' && v.kind !== 'storage') throw new MemberRequestInvalidError('kind must be "replica" or "storage"');
  if (typeof v.id !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(v.id)) throw new MemberRequestInvalidError('id must be 1-64 of [A-Za-z0-9_-]');
  return { op: v.op, kind: v.kind, id: v.id };
}

export function encodeMemberReply(r: MemberReply): Uint8Array {
  return Buffer.from(JSON.stringify(r));
}

/** @throws MemberRequestInvalidError when the payload is not a MemberReply. */
export function decodeMemberReply(data: Uint8Array): MemberReply {
  try {
    const v = JSON.parse(Buffer.from(data).toString('utf8')) as MemberReply;
    if (typeof v.status === 'string' && typeof v.message === 'string') return v;
  } catch {
    // fall through
  }
  throw new MemberRequestInvalidError('reply is not a MemberReply');
}
