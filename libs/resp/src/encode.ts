/**
 * RESP2 reply encoders (https://redis.io/docs/latest/develop/reference/protocol-spec/). Each
 * returns the complete wire bytes of one reply; an array's elements are already-encoded replies.
 */

const CRLF = '\r\n';

/** `+<s>\r\n`. @throws Error `SimpleStringHasNoCrLf` when `s` contains CR or LF (it would break framing). */
export function encodeSimpleString(s: string): Buffer {
  if (/[\r\n]/.test(s)) throw new Error('SimpleStringHasNoCrLf: a simple string must not contain CR or LF');
  return Buffer.from(`+${s}${CRLF}`);
}

/**
 * `-<message>\r\n`. `message` starts with the error code (`ERR ...`, `TRYAGAIN ...`); CR and LF in
 * it become spaces, as Redis does for error replies (addReplyErrorLength).
 */
export function encodeError(message: string): Buffer {
  return Buffer.from(`-${message.replace(/[\r\n]/g, ' ')}${CRLF}`);
}

/** `:<n>\r\n`. @throws Error `IntegerIsSafe` when `n` is not a safe integer. */
export function encodeInteger(n: number): Buffer {
  if (!Number.isSafeInteger(n)) throw new Error(`IntegerIsSafe: ${n} is not a safe integer`);
  return Buffer.from(`:${n}${CRLF}`);
}

/** `$<len>\r\n<bytes>\r\n`; null is the null bulk string `$-1\r\n` (GET of a missing key). */
export function encodeBulk(value: Uint8Array | string | null): Buffer {
  if (value === null) return NULL_BULK;
  const body = typeof value === 'string' ? Buffer.from(value) : value;
  const head = `$${body.length}${CRLF}`;
  const out = Buffer.allocUnsafe(Buffer.byteLength(head) + body.length + 2);
  let at = out.write(head, 0, 'latin1');
  out.set(body, at);
  at += body.length;
  out[at] = 0x0d;
  out[at + 1] = 0x0a;
  return out;
}

/** `*<n>\r\n` then the encoded elements; null is the null array `*-1\r\n`. */
export function encodeArray(items: readonly Uint8Array[] | null): Buffer {
  if (items === null) return NULL_ARRAY;
  return Buffer.concat([Buffer.from(`*${items.length}${CRLF}`), ...items]);
}

/**
 * An array of bulk strings (null elements are null bulks), written into one buffer: an MGET of
 * 16 values of 1 MiB costs one 16 MiB allocation, not one per value plus the concatenation.
 */
export function encodeBulkArray(items: readonly (Uint8Array | string | null)[]): Buffer {
  const bodies = items.map((v) => (typeof v === 'string' ? Buffer.from(v) : v));
  const head = `*${bodies.length}${CRLF}`;
  let bytes = head.length;
  for (const b of bodies) bytes += b === null ? NULL_BULK.length : `$${b.length}${CRLF}`.length + b.length + 2;
  const out = Buffer.allocUnsafe(bytes);
  let at = out.write(head, 0, 'latin1');
  for (const b of bodies) {
    if (b === null) {
      at += NULL_BULK.copy(out, at);
      continue;
    }
    at += out.write(`$${b.length}${CRLF}`, at, 'latin1');
    out.set(b, at);
    at += b.length;
    out[at++] = 0x0d;
    out[at++] = 0x0a;
  }
  if (at !== bytes) throw new Error(`BulkArrayLength: wrote ${at} of ${bytes} bytes`);
  return out;
}

/** A command as clients send it: an array of bulk strings. */
export function encodeCommand(args: readonly (Uint8Array | string)[]): Buffer {
  return encodeBulkArray(args);
}

export const OK = Buffer.from('+OK\r\n');
export const PONG = Buffer.from('+PONG\r\n');
export const NULL_BULK = Buffer.from('$-1\r\n');
export const NULL_ARRAY = Buffer.from('*-1\r\n');
export const EMPTY_ARRAY = Buffer.from('*0\r\n');

/** A decoded RESP2 reply (see ReplyDecoder), or one to encode with `encodeValue`. */
export type RespValue =
  | { type: 'simple'; value: string }
  | { type: 'error'; value: string }
  | { type: 'integer'; value: number }
  | { type: 'bulk'; value: Buffer | null }
  | { type: 'array'; value: RespValue[] | null };

export function encodeValue(v: RespValue): Buffer {
  switch (v.type) {
    case 'simple':
      return encodeSimpleString(v.value);
    case 'error':
      return encodeError(v.value);
    case 'integer':
      return encodeInteger(v.value);
    case 'bulk':
      return encodeBulk(v.value);
    case 'array':
      return encodeArray(v.value === null ? null : v.value.map(encodeValue));
  }
}
