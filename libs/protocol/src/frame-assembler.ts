/**
 * Splits a TCP byte stream into `header | body` frames without concatenating the stream: a
 * partial header is copied into a fixed scratch buffer; a body that lies whole inside one chunk
 * is handed out as a view of that chunk; a body spread over chunks is copied into one buffer
 * allocated (at its exact size) only after the subclass accepted the header. A rejected frame's
 * body is skipped by count, never buffered.
 */
export abstract class FrameAssembler {
  private readonly header: Buffer;
  private headerFill = 0;
  private mode: 'header' | 'body' | 'skip' | 'stopped' = 'header';
  /** body: the body length; skip: the bytes still to discard. */
  private bodyBytes = 0;
  private body: Buffer | null = null;
  private bodyFill = 0;

  protected constructor(private readonly headerBytes: number) {
    this.header = Buffer.alloc(headerBytes);
  }

  /** Bytes held between calls: a partial header plus a partial body. */
  bufferedBytes(): number {
    return this.headerFill + this.bodyFill;
  }

  /**
   * True while a frame has started but not finished: part of a header, a body being filled, or a
   * rejected body still being skipped (the gateway's frame deadline runs only then).
   */
  midFrame(): boolean {
    return this.headerFill > 0 || this.bodyFill > 0 || this.mode === 'skip' || (this.mode === 'body' && this.bodyBytes > 0);
  }

  /** True once the subclass stopped the stream (framing lost); further input is ignored. */
  stopped(): boolean {
    return this.mode === 'stopped';
  }

  /**
   * Called with a complete header at `buf[offset..offset+headerBytes)`; must call exactly one of
   * expectBody / skipBody / stop (or throw). The bytes are only valid during the call.
   */
  protected abstract onHeader(buf: Buffer, offset: number): void;
  /** Called with the complete body of the frame whose header was accepted by expectBody. */
  protected abstract onBody(body: Buffer): void;
  /**
   * Called while a header arrives in pieces, with the `filled` bytes so far: lets the subclass
   * stop at a bad first byte instead of waiting for a header that may never complete.
   */
  protected abstract onHeaderPrefix(buf: Buffer, filled: number): void;

  protected expectBody(bodyBytes: number): void {
    this.mode = 'body';
    this.bodyBytes = bodyBytes;
  }

  protected skipBody(bodyBytes: number): void {
    this.mode = 'skip';
    this.bodyBytes = bodyBytes;
  }

  protected stop(): void {
    this.mode = 'stopped';
    this.headerFill = 0;
    this.body = null;
    this.bodyFill = 0;
  }

  protected feed(chunk: Buffer): void {
    let pos = 0;
    while (this.mode !== 'stopped') {
      const left = chunk.length - pos;
      if (this.mode === 'header') {
        if (this.headerFill === 0 && left >= this.headerBytes) {
          pos += this.headerBytes;
          this.onHeader(chunk, pos - this.headerBytes);
          continue;
        }
        if (left === 0) return;
        const n = Math.min(this.headerBytes - this.headerFill, left);
        chunk.copy(this.header, this.headerFill, pos, pos + n);
        this.headerFill += n;
        pos += n;
        if (this.headerFill < this.headerBytes) {
          this.onHeaderPrefix(this.header, this.headerFill);
          return; // the chunk is used up
        }
        this.headerFill = 0;
        this.onHeader(this.header, 0);
      } else if (this.mode === 'body') {
        if (this.bodyFill === 0 && left >= this.bodyBytes) {
          const body = chunk.subarray(pos, pos + this.bodyBytes);
          pos += this.bodyBytes;
          this.mode = 'header';
          this.onBody(body);
          continue;
        }
        if (left === 0) return;
        const body = (this.body ??= Buffer.allocUnsafe(this.bodyBytes));
        const n = Math.min(this.bodyBytes - this.bodyFill, left);
        chunk.copy(body, this.bodyFill, pos, pos + n);
        this.bodyFill += n;
        pos += n;
        if (this.bodyFill < this.bodyBytes) return;
        this.body = null;
        this.bodyFill = 0;
        this.mode = 'header';
        this.onBody(body);
      } else {
        const n = Math.min(this.bodyBytes, left);
        pos += n;
        this.bodyBytes -= n;
        if (this.bodyBytes > 0) return;
        this.mode = 'header';
      }
    }
  }
}
