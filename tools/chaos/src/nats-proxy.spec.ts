import { once } from 'node:events';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { TcpProxy } from './nats-proxy';

/** An upstream that echoes every byte back (stands in for nats-server: the proxy is protocol-blind). */
async function echoServer(): Promise<{ server: Server; port: number; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    s.pipe(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as { port: number }).port, sockets };
}

async function connect(port: number): Promise<Socket> {
  const s = createConnection({ host: '127.0.0.1', port });
  s.on('error', () => undefined);
  await once(s, 'connect');
  return s;
}

/** Resolves when `s` is closed (events.once would reject on the ECONNRESET 'error' that precedes it). */
const closeOf = (s: Socket) => new Promise<void>((resolve) => (s.destroyed ? resolve() : s.once('close', () => resolve())));

/** Connects and resolves with the bytes received before the proxy closed the connection. */
function refusedConnection(port: number): Promise<number> {
  const s = createConnection({ host: '127.0.0.1', port });
  let got = 0;
  s.on('error', () => undefined);
  s.on('data', (c: Buffer) => (got += c.length));
  s.on('connect', () => s.write('PING\r\n'));
  return closeOf(s).then(() => got);
}

/** Writes `data` and resolves with exactly that many bytes read back. */
function roundTrip(s: Socket, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const onData = (c: Buffer) => {
      chunks.push(c);
      got += c.length;
      if (got >= data.length) {
        s.off('data', onData);
        resolve(Buffer.concat(chunks));
      }
    };
    s.on('data', onData);
    s.once('close', () => reject(new Error(`closed after ${got} of ${data.length} bytes`)));
    s.write(data);
  });
}

describe('TcpProxy (real sockets)', () => {
  let upstream: Awaited<ReturnType<typeof echoServer>>;
  let proxy: TcpProxy;
  beforeEach(async () => {
    upstream = await echoServer();
    proxy = await TcpProxy.start({ upstreamHost: '127.0.0.1', upstreamPort: upstream.port, connectionsMax: 3 });
  });
  afterEach(async () => {
    await proxy.close();
    for (const s of upstream.sockets) s.destroy();
    await new Promise((r) => upstream.server.close(r));
  });

  it('forwards bytes both ways, 4 MiB included', async () => {
    const s = await connect(proxy.port);
    const big = Buffer.alloc(4 << 20, 'cairn;');
    expect((await roundTrip(s, big)).equals(big)).toBe(true);
    expect(proxy.stats()).toMatchObject({ forwarded: 1, open: 1, refused: 0 });
    expect(proxy.url).toBe(`nats://127.0.0.1:${proxy.port}`);
    s.destroy();
  });

  it('cut destroys open connections with a reset and refuses new ones; heal lets them through again', async () => {
    const a = await connect(proxy.port);
    await roundTrip(a, Buffer.from('hello'));
    const closed = closeOf(a);
    const upstreamClosed = closeOf([...upstream.sockets][0]);
    expect(proxy.cut()).toBe(1);
    expect(proxy.cutOff).toBe(true);
    await closed;
    await upstreamClosed; // the process's connection is gone on the server side too
    // A reconnect during the cut is accepted by the kernel, then reset at once: nothing gets through.
    expect(await refusedConnection(proxy.port)).toBe(0);
    expect(proxy.stats()).toMatchObject({ severed: 1, refused: 1, open: 0 });
    proxy.heal();
    const c = await connect(proxy.port);
    expect((await roundTrip(c, Buffer.from('back'))).toString()).toBe('back');
    c.destroy();
  });

  it('refuses connections beyond connectionsMax', async () => {
    const open = await Promise.all([1, 2, 3].map(() => connect(proxy.port)));
    for (const s of open) await roundTrip(s, Buffer.from('ok'));
    expect(await refusedConnection(proxy.port)).toBe(0);
    expect(proxy.stats()).toMatchObject({ open: 3, refused: 1 });
    for (const s of open) s.destroy();
  });

  it('closes the client side when the upstream goes away (nats-server stopped)', async () => {
    const s = await connect(proxy.port);
    await roundTrip(s, Buffer.from('hi'));
    const closed = closeOf(s);
    for (const u of upstream.sockets) u.destroy();
    await closed;
    expect(proxy.stats().open).toBe(0);
  });
});
