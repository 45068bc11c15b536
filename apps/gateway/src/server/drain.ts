import { realClock, type Clock } from '@cairn/world';
import type { ConnectionFlow, FlowSocket } from './flow';

/**
 * Graceful close of one client connection, shared by the TLV and RESP doors: stop reading (the
 * caller set its draining flag and the socket is paused), wait (at most `timeoutMs`) until no
 * request is `awaiting()` the cluster — the connection calls the functions in `waiters` when its
 * last answer was written or the socket closed — then close by the flow's rule (FIN once the
 * replies are flushed; destroyed after closeTimeoutMs at the latest). Resolves once the socket closed.
 * `clock` runs the timeout (the connection's: real timers, or the simulator's virtual time).
 */
export async function drainConnection(socket: FlowSocket, flow: ConnectionFlow, awaiting: () => number, waiters: (() => void)[], timeoutMs: number, clock: Clock = realClock): Promise<void> {
  if (flow.closed()) return;
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  flow.setReading(false, false);
  if (awaiting() > 0) {
    await new Promise<void>((resolve) => {
      const t = clock.setTimeout(resolve, timeoutMs);
      waiters.push(() => {
        clock.clearTimer(t);
        resolve();
      });
    });
  }
  // Replies of requests still in flight after the timeout are not written (the socket closes).
  flow.closeAfterFlush();
  await closed;
}
