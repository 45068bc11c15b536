import { Opcode, Status, decodeIncrRequest, encodeIncrReply, type Request } from '@cairn/protocol';
import { CairnPool, ClientOverloadedError, ConnectionClosedError, NoGatewayError, NotLeaderError, RetryBudget, TimeoutError, UnavailableError, BadRequestError, fullJitterBackoffMs, mayRetry, type PoolOptions } from './index';
import { FakeServer, kvHandler, type FakeConn } from './testing/fake-gateway';

let servers: FakeServer[] = [];
let pools: CairnPool[] = [];

async function gateways(n: number): Promise<FakeServer[]> {
  for (let i = 0; i < n; i++) servers.push(await FakeServer.start());
  return servers;
}

/** A pool over `gws` with instant, deterministic backoff unless overridden. */
async function pool(gws: FakeServer[], opts: Partial<PoolOptions> = {}): Promise<CairnPool> {
  const p = await CairnPool.connect({ gateways: gws.map((g) => ({ host: '127.0.0.1', port: g.port })), backoffBaseMs: 1, backoffMaxMs: 2, reconnectBackoffBaseMs: 1, reconnectBackoffMaxMs: 5, random: () => 0.5, ...opts });
  pools.push(p);
  return p;
}

/** Resolves on the next onGatewayStateChange(port, up) of a pool created with `stateEvents()`. */
function stateEvents() {
  const listeners: ((port: number, up: boolean) => void)[] = [];
  return {
    onGatewayStateChange: (g: { port: number }, up: boolean) => listeners.splice(0).forEach((l) => l(g.port, up)),
    next: (port: number, up: boolean) =>
      new Promise<void>((resolve) => {
        const l = (p: number, u: boolean) => (p === port && u === up ? resolve() : listeners.push(l));
        listeners.push(l);
      }),
  };
}

/** Resolves once `server` has decoded `count` requests in total. */
function received(server: FakeServer, count: number): Promise<void> {
  return new Promise((resolve) => {
    const check = () => (server.seen.length >= count ? resolve() : setImmediate(check));
    check();
  });
}

const ops = (s: FakeServer) => s.seen.map((r) => `${Opcode[r.opcode]} ${r.key.toString()}`);

beforeEach(() => {
  servers = [];
  pools = [];
});

afterEach(async () => {
  for (const p of pools) p.destroy();
  for (const s of servers) await s.stop().catch(() => undefined);
});

describe('CairnPool', () => {
  it('keeps connectionsPerGateway connections to each gateway and spreads requests over all of them', async () => {
    const [a, b] = await gateways(2);
    const kv = kvHandler();
    const perConn = new Map<FakeConn, number>();
    a.onRequest = b.onRequest = (req, conn) => {
      perConn.set(conn, (perConn.get(conn) ?? 0) + 1);
      kv.handler(req, conn);
    };
    const p = await pool([a, b], { connectionsPerGateway: 3 });
    expect(await p.set('k', 'v')).toEqual({ revision: 1, applied: true });
    expect(await p.get('k')).toEqual({ value: Buffer.from('v'), revision: 1, createRevision: 1, version: 1 });
    expect(await p.get('missing')).toBeNull();
    expect(await p.del('k')).toEqual({ revision: 2 });
    await p.ping(Buffer.from('x'));
    expect(await p.status()).toMatchObject({ leaderId: 'c1' });
    await Promise.all(Array.from({ length: 54 }, (_, i) => p.get(`k${i}`)));
    expect([...perConn.values()]).toEqual([10, 10, 10, 10, 10, 10]); // 60 requests, round-robin over 2 gateways × 3 connections
    expect(p.stats().gateways.map((g) => [g.up, g.connections])).toEqual([
      [true, 3],
      [true, 3],
    ]);
  });

  it('fails over when a gateway dies: the GET in flight is retried on the other one, the gateway is marked down and reconnected in the background', async () => {
    const [a, b] = await gateways(2);
    b.onRequest = kvHandler().handler;
    a.onRequest = () => undefined; // holds every request
    const ev = stateEvents();
    const p = await pool([a, b], { onGatewayStateChange: ev.onGatewayStateChange });
    const first = p.get('x'); // round-robin: a first
    await received(a, 1);
    const down = ev.next(a.port, false);
    await a.stop();
    expect(await first).toBeNull(); // answered by b
    await down;
    expect(p.stats().gateways[0]).toMatchObject({ up: false, connections: 0 });
    for (let i = 0; i < 5; i++) await p.get(`k${i}`);
    expect(b.seen).toHaveLength(6);
    expect(p.stats().retries).toBe(1);
    const up = ev.next(a.port, true);
    await a.restart();
    await up;
    a.onRequest = (req, conn) => conn.reply(req, { status: Status.NotFound });
    await Promise.all([p.get('y'), p.get('z')]);
    expect(a.seen.length).toBeGreaterThan(1);
  });

  it('does not re-send a SET whose outcome is unknown (connection lost after the write, or UNAVAILABLE)', async () => {
    const [a, b] = await gateways(2);
    a.onRequest = () => undefined;
    b.onRequest = (req, conn) => conn.reply(req, { status: Status.Unavailable, payload: Buffer.from('write not acknowledged in time') });
    const p = await pool([a, b]);
    const lost = p.set('k', 'v1').catch((e: unknown) => e);
    await received(a, 1);
    await a.stop();
    expect(await lost).toMatchObject({ code: 'CONNECTION_CLOSED', requestSent: true });
    const unavailable = await p.set('k', 'v2').catch((e: unknown) => e);
    expect(unavailable).toBeInstanceOf(UnavailableError);
    expect([...ops(a), ...ops(b)]).toEqual(['Set k', 'Set k']); // each write sent exactly once
    expect(p.stats().retries).toBe(0);
  });

  it("re-sends a SET that provably never left the client with retryWrites 'safe', never with 'never'", async () => {
    for (const retryWrites of ['safe', 'never'] as const) {
      const [a, b] = await gateways(2);
      b.onRequest = kvHandler().handler;
      a.onRequest = () => undefined;
      // One in-flight slot: the second SET waits for it on a's connection when a dies.
      const p = await pool([a, b], { retryWrites, inflightMax: 1 });
      const held = p.set('held', 'v').catch((e: unknown) => e); // → a
      await p.get('warm'); // → b, so the next request goes to a again
      const queued = p.set('queued', 'v').catch((e: unknown) => e); // → a, waits for the slot
      await received(a, 1);
      await a.stop();
      expect(await held).toMatchObject({ code: 'CONNECTION_CLOSED', requestSent: true });
      if (retryWrites === 'safe') {
        expect(await queued).toEqual({ revision: 1, applied: true });
        expect(ops(b)).toEqual(['Get warm', 'Set queued']);
      } else {
        expect(await queued).toMatchObject({ code: 'CONNECTION_CLOSED', requestSent: false });
        expect(ops(b)).toEqual(['Get warm']);
      }
      expect(ops(a)).toEqual(['Set held']);
      servers = servers.filter((s) => s !== a && s !== b);
      await b.stop();
    }
  });

  it('re-sends an INCR whose outcome is unknown with the same session and seq (another gateway applies it at most once); later INCRs get new seqs', async () => {
    const [a, b] = await gateways(2);
    a.onRequest = () => undefined; // a dies with the INCR in flight
    const applied = new Map<string, bigint>(); // (sessionId, seq) → the new value it produced
    let counter = 0n;
    b.onRequest = (req, conn) => {
      const r = decodeIncrRequest(req.value);
      const id = `${r.session!.sessionId}/${r.session!.seq}`;
      if (!applied.has(id)) applied.set(id, (counter += r.delta));
      conn.reply(req, { status: Status.Ok, revision: 7, payload: encodeIncrReply(applied.get(id)!) });
    };
    const p = await pool([a, b], { sessionId: 0xabcdn });
    const first = p.incrBy('n', 5); // round-robin starts at a
    await received(a, 1);
    await a.stop();
    expect(await first).toEqual({ value: 5n, revision: 7 });
    expect(await p.incr('n')).toEqual({ value: 6n, revision: 7 });
    const sent = [...a.seen, ...b.seen].filter((r) => r.opcode === Opcode.Incr).map((r) => decodeIncrRequest(r.value));
    expect(sent.map((r) => [r.session!.sessionId, r.session!.seq, r.session!.firstPendingSeq, r.delta])).toEqual([
      [0xabcdn, 1, 1, 5n],
      [0xabcdn, 1, 1, 5n],
      [0xabcdn, 2, 2, 1n],
    ]);
    b.onRequest = (req, conn) => conn.reply(req, { status: Status.ConditionFailed, revision: 9, payload: Buffer.from('value is not an integer or out of range') });
    expect(await p.incr('text').catch((e: unknown) => e)).toMatchObject({ code: 'INCR_REFUSED', revision: 9, message: 'value is not an integer or out of range' });
  });

  it('retries a GET answered UNAVAILABLE, up to attemptsMax attempts, and stops when the retry budget is spent', async () => {
    const [a] = await gateways(1);
    let failures = 1;
    a.onRequest = (req, conn) => conn.reply(req, failures-- > 0 ? { status: Status.Unavailable, payload: Buffer.from('no leader') } : { status: Status.NotFound });
    const p = await pool([a], { attemptsMax: 3, retryBudgetTokensMax: 3, retryBudgetRatio: 0 });
    expect(await p.get('k')).toBeNull();
    expect(a.seen).toHaveLength(2);
    failures = Infinity;
    await expect(p.get('k')).rejects.toBeInstanceOf(UnavailableError);
    expect(a.seen).toHaveLength(2 + 3); // attemptsMax
    expect(p.stats().retryBudgetTokens).toBe(0); // 1 + 2 retries spent the 3 tokens
    await expect(p.get('k')).rejects.toBeInstanceOf(UnavailableError);
    expect(a.seen).toHaveLength(2 + 3 + 1); // budget empty: no retry
    expect(p.stats().retries).toBe(3);
  });

  it('does not retry final errors (BAD_REQUEST) even for a GET', async () => {
    const [a] = await gateways(1);
    a.onRequest = (req, conn) => conn.reply(req, { status: Status.BadRequest, payload: Buffer.from('nope') });
    const p = await pool([a]);
    await expect(p.get('k')).rejects.toBeInstanceOf(BadRequestError);
    expect(a.seen).toHaveLength(1);
  });

  it('abort: in flight → AbortError with the slot freed; during a retry backoff; before the call', async () => {
    const [a] = await gateways(1);
    a.onRequest = (req, conn) => (req.opcode === Opcode.Get ? undefined : conn.reply(req, { status: Status.Unavailable }));
    const p = await pool([a], { backoffBaseMs: 60_000, backoffMaxMs: 60_000, random: () => 0.99 });
    const ac = new AbortController();
    const inflight = p.get('k', { signal: ac.signal }).catch((e: unknown) => e);
    await received(a, 1);
    expect(p.stats().gateways[0].inflight).toBe(1);
    ac.abort();
    expect(await inflight).toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' });
    expect(p.stats().gateways[0].inflight).toBe(0);
    // PING answered UNAVAILABLE → retried after a ~59 s backoff, which the abort cuts short.
    const ac2 = new AbortController();
    const backingOff = p.ping(undefined, { signal: ac2.signal, timeoutMs: 120_000 }).catch((e: unknown) => e);
    await received(a, 2);
    await new Promise((r) => setImmediate(r));
    ac2.abort();
    expect(await backingOff).toMatchObject({ code: 'ABORT_ERR', message: expect.stringContaining('waiting to retry') });
    await expect(p.get('k', { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ABORT_ERR' });
    expect(a.seen).toHaveLength(2);
  });

  it('waits for a gateway within the deadline when all are down, then rejects NoGatewayError; connect fails when none is reachable', async () => {
    const [a] = await gateways(1);
    const ev = stateEvents();
    const p = await pool([a], { onGatewayStateChange: ev.onGatewayStateChange, reconnectBackoffBaseMs: 60_000, reconnectBackoffMaxMs: 60_000 });
    const down = ev.next(a.port, false);
    await a.stop();
    await down;
    const err = await p.get('k', { timeoutMs: 20 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NoGatewayError);
    expect(err).toMatchObject({ code: 'NO_GATEWAY', retryable: true });
    await expect(CairnPool.connect({ gateways: [{ host: '127.0.0.1', port: a.port }] })).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await expect(CairnPool.connect({ gateways: [] })).rejects.toThrow(RangeError);
    await expect(CairnPool.connect({ gateways: [{ host: '127.0.0.1', port: a.port }], retryWrites: 'always' as never })).rejects.toThrow(/retryWrites/);
  });

  it('close() waits for in-flight requests, then refuses new ones', async () => {
    const [a] = await gateways(1);
    const held: { req: Request; conn: FakeConn }[] = [];
    a.onRequest = (req, conn) => held.push({ req, conn });
    const p = await pool([a]);
    const pending = p.set('k', 'v');
    await received(a, 1);
    const closed = p.close();
    await expect(p.get('k')).rejects.toMatchObject({ code: 'CONNECTION_CLOSED', requestSent: false });
    held[0].conn.reply(held[0].req, { revision: 9 });
    expect(await pending).toEqual({ revision: 9, applied: true });
    await closed;
  });
});

describe('retry rules', () => {
  const closedAfterWrite = new ConnectionClosedError('lost', undefined, true);
  const closedBeforeWrite = new ConnectionClosedError('lost', undefined, false);
  const cases = [
    [Opcode.Get, new UnavailableError('x'), 'never', true],
    [Opcode.Get, closedAfterWrite, 'never', true],
    [Opcode.Range, new TimeoutError('t', true), 'never', true],
    [Opcode.Ping, new TimeoutError('t', true), 'never', true],
    [Opcode.Status, new BadRequestError('b'), 'safe', false],
    [Opcode.Set, new UnavailableError('x'), 'safe', false],
    [Opcode.Set, closedAfterWrite, 'safe', false],
    [Opcode.Set, new TimeoutError('t', true), 'safe', false],
    [Opcode.Set, closedBeforeWrite, 'safe', true],
    [Opcode.Del, new TimeoutError('t', false), 'safe', true],
    [Opcode.Del, new NoGatewayError('n'), 'safe', true],
    [Opcode.Set, new ClientOverloadedError(1), 'safe', true],
    [Opcode.Set, new NotLeaderError('c2'), 'safe', true],
    [Opcode.Set, closedBeforeWrite, 'never', false],
    [Opcode.Get, new Error('not a CairnError'), 'safe', false],
    [Opcode.Incr, new UnavailableError('x'), 'safe', false],
  ] as const;
  for (const [opcode, err, retryWrites, expected] of cases) {
    const sent = 'requestSent' in err ? ` (requestSent ${String(err.requestSent)})` : '';
    it(`${Opcode[opcode]} after ${err.name}${sent}, retryWrites ${retryWrites} → ${expected ? 'retry' : 'no retry'}`, () => {
      expect(mayRetry(opcode, err, retryWrites)).toBe(expected);
    });
  }

  it('an INCR in the client session is re-sent on any retryable error under safe, never under never, and not after a final error', () => {
    expect(mayRetry(Opcode.Incr, new UnavailableError('x'), 'safe', true)).toBe(true);
    expect(mayRetry(Opcode.Incr, new TimeoutError('t', true), 'safe', true)).toBe(true);
    expect(mayRetry(Opcode.Incr, new TimeoutError('t', true), 'never', true)).toBe(false);
    expect(mayRetry(Opcode.Incr, new BadRequestError('b'), 'safe', true)).toBe(false);
  });

  it('full-jitter backoff stays within [0, cap] and its ceiling doubles per attempt up to the cap', () => {
    for (const r of [0, 0.25, 0.5, 0.999999]) {
      let prev = 0;
      for (let attempt = 0; attempt <= 2000; attempt++) {
        const ms = fullJitterBackoffMs(attempt, 10, 1000, () => r);
        expect(ms).toBeGreaterThanOrEqual(0);
        expect(ms).toBeLessThanOrEqual(1000);
        expect(ms).toBeGreaterThanOrEqual(prev);
        prev = ms;
      }
    }
    expect([0, 1, 2, 3, 6, 7].map((a) => fullJitterBackoffMs(a, 10, 1000, () => 0.999999))).toEqual([9, 19, 39, 79, 639, 999]);
    expect(() => fullJitterBackoffMs(-1, 10, 1000, () => 0.5)).toThrow(RangeError);
  });

  it('the retry budget refills by ratio per success up to tokensMax', () => {
    const b = new RetryBudget(2, 0.5);
    expect([b.trySpend(), b.trySpend(), b.trySpend()]).toEqual([true, true, false]);
    b.onSuccess();
    expect(b.trySpend()).toBe(false);
    b.onSuccess();
    expect(b.trySpend()).toBe(true);
    for (let i = 0; i < 10; i++) b.onSuccess();
    expect(b.available()).toBe(2);
  });
});
