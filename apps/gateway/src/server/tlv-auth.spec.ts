import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { Opcode, Permission, RangeOptions, ResponseDecoder, Status, decodeHelloReply, encodeRangeSpec, encodeRequest, encodeTxnRequest, encodeWatchSpec, type Response } from '@cairn/protocol';
import { createLogger } from '@cairn/logging';
import { fakeAuthCluster } from '../auth/testing';
import { Watcher, type WatchHub, type WatchRequest, type WatchSink } from '../watch/watch-hub';
import { TcpServer } from './tcp-server';
import { ByteBudget } from './flow';
import { testFlowLimits } from './testing';

/** A TLV door over an in-memory auth cluster with auth enabled: root, and alice with readwrite on `app/` and read on `pub/`. */
async function start() {
  const c = fakeAuthCluster();
  await c.enableWithRoot('rootpw');
  await c.stack.admin.addRole('app');
  await c.stack.admin.changeRolePermissions('app', [{ prefix: Buffer.from('app/'), permission: Permission.ReadWrite }, { prefix: Buffer.from('pub/'), permission: Permission.Read }], true);
  await c.stack.admin.addUser('alice', 'alicepw', ['app']);
  const opened: WatchRequest[] = [];
  const hub = { open: (req: WatchRequest, sink: WatchSink) => (opened.push(req), { watcher: new Watcher(req, sink, 8, 0), revision: 7 }), cancel: () => undefined } satisfies Pick<WatchHub, 'open' | 'cancel'>;
  const server = new TcpServer(
    { limits: { keyBytesMax: 64, valueBytesMax: 64 }, inflightMax: 64, flow: testFlowLimits(), budget: new ByteBudget(1 << 24), connectionsMax: 8, drainTimeoutMs: 1000, reads: c.reads, writes: c.writes, status: () => ({ leaderId: 'c1' }), auth: c.stack.gate, watches: { hub, perConnectionMax: 4 } },
    createLogger('test', 'silent'),
  );
  await server.listen('127.0.0.1', 0);
  return { c, server, port: server.port(), opened };
}

/** A raw client: `call` sends one frame and resolves with the response of that request id. */
async function client(port: number) {
  const socket: Socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const decoder = new ResponseDecoder();
  const waiters = new Map<number, (r: Response) => void>();
  socket.on('data', (chunk: Buffer) => {
    for (const r of decoder.push(chunk)) waiters.get(r.requestId)?.(r);
  });
  let id = 0;
  const send = (opcode: Opcode, key: string | Buffer = '', value: string | Buffer = ''): Promise<Response> => {
    const requestId = ++id;
    const p = new Promise<Response>((resolve) => waiters.set(requestId, resolve));
    socket.write(encodeRequest({ opcode, requestId, flags: 0, key: Buffer.from(key), value: Buffer.from(value) }));
    return p;
  };
  return { socket, send, closed: once(socket, 'close') };
}

const text = (r: Response) => r.payload.toString('utf8');

describe('TLV door: HELLO and AUTH', () => {
  let s: Awaited<ReturnType<typeof start>>;
  beforeEach(async () => (s = await start()));
  afterEach(() => s.server.close());

  it('before AUTH serves only PING, HELLO and AUTH; every other opcode is UNAUTHENTICATED', async () => {
    const k = await client(s.port);
    expect((await k.send(Opcode.Ping, '', 'hi')).status).toBe(Status.Ok);
    const hello = await k.send(Opcode.Hello);
    expect(hello.status).toBe(Status.Ok);
    expect(decodeHelloReply(hello.payload)).toEqual({ protocolVersion: 1, authEnabled: true, user: null });
    for (const [op, key, value] of [
      [Opcode.Get, 'app/1', ''],
      [Opcode.Set, 'app/1', 'v'],
      [Opcode.Del, 'app/1', ''],
      [Opcode.Status, '', ''],
      [Opcode.Range, 'app/', encodeRangeSpec({ options: RangeOptions.Prefix })],
      [Opcode.Txn, '', encodeTxnRequest({ compares: [], success: [], failure: [] })],
      [Opcode.Watch, 'app/', encodeWatchSpec({ options: 0 })],
    ] as const) {
      const r = await k.send(op, key, value);
      expect([op, r.status, text(r)]).toEqual([op, Status.Unauthenticated, 'authentication required']);
    }
    expect(s.c.data.size).toBe(0);
    k.socket.destroy();
  });

  it('AUTH with user and password makes the connection that user: its prefix permissions then decide every opcode', async () => {
    const k = await client(s.port);
    const bad = await k.send(Opcode.Auth, 'alice', 'wrong');
    expect([bad.status, text(bad)]).toEqual([Status.Unauthenticated, 'invalid user name or password']);
    const good = await k.send(Opcode.Auth, 'alice', 'alicepw');
    expect([good.status, text(good)]).toEqual([Status.Ok, 'alice']);
    expect(decodeHelloReply((await k.send(Opcode.Hello)).payload)).toEqual({ protocolVersion: 1, authEnabled: true, user: 'alice' });
    expect((await k.send(Opcode.Set, 'app/1', 'v')).status).toBe(Status.Ok);
    expect((await k.send(Opcode.Get, 'app/1')).payload.toString()).toBe('v');
    expect((await k.send(Opcode.Set, 'pub/1', 'v')).status).toBe(Status.PermissionDenied);
    expect((await k.send(Opcode.Del, 'pub/1')).status).toBe(Status.PermissionDenied);
    expect((await k.send(Opcode.Incr, 'pub/n', Buffer.alloc(8))).status).toBe(Status.PermissionDenied);
    expect((await k.send(Opcode.Get, 'other')).status).toBe(Status.PermissionDenied);
    expect((await k.send(Opcode.Range, '', encodeRangeSpec({ options: RangeOptions.Prefix }))).status).toBe(Status.PermissionDenied);
    expect((await k.send(Opcode.Txn, '', encodeTxnRequest({ compares: [], success: [{ kind: 1, key: Buffer.from('pub/x'), value: Buffer.from('v') }], failure: [] }))).status).toBe(Status.PermissionDenied);
    expect((await k.send(Opcode.Status)).status).toBe(Status.Ok);
    // WATCH needs read on the whole watched range.
    expect((await k.send(Opcode.Watch, 'pub/', encodeWatchSpec({ options: 1 }))).status).toBe(Status.Ok);
    expect((await k.send(Opcode.Watch, 'p', encodeWatchSpec({ options: 1 }))).status).toBe(Status.PermissionDenied);
    expect(s.opened).toHaveLength(1);
    // A failed re-AUTH keeps the identity (Redis's rule); a successful one changes it.
    expect((await k.send(Opcode.Auth, 'root', 'nope')).status).toBe(Status.Unauthenticated);
    expect((await k.send(Opcode.Get, 'app/1')).status).toBe(Status.Ok);
    expect((await k.send(Opcode.Auth, 'root', 'rootpw')).status).toBe(Status.Ok);
    expect((await k.send(Opcode.Set, 'pub/1', 'v')).status).toBe(Status.Ok);
    k.socket.destroy();
  });

  it('frames pipelined behind an AUTH run as the user it authenticates', async () => {
    const k = await client(s.port);
    const [auth, set] = await Promise.all([k.send(Opcode.Auth, 'alice', 'alicepw'), k.send(Opcode.Set, 'app/p', 'v')]);
    expect([auth.status, set.status]).toEqual([Status.Ok, Status.Ok]);
    k.socket.destroy();
  });

  it('AUTH with a bearer token (no key); a bad token is UNAUTHENTICATED', async () => {
    const issued = await s.c.stack.gate.issueToken('alice');
    if (!('token' in issued)) throw new Error('no token');
    const k = await client(s.port);
    const bad = await k.send(Opcode.Auth, '', `${issued.token}x`);
    expect([bad.status, text(bad)]).toEqual([Status.Unauthenticated, 'invalid or expired token']);
    const good = await k.send(Opcode.Auth, '', issued.token);
    expect([good.status, text(good)]).toEqual([Status.Ok, 'alice']);
    expect((await k.send(Opcode.Set, 'app/t', 'v')).status).toBe(Status.Ok);
    k.socket.destroy();
  });

  it('closes the connection after its failuresPerConnectionMax-th failed AUTH, once answered', async () => {
    const k = await client(s.port);
    // fakeAuthCluster: failuresPerConnectionMax 3.
    // An unknown user gets the same answer as a wrong password.
    for (const user of ['alice', 'mallory']) {
      const r = await k.send(Opcode.Auth, user, 'bad');
      expect([r.status, text(r)]).toEqual([Status.Unauthenticated, 'invalid user name or password']);
    }
    const last = await k.send(Opcode.Auth, 'alice', 'bad2');
    expect(last.status).toBe(Status.Unauthenticated);
    await k.closed;
  });

  it('with auth disabled, everything is served without AUTH and HELLO says so', async () => {
    await s.c.stack.admin.setEnabled(false);
    const k = await client(s.port);
    expect(decodeHelloReply((await k.send(Opcode.Hello)).payload)).toEqual({ protocolVersion: 1, authEnabled: false, user: null });
    expect((await k.send(Opcode.Set, 'any', 'v')).status).toBe(Status.Ok);
    expect((await k.send(Opcode.Auth, 'alice', 'alicepw')).status).toBe(Status.Ok);
    k.socket.destroy();
  });
});
