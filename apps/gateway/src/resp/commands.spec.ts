import { Status } from '@cairn/protocol';
import { ClusterView } from '../cluster/cluster-view';
import { KvSession } from '../paths/kv-session';
import { RespCommands, type RespClient } from './commands';
import { OrderGate } from './order-gate';
import { fakeStore } from './testing';

function setup(store = fakeStore()) {
  let nowMs = 1_000_000;
  const view = new ClusterView(() => nowMs);
  const commands = new RespCommands({ gatewayId: 'g1', version: '9.9.9', startedAtMs: nowMs - 90_000, respPort: 6380, connections: () => 3, view, now: () => nowMs });
  const client: RespClient = { id: 7, name: null, remote: '127.0.0.1:5000', local: '127.0.0.1:6380', session: new KvSession(store.paths), quit: false, gate: new OrderGate() };
  /** Runs one command and returns its reply as text. */
  const run = async (...args: string[]) => (await commands.handle(args.map((a) => Buffer.from(a, 'latin1')), client)).toString('latin1');
  return { store, view, client, run, commands, advance: (ms: number) => (nowMs += ms) };
}

describe('RESP INCR, INCRBY, DECR, DECRBY', () => {
  it('count from a missing key as 0, answer the new value, and store it as decimal text', async () => {
    const { run } = setup();
    expect(await run('INCR', 'n')).toBe(':1\r\n');
    expect(await run('INCRBY', 'n', '41')).toBe(':42\r\n');
    expect(await run('DECR', 'n')).toBe(':41\r\n');
    expect(await run('DECRBY', 'n', '-9')).toBe(':50\r\n');
    expect(await run('DECRBY', 'n', '100')).toBe(':-50\r\n');
    expect(await run('GET', 'n')).toBe('$3\r\n-50\r\n');
    expect(await run('SET', 'n', '9223372036854775806')).toBe('+OK\r\n');
    expect(await run('INCR', 'n')).toBe(':9223372036854775807\r\n');
  });

  it('refuse non-integers and overflow with Redis error texts, writing nothing', async () => {
    const { run } = setup();
    await run('SET', 's', 'abc');
    expect(await run('INCR', 's')).toBe('-ERR value is not an integer or out of range\r\n');
    for (const v of [' 1', '1 ', '01', '+1', '-0', '1.5', '9223372036854775808']) {
      await run('SET', 'v', v);
      expect(await run('INCR', 'v')).toBe('-ERR value is not an integer or out of range\r\n');
    }
    expect(await run('GET', 's')).toBe('$3\r\nabc\r\n');
    await run('SET', 'max', '9223372036854775807');
    expect(await run('INCR', 'max')).toBe('-ERR increment or decrement would overflow\r\n');
    await run('SET', 'min', '-9223372036854775808');
    expect(await run('DECR', 'min')).toBe('-ERR increment or decrement would overflow\r\n');
    expect(await run('GET', 'max')).toBe('$19\r\n9223372036854775807\r\n');
    expect(await run('INCRBY', 'n', 'x')).toBe('-ERR value is not an integer or out of range\r\n');
    expect(await run('INCRBY', 'n', '9223372036854775808')).toBe('-ERR value is not an integer or out of range\r\n');
    expect(await run('DECRBY', 'n', '-9223372036854775808')).toBe('-ERR decrement would overflow\r\n');
    expect(await run('INCR', 'n', 'extra')).toBe("-ERR wrong number of arguments for 'incr' command\r\n");
    expect(await run('GET', 'n')).toBe('$-1\r\n');
  });
});

describe('RESP SCAN and KEYS', () => {
  it('SCAN pages with numeric cursors until 0, MATCH filters, TYPE other than string is empty, bad cursors are errors', async () => {
    const { run } = setup();
    for (const k of ['u:1', 'u:2', 'u:3', 'u:4', 'v:1']) await run('SET', k, 'x');
    expect(await run('SCAN', '0', 'MATCH', 'u:*', 'COUNT', '3')).toBe('*2\r\n$1\r\n1\r\n*3\r\n$3\r\nu:1\r\n$3\r\nu:2\r\n$3\r\nu:3\r\n');
    expect(await run('SCAN', '1', 'MATCH', 'u:*', 'COUNT', '3')).toBe('*2\r\n$1\r\n0\r\n*1\r\n$3\r\nu:4\r\n');
    expect(await run('SCAN', '1')).toBe('-ERR invalid cursor\r\n'); // used once
    expect(await run('SCAN', 'abc')).toBe('-ERR invalid cursor\r\n');
    expect(await run('SCAN', '0', 'COUNT', '0')).toBe('-ERR syntax error\r\n');
    expect(await run('SCAN', '0', 'TYPE', 'hash')).toBe('*2\r\n$1\r\n0\r\n*0\r\n');
    expect(await run('SCAN', '0', 'MATCH', '*:1')).toBe('*2\r\n$1\r\n0\r\n*2\r\n$3\r\nu:1\r\n$3\r\nv:1\r\n');
  });

  it('KEYS answers every match in key order, and refuses more than keysReplyMax', async () => {
    const store = fakeStore();
    const { run } = setup(store);
    for (const k of ['b', 'a', 'ab', 'c']) await run('SET', k, 'x');
    expect(await run('KEYS', 'a*')).toBe('*2\r\n$1\r\na\r\n$2\r\nab\r\n');
    expect(await run('KEYS', '*')).toBe('*4\r\n$1\r\na\r\n$2\r\nab\r\n$1\r\nb\r\n$1\r\nc\r\n');
    const small = new RespCommands({ gatewayId: 'g1', version: '9.9.9', startedAtMs: 0, respPort: 6380, connections: () => 1, view: new ClusterView(() => 0), now: () => 0 }, 1024, { keysReplyMax: 3, cursorsMax: 4 });
    const client: RespClient = { id: 1, name: null, remote: '', local: '', session: new KvSession(store.paths), quit: false, gate: new OrderGate() };
    expect((await small.handle([Buffer.from('KEYS'), Buffer.from('*')], client)).toString()).toBe('-ERR KEYS matches more than 3 keys (gateway.respKeysReplyMax); use SCAN\r\n');
  });
});

describe('RESP commands', () => {
  it('PING, ECHO and arity errors as Redis words them', async () => {
    const { run } = setup();
    expect(await run('PING')).toBe('+PONG\r\n');
    expect(await run('ping', 'hi')).toBe('$2\r\nhi\r\n');
    expect(await run('PING', 'a', 'b')).toBe("-ERR wrong number of arguments for 'ping' command\r\n");
    expect(await run('ECHO', 'x y')).toBe('$3\r\nx y\r\n');
    expect(await run('GET')).toBe("-ERR wrong number of arguments for 'get' command\r\n");
    expect(await run('MSET', 'a', '1', 'b')).toBe("-ERR wrong number of arguments for 'mset' command\r\n");
  });

  it('SET, GET, MSET, MGET, EXISTS, DEL on the session (DEL/EXISTS count keys that existed)', async () => {
    const { run, store } = setup();
    expect(await run('SET', 'a', '1')).toBe('+OK\r\n');
    expect(await run('GET', 'a')).toBe('$1\r\n1\r\n');
    expect(await run('GET', 'nope')).toBe('$-1\r\n');
    expect(await run('SET', 'e', '')).toBe('+OK\r\n');
    expect(await run('GET', 'e')).toBe('$0\r\n\r\n');
    expect(await run('MSET', 'b', '2', 'c', '3')).toBe('+OK\r\n');
    expect(await run('MGET', 'a', 'x', 'c')).toBe('*3\r\n$1\r\n1\r\n$-1\r\n$1\r\n3\r\n');
    expect(await run('EXISTS', 'a', 'a', 'x')).toBe(':2\r\n'); // duplicates count twice, as in Redis
    expect(await run('DEL', 'a', 'b', 'x')).toBe(':2\r\n');
    expect([...store.data.keys()].sort()).toEqual(['c', 'e']);
    expect(await run('DEL', 'a')).toBe(':0\r\n');
  });

  it('reads carry the last acknowledged write index (read-your-writes)', async () => {
    const store = fakeStore({ hold: true });
    const { commands, client } = setup(store);
    const set = commands.handle([Buffer.from('SET'), Buffer.from('k'), Buffer.from('v')], client);
    await new Promise((r) => setImmediate(r));
    store.held.shift()!.release();
    await set;
    const get = commands.handle([Buffer.from('GET'), Buffer.from('k')], client);
    await new Promise((r) => setImmediate(r));
    expect(store.held.map((h) => [h.kind, h.minIndex])).toEqual([['read', 1]]);
    store.held.shift()!.release();
    expect((await get).toString()).toBe('$1\r\nv\r\n');
  });

  it('pipelined commands take effect in order: reads wait for earlier writes, writes for earlier reads, DEL for everything', async () => {
    const store = fakeStore({ hold: true });
    const { commands, client } = setup(store);
    const send = (...a: string[]) => commands.handle(a.map((x) => Buffer.from(x)), client);
    const replies = [send('SET', 'k', 'v1'), send('SET', 'j', 'v2'), send('GET', 'k'), send('MGET', 'j', 'k'), send('SET', 'k', 'v3'), send('DEL', 'k'), send('GET', 'k')];
    const step = async (expected: string[]) => {
      await new Promise((r) => setImmediate(r));
      expect(store.held.map((h) => `${h.kind} ${h.key}`)).toEqual(expected);
      for (const h of store.held.splice(0).reverse()) h.release(); // complete each group out of order
    };
    await step(['write k', 'write j']); // consecutive writes run together
    await step(['read k', 'read j', 'read k']); // then the reads, which see both writes
    await step(['write k']);
    await step(['write ']); // DEL: one transaction (a txn's command key is empty), alone in its group
    await step(['read k']);
    expect(await Promise.all(replies.map(async (r) => (await r).toString()))).toEqual(['+OK\r\n', '+OK\r\n', '$2\r\nv1\r\n', '*2\r\n$2\r\nv2\r\n$2\r\nv1\r\n', '+OK\r\n', ':1\r\n', '$-1\r\n']);
  });

  it('a command with nothing before it left starts in the caller\'s turn; one behind an unfinished group of another effect waits for it', async () => {
    const store = fakeStore({ hold: true });
    const { commands, client } = setup(store);
    const send = (...a: string[]) => commands.handle(a.map((x) => Buffer.from(x)), client);
    const set = send('SET', 'k', 'v1');
    expect(store.held.map((h) => `${h.kind} ${h.key}`)).toEqual(['write k']); // no extra turn
    const get = send('GET', 'k');
    await new Promise((r) => setImmediate(r));
    expect(store.held.map((h) => `${h.kind} ${h.key}`)).toEqual(['write k']); // behind the write
    store.held.shift()!.release();
    await set;
    await new Promise((r) => setImmediate(r));
    expect(store.held.map((h) => `${h.kind} ${h.key}`)).toEqual(['read k']);
    store.held.shift()!.release();
    expect((await get).toString()).toBe('$2\r\nv1\r\n');
    const again = send('SET', 'k', 'v2');
    expect(store.held.map((h) => `${h.kind} ${h.key}`)).toEqual(['write k']); // the read group is done: at once
    store.held.shift()!.release();
    expect((await again).toString()).toBe('+OK\r\n');
  });

  it('SET options: Redis syntax rules', async () => {
    const { run, store } = setup();
    expect(await run('SET', 'k', 'v', 'EX', 'ten')).toBe('-ERR value is not an integer or out of range\r\n');
    expect(await run('SET', 'k', 'v', 'EX', '0')).toBe("-ERR invalid expire time in 'set' command\r\n");
    expect(await run('SET', 'k', 'v', 'PX', '-5')).toBe("-ERR invalid expire time in 'set' command\r\n");
    expect(await run('SET', 'k', 'v', 'EX', '9999999999999999')).toBe("-ERR invalid expire time in 'set' command\r\n");
    expect(await run('SET', 'k', 'v', 'EX')).toBe('-ERR syntax error\r\n');
    expect(await run('SET', 'k', 'v', 'EX', '1', 'PX', '1')).toBe('-ERR syntax error\r\n');
    expect(await run('SET', 'k', 'v', 'EX', '1', 'KEEPTTL')).toBe('-ERR syntax error\r\n');
    expect(await run('SET', 'k', 'v', 'GET', 'bogus')).toBe('-ERR syntax error\r\n');
    expect(await run('SET', 'k', 'v', 'NX', 'XX')).toBe('-ERR syntax error\r\n');
    expect(await run('SET', 'k', 'v', 'bogus')).toBe('-ERR syntax error\r\n');
    expect(await run('SETEX', 'k', '0', 'v')).toBe("-ERR invalid expire time in 'setex' command\r\n");
    expect(await run('PSETEX', 'k', 'x', 'v')).toBe('-ERR value is not an integer or out of range\r\n');
    expect(store.data.size).toBe(0); // none of those wrote
  });

  it('SET EX/PX/EXAT/PXAT, SETEX, PSETEX: the write carries the absolute expiry; KEEPTTL keeps it; a plain SET has none (docs/leases.md)', async () => {
    const { run, store } = setup(); // the info clock reads 1,000,000 ms
    const meta = (k: string) => store.data.get(k)?.meta;
    expect(await run('SET', 'a', 'v', 'EX', '10')).toBe('+OK\r\n');
    expect(meta('a')).toEqual({ leaseId: 0, expiresAtMs: 1_010_000, keepTtl: false });
    expect(await run('SET', 'b', 'v', 'px', '250')).toBe('+OK\r\n');
    expect(meta('b')?.expiresAtMs).toBe(1_000_250);
    expect(await run('SET', 'c', 'v', 'EXAT', '2000000000')).toBe('+OK\r\n');
    expect(meta('c')?.expiresAtMs).toBe(2_000_000_000_000);
    expect(await run('SET', 'd', 'v', 'PXAT', '2000000000123', 'NX')).toBe('+OK\r\n');
    expect(meta('d')?.expiresAtMs).toBe(2_000_000_000_123);
    expect(await run('SET', 'd', 'w', 'XX', 'KEEPTTL')).toBe('+OK\r\n');
    expect(meta('d')).toEqual({ leaseId: 0, expiresAtMs: 1_000_000, keepTtl: true }); // KEEPTTL carries the clock: an expiry that passed is not kept
    expect(await run('SETEX', 'e', '3', 'v')).toBe('+OK\r\n');
    expect(meta('e')?.expiresAtMs).toBe(1_003_000);
    expect(await run('PSETEX', 'f', '3', 'v')).toBe('+OK\r\n');
    expect(meta('f')?.expiresAtMs).toBe(1_000_003);
    expect(await run('SET', 'a', 'plain')).toBe('+OK\r\n');
    expect(meta('a')).toBeUndefined();
  });

  it('the session limits apply, and a multi-key write with one bad key writes nothing', async () => {
    const { run, store } = setup();
    expect(await run('SET', '', 'v')).toBe('-ERR empty key\r\n');
    expect(await run('SET', 'k', 'x'.repeat(65))).toBe('-ERR value is 65 bytes; valueBytesMax is 64\r\n');
    expect(await run('GET', 'k'.repeat(17))).toBe('-ERR key is 17 bytes; keyBytesMax is 16\r\n');
    expect(await run('MSET', 'a', '1', 'b', 'x'.repeat(65))).toBe('-ERR value is 65 bytes; valueBytesMax is 64\r\n');
    expect(await run('DEL', 'a', '')).toBe('-ERR empty key\r\n');
    expect(store.data.size).toBe(0);
  });

  it('SET NX / XX and SETNX: +OK or :1 when applied, a nil reply or :0 when the condition was false (Redis semantics)', async () => {
    const store = fakeStore();
    const { run } = setup(store);
    expect(await run('SET', 'lock', 'a', 'XX')).toBe('$-1\r\n');
    expect(store.data.has('lock')).toBe(false);
    expect(await run('SET', 'lock', 'a', 'NX')).toBe('+OK\r\n');
    expect(await run('SET', 'lock', 'b', 'nx')).toBe('$-1\r\n');
    expect(await run('SETNX', 'lock', 'c')).toBe(':0\r\n');
    expect(await run('GET', 'lock')).toBe('$1\r\na\r\n');
    expect(await run('SET', 'lock', 'd', 'XX', 'KEEPTTL')).toBe('+OK\r\n');
    expect(await run('GET', 'lock')).toBe('$1\r\nd\r\n');
    expect(await run('SETNX', 'other', 'e')).toBe(':1\r\n');
    expect(await run('SETNX', 'other')).toBe("-ERR wrong number of arguments for 'setnx' command\r\n");
    expect(await run('SET', '', 'v', 'NX')).toBe('-ERR empty key\r\n');
  });

  it('a conditional SET with an unknown outcome is an error, never a nil reply', async () => {
    const { run } = setup(fakeStore({ fail: { status: Status.Unavailable, message: 'no storage node reported' } }));
    expect(await run('SET', 'k', 'v', 'NX')).toBe('-ERR no storage node reported (outcome unknown: the write may have been applied)\r\n');
    expect(await run('SETNX', 'k', 'v')).toBe('-ERR no storage node reported (outcome unknown: the write may have been applied)\r\n');
  });

  it('UNAVAILABLE: -TRYAGAIN on reads (nothing happened), -ERR "outcome unknown" on writes', async () => {
    const { run } = setup(fakeStore({ fail: { status: Status.Unavailable, message: 'no leader' } }));
    expect(await run('GET', 'k')).toBe('-TRYAGAIN no leader\r\n');
    expect(await run('MGET', 'k', 'j')).toBe('-TRYAGAIN no leader\r\n');
    expect(await run('SET', 'k', 'v')).toBe('-ERR no leader (outcome unknown: the write may have been applied)\r\n');
    expect(await run('DEL', 'k')).toBe('-ERR no leader (outcome unknown: the write may have been applied)\r\n'); // one transaction
  });

  it('unknown commands are answered exactly as Redis does; refused ones say why', async () => {
    const { run } = setup();
    expect(await run('FOO', 'a', 'b c')).toBe("-ERR unknown command 'FOO', with args beginning with: 'a' 'b c' \r\n");
    expect(await run('foo')).toBe("-ERR unknown command 'foo', with args beginning with: \r\n");
    expect(await run('x', 'y'.repeat(200), 'z')).toBe(`-ERR unknown command 'x', with args beginning with: '${'y'.repeat(128)}' \r\n`);
    expect(await run('toString')).toBe("-ERR unknown command 'toString', with args beginning with: \r\n");
    expect(await run('APPEND', 'k', 'v')).toMatch(/^-ERR 'append' is not implemented on Cairn yet/);
    expect(await run('EXPIRE', 'k', '1')).toBe(':0\r\n'); // served since issue 12 (ttl-commands.spec.ts)
  });

  it('SELECT, HELLO, CLIENT, COMMAND, CONFIG GET, QUIT: what clients send on connect', async () => {
    const { run, client } = setup();
    expect(await run('SELECT', '0')).toBe('+OK\r\n');
    expect(await run('SELECT', '1')).toBe('-ERR DB index is out of range\r\n');
    expect(await run('SELECT', 'x')).toBe('-ERR value is not an integer or out of range\r\n');
    expect(await run('HELLO', '3')).toBe('-NOPROTO unsupported protocol version\r\n');
    expect(await run('HELLO', '2', 'SETNAME', 'app')).toMatch(/^\*14\r\n\$6\r\nserver\r\n\$5\r\nredis\r\n.*\$5\r\nproto\r\n:2\r\n\$2\r\nid\r\n:7\r\n/s);
    expect(await run('CLIENT', 'GETNAME')).toBe('$3\r\napp\r\n');
    expect(await run('CLIENT', 'SETNAME', 'a b')).toBe('-ERR Client names cannot contain spaces, newlines or special characters.\r\n');
    expect(await run('CLIENT', 'SETNAME', 'worker-1')).toBe('+OK\r\n');
    expect(await run('CLIENT', 'ID')).toBe(':7\r\n');
    expect(await run('CLIENT', 'INFO')).toMatch(/^\$\d+\r\nid=7 addr=127\.0\.0\.1:5000 .*name=worker-1 db=0/);
    expect(await run('CLIENT', 'KILL', 'x')).toBe("-ERR unknown subcommand 'KILL'. Try CLIENT HELP.\r\n");
    expect(await run('COMMAND')).toBe('*0\r\n');
    expect(await run('COMMAND', 'DOCS')).toBe('*0\r\n');
    expect(await run('COMMAND', 'COUNT')).toMatch(/^:\d+\r\n$/);
    expect(await run('CONFIG', 'GET', 'save')).toBe('*2\r\n$4\r\nsave\r\n$0\r\n\r\n');
    expect(await run('CONFIG', 'GET', 'appendonly')).toBe('*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n');
    expect(await run('CONFIG', 'GET', 'maxmemory')).toBe('*0\r\n');
    expect(client.quit).toBe(false);
    expect(await run('QUIT')).toBe('+OK\r\n');
    expect(client.quit).toBe(true);
  });

  it('INFO and DBSIZE report the cluster as the status heartbeats show it', async () => {
    const { run, view, advance } = setup();
    expect(await run('DBSIZE')).toBe('-TRYAGAIN no live storage node status yet\r\n');
    view.onConsensusStatus({ kind: 'consensus', id: 'c1', role: 'leader', term: 3, leaderId: 'c1', commitIndex: 120, lastIndex: 121, appliedIndex: 120, logBytes: 1, atMs: 0 });
    view.onConsensusStatus({ kind: 'consensus', id: 'c2', role: 'follower', term: 3, leaderId: 'c1', commitIndex: 118, lastIndex: 121, appliedIndex: 118, logBytes: 1, atMs: 0 });
    view.onStorageStatus({ kind: 'storage', id: 's1', appliedIndex: 120, knownCommitIndex: 120, keys: 42, dataBytes: 1, atMs: 0 });
    view.onStorageStatus({ kind: 'storage', id: 's2', appliedIndex: 100, knownCommitIndex: 120, keys: 40, dataBytes: 1, atMs: 0 });
    // Every storage node holds every key: DBSIZE is the freshest node's count, not a sum.
    expect(await run('DBSIZE')).toBe(':42\r\n');
    const info = await run('INFO');
    for (const line of ['# Server', 'redis_version:7.0.0', 'cairn_version:9.9.9', 'uptime_in_seconds:90', 'connected_clients:3', 'loading:0', 'role:master', 'cairn_role:gateway', 'cairn_leader_id:c1', 'cairn_term:3', 'cairn_commit_index:120', 'db0:keys=42,expires=0,avg_ttl=0']) {
      expect(info).toContain(`${line}\r\n`);
    }
    expect(info).toMatch(/cairn_replica_c2:role=follower,term=3,commit_index=118,applied_index=118,/);
    expect(info).toMatch(/cairn_storage_s2:applied_index=100,known_commit_index=120,keys=40,/);
    const keyspace = await run('info', 'KEYSPACE');
    expect(keyspace).toBe(`$${'# Keyspace\r\ndb0:keys=42,expires=0,avg_ttl=0\r\n'.length}\r\n# Keyspace\r\ndb0:keys=42,expires=0,avg_ttl=0\r\n\r\n`);
    expect(await run('INFO', 'nosuch')).toBe('$0\r\n\r\n');
    advance(5000); // heartbeats stop: no live storage node
    expect(await run('DBSIZE')).toBe('-TRYAGAIN no live storage node status yet\r\n');
  });
});
