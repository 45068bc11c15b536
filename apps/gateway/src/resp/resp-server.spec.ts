import { connect } from 'node:net';
import { once } from 'node:events';
import { createLogger } from '@cairn/messaging';
import { RespSocketClient, encodeCommand } from '@cairn/resp';
import { ClusterView } from '../cluster/cluster-view';
import { RespServer, respParserLimits } from './resp-server';
import { fakeStore } from './testing';

async function startServer(opts: { hold?: boolean; inflightMax?: number } = {}) {
  const store = fakeStore({ hold: opts.hold });
  const server = new RespServer(
    {
      paths: store.paths,
      parserLimits: respParserLimits(store.paths.limits),
      inflightMax: opts.inflightMax ?? 128,
      idleTimeoutMs: 60_000,
      connectionsMax: 10,
      drainTimeoutMs: 60_000,
      info: { gatewayId: 'g1', version: '0.0.0', startedAtMs: Date.now(), respPort: 0, view: new ClusterView() },
    },
    createLogger('test', 'silent'),
  );
  await server.listen('127.0.0.1', 0);
  return { server, store, port: server.port() };
}

/** A RESP client whose replies the tests read as text: simple strings, `-errors`, bulks (null for nil). */
async function rawClient(port: number) {
  const c = await RespSocketClient.connect(port);
  return {
    socket: c.socket,
    replies: c.replies,
    closed: c.closed,
    send: (...commands: (string[] | string)[]) => c.socket.write(Buffer.concat(commands.map((x) => (typeof x === 'string' ? Buffer.from(x) : encodeCommand(x))))),
    waitFor: (n: number) => c.waitFor(n),
    text: () => c.replies.map((r) => (r.type === 'bulk' ? (r.value?.toString() ?? null) : r.type === 'array' ? r.value : `${r.type === 'error' ? '-' : ''}${r.value}`)),
  };
}

/** Resolves once `cond()` holds, re-checking after each I/O turn (an event wait, not a sleep). */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setImmediate(r));
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
    c.socket.destroy();
    await s.server.close();
  });

  it('inline commands as nc sends them; a client that shuts its side still gets every reply', async () => {
    const s = await startServer();
    const c = await rawClient(s.port);
    c.socket.end('SET hello world\r\nGET hello\r\n');
    await c.closed;
    expect(c.text()).toEqual(['OK', 'world']);
    await s.server.close();
  });

  it('a protocol error is answered after the earlier replies, then the connection closes', async () => {
    const s = await startServer({ hold: true });
    const c = await rawClient(s.port);
    c.send(['GET', 'k'], '*1\r\nx4\r\nPING\r\n', ['PING']);
    await until(() => s.store.held.length === 1);
    s.store.held[0].release();
    await c.closed;
    expect(c.text()).toEqual([null, "-ERR Protocol error: expected '$', got 'x'"]);
    await s.server.close();
  });

  it('a bulk over the limit is a protocol error (invalid bulk length); a value just over valueBytesMax is a plain error', async () => {
    const s = await startServer();
    const c = await rawClient(s.port);
    c.send(['SET', 'k', 'x'.repeat(65)], ['PING']);
    await c.waitFor(2);
    expect(c.text()).toEqual(['-ERR value is 65 bytes; valueBytesMax is 64', 'PONG']);
    c.send(`*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$${respParserLimits(s.store.paths.limits).bulkBytesMax + 1}\r\n`);
    await c.closed;
    expect(c.text()[2]).toBe('-ERR Protocol error: invalid bulk length');
    await s.server.close();
  });

  it('QUIT answers +OK, ignores what follows and closes', async () => {
    const s = await startServer();
    const c = await rawClient(s.port);
    c.send(['PING'], ['QUIT'], ['SET', 'k', 'v']);
    await c.closed;
    expect(c.text()).toEqual(['PONG', 'OK']);
    expect(s.store.data.size).toBe(0);
    await s.server.close();
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
    c.socket.destroy();
    await s.server.close();
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
