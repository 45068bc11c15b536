import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { CommandCondition, CommandOp, Opcode, RequestFlags, ResponseDecoder, Status, encodeRequest, type Command, type Response } from '@cairn/protocol';
import { createLogger } from '@cairn/messaging';
import { TcpServer } from './tcp-server';
import type { ReadPath, ReadResult } from '../paths/read-path';
import type { WritePath, WriteResult } from '../paths/write-path';

/** Write and read paths whose answers the test releases by hand (no NATS: this tests the TCP side). */
function fakePaths() {
  const writes: { command: Command; resolve: (r: WriteResult) => void }[] = [];
  const reads: { key: string; minIndex: number; resolve: (r: ReadResult) => void }[] = [];
  const writePath = { submit: (command: Command) => new Promise<WriteResult>((resolve) => writes.push({ command, resolve })) } as unknown as WritePath;
  const readPath = {
    get: (key: Uint8Array, minIndex: number) => new Promise<ReadResult>((resolve) => reads.push({ key: Buffer.from(key).toString(), minIndex, resolve })),
  } as unknown as ReadPath;
  return { writes, reads, writePath, readPath };
}

async function startServer(overrides: Partial<{ inflightMax: number; idleTimeoutMs: number; drainTimeoutMs: number }> = {}) {
  const paths = fakePaths();
  const server = new TcpServer(
    {
      limits: { keyBytesMax: 16, valueBytesMax: 64 },
      inflightMax: overrides.inflightMax ?? 128,
      idleTimeoutMs: overrides.idleTimeoutMs ?? 60_000,
      connectionsMax: 10,
      drainTimeoutMs: overrides.drainTimeoutMs ?? 60_000,
      reads: paths.readPath,
      writes: paths.writePath,
      status: () => ({ leaderId: 'c1' }),
    },
    createLogger('test', 'silent'),
  );
  await server.listen('127.0.0.1', 0);
  const port = (server as unknown as { server: { address(): { port: number } } }).server.address().port;
  return { server, port, ...paths };
}

/** A raw protocol client: sends frames, collects responses, resolves waiters by count. */
async function rawClient(port: number) {
  const socket: Socket = connect(port, '127.0.0.1');
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

/** Resolves once `cond()` holds, re-checking after each I/O turn (an event wait, not a sleep). */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setImmediate(r));
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
    c.socket.end();
    await s.server.close();
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
    expect(s.reads.map((r) => r.minIndex)).toEqual([41, 0]);
    s.reads[1].resolve({ status: Status.NotFound, revision: 0, value: new Uint8Array(0), message: '' });
    s.reads[0].resolve({ status: Status.Ok, revision: 41, value: Buffer.from('v1'), message: '' });
    await c.waitFor(4);
    expect(c.responses.slice(2).map((r) => [r.requestId, r.status])).toEqual([
      [4, Status.NotFound],
      [3, Status.Ok],
    ]);
    c.socket.destroy();
    await s.server.close();
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
    await s.server.close();
  });

  it('STATUS returns the cluster view as JSON', async () => {
    const s = await startServer();
    const c = await rawClient(s.port);
    c.send(Opcode.Status, 1);
    await c.waitFor(1);
    expect(JSON.parse(c.responses[0].payload.toString())).toEqual({ leaderId: 'c1' });
    c.socket.destroy();
    await s.server.close();
  });

  it('closes an idle connection but not one with requests in flight', async () => {
    const s = await startServer({ idleTimeoutMs: 50 });
    const busy = await rawClient(s.port);
    busy.send(Opcode.Set, 1, 'k', 'v');
    const idle = await rawClient(s.port);
    await idle.closed; // closed by the idle timeout
    await until(() => s.writes.length === 1);
    expect(busy.socket.destroyed).toBe(false);
    s.writes[0].resolve({ status: Status.Ok, revision: 1, message: '' });
    await busy.waitFor(1);
    await busy.closed; // idle again after its answer
    await s.server.close();
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
    c.socket.destroy();
    await s.server.close();
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
