import { WatchCancelReason, WatchEventType, type WatchEvent } from '@cairn/protocol';
import { ClusterView } from '../cluster/cluster-view';
import { GatewayMetrics } from '../metrics/gateway-metrics';
import { memoryKv } from '../paths/testing';
import { Watcher, type WatchHub, type WatchRequest, type WatchSink } from '../watch/watch-hub';
import { HttpApi } from './http-api';
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

describe('GET /v1/watch (HttpApi with a stand-in hub)', () => {
  const opened: { req: WatchRequest; sink: WatchSink; watcher: Watcher; canceled: boolean }[] = [];
  let onOpen: () => void = () => undefined;
  const hub = {
    open(req: WatchRequest, sink: WatchSink) {
      const revision = req.startRevision > 0 ? req.startRevision - 1 : 41;
      const watcher = new Watcher(req, sink, revision + 1, 0);
      opened.push({ req, sink, watcher, canceled: false });
      onOpen();
      return { watcher, revision };
    },
    cancel(w: Watcher) {
      opened.find((o) => o.watcher === w)!.canceled = true;
    },
  } satisfies Pick<WatchHub, 'open' | 'cancel'>;
  let api: HttpApi;
  let base: string;

  beforeEach(async () => {
    const view = new ClusterView(() => 0);
    const kv = memoryKv();
    api = new HttpApi({ gatewayId: 'g1', paths: { reads: { get: async (key) => kv.get(key) }, writes: { submit: async (c) => kv.submit(c) }, limits: { keyBytesMax: 64, valueBytesMax: 1024 } }, view, metrics: new GatewayMetrics(view), watches: hub });
    await api.listen('127.0.0.1', 0);
    base = `http://127.0.0.1:${api.port()}`;
  });

  afterEach(async () => {
    await api.close();
  });

  it('400 without key or prefix, 413 over keyBytesMax', async () => {
    expect((await fetch(`${base}/v1/watch`)).status).toBe(400);
    expect((await fetch(`${base}/v1/watch?key=a&prefix=b`)).status).toBe(400);
    expect((await fetch(`${base}/v1/watch?key=a&rev=0`)).status).toBe(400);
    expect((await fetch(`${base}/v1/watch?key=${'k'.repeat(65)}`)).status).toBe(413);
  });

  it('streams the sink’s frames, resumes from Last-Event-ID + 1, ends with the cancel event; write callbacks are the hub’s flushes; a closed client cancels its watch', async () => {
    const open = new Promise<void>((r) => (onOpen = r));
    const res = await fetch(`${base}/v1/watch?prefix=p%2F&rev=3&prevValue=true`, { headers: { 'Last-Event-ID': '7' } });
    await open;
    const w = opened[opened.length - 1];
    expect(w.req).toMatchObject({ start: Buffer.from('p/'), end: Buffer.from('p0'), startRevision: 8, prevValue: true });
    expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(res.headers.get('x-cairn-watch-revision')).toBe('7');
    let flushed = 0;
    w.sink.events([ev('p/a', 8)], 8, () => flushed++);
    w.sink.progress(9);
    w.sink.canceled(WatchCancelReason.Slow, 0, 'watch cancelled: too slow');
    const text = await res.text(); // the stream ends after the cancel event
    expect(text).toBe(
      ': watching from revision 8\n\n' +
        'id: 8\nevent: put\ndata: {"type":"put","key":"p/a","value":"v","modRevision":8,"createRevision":8,"version":1}\n\n' +
        'id: 9\nevent: progress\ndata: {"revision":9}\n\n' +
        'event: cancel\ndata: {"reason":"SLOW","oldestRevision":0,"message":"watch cancelled: too slow"}\n\n',
    );
    expect(flushed).toBe(1);

    const ac = new AbortController();
    const open2 = new Promise<void>((r) => (onOpen = r));
    const res2 = await fetch(`${base}/v1/watch?key=k`, { signal: ac.signal });
    await open2;
    expect(opened[opened.length - 1].req).toMatchObject({ start: Buffer.from('k'), end: Buffer.from('k\0'), startRevision: 0 });
    expect(res2.status).toBe(200);
    ac.abort();
    await new Promise<void>((resolve) => {
      const check = () => (opened[opened.length - 1].canceled ? resolve() : setImmediate(check));
      check();
    });
  });
});
