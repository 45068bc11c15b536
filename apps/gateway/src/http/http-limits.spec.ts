import { EventEmitter } from 'node:events';
import { SimScheduler } from '@cairn/world';
import { applyHttpLimits, type HttpLimits, type HttpLimitsServer } from './http-limits';

/**
 * The HTTP door's own deadlines on virtual time (issue 10, "Inject the world"): the request
 * deadline (408 and a bounded close) and the over-cap connection's close timeout run on the
 * injected clock, so these tests move time by hand and never race the wall clock.
 */
const LIMITS: HttpLimits = { connectionsMax: 1, headerBytesMax: 16 * 1024, frameDeadlineMs: 1_000, idleTimeoutMs: 60_000, closeTimeoutMs: 500, inflightPerConnectionMax: 4, connectionReplyBytesMax: 1 << 20 };

class FakeSocket extends EventEmitter {
  ended: Buffer | null = null;
  destroyed = false;
  end(data: Buffer, _cb?: () => void): void {
    this.ended = data;
  }
  destroy(): void {
    this.destroyed = true;
  }
  pause(): void {}
}

function door() {
  const sim = new SimScheduler(1);
  const clock = sim.incarnation('g1').clock;
  const server: HttpLimitsServer = Object.assign(new EventEmitter(), { headersTimeout: 0, requestTimeout: 0, keepAliveTimeout: 0 });
  applyHttpLimits(server, LIMITS, clock);
  const start = sim.nowMs;
  /** Runs every timer due up to `ms` after the start, and moves virtual time there. */
  const at = (ms: number) => {
    while (sim.nextAtMs() <= start + ms) sim.step();
    sim.nowMs = start + ms;
  };
  const connect = () => {
    const socket = new FakeSocket();
    server.emit('connection', socket);
    return socket;
  };
  return { server, at, connect };
}

describe('HTTP door limits on virtual time', () => {
  it('a request not complete within frameDeadlineMs of its first byte is answered 408 and destroyed closeTimeoutMs later', () => {
    const { at, connect } = door();
    const socket = connect();
    at(100);
    socket.emit('data', Buffer.from('GET / HTTP/1.1\r\n'));
    at(100 + LIMITS.frameDeadlineMs - 1);
    expect(socket.ended).toBeNull();
    at(100 + LIMITS.frameDeadlineMs);
    expect(socket.ended?.toString()).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\nConnection: close\r\n/);
    at(100 + LIMITS.frameDeadlineMs + LIMITS.closeTimeoutMs - 1);
    expect(socket.destroyed).toBe(false);
    at(100 + LIMITS.frameDeadlineMs + LIMITS.closeTimeoutMs);
    expect(socket.destroyed).toBe(true);
  });

  it('a request whose body ends in time clears the deadline; an idle keep-alive connection has none', () => {
    const { server, at, connect } = door();
    const socket = connect();
    at(LIMITS.frameDeadlineMs * 5); // idle before its first byte: only the idle timeout (Node's) applies
    socket.emit('data', Buffer.from('PUT /v1/kv/k HTTP/1.1\r\n\r\n'));
    const req = Object.assign(new EventEmitter(), { socket, url: '/v1/kv/k' });
    server.emit('request', req, new EventEmitter());
    req.emit('end');
    at(LIMITS.frameDeadlineMs * 20);
    expect(socket.ended).toBeNull();
    expect(socket.destroyed).toBe(false);
  });

  it('a connection over connectionsMax is destroyed closeTimeoutMs after it opened, unless it closed first', () => {
    const { at, connect } = door();
    const first = connect();
    const over = connect();
    at(LIMITS.closeTimeoutMs - 1);
    expect(over.destroyed).toBe(false);
    at(LIMITS.closeTimeoutMs);
    expect(over.destroyed).toBe(true);
    expect(first.destroyed).toBe(false);
    over.emit('close');
    const closedEarly = connect(); // over the cap again: `first` is still open
    closedEarly.emit('close');
    at(LIMITS.closeTimeoutMs * 3);
    expect(closedEarly.destroyed).toBe(false);
  });
});
