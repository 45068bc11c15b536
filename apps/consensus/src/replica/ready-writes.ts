import type { Message, Ready } from '@cairn/raft';
import { PersistenceError } from './persistence';

/** One Ready's log write in flight (async storage writes). */
export interface ReadyWrite {
  /** Index and term of the Ready's last entry (RaftNode.persisted); 0 / 0 when it had none. */
  lastIndex: number;
  lastTerm: number;
  entries: number;
  /** Entry data bytes, counted against `writesInflightBytesMax`. */
  bytes: number;
  /** Messages that leave once this write and every earlier one are durable (Ready.messagesAfterPersist). */
  messages: Message[];
  /** World-clock ms when the write started and when it completed. */
  startMs: number;
  doneMs: number;
  state: 'running' | 'done' | 'failed';
  error: unknown;
  /** Settles (never rejects) when the write completes or fails. */
  settled: Promise<void>;
}

/**
 * The Ready writes a replica has in flight under async storage writes (Raft thesis §10.2.1;
 * etcd raft's AsyncStorageWrites), oldest first. Writes complete in start order (the segmented
 * log settles its appends in order), and `takeCompleted` hands them back only in that order, so
 * a write's messages never leave before an earlier write is durable. Bounded: `full()` past
 * `writesInflightMax` writes or `writesInflightBytesMax` entry bytes, and the Ready loop then
 * waits for the oldest before it takes another Ready.
 */
export class ReadyWrites {
  private readonly writes: ReadyWrite[] = [];
  private bytes = 0;

  constructor(
    private readonly o: {
      writesInflightMax: number;
      writesInflightBytesMax: number;
      nowMs: () => number;
      /** Wakes the Ready loop when a write completes or fails. */
      kick: () => void;
    },
  ) {}

  /** Writes started and not yet taken back. */
  get size(): number {
    return this.writes.length;
  }

  /** At a bound (count or bytes): take no further Ready until the oldest write completes. */
  full(): boolean {
    return this.writes.length >= this.o.writesInflightMax || this.bytes >= this.o.writesInflightBytesMax;
  }

  /**
   * Tracks `rd`'s write, `durable` settling once its entries are durable (an already durable
   * write: `Promise.resolve()`), with `messages` to send after it.
   */
  add(rd: Ready, messages: Message[], startMs: number, durable: Promise<void>): void {
    const last = rd.entries[rd.entries.length - 1];
    let bytes = 0;
    for (const e of rd.entries) bytes += e.data.length;
    const w: ReadyWrite = { lastIndex: last?.index ?? 0, lastTerm: last?.term ?? 0, entries: rd.entries.length, bytes, messages, startMs, doneMs: startMs, state: 'running', error: null, settled: Promise.resolve() };
    w.settled = durable.then(
      () => this.settle(w, 'done', null),
      (e: unknown) => this.settle(w, 'failed', e),
    );
    this.writes.push(w);
    this.bytes += bytes;
  }

  /**
   * The completed writes at the head, oldest first, removed.
   * @throws PersistenceError when the oldest unfinished write failed (the fatal path: durability unknown).
   */
  takeCompleted(): ReadyWrite[] {
    const out: ReadyWrite[] = [];
    while (this.writes.length && this.writes[0].state !== 'running') {
      const w = this.writes[0];
      if (w.state === 'failed') throw new PersistenceError('persisting a Ready', w.error);
      this.writes.shift();
      this.bytes -= w.bytes;
      out.push(w);
    }
    return out;
  }

  /** Whether `takeCompleted` has something to hand back (or a failure to throw). */
  hasCompleted(): boolean {
    return this.writes.length > 0 && this.writes[0].state !== 'running';
  }

  /** Settles when the oldest write completes or fails (at once with none). */
  oldestSettled(): Promise<void> {
    return this.writes[0]?.settled ?? Promise.resolve();
  }

  /** Settles when every write started so far completed or failed. */
  allSettled(): Promise<void> {
    return Promise.all(this.writes.map((w) => w.settled)).then(() => undefined);
  }

  /** @throws PersistenceError when a write started so far failed. */
  assertNoneFailed(): void {
    const failed = this.writes.find((w) => w.state === 'failed');
    if (failed) throw new PersistenceError('persisting a Ready', failed.error);
  }

  private settle(w: ReadyWrite, state: 'done' | 'failed', error: unknown): void {
    w.state = state;
    w.error = error;
    w.doneMs = this.o.nowMs();
    this.o.kick();
  }
}
