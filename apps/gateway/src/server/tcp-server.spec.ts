import { connect, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { CommandCondition, CommandOp, LeaseRefusal, Opcode, RequestFlags, ResponseDecoder, ResponseFlags, Status, encodeLeaseOperand, decodeIncrDelta, decodeTxnCommandValue, encodeTxnRequest, TxnOpFlags, TxnOpKind, decodeIncrReply, encodeIncrRequest, encodeRequest, type Command, type Response } from '@cairn/protocol';
import { createLogger } from '@cairn/logging';
import { TcpServer } from './tcp-server';
import { ByteBudget, type FlowLimits } from './flow';
import { OpenedDoors, connectPastMax, floodUntilClosed, testFlowLimits, until } from './testing';
import type { KvPaths } from '../paths/kv-session';
import type { ReadResult } from '../paths/read-path';
import { LEASE_REFUSAL_MESSAGES, type WriteResult } from '../paths/write-path';

/** Write and read paths whose answers the test releases by hand (no NATS: this tests the TCP side). */
function fakePaths() {
  const writes: { command: Command; resolve: (r: WriteResult) => void }[] = [];
  const reads: { key: string; minIndex: number; resolve: (r: ReadResult) => void }[] = [];
  const writePath = { submit: (command: Command) => new Promise<WriteResult>((resolve) => writes.push({ command, resolve })) } satisfies KvPaths['writes'];
  const readPath = {
    get: (key: Uint8Array, minIndex: number) => new Promise<ReadResult>((resolve) => reads.push({ key: Buffer.from(key).toString(), minIndex, resolve })),
  } satisfies KvPaths['reads'];
  return { writes, reads, writePath, readPath };
}

async function startServer(overrides: Partial<{ inflightMax: number; drainTimeoutMs: number; flow: Partial<FlowLimits>; budgetBytes: number; connectionsMax: number; valueBytesMax: number }> = {}) {
  const paths = fakePaths();
  const budget = new ByteBudget(overrides.budgetBytes ?? 64 * 1024 * 1024);
  const server = new InspectedTcpServer(
    {
      limits: { keyBytesMax: 16, valueBytesMax: overrides.valueBytesMax ?? 64 },
      inflightMax: overrides.inflightMax ?? 128,
      flow: testFlowLimits(overrides.flow),
      budget,
      connectionsMax: overrides.connectionsMax ?? 10,
      drainTimeoutMs: overrides.drainTimeoutMs ?? 60_000,
      reads: paths.readPath,
      writes: paths.writePath,
      status: () => ({ leaderId: 'c1' }),
    },
    createLogger('test', 'silent'),
  );
  await server.listen('127.0.0.1', 0);
  opened.server(server);
  return { server, port: server.port(), budget, ...paths };
}

/** Every server and client socket a test opened: closed after it. */
const opened = new OpenedDoors();
afterEach(() => opened.closeAll());

/** A raw protocol client: sends frames, collects responses, resolves waiters by count. */
async function rawClient(port: number) {
  const socket = opened.socket(connect(port, '127.0.0.1'));
  await once(socket, 'connect');
  const decoder = new ResponseDecoder();
  const responses: Response[] = [];
  let waiter: { n: number; resolve: () => void } | null = null;
  socket.on('data', (chunk: Buffer) => {
    responses.push(...decoder.push(chunk));
    if (waiter && responses.length >= waiter.n) waiter.resolve();
  });
  const closed = once(socket, 'close');
  return {
    socket,
    responses,
    closed,
    send: (opcode: Opcode, requestId: number, key = '', value: Buffer | string = '', flags = 0) =>
      socket.write(encodeRequest({ opcode, requestId, flags, key: Buffer.from(key), value: Buffer.from(value) })),
    waitFor: (n: number) => (responses.length >= n ? Promise.resolve() : new Promise<void>((resolve) => (waiter = { n, resolve }))),
  };
}


/** A TcpServer whose net.Server a test can listen on (DoorListener keeps it protected). */
class InspectedTcpServer extends TcpServer {
  netServer(): Server {
    return this.server;
  }
}

/** The server-side sockets of `server`, in accept order (to emit their 'timeout' by hand). */
function captureSockets(server: InspectedTcpServer): Socket[] {
  const sockets: Socket[] = [];
  server.netServer().on('connection', (sock: Socket) => sockets.push(sock));
  return sockets;
}

describe('gateway TCP server', () => {
  it('SET with IF_ABSENT / IF_PRESENT carries the condition; CONDITION_FAILED goes out with an empty payload and the evaluated index', async () => {
    const s = await startServer();
    const c = await rawClient(s.port);
    c.send(Opcode.Set, 1, 'lock', 'a', RequestFlags.IfAbsent);
    c.send(Opcode.Set, 2, 'lock', 'b', RequestFlags.IfPresent);
    c.send(Opcode.Set, 3, 'lock', 'c');
    await until(() => s.writes.length === 3);
    expect(s.writes.map((w) => [w.command.op, w.command.condition])).toEqual([
      [CommandOp.Set, CommandCondition.IfAbsent],
      [CommandOp.Set, CommandCondition.IfPresent],
      [CommandOp.Set, undefined],
    ]);
    s.writes[0].resolve({ status: Status.Ok, revision: 7, message: '' });
    s.writes[1].resolve({ status: Status.ConditionFailed, revision: 8, message: 'condition not met' });
    s.writes[2].resolve({ status: Status.Ok, revision: 9, message: '' });
    await c.waitFor(3);
    expect(c.responses.map((r) => [r.requestId, r.status, r.revision, r.payload.length])).toEqual([
      [1, Status.Ok, 7, 0],
      [2, Status.ConditionFailed, 8, 0],
      [3, Status.Ok, 9, 0],
    ]);
  });

  it('a SET with LEASE refused: response flag LEASE_NOT_FOUND / LEASE_KEYS_FULL beside the reason; a false condition: flags 0, "condition not met"', async () => {
    const s = await startServer();
    const c = await rawClient(s.port);
    const onLease = encodeLeaseOperand({ leaseId: 7, ttlMs: 0 }, Buffer.from('v'));
    for (let id = 1; id <= 3; id++) c.send(Opcode.Set, id, 'lock', onLease, RequestFlags.IfAbsent | RequestFlags.Lease);
    await until(() => s.writes.length === 3);
    s.writes[0].resolve({ status: Status.ConditionFailed, revision: 8, message: 'condition not met' });
    s.writes[1].resolve({ status: Status.ConditionFailed, revision: 9, message: LEASE_REFUSAL_MESSAGES[LeaseRefusal.NotFound], leaseRefusal: LeaseRefusal.NotFound });
    s.writes[2].resolve({ status: Status.ConditionFailed, revision: 10, message: LEASE_REFUSAL_MESSAGES[LeaseRefusal.KeysFull], leaseRefusal: LeaseRefusal.KeysFull });
    await c.waitFor(3);
    expect(c.responses.map((r) => [r.requestId, r.status, r.flags, r.revision, r.payload.toString()])).toEqual([
      [1, Status.ConditionFailed, 0, 8, 'condition not met'],
      [2, Status.ConditionFailed, ResponseFlags.LeaseNotFound, 9, 'lease not found'],
      [3, Status.ConditionFailed, ResponseFlags.LeaseKeysFull, 10, LEASE_REFUSAL_MESSAGES[LeaseRefusal.KeysFull]],
    ]);
  });

  it('a TXN refused by a put\'s lease (op flag LEASE): CONDITION_FAILED with response flag LEASE_NOT_FOUND / LEASE_KEYS_FULL and the reason; the put carries its lease id into the command', async () => {
    const s = await startServer();
    const c = await rawClient(s.port);
    const txn = encodeTxnRequest({ compares: [], success: [{ kind: TxnOpKind.Put, key: Buffer.from('k'), value: Buffer.from('v'), flags: TxnOpFlags.Lease, lease: 0x1234 }], failure: [] });
    c.send(Opcode.Txn, 1, '', txn);
    c.send(Opcode.Txn, 2, '', txn);
    await until(() => s.writes.length === 2);
    expect(decodeTxnCommandValue(s.writes[0].command.value).request.success[0]).toMatchObject({ flags: TxnOpFlags.Lease, lease: 0x1234 });
    s.writes[0].resolve({ status: Status.ConditionFailed, revision: 64, message: "transaction refused: a put's lease not found (nothing applied)", leaseRefusal: LeaseRefusal.NotFound });
    s.writes[1].resolve({ status: Status.ConditionFailed, revision: 65, message: 'lease full', leaseRefusal: LeaseRefusal.KeysFull });
    await c.waitFor(2);
    const byId = new Map(c.responses.map((r) => [r.requestId, [r.status, r.flags, r.revision, r.payload.toString()]]));
    expect([byId.get(1), byId.get(2)]).toEqual([
      [Status.ConditionFailed, ResponseFlags.LeaseNotFound, 64, "transaction refused: a put's lease not found (nothing applied)"],
      [Status.ConditionFailed, ResponseFlags.LeaseKeysFull, 65, 'lease full'],
    ]);
  });

  it('a client that half-closes after its requests gets every answer, then the gateway closes (allowHalfOpen)', async () => {
    const s = await startServer();
    const c = await rawClient(s.port);
    c.send(Opcode.Set, 1, 'a', 'x');
    c.send(Opcode.Set, 2, 'b', 'y');
    c.socket.end();
    await until(() => s.writes.length === 2);
    s.writes[1].resolve({ status: Status.Ok, revision: 8, message: '' });
    await c.waitFor(1);
    // One request still in flight: the gateway keeps its side open.
    expect(c.socket.readableEnded).toBe(false);
    s.writes[0].resolve({ status: Status.Ok, revision: 7, message: '' });
    await c.closed;
    expect(c.responses.map((r) => [r.requestId, r.status, r.revision])).toEqual([
      [2, Status.Ok, 8],
      [1, Status.Ok, 7],
    ]);
  });

  it('a half-close after a bad header still gets the BAD_REQUEST before the close', async () => {
    const s = await startServer();
    const c = await rawClient(s.port);
    c.socket.end(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
    await c.closed;
    expect(c.responses).toHaveLength(1);
    expect(c.responses[0]).toMatchObject({ status: Status.BadRequest, requestId: 0 });
  });

  it("INCR: the client's session goes into the command; OK carries the new value as i64, CONDITION_FAILED Redis's reason; a malformed value is BAD_REQUEST", async () => {
    const s = await startServer();
    const c = await rawClient(s.port);
    const session = { sessionId: 0x0123456789abcdefn, seq: 7, firstPendingSeq: 5 };
    c.send(Opcode.Incr, 1, 'n', encodeIncrRequest({ delta: -2n, session }));
    c.send(Opcode.Incr, 2, 'text', encodeIncrRequest({ delta: 1n }));
    c.send(Opcode.Incr, 3, 'n', Buffer.alloc(5));
    await until(() => s.writes.length === 2);
    expect(s.writes.map((w) => [w.command.op, w.command.key.toString(), decodeIncrDelta(w.command.value), w.command.session])).toEqual([
      [CommandOp.Incr, 'n', -2n, session],
      [CommandOp.Incr, 'text', 1n, undefined],
    ]);
    s.writes[0].resolve({ status: Status.Ok, revision: 51, message: '', counter: 42n });
    s.writes[1].resolve({ status: Status.ConditionFailed, revision: 52, message: 'value is not an integer or out of range' });
    await c.waitFor(3);
    const byId = new Map(c.responses.map((r) => [r.requestId, r]));
    expect([byId.get(1)!.status, byId.get(1)!.revision, decodeIncrReply(byId.get(1)!.payload)]).toEqual([Status.Ok, 51, 42n]);
    expect([byId.get(2)!.status, byId.get(2)!.revision, byId.get(2)!.payload.toString()]).toEqual([Status.ConditionFailed, 52, 'value is not an integer or out of range']);
    expect([byId.get(3)!.status, byId.get(3)!.payload.toString()]).toEqual([Status.BadRequest, expect.stringContaining('INCR value must be 8 bytes')]);
  });

  it('a RANGE or TXN value that does not decode is BAD_REQUEST "bad <OPCODE> value: …", and nothing reaches the cluster', async () => {
    const s = await startServer();
    const c = await rawClient(s.port);
    c.send(Opcode.Range, 1, 'k', Buffer.from([0xff]));
    c.send(Opcode.Txn, 2, '', Buffer.from([0xff]));
    await c.waitFor(2);
    const byId = new Map(c.responses.map((r) => [r.requestId, r]));
    expect([byId.get(1)!.status, byId.get(1)!.payload.toString()]).toEqual([Status.BadRequest, expect.stringMatching(/^bad RANGE value: /)]);
    expect([byId.get(2)!.status, byId.get(2)!.payload.toString()]).toEqual([Status.BadRequest, expect.stringMatching(/^bad TXN value: /)]);
    expect(s.writes).toHaveLength(0);
  });

  it('pipelines: answers out of order, matched by request id, and reads carry the last acknowledged write index', async () => {
    const s = await startServer();
    const c = await rawClient(s.port);
    c.send(Opcode.Set, 1, 'k', 'v1');
    c.send(Opcode.Ping, 2, '', 'hi');
    await until(() => s.writes.length === 1);
    await c.waitFor(1);
    expect(c.responses[0]).toMatchObject({ requestId: 2, status: Status.Ok });
    expect(c.responses[0].payload.toString()).toBe('hi');
    expect(s.writes[0].command).toMatchObject({ op: CommandOp.Set });
    s.writes[0].resolve({ status: Status.Ok, revision: 41, message: '' });
    await c.waitFor(2);
    expect(c.responses[1]).toMatchObject({ requestId: 1, status: Status.Ok, revision: 41 });
    c.send(Opcode.Get, 3, 'k');
    c.send(Opcode.Get, 4, 'k', '', RequestFlags.Stale);
    await until(() => s.reads.length === 2);
    // Matched by index, not by position: when both frames arrive in one chunk the stale read is sent
    // first (the linearizable one takes a microtask to learn its index), else in frame order.
    expect(s.reads.map((r) => r.minIndex).sort((a, b) => a - b)).toEqual([0, 41]);
    const linearizable = s.reads.find((r) => r.minIndex === 41)!;
    const stale = s.reads.find((r) => r.minIndex === 0)!;
    stale.resolve({ status: Status.NotFound, revision: 0, value: new Uint8Array(0), message: '' });
    linearizable.resolve({ status: Status.Ok, revision: 41, value: Buffer.from('v1'), message: '' });
    await c.waitFor(4);
    expect(c.responses.slice(2).map((r) => [r.requestId, r.status])).toEqual([
      [4, Status.NotFound],
      [3, Status.Ok],
    ]);
  });

  it('answers a rejected frame and keeps the connection; answers a fatal one and closes', async () => {
    const s = await startServer();
    const c = await rawClient(s.port);
    c.send(Opcode.Set, 7, 'k', 'x'.repeat(65)); // value over valueBytesMax
    c.send(Opcode.Ping, 8);
    await c.waitFor(2);
    expect(c.responses.map((r) => [r.requestId, r.status])).toEqual([
      [7, Status.TooLarge],
      [8, Status.Ok],
    ]);
    expect(s.writes).toHaveLength(0); // nothing oversized reached the write path
    c.socket.write(Buffer.from('GET k\r\n'));
    await c.closed;
    expect(c.responses[2]).toMatchObject({ status: Status.BadRequest });
  });

  it('STATUS returns the cluster view as JSON', async () => {
    const s = await startServer();
    const c = await rawClient(s.port);
    c.send(Opcode.Status, 1);
    await c.waitFor(1);
    expect(JSON.parse(c.responses[0].payload.toString())).toEqual({ leaderId: 'c1' });
  });

  it('closes an idle connection but not one with requests in flight', async () => {
    // The idle timer's 'timeout' event is emitted by hand on the server's sockets: no wall-clock race.
    const s = await startServer();
    const serverSockets = captureSockets(s.server);
    const busy = await rawClient(s.port);
    busy.send(Opcode.Set, 1, 'k', 'v');
    await until(() => s.writes.length === 1);
    const idle = await rawClient(s.port);
    await until(() => serverSockets.length === 2);
    for (const sock of serverSockets) sock.emit('timeout');
    await idle.closed;
    expect(busy.socket.destroyed).toBe(false);
    s.writes[0].resolve({ status: Status.Ok, revision: 1, message: '' });
    await busy.waitFor(1);
    serverSockets[0].emit('timeout'); // idle again after its answer
    await busy.closed;
  });

  it('a client that never reads: the connection stops being read once its unflushed replies pass connectionReplyBytesMax', async () => {
    const s = await startServer({ valueBytesMax: 64 * 1024, flow: { connectionReplyBytesMax: 256 * 1024 }, inflightMax: 100_000 });
    const serverSockets = captureSockets(s.server);
    const c = await rawClient(s.port);
    c.socket.pause(); // never reads
    const payload = Buffer.alloc(60 * 1024, 1);
    // PINGs echo their payload: each answer is ~60 KiB the client never takes.
    let sent = 0;
    const writeMore = () => {
      while (sent < 2000 && c.send(Opcode.Ping, ++sent, '', payload));
    };
    c.socket.on('drain', writeMore);
    writeMore();
    await until(() => serverSockets.length === 1);
    const server = serverSockets[0];
    // The gateway pauses the socket: the client's sending side fills up and stops draining.
    await until(() => server.isPaused() && s.budget.used() > 256 * 1024);
    const held = s.budget.used();
    // Bound: the reply bytes over the limit are at most one TCP chunk's worth of echoed PINGs.
    expect(held).toBeLessThanOrEqual(256 * 1024 + 128 * 1024);
    expect(sent).toBeLessThan(2000);
    const serverClosed = new Promise((r) => server.once('close', r)); // not once(): the server side sees ECONNRESET first
    c.socket.destroy();
    await serverClosed;
    expect(s.budget.used()).toBe(0);
  });

  it('counts a request in flight until its response is flushed, not when it is handed to the socket', async () => {
    const s = await startServer({ inflightMax: 2, flow: { connectionReplyBytesMax: 1 << 30 }, budgetBytes: 1 << 30 });
    const serverSockets = captureSockets(s.server);
    const c = await rawClient(s.port);
    c.socket.pause(); // never reads
    for (let i = 1; i <= 2000; i++) c.send(Opcode.Get, i, 'k');
    const value = Buffer.alloc(256 * 1024, 3);
    let answered = 0;
    // Answer every read the gateway issues, until it stops issuing: its socket is paused with
    // every read answered (the answers sit unflushed: the client does not read them).
    await until(() => {
      while (answered < s.reads.length) s.reads[answered++].resolve({ status: Status.Ok, revision: 1, value, message: '' });
      return serverSockets.length === 1 && serverSockets[0].isPaused() && answered === s.reads.length && answered >= 2;
    });
    expect(s.reads.length).toBeLessThan(2000);
    // At most inflightMax answers are held unflushed.
    expect(s.budget.used()).toBeLessThanOrEqual(2 * (value.length + 16));
  });

  it('replies to a client that does not read are replaced by UNAVAILABLE once the gateway holds pendingBytesMax', async () => {
    const s = await startServer({ inflightMax: 1000, flow: { connectionReplyBytesMax: 64 * 1024 }, budgetBytes: 1024 * 1024 });
    const c = await rawClient(s.port);
    c.socket.pause(); // does not read, for now
    // 400 values of 256 KiB: 100 MiB, more than the kernel's socket buffers take (tcp_rmem max is often
    // 32 MiB). One write (one chunk, 6.8 KB): all 400 are taken before any answer teaches the
    // gateway how large its values are (the reservation of the test below).
    c.socket.write(Buffer.concat(Array.from({ length: 400 }, (_, i) => encodeRequest({ opcode: Opcode.Get, requestId: i + 1, flags: 0, key: Buffer.from('k'), value: Buffer.alloc(0) }))));
    const value = Buffer.alloc(256 * 1024, 4);
    let answered = 0;
    const answerAll = () => {
      while (answered < s.reads.length) s.reads[answered++].resolve({ status: Status.Ok, revision: 1, value, message: '' });
    };
    await until(() => {
      answerAll();
      return answered === 400;
    });
    // Held: at most pendingBytesMax, plus one value queued while the connection was under its own bound.
    expect(s.budget.used()).toBeLessThanOrEqual(1024 * 1024 + value.length + 20);
    c.socket.resume();
    await until(() => {
      answerAll();
      return c.responses.length === 400;
    });
    const statuses = new Set(c.responses.map((r) => r.status));
    expect(statuses).toEqual(new Set([Status.Ok, Status.Unavailable]));
    expect(c.responses.find((r) => r.status === Status.Unavailable)!.payload.toString()).toMatch(/does not read its responses/);
  });

  it('a GET in flight reserves the size of the values seen: large values mean fewer reads in flight per connection', async () => {
    const s = await startServer({ inflightMax: 1000, flow: { connectionRequestBytesMax: 1024 * 1024 } });
    s.budget.observeValue(256 * 1024); // e.g. a SET of a 256 KiB value went through
    const serverSockets = captureSockets(s.server);
    const c = await rawClient(s.port);
    for (let i = 1; i <= 100; i++) c.send(Opcode.Get, i, 'k');
    // The gateway stops reading once the reads it issued reserve more than connectionRequestBytesMax.
    await until(() => serverSockets.length === 1 && serverSockets[0].isPaused() && s.reads.length > 0);
    expect(s.reads.length).toBe(4); // 4 × (256 KiB + 17) > 1 MiB ≥ 3 × (256 KiB + 17)
    // Answers release the reservations: every GET is answered in the end.
    let answered = 0;
    await until(() => {
      while (answered < s.reads.length) s.reads[answered++].resolve({ status: Status.Ok, revision: 1, value: Buffer.alloc(256 * 1024), message: '' });
      return c.responses.length === 100;
    });
  });

  it('closes a slow sender at frameDeadlineMs: half a frame is answered BAD_REQUEST (requestId 0) and closed', async () => {
    const s = await startServer({ flow: { frameDeadlineMs: 20 } });
    const c = await rawClient(s.port);
    const frame = encodeRequest({ opcode: Opcode.Set, requestId: 5, flags: 0, key: Buffer.from('k'), value: Buffer.from('value') });
    c.socket.write(frame.subarray(0, 10)); // and never the rest
    await c.closed;
    expect(c.responses).toEqual([expect.objectContaining({ requestId: 0, status: Status.BadRequest })]);
    expect(c.responses[0].payload.toString()).toMatch(/frameDeadlineMs/);
    expect(s.writes).toHaveLength(0);
  });

  it('a whole frame is not held to the deadline: a connection between frames stays open', async () => {
    const s = await startServer({ flow: { frameDeadlineMs: 20 } });
    const serverSockets = captureSockets(s.server);
    const c = await rawClient(s.port);
    c.send(Opcode.Ping, 1);
    await c.waitFor(1);
    // Past the deadline by events: a second connection's half frame is closed by its deadline...
    const slow = await rawClient(s.port);
    slow.socket.write(Buffer.from([0xca]));
    await slow.closed;
    // ...while the first, idle between frames all that time, still answers.
    c.send(Opcode.Ping, 2);
    await c.waitFor(2);
    expect(serverSockets[0].destroyed).toBe(false);
  });

  it('answers a connection over connectionsMax UNAVAILABLE (requestId 0) and closes it', async () => {
    const s = await startServer({ connectionsMax: 1 });
    const { first, second } = await connectPastMax(s.server, () => rawClient(s.port));
    expect(second.responses).toEqual([expect.objectContaining({ requestId: 0, status: Status.Unavailable })]);
    expect(second.responses[0].payload.toString()).toMatch(/connectionsMax is 1/);
    first.send(Opcode.Ping, 1);
    await first.waitFor(1);
  });

  it('a fatal frame from a client that keeps writing: answered, then the socket is destroyed (the client gets a reset)', async () => {
    const s = await startServer();
    const c = await rawClient(s.port);
    c.closed.catch(() => undefined); // once() rejects on the expected EPIPE / ECONNRESET
    const error = await floodUntilClosed(c.socket, Buffer.alloc(64 * 1024, 0x41));
    expect(c.responses[0]).toMatchObject({ requestId: 0, status: Status.BadRequest });
    expect(error).toMatchObject({ code: expect.stringMatching(/^(EPIPE|ECONNRESET)$/) });
  });

  it('stops reading a connection at inflightMax and resumes as answers go out', async () => {
    const s = await startServer({ inflightMax: 4 });
    const c = await rawClient(s.port);
    for (let i = 1; i <= 10; i++) c.send(Opcode.Set, i, `k${i}`, 'v');
    await until(() => s.writes.length === 4);
    // Give the socket every chance to deliver more: the server must not take them while paused.
    await new Promise((r) => setImmediate(r));
    expect(s.writes).toHaveLength(4);
    let released = 0;
    while (released < 10) {
      const pending = s.writes.slice(released);
      for (const w of pending) w.resolve({ status: Status.Ok, revision: ++released, message: '' });
      await until(() => s.writes.length > released || released === 10);
    }
    await c.waitFor(10);
    expect(new Set(c.responses.map((r) => r.requestId)).size).toBe(10);
  });

  it('graceful shutdown: refuses new connections, answers in-flight requests, then closes', async () => {
    const s = await startServer();
    const c = await rawClient(s.port);
    c.send(Opcode.Set, 1, 'k', 'v');
    await until(() => s.writes.length === 1);
    const closing = s.server.close();
    const refused = connect(s.port, '127.0.0.1');
    const [err] = (await once(refused, 'error')) as [NodeJS.ErrnoException];
    expect(err.code).toBe('ECONNREFUSED');
    s.writes[0].resolve({ status: Status.Ok, revision: 9, message: '' });
    await closing;
    await c.closed;
    expect(c.responses).toEqual([expect.objectContaining({ requestId: 1, status: Status.Ok, revision: 9 })]);
  });
});
