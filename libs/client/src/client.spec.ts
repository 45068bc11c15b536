import { Opcode, RequestFlags, ResponseFlags, Status, encodeResponse, type Request, type Response } from '@cairn/protocol';
import { CairnClient, CairnError, ConnectionClosedError, NotLeaderError, ResponseProtocolError, TimeoutError, type ClientOptions } from './index';
import { FakeServer, kvHandler, type FakeConn } from './testing/fake-gateway';

let server: FakeServer;
let clients: CairnClient[] = [];

async function connect(opts: Partial<ClientOptions> = {}): Promise<CairnClient> {
  const c = await server.connect(opts);
  clients.push(c);
  return c;
}

beforeEach(async () => {
  server = await FakeServer.start();
  clients = [];
});

afterEach(async () => {
  for (const c of clients) c.destroy();
  await server.stop();
});

describe('CairnClient operations', () => {
  it('ping, set, get, del, status against the fake gateway', async () => {
    const kv = kvHandler();
    server.onRequest = kv.handler;
    const c = await connect();
    await c.ping();
    await c.ping(Buffer.from('echo me'));
    expect(await c.set('greeting', 'hello')).toEqual({ revision: 1, applied: true });
    expect(await c.get('greeting')).toEqual({ value: Buffer.from('hello'), revision: 1, createRevision: 1, version: 1 });
    const bin = new Uint8Array([0, 255, 1]);
    expect(await c.set(bin, bin)).toEqual({ revision: 2, applied: true });
    expect((await c.get(bin))!.value).toEqual(Buffer.from(bin));
    expect(await c.del('greeting')).toEqual({ revision: 3 });
    expect(await c.get('greeting')).toBeNull();
    expect(await c.del('never-there')).toEqual({ revision: 4 });
    expect(await c.status()).toEqual({ leaderId: 'c1', consensus: [] });
    await c.get('greeting', { stale: true });
    const meta = RequestFlags.Meta;
    expect(kv.seen.map((r) => r.flags)).toEqual([0, 0, 0, meta, 0, meta, 0, meta, 0, 0, meta | RequestFlags.Stale]);
    expect(kv.seen.map((r) => r.opcode)).toEqual([Opcode.Ping, Opcode.Ping, Opcode.Set, Opcode.Get, Opcode.Set, Opcode.Get, Opcode.Del, Opcode.Get, Opcode.Del, Opcode.Status, Opcode.Get]);
    await c.close();
    expect(c.stats().closed).toBe(true);
  });

  it('set with ifAbsent / ifPresent sends the condition flag and reports whether it applied', async () => {
    const kv = kvHandler();
    server.onRequest = kv.handler;
    const c = await connect();
    expect(await c.set('lock', 'a', { ifPresent: true })).toEqual({ revision: 1, applied: false });
    expect(await c.set('lock', 'a', { ifAbsent: true })).toEqual({ revision: 2, applied: true });
    expect(await c.set('lock', 'b', { ifAbsent: true })).toEqual({ revision: 3, applied: false });
    expect(await c.set('lock', 'c', { ifPresent: true })).toEqual({ revision: 4, applied: true });
    expect((await c.get('lock'))!.value.toString()).toBe('c');
    expect(kv.seen.map((r) => r.flags)).toEqual([RequestFlags.IfPresent, RequestFlags.IfAbsent, RequestFlags.IfAbsent, RequestFlags.IfPresent, RequestFlags.Meta]);
    await expect(c.set('lock', 'd', { ifAbsent: true, ifPresent: true })).rejects.toThrow(/exclude each other/);
  });

  it('a SET with LEASE: CONDITION_FAILED is applied false unless a response flag says the lease refused it (docs/protocol.md "Response flags")', async () => {
    // The gateway's answers: a false IF_ABSENT (flags 0), a lease not live, a lease full; then, from a gateway before the flags, the same by reason text only.
    const answers: Partial<Response>[] = [
      { payload: Buffer.from('condition not met') },
      { flags: ResponseFlags.LeaseNotFound, payload: Buffer.from('lease not found') },
      { flags: ResponseFlags.LeaseKeysFull, payload: Buffer.from('lease full: …') },
      { flags: ResponseFlags.LeaseNotFound, payload: Buffer.from('condition not met') }, // the flag decides, not the text
      { payload: Buffer.from('lease not found') },
    ];
    server.onRequest = (req, conn) => conn.reply(req, { status: Status.ConditionFailed, revision: 9, ...answers.shift() });
    const c = await connect();
    expect(await c.set('l', 'v', { ifAbsent: true, lease: 7 })).toEqual({ revision: 9, applied: false });
    await expect(c.set('l', 'v', { ifAbsent: true, lease: 7 })).rejects.toMatchObject({ code: 'LEASE_NOT_FOUND', message: 'lease not found' });
    await expect(c.set('l', 'v', { lease: 7 })).rejects.toMatchObject({ code: 'TOO_LARGE', message: 'lease full: …' });
    await expect(c.set('l', 'v', { ifRevision: 3, lease: 7 })).rejects.toMatchObject({ code: 'LEASE_NOT_FOUND' });
    await expect(c.set('l', 'v', { ifAbsent: true, lease: 7 })).rejects.toMatchObject({ code: 'LEASE_NOT_FOUND' });
    expect(answers).toEqual([]);
  });

  it('maps error statuses to typed errors with codes and retryability', async () => {
    const answers: Record<string, Partial<Response>> = {
      unavailable: { status: Status.Unavailable, payload: Buffer.from('no leader') },
      bad: { status: Status.BadRequest, payload: Buffer.from('unknown flag bits') },
      big: { status: Status.TooLarge, payload: Buffer.from('value of 2 bytes exceeds valueBytesMax 1') },
      error: { status: Status.Error, payload: Buffer.from('boom') },
      leader: { status: Status.NotLeader, payload: Buffer.from('c2') },
      nohint: { status: Status.NotLeader },
      weird: { status: 0x7f as Status, payload: Buffer.from('from the future') },
    };
    server.onRequest = (req, conn) => conn.reply(req, answers[req.key.toString()]);
    const c = await connect();
    const fail = (key: string) => c.set(key, 'v').then(() => Promise.reject(new Error('resolved')), (e: CairnError) => e);
    expect(await fail('unavailable')).toMatchObject({ name: 'UnavailableError', code: 'UNAVAILABLE', status: Status.Unavailable, retryable: true, message: 'no leader' });
    expect(await fail('bad')).toMatchObject({ name: 'BadRequestError', code: 'BAD_REQUEST', retryable: false, message: 'unknown flag bits' });
    expect(await fail('big')).toMatchObject({ name: 'TooLargeError', code: 'TOO_LARGE', retryable: false });
    expect(await fail('error')).toMatchObject({ name: 'ServerError', code: 'SERVER_ERROR', status: Status.Error, message: 'boom' });
    const nl = await fail('leader');
    expect(nl).toBeInstanceOf(NotLeaderError);
    expect(nl).toMatchObject({ code: 'NOT_LEADER', leaderHint: 'c2', retryable: true });
    expect(await fail('nohint')).toMatchObject({ leaderHint: '' });
    expect(await fail('weird')).toMatchObject({ code: 'SERVER_ERROR', status: 0x7f, message: expect.stringContaining('STATUS_0x7f') });
    expect(await fail('bad')).toBeInstanceOf(CairnError);
    // The raw request() does not map statuses.
    expect(await c.request(Opcode.Set, 'leader', 'v')).toMatchObject({ status: Status.NotLeader, payload: Buffer.from('c2') });
  });

  it('rejects a wrong PING echo', async () => {
    server.onRequest = (req, conn) => conn.reply(req, { payload: Buffer.from('other') });
    const c = await connect();
    await expect(c.ping(Buffer.from('mine'))).rejects.toBeInstanceOf(ResponseProtocolError);
  });
});

describe('CairnClient pipelining', () => {
  it('keeps up to inflightMax requests in flight, matches out-of-order replies, 10k requests', async () => {
    const total = 10_000;
    const inflightMax = 1024;
    const c = await connect({ inflightMax });
    let held: { req: Request; conn: FakeConn }[] = [];
    let answered = 0;
    let firstWindow: { keys: string[]; stats: ReturnType<CairnClient['stats']> } | null = null;
    const requestIds = new Set<number>();
    // Hold requests until a full window (or the rest) is outstanding, then answer them in reverse.
    server.onRequest = (req, conn) => {
      requestIds.add(req.requestId);
      held.push({ req, conn });
      if (held.length === Math.min(inflightMax, total - answered)) {
        // Before any answer the client must have sent exactly the first window, the rest waiting.
        firstWindow ??= { keys: held.map((h) => h.req.key.toString()), stats: c.stats() };
        const batch = held.reverse();
        held = [];
        answered += batch.length;
        for (const h of batch) h.conn.reply(h.req, { revision: Number(h.req.key.toString()) + 1 });
      }
    };
    const results = await Promise.all(Array.from({ length: total }, (_, i) => c.set(String(i), 'v')));
    expect(results.map((r) => r.revision)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    expect(firstWindow!.keys).toEqual(Array.from({ length: inflightMax }, (_, i) => String(i)));
    expect(firstWindow!.stats).toMatchObject({ inflight: inflightMax, waiting: total - inflightMax });
    expect(requestIds.size).toBeGreaterThan(inflightMax); // fresh ids as slots free up
    expect(c.stats()).toEqual({ inflight: 0, waiting: 0, lateResponses: 0, closed: false });
  });

  it('coalesces the frames of one tick into one write', async () => {
    const chunks: number[] = [];
    server.onRequest = (req, conn) => conn.reply(req, {});
    const c = await connect();
    server.conns[0].socket.prependListener('data', (chunk: Buffer) => chunks.push(chunk.length));
    await Promise.all(Array.from({ length: 50 }, () => c.ping()));
    expect(chunks.reduce((a, b) => a + b, 0)).toBe(50 * 16);
    expect(chunks.length).toBeLessThan(50);
  });

  it('range pages and scan iterates every page: prefix, start/end, reverse, keys only, count only', async () => {
    const kv = kvHandler();
    server.onRequest = kv.handler;
    const c = await connect();
    for (const k of ['a/1', 'a/2', 'a/3', 'a/4', 'a/5', 'b/1']) await c.set(k, `v-${k}`);
    await c.set('a/2', 'again');
    const first = await c.range({ prefix: 'a/', limit: 2 });
    expect(first).toMatchObject({ revision: 7, count: 5, more: true });
    expect(first.items.map((it) => it.key.toString())).toEqual(['a/1', 'a/2']);
    expect(first.items[1]).toMatchObject({ value: Buffer.from('again'), revision: 7, createRevision: 2, version: 2 });
    const second = await c.range({ prefix: 'a/', limit: 2, token: first.token! });
    expect(second.items.map((it) => it.key.toString())).toEqual(['a/3', 'a/4']);
    const all: string[] = [];
    for await (const it of c.scan({ prefix: 'a/', limit: 2 })) all.push(it.key.toString());
    expect(all).toEqual(['a/1', 'a/2', 'a/3', 'a/4', 'a/5']);
    const rev: string[] = [];
    for await (const it of c.scan({ start: 'a/3', end: 'b/2', reverse: true, keysOnly: true })) rev.push(`${it.key.toString()}=${it.value.toString()}`);
    expect(rev).toEqual(['b/1=', 'a/5=', 'a/4=', 'a/3=']);
    expect(await c.range({ prefix: 'a/', countOnly: true })).toMatchObject({ count: 5, items: [], more: false, token: null });
    await expect(c.range({ prefix: 'a/', start: 'x' })).rejects.toThrow(RangeError);
    const rangeFlags = kv.seen.filter((r) => r.opcode === Opcode.Range).map((r) => r.flags);
    expect(new Set(rangeFlags)).toEqual(new Set([0]));
    await c.range({ prefix: 'a/', stale: true });
    expect(kv.seen[kv.seen.length - 1].flags).toBe(RequestFlags.Stale);
  });

  it('pages stop after keysMax keys, the last page asking only for the keys still wanted', async () => {
    const kv = kvHandler();
    server.onRequest = kv.handler;
    const c = await connect();
    for (const k of ['a/1', 'a/2', 'a/3', 'a/4', 'a/5']) await c.set(k, 'v');
    const pages: { keys: string[]; more: boolean }[] = [];
    for await (const p of c.pages({ prefix: 'a/', limit: 2, keysMax: 3 })) pages.push({ keys: p.items.map((it) => it.key.toString()), more: p.more });
    expect(pages).toEqual([
      { keys: ['a/1', 'a/2'], more: true },
      { keys: ['a/3'], more: true },
    ]);
    const one: string[] = [];
    for await (const p of c.pages({ prefix: 'a/', keysMax: 4 })) one.push(p.items.map((it) => it.key.toString()).join(','));
    expect(one).toEqual(['a/1,a/2,a/3,a/4']);
    const all: string[] = [];
    for await (const it of c.scan({ prefix: 'a/', keysMax: 10, limit: 2 })) all.push(it.key.toString());
    expect(all).toEqual(['a/1', 'a/2', 'a/3', 'a/4', 'a/5']);
    await expect(c.pages({ prefix: 'a/', keysMax: 0 }).next()).rejects.toThrow(RangeError);
  });

  it('a META answer shorter than its 16 metadata bytes is a protocol error, never a value', async () => {
    server.onRequest = (req, conn) => conn.reply(req, { flags: ResponseFlags.Meta, revision: 5, payload: Buffer.from('short') });
    const c = await connect();
    await expect(c.get('k')).rejects.toBeInstanceOf(ResponseProtocolError);
  });

  it('delivers responses that arrive in one chunk, in any order', async () => {
    const held: { req: Request; conn: FakeConn }[] = [];
    server.onRequest = (req, conn) => {
      held.push({ req, conn });
      if (held.length < 3) return;
      const frames = [2, 0, 1].map((i) => encodeResponse({ status: Status.Ok, flags: 0, requestId: held[i].req.requestId, revision: i + 10, payload: held[i].req.key }));
      conn.socket.write(Buffer.concat(frames));
    };
    const c = await connect();
    const got = await Promise.all(['a', 'b', 'c'].map((k) => c.get(k)));
    expect(got).toEqual([
      { value: Buffer.from('a'), revision: 10 },
      { value: Buffer.from('b'), revision: 11 },
      { value: Buffer.from('c'), revision: 12 },
    ]);
  });
});

describe('CairnClient failures', () => {
  it('times out one request, keeps the connection, and drops the late response', async () => {
    let hung: { req: Request; conn: FakeConn } | null = null;
    server.onRequest = (req, conn) => {
      if (req.key.toString() === 'hang') hung = { req, conn };
      else conn.reply(req, { payload: req.value });
    };
    const c = await connect({ requestTimeoutMs: 50 });
    const err = await c.get('hang').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect(err).toMatchObject({ code: 'TIMEOUT', retryable: true });
    expect(c.stats().inflight).toBe(0);
    hung!.conn.reply(hung!.req, { payload: Buffer.from('too late') });
    await c.ping(Buffer.from('still alive'));
    expect(c.stats().lateResponses).toBe(1);
  });

  it('times out calls still waiting for an in-flight slot', async () => {
    server.onRequest = () => undefined; // never answers
    const c = await connect({ requestTimeoutMs: 50, inflightMax: 1 });
    const errs = await Promise.all([c.ping(), c.ping(), c.ping()].map((p) => p.catch((e: unknown) => e)));
    expect(errs.map((e) => (e as CairnError).code)).toEqual(['TIMEOUT', 'TIMEOUT', 'TIMEOUT']);
    expect(c.stats()).toMatchObject({ inflight: 0, waiting: 0 });
  });

  it('rejects every in-flight and waiting request when the server closes the connection, and every later call', async () => {
    let n = 0;
    server.onRequest = (_req, conn) => {
      if (++n === 3) conn.socket.destroy();
    };
    const c = await connect({ inflightMax: 3 });
    const errs = await Promise.all(Array.from({ length: 5 }, (_, i) => c.set(`k${i}`, 'v').catch((e: unknown) => e)));
    for (const e of errs) expect(e).toBeInstanceOf(ConnectionClosedError);
    expect(errs[0]).toMatchObject({ code: 'CONNECTION_CLOSED', retryable: true });
    await expect(c.get('after')).rejects.toMatchObject({ code: 'CONNECTION_CLOSED' });
    expect(c.stats()).toEqual({ inflight: 0, waiting: 0, lateResponses: 0, closed: true });
    await c.close(); // already closed: resolves
  });

  it('never uses request id 0 (the id of gateway notices), also when the counter wraps', async () => {
    const c = await connect();
    c['lastRequestId'] = 0xffff_fffe; // private: element access keeps its type checked
    await c.ping();
    await c.ping();
    expect(server.seen.map((r) => r.requestId)).toEqual([0xffff_ffff, 1]);
  });

  it('a requestId-0 notice before the server closes goes into the close error, not into lateResponses', async () => {
    server.onRequest = (_req, conn) => {
      conn.socket.end(encodeResponse({ status: Status.Unavailable, flags: 0, requestId: 0, revision: 0, payload: Buffer.from('too many connections') }));
    };
    const c = await connect();
    const err = await c.set('k', 'v').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionClosedError);
    expect((err as Error).message).toContain('UNAVAILABLE "too many connections"');
    expect(err).toMatchObject({ requestSent: true }); // the frame was written: outcome unknown
    expect(c.stats().lateResponses).toBe(0);
  });

  it('rejects an oversized response, fails the rest and closes the connection', async () => {
    const held: { req: Request; conn: FakeConn }[] = [];
    server.onRequest = (req, conn) => {
      held.push({ req, conn });
      if (held.length === 3) {
        conn.reply(held[0].req, { payload: Buffer.alloc(8) }); // fits
        conn.reply(held[1].req, { payload: Buffer.alloc(9) }); // over payloadBytesMax
      }
    };
    const c = await connect({ payloadBytesMax: 8 });
    const [ok, big, other] = await Promise.all(['a', 'b', 'c'].map((k) => c.get(k).catch((e: unknown) => e)));
    expect(ok).toEqual({ value: Buffer.alloc(8), revision: 0 });
    expect(big).toBeInstanceOf(ResponseProtocolError);
    expect(big).toMatchObject({ code: 'PROTOCOL_ERROR', message: expect.stringContaining('payloadBytesMax 8') });
    expect(other).toBeInstanceOf(ConnectionClosedError);
    expect(c.stats().closed).toBe(true);
  });

  it('treats a response with bad magic as a protocol violation', async () => {
    server.onRequest = (_req, conn) => conn.socket.write(Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n'));
    const c = await connect();
    await expect(c.ping()).rejects.toMatchObject({ code: 'CONNECTION_CLOSED', message: expect.stringContaining('magic') });
  });

  it('close() waits for in-flight requests, then refuses new ones', async () => {
    const held: { req: Request; conn: FakeConn }[] = [];
    server.onRequest = (req, conn) => held.push({ req, conn });
    const c = await connect();
    const pending = c.set('k', 'v');
    await new Promise<void>((r) => server.conns[0].socket.once('data', () => setImmediate(r)));
    const closed = c.close();
    await expect(c.ping()).rejects.toMatchObject({ code: 'CONNECTION_CLOSED' });
    held[0].conn.reply(held[0].req, { revision: 7 });
    expect(await pending).toEqual({ revision: 7, applied: true });
    await closed;
    expect(c.stats().closed).toBe(true);
  });

  it('passes the socket error through when the connection is refused', async () => {
    const port = server.port;
    await server.stop();
    server = await FakeServer.start(); // for afterEach
    await expect(CairnClient.connect({ host: '127.0.0.1', port })).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('validates options', async () => {
    await expect(server.connect({ inflightMax: 0 })).rejects.toThrow(RangeError);
    await expect(server.connect({ requestTimeoutMs: -1 })).rejects.toThrow(/requestTimeoutMs/);
  });
});

describe('CairnClient per-request options', () => {
  it('a per-request timeoutMs overrides requestTimeoutMs and says whether the frame was sent', async () => {
    server.onRequest = () => undefined; // never answers
    const c = await connect({ requestTimeoutMs: 60_000, inflightMax: 1 });
    const [sent, queued] = await Promise.all([c.get('a', { timeoutMs: 30 }), c.get('b', { timeoutMs: 10 })].map((p) => p.catch((e: unknown) => e)));
    expect(sent).toMatchObject({ code: 'TIMEOUT', requestSent: true, message: expect.stringContaining('within 30 ms') });
    expect(queued).toMatchObject({ code: 'TIMEOUT', requestSent: false });
    await expect(c.get('x', { timeoutMs: 0 })).rejects.toThrow(RangeError);
  });

  it('abort rejects AbortError and frees the in-flight slot; a pre-aborted call is never sent', async () => {
    const held: { req: Request; conn: FakeConn }[] = [];
    server.onRequest = (req, conn) => (req.key.toString() === 'hold' ? held.push({ req, conn }) : conn.reply(req, {}));
    const c = await connect({ inflightMax: 1 });
    const ac = new AbortController();
    const pending = c.set('hold', 'v', { signal: ac.signal }).catch((e: unknown) => e);
    await new Promise<void>((r) => server.conns[0].socket.once('data', () => setImmediate(r)));
    expect(c.stats().inflight).toBe(1);
    ac.abort(new Error('user gave up'));
    const err = await pending;
    expect(err).toMatchObject({ name: 'AbortError', code: 'ABORT_ERR', retryable: false, message: expect.stringContaining('after it was sent') });
    expect((err as Error).cause).toMatchObject({ message: 'user gave up' });
    expect(c.stats().inflight).toBe(0);
    await c.ping(); // the freed slot takes the next request
    await expect(c.get('k', { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ABORT_ERR' });
    expect(server.seen.map((r) => r.key.toString())).toEqual(['hold', '']);
    held[0].conn.reply(held[0].req, {});
    await c.ping();
    expect(c.stats().lateResponses).toBe(1);
  });

  it('requests still waiting for a slot when the connection closes were never sent', async () => {
    server.onRequest = (_req, conn) => setImmediate(() => conn.socket.destroy());
    const c = await connect({ inflightMax: 1 });
    const errs = await Promise.all([c.set('a', 'v'), c.set('b', 'v')].map((p) => p.catch((e: unknown) => e)));
    expect(errs).toMatchObject([{ code: 'CONNECTION_CLOSED', requestSent: true }, { code: 'CONNECTION_CLOSED', requestSent: false }]);
    expect(await c.whenClosed()).toBeInstanceOf(ConnectionClosedError);
  });
});
