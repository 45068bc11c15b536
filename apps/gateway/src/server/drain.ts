import type { Socket } from 'node:net';

/**
 * Graceful close of one client connection, shared by the TLV and RESP doors: stop reading, wait
 * (at most `timeoutMs`) until `pending()` answers are written — the connection calls the
 * functions in `waiters` when its last answer went out or the socket closed — then end the socket.
 */
export async function drainConnection(socket: Socket, pending: () => number, closed: () => boolean, waiters: (() => void)[], timeoutMs: number): Promise<void> {
  socket.pause();
  if (pending() > 0 && !closed()) {
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, timeoutMs);
      waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }
  socket.end();
}
