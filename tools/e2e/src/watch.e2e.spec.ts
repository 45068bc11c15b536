import { readFileSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { LocalCluster } from '@cairn/cluster';
import {
  Opcode,
  ResponseDecoder,
  ResponseFlags,
  Status,
  WatchCancelReason,
  WatchEventType,
  WatchFrameKind,
  WatchOptions,
  decodeWatchFrame,
  encodeRequest,
  encodeWatchCancel,
  encodeWatchSpec,
  type Response,
  type WatchFrame,
} from '@cairn/protocol';
import { writeTestConfig } from './fixtures';

/**
 * Watch on the TLV door end to end (docs/watch.md): real processes, 2 storage nodes each
 * publishing its applied events, one gateway fanning them out. Events carry the revisions the
 * writes were answered with; a watch from an old revision replays the history without gap or
 * duplicate; a compacted revision gets COMPACTED naming the oldest available; an idle watch gets
 * progress notifications; several watches share a connection.
 */
describe('watch end to end (TLV door)', () => {
  let cluster: LocalCluster;
  let port: number;
  const revisionsMax = 40;

  beforeAll(async () => {
    const cfg = await writeTestConfig();
    const config = JSON.parse(readFileSync(cfg.configPath, 'utf8'));
    config.storage.watchHistoryRevisionsMax = revisionsMax;
    config.gateway.watchProgressIntervalMs = 200;
    writeFileSync(cfg.configPath, JSON.stringify(config, null, 2));
    port = cfg.gatewayPort;
    cluster = await LocalCluster.start({ configPath: cfg.configPath });
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  /** A raw TLV connection: every response, and a wait for one that matches. */
  class Conn {
    readonly responses: Response[] = [];
    private waiters: (() => void)[] = [];
    private nextId = 1;
    private constructor(readonly socket: Socket) {
      const decoder = new ResponseDecoder();
      socket.on('data', (chunk: Buffer) => {
        this.responses.push(...decoder.push(chunk));
        for (const w of this.waiters.splice(0)) w();
      });
      socket.on('error', () => undefined);
    }
    static async open(): Promise<Conn> {
      const socket = connect(port, '127.0.0.1');
      await once(socket, 'connect');
      return new Conn(socket);
    }
    async until<T>(pick: (rs: Response[]) => T | undefined): Promise<T> {
      for (;;) {
        const got = pick(this.responses);
        if (got !== undefined) return got;
        await new Promise<void>((r) => this.waiters.push(r));
      }
    }
    async call(opcode: Opcode, key: string | Buffer, value: Buffer = Buffer.alloc(0)): Promise<Response> {
      const requestId = this.nextId++;
      this.socket.write(encodeRequest({ opcode, requestId, flags: 0, key: Buffer.from(key), value }));
      return this.until((rs) => rs.find((r) => r.requestId === requestId && (r.flags & ResponseFlags.Watch) === 0));
    }
    /** Frames of watch `id` so far: its own, and the SHARED_EVENTS frames that name it. */
    frames(id: number): (WatchFrame & { revision: number })[] {
      return this.responses
        .filter((r) => r.flags & ResponseFlags.Watch)
        .map((r) => ({ ...decodeWatchFrame(r.payload), revision: r.revision, requestId: r.requestId }))
        .filter((f) => (f.kind === WatchFrameKind.SharedEvents ? f.watchIds.includes(id) : f.requestId === id));
    }
    close(): void {
      this.socket.destroy();
    }
  }

  const show = (fs: WatchFrame[]) =>
    fs.flatMap((f) => (f.kind === WatchFrameKind.Events || f.kind === WatchFrameKind.SharedEvents ? f.events.map((e) => `${e.type === WatchEventType.Put ? 'PUT' : 'DEL'} ${Buffer.from(e.key).toString()}=${Buffer.from(e.value).toString()}@${e.modRevision} prev=${e.prevValue ? Buffer.from(e.prevValue).toString() : '-'}`) : []));
  const eventCount = (fs: WatchFrame[]) => show(fs).length;

  it('streams PUT/DELETE events of a prefix and a key on one connection, replays them from a past revision, and sends progress when idle', async () => {
    const w = await Conn.open();
    const c = await Conn.open();
    try {
      const prefixWatch = await w.call(Opcode.Watch, 'p/', encodeWatchSpec({ options: WatchOptions.Prefix | WatchOptions.PrevValue }));
      expect(prefixWatch.status).toBe(Status.Ok);
      const keyWatch = await w.call(Opcode.Watch, 'p/b', encodeWatchSpec({}));
      expect(keyWatch.status).toBe(Status.Ok);
      const r1 = (await c.call(Opcode.Set, 'p/a', Buffer.from('1'))).revision;
      const r2 = (await c.call(Opcode.Set, 'p/b', Buffer.from('2'))).revision;
      await c.call(Opcode.Set, 'other', Buffer.from('x'));
      const r3 = (await c.call(Opcode.Set, 'p/a', Buffer.from('3'))).revision;
      const r4 = (await c.call(Opcode.Del, 'p/a')).revision;
      const want = [`PUT p/a=1@${r1} prev=-`, `PUT p/b=2@${r2} prev=-`, `PUT p/a=3@${r3} prev=1`, `DEL p/a=@${r4} prev=3`];
      await w.until(() => (eventCount(w.frames(prefixWatch.requestId)) >= 4 ? true : undefined));
      expect(show(w.frames(prefixWatch.requestId))).toEqual(want);
      expect(show(w.frames(keyWatch.requestId))).toEqual([`PUT p/b=2@${r2} prev=-`]);

      // Resumed from a past revision (as after a disconnect): the history, no gap, no duplicate.
      const again = await w.call(Opcode.Watch, 'p/', encodeWatchSpec({ options: WatchOptions.Prefix | WatchOptions.PrevValue, startRevision: r2 }));
      expect(again.revision).toBe(r2 - 1);
      await w.until(() => (eventCount(w.frames(again.requestId)) >= 3 ? true : undefined));
      const r5 = (await c.call(Opcode.Set, 'p/c', Buffer.from('5'))).revision;
      await w.until(() => (eventCount(w.frames(again.requestId)) >= 4 ? true : undefined));
      expect(show(w.frames(again.requestId))).toEqual([...want.slice(1), `PUT p/c=5@${r5} prev=-`]);

      // Idle: a progress notification names the revision seen up to.
      const progress = await w.until(() => w.frames(keyWatch.requestId).find((f) => f.kind === WatchFrameKind.Progress && f.revision >= r5));
      expect(progress.revision).toBeGreaterThanOrEqual(r5);

      // WATCH_CANCEL: OK, then the watch's CANCELED frame; a second cancel is NOT_FOUND.
      expect((await w.call(Opcode.WatchCancel, '', encodeWatchCancel(keyWatch.requestId))).status).toBe(Status.Ok);
      const canceled = await w.until(() => w.frames(keyWatch.requestId).find((f) => f.kind === WatchFrameKind.Canceled));
      expect(canceled.kind === WatchFrameKind.Canceled && canceled.reason).toBe(WatchCancelReason.Client);
      expect((await w.call(Opcode.WatchCancel, '', encodeWatchCancel(keyWatch.requestId))).status).toBe(Status.NotFound);

      // Two watches of one connection opened with SHARED_FRAMES on one prefix: once both are live at
      // the same revision, a message's events are the same for both and come in ONE SHARED_EVENTS
      // frame naming both (before, e.g. while a watch pages the history, each may get its own
      // frames). Write until one has come; both saw exactly the writes, in order.
      const options = WatchOptions.Prefix | WatchOptions.SharedFrames;
      const [sharedA, sharedB] = [await w.call(Opcode.Watch, 's/', encodeWatchSpec({ options })), await w.call(Opcode.Watch, 's/', encodeWatchSpec({ options }))];
      expect([sharedA.status, sharedB.status]).toEqual([Status.Ok, Status.Ok]);
      const namesBoth = () => w.frames(sharedA.requestId).some((f) => f.kind === WatchFrameKind.SharedEvents && f.watchIds.includes(sharedB.requestId));
      const written: string[] = [];
      for (let i = 0; !namesBoth(); i++) {
        expect(i).toBeLessThan(50);
        const r = (await c.call(Opcode.Set, 's/k', Buffer.from(String(i)))).revision;
        written.push(`PUT s/k=${i}@${r} prev=-`);
        await w.until(() => ([sharedA, sharedB].every((x) => eventCount(w.frames(x.requestId)) >= written.length) ? true : undefined));
      }
      expect(show(w.frames(sharedA.requestId))).toEqual(written);
      expect(show(w.frames(sharedB.requestId))).toEqual(written);
      expect(w.frames(prefixWatch.requestId).every((f) => f.kind !== WatchFrameKind.SharedEvents)).toBe(true); // opened without the option
    } finally {
      w.close();
      c.close();
    }
  });

  it('a watch from a revision the history no longer holds gets COMPACTED naming the oldest available, and a watch from that one starts', async () => {
    const c = await Conn.open();
    try {
      let last = 0;
      for (let i = 0; i < revisionsMax + 10; i++) last = (await c.call(Opcode.Set, `fill/${i % 5}`, Buffer.from(String(i)))).revision;
      // Storage nodes trim their history on their status tick (1 s): ask until it has happened.
      let oldest = 0;
      for (let id = 0; oldest === 0; ) {
        const watch = await c.call(Opcode.Watch, 'fill/', encodeWatchSpec({ options: WatchOptions.Prefix, startRevision: 1 }));
        id = watch.requestId;
        const end = await c.until(() => {
          const fs = c.frames(id);
          return fs.find((f) => f.kind === WatchFrameKind.Canceled) ?? (eventCount(fs) > 0 ? fs[0] : undefined);
        });
        if (end.kind === WatchFrameKind.Canceled) {
          expect(end.reason).toBe(WatchCancelReason.Compacted);
          expect(end.message).toMatch(/COMPACTED/);
          oldest = end.oldestRevision;
        } else await c.call(Opcode.WatchCancel, '', encodeWatchCancel(id));
      }
      expect(oldest).toBeGreaterThan(1);
      expect(oldest).toBeLessThanOrEqual(last);
      // Each storage node trims on its own 1 s tick after it has applied the writes, so the history
      // may shrink again after the COMPACTED above: a later COMPACTED names a later oldest, and the
      // watch from that one must start (at most one more trim per node once all have applied `last`).
      let from = await c.call(Opcode.Watch, 'fill/', encodeWatchSpec({ options: WatchOptions.Prefix, startRevision: oldest }));
      for (let retries = 0; ; retries++) {
        const id = from.requestId;
        const end = await c.until(() => {
          const fs = c.frames(id);
          return fs.find((f) => f.kind === WatchFrameKind.Canceled) ?? (fs.some((f) => f.kind === WatchFrameKind.Events && f.events.some((e) => e.modRevision === last)) ? fs[0] : undefined);
        });
        if (end.kind !== WatchFrameKind.Canceled) break;
        expect(retries).toBeLessThan(4);
        expect(end.reason).toBe(WatchCancelReason.Compacted);
        expect(end.oldestRevision).toBeGreaterThan(oldest);
        oldest = end.oldestRevision;
        from = await c.call(Opcode.Watch, 'fill/', encodeWatchSpec({ options: WatchOptions.Prefix, startRevision: oldest }));
      }
      const revs = c.frames(from.requestId).flatMap((f) => (f.kind === WatchFrameKind.Events ? f.events.map((e) => e.modRevision) : []));
      expect(revs[0]).toBeGreaterThanOrEqual(oldest);
      expect(new Set(revs).size).toBe(revs.length);
      expect([...revs].sort((a, b) => a - b)).toEqual(revs);
    } finally {
      c.close();
    }
  });
});
