import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ProtocolError } from './constants';
import {
  WATCH_FRAME_IDS_MAX,
  WatchFrameKind,
  WatchOptions,
  WatchEventType,
  decodeWatchFrame,
  decodeWatchSpec,
  decodeWatchInterest,
  encodeWatchInterest,
  WATCH_INTEREST_TYPE,
  encodeWatchEventsFrame,
  encodeWatchSharedEventsFrame,
  encodeWatchSharedEventsFrameInto,
  watchSharedEventsFrameBytes,
  type WatchEvent,
} from './watch';

const vectors = JSON.parse(readFileSync(join(__dirname, '..', 'test-vectors', 'client-v1.json'), 'utf8')) as { name: string; expect: { payloadHex?: string; valueHex?: string }[] }[];
const payloadOf = (name: string) => Buffer.from(vectors.find((v) => v.name === name)!.expect[0].payloadHex!, 'hex');

/** The two events of the vectors response/watch-events and response/watch-shared-events. */
const EVENTS: WatchEvent[] = [
  { type: WatchEventType.Put, key: Buffer.from('user/a'), value: Buffer.from('1'), modRevision: 43, createRevision: 43, version: 1, prevValue: null },
  { type: WatchEventType.Delete, key: Buffer.from('user/b'), value: Buffer.alloc(0), modRevision: 44, createRevision: 0, version: 0, prevValue: Buffer.from('x') },
];

describe('SHARED_EVENTS watch frames (docs/protocol.md "WATCH")', () => {
  it('the test vectors: EVENTS and SHARED_EVENTS carry the same events, the shared one with its watch ids', () => {
    const plain = decodeWatchFrame(payloadOf('response/watch-events'));
    const shared = decodeWatchFrame(payloadOf('response/watch-shared-events'));
    expect(plain).toEqual({ kind: WatchFrameKind.Events, events: EVENTS });
    expect(shared).toEqual({ kind: WatchFrameKind.SharedEvents, watchIds: [20, 24], events: EVENTS });
    expect(encodeWatchEventsFrame(EVENTS)).toEqual(payloadOf('response/watch-events'));
    expect(encodeWatchSharedEventsFrame([20, 24], EVENTS)).toEqual(payloadOf('response/watch-shared-events'));
  });

  it('the request vector sets option SHARED_FRAMES (0x04), which a WATCH spec accepts', () => {
    const value = Buffer.from(vectors.find((v) => v.name === 'request/watch-prefix-shared')!.expect[0].valueHex!, 'hex');
    expect(decodeWatchSpec(value).options).toBe(WatchOptions.Prefix | WatchOptions.SharedFrames);
    expect(() => decodeWatchSpec(Buffer.from('0800000000000000000000', 'hex'))).toThrow(/unknown WATCH option bits 0x8/);
  });

  it('is written from an encoded EVENTS payload: the events bytes are copied, not encoded again', () => {
    const eventsFrame = encodeWatchEventsFrame(EVENTS);
    const buf = Buffer.alloc(3 + watchSharedEventsFrameBytes(3, eventsFrame.length));
    const n = encodeWatchSharedEventsFrameInto([7, 8, 9], eventsFrame, buf, 3);
    expect(n).toBe(buf.length - 3);
    expect(buf.subarray(3 + 1 + 2 + 12)).toEqual(eventsFrame.subarray(1));
    expect(decodeWatchFrame(buf.subarray(3))).toEqual({ kind: WatchFrameKind.SharedEvents, watchIds: [7, 8, 9], events: EVENTS });
    expect(() => encodeWatchSharedEventsFrameInto([], eventsFrame, buf, 0)).toThrow(RangeError);
    expect(() => encodeWatchSharedEventsFrameInto(Array.from({ length: WATCH_FRAME_IDS_MAX + 1 }, (_, i) => i), eventsFrame, Buffer.alloc(8192), 0)).toThrow(RangeError);
  });

  it('refuses 0 ids, more than WATCH_FRAME_IDS_MAX, an id listed twice, truncation and trailing bytes', () => {
    const good = encodeWatchSharedEventsFrame([1, 2], EVENTS);
    const zero = Buffer.from(good);
    zero.writeUInt16BE(0, 1);
    expect(() => decodeWatchFrame(zero)).toThrow(/names 0 watches/);
    const many = Buffer.from(good);
    many.writeUInt16BE(WATCH_FRAME_IDS_MAX + 1, 1);
    expect(() => decodeWatchFrame(many)).toThrow(ProtocolError);
    expect(() => decodeWatchFrame(encodeWatchSharedEventsFrame([5, 5], EVENTS))).toThrow(/twice/);
    expect(() => decodeWatchFrame(good.subarray(0, good.length - 1))).toThrow(ProtocolError);
    expect(() => decodeWatchFrame(Buffer.concat([good, Buffer.from([0])]))).toThrow(ProtocolError);
    // The largest id list decodes.
    const ids = Array.from({ length: WATCH_FRAME_IDS_MAX }, (_, i) => 0xffff_ffff - i);
    const max = decodeWatchFrame(encodeWatchSharedEventsFrame(ids, []));
    expect(max.kind === WatchFrameKind.SharedEvents && max.watchIds).toEqual(ids);
  });
});

describe('WatchInterest (gateway → storage node, docs/protocol.md "Internal messages")', () => {
  it('is header(43) | u32 forMs and round-trips; a wrong type, truncation and trailing bytes are refused', () => {
    const b = encodeWatchInterest({ forMs: 3000 });
    expect(b.toString('hex')).toBe('2b0100000bb8');
    expect(b[0]).toBe(WATCH_INTEREST_TYPE);
    expect(decodeWatchInterest(b)).toEqual({ forMs: 3000 });
    expect(() => decodeWatchInterest(b.subarray(0, 5))).toThrow(ProtocolError);
    expect(() => decodeWatchInterest(Buffer.concat([b, Buffer.from([0])]))).toThrow(ProtocolError);
    expect(() => decodeWatchInterest(Buffer.from([42, 1, 0, 0, 0, 0]))).toThrow(ProtocolError);
  });
});
