import { WatchEventType, type WatchEvent } from '@cairn/protocol';
import { sseEvents } from './watch.controller';

const ev = (key: string | Buffer, rev: number, prev: string | null = null): WatchEvent => ({ type: WatchEventType.Put, key: Buffer.from(key), value: Buffer.from('v'), modRevision: rev, createRevision: rev, version: 1, prevValue: prev === null ? null : Buffer.from(prev) });

describe('sseEvents', () => {
  it('puts id: (the revision) only on the last event of each revision, so Last-Event-ID never names a revision half received', () => {
    const text = sseEvents([ev('a', 5), ev('b', 5, 'old'), ev('c', 6)]);
    expect(text).toBe(
      'event: put\ndata: {"type":"put","key":"a","value":"v","modRevision":5,"createRevision":5,"version":1}\n\n' +
        'id: 5\nevent: put\ndata: {"type":"put","key":"b","value":"v","modRevision":5,"createRevision":5,"version":1,"prevValue":"old"}\n\n' +
        'id: 6\nevent: put\ndata: {"type":"put","key":"c","value":"v","modRevision":6,"createRevision":6,"version":1}\n\n',
    );
  });

  it('sends bytes that are not UTF-8 as base64 fields', () => {
    const text = sseEvents([{ ...ev(Buffer.from([0xff, 0x00]), 7), type: WatchEventType.Delete, value: Buffer.alloc(0), createRevision: 0, version: 0 }]);
    expect(text).toBe('id: 7\nevent: delete\ndata: {"type":"delete","keyBase64":"/wA=","value":"","modRevision":7,"createRevision":0,"version":0}\n\n');
  });
});
