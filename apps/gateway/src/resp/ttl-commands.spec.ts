import { ClusterView } from '../cluster/cluster-view';
import { KvSession } from '../paths/kv-session';
import { RespCommands, type RespClient } from './commands';
import { OrderGate } from './order-gate';
import { fakeStore } from './testing';

function setup() {
  const store = fakeStore();
  let nowMs = 1_000_000;
  const view = new ClusterView(() => nowMs);
  const commands = new RespCommands({ gatewayId: 'g1', version: '9.9.9', startedAtMs: 0, respPort: 6380, connections: () => 1, view, now: () => nowMs });
  const client: RespClient = { id: 1, name: null, remote: 'r', local: 'l', session: new KvSession(store.paths), quit: false, gate: new OrderGate() };
  const run = async (...args: string[]) => (await commands.handle(args.map((a) => Buffer.from(a, 'latin1')), client)).toString('latin1');
  const expiry = (k: string) => store.data.get(k)?.meta?.expiresAtMs ?? 0;
  return { store, run, expiry, advance: (ms: number) => (nowMs += ms) };
}

describe('RESP key expiry (Redis 7 expire.c return values)', () => {
  it('EXPIRE / PEXPIRE / EXPIREAT / PEXPIREAT set the absolute expiry: :1 when set, :0 on a missing key', async () => {
    const { run, expiry } = setup(); // the clock reads 1,000,000 ms
    expect(await run('EXPIRE', 'k', '10')).toBe(':0\r\n');
    await run('SET', 'k', 'v');
    expect(await run('EXPIRE', 'k', '10')).toBe(':1\r\n');
    expect(expiry('k')).toBe(1_010_000);
    expect(await run('pexpire', 'k', '250')).toBe(':1\r\n');
    expect(expiry('k')).toBe(1_000_250);
    expect(await run('EXPIREAT', 'k', '2000000000')).toBe(':1\r\n');
    expect(expiry('k')).toBe(2_000_000_000_000);
    expect(await run('PEXPIREAT', 'k', '2000000000123')).toBe(':1\r\n');
    expect(expiry('k')).toBe(2_000_000_000_123);
    // a time already past is kept as a past expiry (the key is expired at once; Redis deletes it)
    expect(await run('EXPIRE', 'k', '-5')).toBe(':1\r\n');
    expect(expiry('k')).toBe(995_000);
    // ... so it is gone: an EXPIRE on it finds no key
    expect(await run('EXPIREAT', 'k', '2000000000')).toBe(':0\r\n');
    await run('SET', 'j', 'v');
    expect(await run('EXPIREAT', 'j', '-5')).toBe(':1\r\n');
    expect(expiry('j')).toBe(1);
  });

  it('NX / XX / GT / LT as Redis 7, and its argument errors', async () => {
    const { run, expiry } = setup();
    await run('SET', 'k', 'v');
    expect(await run('EXPIRE', 'k', '100', 'XX')).toBe(':0\r\n'); // no expiry yet
    expect(await run('EXPIRE', 'k', '100', 'GT')).toBe(':0\r\n'); // none counts as infinite
    expect(await run('EXPIRE', 'k', '100', 'NX')).toBe(':1\r\n');
    expect(await run('EXPIRE', 'k', '200', 'nx')).toBe(':0\r\n');
    expect(await run('EXPIRE', 'k', '50', 'GT')).toBe(':0\r\n');
    expect(await run('EXPIRE', 'k', '200', 'GT')).toBe(':1\r\n');
    expect(await run('EXPIRE', 'k', '300', 'LT')).toBe(':0\r\n');
    expect(await run('EXPIRE', 'k', '150', 'LT', 'XX')).toBe(':1\r\n');
    expect(expiry('k')).toBe(1_150_000);
    await run('SET', 'p', 'v');
    expect(await run('EXPIRE', 'p', '10', 'LT')).toBe(':1\r\n'); // none counts as infinite: anything is less
    expect(await run('EXPIRE', 'k', '1', 'NX', 'XX')).toBe('-ERR NX and XX, GT or LT options at the same time are not compatible\r\n');
    expect(await run('EXPIRE', 'k', '1', 'GT', 'LT')).toBe('-ERR GT and LT options at the same time are not compatible\r\n');
    expect(await run('EXPIRE', 'k', '1', 'FOO')).toBe('-ERR Unsupported option FOO\r\n');
    expect(await run('EXPIRE', 'k', 'ten')).toBe('-ERR value is not an integer or out of range\r\n');
    // Redis 7.0's int64 overflow rules (unit/expire): a seconds argument past INT64_MAX / 1000 (or
    // below INT64_MIN / 1000), or a relative time past INT64_MAX once now is added, is invalid...
    for (const [cmd, t] of [['EXPIRE', '9223372036854776'], ['EXPIRE', '-9223372036854776'], ['PEXPIRE', '9223372036854770000']]) {
      expect(await run(cmd, 'k', t)).toBe(`-ERR invalid expire time in '${cmd.toLowerCase()}' command\r\n`);
    }
    expect(await run('EXPIRE', 'k', '9223372036854775808')).toBe('-ERR value is not an integer or out of range\r\n');
    // ... while a valid int64 later than Cairn can carry is the latest expiry it can (2^53 - 1 ms: the year 287,396).
    await run('SET', 'far', 'v');
    expect(await run('PEXPIREAT', 'far', '9223372036854770000')).toBe(':1\r\n');
    expect(expiry('far')).toBe(Number.MAX_SAFE_INTEGER);
    // LT with XX: only a key that has an expiry (LT alone also takes one without).
    await run('SET', 'q', 'v');
    expect(await run('EXPIRE', 'q', '200', 'LT', 'XX')).toBe(':0\r\n');
    expect(await run('EXPIRE', 'q', '200', 'XX', 'LT')).toBe(':0\r\n');
    expect(expiry('q')).toBe(0);
    expect(await run('EXPIRE', 'k')).toBe("-ERR wrong number of arguments for 'expire' command\r\n");
    expect(expiry('k')).toBe(1_150_000);
  });

  it('TTL / PTTL: -2 missing, -1 no expiry, else the time left (TTL rounded to the nearest second); EXPIRETIME / PEXPIRETIME the absolute time', async () => {
    const { run, advance } = setup();
    expect(await run('TTL', 'k')).toBe(':-2\r\n');
    expect(await run('PTTL', 'k')).toBe(':-2\r\n');
    expect(await run('EXPIRETIME', 'k')).toBe(':-2\r\n');
    await run('SET', 'k', 'v');
    expect(await run('TTL', 'k')).toBe(':-1\r\n');
    expect(await run('PEXPIRETIME', 'k')).toBe(':-1\r\n');
    await run('PEXPIRE', 'k', '10400');
    expect(await run('TTL', 'k')).toBe(':10\r\n');
    expect(await run('PTTL', 'k')).toBe(':10400\r\n');
    advance(900);
    expect(await run('TTL', 'k')).toBe(':10\r\n'); // 9,500 ms rounds up
    expect(await run('PTTL', 'k')).toBe(':9500\r\n');
    expect(await run('EXPIRETIME', 'k')).toBe(':1010\r\n');
    expect(await run('PEXPIRETIME', 'k')).toBe(':1010400\r\n');
  });

  it('PERSIST: :1 when it removed an expiry, :0 when there was none or no key', async () => {
    const { run, expiry } = setup();
    expect(await run('PERSIST', 'k')).toBe(':0\r\n');
    await run('SET', 'k', 'v', 'EX', '10');
    expect(await run('PERSIST', 'k')).toBe(':1\r\n');
    expect(expiry('k')).toBe(0);
    expect(await run('PERSIST', 'k')).toBe(':0\r\n');
    expect(await run('TTL', 'k')).toBe(':-1\r\n');
  });

  it('GETEX: the value, then the new expiry (EX/PX/EXAT/PXAT) or none (PERSIST); nil on a missing key', async () => {
    const { run, expiry } = setup();
    expect(await run('GETEX', 'k', 'EX', '10')).toBe('$-1\r\n');
    expect(await run('SET', 'k', 'v')).toBe('+OK\r\n');
    expect(await run('GETEX', 'k')).toBe('$1\r\nv\r\n');
    expect(expiry('k')).toBe(0);
    expect(await run('GETEX', 'k', 'ex', '10')).toBe('$1\r\nv\r\n');
    expect(expiry('k')).toBe(1_010_000);
    expect(await run('GETEX', 'k', 'PX', '5')).toBe('$1\r\nv\r\n');
    expect(expiry('k')).toBe(1_000_005);
    expect(await run('GETEX', 'k', 'EXAT', '2000000000')).toBe('$1\r\nv\r\n');
    expect(expiry('k')).toBe(2_000_000_000_000);
    expect(await run('GETEX', 'k', 'PXAT', '2000000000001')).toBe('$1\r\nv\r\n');
    expect(expiry('k')).toBe(2_000_000_000_001);
    expect(await run('GETEX', 'k', 'PERSIST')).toBe('$1\r\nv\r\n');
    expect(expiry('k')).toBe(0);
    expect(await run('GETEX', 'k', 'EX', '0')).toBe("-ERR invalid expire time in 'getex' command\r\n");
    expect(await run('GETEX', 'k', 'EX', 'x')).toBe('-ERR value is not an integer or out of range\r\n');
    expect(await run('GETEX', 'k', 'EX')).toBe('-ERR syntax error\r\n');
    expect(await run('GETEX', 'k', 'PERSIST', 'EX', '1')).toBe('-ERR syntax error\r\n');
  });

  it('TIME: this gateway\'s clock as Unix seconds and microseconds; SET / SETEX with a time past INT64_MAX / 1000 s: invalid expire time', async () => {
    const { run, advance } = setup(); // the clock reads 1,000,000 ms
    advance(234);
    expect(await run('TIME')).toBe('*2\r\n$4\r\n1000\r\n$6\r\n234000\r\n');
    expect(await run('SET', 'k', 'v', 'EX', '10000000000000000')).toBe("-ERR invalid expire time in 'set' command\r\n");
    expect(await run('SETEX', 'k', '10000000000000000', 'v')).toBe("-ERR invalid expire time in 'setex' command\r\n");
    expect(await run('SET', 'k', 'v', 'EX', '-9999999999999999')).toBe("-ERR invalid expire time in 'set' command\r\n");
    expect(await run('SET', 'k', 'v', 'PX', '10000000000000000')).toBe('+OK\r\n'); // valid in Redis; the latest expiry Cairn carries
    expect(await run('SET', 'k', 'v', 'EX', 'x')).toBe('-ERR value is not an integer or out of range\r\n');
  });

  it('keys in the reserved keyspace are refused', async () => {
    const { run } = setup();
    expect(await run('TTL', '\xff'.repeat(8))).toMatch(/^-ERR keys starting with eight 0xff bytes are reserved/);
    expect(await run('EXPIRE', '\xff'.repeat(9), '1')).toMatch(/^-ERR keys starting with eight 0xff bytes are reserved/);
  });
});
