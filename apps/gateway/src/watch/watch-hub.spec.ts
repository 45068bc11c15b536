import { WATCH_INTEREST_MS, WATCH_INTEREST_REFRESH_MS, WatchCancelReason, WatchEventType, WatchHistoryResult, decodeWatchHistoryRequest, decodeWatchInterest, encodeWatchEvents, encodeWatchHistoryReply, type WatchEvent } from '@cairn/protocol';
import { Subjects } from '@cairn/messaging';
import { SimScheduler, type Transport, type TransportMsg } from '@cairn/world';
import type { Logger } from '@cairn/logging';
import { encodedWatchEventsFrame } from '../server/client-connection';
import { WatchHub, type WatchHubView, type WatchRequest, type WatchSink } from './watch-hub';
import { until } from '../server/testing';

/** A bus with one storage node whose history is empty; the test publishes WatchEvents by hand. */
function fakeBus() {
  let onWatch: ((msg: TransportMsg) => void) | null = null;
  const msg = (data: Uint8Array): TransportMsg => ({ subject: 'x', data, respond: () => true });
  const bus: Transport = {
    maxPayloadBytes: () => 1 << 20,
    publish: () => undefined,
    subscribe: (_subject, cb) => {
      onWatch = cb;
      return { unsubscribe: () => (onWatch = null) };
    },
    request: () => Promise.resolve(msg(encodeWatchHistoryReply({ result: WatchHistoryResult.Ok, oldestRevision: 1, lastRevision: 0, nextRevision: 1, message: '', events: [] }))),
  };
  return {
    bus,
    publish: (prevRevision: number, lastRevision: number, events: WatchEvent[]) => onWatch!(msg(encodeWatchEvents({ nodeId: 's1', prevRevision, lastRevision, events }))),
    publishRaw: (data: Uint8Array) => onWatch!(msg(data)),
  };
}

/** A bus without WatchEvents whose history requests `answer(subject, fromRevision)` answers (an encoded WatchHistoryReply). */
function historyBus(answer: (subject: string, fromRevision: number) => Uint8Array): Transport {
  return {
    maxPayloadBytes: () => 1 << 20,
    publish: () => undefined,
    subscribe: () => ({ unsubscribe: () => undefined }),
    request: (subject, data) => Promise.resolve({ subject, data: answer(subject, decodeWatchHistoryRequest(Buffer.from(data)).fromRevision), respond: () => true }),
  };
}

const put = (key: string, rev: number): WatchEvent => ({ type: WatchEventType.Put, key: Buffer.from(key), value: Buffer.from(`v${rev}`), modRevision: rev, createRevision: rev, version: 1, prevValue: null });
const view = { liveStorageNodes: () => [{ id: 's1', appliedIndex: 0 }] } satisfies WatchHubView;
const log = { warn: () => undefined } satisfies Pick<Logger, 'warn'>;
const limits = { watchesPerConnectionMax: 1024, watchersMax: 100, watchQueueBytesMax: 1 << 20, watchQueueEventsMax: 10_000, watchProgressIntervalMs: 3_600_000, readTimeoutMs: 3000 };

describe('WatchHub fan-out', () => {
  it('watchers on one range get one shared event array per message (its TLV frame encoded once); other ranges and prevValue get their own', async () => {
    const { bus, publish } = fakeBus();
    const hub = new WatchHub(bus, new Subjects('t'), view, limits, log);
    hub.start();
    const got: { name: string; events: WatchEvent[] }[] = [];
    const sink = (name: string): WatchSink => ({ events: (events, _rev, flushed) => (got.push({ name, events }), flushed()), progress: () => undefined, canceled: () => undefined });
    const prefixA: WatchRequest = { start: Buffer.from('a/'), end: Buffer.from('a0'), startRevision: 0, prevValue: false };
    const opened = [hub.open(prefixA, sink('a1')), hub.open({ ...prefixA }, sink('a2')), hub.open({ ...prefixA, prevValue: true }, sink('a-prev')), hub.open({ start: Buffer.from('b/'), end: Buffer.from('b0'), startRevision: 0, prevValue: false }, sink('b'))];
    await new Promise((r) => setImmediate(r)); // the empty history page: every watch goes live
    try {
      publish(0, 2, [put('a/1', 1), put('b/1', 2)]);
      const by = new Map(got.map((g) => [g.name, g.events]));
      expect([...by.keys()].sort()).toEqual(['a-prev', 'a1', 'a2', 'b']);
      expect(by.get('a1')).toBe(by.get('a2'));
      expect(by.get('a1')!.map((e) => Buffer.from(e.key).toString())).toEqual(['a/1']);
      expect(by.get('a-prev')).not.toBe(by.get('a1'));
      expect(by.get('b')!.map((e) => Buffer.from(e.key).toString())).toEqual(['b/1']);
      expect(encodedWatchEventsFrame(by.get('a1')!)).toBe(encodedWatchEventsFrame(by.get('a2')!));
      expect(opened.every((o) => o.watcher.next === 3)).toBe(true);
      // The next message chains: each watch moves on; a watch behind it does not share (it catches up instead).
      got.length = 0;
      publish(2, 3, [put('a/2', 3)]);
      expect(got.map((g) => g.name).sort()).toEqual(['a-prev', 'a1', 'a2']);
      // A message cut at other revisions (another storage node's) overlaps what was delivered:
      // watchers at the same position still share one array, from their position on.
      got.length = 0;
      publish(1, 5, [put('a/1', 2), put('a/2', 3), put('a/3', 4), put('a/4', 5)]);
      const next = new Map(got.map((g) => [g.name, g.events]));
      expect(next.get('a1')).toBe(next.get('a2'));
      expect(next.get('a1')!.map((e) => e.modRevision)).toEqual([4, 5]);
    } finally {
      hub.stop();
    }
  });

  it("a message another storage node already brought is dropped from its head, its events never decoded; a new one that does not decode is dropped with a warning", async () => {
    const { bus, publish, publishRaw } = fakeBus();
    const warned: string[] = [];
    const hub = new WatchHub(bus, new Subjects('t'), view, limits, { warn: (_o: unknown, m?: string) => void warned.push(m ?? '') });
    hub.start();
    const got: number[] = [];
    hub.open({ start: Buffer.from('a/'), end: Buffer.from('a0'), startRevision: 0, prevValue: false }, { events: (events, _rev, flushed) => (got.push(...events.map((e) => e.modRevision)), flushed()), progress: () => undefined, canceled: () => undefined });
    await new Promise((r) => setImmediate(r));
    try {
      publish(0, 2, [put('a/1', 1), put('a/2', 2)]);
      // s2's copy of the same revisions, cut inside its events: a full decode would refuse it.
      const s2 = encodeWatchEvents({ nodeId: 's2', prevRevision: 0, lastRevision: 2, events: [put('a/1', 1), put('a/2', 2)] });
      publishRaw(s2.subarray(0, s2.length - 5));
      expect(warned).toEqual([]);
      const next = encodeWatchEvents({ nodeId: 's2', prevRevision: 2, lastRevision: 3, events: [put('a/3', 3)] });
      publishRaw(next.subarray(0, next.length - 5));
      expect(warned).toEqual(['malformed WatchEvents message dropped']);
      expect(got).toEqual([1, 2]);
    } finally {
      hub.stop();
    }
  });

  it("a watch whose connection refuses more (it holds its replies and the gateway is at pendingBytesMax) is cancelled SLOW, its first frame too; watches on other connections go on", async () => {
    const { bus, publish } = fakeBus();
    const hub = new WatchHub(bus, new Subjects('t'), view, limits, log);
    hub.start();
    const full = new Set<string>();
    const got: { name: string; revs: number[] }[] = [];
    const canceled: { name: string; reason: WatchCancelReason; message: string }[] = [];
    const sink = (name: string, conn: string): WatchSink => ({
      events: (events, _rev, flushed) => (got.push({ name, revs: events.map((e) => e.modRevision) }), flushed()),
      refused: () => full.has(conn),
      progress: () => undefined,
      canceled: (reason, _oldest, message) => canceled.push({ name, reason, message }),
    });
    const a: WatchRequest = { start: Buffer.from('a/'), end: Buffer.from('a0'), startRevision: 0, prevValue: false };
    hub.open(a, sink('x1', 'x'));
    hub.open({ ...a }, sink('x2', 'x'));
    hub.open({ ...a }, sink('y1', 'y'));
    await new Promise((r) => setImmediate(r));
    try {
      publish(0, 1, [put('a/1', 1)]);
      full.add('x');
      publish(1, 2, [put('a/2', 2)]);
      expect(canceled.map((c) => [c.name, c.reason])).toEqual([
        ['x1', WatchCancelReason.Slow],
        ['x2', WatchCancelReason.Slow],
      ]);
      expect(canceled[0].message).toMatch(/gateway\.pendingBytesMax; resume from revision 2/);
      expect(got.filter((g) => g.revs[0] === 2).map((g) => g.name)).toEqual(['y1']);
      expect(hub.size()).toBe(1);
    } finally {
      hub.stop();
    }
  });

  it('a node that trimmed further answers COMPACTED: the watch is served by a node that still holds the revision, or cancelled naming the smallest oldest', async () => {
    const reply = (node: string, from: number) => {
      const oldest = node === 's1' ? 16 : 12; // s1 is the most advanced and trimmed further
      if (from < oldest) return encodeWatchHistoryReply({ result: WatchHistoryResult.Compacted, oldestRevision: oldest, lastRevision: 20, nextRevision: 0, message: `${node} holds ${oldest}..20`, events: [] });
      return encodeWatchHistoryReply({ result: WatchHistoryResult.Ok, oldestRevision: oldest, lastRevision: 20, nextRevision: 21, message: '', events: [put('a/x', 20)] });
    };
    const asked: string[] = [];
    const bus = historyBus((subject, from) => {
      const node = subject.endsWith('s1') ? 's1' : 's2';
      asked.push(node);
      return reply(node, from);
    });
    const twoNodes = { liveStorageNodes: () => [{ id: 's1', appliedIndex: 20 }, { id: 's2', appliedIndex: 20 }] } satisfies WatchHubView;
    const hub = new WatchHub(bus, new Subjects('t'), twoNodes, limits, log);
    hub.start();
    const seen: { events: number[]; canceled: number | null }[] = [];
    const sink = (i: number): WatchSink => ({
      events: (events, _rev, flushed) => (seen[i].events.push(...events.map((e) => e.modRevision)), flushed()),
      progress: () => undefined,
      canceled: (_reason, oldest) => (seen[i].canceled = oldest),
    });
    const a: WatchRequest = { start: Buffer.from('a/'), end: Buffer.from('a0'), startRevision: 12, prevValue: false };
    try {
      seen.push({ events: [], canceled: null }, { events: [], canceled: null });
      hub.open(a, sink(0));
      hub.open({ ...a, startRevision: 5 }, sink(1));
      for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
      expect(seen[0]).toEqual({ events: [20], canceled: null });
      expect(seen[1].canceled).toBe(12);
      expect(asked).toContain('s2');
    } finally {
      hub.stop();
    }
  });

  it('catching-up watchers on one range at one position ask ONE history page and share its events; another position asks its own', async () => {
    const asked: number[] = [];
    const bus = historyBus((_subject, from) => {
      asked.push(from);
      const events = [put('a/1', 1), put('a/2', 2), put('a/3', 3)].filter((e) => e.modRevision >= from);
      return encodeWatchHistoryReply({ result: WatchHistoryResult.Ok, oldestRevision: 1, lastRevision: 3, nextRevision: 4, message: '', events });
    });
    const at3 = { liveStorageNodes: () => [{ id: 's1', appliedIndex: 3 }] } satisfies WatchHubView;
    const hub = new WatchHub(bus, new Subjects('t'), at3, limits, log);
    hub.start();
    const got: WatchEvent[][] = [];
    const sink: WatchSink = { events: (events, _rev, flushed) => (got.push(events), flushed()), progress: () => undefined, canceled: () => undefined };
    const a: WatchRequest = { start: Buffer.from('a/'), end: Buffer.from('a0'), startRevision: 1, prevValue: false };
    try {
      for (let i = 0; i < 50; i++) hub.open({ ...a }, sink);
      hub.open({ ...a, startRevision: 2 }, sink);
      await until(() => got.length === 51);
      expect(asked.sort()).toEqual([1, 2]); // one page for the 50 watchers from 1, one for the watcher from 2
      expect(new Set(got.slice(0, 50)).size).toBe(1);
      expect(got[0].map((e) => e.modRevision)).toEqual([1, 2, 3]);
      expect(got[50].map((e) => e.modRevision)).toEqual([2, 3]);
    } finally {
      hub.stop();
    }
  });
});

describe('WatchHub interest (docs/watch.md "Delivery")', () => {
  it('subscribes and sends WatchInterest to every live node only while a watch is open, refreshing it; a watch opened after a quiet spell pages what was never published, once, without waiting for a later write', async () => {
    const sched = new SimScheduler(1);
    const world = { clock: sched.incarnation('g1').clock, random: sched.random };
    const advance = (ms: number) => {
      const until = sched.nowMs + ms;
      while (sched.nextAtMs() <= until) sched.step();
      sched.nowMs = until;
    };
    let onWatch: ((msg: TransportMsg) => void) | null = null;
    const interests: { subject: string; atMs: number; forMs: number }[] = [];
    const history = [put('a/1', 1), put('a/2', 2), put('a/3', 3), put('a/4', 4)];
    let applied = 1; // the nodes' last applied revision: their history holds 1..applied
    const msg = (data: Uint8Array): TransportMsg => ({ subject: 'x', data, respond: () => true });
    const bus: Transport = {
      maxPayloadBytes: () => 1 << 20,
      publish: (subject, data) => void interests.push({ subject, atMs: sched.nowMs, forMs: decodeWatchInterest(data).forMs }),
      subscribe: (_subject, cb) => {
        onWatch = cb;
        return { unsubscribe: () => (onWatch = null) };
      },
      request: (_subject, data) => {
        const from = decodeWatchHistoryRequest(Buffer.from(data)).fromRevision;
        const events = history.filter((e) => e.modRevision >= from && e.modRevision <= applied);
        return Promise.resolve(msg(encodeWatchHistoryReply({ result: WatchHistoryResult.Ok, oldestRevision: 1, lastRevision: applied, nextRevision: applied + 1, message: '', events })));
      },
    };
    const nodes = { liveStorageNodes: () => [{ id: 's1', appliedIndex: 1 }, { id: 's2', appliedIndex: 1 }] } satisfies WatchHubView;
    const hub = new WatchHub(bus, new Subjects('t'), nodes, limits, log, world);
    hub.start();
    const got: number[] = [];
    const sink: WatchSink = { events: (events, _rev, flushed) => (got.push(...events.map((e) => e.modRevision)), flushed()), progress: () => undefined, canceled: () => undefined };
    const a: WatchRequest = { start: Buffer.from('a/'), end: Buffer.from('a0'), startRevision: 0, prevValue: false };
    try {
      expect(onWatch).toBeNull(); // no watch: no subscription, no interest
      advance(5 * WATCH_INTEREST_REFRESH_MS);
      expect(interests).toEqual([]);
      const first = hub.open(a, sink);
      expect(onWatch).not.toBeNull();
      expect(interests.map((i) => [i.subject, i.forMs])).toEqual([
        [new Subjects('t').read('s1'), WATCH_INTEREST_MS],
        [new Subjects('t').read('s2'), WATCH_INTEREST_MS],
      ]);
      for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
      applied = 2;
      onWatch!(msg(encodeWatchEvents({ nodeId: 's1', prevRevision: 1, lastRevision: 2, events: [put('a/2', 2)] })));
      expect(got).toEqual([2]);
      advance(3 * WATCH_INTEREST_REFRESH_MS);
      expect(interests.length).toBe(8); // refreshed every WATCH_INTEREST_REFRESH_MS, to both nodes
      expect(interests[7].atMs - interests[0].atMs).toBe(3 * WATCH_INTEREST_REFRESH_MS);
      hub.cancel(first.watcher, WatchCancelReason.Client, 0, '');
      expect(onWatch).toBeNull();
      advance(5 * WATCH_INTEREST_REFRESH_MS);
      expect(interests.length).toBe(8); // quiet: the nodes stop publishing once the last interest expires
      // Revision 3 was applied (and recorded in the history) while no gateway asked: never published.
      applied = 3;
      // A watch from revision 3 opens; the first message chains to 3, so the hub sees the gap and pages it.
      hub.open({ ...a, startRevision: 3 }, sink);
      expect(interests.length).toBe(10);
      // Revision 3 comes from the history with no later write: the hub forgot what it saw while quiet
      // (it had seen 2, and a watch from 3 counted as live waited for a message an idle key space never sends).
      for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r)); // the page's request and reply: microtasks of the fake bus
      expect(got).toEqual([2, 3]);
      applied = 4;
      onWatch!(msg(encodeWatchEvents({ nodeId: 's2', prevRevision: 3, lastRevision: 4, events: [put('a/4', 4)] })));
      await until(() => got.length >= 3);
      for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
      expect(got).toEqual([2, 3, 4]);
    } finally {
      hub.stop();
    }
    expect(onWatch).toBeNull();
  });
});
