import { checkCommittedHistory, checkWatchStreams, checkWritesCommitted, type CommittedHistory, type WatchCheckResult, type WatchEvent, type WatchRange, type WatchStream, type WriteOutcome } from '@cairn/checker';
import { AbortError, CairnPool, WatchCompactedError, type ClientWatchOptions, type WatchItem as ClientWatchItem } from '@cairn/client';
import { mulberry32 } from '@cairn/raft';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Watchers during a chaos run (issue 12; docs/reliability.md "Watches under faults"): each watches
 * a range of the small-value keys through a CairnPool (which resumes across gateway kills and NATS
 * restarts from the last revision seen + 1) and also reopens the watch itself every few hundred
 * events from the last revision it saw + 1, so resumptions happen on both sides. Everything a
 * watcher sees is recorded for `checkWatchStreams` against a reference watch read after healing.
 */
export interface ChaosWatchersOptions {
  count: number;
  seed: number;
  host: string;
  port: number;
  /** The highest revision any client write was acknowledged at so far (a watcher starts a little before it). */
  lastAckRevision: () => number;
  /** How long a watch keeps trying to resume on its own before the watcher reopens it, ms. */
  resumeTimeoutMs?: number;
  log?: (line: string) => void;
}

/** The ranges watchers cycle through: every small-value key; one key; the keys [k1, k2) (k1, k10..k19). */
const RANGES: WatchRange[] = [{ prefix: 'k' }, { key: 'k0' }, { start: 'k1', end: 'k2' }];
/** Revisions before the latest acknowledged one a later watcher starts from: it pages the history first. */
const START_BEHIND_REVISIONS = 50;
/** A watcher reopens its watch itself after this many events plus a seeded 0..REOPEN_EVENTS_SPREAD. */
const REOPEN_EVENTS_MIN = 100;
const REOPEN_EVENTS_SPREAD = 300;
const REOPEN_BACKOFF_MS = 200;
/** The reference watch must reach the end revision this fast after healing, ms. */
const REFERENCE_TIMEOUT_MS = 30_000;

/** The small-value key range every watcher's range is inside (the reference watch). */
export const WATCHED_PREFIX = 'k';

interface Watcher {
  stream: WatchStream;
  /** The watcher saw every event up to this revision (its last event's, or a progress notification's). */
  seenThrough: number;
  stop: AbortController;
  done: Promise<void>;
  errors: number;
}

function toEvent(it: Extract<ClientWatchItem, { type: 'put' | 'delete' }>): WatchEvent {
  return { type: it.type, key: it.key.toString('utf8'), value: it.value.toString('utf8'), modRevision: it.modRevision, createRevision: it.createRevision, version: it.version };
}

export class ChaosWatchers {
  private readonly watchers: Watcher[] = [];
  private target: number | null = null;
  readonly problems: string[] = [];

  constructor(private readonly o: ChaosWatchersOptions) {}

  /** Starts watcher `i` now: watcher 0 from revision 1, the others from a little before the latest acknowledged write. */
  start(i: number): void {
    const from = i === 0 ? 1 : Math.max(1, this.o.lastAckRevision() - START_BEHIND_REVISIONS);
    const w: Watcher = { stream: { watcherId: i, range: RANGES[i % RANGES.length]!, items: [] }, seenThrough: from - 1, stop: new AbortController(), done: Promise.resolve(), errors: 0 };
    this.watchers.push(w);
    w.done = this.run(w, from).catch((e: unknown) => void this.problems.push(`watcher ${i} ended: ${(e as Error).message}`));
  }

  /** Every watcher stops once it saw through `endRevision` (an event or a progress notification); a watcher that does not within `timeoutMs` is a problem. */
  async finish(endRevision: number, timeoutMs: number): Promise<WatchStream[]> {
    this.target = endRevision;
    for (const w of this.watchers) if (w.seenThrough >= endRevision) w.stop.abort();
    const timer = setTimeout(() => {
      for (const w of this.watchers) {
        if (w.seenThrough >= endRevision) continue;
        this.problems.push(`watcher ${w.stream.watcherId} saw through revision ${w.seenThrough} only, not ${endRevision}, ${timeoutMs} ms after the end marker`);
        w.stop.abort();
      }
    }, timeoutMs);
    await Promise.all(this.watchers.map((w) => w.done));
    clearTimeout(timer);
    for (const w of this.watchers) if (w.seenThrough >= endRevision) w.stream.throughRevision = endRevision;
    return this.watchers.map((w) => w.stream);
  }

  /** Stops every watcher at once (the run ends early); their streams are not checked. */
  async abort(): Promise<void> {
    for (const w of this.watchers) w.stop.abort();
    await Promise.all(this.watchers.map((w) => w.done));
  }

  /** Resumptions the watchers saw end with an error (reopened by the watcher, recorded as `open`). */
  errors(): number {
    return this.watchers.reduce((n, w) => n + w.errors, 0);
  }

  private async run(w: Watcher, from: number): Promise<void> {
    const rng = mulberry32((this.o.seed ^ Math.imul(w.stream.watcherId + 101, 0x9e3779b1)) >>> 0);
    let next = from;
    // Its own pool (connections) per watcher; a gateway down at the start is waited for.
    let pool: CairnPool | null = null;
    try {
      while (!w.stop.signal.aborted) {
        pool ??= await CairnPool.connect({ gateways: [{ host: this.o.host, port: this.o.port }], connectTimeoutMs: 2000 }).catch(() => null);
        if (!pool) await sleep(REOPEN_BACKOFF_MS);
        else next = await this.open(w, pool, next, rng);
      }
    } finally {
      await pool?.close().catch(() => undefined);
    }
  }

  /** One opening from `from` until it ends; returns the revision to open from next. */
  private async open(w: Watcher, pool: CairnPool, from: number, rng: () => number): Promise<number> {
    w.stream.items.push({ kind: 'open', fromRevision: from });
    const opts: ClientWatchOptions = { ...w.stream.range, startRevision: from, progress: true, signal: w.stop.signal, resumeTimeoutMs: this.o.resumeTimeoutMs ?? 60_000 };
    const reopenAfter = REOPEN_EVENTS_MIN + Math.floor(rng() * REOPEN_EVENTS_SPREAD);
    const at = { next: from };
    try {
      await this.follow(w, pool, opts, at, reopenAfter);
      return at.next;
    } catch (e) {
      if (e instanceof AbortError && w.stop.signal.aborted) return at.next;
      if (e instanceof WatchCompactedError) {
        w.stream.items.push({ kind: 'compacted', fromRevision: e.requestedRevision, oldestRevision: e.oldestRevision });
        return e.oldestRevision;
      }
      w.errors++;
      this.o.log?.(`chaos: watcher ${w.stream.watcherId} reopens from revision ${at.next} after: ${(e as Error).message}`);
      await sleep(REOPEN_BACKOFF_MS);
      // The iterator fails only between frames, and frames hold whole revisions: `next` follows the last revision seen whole.
      return at.next;
    }
  }

  /** Records one opening's items until `reopenAfter` events were seen (then returns at a revision boundary) or it ends; `at.next` follows the revision to reopen from. */
  private async follow(w: Watcher, pool: CairnPool, opts: ClientWatchOptions, at: { next: number }, reopenAfter: number): Promise<void> {
    let events = 0;
    for await (const it of pool.watch(opts)) {
      if (it.type === 'progress') {
        w.stream.items.push({ kind: 'progress', revision: it.revision });
        at.next = Math.max(at.next, it.revision + 1);
        w.seenThrough = Math.max(w.seenThrough, it.revision);
      } else {
        // Reopen only at a revision boundary: a reopen from `next` would skip the rest of a revision.
        if (events >= reopenAfter && it.modRevision >= at.next) return;
        w.stream.items.push({ kind: 'event', event: toEvent(it) });
        events++;
        at.next = Math.max(at.next, it.modRevision + 1);
        // More events of this revision may follow (a transaction); the end marker's revision has one.
        w.seenThrough = Math.max(w.seenThrough, it.modRevision - 1);
        if (this.target !== null && it.modRevision >= this.target) w.seenThrough = Math.max(w.seenThrough, it.modRevision);
      }
      if (this.target !== null && w.seenThrough >= this.target) w.stop.abort();
    }
  }
}

/**
 * The committed history of the watched keys, read back after healing: a watch on `WATCHED_PREFIX`
 * from revision 1 (or, when that was compacted, from the oldest revision retained) until an event
 * or progress at `endRevision`.
 */
export async function readReferenceHistory(host: string, port: number, endRevision: number): Promise<CommittedHistory> {
  const pool = await CairnPool.connect({ gateways: [{ host, port }], connectTimeoutMs: 2000 });
  const stop = AbortSignal.timeout(REFERENCE_TIMEOUT_MS);
  let firstRevision = 1;
  try {
    for (;;) {
      const events: WatchEvent[] = [];
      try {
        for await (const it of pool.watch({ prefix: WATCHED_PREFIX, startRevision: firstRevision, progress: true, signal: stop })) {
          if (it.type !== 'progress') events.push(toEvent(it));
          if ((it.type === 'progress' ? it.revision : it.modRevision) >= endRevision) break;
        }
        return { firstRevision, lastRevision: endRevision, events };
      } catch (e) {
        if (!(e instanceof WatchCompactedError)) throw e;
        firstRevision = e.oldestRevision;
      }
    }
  } finally {
    await pool.close().catch(() => undefined);
  }
}

/** The verdict on the watchers: the reference consistent with itself and with the writers, every stream against it. */
export function checkWatchers(reference: CommittedHistory, streams: readonly WatchStream[], writes: readonly WriteOutcome[]): WatchCheckResult {
  const r = checkWatchStreams(reference, streams, { oldestRetainedRevision: reference.firstRevision });
  const own = [...checkCommittedHistory(reference), ...checkWritesCommitted(reference, writes)];
  return { ...r, ok: r.ok && own.length === 0, violations: [...own, ...r.violations] };
}
