import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { Opcode, ResponseDecoder, ResponseFlags, WatchEventType, WatchFrameKind, WatchHistoryResult, WatchOptions, encodeRequest, encodeWatchEvents, encodeWatchHistoryReply, encodeWatchSpec, type Response, type WatchEvent } from '@cairn/protocol';
import { Subjects } from '@cairn/messaging';
import { createLogger } from '@cairn/logging';
import type { Transport, TransportMsg } from '@cairn/world';
import type { ClusterView } from '../cluster/cluster-view';
import type { ReadPath } from '../paths/read-path';
import type { WritePath } from '../paths/write-path';
import { WatchHub } from '../watch/watch-hub';
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
  const view = { liveStorageNodes: () => [{ id: 's1', appliedIndex: 0 }] } as unknown as ClusterView;
  const log = createLogger('test', 'silent');
  const hub = new WatchHub(bus, new Subjects('t'), view, { watchesPerConnectionMax: 16, watchersMax: 16, watchQueueBytesMax: 64 << 20, watchQueueEventsMax: 1_000_000, watchProgressIntervalMs: 3_600_000, readTimeoutMs: 3000 }, log);
  hub.start();
  const never = () => new Promise<never>(() => undefined);
  const server = new TcpServer(
    { limits: { keyBytesMax: 64, valueBytesMax: 64 }, inflightMax: 64, flow: testFlowLimits({ connectionReplyBytesMax }), budget: new ByteBudget(budgetBytes), connectionsMax: 8, drainTimeoutMs: 1000, reads: { get: never } as unknown as ReadPath, writes: { submit: never } as unknown as WritePath, status: () => ({}), watches: { hub, perConnectionMax: 16 } },
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

/** A client socket that opens one prefix watch on `w/` (request id 1), waits for its OK answer and records every frame it reads. */
async function watchClient(port: number) {
  const socket: Socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const decoder = new ResponseDecoder();
  const frames: Response[] = [];
  socket.on('data', (chunk: Buffer) => frames.push(...decoder.push(chunk)));
  socket.write(encodeRequest({ opcode: Opcode.Watch, requestId: 1, flags: 0, key: Buffer.from('w/'), value: encodeWatchSpec({ options: WatchOptions.Prefix, startRevision: 0 }) }));
  await until(() => frames.length > 0);
  return { socket, frames };
}

describe('TLV door: watches and the gateway byte budget', () => {
  it('a watch whose connection does not read is cancelled SLOW once its frames would take the gateway past pendingBytesMax; a reading connection keeps its watch and every event', async () => {
    const { hub, server, publish } = await start(2 * 1024 * 1024, 64 * 1024);
    const reading = await watchClient(server.port());
    const stalled = await watchClient(server.port());
    stalled.socket.pause(); // the kernel buffers fill, then the gateway holds its frames
    expect(hub.size()).toBe(2);
    await new Promise((r) => setImmediate(r)); // both history pages answered: the watches are live
    try {
      let published = 0;
      // Each message 8 × 32 KiB; the stalled socket's kernel buffers take a few MB first.
      while (hub.size() === 2 && published < 4000) {
        publish(8);
        published += 8;
        await new Promise((r) => setImmediate(r));
      }
      expect(hub.size()).toBe(1);
      // The reading connection got every event, in order, and no CANCELED frame.
      await until(() => reading.frames.filter((f) => f.flags & ResponseFlags.Watch).reduce((n, f) => n + f.payload.readUInt32BE(1), 0) === published);
      expect(reading.frames.some((f) => f.payload[0] === WatchFrameKind.Canceled)).toBe(false);
      // The stalled one, once it reads, finds the CANCELED SLOW frame after the events it was sent.
      stalled.socket.resume();
      await until(() => stalled.frames.some((f) => f.payload[0] === WatchFrameKind.Canceled));
      const canceled = stalled.frames.find((f) => f.payload[0] === WatchFrameKind.Canceled)!;
      expect(canceled.payload.subarray(10).toString()).toMatch(/gateway\.pendingBytesMax/);
    } finally {
      reading.socket.destroy();
      stalled.socket.destroy();
      hub.stop();
      await server.close();
    }
  });
});
