import { RespParser, encodeError, type RespEvent, type RespParserLimits } from '@cairn/resp';
import type { Socket } from 'node:net';
import type { Clock } from '@cairn/world';
import { KvSession, type KvPaths } from '../paths/kv-session';
import type { RespClient, RespCommands } from './commands';
import type { CommandReads, PartedReply } from './mget-reply';
import { OrderGate } from './order-gate';
import { ConnectionFlow, RequestHold, type ByteBudget, type FlowLimits, type FlowSocket, type ReadReservation } from '../server/flow';
import type { AuthIdentity, GatewayAuth } from '../auth/gateway-auth';
import type { WatchHub } from '../watch/watch-hub';
import { RespPubSub } from './pubsub';

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
  /** Credentials and key permissions (docs/security.md); absent (tests): everything allowed. */
  auth?: GatewayAuth;
  /** Keyspace notifications (pubsub.ts; docs/resp.md "Keyspace notifications"); absent: SUBSCRIBE is an unknown command. */
  watches?: { hub: Pick<WatchHub, 'open' | 'cancel'>; perConnectionMax: number };
}

/** The socket members a RESP connection uses: the flow's, and the addresses CLIENT LIST shows. */
export type RespSocket = FlowSocket & Pick<Socket, 'remoteAddress' | 'remotePort' | 'localAddress' | 'localPort'>;

const EMPTY = Buffer.alloc(0);
/** Replies up to this size are always queued (every write's, errors): only reads can be large. */
const NOT_READING_CHECK_BYTES = 1024;
const notReading = (bytes: number) =>
  encodeError(`TRYAGAIN reply of ${bytes} bytes not sent: this connection does not read its replies and the gateway holds pendingBytesMax`);

/** The commands that make a connection's pub/sub state. */
const PUBSUB_COMMANDS = new Set(['subscribe', 'psubscribe', 'unsubscribe', 'punsubscribe']);

/** One reply slot in command order: `reply` is null while the cluster has not answered. */
interface Slot {
  reply: Buffer | null;
  /** A reply in parts: after `reply` is written, the next part is asked for (PartedReply). */
  parted: PartedReply | null;
  /** Close the connection once this reply is written (QUIT, protocol error). */
  thenClose: boolean;
  /** A pub/sub message's: run once its bytes are flushed (the watch hub's SLOW bound counts until then). */
  flushed?: () => void;
  /** The command's arguments and read reservations, held until its reply is written. */
  hold: RequestHold | null;
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
  /** The head slot's next part waits for the client to read (unflushed bytes above connectionReplyBytesMax). */
  private partStalled = false;
  /** SUBSCRIBE / PSUBSCRIBE state (made at the first pub/sub command). */
  private pubsub: RespPubSub | null = null;

  constructor(
    socket: RespSocket,
    id: number,
    private readonly deps: RespConnectionDeps,
  ) {
    this.parser = new RespParser(deps.parserLimits);
    // Anonymous until AUTH / HELLO AUTH; the guard reads the identity at each request.
    const identity: AuthIdentity = { user: null };
    this.client = {
      id,
      name: null,
      remote: `${socket.remoteAddress}:${socket.remotePort}`,
      local: `${socket.localAddress}:${socket.localPort}`,
      session: new KvSession(deps.paths, deps.auth?.guardFor(identity)),
      identity,
      address: socket.remoteAddress ?? '',
      quit: false,
      gate: new OrderGate(),
    };
    socket.setNoDelay(true);
    this.flow = new ConnectionFlow(socket, deps.flow, deps.budget, {
      data: (chunk) => this.onData(chunk),
      // The client shut its side (e.g. `nc` at the end of its input): answer what came, then close.
      peerEnded: () => this.processBacklog(),
      update: () => {
        if (this.partStalled) this.flush();
        this.processBacklog();
      },
      frameDeadline: () => {
        this.backlog = [];
        this.backlogHead = 0;
        this.end(encodeError(`ERR Protocol error: command not completed within frameDeadlineMs (${deps.flow.frameDeadlineMs} ms)`));
      },
      // A reply in parts waiting for the client to read is not waiting for the cluster.
      awaitingCluster: () => (this.partStalled ? 0 : this.awaiting),
      closed: () => {
        // Replies not written yet never will be: their reservations go back now.
        for (let i = this.slotsHead; i < this.slots.length; i++) this.slots[i].hold?.release();
        this.pubsub?.close();
        deps.onClose(this);
      },
    }, deps.clock);
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
      // The command's name, lower-cased once for every lookup below.
      const name = ev.args[0].toString('latin1').toLowerCase();
      const readKeys = this.readKeys(name, ev.args);
      const hold = new RequestHold(this.flow, this.deps.budget, argBytes(ev.args));
      // GET and MGET reserve what their values are expected to bring back, at most one window;
      // only they take `reads` (other commands get none: nothing to make for them).
      let reads: CommandReads | undefined;
      if (readKeys > 0) {
        const estimate = this.deps.budget.readEstimate();
        const windowBytes = this.deps.flow.connectionRequestBytesMax;
        hold.prepay(Math.min(readKeys, Math.max(1, Math.floor(windowBytes / Math.max(1, estimate)))), estimate);
        reads = new HoldReads(hold, this.deps.budget, windowBytes);
      }
      const reply = this.pubsubOf(name)?.handle(ev.args, this.client) ?? this.deps.commands.handle(ev.args, this.client, reads, name);
      if (this.client.quit) {
        hold.release();
        this.end(reply as Buffer);
        break;
      }
      this.enqueue(reply, hold, readKeys);
    }
    if (this.backlogHead === this.backlog.length || this.ending) {
      this.backlog = [];
      this.backlogHead = 0;
    }
    if (this.flow.peerEnded() && !this.ending && !this.flow.closed() && this.backlog.length === 0) this.end(EMPTY);
    if (this.ending) return;
    this.flow.setReading(!this.stopped() && this.backlog.length === 0, this.parser.midCommand());
  }

  /**
   * Keys a command reads (GET 1, MGET n): each reserves what its answer is expected to bring back
   * (ByteBudget.readEstimate). The values of SET, SETNX and MSET feed that estimate.
   */
  private readKeys(name: string, args: Buffer[]): number {
    if (name === 'get' || name === 'mget') return args.length - 1;
    if (name === 'set' || name === 'setnx') this.deps.budget.observeValue(args[2]?.length ?? 0);
    else if (name === 'mset') for (let i = 2; i < args.length; i += 2) this.deps.budget.observeValue(args[i].length);
    return 0;
  }

  /** The connection's pub/sub state when command `name` (lower case) may concern it (made at the first pub/sub command); null otherwise. */
  private pubsubOf(name: string): RespPubSub | null {
    if (this.pubsub || !this.deps.watches) return this.pubsub;
    if (!PUBSUB_COMMANDS.has(name)) return null;
    const w = this.deps.watches;
    this.pubsub = new RespPubSub({ hub: w.hub, subscriptionsMax: w.perConnectionMax, auth: this.deps.auth }, {
      push: (b, flushed) => this.push(b, flushed),
      refused: (bytes) => this.flow.replyRefused(bytes),
      close: (last) => {
        if (!this.ending && !this.flow.closed()) this.end(last);
      },
    });
    return this.pubsub;
  }

  /** A pub/sub message: after every reply still pending (RESP has no ids: order is the framing). */
  private push(b: Buffer, flushed: () => void): void {
    if (this.flow.closed() || this.ending) return flushed();
    if (this.slotsHead === this.slots.length) this.write(b, flushed);
    else this.slots.push({ reply: b, parted: null, thenClose: false, hold: null, flushed });
  }

  /** The last reply of the connection: written after every earlier one, then the socket closes. */
  private end(last: Buffer): void {
    this.ending = true;
    this.flow.setReading(false, false);
    this.slots.push({ reply: last, parted: null, thenClose: true, hold: null });
    this.flush();
  }

  /**
   * `hold`: the command's bytes, released once its reply is written. `readKeys`: keys the command
   * reads; its reply's size per key feeds the read estimate.
   */
  private enqueue(reply: Buffer | Promise<Buffer | PartedReply>, hold: RequestHold, readKeys: number): void {
    if (Buffer.isBuffer(reply)) {
      hold.release();
      if (this.slotsHead === this.slots.length) this.write(reply);
      else this.slots.push({ reply, parted: null, thenClose: false, hold: null });
      return;
    }
    const slot: Slot = { reply: null, parted: null, thenClose: false, hold };
    this.awaiting++;
    this.slots.push(slot);
    reply.then((out) => {
      this.awaiting--;
      this.flow.answered();
      if (this.flow.closed()) return void hold.release(); // nothing is written: the reservation goes back now
      const r = Buffer.isBuffer(out) ? out : out.first;
      if (!Buffer.isBuffer(out)) slot.parted = out;
      else if (readKeys > 0) this.deps.budget.observeValue(Math.floor(r.length / readKeys));
      // A large reply (a read's) to a client that does not read, with the gateway at pendingBytesMax.
      slot.reply = r.length > NOT_READING_CHECK_BYTES && this.flow.replyRefused(r.length, hold.held()) ? notReading(r.length) : r;
      this.flush();
      if (!this.draining && !this.ending) this.processBacklog();
    });
  }

  /**
   * Asks the head slot's PartedReply for its next part, once the client has read what was written
   * (unflushed bytes at most connectionReplyBytesMax); processBacklog calls again as bytes flush.
   */
  private nextPart(slot: Slot): void {
    if (this.flow.heldBytes().reply > this.deps.flow.connectionReplyBytesMax) {
      this.partStalled = true;
      return;
    }
    this.partStalled = false;
    this.awaiting++;
    void slot.parted!.next().then((part) => {
      this.awaiting--;
      this.flow.answered();
      if (part === null) slot.parted = null;
      slot.reply = part ?? EMPTY;
      if (this.flow.closed()) return;
      this.flush();
      if (!this.draining && !this.ending) this.processBacklog();
    });
  }

  /** Writes the filled slots at the head of the FIFO, in order (a PartedReply part by part). */
  private flush(): void {
    while (this.slotsHead < this.slots.length) {
      const slot = this.slots[this.slotsHead];
      if (slot.reply === null) {
        if (this.partStalled && slot.parted) this.nextPart(slot);
        break;
      }
      if (this.flow.isClosing()) {
        // Closing on a drain timeout: nothing more is written.
        this.slotsHead++;
        slot.hold?.release();
        continue;
      }
      if (slot.reply.length > 0) this.write(slot.reply, slot.flushed);
      if (slot.parted) {
        slot.reply = null;
        this.nextPart(slot);
        break;
      }
      this.slotsHead++;
      // Released once the reply's bytes count as written: a value is never held uncounted.
      slot.hold?.release();
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

  private write(b: Buffer, flushed?: () => void): void {
    if (this.flow.closed()) return;
    this.unflushed++;
    this.flow.write(b, () => {
      this.unflushed--;
      flushed?.();
    });
  }

}

/** A GET's or MGET's read flow control over its RequestHold (one object per command, no closures). */
class HoldReads implements CommandReads {
  constructor(
    private readonly hold: RequestHold,
    private readonly budget: ByteBudget,
    readonly windowBytes: number,
  ) {}

  reserve(): ReadReservation {
    return this.hold.read(this.budget.readEstimate());
  }

  release(r: ReadReservation): void {
    this.hold.releaseRead(r);
  }

  closed(): boolean {
    return this.hold.connectionClosed();
  }
}

function argBytes(args: Buffer[]): number {
  let n = 0;
  for (const a of args) n += a.length;
  return n;
}
