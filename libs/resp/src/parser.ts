import { splitInlineArgs } from './inline';

/** Bounds of one connection's parser. Every byte a client sends is held under one of them. */
export interface RespParserLimits {
  /** Largest bulk string argument, bytes (Redis `proto-max-bulk-len`). */
  bulkBytesMax: number;
  /** Most arguments in one command (the `*<n>` count). */
  arrayLengthMax: number;
  /** Longest inline command line and longest `*`/`$` header line, bytes (Redis `PROTO_INLINE_MAX_SIZE`, 64 KiB). */
  inlineBytesMax?: number;
  /** Most bytes of bulk arguments in one command (a bound on a command's memory, like Redis's `client-query-buffer-limit`). */
  commandBytesMax: number;
}

export const INLINE_BYTES_MAX = 64 * 1024;

/**
 * One parser outcome. `command`: the arguments of one command, in order (bulk arguments that
 * arrived within one chunk are views of it, not copies). `error`: the input is not RESP; `message`
 * is Redis's reply text for it (to be sent as `-ERR <message>`); the parser then ignores all
 * further input and the connection should be closed after the reply, as Redis does.
 */
export type RespEvent = { kind: 'command'; args: Buffer[] } | { kind: 'error'; message: string };

/** Redis's protocol error texts (networking.c, processMultibulkBuffer / processInlineBuffer). */
export const ProtocolErrors = {
  tooBigInline: 'Protocol error: too big inline request',
  tooBigMbulkCount: 'Protocol error: too big mbulk count string',
  tooBigBulkCount: 'Protocol error: too big bulk count string',
  unbalancedQuotes: 'Protocol error: unbalanced quotes in request',
  invalidMultibulkLength: 'Protocol error: invalid multibulk length',
  invalidBulkLength: 'Protocol error: invalid bulk length',
  expectedDollar: (got: number) => `Protocol error: expected '$', got '${String.fromCharCode(got)}'`,
  /** Not a Redis text: Redis skips the two bytes after a bulk without looking at them. */
  expectedCrlf: "Protocol error: expected '\\r\\n' after bulk string",
  /** Not a Redis text: Redis closes such a client silently (client-query-buffer-limit). */
  tooBigCommand: (max: number) => `Protocol error: command larger than ${max} bytes`,
} as const;

const CR = 0x0d;
const LF = 0x0a;
const STAR = 0x2a;
const DOLLAR = 0x24;

/**
 * Redis `string2ll`: optional `-`, then digits without leading zeros ("0" alone is fine), nothing
 * else; the value must be a safe integer here. @returns the value, or null when not such a number.
 */
export function parseRespInteger(b: Uint8Array, start: number, end: number): number | null {
  if (start >= end || end - start > 20) return null;
  let i = start;
  const negative = b[i] === 0x2d;
  if (negative) i++;
  if (i >= end) return null;
  if (b[i] === 0x30) return end - i === 1 && !negative ? 0 : null;
  let v = 0;
  for (; i < end; i++) {
    const d = b[i] - 0x30;
    if (d < 0 || d > 9) return null;
    v = v * 10 + d;
  }
  if (!Number.isSafeInteger(v)) return null;
  return negative ? -v : v;
}

/**
 * Streaming RESP2 request parser, after Redis's networking.c: multibulk commands (`*<n>\r\n` then
 * n × `$<len>\r\n<bytes>\r\n`) as clients send them, and inline commands (`SET hello world\r\n`,
 * what `nc`/telnet users type; quoting per `splitInlineArgs`). Input may be fragmented anywhere or
 * hold many commands; the events are the same for every way of cutting it.
 *
 * Memory: at most one partial header or inline line (≤ inlineBytesMax) plus the arguments of one
 * command (≤ commandBytesMax, each ≤ bulkBytesMax); a bulk body is allocated only after its header
 * passed the limits, and one that arrives within a single chunk is not copied.
 *
 * Differences from Redis: `*<n>` above arrayLengthMax is an invalid multibulk length (Redis: above
 * 2^31-1); the two bytes after a bulk must be `\r\n` (Redis skips them unread); header lines must end
 * in `\r\n`; a line over inlineBytesMax is refused however it was fragmented (Redis checks only
 * while it has no newline in its buffer).
 */
export class RespParser {
  private readonly inlineBytesMax: number;
  /** Pieces of an unfinished header or inline line (joined once its LF arrives: no quadratic copying). */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Arguments still expected by the current multibulk command (0: between commands). */
  private argsLeft = 0;
  private args: Buffer[] = [];
  private commandBytes = 0;
  /** A bulk body (+ CRLF) being filled across chunks, or null. */
  private body: Buffer | null = null;
  private bodyFilled = 0;
  private failed = false;

  constructor(private readonly limits: RespParserLimits) {
    this.inlineBytesMax = limits.inlineBytesMax ?? INLINE_BYTES_MAX;
    if (!(limits.bulkBytesMax >= 0 && limits.arrayLengthMax >= 1 && this.inlineBytesMax >= 16 && limits.commandBytesMax >= limits.bulkBytesMax)) {
      throw new Error('RespParserLimitsInvalid: need bulkBytesMax ≥ 0, arrayLengthMax ≥ 1, inlineBytesMax ≥ 16, commandBytesMax ≥ bulkBytesMax');
    }
  }

  /** True once the parser has reported an error (it ignores all input from then on). */
  hasFailed(): boolean {
    return this.failed;
  }

  /** True while a command has started but not finished (part of a line, of a multibulk command or of a bulk). */
  midCommand(): boolean {
    return !this.failed && (this.pendingBytes > 0 || this.argsLeft > 0 || this.body !== null);
  }

  /** Feeds bytes; @returns the events completed by them, in order (an `error` is always last). */
  push(chunk: Buffer): RespEvent[] {
    const out: RespEvent[] = [];
    let i = 0;
    const n = chunk.length;
    while (i < n && !this.failed) {
      if (this.body) {
        const take = Math.min(this.body.length - this.bodyFilled, n - i);
        chunk.copy(this.body, this.bodyFilled, i, i + take);
        this.bodyFilled += take;
        i += take;
        if (this.bodyFilled === this.body.length) {
          const body = this.body;
          this.body = null;
          this.endBulk(body, 0, body.length - 2, out);
        }
        continue;
      }
      // A header or inline line: everything up to the next LF.
      const lf = chunk.indexOf(LF, i);
      if (lf < 0) {
        if (this.pendingBytes + (n - i) > this.inlineBytesMax) return this.fail(this.tooBigMessage(this.pendingBytes ? this.pending[0][0] : chunk[i]), out);
        this.pending.push(chunk.subarray(i));
        this.pendingBytes += n - i;
        return out;
      }
      // The line is `buf[start, end)`: read in place (no view made per header line) unless it came in pieces.
      let buf = chunk;
      let start = i;
      let end = lf;
      if (this.pendingBytes > 0) {
        this.pending.push(chunk.subarray(i, lf));
        buf = Buffer.concat(this.pending, this.pendingBytes + (lf - i));
        start = 0;
        end = buf.length;
        this.pending = [];
        this.pendingBytes = 0;
      }
      i = lf + 1;
      if (end - start > this.inlineBytesMax) return this.fail(this.tooBigMessage(buf[start]), out);
      if (this.argsLeft > 0) {
        // Expecting `$<len>\r`. A body wholly inside this chunk is taken as a view.
        const len = this.bulkHeader(buf, start, end, out);
        if (len < 0) return out;
        if (n - i >= len + 2) {
          this.endBulk(chunk, i, i + len, out);
          i += len + 2;
        } else {
          this.body = Buffer.allocUnsafe(len + 2);
          this.bodyFilled = 0;
        }
      } else if (end > start && buf[start] === STAR) {
        this.multibulkHeader(buf, start, end, out);
      } else {
        this.inline(buf.subarray(start, end), out);
      }
    }
    return out;
  }

  private tooBigMessage(first: number): string {
    if (this.argsLeft > 0) return ProtocolErrors.tooBigBulkCount;
    return first === STAR ? ProtocolErrors.tooBigMbulkCount : ProtocolErrors.tooBigInline;
  }

  /** The line `b[start, end)`, which starts with `*`. */
  private multibulkHeader(b: Buffer, start: number, end: number, out: RespEvent[]): void {
    const count = b[end - 1] === CR ? parseRespInteger(b, start + 1, end - 1) : null;
    if (count === null || count > this.limits.arrayLengthMax) {
      this.fail(ProtocolErrors.invalidMultibulkLength, out);
      return;
    }
    if (count <= 0) return; // `*0`, `*-1`: an empty command, ignored as Redis does
    this.argsLeft = count;
    this.args = [];
    this.commandBytes = 0;
  }

  /** The header line `b[start, end)`. @returns the bulk length, or -1 after reporting an error. */
  private bulkHeader(b: Buffer, start: number, end: number, out: RespEvent[]): number {
    if (end === start || b[start] !== DOLLAR) {
      this.fail(ProtocolErrors.expectedDollar(end > start ? b[start] : LF), out);
      return -1;
    }
    const len = b[end - 1] === CR ? parseRespInteger(b, start + 1, end - 1) : null;
    if (len === null || len < 0 || len > this.limits.bulkBytesMax) {
      this.fail(ProtocolErrors.invalidBulkLength, out);
      return -1;
    }
    this.commandBytes += len;
    if (this.commandBytes > this.limits.commandBytesMax) {
      this.fail(ProtocolErrors.tooBigCommand(this.limits.commandBytesMax), out);
      return -1;
    }
    return len;
  }

  /** A bulk body is `buf[start, end)`, followed by its CRLF. */
  private endBulk(buf: Buffer, start: number, end: number, out: RespEvent[]): void {
    if (buf[end] !== CR || buf[end + 1] !== LF) {
      this.fail(ProtocolErrors.expectedCrlf, out);
      return;
    }
    this.args.push(buf.subarray(start, end));
    if (--this.argsLeft === 0) {
      out.push({ kind: 'command', args: this.args });
      this.args = [];
    }
  }

  private inline(line: Buffer, out: RespEvent[]): void {
    const end = line.length > 0 && line[line.length - 1] === CR ? line.length - 1 : line.length;
    const args = splitInlineArgs(line.subarray(0, end));
    if (args === null) this.fail(ProtocolErrors.unbalancedQuotes, out);
    else if (args.length > 0) out.push({ kind: 'command', args });
  }

  private fail(message: string, out: RespEvent[]): RespEvent[] {
    this.failed = true;
    this.pending = [];
    this.pendingBytes = 0;
    this.body = null;
    this.args = [];
    out.push({ kind: 'error', message });
    return out;
  }
}
