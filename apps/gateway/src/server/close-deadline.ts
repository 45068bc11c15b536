import { realClock, type Clock } from '@cairn/world';

/**
 * The bound of a defined close (every door: docs/protocol.md, docs/http.md "Limits"): `socket` is
 * destroyed `closeTimeoutMs` after this call on `clock` unless it closed first, so a client that
 * never reads its last answer cannot hold the connection.
 */
export function destroyWithin(socket: { destroy(): void; once(event: 'close', listener: () => void): unknown }, closeTimeoutMs: number, clock: Clock = realClock): void {
  const t = clock.setTimeout(() => socket.destroy(), closeTimeoutMs);
  socket.once('close', () => clock.clearTimer(t));
}
