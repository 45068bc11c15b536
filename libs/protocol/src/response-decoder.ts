import { PROTOCOL_VERSION, ProtocolError, RESPONSE_HEADER_BYTES, RESPONSE_MAGIC, VALUE_BYTES_CEILING, type Response } from './constants';
import { FrameAssembler } from './frame-assembler';
import { decodeResponseHeader } from './frames';

export interface ResponseDecoderOptions {
  /** Largest payload accepted, bytes; default 16 MiB (the hard ceiling of valueBytesMax). */
  payloadBytesMax?: number;
}

/**
 * Streaming decoder of response frames for the client: push any slicing of the stream, get the
 * completed responses in stream order. `payload` may be a view of a pushed chunk.
 *
 * Any violation (bad magic, unsupported version, revision >= 2^53, payload over
 * `payloadBytesMax`) throws ProtocolError (with `requestId` when the header was readable) and
 * stops the decoder: framing can no longer be trusted, so the connection must be closed. Later
 * pushes throw again.
 */
export class ResponseDecoder extends FrameAssembler {
  readonly payloadBytesMax: number;
  private sink: (r: Response) => void = () => undefined;
  private failure: ProtocolError | null = null;
  private status = 0;
  private flags = 0;
  private requestId = 0;
  private revision = 0;

  constructor(opts: ResponseDecoderOptions = {}) {
    super(RESPONSE_HEADER_BYTES);
    this.payloadBytesMax = opts.payloadBytesMax ?? VALUE_BYTES_CEILING;
    if (!Number.isInteger(this.payloadBytesMax) || this.payloadBytesMax < 0 || this.payloadBytesMax > 0xffff_ffff) {
      throw new RangeError(`payloadBytesMax must be a u32, got ${this.payloadBytesMax}`);
    }
  }

  /** Feeds the next chunk; returns the responses it completed. @throws ProtocolError (see class doc). */
  push(chunk: Buffer): Response[] {
    const out: Response[] = [];
    this.pushTo(chunk, (r) => out.push(r));
    return out;
  }

  /**
   * Like push, but hands each response to `sink` as soon as it is decoded, so responses that
   * precede a violation in the same chunk are delivered before the ProtocolError is thrown.
   */
  pushTo(chunk: Buffer, sink: (r: Response) => void): void {
    if (this.failure) throw this.failure;
    this.sink = sink;
    try {
      this.feed(chunk);
    } finally {
      this.sink = () => undefined;
    }
  }

  protected onHeaderPrefix(buf: Buffer, filled: number): void {
    if (buf[0] !== RESPONSE_MAGIC) this.fail(new ProtocolError(`bad response magic 0x${buf[0].toString(16)}, expected 0xcb`));
    if (filled >= 2 && buf[1] !== PROTOCOL_VERSION) this.fail(new ProtocolError(`unsupported protocol version ${buf[1]}, expected ${PROTOCOL_VERSION}`));
  }

  protected onHeader(buf: Buffer, off: number): void {
    let h;
    try {
      h = decodeResponseHeader(buf, off);
    } catch (e) {
      this.fail(e as ProtocolError);
    }
    if (h.payloadLength > this.payloadBytesMax) {
      this.fail(new ProtocolError(`response ${h.requestId} payload of ${h.payloadLength} bytes exceeds payloadBytesMax ${this.payloadBytesMax}`, h.requestId));
    }
    this.status = h.status;
    this.flags = h.flags;
    this.requestId = h.requestId;
    this.revision = h.revision;
    this.expectBody(h.payloadLength);
  }

  protected onBody(payload: Buffer): void {
    this.sink({ status: this.status, flags: this.flags, requestId: this.requestId, revision: this.revision, payload });
  }

  private fail(e: ProtocolError): never {
    this.failure = e;
    this.stop();
    throw e;
  }
}
