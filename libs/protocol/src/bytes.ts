import { ProtocolError, isStatus, type Status } from './constants';

const TWO_POW_32 = 0x1_0000_0000;
/** Largest byte length a `string` field holds (u16 length prefix). */
export const STRING_BYTES_MAX = 0xffff;

/** Writes `value` (a non-negative safe integer) as u64 big-endian. @throws RangeError otherwise. */
export function writeU64(buf: Buffer, value: number, offset: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`u64 field must be a non-negative integer < 2^53, got ${value}`);
  buf.writeUInt32BE(Math.floor(value / TWO_POW_32), offset);
  buf.writeUInt32BE(value >>> 0, offset + 4);
}

/** Reads a u64 big-endian as a number. @throws ProtocolError when it is >= 2^53 (not exact as a number). */
export function readU64(buf: Buffer, offset: number): number {
  const hi = buf.readUInt32BE(offset);
  if (hi >= 0x20_0000) throw new ProtocolError(`u64 field at byte ${offset} is >= 2^53`);
  return hi * TWO_POW_32 + buf.readUInt32BE(offset + 4);
}

/** A Buffer view of `b` without copying. */
export function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** UTF-8 byte length of a `string` field including its u16 prefix. */
export function stringFieldBytes(s: string): number {
  return 2 + Buffer.byteLength(s, 'utf8');
}

/** `bytes` field length including its u32 prefix. */
export function bytesFieldBytes(b: Uint8Array): number {
  return 4 + b.length;
}

/**
 * Cuts `s` so its UTF-8 form fits a `string` field (<= 65535 bytes), at a character boundary.
 * For free-text fields (error messages) where losing the tail beats failing the reply.
 */
export function clampString(s: string): string {
  if (s.length * 3 <= STRING_BYTES_MAX || Buffer.byteLength(s, 'utf8') <= STRING_BYTES_MAX) return s;
  const b = Buffer.from(s, 'utf8');
  let end = STRING_BYTES_MAX;
  while (end > 0 && (b[end] & 0xc0) === 0x80) end--; // b[end] is a continuation byte: back off to a char start
  return b.toString('utf8', 0, end);
}

/**
 * Bounds-checked big-endian writer into one buffer allocated up front at the exact encoded size
 * (encoders compute the size first). `finish()` asserts the size was right.
 */
export class ByteWriter {
  readonly buf: Buffer;
  private pos = 0;

  constructor(sizeBytes: number) {
    this.buf = Buffer.allocUnsafe(sizeBytes);
  }

  private room(n: number): number {
    const at = this.pos;
    if (at + n > this.buf.length) throw new RangeError(`EncodedSizeExceeded: writing ${n} bytes at ${at} overruns the ${this.buf.length}-byte buffer`);
    this.pos = at + n;
    return at;
  }

  u8(v: number): this {
    this.buf.writeUInt8(v, this.room(1));
    return this;
  }

  u16(v: number): this {
    this.buf.writeUInt16BE(v, this.room(2));
    return this;
  }

  u32(v: number): this {
    this.buf.writeUInt32BE(v, this.room(4));
    return this;
  }

  /** u64 from a non-negative safe integer. @throws RangeError otherwise. */
  u64(v: number): this {
    writeU64(this.buf, v, this.room(8));
    return this;
  }

  bool(v: boolean): this {
    return this.u8(v ? 1 : 0);
  }

  /** The bytes as they are (the length travels elsewhere). */
  raw(b: Uint8Array): this {
    this.buf.set(b, this.room(b.length));
    return this;
  }

  /** `u32 length | bytes`. */
  bytes(b: Uint8Array): this {
    this.u32(b.length);
    this.buf.set(b, this.room(b.length));
    return this;
  }

  /** `u16 length | UTF-8 bytes`. @throws RangeError when the UTF-8 form exceeds 65535 bytes (use clampString for free text). */
  string(s: string): this {
    const n = Buffer.byteLength(s, 'utf8');
    if (n > STRING_BYTES_MAX) throw new RangeError(`string field of ${n} UTF-8 bytes exceeds ${STRING_BYTES_MAX}`);
    this.u16(n);
    this.buf.write(s, this.room(n), n, 'utf8');
    return this;
  }

  /** `u32 count | element*`: `write` writes each item to this writer (ByteReader.list reads it back). */
  list<T>(items: readonly T[], write: (w: ByteWriter, item: T) => unknown): this {
    this.u32(items.length);
    for (const item of items) write(this, item);
    return this;
  }

  /** The encoded bytes. @throws Error `EncodedSizeMismatch` when fewer bytes were written than allocated. */
  finish(): Buffer {
    if (this.pos !== this.buf.length) throw new Error(`EncodedSizeMismatch: wrote ${this.pos} of ${this.buf.length} bytes`);
    return this.buf;
  }
}

/**
 * Bounds-checked big-endian reader over one message. `bytes()` returns views (no copy).
 * Every read past the end throws ProtocolError (truncated input); `end()` throws on trailing bytes.
 */
export class ByteReader {
  private readonly buf: Buffer;
  private pos = 0;

  constructor(b: Uint8Array) {
    this.buf = asBuffer(b);
  }

  /** Bytes not read yet. */
  remaining(): number {
    return this.buf.length - this.pos;
  }

  private take(n: number, what: string): number {
    const at = this.pos;
    if (n > this.buf.length - at) throw new ProtocolError(`truncated message: ${what} needs ${n} bytes at offset ${at}, ${this.buf.length - at} left`);
    this.pos = at + n;
    return at;
  }

  u8(): number {
    return this.buf[this.take(1, 'u8')];
  }

  u16(): number {
    return this.buf.readUInt16BE(this.take(2, 'u16'));
  }

  u32(): number {
    return this.buf.readUInt32BE(this.take(4, 'u32'));
  }

  /** @throws ProtocolError when the value is >= 2^53. */
  u64(): number {
    return readU64(this.buf, this.take(8, 'u64'));
  }

  /** A `u8 status` field (docs/protocol.md "Status codes"). @throws ProtocolError on a byte that is no Status. */
  status(): Status {
    const s = this.u8();
    if (!isStatus(s)) throw new ProtocolError(`unknown status 0x${s.toString(16)}`);
    return s;
  }

  /** @throws ProtocolError on a byte other than 0 or 1. */
  bool(): boolean {
    const v = this.u8();
    if (v > 1) throw new ProtocolError(`boolean field is ${v}, expected 0 or 1`);
    return v === 1;
  }

  /** The next `n` bytes, as a view into the input. */
  raw(n: number): Buffer {
    const at = this.take(n, 'bytes field');
    return this.buf.subarray(at, at + n);
  }

  /** `u32 length | bytes`, as a view into the input. */
  bytes(): Buffer {
    const n = this.u32();
    const at = this.take(n, 'bytes field');
    return this.buf.subarray(at, at + n);
  }

  /** `u16 length | UTF-8 bytes`. */
  string(): string {
    const n = this.u16();
    const at = this.take(n, 'string field');
    return this.buf.toString('utf8', at, at + n);
  }

  /**
   * A u32 element count, checked against the bytes left so a corrupt count cannot make the
   * decoder allocate a huge array. @throws ProtocolError when `count * elementBytesMin` exceeds them.
   */
  count(elementBytesMin: number): number {
    const n = this.u32();
    if (n * elementBytesMin > this.remaining()) throw new ProtocolError(`truncated message: ${n} elements of >= ${elementBytesMin} bytes declared, ${this.remaining()} bytes left`);
    return n;
  }

  /**
   * `u32 count | element*`: the count is checked as by `count(elementBytesMin)`, then `read` reads
   * each element from this reader. @throws ProtocolError as `count` and `read` do.
   */
  list<T>(elementBytesMin: number, read: (r: ByteReader) => T): T[] {
    const n = this.count(elementBytesMin);
    const out: T[] = new Array(n);
    for (let i = 0; i < n; i++) out[i] = read(this);
    return out;
  }

  /** @throws ProtocolError when bytes are left over. */
  end(): void {
    if (this.pos !== this.buf.length) throw new ProtocolError(`message has ${this.buf.length - this.pos} trailing bytes`);
  }

  /**
   * Reads an internal message's header, `u8 type | u8 version` (docs/protocol.md "Internal
   * messages"). `name` names the message in the errors.
   * @throws ProtocolError when the type is not `type` or the version not `version`.
   */
  header(type: number, version: number, name: string): void {
    const got = this.u8();
    if (got !== type) throw new ProtocolError(`expected internal message type ${type} (${name}), got ${got}`);
    const v = this.u8();
    if (v !== version) throw new ProtocolError(`unsupported ${name} version ${v}, expected ${version}`);
  }
}
