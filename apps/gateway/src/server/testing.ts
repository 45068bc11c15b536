import type { Socket } from 'node:net';
import { EventEmitter } from 'node:events';
import { ConnectionFlow, type ByteBudget, type FlowLimits, type FlowSocket } from './flow';

/** FlowLimits for unit tests: generous unless a test narrows one (deadlines made short there, never raced against). */
export function testFlowLimits(overrides: Partial<FlowLimits> = {}): FlowLimits {
  return { connectionReplyBytesMax: 1024 * 1024, connectionRequestBytesMax: 1024 * 1024, frameDeadlineMs: 60_000, closeTimeoutMs: 60_000, idleTimeoutMs: 60_000, ...overrides };
}

/** Resolves once `cond()` holds, re-checking after each I/O turn (an event wait, not a sleep). */
export async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setImmediate(r));
}

/**
 * Writes `chunk` to `socket` as fast as it drains until the server closes it; resolves with the
 * socket's error (EPIPE / ECONNRESET: the reset a client that keeps writing gets) or null.
 */
export function floodUntilClosed(socket: Socket, chunk: Buffer): Promise<NodeJS.ErrnoException | null> {
  let error: NodeJS.ErrnoException | null = null;
  socket.on('error', (e) => (error = e));
  const closed = new Promise<NodeJS.ErrnoException | null>((resolve) => socket.once('close', () => resolve(error)));
  const flood = () => {
    while (!socket.destroyed && socket.write(chunk));
  };
  socket.on('drain', flood);
  flood();
  return closed;
}

/**
 * A ConnectionFlow on a socket that is never written to (enough for its bookkeeping: request
 * bytes, budget, closed state); `socket.emit('close')` closes it.
 */
export function idleFlow(budget: ByteBudget, limits: Partial<FlowLimits> = {}): { socket: EventEmitter; flow: ConnectionFlow } {
  const noop = () => undefined;
  const socket = Object.assign(new EventEmitter(), { destroyed: false, pause: noop, resume: noop, cork: noop, uncork: noop, write: () => true, end: noop, destroy: noop, setTimeout: noop, setNoDelay: noop }) satisfies FlowSocket;
  const flow = new ConnectionFlow(socket, testFlowLimits(limits), budget, { data: noop, peerEnded: noop, update: noop, frameDeadline: noop, awaitingCluster: () => 0, closed: noop });
  return { socket, flow };
}

/**
 * Opens a first connection with `connect`, waits until `server` counts it, then opens a second
 * and waits until that one is closed: the door's answer to a connection over connectionsMax 1.
 */
export async function connectPastMax<C extends { closed: Promise<unknown> }>(server: { connectionCount(): number }, connect: () => Promise<C>): Promise<{ first: C; second: C }> {
  const first = await connect();
  await until(() => server.connectionCount() === 1);
  const second = await connect();
  await second.closed;
  return { first, second };
}

/**
 * The door servers and client sockets a spec's tests open, for closing after each test
 * (`afterEach(() => opened.closeAll())`): sockets are destroyed first, so no request left in
 * flight holds a server's drain, then the servers closed. A test need not close them itself, and a
 * failed expectation cannot leave one open (jest would never exit).
 */
export class OpenedDoors {
  private readonly servers: { close(): Promise<void> }[] = [];
  private readonly sockets: Socket[] = [];

  server<T extends { close(): Promise<void> }>(server: T): T {
    this.servers.push(server);
    return server;
  }

  socket(socket: Socket): Socket {
    this.sockets.push(socket);
    return socket;
  }

  async closeAll(): Promise<void> {
    for (const socket of this.sockets.splice(0)) socket.destroy();
    await Promise.all(this.servers.splice(0).map((server) => server.close()));
  }
}
