import {
  Opcode,
  ResponseFlags,
  WatchCancelReason,
  WatchEventType,
  WatchOptions,
  decodeWatchCancel,
  decodeWatchSpec,
  encodeWatchCanceledFrame,
  encodeWatchEventsFrame,
  encodeWatchProgressFrame,
  encodeWatchSharedEventsFrame,
  inWatchRange,
  Status,
  prefixEnd,
  singleKeyEnd,
  type Request,
  type WatchEvent,
} from '@cairn/protocol';
import { AbortError, CairnClient, CairnPool, ConnectionClosedError, WatchCompactedError, WatchSlowError, type WatchBatch, type WatchItem } from './index';
import { FakeServer, type FakeConn } from './testing/fake-gateway';

/** A gateway's watch side in miniature: a shared event history; WATCH replays it from the start revision, `publish` streams to open watches. */
class WatchGateway {
  readonly watches: { req: Request; conn: FakeConn; start: Buffer; end: Buffer | null; canceled: boolean }[] = [];
  readonly cancels: number[] = [];
  constructor(
    readonly server: FakeServer,
    readonly history: WatchEvent[],
  ) {
    server.onRequest = (req, conn) => this.onRequest(req, conn);
  }

  /** Answer a WATCH with option SHARED_FRAMES BAD_REQUEST, as a gateway from before it does. */
  refuseShared = false;

  private onRequest(req: Request, conn: FakeConn): void {
    if (req.opcode === Opcode.WatchCancel) {
      const id = decodeWatchCancel(req.value);
      this.cancels.push(id);
      conn.reply(req, {});
      const w = this.watches.find((x) => x.req.requestId === id && x.conn === conn && !x.canceled);
      if (w) this.cancel(w, WatchCancelReason.Client);
      return;
    }
    if (req.opcode !== Opcode.Watch) return conn.reply(req, {});
    const spec = decodeWatchSpec(req.value);
    if (this.refuseShared && spec.options & WatchOptions.SharedFrames) return conn.reply(req, { status: Status.BadRequest, payload: Buffer.from('bad WATCH value: unknown WATCH option bits 0x4') });
    const start = Buffer.from(req.key);
    const end = spec.options & WatchOptions.Prefix ? prefixEnd(start) : spec.end.length ? spec.end : singleKeyEnd(start);
    const w = { req, conn, start, end, canceled: false };
    this.watches.push(w);
    const last = this.history.length ? this.history[this.history.length - 1].modRevision : 0;
    conn.reply(req, { revision: spec.startRevision > 0 ? spec.startRevision - 1 : last });
    if (spec.startRevision > 0) this.send(w, this.history.filter((e) => e.modRevision >= spec.startRevision));
  }

  send(w: WatchGateway['watches'][number], events: WatchEvent[]): void {
    const mine = events.filter((e) => inWatchRange(e.key, w.start, w.end));
    if (mine.length) w.conn.reply(w.req, { flags: ResponseFlags.Watch, revision: mine[mine.length - 1].modRevision, payload: encodeWatchEventsFrame(mine) });
  }

  /** Appends a committed event and streams it to every open watch. */
  publish(e: WatchEvent): void {
    this.history.push(e);
    for (const w of this.watches) if (!w.canceled) this.send(w, [e]);
  }

  /** Streams `events` to the open watches `ids` (on one connection, each opened with SHARED_FRAMES) in ONE SHARED_EVENTS frame. */
  sendShared(ids: number[], events: WatchEvent[]): void {
    const first = this.watches.find((w) => w.req.requestId === ids[0] && !w.canceled)!;
    first.conn.reply(first.req, { flags: ResponseFlags.Watch, revision: events[events.length - 1].modRevision, payload: encodeWatchSharedEventsFrame(ids, events) });
  }

  cancel(w: WatchGateway['watches'][number], reason: WatchCancelReason, oldest = 0): void {
    w.canceled = true;
    w.conn.reply(w.req, { flags: ResponseFlags.Watch, payload: encodeWatchCanceledFrame(reason, oldest, 'test') });
  }

  progress(w: WatchGateway['watches'][number], revision: number): void {
    w.conn.reply(w.req, { flags: ResponseFlags.Watch, revision, payload: encodeWatchProgressFrame() });
  }
}

const put = (key: string, value: string, rev: number, prev: string | null = null): WatchEvent => ({ type: WatchEventType.Put, key: Buffer.from(key), value: Buffer.from(value), modRevision: rev, createRevision: rev, version: 1, prevValue: prev === null ? null : Buffer.from(prev) });
const show = (i: WatchItem) => (i.type === 'progress' ? `progress@${i.revision}` : `${i.type} ${i.key.toString()}=${i.value.toString()}@${i.modRevision}${i.prevValue ? ` prev=${i.prevValue.toString()}` : ''}`);

/** Resolves once `cond()` holds, checked after every I/O turn. */
function until(cond: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const check = () => (cond() ? resolve() : setImmediate(check));
    check();
  });
}

let servers: FakeServer[] = [];
let closers: (() => void)[] = [];

beforeEach(() => {
  servers = [];
  closers = [];
});

afterEach(async () => {
  for (const c of closers) c();
  for (const s of servers) await s.stop().catch(() => undefined);
});

async function gateway(history: WatchEvent[] = []): Promise<WatchGateway> {
  const s = await FakeServer.start();
  servers.push(s);
  return new WatchGateway(s, history);
}

async function client(g: WatchGateway): Promise<CairnClient> {
  const c = await g.server.connect();
  closers.push(() => c.destroy());
  return c;
}

describe('watch (CairnClient)', () => {
  it('yields the events of a prefix in order from a start revision, progress only when asked, and break cancels the watch', async () => {
    const g = await gateway([put('p/a', '1', 1), put('other', 'x', 2), put('p/b', '2', 3)]);
    const c = await client(g);
    const got: string[] = [];
    for await (const ev of c.watch({ prefix: 'p/', startRevision: 2, progress: true, prevValue: true })) {
      got.push(show(ev));
      if (got.length === 1) {
        const w = g.watches[0];
        expect(decodeWatchSpec(w.req.value)).toMatchObject({ options: WatchOptions.Prefix | WatchOptions.PrevValue | WatchOptions.SharedFrames, startRevision: 2 });
        g.publish(put('p/a', '3', 4, '1'));
        g.progress(w, 5);
        g.publish(put('p/c', '4', 6));
      }
      if (got.length === 4) break;
    }
    expect(got).toEqual(['put p/b=2@3', 'put p/a=3@4 prev=1', 'progress@5', 'put p/c=4@6']);
    await until(() => g.cancels.length === 1);
    expect(g.cancels).toEqual([g.watches[0].req.requestId]);
  });

  it('many watches share the connection; a watch from now starts after the OK revision', async () => {
    const g = await gateway([put('a', '1', 1)]);
    const c = await client(g);
    const itA = c.watch({ key: 'a' })[Symbol.asyncIterator]();
    const itB = c.watch({ start: 'b', end: 'c' })[Symbol.asyncIterator]();
    const nextA = itA.next();
    const nextB = itB.next();
    await until(() => g.watches.length === 2);
    g.publish(put('b1', 'x', 2));
    g.publish(put('a', '2', 3));
    expect(show((await nextA).value as WatchItem)).toBe('put a=2@3');
    expect(show((await nextB).value as WatchItem)).toBe('put b1=x@2');
    expect(g.server.conns).toHaveLength(1);
    expect(g.watches[1].conn).toBe(g.watches[0].conn);
    await itA.return(undefined);
    await itB.return(undefined);
  });

  it('COMPACTED is a WatchCompactedError with the oldest revision; SLOW a WatchSlowError with the revision to resume from', async () => {
    const g = await gateway([put('k', '1', 5)]);
    const c = await client(g);
    const compacted = (async () => {
      for await (const _ of c.watch({ key: 'z', startRevision: 1 })) {
        /* no event of z: the gateway cancels first */
      }
    })();
    await until(() => g.watches.length === 1);
    g.cancel(g.watches[0], WatchCancelReason.Compacted, 4);
    const err = await compacted.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WatchCompactedError);
    expect(err).toMatchObject({ code: 'COMPACTED', oldestRevision: 4, requestedRevision: 1 });

    const slow = (async () => {
      for await (const _ of c.watch({ key: 'k', startRevision: 5 })) g.cancel(g.watches[1], WatchCancelReason.Slow);
    })();
    const err2 = await slow.catch((e: unknown) => e);
    expect(err2).toBeInstanceOf(WatchSlowError);
    expect(err2).toMatchObject({ code: 'SLOW', resumeRevision: 6, retryable: true });
  });

  it('re-opens a watch cancelled UNAVAILABLE on the same connection from the last revision seen + 1; a closed connection ends it ConnectionClosedError', async () => {
    const g = await gateway([put('k', '1', 1)]);
    const c = await client(g);
    const got: string[] = [];
    const run = (async () => {
      for await (const ev of c.watch({ key: 'k', startRevision: 1, resumeTimeoutMs: 60_000 })) {
        got.push(show(ev));
        if (got.length === 1) g.cancel(g.watches[0], WatchCancelReason.Unavailable);
        if (got.length === 2) c.destroy();
      }
    })();
    await until(() => g.watches.length === 2);
    expect(decodeWatchSpec(g.watches[1].req.value).startRevision).toBe(2);
    g.publish(put('k', '2', 2));
    await expect(run).rejects.toBeInstanceOf(ConnectionClosedError);
    expect(got).toEqual(['put k=1@1', 'put k=2@2']);
  });

  it('an iterator that does not pull past bufferEventsMax ends WatchSlowError and cancels the watch; abort ends AbortError', async () => {
    const g = await gateway([]);
    const c = await client(g);
    const it = c.watch({ key: 'k', startRevision: 1, bufferEventsMax: 3 })[Symbol.asyncIterator]();
    const first = it.next();
    await until(() => g.watches.length === 1);
    g.publish(put('k', '1', 1));
    expect(show((await first).value as WatchItem)).toBe('put k=1@1');
    // Not pulled: 2, 3, 4 fit the buffer, 5 crosses it.
    for (let r = 2; r <= 6; r++) g.publish(put('k', String(r), r));
    await until(() => g.cancels.length === 1);
    const err = await it.next().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WatchSlowError);
    expect((err as WatchSlowError).resumeRevision).toBe(2);

    const ac = new AbortController();
    const aborted = (async () => {
      for await (const _ of c.watch({ key: 'x', signal: ac.signal })) {
        /* nothing comes */
      }
    })();
    await until(() => g.watches.length === 2);
    ac.abort();
    await expect(aborted).rejects.toBeInstanceOf(AbortError);
    await until(() => g.cancels.length === 2);
  });
});

describe('SHARED_EVENTS frames and watchBatches()', () => {
  it('a shared frame is decoded once: every watch it names gets the same events (one batch per frame), each from its own next revision', async () => {
    const g = await gateway([put('p/a', '1', 1)]);
    const c = await client(g);
    const itA = c.watchBatches({ prefix: 'p/', startRevision: 1 })[Symbol.asyncIterator]();
    const itB = c.watchBatches({ prefix: 'p/' })[Symbol.asyncIterator]();
    const firstA = itA.next();
    const nextB = itB.next();
    await until(() => g.watches.length === 2);
    expect((await firstA).value).toMatchObject({ revision: 1, progress: false, events: [{ modRevision: 1 }] });
    const [a, b] = g.watches.map((w) => w.req.requestId);
    expect(g.watches.map((w) => decodeWatchSpec(w.req.value).options & WatchOptions.SharedFrames)).toEqual([WatchOptions.SharedFrames, WatchOptions.SharedFrames]);
    const nextA = itA.next();
    g.sendShared([a, b], [put('p/b', '2', 2), put('p/c', '3', 2), put('p/d', '4', 3)]);
    const [batchA, batchB] = [(await nextA).value as WatchBatch, (await nextB).value as WatchBatch];
    expect(batchA.events.map((e) => `${e.key.toString()}@${e.modRevision}`)).toEqual(['p/b@2', 'p/c@2', 'p/d@3']);
    expect(batchA).toMatchObject({ revision: 3, progress: false });
    expect(batchB.events).toBe(batchA.events); // decoded once, the same array for both watches
    // A frame whose first revisions a watch already yielded (after a resumption) gives it only the rest.
    const againA = itA.next();
    const againB = itB.next();
    g.sendShared([b, a], [put('p/d', '4', 3), put('p/e', '5', 4)]);
    expect(((await againA).value as WatchBatch).events.map((e) => e.modRevision)).toEqual([4]);
    expect(((await againB).value as WatchBatch).events.map((e) => e.modRevision)).toEqual([4]);
    // The per-event iterator yields the events of a shared frame one by one.
    const itC = c.watch({ prefix: 'p/' })[Symbol.asyncIterator]();
    const c1 = itC.next();
    await until(() => g.watches.length === 3);
    g.sendShared([g.watches[2].req.requestId, a], [put('p/f', '6', 5), put('p/g', '7', 6)]);
    expect(show((await c1).value as WatchItem)).toBe('put p/f=6@5');
    expect(show((await itC.next()).value as WatchItem)).toBe('put p/g=7@6');
    await Promise.all([itA.return(undefined), itB.return(undefined), itC.return(undefined)]);
    await until(() => g.cancels.length === 3);
  });

  it('a malformed SHARED_EVENTS frame (a watch id listed twice) breaks the protocol: the connection closes and its watches end ConnectionClosedError', async () => {
    const g = await gateway([]);
    const c = await client(g);
    const run = (async () => {
      for await (const _ of c.watchBatches({ key: 'k' })) {
        /* nothing valid comes */
      }
    })();
    await until(() => g.watches.length === 1);
    const id = g.watches[0].req.requestId;
    g.sendShared([id, id], [put('k', '1', 1)]);
    await expect(run).rejects.toBeInstanceOf(ConnectionClosedError);
    expect((await c.whenClosed()).message).toMatch(/twice/);
  });

  it('progress notifications are batches with no events, with `progress`; sharedFrames false opens without the option', async () => {
    const g = await gateway([]);
    const c = await client(g);
    const it = c.watchBatches({ key: 'k', progress: true, sharedFrames: false })[Symbol.asyncIterator]();
    const first = it.next();
    await until(() => g.watches.length === 1);
    expect(decodeWatchSpec(g.watches[0].req.value).options).toBe(0);
    g.progress(g.watches[0], 9);
    expect((await first).value).toEqual({ revision: 9, events: [], progress: true });
    await it.return(undefined);
  });

  it('a gateway that refuses SHARED_FRAMES (BAD_REQUEST: from before the option): the watch opens again without it, and that connection is not asked again', async () => {
    const g = await gateway([put('k', '1', 1)]);
    g.refuseShared = true;
    const c = await client(g);
    const got: string[] = [];
    for await (const ev of c.watch({ key: 'k', startRevision: 1 })) {
      got.push(show(ev));
      break;
    }
    expect(got).toEqual(['put k=1@1']);
    const it = c.watch({ key: 'k', startRevision: 1 })[Symbol.asyncIterator]();
    expect(show((await it.next()).value as WatchItem)).toBe('put k=1@1');
    await it.return(undefined);
    expect(g.watches.map((w) => decodeWatchSpec(w.req.value).options)).toEqual([0, 0]); // the refused WATCH opened nothing
    // A watch the gateway refuses for itself still ends BAD_REQUEST.
    const bad = c.watch({ key: 'k', startRevision: 1, sharedFrames: true });
    g.refuseShared = false;
    g.server.onRequest = (req, conn) => conn.reply(req, { status: Status.BadRequest, payload: Buffer.from('no') });
    await expect(bad.next()).rejects.toMatchObject({ status: Status.BadRequest });
  });
});

describe('watch (CairnPool)', () => {
  it('resumes on the other gateway from the last revision seen + 1 when its gateway dies: no gap, no duplicate', async () => {
    const history: WatchEvent[] = [];
    const a = await gateway(history);
    const b = await gateway(history);
    const p = await CairnPool.connect({ gateways: [a, b].map((g) => ({ host: '127.0.0.1', port: g.server.port })), reconnectBackoffBaseMs: 1000, random: () => 0.5 });
    closers.push(() => p.destroy());
    const got: number[] = [];
    const run = (async () => {
      for await (const ev of p.watch({ prefix: '', startRevision: 1 })) {
        if (ev.type === 'progress') continue;
        got.push(ev.modRevision);
        if (got.length === 10) return;
      }
    })();
    await until(() => a.watches.length + b.watches.length === 1);
    const first = a.watches.length ? a : b;
    const other = first === a ? b : a;
    for (let r = 1; r <= 4; r++) first.publish(put(`k${r}`, 'v', r));
    await until(() => got.length === 4);
    // Committed while the watch's gateway dies: the other gateway's history has them.
    history.push(put('k5', 'v', 5), put('k6', 'v', 6));
    await first.server.stop();
    await until(() => other.watches.length === 1);
    expect(decodeWatchSpec(other.watches[0].req.value).startRevision).toBe(5);
    for (let r = 7; r <= 10; r++) other.publish(put(`k${r}`, 'v', r));
    await run;
    expect(got).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });
});
