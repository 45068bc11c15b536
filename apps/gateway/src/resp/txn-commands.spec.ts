import { Status } from '@cairn/protocol';
import { ClusterView } from '../cluster/cluster-view';
import { KvSession } from '../paths/kv-session';
import { RespCommands, type RespClient } from './commands';
import { OrderGate } from './order-gate';
import { fakeStore } from './testing';
import { MULTI_LIMITS_DEFAULT, type MultiLimits } from './txn-commands';

function setup(store = fakeStore(), limits: Partial<MultiLimits> = {}) {
  const nowMs = 1_000_000;
  const commands = new RespCommands({ gatewayId: 'g1', version: '9.9.9', startedAtMs: 0, respPort: 6380, connections: () => 1, view: new ClusterView(() => nowMs), now: () => nowMs }, 1024, undefined, undefined, { ...MULTI_LIMITS_DEFAULT, ...limits });
  const connect = (id: number): RespClient => ({ id, name: null, remote: 'r', local: 'l', session: new KvSession(store.paths), quit: false, gate: new OrderGate() });
  const client = connect(1);
  const on = (c: RespClient) => async (...args: string[]) => (await commands.handle(args.map((a) => Buffer.from(a, 'latin1')), c)).toString('latin1');
  return { store, commands, client, connect, on, run: on(client) };
}

const value = (store: ReturnType<typeof fakeStore>, k: string) => store.data.get(k)?.value.toString('latin1');

describe('RESP atomic multi-key commands (one Txn each)', () => {
  it('MSET writes every pair at one revision, the last value of a repeated key winning', async () => {
    const { run, store } = setup();
    expect(await run('MSET', 'a', '1', 'b', '2', 'a', '3')).toBe('+OK\r\n');
    expect([value(store, 'a'), value(store, 'b')]).toEqual(['3', '2']);
    expect(store.data.get('a')!.revision).toBe(store.data.get('b')!.revision);
    expect(await run('MSET', 'a', '1', 'b')).toBe("-ERR wrong number of arguments for 'mset' command\r\n");
  });

  it('MSETNX sets all or none: :1 when no key existed, :0 (nothing written) when one did', async () => {
    const { run, store } = setup();
    expect(await run('MSETNX', 'x', '1', 'y', '1')).toBe(':1\r\n');
    expect(await run('MSETNX', 'z', '2', 'y', '2')).toBe(':0\r\n');
    expect(store.data.has('z')).toBe(false);
    expect(value(store, 'y')).toBe('1');
    expect(await run('MSETNX', 'k', 'v', '', 'w')).toBe('-ERR empty key\r\n');
    expect(await run('MSETNX', 'k')).toBe("-ERR wrong number of arguments for 'msetnx' command\r\n");
    expect(store.data.has('k')).toBe(false);
  });

  it('GETSET and GETDEL answer the old value (nil when missing)', async () => {
    const { run, store } = setup();
    expect(await run('GETSET', 'k', 'a')).toBe('$-1\r\n');
    expect(await run('GETSET', 'k', 'b')).toBe('$1\r\na\r\n');
    expect(await run('GETDEL', 'k')).toBe('$1\r\nb\r\n');
    expect(store.data.has('k')).toBe(false);
    expect(await run('GETDEL', 'k')).toBe('$-1\r\n');
  });

  it('SET ... GET with NX / XX (Redis 7.0): the old value, set only when the condition held', async () => {
    const { run, store } = setup();
    expect(await run('SET', 'k', 'a', 'GET')).toBe('$-1\r\n');
    expect(await run('SET', 'k', 'b', 'GET')).toBe('$1\r\na\r\n');
    expect(await run('SET', 'k', 'c', 'NX', 'GET')).toBe('$1\r\nb\r\n'); // exists: not set, old value
    expect(await run('SET', 'n', 'c', 'NX', 'GET')).toBe('$-1\r\n');
    expect(await run('SET', 'm', 'c', 'XX', 'GET')).toBe('$-1\r\n'); // missing: not set
    expect(await run('SET', 'k', 'd', 'XX', 'GET')).toBe('$1\r\nb\r\n');
    expect([value(store, 'k'), value(store, 'n'), store.data.has('m')]).toEqual(['d', 'c', false]);
  });

  it('SET ... GET with an expiry: a read, then a write if the revision is still the one read, carrying the expiry', async () => {
    const { run, store } = setup();
    await run('SET', 'k', 'a');
    expect(await run('SET', 'k', 'b', 'GET', 'EX', '10')).toBe('$1\r\na\r\n');
    expect(store.data.get('k')).toMatchObject({ value: Buffer.from('b'), meta: { expiresAtMs: 1_010_000 } });
    expect(await run('SET', 'k', 'c', 'NX', 'GET', 'PX', '5')).toBe('$1\r\nb\r\n');
    expect(await run('SET', 'j', 'c', 'XX', 'GET', 'KEEPTTL')).toBe('$-1\r\n');
    expect([value(store, 'k'), store.data.has('j')]).toEqual(['b', false]);
  });

  it('DEL: one Txn counting the keys that existed at its revision (a key named twice once); beyond txnOpsMax keys, reads then deletes', async () => {
    const { run, store } = setup(undefined, { txnOpsMax: 3 });
    await run('MSET', 'a', '1', 'b', '2', 'c', '3', 'd', '4');
    const before = store.data.get('a')!.revision;
    expect(await run('DEL', 'a', 'b', 'y', 'x')).toBe(':2\r\n'); // 4 keys > 3: the read-then-delete path
    expect(await run('DEL', 'c', 'd', 'c')).toBe(':2\r\n'); // one Txn
    expect(store.data.size).toBe(0);
    // the read-then-delete path wrote one entry per key, the Txn one entry in all
    expect(store.data.size === 0 && (await run('SET', 'z', '1')) === '+OK\r\n' && store.data.get('z')!.revision).toBe(before + 4 + 1 + 1);
  });

  it('a failed Txn is an error: outcome unknown on UNAVAILABLE', async () => {
    const { run } = setup(fakeStore({ fail: { status: Status.Unavailable, message: 'no leader' } }));
    expect(await run('MSETNX', 'a', '1')).toBe('-ERR no leader (outcome unknown: the write may have been applied)\r\n');
    expect(await run('GETSET', 'a', '1')).toBe('-ERR no leader (outcome unknown: the write may have been applied)\r\n');
  });
});

describe('RESP MULTI / EXEC / DISCARD / WATCH', () => {
  it('queues commands and runs them as one transaction, each seeing the ones before it', async () => {
    const { run, store } = setup();
    await run('SET', 'n', '41');
    expect(await run('MULTI')).toBe('+OK\r\n');
    for (const cmd of [['INCR', 'n'], ['GET', 'n'], ['SET', 's', 'x', 'NX'], ['SETNX', 's', 'y'], ['MSET', 'a', '1', 'b', '2'], ['DEL', 'a', 'zz'], ['EXISTS', 'a', 'b'], ['GETSET', 'b', '3'], ['MGET', 'b', 'n'], ['INCR', 's'], ['PING']]) {
      expect(await run(...cmd)).toBe('+QUEUED\r\n');
    }
    expect(await run('EXEC')).toBe(
      ['*11', ':42', '$2', '42', '+OK', ':0', '+OK', ':1', ':1', '$1', '2', '*2', '$1', '3', '$2', '42', '-ERR value is not an integer or out of range', '+PONG', ''].join('\r\n'),
    );
    expect([value(store, 'n'), value(store, 's'), store.data.has('a'), value(store, 'b')]).toEqual(['42', 'x', false, '3']);
    // every write of the EXEC at one revision
    expect(new Set(['n', 's', 'b'].map((k) => store.data.get(k)!.revision)).size).toBe(1);
  });

  it('EXEC, DISCARD without MULTI; nested MULTI; WATCH inside MULTI; DISCARD drops the queue', async () => {
    const { run, store } = setup();
    expect(await run('EXEC')).toBe('-ERR EXEC without MULTI\r\n');
    expect(await run('DISCARD')).toBe('-ERR DISCARD without MULTI\r\n');
    await run('MULTI');
    expect(await run('MULTI')).toBe('-ERR MULTI calls can not be nested\r\n');
    expect(await run('WATCH', 'k')).toBe('-ERR WATCH inside MULTI is not allowed\r\n');
    expect(await run('SET', 'k', 'v')).toBe('+QUEUED\r\n');
    expect(await run('DISCARD')).toBe('+OK\r\n');
    expect(await run('GET', 'k')).toBe('$-1\r\n');
    await run('MULTI');
    expect(await run('EXEC')).toBe('*0\r\n');
    expect(store.data.size).toBe(0);
  });

  it('an unknown command, a wrong arity or a command Cairn cannot queue aborts the MULTI: EXEC answers -EXECABORT, nothing runs', async () => {
    const { run, store } = setup();
    for (const bad of [['NOSUCH', 'x'], ['GET'], ['SET', 'k', 'v', 'EX', '10'], ['KEYS', '*']]) {
      await run('MULTI');
      expect(await run('SET', 'k', 'v')).toBe('+QUEUED\r\n');
      expect(await run(...bad)).toMatch(/^-ERR /);
      expect(await run('SET', 'j', 'v')).toBe('+QUEUED\r\n');
      expect(await run('EXEC')).toBe('-EXECABORT Transaction discarded because of previous errors.\r\n');
    }
    expect(store.data.size).toBe(0);
    // a syntax error Redis finds only when it runs the command is that command's error in EXEC's array
    await run('MULTI');
    await run('SET', 'k', 'v', 'bogus');
    await run('SET', 'j', 'v');
    expect(await run('EXEC')).toBe('*2\r\n-ERR syntax error\r\n+OK\r\n');
  });

  it('WATCH: EXEC answers a null array when a watched key changed since WATCH (a missing key = revision 0), and unwatches', async () => {
    const { run, on, connect, store } = setup();
    const other = on(connect(2));
    await run('SET', 'k', '1');
    expect(await run('WATCH', 'k', 'missing')).toBe('+OK\r\n');
    await other('SET', 'k', '2');
    await run('MULTI');
    await run('SET', 'k', '10');
    expect(await run('EXEC')).toBe('*-1\r\n');
    expect(value(store, 'k')).toBe('2');
    // unwatched after EXEC: the next one runs
    await run('MULTI');
    await run('SET', 'k', '10');
    expect(await run('EXEC')).toBe('*1\r\n+OK\r\n');
    // a missing key created by another client
    await run('WATCH', 'missing');
    await other('SET', 'missing', 'now');
    await run('MULTI');
    await run('GET', 'k');
    expect(await run('EXEC')).toBe('*-1\r\n');
    // UNWATCH forgets; an unchanged watched key lets EXEC run
    await run('WATCH', 'k');
    await other('SET', 'k', '3');
    expect(await run('UNWATCH')).toBe('+OK\r\n');
    await run('WATCH', 'missing');
    await run('MULTI');
    await run('INCR', 'k');
    expect(await run('EXEC')).toBe('*1\r\n:4\r\n');
  });

  it('an optimistic counter: concurrent WATCH/GET/MULTI/SET/EXEC loops end at the exact sum', async () => {
    const { on, connect, store } = setup(fakeStore({ hold: true }));
    // Release held requests in a shuffled order so the clients' transactions interleave.
    let seed = 7;
    let stop = false;
    const pump = (async () => {
      while (!stop) {
        await new Promise((r) => setImmediate(r));
        if (store.held.length === 0) continue;
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        store.held.splice(seed % store.held.length, 1)[0].release();
      }
    })();
    let conflicts = 0;
    await Promise.all(
      [1, 2, 3, 4].map(async (id) => {
        const run = on(connect(id));
        for (let i = 0; i < 5; i++) {
          for (;;) {
            await run('WATCH', 'c');
            const v = Number((await run('GET', 'c')).split('\r\n')[1] ?? '0') || 0;
            await run('MULTI');
            await run('SET', 'c', String(v + 1));
            if ((await run('EXEC')) !== '*-1\r\n') break;
            conflicts++;
          }
        }
      }),
    );
    stop = true;
    await pump;
    expect(value(store, 'c')).toBe('20');
    expect(conflicts).toBeGreaterThan(0);
  });

  it('a key INCRed inside EXEC keeps its expiry (Redis INCR keeps the TTL); SET or DEL before the INCR in the same EXEC, MSET and a missing key leave none', async () => {
    const { run, store } = setup();
    const expiry = (k: string) => store.data.get(k)?.meta?.expiresAtMs;
    for (const k of ['n', 's', 'd', 'm']) await run('SET', k, '5', 'EX', '100');
    await run('MULTI');
    for (const c of [['INCR', 'n'], ['INCRBY', 'n', '2'], ['SET', 's', '1'], ['INCR', 's'], ['DEL', 'd'], ['INCR', 'd'], ['MSET', 'm', '1'], ['INCR', 'fresh']]) expect(await run(...c)).toBe('+QUEUED\r\n');
    expect(await run('EXEC')).toBe('*8\r\n:6\r\n:8\r\n+OK\r\n:2\r\n:1\r\n:1\r\n+OK\r\n:1\r\n');
    expect([expiry('n'), expiry('s'), expiry('d'), expiry('m'), expiry('fresh')]).toEqual([1_100_000, undefined, undefined, undefined, undefined]);
    expect([value(store, 'n'), value(store, 's'), value(store, 'd'), value(store, 'm')]).toEqual(['8', '2', '1', '1']);
  });

  it('INCR in MULTI without WATCH is retried when its key changed between the read and the txn (never a lost update)', async () => {
    const { run, on, connect, store } = setup(fakeStore({ hold: true }));
    const other = on(connect(2));
    /** Releases the first held request of that kind and key (a txn's key is empty) once there is one. */
    const releaseNext = async (kind: 'read' | 'write', key: string) => {
      for (;;) {
        await new Promise((r) => setImmediate(r));
        const i = store.held.findIndex((h) => h.kind === kind && h.key === key);
        if (i >= 0) return store.held.splice(i, 1)[0].release();
      }
    };
    const setup0 = run('SET', 'n', '1');
    await releaseNext('write', 'n');
    await setup0;
    await run('MULTI');
    await run('INCR', 'n');
    const exec = run('EXEC');
    await releaseNext('read', 'n'); // EXEC reads n = 1
    while (!store.held.some((h) => h.key === '')) await new Promise((r) => setImmediate(r)); // its txn is submitted
    const concurrent = other('SET', 'n', '10');
    await releaseNext('write', 'n'); // another client's SET commits first
    await concurrent;
    await releaseNext('write', ''); // EXEC's txn: n changed, its compare fails
    await releaseNext('read', 'n'); // again: n = 10
    await releaseNext('write', '');
    expect(await exec).toBe('*1\r\n:11\r\n');
    expect(value(store, 'n')).toBe('11');
  });

  it('EXEC and SET ... GET with an expiry give up after attemptsMax attempts when another write always comes between, applying nothing', async () => {
    const { run, on, connect, store } = setup(fakeStore({ hold: true }), { attemptsMax: 2 });
    const other = on(connect(2));
    const waitHeld = async (kind: 'read' | 'write', key: string) => {
      for (;;) {
        await new Promise((r) => setImmediate(r));
        const i = store.held.findIndex((h) => h.kind === kind && h.key === key);
        if (i >= 0) return store.held.splice(i, 1)[0];
      }
    };
    /** Lets the command's read through, then another client's SET of n, then the command's write (which then fails its compare). */
    const interfere = async (writeKey: string, n: number) => {
      (await waitHeld('read', 'n')).release();
      const write = await waitHeld('write', writeKey);
      const set = other('SET', 'n', String(n));
      (await waitHeld('write', 'n')).release();
      await set;
      write.release();
    };
    await run('MULTI');
    await run('INCR', 'n');
    const exec = run('EXEC');
    await interfere('', 1);
    await interfere('', 2);
    expect(await exec).toBe('-ERR EXEC gave up after 2 attempts (gateway.respTxnAttemptsMax): the keys it reads kept changing; nothing was applied\r\n');
    const setGet = run('SET', 'n', 'mine', 'GET', 'EX', '10');
    await interfere('n', 3);
    await interfere('n', 4);
    expect(await setGet).toBe('-ERR SET ... GET gave up after 2 attempts (gateway.respTxnAttemptsMax): the key kept changing; nothing was written\r\n');
    expect(value(store, 'n')).toBe('4');
  });

  it("EXECs of one gateway reading the same key take turns: no retries among them", async () => {
    const { on, connect, store } = setup(fakeStore({ hold: true }));
    const [a, b] = [on(connect(1)), on(connect(2))];
    for (const run of [a, b]) {
      await run('MULTI');
      await run('INCR', 'n');
    }
    const execs = [a('EXEC'), b('EXEC')];
    await new Promise((r) => setImmediate(r));
    expect(store.held.map((h) => `${h.kind} ${h.key}`)).toEqual(['read n']); // the second waits for its turn
    let done = false;
    void Promise.all(execs).then(() => (done = true));
    while (!done) {
      await new Promise((r) => setImmediate(r));
      store.held.shift()?.release();
    }
    expect(await Promise.all(execs)).toEqual(['*1\r\n:1\r\n', '*1\r\n:2\r\n']);
    expect(store.data.get('n')!.revision).toBe(2); // two transactions in all: neither was retried
  });

  it('bounds: commands and bytes per MULTI abort it; watched keys per connection', async () => {
    const { run } = setup(undefined, { commandsMax: 2, bytesMax: 1024, watchedKeysMax: 2 });
    await run('MULTI');
    await run('SET', 'a', '1');
    await run('SET', 'b', '1');
    expect(await run('SET', 'c', '1')).toBe('-ERR MULTI holds at most 2 commands (gateway.respMultiCommandsMax); transaction discarded\r\n');
    expect(await run('SET', 'd', '1')).toBe('+QUEUED\r\n');
    expect(await run('EXEC')).toBe('-EXECABORT Transaction discarded because of previous errors.\r\n');
    await run('MULTI');
    expect(await run('ECHO', 'x'.repeat(1024))).toBe('-ERR MULTI holds at most 1024 bytes of arguments (gateway.respMultiBytesMax); transaction discarded\r\n');
    expect(await run('EXEC')).toBe('-EXECABORT Transaction discarded because of previous errors.\r\n');
    expect(await run('WATCH', 'a', 'b', 'a')).toBe('+OK\r\n');
    expect(await run('WATCH', 'c')).toBe('-ERR WATCH of 1 more keys: a connection watches at most 2 (gateway.respWatchedKeysMax)\r\n');
    expect(await run('WATCH', 'b')).toBe('+OK\r\n'); // already watched
    // read and watched keys beyond txnOpsMax: refused before anything is read
    const small = setup(undefined, { txnOpsMax: 3 });
    await small.run('WATCH', 'w');
    await small.run('MULTI');
    await small.run('MGET', 'a', 'b', 'c');
    expect(await small.run('EXEC')).toBe('-ERR a transaction holds at most 3 compares and ops (txnOpsMax), got at least 4; nothing was applied\r\n');
  });

  it('a failed WATCH read makes the next EXEC fail with a null array', async () => {
    const store = fakeStore();
    const { run } = setup(store);
    const get = store.paths.reads.get;
    store.paths.reads.get = () => Promise.resolve({ status: Status.Unavailable, revision: 0, value: new Uint8Array(0), message: 'no storage node' });
    expect(await run('WATCH', 'k')).toBe('-TRYAGAIN no storage node\r\n');
    store.paths.reads.get = get;
    await run('MULTI');
    await run('SET', 'k', 'v');
    expect(await run('EXEC')).toBe('*-1\r\n');
    expect(store.data.has('k')).toBe(false);
  });

  it('pipelined: MULTI, queued commands, EXEC and the commands after it take effect in order', async () => {
    const { commands, client, store } = setup();
    const send = (...a: string[]) => commands.handle(a.map((x) => Buffer.from(x)), client);
    const replies = [send('SET', 'k', '1'), send('WATCH', 'k'), send('MULTI'), send('INCR', 'k'), send('EXEC'), send('GET', 'k'), send('WATCH', 'k'), send('MULTI'), send('GET', 'k'), send('EXEC')];
    expect(await Promise.all(replies.map(async (r) => (await r).toString()))).toEqual(['+OK\r\n', '+OK\r\n', '+OK\r\n', '+QUEUED\r\n', '*1\r\n:2\r\n', '$1\r\n2\r\n', '+OK\r\n', '+OK\r\n', '+QUEUED\r\n', '*1\r\n$1\r\n2\r\n']);
    expect(value(store, 'k')).toBe('2');
  });
});
