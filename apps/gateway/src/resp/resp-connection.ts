import { RespParser, encodeError, type RespEvent, type RespParserLimits } from '@cairn/resp';
import type { Socket } from 'node:net';
import { KvSession, type KvPaths } from '../paths/kv-session';
import type { RespClient, RespCommands } from './commands';
import { OrderGate } from './order-gate';
import { drainConnection } from '../server/drain';

export interface RespConnectionDeps {
  paths: KvPaths;
  parserLimits: RespParserLimits;
  commands: RespCommands;
  /** Commands answered-or-pending but not yet written, per connection; beyond it the socket is paused. */
  inflightMax: number;
  idleTimeoutMs: number;
  onClose: (c: RespConnection) => void;
}

const EMPTY = Buffer.alloc(0);

/** One reply slot in command order: `reply` is null while the cluster has not answered. */
interface Slot {
  reply: Buffer | null;
  /** Close the connection once this reply is written (QUIT, protocol error). */
  thenClose: boolean;
}

/**
 * One RESP2 connection. RESP has no request ids, so replies must leave in the order the commands
 * arrived although reads and writes complete out of order: each command takes a slot in a FIFO and
 * the head is written as soon as it is filled. At `inflightMax` slots the socket is paused (parsed
 * commands of the last chunk wait in a backlog), like the binary protocol's connection.
 * After QUIT or a protocol error the remaining input is ignored and the connection closes once
 * every earlier reply and the final one are written, as Redis does. The server must be created
 * with `allowHalfOpen`: a client that shuts its side after its last command still gets every reply.
 */
export class RespConnection {
  private readonly parser: RespParser;
  readonly client: RespClient;
  private slots: Slot[] = [];
  private slotsHead = 0;
  private backlog: RespEvent[] = [];
  private backlogHead = 0;
  private corked = false;
  private draining = false;
  /** QUIT or a protocol error seen: take no further commands. */
  private ending = false;
  /** The client shut its side (e.g. `nc` at the end of its input): answer what came, then close. */
  private peerEnded = false;
  private closed = false;
  private drainWaiters: (() => void)[] = [];

  constructor(
    private readonly socket: Socket,
    id: number,
    private readonly deps: RespConnectionDeps,
  ) {
    this.parser = new RespParser(deps.parserLimits);
    this.client = {
      id,
      name: null,
      remote: `${socket.remoteAddress}:${socket.remotePort}`,
      local: `${socket.localAddress}:${socket.localPort}`,
      session: new KvSession(deps.paths),
      quit: false,
      gate: new OrderGate(),
    };
    socket.setNoDelay(true);
    socket.setTimeout(deps.idleTimeoutMs);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('timeout', () => {
      if (this.pending() === 0) socket.end();
    });
    socket.on('end', () => {
      this.peerEnded = true;
      this.processBacklog();
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      this.closed = true;
      this.wakeDrainWaiters();
      deps.onClose(this);
    });
  }

  /** Replies not yet written (their commands are in flight or wait behind one that is). */
  pending(): number {
    return this.slots.length - this.slotsHead;
  }

  /** Stops reading new commands, waits (at most `timeoutMs`) for the pending replies, then closes. */
  async drain(timeoutMs: number): Promise<void> {
    this.draining = true;
    await drainConnection(this.socket, () => this.pending(), () => this.closed, this.drainWaiters, timeoutMs);
  }

  private onData(chunk: Buffer): void {
    if (this.ending) return;
    for (const ev of this.parser.push(chunk)) this.backlog.push(ev);
    this.processBacklog();
  }

  private processBacklog(): void {
    while (this.backlogHead < this.backlog.length && !this.closed && !this.ending) {
      if (this.pending() >= this.deps.inflightMax) {
        this.socket.pause();
        return;
      }
      const ev = this.backlog[this.backlogHead++];
      if (ev.kind === 'error') {
        this.end(encodeError(`ERR ${ev.message}`));
        break;
      }
      const reply = this.deps.commands.handle(ev.args, this.client);
      if (this.client.quit) {
        this.end(reply as Buffer);
        break;
      }
      this.enqueue(reply);
    }
    this.backlog = [];
    this.backlogHead = 0;
    if (this.peerEnded && !this.ending && !this.closed) this.end(EMPTY);
    if (!this.draining && !this.closed && !this.ending && this.socket.isPaused()) this.socket.resume();
  }

  /** The last reply of the connection: written after every earlier one, then the socket ends. */
  private end(last: Buffer): void {
    this.ending = true;
    this.socket.pause();
    this.slots.push({ reply: last, thenClose: true });
    this.flush();
  }

  private enqueue(reply: Buffer | Promise<Buffer>): void {
    if (Buffer.isBuffer(reply)) {
      if (this.pending() === 0) this.write(reply);
      else this.slots.push({ reply, thenClose: false });
      return;
    }
    const slot: Slot = { reply: null, thenClose: false };
    this.slots.push(slot);
    reply.then((r) => {
      slot.reply = r;
      this.flush();
      if (!this.draining && !this.ending) this.processBacklog();
    });
  }

  /** Writes the filled slots at the head of the FIFO, in order. */
  private flush(): void {
    while (this.slotsHead < this.slots.length) {
      const slot = this.slots[this.slotsHead];
      if (slot.reply === null) break;
      this.slotsHead++;
      this.write(slot.reply);
      if (slot.thenClose) this.socket.end();
    }
    if (this.slotsHead === this.slots.length) {
      this.slots = [];
      this.slotsHead = 0;
      this.wakeDrainWaiters();
    } else if (this.slotsHead > 1024 && this.slotsHead * 2 > this.slots.length) {
      this.slots = this.slots.slice(this.slotsHead);
      this.slotsHead = 0;
    }
  }

  private write(b: Buffer): void {
    if (this.closed || this.socket.destroyed) return;
    // Cork for the rest of this tick so replies completed together leave in one write.
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    this.socket.write(b);
  }

  private wakeDrainWaiters(): void {
    const ws = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of ws) w();
  }
}
