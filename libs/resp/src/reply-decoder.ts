import type { RespValue } from './encode';
import { parseRespInteger } from './parser';

/** A reply stream that is not RESP2 (code `PROTOCOL_ERROR`). */
export class RespProtocolError extends Error {
  readonly code = 'PROTOCOL_ERROR';
}

const CR = 0x0d;
const LF = 0x0a;
const INCOMPLETE = Symbol('incomplete');

/**
 * Streaming decoder of RESP2 replies (the client side: tests, tools). Keeps the undecoded tail and
 * re-parses the one unfinished reply when more bytes arrive, so it suits replies of modest size.
 * Integers must be safe integers; bulk lengths are bounded by `bulkBytesMax` (default 512 MiB);
 * arrays nest at most `arrayDepthMax` deep (default 64; parsing recurses once per level, so an
 * unbounded depth would overflow the stack on `*1\r\n*1\r\n…`).
 */
export class ReplyDecoder {
  private buf: Buffer = Buffer.alloc(0);

  constructor(
    private readonly bulkBytesMax = 512 * 1024 * 1024,
    private readonly arrayDepthMax = 64,
  ) {}

  /** @returns the replies completed by `chunk`. @throws RespProtocolError on malformed input. */
  push(chunk: Buffer): RespValue[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: RespValue[] = [];
    let pos = 0;
    for (;;) {
      const r = this.parse(pos);
      if (r === INCOMPLETE) break;
      out.push(r.value);
      pos = r.next;
    }
    this.buf = this.buf.subarray(pos);
    return out;
  }

  private line(pos: number): { start: number; end: number; next: number } | typeof INCOMPLETE {
    const lf = this.buf.indexOf(LF, pos);
    if (lf < 0) return INCOMPLETE;
    if (lf === pos || this.buf[lf - 1] !== CR) throw new RespProtocolError('reply line does not end in CRLF');
    return { start: pos, end: lf - 1, next: lf + 1 };
  }

  private parse(pos: number, depth = 0): { value: RespValue; next: number } | typeof INCOMPLETE {
    if (pos >= this.buf.length) return INCOMPLETE;
    const l = this.line(pos);
    if (l === INCOMPLETE) return INCOMPLETE;
    const type = this.buf[pos];
    const text = () => this.buf.toString('utf8', l.start + 1, l.end);
    const int = () => {
      const v = parseRespInteger(this.buf, l.start + 1, l.end);
      if (v === null) throw new RespProtocolError(`bad integer ${JSON.stringify(text())}`);
      return v;
    };
    switch (type) {
      case 0x2b: // +
        return { value: { type: 'simple', value: text() }, next: l.next };
      case 0x2d: // -
        return { value: { type: 'error', value: text() }, next: l.next };
      case 0x3a: // :
        return { value: { type: 'integer', value: int() }, next: l.next };
      case 0x24: {
        // $
        const len = int();
        if (len === -1) return { value: { type: 'bulk', value: null }, next: l.next };
        if (len < 0 || len > this.bulkBytesMax) throw new RespProtocolError(`bad bulk length ${len}`);
        if (this.buf.length < l.next + len + 2) return INCOMPLETE;
        if (this.buf[l.next + len] !== CR || this.buf[l.next + len + 1] !== LF) throw new RespProtocolError('bulk string does not end in CRLF');
        return { value: { type: 'bulk', value: Buffer.from(this.buf.subarray(l.next, l.next + len)) }, next: l.next + len + 2 };
      }
      case 0x2a: {
        // *
        const count = int();
        if (count === -1) return { value: { type: 'array', value: null }, next: l.next };
        if (count < 0) throw new RespProtocolError(`bad array length ${count}`);
        if (depth >= this.arrayDepthMax) throw new RespProtocolError(`arrays nested deeper than arrayDepthMax ${this.arrayDepthMax}`);
        const items: RespValue[] = [];
        let next = l.next;
        for (let k = 0; k < count; k++) {
          const r = this.parse(next, depth + 1);
          if (r === INCOMPLETE) return INCOMPLETE;
          items.push(r.value);
          next = r.next;
        }
        return { value: { type: 'array', value: items }, next };
      }
      default:
        throw new RespProtocolError(`unknown reply type byte 0x${type.toString(16)}`);
    }
  }
}
