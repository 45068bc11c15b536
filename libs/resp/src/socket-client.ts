import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import type { RespValue } from './encode';
import { ReplyDecoder } from './reply-decoder';

/**
 * A bare RESP2 client for tests and tools: writes raw bytes (commands from `encodeCommand`, inline
 * lines, or garbage) and collects the decoded replies in order. No retries, no pooling.
 */
export class RespSocketClient {
  readonly replies: RespValue[] = [];
  /** Resolves when the server closes the connection. */
  readonly closed: Promise<unknown>;
  private waiter: { n: number; resolve: () => void } | null = null;

  private constructor(readonly socket: Socket) {
    const decoder = new ReplyDecoder();
    socket.on('data', (chunk: Buffer) => {
      this.replies.push(...decoder.push(chunk));
      if (this.waiter && this.replies.length >= this.waiter.n) this.waiter.resolve();
    });
    this.closed = once(socket, 'close');
  }

  static async connect(port: number, host = '127.0.0.1'): Promise<RespSocketClient> {
    const socket = connect(port, host);
    await once(socket, 'connect');
    return new RespSocketClient(socket);
  }

  /** Resolves once `n` replies in all have arrived. */
  waitFor(n: number): Promise<void> {
    return this.replies.length >= n ? Promise.resolve() : new Promise<void>((resolve) => (this.waiter = { n, resolve }));
  }

  /** Writes `bytes` and resolves with the `expected` replies that follow the ones already received. */
  async send(bytes: Buffer | string, expected: number): Promise<RespValue[]> {
    const start = this.replies.length;
    this.socket.write(bytes);
    await this.waitFor(start + expected);
    return this.replies.slice(start, start + expected);
  }
}
