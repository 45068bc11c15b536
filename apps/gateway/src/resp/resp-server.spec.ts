import { connect } from 'node:net';
import { once } from 'node:events';
import { createLogger } from '@cairn/logging';
import { RespSocketClient, encodeCommand } from '@cairn/resp';
import { ClusterView } from '../cluster/cluster-view';
import type { RespConnection } from './resp-connection';
import { RespServer, respParserLimits } from './resp-server';
import { fakeStore } from './testing';
import { ByteBudget, type FlowLimits } from '../server/flow';
import { OpenedDoors, connectPastMax, floodUntilClosed, testFlowLimits, until } from '../server/testing';

const RESP_BOUNDS = { respArgumentsMax: 64, respCommandBytesMax: 4096 };

/** A RespServer whose open connections a test can look at (DoorListener keeps them protected). */
class InspectedRespServer extends RespServer {
  openConnections(): RespConnection[] {
    return [...this.connections];
  }
}

async function startServer(opts: { hold?: boolean; inflightMax?: number; flow?: Partial<FlowLimits>; budgetBytes?: number; connectionsMax?: number; keysPerCommandMax?: number } = {}) {
  const store = fakeStore({ hold: opts.hold });
  const budget = new ByteBudget(opts.budgetBytes ?? 64 * 1024 * 1024);
  const server = new InspectedRespServer(
    {
      paths: store.paths,
      parserLimits: respParserLimits({ ...store.paths.limits, ...RESP_BOUNDS }),
      inflightMax: opts.inflightMax ?? 128,
      flow: testFlowLimits(opts.flow),
      budget,
      keysPerCommandMax: opts.keysPerCommandMax ?? 8,
      connectionsMax: opts.connectionsMax ?? 10,
      drainTimeoutMs: 60_000,
      info: { gatewayId: 'g1', version: '0.0.0', startedAtMs: Date.now(), respPort: 0, view: new ClusterView(), now: Date.now },
    },
    createLogger('test', 'silent'),
  );
  await server.listen('127.0.0.1', 0);
  opened.server(server);
  return { server, store, budget, port: server.port() };
}

/** Every server and client socket a test opened: closed after it. */
const opened = new OpenedDoors();
afterEach(() => opened.closeAll());

/** A RESP client whose replies the tests read as text: simple strings, `-errors`, bulks (null for nil). */
async function rawClient(port: number) {
  const c = await RespSocketClient.connect(port);
  opened.socket(c.socket);
  return {
    socket: c.socket,
    replies: c.replies,
    closed: c.closed,
    send: (...commands: (string[] | string)[]) => c.socket.write(Buffer.concat(commands.map((x) => (typeof x === 'string' ? Buffer.from(x) : encodeCommand(x))))),
    waitFor: (n: number) => c.waitFor(n),
    text: () => c.replies.map((r) => (r.type === 'bulk' ? (r.value?.toString() ?? null) : r.type === 'array' ? r.value : `${r.type === 'error' ? '-' : ''}${r.value}`)),
  };
}


describe('gateway RESP server', () => {
  it('answers pipelined commands in the order received although they complete out of order', async () => {
    const s = await startServer({ hold: true });
    const c = await rawClient(s.port);
    c.send(['SET', 'a', '1'], ['SET', 'b', '2'], ['PING'], 'ECHO inline\r\n');
    await until(() => s.store.held.length === 2);
    // Release the second write before the first: the replies still leave in command order.
    s.store.held[1].release();
    await until(() => s.store.data.has('b'));
    expect(c.replies).toEqual([]);
    s.store.held[0].release();
    await c.waitFor(4);
    expect(c.text()).toEqual(['OK', 'OK', 'PONG', 'inline']);
  });

  it('inline commands as nc sends them; a client that shuts its side still gets every reply', async () => {
    const s = await startServer();
    const c = await rawClient(s.port);
    c.socket.end('SET hello world\r\nGET hello\r\n');
    await c.closed;
    expect(c.text()).toEqual(['OK', 'world']);
  });

  it('a protocol error is answered after the earlier replies, then the connection closes', async () => {
    const s = await startServer({ hold: true });
    const c = await rawClient(s.port);
    c.send(['GET', 'k'], '*1\r\nx4\r\nPING\r\n', ['PING']);
    await until(() => s.store.held.length === 1);
    s.store.held[0].release();
    await c.closed;
    expect(c.text()).toEqual([null, "-ERR Protocol error: expected '$', got 'x'"]);
  });

  it('a bulk over the limit is a protocol error (invalid bulk length); a value just over valueBytesMax is a plain error', async () => {
    const s = await startServer();
    const c = await rawClient(s.port);
    c.send(['SET', 'k', 'x'.repeat(65)], ['PING']);
    await c.waitFor(2);
    expect(c.text()).toEqual(['-ERR value is 65 bytes; valueBytesMax is 64', 'PONG']);
    c.send(`*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$${respParserLimits({ ...s.store.paths.limits, ...RESP_BOUNDS }).bulkBytesMax + 1}\r\n`);
    await c.closed;
    expect(c.text()[2]).toBe('-ERR Protocol error: invalid bulk length');
  });

  it('a protocol error from a client that keeps writing: the error reply, then the socket is destroyed (the client gets a reset)', async () => {
    const s = await startServer();
    const c = await rawClient(s.port);
    c.closed.catch(() => undefined); // once() rejects on the expected EPIPE / ECONNRESET
    // The "Protocol desync" shape of Redis's test suite: a bad header, then 1 KiB lines forever.
    c.socket.write('*1\r\nx4\r\n');
    const error = await floodUntilClosed(c.socket, Buffer.from('A'.repeat(1024) + '\n'));
    expect(c.text()[0]).toBe("-ERR Protocol error: expected '$', got 'x'");
    expect(error).toMatchObject({ code: expect.stringMatching(/^(EPIPE|ECONNRESET)$/) });
  });

  it('a client that never reads: the connection stops being read at connectionReplyBytesMax; its bytes are released when it goes', async () => {
    const s = await startServer({ flow: { connectionReplyBytesMax: 64 * 1024 }, inflightMax: 1 << 20 });
    const c = await rawClient(s.port);
    c.socket.pause();
    c.closed.catch(() => undefined);
    const echo = encodeCommand(['ECHO', 'x'.repeat(1000)]);
    let sent = 0;
    const writeMore = () => {
      while (sent < 100_000 && c.socket.write(echo)) sent++;
    };
    c.socket.on('drain', writeMore);
    writeMore();
    await until(() => s.budget.used() > 64 * 1024 && s.server.openConnections().length === 1);
    const conn = s.server.openConnections()[0];
    // Paused: what it holds stays within the bound plus one chunk of replies.
    expect(conn.heldBytes().reply).toBeLessThanOrEqual(64 * 1024 + 70 * 1024);
    expect(sent).toBeLessThan(100_000);
    c.socket.destroy();
    await until(() => s.server.connectionCount() === 0);
    expect(s.budget.used()).toBe(0);
  });

  it('large replies to a client that does not read become -TRYAGAIN once the gateway holds pendingBytesMax', async () => {
    const s = await startServer({ hold: true, inflightMax: 1000, flow: { connectionReplyBytesMax: 64 * 1024 }, budgetBytes: 1024 * 1024 });
    s.store.data.set('k', { value: Buffer.alloc(256 * 1024, 5), revision: 1 });
    const c = await rawClient(s.port);
    c.socket.pause(); // does not read, for now
    c.send(...Array.from({ length: 400 }, () => ['GET', 'k']));
    let released = 0;
    const releaseAll = () => {
      while (released < s.store.held.length) s.store.held[released++].release();
    };
    await until(() => {
      releaseAll();
      return released === 400;
    });
    expect(s.budget.used()).toBeLessThanOrEqual(1024 * 1024 + 256 * 1024 + 64);
    c.socket.resume();
    await c.waitFor(400);
    const kinds = new Set(c.replies.map((r) => r.type));
    expect(kinds).toEqual(new Set(['bulk', 'error']));
    expect(c.text().find((t) => typeof t === 'string' && t.startsWith('-'))).toMatch(/^-TRYAGAIN reply of \d+ bytes not sent/);
  });

  it('a command not completed within frameDeadlineMs is a protocol error and closes', async () => {
    const s = await startServer({ flow: { frameDeadlineMs: 20 } });
    const c = await rawClient(s.port);
    c.send(['PING'], '*2\r\n$3\r\nGET\r\n$1\r\n');
    await c.closed;
    expect(c.text()).toEqual(['PONG', '-ERR Protocol error: command not completed within frameDeadlineMs (20 ms)']);
  });

  it('bounds: too many arguments closes (invalid multibulk length); too many keys is an error and the connection stays', async () => {
    const s = await startServer({ keysPerCommandMax: 3 });
    const c = await rawClient(s.port);
    c.send(['MGET', 'a', 'b', 'c', 'd'], ['MSET', 'a', '1', 'b', '2', 'c', '3', 'd', '4'], ['MGET', 'a', 'b', 'c']);
    await c.waitFor(3);
    expect(c.text().slice(0, 2)).toEqual(['-ERR too many keys: 4; keysPerCommandMax is 3', '-ERR too many keys: 4; keysPerCommandMax is 3']);
    expect(c.replies[2]).toMatchObject({ type: 'array' });
    expect(s.store.data.size).toBe(0);
    c.send(`*${RESP_BOUNDS.respArgumentsMax + 1}\r\n`);
    await c.closed;
    expect(c.text()[3]).toBe('-ERR Protocol error: invalid multibulk length');
  });

  it('a connection over connectionsMax gets -ERR max number of clients reached and is closed', async () => {
    const s = await startServer({ connectionsMax: 1 });
    const { first, second } = await connectPastMax(s.server, () => rawClient(s.port));
    expect(second.text()).toEqual(['-ERR max number of clients reached']);
    first.send(['PING']);
    await first.waitFor(1);
  });

  it('QUIT answers +OK, ignores what follows and closes', async () => {
    const s = await startServer();
    const c = await rawClient(s.port);
    c.send(['PING'], ['QUIT'], ['SET', 'k', 'v']);
    await c.closed;
    expect(c.text()).toEqual(['PONG', 'OK']);
    expect(s.store.data.size).toBe(0);
  });

  it('an MGET whose values pass connectionRequestBytesMax is answered in parts, in order with the commands around it', async () => {
    const s = await startServer({ flow: { connectionRequestBytesMax: 64 * 1024 }, keysPerCommandMax: 64 });
    const keys = Array.from({ length: 40 }, (_, i) => `k${i}`);
    keys.forEach((k, i) => s.store.data.set(k, { value: Buffer.alloc(16 * 1024, i), revision: 1 }));
    s.budget.observeValue(16 * 1024); // reads reserve 16 KiB each: 4 keys per window
    const c = await rawClient(s.port);
    c.send(['MGET', ...keys], ['SET', 'after', 'x'], ['GET', 'after']);
    await c.waitFor(3);
    const mget = c.replies[0];
    // Compared with Buffer.equals: a deep toEqual of 640 KiB of Buffers takes seconds.
    expect(mget.type === 'array' && mget.value?.map((v) => v.type === 'bulk' && v.value?.equals(Buffer.alloc(16 * 1024, v.value[0])) && v.value[0])).toEqual(keys.map((_, i) => i));
    expect(c.text().slice(1)).toEqual(['OK', 'x']);
    await until(() => s.budget.used() === 0);
  });

  it('stops reading a connection at inflightMax pending replies and resumes as they go out', async () => {
    const s = await startServer({ hold: true, inflightMax: 4 });
    const c = await rawClient(s.port);
    c.send(...Array.from({ length: 10 }, (_, i) => ['SET', `k${i}`, 'v']));
    await until(() => s.store.held.length === 4);
    await new Promise((r) => setImmediate(r));
    expect(s.store.held).toHaveLength(4);
    while (c.replies.length < 10) {
      const h = s.store.held.shift();
      if (h) h.release();
      else await new Promise((r) => setImmediate(r));
    }
    expect(c.text()).toEqual(Array(10).fill('OK'));
    expect([...s.store.data.keys()]).toEqual(Array.from({ length: 10 }, (_, i) => `k${i}`));
  });

  it('graceful shutdown: refuses new connections, answers pending commands, then closes', async () => {
    const s = await startServer({ hold: true });
    const c = await rawClient(s.port);
    c.send(['SET', 'k', 'v']);
    await until(() => s.store.held.length === 1);
    const closing = s.server.close();
    const refused = connect(s.port, '127.0.0.1');
    const [err] = (await once(refused, 'error')) as [NodeJS.ErrnoException];
    expect(err.code).toBe('ECONNREFUSED');
    s.store.held[0].release();
    await closing;
    await c.closed;
    expect(c.text()).toEqual(['OK']);
  });
});
