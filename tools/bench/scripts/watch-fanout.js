#!/usr/bin/env node
/**
 * Gateway watch fan-out alone (issue 12; docs/benchmarks.md "Watch fan-out"): the gateway's CPU
 * per delivered event, without a cluster. One process runs the gateway's real TLV door (TcpServer,
 * ClientConnection, ConnectionFlow) and WatchHub over an in-memory bus that plays two storage
 * nodes (both publish every WatchEvents message, cut at different revisions, as live nodes do);
 * a child process opens `--watchers` WATCHes on the prefix `w/` over `--connections` sockets and
 * reads the frames (counted by header, not decoded: the reader's cost is not the gateway's; with
 * `--client` the watches are @cairn/client iterators instead, each event decoded and yielded, and
 * the reader's CPU per event is the client's cost; `--batches`: the client's `watchBatches()`, one
 * item per frame). `--shared` (raw reader) opens the watches with option SHARED_FRAMES; the client
 * asks for it unless `--no-shared` (docs/protocol.md "WATCH": one frame per connection and message
 * naming every watch that shares its events).
 * It publishes `--messages` messages of `--events` PUTs (64-byte values) as fast as the sockets
 * take them (at most `--ahead` messages unread by the child), then prints the gateway process's
 * CPU per delivered event (user + system, process.cpuUsage) and the events delivered per second.
 *
 * Run (after `npx nx run-many -t build`):
 *   node tools/bench/scripts/watch-fanout.js [--watchers 1000] [--connections 10] [--messages 200] [--events 10] [--shared]
 *     [--client [--batches] [--no-shared]] [--json]
 *     [--cpu-prof DIR]   (the reader process under node --cpu-prof; run this one with node --cpu-prof for the gateway's)
 */
'use strict';
const path = require('node:path');
const { fork } = require('node:child_process');
const net = require('node:net');

const root = path.resolve(__dirname, '../../..');
const args = process.argv.slice(2);
const num = (name, d) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : d;
};

if (process.env.CAIRN_FANOUT_READER) reader();
else void main();

/** The child: opens the watches, reads frames, reports events seen (and its CPU) to the parent. */
function reader() {
  const { encodeRequest, encodeWatchSpec, Opcode, WatchOptions } = require(path.join(root, 'libs/protocol/dist'));
  const [port, watchers, connections, client, shared, batches] = JSON.parse(process.env.CAIRN_FANOUT_READER);
  const cpu0 = process.cpuUsage();
  const report = (events) => {
    const c = process.cpuUsage(cpu0);
    process.send({ events, cpuUs: c.user + c.system });
  };
  if (client) return clientReader(port, watchers, connections, report, shared, batches);
  let events = 0;
  let opened = 0;
  for (let c = 0; c < connections; c++) {
    const s = net.connect(port, '127.0.0.1');
    s.setNoDelay(true);
    let pending = Buffer.alloc(0);
    s.on('data', (chunk) => {
      let b = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      let at = 0;
      while (b.length - at >= 20) {
        const len = b.readUInt32BE(at + 16);
        if (b.length - at < 20 + len) break;
        if (b[at + 3] & 0x02) {
          if (len >= 5 && b[at + 20] === 0x01) events += b.readUInt32BE(at + 21);
          else if (len >= 3 && b[at + 20] === 0x04) {
            // SHARED_EVENTS: u16 idCount · ids · u32 n — n events for each of idCount watches.
            const ids = b.readUInt16BE(at + 21);
            events += ids * b.readUInt32BE(at + 23 + 4 * ids);
          }
        } else opened++;
        at += 20 + len;
      }
      pending = b.subarray(at);
      if (opened === watchers) {
        opened++;
        process.send({ opened: true });
      }
    });
    const mine = Math.floor(watchers / connections) + (c < watchers % connections ? 1 : 0);
    const options = WatchOptions.Prefix | (shared ? WatchOptions.SharedFrames : 0);
    for (let i = 1; i <= mine; i++) s.write(encodeRequest({ opcode: Opcode.Watch, requestId: i, flags: 0, key: Buffer.from('w/'), value: encodeWatchSpec({ options, startRevision: 0 }) }));
  }
  setInterval(() => report(events), 5).unref();
  process.on('message', (m) => m === 'exit' && process.exit(0));
}

/**
 * `--client`: the watches are @cairn/client iterators (`client.watch`), each event decoded and
 * yielded as a real client gets it; with `--batches`, `client.watchBatches` (one item per frame).
 * A client without `watchBatches` (a build from before it) is driven per event.
 */
async function clientReader(port, watchers, connections, report, shared, batches) {
  const { CairnClient } = require(path.join(root, 'libs/client/dist'));
  const clients = [];
  for (let c = 0; c < connections; c++) clients.push(await CairnClient.connect({ host: '127.0.0.1', port, connectTimeoutMs: 5000, requestTimeoutMs: 10_000 }));
  const stop = new AbortController();
  require('node:events').setMaxListeners(watchers + 10, stop.signal);
  let events = 0;
  for (let i = 0; i < watchers; i++) {
    void (async () => {
      try {
        const c = clients[i % connections];
        const o = { prefix: 'w/', signal: stop.signal, bufferEventsMax: 1_000_000, bufferBytesMax: 256 << 20, sharedFrames: shared };
        if (batches && c.watchBatches) {
          for await (const b of c.watchBatches(o)) for (const ev of b.events) if (ev.type === 'put') events++;
        } else for await (const ev of c.watch(o)) if (ev.type === 'put') events++;
      } catch {
        // aborted at exit
      }
    })();
  }
  // The OK answers of every WATCH: a PING behind them on each connection answers after them.
  await Promise.all(clients.map((c) => c.ping()));
  process.send({ opened: true });
  setInterval(() => report(events), 5).unref();
  process.on('message', (m) => m === 'exit' && process.exit(0));
}

async function main() {
  const watchers = num('--watchers', 1000);
  const connections = num('--connections', 10);
  const messages = num('--messages', 200);
  const perMessage = num('--events', 10);
  const ahead = num('--ahead', 4);
  const { encodeWatchEvents, encodeWatchHistoryReply, WatchEventType, WatchHistoryResult } = require(path.join(root, 'libs/protocol/dist'));
  const { TcpServer } = require(path.join(root, 'apps/gateway/dist/server/tcp-server'));
  const { ByteBudget } = require(path.join(root, 'apps/gateway/dist/server/flow'));
  const { WatchHub } = require(path.join(root, 'apps/gateway/dist/watch/watch-hub'));
  const { Subjects } = require(path.join(root, 'libs/messaging/dist'));
  const { createLogger } = require(path.join(root, 'libs/logging/dist'));

  let onWatch = null;
  const msg = (data) => ({ subject: 'watch.s', data, respond: () => true });
  const bus = {
    maxPayloadBytes: () => 1 << 20,
    publish: () => undefined,
    subscribe: (_s, cb) => ((onWatch = cb), { unsubscribe: () => (onWatch = null) }),
    request: () => Promise.resolve(msg(encodeWatchHistoryReply({ result: WatchHistoryResult.Ok, oldestRevision: 1, lastRevision: 0, nextRevision: 1, message: '', events: [] }))),
  };
  const view = { liveStorageNodes: () => [{ id: 's1', appliedIndex: 0 }] };
  const log = createLogger('fanout', 'silent');
  const limits = { watchesPerConnectionMax: 100_000, watchersMax: 100_000, watchQueueBytesMax: 64 << 20, watchQueueEventsMax: 1_000_000, watchProgressIntervalMs: 3_600_000, readTimeoutMs: 3000 };
  const hub = new WatchHub(bus, new Subjects('fanout'), view, limits, log);
  hub.start();
  const flow = { connectionReplyBytesMax: 64 << 20, connectionRequestBytesMax: 1 << 20, frameDeadlineMs: 60_000, closeTimeoutMs: 1000, idleTimeoutMs: 3_600_000 };
  const never = () => Promise.reject(new Error('not served'));
  const server = new TcpServer(
    { limits: { keyBytesMax: 1024, valueBytesMax: 1 << 20 }, inflightMax: 100_000, flow, budget: new ByteBudget(1 << 30), connectionsMax: 1000, drainTimeoutMs: 1000, reads: { get: never }, writes: { submit: never }, status: () => ({}), watches: { hub, perConnectionMax: 100_000 } },
    log,
  );
  await server.listen('127.0.0.1', 0);
  const client = args.includes('--client');
  // The raw reader asks for SHARED_FRAMES with --shared; the client does unless --no-shared (its default).
  const shared = client ? !args.includes('--no-shared') : args.includes('--shared');
  const batches = args.includes('--batches');
  const prof = args.indexOf('--cpu-prof');
  const execArgv = prof >= 0 ? ['--cpu-prof', `--cpu-prof-dir=${args[prof + 1]}`, '--cpu-prof-name=reader.cpuprofile'] : [];
  const child = fork(__filename, [], { execArgv, env: { ...process.env, CAIRN_FANOUT_READER: JSON.stringify([server.port(), watchers, connections, client, shared, batches]) } });
  let seen = 0;
  let readerCpuUs = 0;
  let wake = null;
  child.on('message', (m) => {
    if (m.events !== undefined) {
      seen = m.events;
      readerCpuUs = m.cpuUs;
    }
    wake?.();
  });
  const waitFor = (cond) => new Promise((resolve) => {
    const check = () => (cond() ? resolve() : (wake = check));
    check();
  });
  let opened = false;
  child.on('message', (m) => m.opened && (opened = true));
  await waitFor(() => opened);
  await new Promise((r) => setTimeout(r, 200)); // every watch live (its empty history page answered)

  const value = Buffer.alloc(64, 'x');
  const event = (rev) => ({ type: WatchEventType.Put, key: Buffer.from(`w/${rev % 1000}`), value, modRevision: rev, createRevision: 1, version: rev, prevValue: null });
  // Node s1 cuts every `perMessage` revisions; node s2 cuts at other revisions (offset by half).
  const cut = (node, from, to) => {
    const events = [];
    for (let r = from + 1; r <= to; r++) events.push(event(r));
    return encodeWatchEvents({ nodeId: node, prevRevision: from, lastRevision: to, events });
  };
  const half = Math.max(1, Math.floor(perMessage / 2));
  const s1 = [];
  const s2 = [];
  for (let i = 0; i < messages; i++) s1.push(cut('s1', i * perMessage, (i + 1) * perMessage));
  for (let i = 0; i < messages; i++) s2.push(cut('s2', i === 0 ? 0 : i * perMessage - half, i === messages - 1 ? messages * perMessage : (i + 1) * perMessage - half));
  const expected = messages * perMessage * watchers;
  const cpu0 = process.cpuUsage();
  const reader0 = readerCpuUs;
  const t0 = performance.now();
  for (let i = 0; i < messages; i++) {
    // The first node to bring a revision alternates, as it does between live nodes.
    const [a, b] = i % 2 === 0 ? [s1[i], s2[i]] : [s2[i], s1[i]];
    onWatch(msg(a));
    onWatch(msg(b));
    if (i >= ahead) await waitFor(() => seen >= (i + 1 - ahead) * perMessage * watchers);
    else await new Promise((r) => setImmediate(r));
  }
  await waitFor(() => seen >= expected);
  const cpu = process.cpuUsage(cpu0);
  const seconds = (performance.now() - t0) / 1000;
  const report = {
    watchers,
    connections,
    messages,
    eventsPerMessage: perMessage,
    eventsDelivered: seen,
    eventsPerSec: Math.round(seen / seconds),
    gatewayCpuUsPerEvent: Number((((cpu.user + cpu.system) / seen)).toFixed(3)),
    gatewayCpuPercent: Math.round(((cpu.user + cpu.system) / 1e6 / seconds) * 100),
    reader: client ? `@cairn/client ${batches ? 'watchBatches' : 'watch'} iterators` : 'frame headers counted',
    sharedFrames: shared,
    readerCpuUsPerEvent: Number(((readerCpuUs - reader0) / seen).toFixed(3)),
    loadAverage1m: Number(require('node:os').loadavg()[0].toFixed(1)),
  };
  process.stdout.write(args.includes('--json') ? JSON.stringify(report) + '\n' : Object.entries(report).map(([k, v]) => `${k}: ${v}`).join('\n') + '\n');
  await new Promise((resolve) => {
    child.once('exit', resolve);
    child.send('exit');
  });
  hub.stop();
  await server.close();
  process.exit(0);
}
