import type { HistoryRecorder } from '@cairn/checker';
import { CairnClient } from '@cairn/client';
import { mulberry32 } from '@cairn/raft';
import { connect as tcpConnect, type Socket } from 'node:net';
import { crc32 } from 'node:zlib';
import { setTimeout as sleep } from 'node:timers/promises';

/** The gateway's default `valueBytesMax` (1 MiB): the largest value the workload writes. */
export const BIG_VALUE_BYTES_MAX = 1024 * 1024;
/** Values shorter than this are their own history identity (too short to carry their tag). */
const TAGGED_BYTES_MIN = 32;

/**
 * The big-values workload of a chaos run (issue 9): values from 1 byte to `valueBytesMax` on a few
 * keys `big0..`, written and read through both doors the issue broke: TLV (SET/GET/DEL, and
 * `pipelinedReads` GETs of large values in flight at once on one connection) and RESP (SET, and
 * MGET of `mgetKeys` keys, repeats allowed: up to mgetKeys × valueBytesMax in one reply).
 */
export interface BigValuesOptions {
  /** TLV clients (default 2), each its own connection. One RESP client runs besides them. */
  clients?: number;
  /** Keys big0..big{keys-1} (default 4). */
  keys?: number;
  /** Largest value, bytes (default BIG_VALUE_BYTES_MAX). Sizes are log-uniform from 1 byte, one in ten exactly this. */
  valueBytesMax?: number;
  /** Keys per MGET (default 16). */
  mgetKeys?: number;
  /** GETs one TLV client sends at once in a pipelined burst (default 32). */
  pipelinedReads?: number;
  /** Pause between one client's operations, ms (default 0). */
  thinkMs?: number;
}

export interface BigValuesContext {
  recorder: HistoryRecorder;
  seed: number;
  host: string;
  port: number;
  respPort: number;
  requestTimeoutMs: number;
  /** First client id to use: ids firstClientId .. firstClientId + clients (the RESP client last). */
  firstClientId: number;
  over: () => boolean;
  /** Decides whether a failed TLV write did not happen (`fail`) or may have (`info`). */
  writeOutcome: (err: unknown) => 'fail' | 'info';
  errorBackoffMs: number;
}

/** Key names of the workload. */
export function bigKeys(keys: number): string[] {
  return Array.from({ length: keys }, (_, i) => `big${i}`);
}

/**
 * The value `tag` writes with `bytes` bytes: `tag;` repeated (cut at `bytes`), so a reader can
 * tell which write it got and that every byte is intact without keeping the value.
 * @throws RangeError when `tag` is too long to be recognised (≥ 31 bytes) or `bytes` < 1.
 */
export function bigValue(tag: string, bytes: number): Buffer {
  if (tag.length >= TAGGED_BYTES_MIN - 1 || tag.includes(';')) throw new RangeError(`tag ${JSON.stringify(tag)} must be under ${TAGGED_BYTES_MIN - 1} bytes, without ';'`);
  if (!(bytes >= 1)) throw new RangeError(`value size must be >= 1 byte, got ${bytes}`);
  return Buffer.alloc(bytes, `${tag};`);
}

/**
 * How a value is recorded in the history (the checker compares these strings): `tag#bytes` for a
 * value of TAGGED_BYTES_MIN bytes or more whose every byte is what `bigValue(tag, bytes)` wrote;
 * the value itself (latin1) when shorter; `corrupt#bytes:crc` for anything else, a value nobody
 * wrote (so a read of it is a violation).
 */
export function valueIdentity(v: Uint8Array): string {
  const buf = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  if (buf.length < TAGGED_BYTES_MIN) return buf.toString('latin1');
  const semi = buf.subarray(0, TAGGED_BYTES_MIN).indexOf(0x3b);
  if (semi > 0) {
    const tag = buf.toString('latin1', 0, semi);
    if (buf.equals(bigValue(tag, buf.length))) return `${tag}#${buf.length}`;
  }
  return `corrupt#${buf.length}:${crc32(buf).toString(16)}`;
}

/** A size from 1 to `max`: log-uniform (as many values under 1 KiB as between 64 KiB and 1 MiB), one in ten exactly `max`. */
export function drawValueBytes(rng: () => number, max: number): number {
  if (rng() < 0.1) return max;
  return Math.max(1, Math.min(max, Math.floor(Math.exp(rng() * Math.log(max + 1)))));
}

/** What the workload did (successful requests only), for the run's summary. */
export interface BigValuesStats {
  /** SETs acknowledged (TLV and RESP) and their value bytes. */
  sets: number;
  setBytes: number;
  /** The largest value acknowledged, bytes. */
  setBytesMax: number;
  /** Value bytes read back (GETs and MGETs). */
  readBytes: number;
  /** MGETs answered, and pipelined bursts of TLV GETs all answered. */
  mgets: number;
  pipelinedBursts: number;
}

export function formatBigValuesStats(s: BigValuesStats): string {
  const mib = (n: number) => (n / (1024 * 1024)).toFixed(1);
  return `big values: ${s.sets} SETs acknowledged (${mib(s.setBytes)} MiB, largest ${s.setBytesMax} bytes), ${mib(s.readBytes)} MiB read back, ${s.mgets} MGETs, ${s.pipelinedBursts} pipelined GET bursts answered in full`;
}

/** Runs the workload's clients until `ctx.over()`; every operation goes into `ctx.recorder`. */
export async function runBigValues(o: BigValuesOptions, ctx: BigValuesContext, stats: BigValuesStats = newBigValuesStats()): Promise<BigValuesStats> {
  const clients = o.clients ?? 2;
  const keys = bigKeys(o.keys ?? 4);
  const loops = Array.from({ length: clients }, (_, i) => tlvLoop(o, ctx, keys, ctx.firstClientId + i, stats));
  loops.push(respLoop(o, ctx, keys, ctx.firstClientId + clients, stats));
  await Promise.all(loops);
  return stats;
}

export function newBigValuesStats(): BigValuesStats {
  return { sets: 0, setBytes: 0, setBytesMax: 0, readBytes: 0, mgets: 0, pipelinedBursts: 0 };
}

function noteSet(stats: BigValuesStats, bytes: number): void {
  stats.sets++;
  stats.setBytes += bytes;
  stats.setBytesMax = Math.max(stats.setBytesMax, bytes);
}

async function tlvLoop(o: BigValuesOptions, ctx: BigValuesContext, keys: string[], clientId: number, stats: BigValuesStats): Promise<void> {
  const rng = mulberry32((ctx.seed ^ Math.imul(clientId + 1, 0x85ebca6b)) >>> 0);
  const rec = ctx.recorder;
  const max = o.valueBytesMax ?? BIG_VALUE_BYTES_MAX;
  const burst = o.pipelinedReads ?? 32;
  let conn: CairnClient | null = null;
  let writes = 0;
  while (!ctx.over()) {
    const r = rng();
    const key = keys[Math.floor(rng() * keys.length)]!;
    if (!conn) {
      try {
        conn = await CairnClient.connect({ host: ctx.host, port: ctx.port, connectTimeoutMs: 2000, requestTimeoutMs: ctx.requestTimeoutMs, inflightMax: Math.max(16, burst) });
      } catch {
        await sleep(ctx.errorBackoffMs);
        continue;
      }
    }
    const c = conn;
    let failed = false;
    if (r < 0.2) {
      // Pipelined reads of large values: `burst` GETs in flight at once, each its own operation.
      const ids = Array.from({ length: burst }, (_, i) => {
        const k = keys[(keys.indexOf(key) + i) % keys.length]!;
        return { k, id: rec.invoke(clientId, 'get', k) };
      });
      const results = await Promise.allSettled(ids.map(({ k }) => c.get(k)));
      results.forEach((res, i) => {
        if (res.status === 'fulfilled') {
          rec.ok(ids[i]!.id, res.value ? valueIdentity(res.value.value) : null);
          stats.readBytes += res.value?.value.length ?? 0;
        } else {
          rec.fail(ids[i]!.id);
          failed = true;
        }
      });
      if (!failed) stats.pipelinedBursts++;
    } else {
      const kind = r < 0.45 ? 'get' : r < 0.93 ? 'put' : 'delete';
      // Each client's first write is at the limit exactly, so even a short run covers it.
      const value = kind === 'put' ? bigValue(`b${clientId}-w${++writes}`, writes === 1 ? max : drawValueBytes(rng, max)) : undefined;
      const id = rec.invoke(clientId, kind, key, value ? valueIdentity(value) : undefined);
      try {
        if (kind === 'get') {
          const got = await c.get(key);
          rec.ok(id, got ? valueIdentity(got.value) : null);
          stats.readBytes += got?.value.length ?? 0;
        } else {
          if (kind === 'put') await c.set(key, value!);
          else await c.del(key);
          rec.ok(id);
          if (value) noteSet(stats, value.length);
        }
      } catch (e) {
        failed = true;
        if (kind === 'get' || ctx.writeOutcome(e) === 'fail') rec.fail(id);
        else rec.info(id);
      }
    }
    if (failed) {
      if (c.stats().closed) conn = null;
      await sleep(ctx.errorBackoffMs);
    } else if (o.thinkMs) await sleep(o.thinkMs);
  }
  if (conn) await conn.close().catch(() => conn?.destroy());
}

async function respLoop(o: BigValuesOptions, ctx: BigValuesContext, keys: string[], clientId: number, stats: BigValuesStats): Promise<void> {
  const rng = mulberry32((ctx.seed ^ Math.imul(clientId + 1, 0xc2b2ae35)) >>> 0);
  const rec = ctx.recorder;
  const max = o.valueBytesMax ?? BIG_VALUE_BYTES_MAX;
  const mgetKeys = o.mgetKeys ?? 16;
  let conn: RespConnection | null = null;
  let writes = 0;
  while (!ctx.over()) {
    if (!conn) {
      try {
        conn = await RespConnection.connect(ctx.host, ctx.respPort, 2000, (max + 64) * mgetKeys + 64);
      } catch {
        await sleep(ctx.errorBackoffMs);
        continue;
      }
    }
    let failed = false;
    if (rng() < 0.7) {
      // MGET of many large values, repeats allowed: each key read is its own operation over the MGET's interval.
      const ks = Array.from({ length: mgetKeys }, () => keys[Math.floor(rng() * keys.length)]!);
      const ids = ks.map((k) => rec.invoke(clientId, 'get', k));
      try {
        const reply = await conn.command(['MGET', ...ks], ctx.requestTimeoutMs);
        if (!Array.isArray(reply) || reply.length !== ks.length) throw new Error(`MGET: unexpected reply ${describeReply(reply)}`);
        reply.forEach((v, i) => {
          rec.ok(ids[i]!, v === null ? null : valueIdentity(v));
          stats.readBytes += v?.length ?? 0;
        });
        stats.mgets++;
      } catch {
        for (const id of ids) rec.fail(id);
        failed = true;
      }
    } else {
      const key = keys[Math.floor(rng() * keys.length)]!;
      const value = bigValue(`r${clientId}-w${++writes}`, drawValueBytes(rng, max));
      const id = rec.invoke(clientId, 'put', key, valueIdentity(value));
      try {
        const reply = await conn.command(['SET', key, value], ctx.requestTimeoutMs);
        if (reply !== 'OK') throw new Error(`SET: unexpected reply ${describeReply(reply)}`);
        rec.ok(id);
        noteSet(stats, value.length);
      } catch {
        // Any error of a RESP SET may hide an applied write (docs/resp.md, Errors): indeterminate.
        rec.info(id);
        failed = true;
      }
    }
    if (failed) {
      if (conn.closed) conn = null;
      await sleep(ctx.errorBackoffMs);
    } else if (o.thinkMs) await sleep(o.thinkMs);
  }
  conn?.close();
}

function describeReply(r: RespReply): string {
  if (r instanceof Error) return `error ${r.message}`;
  if (Array.isArray(r)) return `array of ${r.length}`;
  return JSON.stringify(r === null ? null : Buffer.isBuffer(r) ? `${r.length} bytes` : r);
}

/** A RESP2 reply as this client reads it: simple string, error, integer, bulk (null), flat array of bulks. */
export type RespReply = string | number | Buffer | null | Error | (Buffer | null)[];

/** Thrown when a RESP reply is malformed or larger than the connection's bound. */
export class RespReplyError extends Error {
  readonly code = 'RESP_REPLY';
}

/**
 * A minimal RESP2 client for the workload: one command at a time; reads the reply incrementally
 * into one growing buffer (doubling, at most `replyBytesMax`), so a reply of 16 values of 1 MiB
 * costs O(bytes), not a re-parse per chunk. Closed on any error, timeout or bound crossed.
 */
export class RespConnection {
  private buf = Buffer.alloc(64 * 1024);
  private len = 0;
  private pending: { resolve: (r: RespReply) => void; reject: (e: Error) => void; timer: NodeJS.Timeout } | null = null;
  private isClosed = false;

  private constructor(
    private readonly socket: Socket,
    private readonly replyBytesMax: number,
  ) {
    socket.on('data', (c: Buffer) => this.onData(c));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.isClosed = true;
      this.settle(new RespReplyError('connection closed'));
    });
  }

  /** @throws the connect error, or a timeout after `timeoutMs`. */
  static connect(host: string, port: number, timeoutMs: number, replyBytesMax: number): Promise<RespConnection> {
    return new Promise((resolve, reject) => {
      const s = tcpConnect({ host, port, noDelay: true });
      const t = setTimeout(() => {
        s.destroy();
        reject(new Error(`connect to ${host}:${port} timed out`));
      }, timeoutMs);
      s.once('connect', () => {
        clearTimeout(t);
        resolve(new RespConnection(s, replyBytesMax));
      });
      s.once('error', (e) => {
        clearTimeout(t);
        reject(e);
      });
    });
  }

  get closed(): boolean {
    return this.isClosed;
  }

  close(): void {
    this.isClosed = true;
    this.socket.destroy();
  }

  /** Sends one command and resolves with its reply. @throws RespReplyError on an error reply (its text), a timeout (the connection is then closed), a closed connection. */
  command(args: (string | Buffer)[], timeoutMs: number): Promise<RespReply> {
    if (this.isClosed) return Promise.reject(new RespReplyError('connection closed'));
    if (this.pending) return Promise.reject(new RespReplyError('one command at a time'));
    const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
    for (const a of args) {
      const b = typeof a === 'string' ? Buffer.from(a) : a;
      parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
    }
    return new Promise<RespReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.settle(new RespReplyError(`no reply within ${timeoutMs} ms`));
        this.close();
      }, timeoutMs);
      this.pending = { resolve, reject, timer };
      this.socket.write(Buffer.concat(parts));
    });
  }

  private settle(r: RespReply): void {
    const p = this.pending;
    if (!p) return;
    this.pending = null;
    clearTimeout(p.timer);
    if (r instanceof Error) p.reject(r);
    else p.resolve(r);
  }

  private onData(c: Buffer): void {
    if (this.len + c.length > this.replyBytesMax) {
      this.settle(new RespReplyError(`reply larger than ${this.replyBytesMax} bytes`));
      this.close();
      return;
    }
    if (this.len + c.length > this.buf.length) {
      const grown = Buffer.alloc(Math.min(this.replyBytesMax, Math.max(this.buf.length * 2, this.len + c.length)));
      this.buf.copy(grown, 0, 0, this.len);
      this.buf = grown;
    }
    c.copy(this.buf, this.len);
    this.len += c.length;
    let parsed: { reply: RespReply; next: number } | null;
    try {
      parsed = this.parse(0);
    } catch (e) {
      this.settle(e as Error);
      this.close();
      return;
    }
    if (!parsed) return;
    const r = parsed.reply;
    const reply = Buffer.isBuffer(r) ? Buffer.from(r) : Array.isArray(r) ? r.map((b) => (b ? Buffer.from(b) : null)) : r;
    this.buf.copy(this.buf, 0, parsed.next, this.len);
    this.len -= parsed.next;
    this.settle(reply);
  }

  private line(pos: number): { text: string; next: number } | null {
    const lf = this.buf.subarray(0, this.len).indexOf(0x0a, pos);
    if (lf < 0) return null;
    if (lf === pos || this.buf[lf - 1] !== 0x0d) throw new RespReplyError('reply line does not end in CRLF');
    return { text: this.buf.toString('latin1', pos + 1, lf - 1), next: lf + 1 };
  }

  private bulk(pos: number): { reply: Buffer | null; next: number } | null {
    const l = this.line(pos);
    if (!l) return null;
    if (this.buf[pos] !== 0x24) throw new RespReplyError(`expected a bulk string, got ${String.fromCharCode(this.buf[pos]!)}`);
    const n = Number(l.text);
    if (n === -1) return { reply: null, next: l.next };
    if (!Number.isSafeInteger(n) || n < 0) throw new RespReplyError(`bad bulk length ${l.text}`);
    if (l.next + n + 2 > this.len) return null;
    // A view: onData copies the reply out once it is complete (the buffer is reused).
    return { reply: this.buf.subarray(l.next, l.next + n), next: l.next + n + 2 };
  }

  /** The reply at `pos` (bulks as views), or null while incomplete. Re-parsed from the start per chunk: cheap, only the ≤ mgetKeys headers are scanned. */
  private parse(pos: number): { reply: RespReply; next: number } | null {
    if (pos >= this.len) return null;
    const type = this.buf[pos];
    if (type === 0x24) return this.bulk(pos);
    const l = this.line(pos);
    if (!l) return null;
    switch (type) {
      case 0x2b: // +
        return { reply: l.text, next: l.next };
      case 0x2d: // -
        return { reply: new RespReplyError(l.text), next: l.next };
      case 0x3a: // :
        return { reply: Number(l.text), next: l.next };
      case 0x2a: {
        const n = Number(l.text);
        if (n === -1) return { reply: null, next: l.next };
        if (!Number.isSafeInteger(n) || n < 0) throw new RespReplyError(`bad array length ${l.text}`);
        const items: (Buffer | null)[] = [];
        let next = l.next;
        for (let i = 0; i < n; i++) {
          const b = this.bulk(next);
          if (!b) return null;
          items.push(b.reply);
          next = b.next;
        }
        return { reply: items, next };
      }
      default:
        throw new RespReplyError(`unexpected reply type byte 0x${(type ?? 0).toString(16)}`);
    }
  }
}
