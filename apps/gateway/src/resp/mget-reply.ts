import { Status } from '@cairn/protocol';
import { encodeBulk, encodeBulkArray } from '@cairn/resp';
import type { KvResult, KvSession } from '../paths/kv-session';
import type { ReadReservation } from '../server/flow';

/**
 * What a connection lends a read command for read flow control (docs/resp.md, "Large replies";
 * RespConnection backs it with the command's RequestHold).
 */
export interface CommandReads {
  /** A reservation for one key's value (prepaid by the connection when the command was read, or reserved now). */
  reserve(): ReadReservation;
  /** Releases a reservation whose value has been handed to the socket. */
  release(r: ReadReservation): void;
  /** Value bytes one command may have reserved at once (gateway.connectionRequestBytesMax). */
  windowBytes: number;
  /** True once the connection has closed: nothing more is read or encoded. */
  closed(): boolean;
}

/**
 * A reply written in parts (an MGET whose values do not fit one window): `first` (the array header
 * and the first values), then each part `next()` yields, until null. The connection asks for the
 * next part only once its unflushed bytes are back under connectionReplyBytesMax, so a client that
 * does not read stops the reads too. `done` resolves with the last part (the connection's OrderGate
 * keeps later writes behind it until then).
 */
export interface PartedReply {
  first: Buffer;
  next(): Promise<Buffer | null>;
  done: Promise<void>;
}

/**
 * MGET with read flow control: keys are read in order within a window of `reads.windowBytes`
 * reserved value bytes (at least one key at a time); values are encoded in order and their
 * reservations released as they are handed on, so the command never holds more than its window
 * (plus one value whose reservation grew, ReadPath). When every key fits the first window the
 * answer is one buffer, and a failed read fails the whole command (`failed(r)`, as before). Past
 * the first window the array header is already written: a key whose read failed is answered by an
 * error element (`-TRYAGAIN …`, valid RESP2 inside an array), the other keys by their values.
 */
export async function mgetReply(session: Pick<KvSession, 'get'>, keys: Buffer[], reads: CommandReads, failed: (r: KvResult) => Buffer): Promise<Buffer | PartedReply> {
  const w = new MgetWindow(session, keys, reads);
  w.issue();
  const firstKeys = w.issuedCount();
  await w.settled(firstKeys);
  const rs = w.take(firstKeys);
  const bad = rs.find((r) => r.status !== Status.Ok && r.status !== Status.NotFound);
  // Nothing is encoded for a connection that has gone; the reservations go back with the
  // command's RequestHold, once its reply is written (or the connection closed).
  if (bad) return failed(bad);
  if (reads.closed()) return encodeBulkArray([]);
  const values = rs.map((r) => (r.status === Status.Ok ? r.value : null));
  if (firstKeys === keys.length) return encodeBulkArray(values);
  const first = Buffer.concat([Buffer.from(`*${keys.length}\r\n`), ...values.map((v) => encodeBulk(v))]);
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  return {
    first,
    done,
    next: async () => {
      // The previous part has been handed to the socket by now: its reservations go back.
      w.releaseTaken();
      if (w.finished() || reads.closed()) {
        finish();
        return null;
      }
      w.issue();
      await w.settled(1);
      const part = w.take(w.readyCount()).map((r) => (r.status === Status.Ok ? encodeBulk(r.value) : r.status === Status.NotFound ? encodeBulk(null) : failed(r)));
      return Buffer.concat(part);
    },
  };
}

/** The keys of one MGET in flight: issued in order within the window, taken in order. */
class MgetWindow {
  private issued = 0;
  private taken = 0;
  private readonly results: (KvResult | undefined)[] = [];
  private readonly pending: Promise<KvResult>[] = [];
  private readonly reservations: ReadReservation[] = [];
  /** Reservations of the keys last taken, released once their part was handed on. */
  private toRelease: ReadReservation[] = [];

  constructor(
    private readonly session: Pick<KvSession, 'get'>,
    private readonly keys: Buffer[],
    private readonly reads: CommandReads,
  ) {}

  issuedCount(): number {
    return this.issued;
  }

  finished(): boolean {
    return this.taken === this.keys.length;
  }

  /** Value bytes reserved by keys issued and not yet taken. */
  private reserved(): number {
    let n = 0;
    for (let i = this.taken; i < this.issued; i++) n += this.reservations[i].bytes;
    return n;
  }

  /** Issues keys in order while the window has room (always one when none is in flight). */
  issue(): void {
    while (this.issued < this.keys.length) {
      const r = this.reads.reserve();
      if (this.issued > this.taken && this.reserved() + r.bytes > this.reads.windowBytes) {
        this.reads.release(r);
        return;
      }
      const i = this.issued++;
      this.reservations[i] = r;
      // A read never rejects into the connection: a thrown error is that key's ERROR result.
      this.pending[i] = this.session.get(this.keys[i], { reservation: r }).then(
        (out) => (this.results[i] = out),
        (e: Error) => (this.results[i] = { status: Status.Error, revision: 0, value: new Uint8Array(0), message: `gateway error: ${e.message}` }),
      );
    }
  }

  /** Waits until the next `n` keys to take have their results. */
  async settled(n: number): Promise<void> {
    await Promise.all(this.pending.slice(this.taken, this.taken + n));
  }

  /** Keys with results, contiguous from the next one to take. */
  readyCount(): number {
    let i = this.taken;
    while (i < this.issued && this.results[i] !== undefined) i++;
    return i - this.taken;
  }

  /** Takes the next `n` results (their reservations are released by releaseTaken). */
  take(n: number): KvResult[] {
    const out = this.results.slice(this.taken, this.taken + n) as KvResult[];
    for (let i = this.taken; i < this.taken + n; i++) {
      this.toRelease.push(this.reservations[i]);
      this.results[i] = undefined;
    }
    this.taken += n;
    return out;
  }

  releaseTaken(): void {
    for (const r of this.toRelease) this.reads.release(r);
    this.toRelease = [];
  }
}
