import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { Opcode, ResponseDecoder, ResponseFlags, WatchEventType, WatchFrameKind, WatchHistoryResult, WatchOptions, decodeWatchFrame, encodeRequest, encodeWatchEvents, encodeWatchHistoryReply, encodeWatchSpec, type Response, type WatchEvent } from '@cairn/protocol';
import { Subjects } from '@cairn/messaging';
import { createLogger } from '@cairn/logging';
import type { Transport, TransportMsg } from '@cairn/world';
import { WatchHub, type WatchHubView } from '../watch/watch-hub';
import { TcpServer } from './tcp-server';
import { ByteBudget } from './flow';
import { testFlowLimits, until } from './testing';

/** A TLV door with a real WatchHub over a bus the test publishes WatchEvents on by hand (one storage node, empty history). */
async function start(budgetBytes: number, connectionReplyBytesMax: number) {
  let onWatch: ((msg: TransportMsg) => void) | null = null;
  const msg = (data: Uint8Array): TransportMsg => ({ subject: 'watch.s1', data, respond: () => true });
  const bus: Transport = {
    maxPayloadBytes: () => 1 << 20,
    publish: () => undefined,
    subscribe: (_subject, cb) => ((onWatch = cb), { unsubscribe: () => (onWatch = null) }),
    request: () => Promise.resolve(msg(encodeWatchHistoryReply({ result: WatchHistoryResult.Ok, oldestRevision: 1, lastRevision: 0, nextRevision: 1, message: '', events: [] }))),
  };
  const view = { liveStorageNodes: () => [{ id: 's1', appliedIndex: 0 }] } satisfies WatchHubView;
  const log = createLogger('test', 'silent');
  const hub = new WatchHub(bus, new Subjects('t'), view, { watchesPerConnectionMax: 16, watchersMax: 16, watchQueueBytesMax: 64 << 20, watchQueueEventsMax: 1_000_000, watchProgressIntervalMs: 3_600_000, readTimeoutMs: 3000 }, log);
  hub.start();
  const never = () => new Promise<never>(() => undefined);
  const server = new TcpServer(
    { limits: { keyBytesMax: 64, valueBytesMax: 64 }, inflightMax: 64, flow: testFlowLimits({ connectionReplyBytesMax }), budget: new ByteBudget(budgetBytes), connectionsMax: 8, drainTimeoutMs: 1000, reads: { get: never }, writes: { submit: never }, status: () => ({}), watches: { hub, perConnectionMax: 16 } },
    log,
  );
  await server.listen('127.0.0.1', 0);
  let rev = 0;
  const value = Buffer.alloc(32 * 1024, 'v');
  /** One WatchEvents message of `n` PUTs on `w/…`, chained to the last. */
  const publish = (n: number) => {
    const events: WatchEvent[] = [];
    for (let i = 0; i < n; i++) events.push({ type: WatchEventType.Put, key: Buffer.from(`w/${rev + i + 1}`), value, modRevision: rev + i + 1, createRevision: rev + i + 1, version: 1, prevValue: null });
    onWatch!(msg(encodeWatchEvents({ nodeId: 's1', prevRevision: rev, lastRevision: rev + n, events })));
    rev += n;
  };
  return { hub, server, publish };
}

/**
 * A client socket that opens `ids.length` prefix watches on `w/` (those request ids; option
 * SHARED_FRAMES with `shared`), waits for their OK answers and records every frame it reads.
 */
async function watchClient(port: number, ids = [1], shared = false) {
  const socket: Socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const decoder = new ResponseDecoder();
  const frames: Response[] = [];
  socket.on('data', (chunk: Buffer) => frames.push(...decoder.push(chunk)));
  const options = WatchOptions.Prefix | (shared ? WatchOptions.SharedFrames : 0);
  for (const requestId of ids) socket.write(encodeRequest({ opcode: Opcode.Watch, requestId, flags: 0, key: Buffer.from('w/'), value: encodeWatchSpec({ options, startRevision: 0 }) }));
  await until(() => frames.length >= ids.length);
  return { socket, frames };
}

/** Events the watch `id` got in `frames`: from its EVENTS frames and the SHARED_EVENTS frames naming it. */
function eventsOf(frames: Response[], id: number): number[] {
  const out: number[] = [];
  for (const f of frames) {
    if (!(f.flags & ResponseFlags.Watch)) continue;
    const d = decodeWatchFrame(f.payload);
    if ((d.kind === WatchFrameKind.Events && f.requestId === id) || (d.kind === WatchFrameKind.SharedEvents && d.watchIds.includes(id))) out.push(...d.events.map((e) => e.modRevision));
  }
  return out;
}

describe('TLV door: watches and the gateway byte budget', () => {
  it.each([
    ['EVENTS frames', false],
    ['SHARED_EVENTS frames (3 watches a connection)', true],
  ])('%s: a watch whose connection does not read is cancelled SLOW once its frames would take the gateway past pendingBytesMax; a reading connection keeps its watch and every event', async (_name, shared) => {
    const { hub, server, publish } = await start(2 * 1024 * 1024, 64 * 1024);
    const ids = shared ? [1, 2, 3] : [1];
    const reading = await watchClient(server.port(), ids, shared);
    const stalled = await watchClient(server.port(), ids, shared);
    stalled.socket.pause(); // the kernel buffers fill, then the gateway holds its frames
    expect(hub.size()).toBe(2 * ids.length);
    await new Promise((r) => setImmediate(r)); // every history page answered: the watches are live
    try {
      let published = 0;
      // Each message 8 × 32 KiB; the stalled socket's kernel buffers take a few MB first.
      while (hub.size() > ids.length && published < 4000) {
        publish(8);
        published += 8;
        await new Promise((r) => setImmediate(r));
      }
      expect(hub.size()).toBe(ids.length); // every stalled watch was cancelled
      // The reading connection got every event, in order, and no CANCELED frame.
      const all = Array.from({ length: published }, (_, i) => i + 1);
      await until(() => ids.every((id) => eventsOf(reading.frames, id).length === published));
      for (const id of ids) expect(eventsOf(reading.frames, id)).toEqual(all);
      expect(reading.frames.some((f) => f.payload[0] === WatchFrameKind.Canceled)).toBe(false);
      if (shared) expect(reading.frames.some((f) => f.payload[0] === WatchFrameKind.Events)).toBe(false); // 3 watches, always shared
      // The stalled one, once it reads, finds a CANCELED SLOW frame for each watch after the events it was sent.
      stalled.socket.resume();
      await until(() => stalled.frames.filter((f) => f.payload[0] === WatchFrameKind.Canceled).length === ids.length);
      for (const canceled of stalled.frames.filter((f) => f.payload[0] === WatchFrameKind.Canceled)) expect(canceled.payload.subarray(10).toString()).toMatch(/gateway\.pendingBytesMax/);
    } finally {
      reading.socket.destroy();
      stalled.socket.destroy();
      hub.stop();
      await server.close();
    }
  });

  it('watches of one connection opened with SHARED_FRAMES get each message in ONE SHARED_EVENTS frame naming them; a watch without the option gets its own EVENTS frame', async () => {
    const { hub, server, publish } = await start(64 * 1024 * 1024, 1024 * 1024);
    const shared = await watchClient(server.port(), [5, 6, 7], true);
    const plain = await watchClient(server.port(), [9], false);
    await new Promise((r) => setImmediate(r)); // every history page answered: the watches are live
    try {
      publish(2);
      publish(3);
      await until(() => eventsOf(shared.frames, 7).length === 5 && eventsOf(plain.frames, 9).length === 5);
      const watchFrames = shared.frames.filter((f) => f.flags & ResponseFlags.Watch).map((f) => ({ requestId: f.requestId, revision: f.revision, frame: decodeWatchFrame(f.payload) }));
      expect(watchFrames.map((f) => [f.requestId, f.revision, f.frame.kind === WatchFrameKind.SharedEvents ? f.frame.watchIds : null, f.frame.kind === WatchFrameKind.SharedEvents ? f.frame.events.length : 0])).toEqual([
        [5, 2, [5, 6, 7], 2],
        [5, 5, [5, 6, 7], 3],
      ]);
      for (const id of [5, 6, 7]) expect(eventsOf(shared.frames, id)).toEqual([1, 2, 3, 4, 5]);
      expect(plain.frames.filter((f) => f.flags & ResponseFlags.Watch).map((f) => [f.requestId, f.payload[0]])).toEqual([
        [9, WatchFrameKind.Events],
        [9, WatchFrameKind.Events],
      ]);
    } finally {
      shared.socket.destroy();
      plain.socket.destroy();
      hub.stop();
      await server.close();
    }
  });
});
