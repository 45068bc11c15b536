import fc from 'fast-check';
import {
  ProtocolError,
  SNAPSHOT_BEGIN_REQUEST_TYPE,
  SnapshotPart,
  Status,
  decodeSnapshotBeginReply,
  decodeSnapshotBeginRequest,
  decodeSnapshotChunkReply,
  decodeSnapshotChunkRequest,
  encodeSnapshotBeginReply,
  encodeSnapshotBeginRequest,
  encodeSnapshotChunkReply,
  encodeSnapshotChunkRequest,
  peekMessageType,
} from './index';

const u64 = () => fc.nat({ max: Number.MAX_SAFE_INTEGER });
const bytes = () => fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b));
const status = () => fc.constantFrom(Status.Ok, Status.Unavailable, Status.NotFound, Status.Error);

describe('snapshot transfer messages', () => {
  it('round-trip every field', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), u64(), (requesterId, minAppliedIndex) => {
        expect(decodeSnapshotBeginRequest(encodeSnapshotBeginRequest({ requesterId, minAppliedIndex }))).toEqual({ requesterId, minAppliedIndex });
      }),
    );
    fc.assert(
      fc.property(
        fc.record({ status: status(), message: fc.string(), transferId: fc.string({ maxLength: 32 }), appliedIndex: u64(), chunkBytesMax: fc.nat({ max: 0xffff_ffff }), manifest: bytes(), sessionBytes: u64(), sessionCrc32: fc.nat({ max: 0xffff_ffff }) }),
        (q) => expect(decodeSnapshotBeginReply(encodeSnapshotBeginReply(q))).toEqual(q),
      ),
    );
    fc.assert(
      fc.property(fc.record({ transferId: fc.string({ maxLength: 32 }), part: fc.constantFrom(SnapshotPart.End, SnapshotPart.Engine, SnapshotPart.Sessions), file: fc.string({ maxLength: 32 }), offset: u64() }), (q) =>
        expect(decodeSnapshotChunkRequest(encodeSnapshotChunkRequest(q))).toEqual(q),
      ),
    );
    fc.assert(fc.property(fc.record({ status: status(), message: fc.string(), data: bytes() }), (q) => expect(decodeSnapshotChunkReply(encodeSnapshotChunkReply(q))).toEqual(q)));
  });

  it('matches the byte layouts of docs/protocol.md', () => {
    expect(encodeSnapshotBeginRequest({ requesterId: 's2', minAppliedIndex: 7 }).toString('hex')).toBe('1601' + '00027332' + '0000000000000007');
    expect(encodeSnapshotChunkRequest({ transferId: 'ab', part: SnapshotPart.Engine, file: 'x', offset: 3 }).toString('hex')).toBe('1801' + '00026162' + '01' + '000178' + '0000000000000003');
    expect(encodeSnapshotChunkReply({ status: Status.Ok, message: '', data: Buffer.from('hi') }).toString('hex')).toBe('1901' + '00' + '0000' + '000000026869');
    expect(
      encodeSnapshotBeginReply({ status: Status.Ok, message: '', transferId: 't', appliedIndex: 9, chunkBytesMax: 524288, manifest: Buffer.from([0xaa]), sessionBytes: 4, sessionCrc32: 0x01020304 }).toString('hex'),
    ).toBe('1701' + '00' + '0000' + '000174' + '0000000000000009' + '00080000' + '00000001aa' + '0000000000000004' + '01020304');
    expect(peekMessageType(encodeSnapshotBeginRequest({ requesterId: '', minAppliedIndex: 0 }))).toBe(SNAPSHOT_BEGIN_REQUEST_TYPE);
  });

  it('rejects a wrong type or version, an unknown part or status, truncation and trailing bytes', () => {
    const req = encodeSnapshotChunkRequest({ transferId: 't', part: SnapshotPart.Sessions, file: '', offset: 1 });
    expect(() => decodeSnapshotBeginRequest(req)).toThrow(ProtocolError);
    const badVersion = Buffer.from(req);
    badVersion[1] = 2;
    expect(() => decodeSnapshotChunkRequest(badVersion)).toThrow(/version 2/);
    const badPart = Buffer.from(req);
    badPart[2 + 3] = 9;
    expect(() => decodeSnapshotChunkRequest(badPart)).toThrow(/unknown snapshot part 9/);
    expect(() => encodeSnapshotChunkRequest({ transferId: 't', part: 9 as SnapshotPart, file: '', offset: 0 })).toThrow(RangeError);
    const reply = encodeSnapshotChunkReply({ status: Status.Ok, message: 'm', data: Buffer.from('abc') });
    const badStatus = Buffer.from(reply);
    badStatus[2] = 0x7f;
    expect(() => decodeSnapshotChunkReply(badStatus)).toThrow(/unknown status/);
    for (let n = 0; n < reply.length; n++) expect(() => decodeSnapshotChunkReply(reply.subarray(0, n))).toThrow(ProtocolError);
    expect(() => decodeSnapshotChunkReply(Buffer.concat([reply, Buffer.from([0])]))).toThrow(/trailing/);
    expect(() => encodeSnapshotBeginRequest({ requesterId: 's', minAppliedIndex: 2 ** 53 })).toThrow(RangeError);
  });
});
