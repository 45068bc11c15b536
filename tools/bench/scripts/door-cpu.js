#!/usr/bin/env node
/**
 * The gateway's doors alone, in one process (issue 14; docs/benchmarks.md "The gateway's CPU per
 * request"): the real TLV ClientConnection and RESP RespConnection (decode, KvSession, auth guard
 * with auth disabled, OrderGate, reply encoding, ConnectionFlow) on stand-in sockets (no syscalls)
 * and paths that answer at once (no bus): CPU µs per request (process.cpuUsage) of what the door
 * code costs, without the kernel's and the bus's share. Given two builds of the repo (ROOT_B
 * optional), it loads both into the one process and alternates them case by case, so both see
 * the same load; the first round warms the JIT and is not counted; medians of the other rounds.
 * Cases: TLV and RESP SET/GET with 128 connections one request each, RESP SET/GET with 50
 * connections × 16 pipelined (redis-benchmark -P 16's shape); 40,000 requests each.
 * Run (builds in place): node tools/bench/scripts/door-cpu.js ROOT_A [ROOT_B] [ROUNDS=5]
 */
const { EventEmitter } = require('events');
const args = process.argv.slice(2);
const ROUNDS = /^\d+$/.test(args[args.length - 1] ?? '') ? Number(args.pop()) : 5;
const roots = args.map((r) => require('path').resolve(r));
const V = Buffer.alloc(256, 120);
function load(root) {
  const R = (p) => require(`${root}/${p}`);
  const P = R('libs/protocol/dist');
  const { RespConnection } = R('apps/gateway/dist/resp/resp-connection.js');
  const { RespCommands } = R('apps/gateway/dist/resp/commands.js');
  const { ClientConnection } = R('apps/gateway/dist/server/client-connection.js');
  const { ByteBudget } = R('apps/gateway/dist/server/flow.js');
  const { GatewayAuth } = R('apps/gateway/dist/auth/gateway-auth.js');
  return { P, RespConnection, RespCommands, ClientConnection, ByteBudget, GatewayAuth };
}
class FakeSocket extends EventEmitter {
  constructor(onReply) { super(); this.destroyed = false; this.onReply = onReply; this.remoteAddress = '127.0.0.1'; this.remotePort = 1; this.localAddress = '127.0.0.1'; this.localPort = 2; }
  pause() {} resume() {} cork() {} uncork() {} setTimeout() {} setNoDelay() {}
  write(data, cb) { this.onReply(data); queueMicrotask(() => cb()); return true; }
  end(cb) { cb?.(); } destroy() { this.destroyed = true; }
}
function setup(m, door) {
  let index = 0;
  const paths = {
    reads: { get: () => Promise.resolve({ status: m.P.Status.Ok, revision: 1, value: V, message: '', appliedIndex: index }) },
    readIndex: { readAlongside: true, readIndex: () => Promise.resolve({ ok: true, index }) },
    writes: { submit: () => Promise.resolve({ status: m.P.Status.Ok, revision: ++index, message: '' }) },
    limits: { keyBytesMax: 1024, valueBytesMax: 1 << 20 },
  };
  const auth = new m.GatewayAuth({ current: () => ({ state: { enabled: false }, revision: 0 }), ready: () => Promise.resolve(true) }, {}, { scryptCost: 1, failuresPerAddressMax: 10, failureWindowMs: 1000, failuresPerConnectionMax: 3, readyTimeoutMs: 1000, metricsPublic: true }, () => 0);
  const budget = new m.ByteBudget(256 << 20);
  const flow = { connectionReplyBytesMax: 1 << 20, connectionRequestBytesMax: 1 << 20, frameDeadlineMs: 10000, closeTimeoutMs: 1000, idleTimeoutMs: 0 };
  const commands = door === 'resp' ? new m.RespCommands({ gatewayId: 'g1', version: 'x', startedAtMs: 0, respPort: 1, view: null, now: () => 1, connections: () => 1 }, 1024, undefined, auth) : null;
  return (onReply) => {
    const s = new FakeSocket(onReply);
    if (door === 'resp') new m.RespConnection(s, 1, { paths, parserLimits: { bulkBytesMax: 2 << 20, arrayLengthMax: 1024, commandBytesMax: 4 << 20 }, commands, inflightMax: 1024, flow, budget, onClose: () => {}, auth });
    else new m.ClientConnection(s, { limits: { keyBytesMax: 1024, valueBytesMax: 1 << 20 }, inflightMax: 1024, flow, budget, reads: paths.reads, readIndex: paths.readIndex, writes: paths.writes, status: () => ({}), onClose: () => {}, auth });
    return s;
  };
}
function frames(m, door, op, n, conn) {
  const parts = [];
  for (let i = 0; i < n; i++) {
    const key = Buffer.from(`key:${conn}:${i}`);
    if (door === 'resp') parts.push(op === 'set' ? Buffer.concat([Buffer.from(`*3\r\n$3\r\nSET\r\n$${key.length}\r\n`), key, Buffer.from(`\r\n$256\r\n`), V, Buffer.from('\r\n')]) : Buffer.concat([Buffer.from(`*2\r\n$3\r\nGET\r\n$${key.length}\r\n`), key, Buffer.from('\r\n')]));
    else parts.push(m.P.encodeRequest({ opcode: op === 'set' ? m.P.Opcode.Set : m.P.Opcode.Get, requestId: i + 1, key, value: op === 'set' ? V : Buffer.alloc(0) }));
  }
  return Buffer.concat(parts);
}
async function run(m, door, op, conns, pipeline, requests) {
  let replies = 0; let wake = null;
  const make = setup(m, door);
  const sockets = Array.from({ length: conns }, () => make(() => { replies++; if (wake && replies >= wake.n) { const w = wake; wake = null; w.resolve(); } }));
  const chunks = sockets.map((_, c) => frames(m, door, op, pipeline, c));
  const perRound = conns * pipeline; const rounds = Math.ceil(requests / perRound);
  const c0 = process.cpuUsage();
  for (let r = 0; r < rounds; r++) {
    const target = replies + perRound;
    const p = new Promise((resolve) => (wake = { n: target, resolve }));
    for (let c = 0; c < conns; c++) sockets[c].emit('data', chunks[c]);
    await p;
  }
  const cu = process.cpuUsage(c0);
  for (const s of sockets) s.emit('close');
  return (cu.user + cu.system) / (rounds * perRound);
}
(async () => {
  const mods = roots.map(load);
  const cases = [['tlv', 'set', 128, 1], ['tlv', 'get', 128, 1], ['resp', 'set', 128, 1], ['resp', 'get', 128, 1], ['resp', 'set', 50, 16], ['resp', 'get', 50, 16]];
  const res = {};
  for (let round = 0; round < ROUNDS; round++) {
    for (const [door, op, conns, pipe] of cases) {
      for (let i = 0; i < mods.length; i++) {
        const us = await run(mods[i], door, op, conns, pipe, 40000);
        if (round === 0) continue; // warm-up
        const k = `${door} ${op} c${conns} P${pipe}`;
        (res[k] ??= [[], []])[i].push(us);
      }
    }
  }
  const med = (a) => a.slice().sort((x, y) => x - y)[Math.floor(a.length / 2)];
  for (const [k, [a, b]] of Object.entries(res)) console.log(`${k.padEnd(20)} A ${med(a).toFixed(2)} µs` + (b.length ? `  B ${med(b).toFixed(2)} µs` : '') + `  (A ${a.map((x) => x.toFixed(1)).join(' ')}` + (b.length ? ` | B ${b.map((x) => x.toFixed(1)).join(' ')}` : '') + ')');
})();
