import { Opcode, Status, encodeHelloReply, type Request } from '@cairn/protocol';
import { CairnClient, CairnPool, PermissionDeniedError, UnauthenticatedError, errorForResponse } from './index';
import { FakeServer, kvHandler, type FakeConn } from './testing/fake-gateway';

/**
 * A fake gateway with auth enabled: AUTH alice/pw or token "tok" logs a connection in; any other
 * request before that is UNAUTHENTICATED, as the real TLV door answers (docs/protocol.md "HELLO and AUTH").
 */
function authGate(inner: (req: Request, conn: FakeConn) => void) {
  const authed = new WeakSet<FakeConn>();
  return (req: Request, conn: FakeConn) => {
    if (req.opcode === Opcode.Auth) {
      const ok = (req.key.toString() === 'alice' && req.value.toString() === 'pw') || (req.key.length === 0 && req.value.toString() === 'tok');
      if (ok) authed.add(conn);
      return conn.reply(req, ok ? { payload: Buffer.from('alice') } : { status: Status.Unauthenticated, payload: Buffer.from('invalid user name or password') });
    }
    if (req.opcode === Opcode.Hello) return conn.reply(req, { payload: encodeHelloReply({ protocolVersion: 1, authEnabled: true, user: authed.has(conn) ? 'alice' : null }) });
    if (!authed.has(conn)) return conn.reply(req, { status: Status.Unauthenticated, payload: Buffer.from('authentication required') });
    inner(req, conn);
  };
}

let server: FakeServer;
const closers: (() => void)[] = [];

beforeEach(async () => {
  server = await FakeServer.start();
  server.onRequest = authGate(kvHandler().handler);
});

afterEach(async () => {
  for (const c of closers.splice(0)) c();
  await server.stop();
});

describe('client credentials', () => {
  it('CairnClient with username/password sends AUTH first, before any request, then works as that user', async () => {
    const c = await server.connect({ username: 'alice', password: 'pw' });
    closers.push(() => c.destroy());
    expect(await c.hello()).toEqual({ protocolVersion: 1, authEnabled: true, user: 'alice' });
    await c.set('k', 'v');
    expect((await c.get('k'))!.value.toString()).toBe('v');
    expect(server.seen.map((r) => Opcode[r.opcode])).toEqual(['Auth', 'Hello', 'Set', 'Get']);
    expect([server.seen[0].key.toString(), server.seen[0].value.toString()]).toEqual(['alice', 'pw']);
  });

  it('connect rejects UnauthenticatedError on wrong credentials and closes the connection; without credentials requests reject it', async () => {
    const err = await server.connect({ username: 'alice', password: 'nope' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnauthenticatedError);
    expect(err).toMatchObject({ code: 'UNAUTHENTICATED', status: Status.Unauthenticated, message: 'invalid user name or password', retryable: false });
    const anon = await server.connect();
    closers.push(() => anon.destroy());
    await expect(anon.get('k')).rejects.toMatchObject({ code: 'UNAUTHENTICATED', message: 'authentication required' });
    expect(await anon.hello()).toEqual({ protocolVersion: 1, authEnabled: true, user: null });
    // Re-AUTH on an open connection.
    expect(await anon.authenticate({ username: 'alice', password: 'pw' })).toBe('alice');
    expect(await anon.get('k')).toBeNull();
  });

  it('a token (or a function giving one, asked at every connect) goes as AUTH with no key', async () => {
    let asked = 0;
    const c = await server.connect({ token: () => (asked++, 'tok') });
    closers.push(() => c.destroy());
    await c.set('k', 'v');
    expect(asked).toBe(1);
    expect([server.seen[0].key.length, server.seen[0].value.toString()]).toEqual([0, 'tok']);
  });

  it('refuses inconsistent credentials with RangeError before connecting', async () => {
    await expect(CairnClient.connect({ host: '127.0.0.1', port: server.port, username: 'alice' })).rejects.toThrow(RangeError);
    await expect(CairnClient.connect({ host: '127.0.0.1', port: server.port, username: 'alice', password: 'pw', token: 't' })).rejects.toThrow(RangeError);
    await expect(CairnPool.connect({ gateways: [{ host: '127.0.0.1', port: server.port }], password: 'pw' })).rejects.toThrow(RangeError);
    expect(server.seen).toHaveLength(0);
  });

  it('maps UNAUTHENTICATED and PERMISSION_DENIED answers to typed errors', () => {
    const res = (status: Status, text: string) => ({ status, flags: 0, requestId: 1, revision: 0, payload: Buffer.from(text) });
    expect(errorForResponse(res(Status.PermissionDenied, 'user alice has no write permission on this key'))).toBeInstanceOf(PermissionDeniedError);
    expect(errorForResponse(res(Status.PermissionDenied, 'x')).code).toBe('PERMISSION_DENIED');
    expect(errorForResponse(res(Status.Unauthenticated, 'x'))).toBeInstanceOf(UnauthenticatedError);
  });

  it('CairnPool logs every connection in, and again on a reconnect after failover, before a queued request goes out', async () => {
    const p = await CairnPool.connect({ gateways: [{ host: '127.0.0.1', port: server.port }], username: 'alice', password: 'pw', reconnectBackoffBaseMs: 1, reconnectBackoffMaxMs: 5, random: () => 0.5 });
    closers.push(() => p.destroy());
    await p.set('a', '1');
    await server.stop();
    // No gateway is up: the GET waits for a reconnect (within its deadline), which logs in first.
    const get = p.get('a');
    server.seen.length = 0;
    await server.restart();
    server.onRequest = authGate(kvHandler().handler);
    expect(await get).toBeNull(); // a fresh fake store; answered, not refused UNAUTHENTICATED
    expect(server.seen.map((r) => Opcode[r.opcode])).toEqual(['Auth', 'Get']);
  });

  it('a reconnect refused AUTH (password changed meanwhile) fails waiting calls with UnauthenticatedError, not NoGatewayError at the deadline', async () => {
    const p = await CairnPool.connect({ gateways: [{ host: '127.0.0.1', port: server.port }], username: 'alice', password: 'pw', requestTimeoutMs: 60_000, reconnectBackoffBaseMs: 1, reconnectBackoffMaxMs: 5, random: () => 0.5 });
    closers.push(() => p.destroy());
    await p.set('a', '1');
    await server.stop();
    server.onRequest = (req, conn) => conn.reply(req, { status: Status.Unauthenticated, payload: Buffer.from('invalid user name or password') });
    await server.restart();
    await expect(p.get('a')).rejects.toBeInstanceOf(UnauthenticatedError);
  });

  it('CairnPool.connect rejects UnauthenticatedError when every connection is refused', async () => {
    await expect(CairnPool.connect({ gateways: [{ host: '127.0.0.1', port: server.port }], username: 'alice', password: 'bad' })).rejects.toBeInstanceOf(UnauthenticatedError);
  });
});
