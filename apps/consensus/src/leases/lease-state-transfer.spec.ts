import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Status, decodeLeaseStateReply, encodeLeaseStateRequest } from '@cairn/protocol';
import { LeaseStateFile, encodeLeaseState, type SavedLeaseState } from '@cairn/log';
import { LeaseStateDecoder, LeaseStateTransferError, answerLeaseStateRequest } from './lease-state-transfer';
import { LeaseTable } from './lease-table';

const opts = { leasesMax: 100, ttlKeysMax: 100, expiriesPerCheckMax: 10, expiryRetryMs: 500 };
const state: SavedLeaseState = {
  index: 42,
  gapThrough: 0,
  leases: Array.from({ length: 20 }, (_, i) => ({ leaseId: i + 1, ttlMs: 1000 * (i + 1) })),
  keys: Array.from({ length: 30 }, (_, i) => ({ key: Buffer.from(`key-${i}`.repeat(1 + (i % 3))), expiresAtMs: 5000 + i })),
};

describe('lease-state transfer (docs/leases.md "Snapshot install")', () => {
  it('the decoder rebuilds the table from the body cut at every chunk size, and refuses counts over its bounds, long keys, trailing and missing bytes', () => {
    const body = encodeLeaseState(state);
    const whole = new LeaseTable(opts);
    whole.restore(state);
    for (const size of [1, 2, 3, 5, 8, 13, 16, 17, 21, 34, 55, 89, 144, body.length]) {
      const t = new LeaseTable(opts);
      const d = new LeaseStateDecoder(t, opts);
      for (let at = 0; at < body.length; at += size) d.push(body.subarray(at, at + size));
      d.finish();
      expect({ size, index: d.index, content: t.content() }).toEqual({ size, index: 42, content: whole.content() });
    }
    const refuse = (b: Buffer, bounds: { leasesMax: number; ttlKeysMax: number } = opts) => () => {
      const d = new LeaseStateDecoder(new LeaseTable(opts), bounds);
      d.push(b);
      d.finish();
    };
    expect(refuse(body, { leasesMax: 19, ttlKeysMax: 100 })).toThrow(/20 leases, over/);
    expect(refuse(body, { leasesMax: 100, ttlKeysMax: 29 })).toThrow(/30 keys, over/);
    expect(refuse(encodeLeaseState({ ...state, keys: [{ key: Buffer.alloc(64 * 1024 + 1), expiresAtMs: 1 }] }))).toThrow(LeaseStateTransferError);
    expect(refuse(Buffer.concat([body, Buffer.from([0])]))).toThrow(/after the last entry/);
    expect(refuse(body.subarray(0, body.length - 1))).toThrow(/ended inside/);
  });

  it('a replica answers chunks of its file under the bounds; below minIndex or none: UNAVAILABLE and a save asked; the file replaced: NOT_FOUND', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cairn-'));
    try {
      const file = new LeaseStateFile(dir);
      let behind = 0;
      const ask = (q: { minIndex: number; crc32: number; offset: number; bytesMax: number }, chunkBytesMax = 64) =>
        decodeLeaseStateReply(answerLeaseStateRequest(file, encodeLeaseStateRequest(q), { chunkBytesMax, payloadBytesMax: 1 << 20, onBehind: () => behind++ }));
      expect(ask({ minIndex: 1, crc32: 0, offset: 0, bytesMax: 100 }).status).toBe(Status.Unavailable);
      expect(behind).toBe(1);
      file.write(state);
      const body = encodeLeaseState(state);
      const first = ask({ minIndex: 42, crc32: 0, offset: 0, bytesMax: 100 });
      expect({ status: first.status, index: first.index, bodyBytes: first.bodyBytes, data: Buffer.from(first.data) }).toEqual({ status: Status.Ok, index: 42, bodyBytes: body.length, data: body.subarray(0, 64) });
      const next = ask({ minIndex: 42, crc32: first.crc32, offset: 64, bytesMax: 10 });
      expect(Buffer.from(next.data)).toEqual(body.subarray(64, 74));
      expect(ask({ minIndex: 42, crc32: first.crc32, offset: body.length, bytesMax: 10 }).data.length).toBe(0);
      expect(ask({ minIndex: 43, crc32: 0, offset: 0, bytesMax: 10 }).status).toBe(Status.Unavailable);
      expect(behind).toBe(2);
      file.write({ ...state, index: 50 });
      expect(ask({ minIndex: 42, crc32: first.crc32, offset: 64, bytesMax: 10 }).status).toBe(Status.NotFound);
      // A file with the same gap as the requester's is no use (every replica installed the snapshot): no save asked.
      file.write({ ...state, index: 50, gapThrough: 45 });
      expect(ask({ minIndex: 45, crc32: 0, offset: 0, bytesMax: 10 }).status).toBe(Status.Unavailable);
      expect(behind).toBe(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
