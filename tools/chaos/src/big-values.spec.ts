import { mulberry32 } from '@cairn/raft';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { BIG_VALUE_BYTES_MAX, RespConnection, bigValue, drawValueBytes, valueIdentity } from './big-values';

describe('big values', () => {
  it('a value names its write and size; a damaged one is a value nobody wrote', () => {
    const v = bigValue('b3-w17', 100_000);
    expect(v.length).toBe(100_000);
    expect(valueIdentity(v)).toBe('b3-w17#100000');
    expect(valueIdentity(bigValue('b3-w17', BIG_VALUE_BYTES_MAX))).toBe(`b3-w17#${BIG_VALUE_BYTES_MAX}`);
    const flipped = Buffer.from(v);
    flipped[77_777] ^= 1;
    expect(valueIdentity(flipped)).toMatch(/^corrupt#100000:[0-9a-f]+$/);
    // A truncated value is not the write it starts like.
    expect(valueIdentity(v.subarray(0, 50_000))).toBe('b3-w17#50000');
    expect(valueIdentity(v.subarray(0, 50_000))).not.toBe(valueIdentity(v));
    // Short values are their own identity (too short to carry the tag).
    expect(valueIdentity(bigValue('b3-w17', 5))).toBe('b3-w1');
    expect(valueIdentity(Buffer.from('c1-w9'))).toBe('c1-w9');
    expect(() => bigValue('x'.repeat(40), 100)).toThrow(RangeError);
    expect(() => bigValue('a;b', 100)).toThrow(RangeError);
    expect(() => bigValue('t', 0)).toThrow(RangeError);
  });

  it('sizes run from 1 byte to the limit, spread over every order of magnitude', () => {
    const rng = mulberry32(5);
    const sizes = Array.from({ length: 5000 }, () => drawValueBytes(rng, BIG_VALUE_BYTES_MAX));
    expect(Math.min(...sizes)).toBe(1);
    expect(Math.max(...sizes)).toBe(BIG_VALUE_BYTES_MAX);
    for (const [lo, hi] of [
      [1, 1024],
      [1024, 64 * 1024],
      [64 * 1024, BIG_VALUE_BYTES_MAX],
    ]) {
      expect(sizes.filter((n) => n >= lo && n < hi).length).toBeGreaterThan(500);
    }
    expect(sizes.filter((n) => n === BIG_VALUE_BYTES_MAX).length).toBeGreaterThan(400);
  });
});

describe('RespConnection (real socket)', () => {
  let server: Server;
  let port: number;
  const received: Buffer[] = [];
  /** What the fake server answers to the next command, written in `chunkBytes` pieces. */
  let answer: { bytes: Buffer; chunkBytes: number } | null = null;
  beforeAll(async () => {
    server = createServer((s: Socket) => {
      s.on('error', () => undefined);
      s.on('data', (c: Buffer) => {
        received.push(c);
        if (!answer) return;
        // Commands here fit one read: answer each once.
        const { bytes, chunkBytes } = answer;
        answer = null;
        for (let i = 0; i < bytes.length; i += chunkBytes) s.write(bytes.subarray(i, i + chunkBytes));
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as { port: number }).port;
  });
  afterAll(() => new Promise((r) => server.close(r)));

  it('reads an MGET reply of 16 values of 1 MiB arriving in small chunks, nulls included', async () => {
    const v = bigValue('r9-w1', BIG_VALUE_BYTES_MAX);
    const items = Array.from({ length: 16 }, (_, i) => (i % 5 === 4 ? '$-1\r\n' : null));
    const reply = Buffer.concat([
      Buffer.from(`*16\r\n`),
      ...items.map((n) => (n ? Buffer.from(n) : Buffer.concat([Buffer.from(`$${v.length}\r\n`), v, Buffer.from('\r\n')]))),
    ]);
    answer = { bytes: reply, chunkBytes: 16 * 1024 + 7 };
    const c = await RespConnection.connect('127.0.0.1', port, 2000, 17 * (BIG_VALUE_BYTES_MAX + 64));
    try {
      const r = (await c.command(['MGET', ...Array.from({ length: 16 }, (_, i) => `big${i % 4}`)], 10_000)) as (Buffer | null)[];
      expect(r).toHaveLength(16);
      r.forEach((b, i) => (i % 5 === 4 ? expect(b).toBeNull() : expect(valueIdentity(b!)).toBe(`r9-w1#${BIG_VALUE_BYTES_MAX}`)));
      expect(Buffer.concat(received).toString('latin1')).toMatch(/^\*17\r\n\$4\r\nMGET\r\n\$4\r\nbig0\r\n/);
      answer = { bytes: Buffer.from('+OK\r\n'), chunkBytes: 1 };
      expect(await c.command(['SET', 'big0', bigValue('r9-w2', 100)], 10_000)).toBe('OK');
      answer = { bytes: Buffer.from('-TRYAGAIN no leader\r\n'), chunkBytes: 3 };
      await expect(c.command(['GET', 'big0'], 10_000)).rejects.toThrow('TRYAGAIN no leader');
      expect(c.closed).toBe(false);
    } finally {
      c.close();
    }
  });

  it('closes the connection on a reply past its bound and on a timeout', async () => {
    answer = { bytes: Buffer.from(`$100000\r\n${'x'.repeat(100_000)}\r\n`), chunkBytes: 4096 };
    const c = await RespConnection.connect('127.0.0.1', port, 2000, 50_000);
    await expect(c.command(['GET', 'k'], 10_000)).rejects.toThrow(/larger than 50000 bytes/);
    expect(c.closed).toBe(true);
    answer = null; // the server stays silent
    const d = await RespConnection.connect('127.0.0.1', port, 2000, 50_000);
    await expect(d.command(['GET', 'k'], 50)).rejects.toThrow(/no reply within 50 ms/);
    expect(d.closed).toBe(true);
  });
});
