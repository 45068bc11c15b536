import { RespParser, encodeError, type RespEvent, type RespParserLimits } from '@cairn/resp';
import type { Socket } from 'node:net';
import type { Clock } from '@cairn/world';
import { KvSession, type KvPaths } from '../paths/kv-session';
import type { RespClient, RespCommands } from './commands';
import { OrderGate } from './order-gate';
import { ConnectionFlow, type ByteBudget, type FlowLimits, type FlowSocket } from '../server/flow';

export interface RespConnectionDeps {
  paths: KvPaths;
  parserLimits: RespParserLimits;
  commands: RespCommands;
  /** Replies per connection from parse until flushed (pending, or written but not yet flushed); beyond it the socket is paused. */
  inflightMax: number;
  /** Byte bounds, deadlines and the idle timeout of a connection (ConnectionFlow). */
  flow: FlowLimits;
  /** The gateway-wide bound on bytes held for clients (shared with the TLV door). */
  budget: ByteBudget;
  onClose: (c: RespConnection) => void;
  /** Runs the frame deadline, close and drain timeouts (default Node's timers; the simulator's virtual clock). */
  clock?: Clock;
}

/** The socket members a RESP connection uses: the flow's, and the addresses CLIENT LIST shows. */
export type RespSocket = FlowSocket & Pick<Socket, 'remoteAddress' | 'remotePort' | 'localAddress' | 'localPort'>;

const EMPTY = Buffer.alloc(0);
/** Replies up to this size are always queued (every write's, errors): only reads can be large. */
const NOT_READING_CHECK_BYTES = 1024;
const notReading = (bytes: number) =>
  encodeError(`TRYAGAIN reply of ${bytes} bytes not sent: this connection does not read its replies and the gateway holds pendingBytesMax`);

/** One reply slot in command order: `reply` is null while the cluster has not answered. */
interface Slot {
  reply: Buffer | null;
  /** Close the connection once this reply is written (QUIT, protocol error). */
  thenClose: boolean;
  /** Bytes of the command's arguments, held until its reply is written. */
  requestBytes: number;
}

/**
 * One RESP2 connection. RESP has no request ids, so replies must leave in the order the commands
 * arrived although reads and writes complete out of order: each command takes a slot in a FIFO and
 * the head is written as soon as it is filled. Backpressure as on the binary protocol
 * (docs/protocol.md, "Connection limits and backpressure"): the socket is paused while
 * `inflightMax` replies are pending or unflushed, or while a byte bound of ConnectionFlow is
 * crossed (parsed commands of the last chunk wait in a backlog). A command half read for
 * `frameDeadlineMs` is a protocol error.
 * After QUIT or a protocol error the remaining input is ignored and the connection closes once
 * every earlier reply and the final one are flushed (ConnectionFlow.closeAfterFlush), as Redis
 * does. The server must be created with `allowHalfOpen`: a client that shuts its side after its
 * last command still gets every reply.
 */
export class RespConnection {
  private readonly parser: RespParser;
  private readonly flow: ConnectionFlow;
  readonly client: RespClient;
  private slots: Slot[] = [];
  private slotsHead = 0;
  /** Replies written but not yet flushed. */
  private unflushed = 0;
  /** Slots whose reply the cluster has not produced yet. */
  private awaiting = 0;
  private backlog: RespEvent[] = [];
  private backlogHead = 0;
  private draining = false;
  /** QUIT or a protocol error seen: take no further commands. */
  private ending = false;
  /** The client shut its side (e.g. `nc` at the end of its input): answer what came, then close. */
  private peerEnded = false;

  constructor(
    socket: RespSocket,
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
    this.flow = new ConnectionFlow(socket, deps.flow, deps.budget, {
      update: () => this.processBacklog(),
      frameDeadline: () => {
        this.backlog = [];
        this.backlogHead = 0;
        this.end(encodeError(`ERR Protocol error: command not completed within frameDeadlineMs (${deps.flow.frameDeadlineMs} ms)`));
      },
      awaitingCluster: () => this.awaiting,
      closed: () => deps.onClose(this),
    }, deps.clock);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => {
      this.peerEnded = true;
      this.processBacklog();
    });
  }

  /** Replies not yet flushed (their commands are in flight, wait behind one that is, or sit in the socket). */
  pending(): number {
    return this.slots.length - this.slotsHead + this.unflushed;
  }

  /** Bytes this connection holds (tests): unflushed replies and commands not yet answered. */
  heldBytes(): { reply: number; request: number } {
    return this.flow.heldBytes();
  }

  /** Stops reading new commands, waits (at most `timeoutMs`) for the pending replies, then closes. */
  async drain(timeoutMs: number): Promise<void> {
    this.draining = true;
    await this.flow.drain(timeoutMs);
  }

  private onData(chunk: Buffer): void {
    if (this.ending) return;
    for (const ev of this.parser.push(chunk)) this.backlog.push(ev);
    this.processBacklog();
  }

  private stopped(): boolean {
    return this.draining || this.pending() >= this.deps.inflightMax || this.flow.blocked();
  }

  private processBacklog(): void {
    while (this.backlogHead < this.backlog.length && !this.flow.closed() && !this.ending) {
      if (this.stopped()) break;
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
      const readKeys = this.readKeys(ev.args);
      this.enqueue(reply, argBytes(ev.args) + readKeys * this.deps.budget.readEstimate(), readKeys);
    }
    if (this.backlogHead === this.backlog.length || this.ending) {
      this.backlog = [];
      this.backlogHead = 0;
    }
    if (this.peerEnded && !this.ending && !this.flow.closed() && this.backlog.length === 0) this.end(EMPTY);
    if (this.ending) return;
    this.flow.setReading(!this.stopped() && this.backlog.length === 0, this.parser.midCommand());
  }

  /**
   * Keys a command reads (GET 1, MGET n): each reserves what its answer is expected to bring back
   * (ByteBudget.readEstimate). The values of SET, SETNX and MSET feed that estimate.
   */
  private readKeys(args: Buffer[]): number {
    const name = args[0].toString('latin1').toLowerCase();
    if (name === 'get' || name === 'mget') return args.length - 1;
    if (name === 'set' || name === 'setnx') this.deps.budget.observeValue(args[2]?.length ?? 0);
    else if (name === 'mset') for (let i = 2; i < args.length; i += 2) this.deps.budget.observeValue(args[i].length);
    return 0;
  }

  /** The last reply of the connection: written after every earlier one, then the socket closes. */
  private end(last: Buffer): void {
    this.ending = true;
    this.flow.setReading(false, false);
    this.slots.push({ reply: last, thenClose: true, requestBytes: 0 });
    this.flush();
  }

  /** `readKeys`: keys the command reads; its reply's size per key feeds the read estimate. */
  private enqueue(reply: Buffer | Promise<Buffer>, requestBytes: number, readKeys: number): void {
    if (Buffer.isBuffer(reply)) {
      if (this.slotsHead === this.slots.length) this.write(reply);
      else this.slots.push({ reply, thenClose: false, requestBytes: 0 });
      return;
    }
    const slot: Slot = { reply: null, thenClose: false, requestBytes };
    this.flow.holdRequest(requestBytes);
    this.awaiting++;
    this.slots.push(slot);
    reply.then((r) => {
      if (readKeys > 0) this.deps.budget.observeValue(Math.floor(r.length / readKeys));
      // A large reply (a read's) to a client that does not read, with the gateway at pendingBytesMax.
      slot.reply = r.length > NOT_READING_CHECK_BYTES && this.flow.replyRefused(r.length) ? notReading(r.length) : r;
      this.awaiting--;
      this.flow.answered();
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
      if (slot.requestBytes > 0) this.flow.releaseRequest(slot.requestBytes);
      if (this.flow.isClosing()) continue; // closing on a drain timeout: nothing more is written
      this.write(slot.reply);
      if (slot.thenClose) this.flow.closeAfterFlush();
    }
    if (this.slotsHead === this.slots.length) {
      this.slots = [];
      this.slotsHead = 0;
    } else if (this.slotsHead > 1024 && this.slotsHead * 2 > this.slots.length) {
      this.slots = this.slots.slice(this.slotsHead);
      this.slotsHead = 0;
    }
  }

  private write(b: Buffer): void {
    if (this.flow.closed()) return;
    this.unflushed++;
    this.flow.write(b, () => this.unflushed--);
  }

}

function argBytes(args: Buffer[]): number {
  let n = 0;
  for (const a of args) n += a.length;
  return n;
}
