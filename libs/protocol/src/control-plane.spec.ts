import { MemberRequestInvalidError, decodeMemberReply, decodeMemberRequest, decodeStatus, encodeMemberReply, encodeMemberRequest, encodeStatus, type ConsensusStatus, type MemberReply } from './index';

describe('control-plane JSON messages', () => {
  it('round-trips status heartbeats of both kinds and ignores garbage', () => {
    const s = { kind: 'storage' as const, id: 's1', appliedIndex: 5, knownCommitIndex: 6, keys: 1, dataBytes: 10, atMs: 1 };
    const c: ConsensusStatus = { kind: 'consensus', id: 'c1', role: 'leader', term: 3, leaderId: 'c1', commitIndex: 9, lastIndex: 9, appliedIndex: 9, logBytes: 100, atMs: 2 };
    expect(decodeStatus(encodeStatus(s))).toEqual(s);
    expect(decodeStatus(encodeStatus(c))).toEqual(c);
    expect(decodeStatus(Buffer.from('nope'))).toBeNull();
    expect(decodeStatus(Buffer.from('{"kind":"gateway","id":"g1"}'))).toBeNull();
    expect(decodeStatus(Buffer.from('{"kind":"storage"}'))).toBeNull();
  });

  it('round-trips member requests and replies', () => {
    const r = { op: 'add' as const, kind: 'replica' as const, id: 'c4' };
    expect(decodeMemberRequest(encodeMemberRequest(r))).toEqual(r);
    const reply: MemberReply = { status: 'ok', message: '', leaderHint: 'c1', conf: { voters: ['c1', 'c4'], learners: [], storage: ['s1'] }, confIndex: 12 };
    expect(decodeMemberReply(encodeMemberReply(reply))).toEqual(reply);
  });

  it('refuses a member request that is not one, with a typed error', () => {
    const bad = ['not json', '{"op":"move","kind":"replica","id":"c4"}', '{"op":"add","kind":"gateway","id":"c4"}', '{"op":"add","kind":"replica","id":"no spaces"}', 'null'];
    for (const b of bad) {
      expect(() => decodeMemberRequest(Buffer.from(b))).toThrow(MemberRequestInvalidError);
    }
    expect(() => decodeMemberReply(Buffer.from('{"status":1}'))).toThrow(expect.objectContaining({ code: 'MEMBER_REQUEST_INVALID' }));
  });
});
