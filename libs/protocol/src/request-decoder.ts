import {
  assertFrameLimits,
  AUTH_VALUE_BYTES_MAX,
  IF_REVISION_OPERAND_BYTES,
  LEASE_OPERAND_BYTES,
  isOpcode,
  Opcode,
  opcodeName,
  PROTOCOL_VERSION,
  REQUEST_FLAGS_CONDITION,
  REQUEST_FLAGS_KNOWN,
  REQUEST_HEADER_BYTES,
  REQUEST_MAGIC,
  RequestFlags,
  Status,
  type FrameLimits,
  type Request,
} from './constants';
import { FrameAssembler } from './frame-assembler';

/**
 * What the request decoder produced (docs/protocol.md, "Bad headers"):
 * - `request`: a valid frame.
 * - `reject`: the header is well-framed but the request is not acceptable; its body (if any) is
 *   discarded by count, the connection stays usable. Answer `status` with `message`.
 * - `fatal`: bad magic or unsupported version, so frame boundaries are lost. Answer once
 *   (requestId 0), then close; the decoder ignores all further input.
 */
export type DecodeEvent =
  | { kind: 'request'; request: Request }
  | { kind: 'reject'; requestId: number; status: Status.BadRequest | Status.TooLarge; message: string }
  | { kind: 'fatal'; requestId: number; status: Status.BadRequest; message: string };

/** Opcodes that need a key of 1..keyBytesMax bytes; the others take none. */
const KEYED = new Set<number>([Opcode.Get, Opcode.Set, Opcode.Del, Opcode.Incr]);
/** Opcodes that may carry a value; the others take none. */
const VALUED = new Set<number>([Opcode.Set, Opcode.Ping, Opcode.Range, Opcode.Txn, Opcode.Incr, Opcode.Watch, Opcode.WatchCancel, Opcode.Auth, Opcode.LeaseGrant, Opcode.LeaseRevoke, Opcode.LeaseKeepAlive, Opcode.LeaseTtl, Opcode.LeaseList]);
/** Opcodes whose key may be empty (RANGE: from the first key / the empty prefix). */
const KEY_OPTIONAL = new Set<number>([Opcode.Range, Opcode.Watch, Opcode.Auth]);

/**
 * Streaming decoder of client request frames for the gateway: `push(chunk)` any slicing of the
 * stream (one frame over many chunks, many frames in one chunk) and act on the returned events in
 * order. Holds at most a partial header plus one partial body (<= keyBytesMax + valueBytesMax + 8);
 * a body is allocated only after its header passed the limits, and a body that lies whole in a
 * chunk is a view of it. Decoded `key`/`value` may be views of the pushed chunk.
 * @throws RangeError from the constructor when the limits exceed the hard ceilings.
 */
export class RequestDecoder extends FrameAssembler {
  private readonly limits: FrameLimits;
  private events: DecodeEvent[] = [];
  private opcode = 0;
  private flags = 0;
  private requestId = 0;
  private keyLength = 0;

  constructor(limits: FrameLimits) {
    super(REQUEST_HEADER_BYTES);
    assertFrameLimits(limits);
    this.limits = { keyBytesMax: limits.keyBytesMax, valueBytesMax: limits.valueBytesMax };
  }

  /** Feeds the next chunk of the stream; returns the events it completed, in stream order. */
  push(chunk: Buffer): DecodeEvent[] {
    if (this.stopped()) return [];
    this.events = [];
    this.feed(chunk);
    return this.events;
  }

  protected onHeaderPrefix(buf: Buffer, filled: number): void {
    this.checkFraming(buf, 0, filled);
  }

  protected onHeader(buf: Buffer, off: number): void {
    if (!this.checkFraming(buf, off, REQUEST_HEADER_BYTES)) return;
    const opcode = buf[off + 2];
    const flags = buf[off + 3];
    const requestId = buf.readUInt32BE(off + 4);
    const keyLength = buf.readUInt32BE(off + 8);
    const valueLength = buf.readUInt32BE(off + 12);
    const bodyBytes = keyLength + valueLength;
    const bad = this.validate(opcode, flags, keyLength, valueLength);
    if (bad) {
      this.events.push({ kind: 'reject', requestId, status: bad.status, message: bad.message });
      this.skipBody(bodyBytes);
      return;
    }
    this.opcode = opcode;
    this.flags = flags;
    this.requestId = requestId;
    this.keyLength = keyLength;
    this.expectBody(bodyBytes);
  }

  protected onBody(body: Buffer): void {
    const request: Request = {
      opcode: this.opcode,
      flags: this.flags,
      requestId: this.requestId,
      key: body.subarray(0, this.keyLength),
      value: body.subarray(this.keyLength),
    };
    this.events.push({ kind: 'request', request });
  }

  /** False (after emitting `fatal` and stopping) when the magic or version byte is wrong. */
  private checkFraming(buf: Buffer, off: number, filled: number): boolean {
    let message = '';
    if (filled >= 1 && buf[off] !== REQUEST_MAGIC) message = `bad magic 0x${hex(buf[off])}, expected 0xca: not a Cairn v1 request stream`;
    else if (filled >= 2 && buf[off + 1] !== PROTOCOL_VERSION) message = `unsupported protocol version ${buf[off + 1]}, this gateway speaks ${PROTOCOL_VERSION}`;
    if (!message) return true;
    this.events.push({ kind: 'fatal', requestId: 0, status: Status.BadRequest, message });
    this.stop();
    return false;
  }

  /** Why a well-framed header is not acceptable, in a fixed order of checks; null when it is. */
  private validate(opcode: number, flags: number, keyLength: number, valueLength: number): { status: Status.BadRequest | Status.TooLarge; message: string } | null {
    if (!isOpcode(opcode)) return { status: Status.BadRequest, message: `unknown opcode 0x${hex(opcode)}` };
    const name = opcodeName(opcode);
    if (flags & ~REQUEST_FLAGS_KNOWN) return { status: Status.BadRequest, message: `unknown flag bits 0x${hex(flags & ~REQUEST_FLAGS_KNOWN)} on ${name}` };
    const condition = flags & REQUEST_FLAGS_CONDITION;
    if (condition && opcode !== Opcode.Set) return { status: Status.BadRequest, message: `condition flag bits 0x${hex(condition)} (IF_ABSENT/IF_PRESENT) apply to SET only, got ${name}` };
    if (condition === REQUEST_FLAGS_CONDITION) return { status: Status.BadRequest, message: 'flags IF_ABSENT and IF_PRESENT exclude each other' };
    if (flags & RequestFlags.Meta && opcode !== Opcode.Get) return { status: Status.BadRequest, message: `flag bit 0x08 (META) applies to GET only, got ${name}` };
    const cas = (flags & RequestFlags.IfRevision) !== 0;
    if (cas && opcode !== Opcode.Set && opcode !== Opcode.Del) return { status: Status.BadRequest, message: `flag bit 0x10 (IF_REVISION) applies to SET and DEL only, got ${name}` };
    if (cas && condition) return { status: Status.BadRequest, message: 'flag IF_REVISION excludes IF_ABSENT and IF_PRESENT' };
    if (cas && (opcode === Opcode.Del ? valueLength !== IF_REVISION_OPERAND_BYTES : valueLength < IF_REVISION_OPERAND_BYTES)) return { status: Status.BadRequest, message: `${name} with IF_REVISION carries the 8-byte revision operand first in its value, got valueLength ${valueLength}` };
    const lease = (flags & RequestFlags.Lease) !== 0;
    if (lease && opcode !== Opcode.Set) return { status: Status.BadRequest, message: `flag bit 0x20 (LEASE) applies to SET only, got ${name}` };
    // The IF_REVISION and LEASE operands come on top of the value proper.
    const operandBytes = (cas ? IF_REVISION_OPERAND_BYTES : 0) + (lease ? LEASE_OPERAND_BYTES : 0);
    if (lease && valueLength < operandBytes) return { status: Status.BadRequest, message: `SET with LEASE carries the 16-byte lease operand (after any IF_REVISION operand) first in its value, got valueLength ${valueLength}` };
    const keyed = KEYED.has(opcode);
    if (!keyed && !KEY_OPTIONAL.has(opcode) && keyLength > 0) return { status: Status.BadRequest, message: `${name} takes no key, got keyLength ${keyLength}` };
    if (!VALUED.has(opcode) && !cas && valueLength > 0) return { status: Status.BadRequest, message: `${name} takes no value, got valueLength ${valueLength}` };
    if (keyed && keyLength === 0) return { status: Status.BadRequest, message: `${name} needs a key of 1..${this.limits.keyBytesMax} bytes, got keyLength 0` };
    if (keyLength > this.limits.keyBytesMax) return { status: Status.TooLarge, message: `key of ${keyLength} bytes exceeds keyBytesMax ${this.limits.keyBytesMax}` };
    if (opcode === Opcode.Auth && valueLength === 0) return { status: Status.BadRequest, message: 'AUTH needs a password or a bearer token as its value, got valueLength 0' };
    // AUTH's value has its own bound, whatever valueBytesMax is.
    if (opcode === Opcode.Auth && valueLength > AUTH_VALUE_BYTES_MAX) return { status: Status.TooLarge, message: `AUTH value of ${valueLength} bytes exceeds ${AUTH_VALUE_BYTES_MAX}` };
    if (opcode !== Opcode.Auth && valueLength - operandBytes > this.limits.valueBytesMax) return { status: Status.TooLarge, message: `value of ${valueLength} bytes exceeds valueBytesMax ${this.limits.valueBytesMax}` };
    return null;
  }
}

function hex(b: number): string {
  return b.toString(16).padStart(2, '0');
}
