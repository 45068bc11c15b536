import { Status, decodeReadIndexRequest, encodeReadIndexReply, type ReadIndexReply } from '@cairn/protocol';
import { NotLeaderError, ReadIndexPendingFullError, type RaftNode, type Ready } from '@cairn/raft';
import { respondSafe } from '@cairn/messaging';
import type { Logger } from '@cairn/logging';
import type { TransportMsg } from '@cairn/world';
import { ReadyInputs } from './ready-inputs';

/** What the ReadIndex requests need of their replica. */
export interface ReadIndexHost {
  id: string;
  log: Logger;
  isLeader(): boolean;
  leaderId(): string | null;
  /** Wakes the Ready loop, which calls `drain` then `handleReadStates`. */
  kick(): void;
}

/**
 * The leader side of ReadIndex (Raft thesis §6.4) on `readindex.<replica>`: requests wait in a
 * queue until the Ready loop hands them to the state machine (each with a context number), and
 * are answered from the Ready's read states (confirmed: the read index; dropped: NOT_LEADER).
 * The state machine bounds them (`readIndexPendingMax`: UNAVAILABLE beyond).
 */
export class ReadIndexRequests {
  /** Waiting to be handed to the state machine. */
  private readonly queued: ReadyInputs<TransportMsg>;
  /** Handed to the state machine, by the context number given to it. */
  private readonly pending = new Map<number, TransportMsg>();
  private seq = 0;

  constructor(private readonly host: ReadIndexHost) {
    this.queued = new ReadyInputs(() => host.kick());
  }

  onRequest(msg: TransportMsg): void {
    try {
      decodeReadIndexRequest(msg.data);
    } catch (e) {
      this.reply(msg, { status: Status.BadRequest, readIndex: 0, leaderHint: '', message: `bad read index request: ${(e as Error).message}` });
      return;
    }
    if (!this.host.isLeader()) {
      this.reply(msg, { status: Status.NotLeader, readIndex: 0, leaderHint: this.host.leaderId() ?? '', message: 'not the leader' });
      return;
    }
    this.queued.push(msg);
  }

  /** Requests are waiting for the Ready loop. */
  hasQueued(): boolean {
    return this.queued.hasQueued();
  }

  /** Hands the queued requests to the state machine (Ready loop, with the other inputs). */
  drain(node: RaftNode): void {
    this.queued.drain((msg) => this.readIndex(node, msg));
  }

  private readIndex(node: RaftNode, msg: TransportMsg): void {
    const ctx = ++this.seq;
    try {
      node.readIndex(ctx);
      this.pending.set(ctx, msg);
    } catch (e) {
      if (e instanceof NotLeaderError) {
        this.reply(msg, { status: Status.NotLeader, readIndex: 0, leaderHint: e.leaderId ?? '', message: 'not the leader' });
      } else if (e instanceof ReadIndexPendingFullError) {
        this.reply(msg, { status: Status.Unavailable, readIndex: 0, leaderHint: this.host.id, message: 'leader overloaded: too many reads pending' });
      } else {
        this.host.log.error({ err: e }, 'read index refused');
        this.reply(msg, { status: Status.Unavailable, readIndex: 0, leaderHint: this.host.leaderId() ?? '', message: `read index refused: ${(e as Error).message}` });
      }
    }
  }

  /** Answers confirmed reads with their read index, and fails those the state machine dropped. */
  handleReadStates(rd: Ready): void {
    for (const rs of rd.readStates) {
      const msg = this.pending.get(rs.ctx as number);
      if (!msg) continue;
      this.pending.delete(rs.ctx as number);
      this.reply(msg, { status: Status.Ok, readIndex: rs.index, leaderHint: this.host.id, message: '' });
    }
    for (const f of rd.readStatesFailed) {
      const msg = this.pending.get(f.ctx as number);
      if (!msg) continue;
      this.pending.delete(f.ctx as number);
      this.reply(msg, { status: Status.NotLeader, readIndex: 0, leaderHint: this.host.leaderId() ?? '', message: 'leadership lost before the read was confirmed' });
    }
  }

  /** Answers every request, handed over or queued, UNAVAILABLE with `message` (shutdown). */
  failAll(message: string): void {
    for (const msg of [...this.pending.values(), ...this.queued.takeAll()]) this.reply(msg, { status: Status.Unavailable, readIndex: 0, leaderHint: '', message });
    this.pending.clear();
  }

  private reply(msg: TransportMsg, r: ReadIndexReply): void {
    respondSafe(msg, encodeReadIndexReply(r), this.host.log);
  }
}
