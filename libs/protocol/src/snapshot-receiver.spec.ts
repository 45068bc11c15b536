import { Status } from './constants';
import { SnapshotPart, decodeSnapshotChunkRequest, encodeSnapshotBeginReply, encodeSnapshotChunkReply } from './snapshot-messages';
import { SnapshotRefusedError, releaseSnapshotTransfer, requestSnapshotBegin, requestSnapshotChunk } from './snapshot-receiver';

const beginReply = (status: Status, message = '') =>
  encodeSnapshotBeginReply({ status, message, transferId: status === Status.Ok ? 't1' : '', appliedIndex: 7, chunkBytesMax: 1024, manifest: Buffer.from('m'), sessionBytes: 0, sessionCrc32: 0 });

describe('snapshot receiver requests', () => {
  it('begin resolves the OK reply and rejects any other status with SnapshotRefusedError naming it', async () => {
    await expect(requestSnapshotBegin(async () => beginReply(Status.Ok), { requesterId: 's1', minAppliedIndex: 3 })).resolves.toMatchObject({ transferId: 't1', appliedIndex: 7 });
    const refused = requestSnapshotBegin(async () => beginReply(Status.Unavailable, 'behind'), { requesterId: 's1', minAppliedIndex: 3 });
    await expect(refused).rejects.toThrow(SnapshotRefusedError);
    await expect(refused).rejects.toMatchObject({ status: Status.Unavailable, message: 'begin answered UNAVAILABLE: behind' });
  });

  it('chunk resolves the data; a refusal names the part, file and offset', async () => {
    const data = await requestSnapshotChunk(async () => encodeSnapshotChunkReply({ status: Status.Ok, message: '', data: Buffer.from('abc') }), { transferId: 't1', part: SnapshotPart.Engine, file: 'f', offset: 0 });
    expect(Buffer.from(data).toString()).toBe('abc');
    const notFound = async () => encodeSnapshotChunkReply({ status: Status.NotFound, message: 'expired', data: Buffer.alloc(0) });
    await expect(requestSnapshotChunk(notFound, { transferId: 't1', part: SnapshotPart.Engine, file: 'f', offset: 9 })).rejects.toThrow('chunk f@9 answered NOT_FOUND: expired');
    await expect(requestSnapshotChunk(notFound, { transferId: 't1', part: SnapshotPart.Sessions, file: '', offset: 4 })).rejects.toThrow('session table @4 answered NOT_FOUND: expired');
  });

  it('release sends End for the transfer and never rejects', async () => {
    const sent: Uint8Array[] = [];
    await releaseSnapshotTransfer(async (q) => {
      sent.push(q);
      throw new Error('timeout');
    }, 't1');
    expect(decodeSnapshotChunkRequest(sent[0])).toEqual({ transferId: 't1', part: SnapshotPart.End, file: '', offset: 0 });
  });
});
