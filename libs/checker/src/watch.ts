/**
 * Watch streams checked against the committed history (docs/checker.md "Watch streams"; the
 * properties of Jepsen's etcd watch checks and of etcd's own watch robustness tests): a watch from
 * revision R delivers every committed event on its range with a revision ≥ R exactly once, in
 * revision order, each equal to the committed event (type, value, create revision, version) — across
 * resumptions too; a progress notification never claims a revision whose events were not all
 * delivered before it; COMPACTED only for a revision below the oldest one the cluster retained.
 *
 * Pure: no clock, no I/O. Histories are strings (a test writes unique values, so a value names its write).
 */

/** One change of the committed history (etcd mvccpb.Event; @cairn/client WatchEventItem with string key and value). */
export interface WatchEvent {
  type: 'put' | 'delete';
  key: string;
  /** '' for a delete. */
  value: string;
  /** The revision (Raft index) of the change; the changes of one transaction share it. */
  modRevision: number;
  /** put: the revision that created the key; delete: 0. */
  createRevision: number;
  /** put: writes since creation (1 = the creating write); delete: 0. */
  version: number;
}

/** A committed mutation: the committed history is these in revision order (one revision may hold several, on distinct keys). */
export interface CommittedWrite {
  type: 'put' | 'delete';
  key: string;
  /** A put's value. */
  value?: string;
  revision: number;
}

/**
 * The committed history as events: complete from `firstRevision` (every event with a revision ≥ it
 * is in `events`, in revision order) through `lastRevision`. Keys first seen with a create revision
 * below `firstRevision` existed before it.
 */
export interface CommittedHistory {
  firstRevision: number;
  lastRevision: number;
  events: WatchEvent[];
}

/** What a watch covers (docs/watch.md): one key, a prefix ('' = every key), or the keys [start, end) in UTF-16 code unit order (byte order for ASCII keys). */
export type WatchRange = { key: string } | { prefix: string } | { start: string; end: string };

/**
 * What a watcher saw, in order:
 * - `open`: the watch was (re)opened from `fromRevision` (the first item; later ones are resumptions);
 * - `event`: a delivered event;
 * - `progress`: a progress notification (every event up to `revision` was delivered);
 * - `compacted`: the watch from `fromRevision` was refused COMPACTED naming `oldestRevision`.
 */
export type WatchItem = { kind: 'open'; fromRevision: number } | { kind: 'event'; event: WatchEvent } | { kind: 'progress'; revision: number } | { kind: 'compacted'; fromRevision: number; oldestRevision: number };

/** One watcher's stream. `throughRevision`: the watcher claims to have seen everything up to it (e.g. it waited for an end marker); omitted = only what its items claim. */
export interface WatchStream {
  watcherId: number;
  range: WatchRange;
  items: WatchItem[];
  throughRevision?: number;
}

export interface WatchCheckOptions {
  /** The cluster retained every revision from this one on (default: the committed history's firstRevision): COMPACTED for a revision ≥ it is a violation. */
  oldestRetainedRevision?: number;
}

/** One broken property, with the stream and the item index where it showed (-1: at the end). */
export interface WatchViolation {
  watcherId: number;
  itemIndex: number;
  message: string;
}

export interface WatchCheckResult {
  ok: boolean;
  streams: number;
  /** Events delivered, over all streams. */
  events: number;
  /** Resumptions (an `open` after the first), over all streams. */
  resumptions: number;
  violations: WatchViolation[];
}

/** Thrown for a malformed committed history (not in revision order, a key twice in one revision, a delete with a value). */
export class WatchHistoryError extends Error {
  readonly code = 'WATCH_HISTORY_INVALID';
  constructor(message: string) {
    super(message);
    this.name = 'WatchHistoryError';
  }
}

/** Whether `key` is in `range`. */
export function inWatchRange(range: WatchRange, key: string): boolean {
  if ('key' in range) return key === range.key;
  if ('prefix' in range) return key.startsWith(range.prefix);
  return key >= range.start && key < range.end;
}

/**
 * The events of a committed history given as revision-ordered puts and deletes from revision 1 (an
 * empty store before): a put's create revision and version as etcd's mvcc keeps them (a new key:
 * this revision and 1; else the same create revision and version + 1); a delete of an absent key is
 * no event (etcd, Redis, docs/watch.md "Event source").
 * @throws WatchHistoryError when revisions decrease or a key is written twice in one revision.
 */
export function committedHistory(writes: readonly CommittedWrite[], lastRevision?: number): CommittedHistory {
  const live = new Map<string, { createRevision: number; version: number }>();
  const events: WatchEvent[] = [];
  let rev = 0;
  let keysAtRev = new Set<string>();
  for (const [i, w] of writes.entries()) {
    if (!Number.isSafeInteger(w.revision) || w.revision < 1 || w.revision < rev) throw new WatchHistoryError(`write ${i}: revision ${w.revision} after ${rev}`);
    if (w.revision !== rev) keysAtRev = new Set();
    if (keysAtRev.has(w.key)) throw new WatchHistoryError(`write ${i}: key ${JSON.stringify(w.key)} twice at revision ${w.revision}`);
    keysAtRev.add(w.key);
    rev = w.revision;
    const was = live.get(w.key);
    if (w.type === 'delete') {
      if (!was) continue;
      live.delete(w.key);
      events.push({ type: 'delete', key: w.key, value: '', modRevision: rev, createRevision: 0, version: 0 });
      continue;
    }
    if (typeof w.value !== 'string') throw new WatchHistoryError(`write ${i}: a put needs a value`);
    const now = was ? { createRevision: was.createRevision, version: was.version + 1 } : { createRevision: rev, version: 1 };
    live.set(w.key, now);
    events.push({ type: 'put', key: w.key, value: w.value, modRevision: rev, ...now });
  }
  return { firstRevision: 1, lastRevision: Math.max(rev, lastRevision ?? 0), events };
}

/**
 * Checks that a committed history given as events (e.g. a reference watch read after the run) is
 * consistent with itself: revision order, one event per key and revision, and per key the create
 * revisions and versions etcd's mvcc would give (a key first seen with a create revision below
 * `firstRevision` existed before the history starts; a delete only of a key that exists).
 * @returns the violations (watcherId -1), empty when consistent.
 */
export function checkCommittedHistory(h: CommittedHistory): WatchViolation[] {
  const out: WatchViolation[] = [];
  const bad = (i: number, message: string) => out.push({ watcherId: -1, itemIndex: i, message });
  // undefined: not seen yet (state unknown before firstRevision); null: absent
  const live = new Map<string, { createRevision: number; version: number } | null>();
  let rev = h.firstRevision - 1;
  let keysAtRev = new Set<string>();
  for (const [i, e] of h.events.entries()) {
    if (e.modRevision < rev || e.modRevision < h.firstRevision || e.modRevision > h.lastRevision) bad(i, `event at revision ${e.modRevision} out of order (after ${rev}, history [${h.firstRevision}, ${h.lastRevision}])`);
    if (e.modRevision !== rev) keysAtRev = new Set();
    if (keysAtRev.has(e.key)) bad(i, `key ${JSON.stringify(e.key)} has two events at revision ${e.modRevision}`);
    keysAtRev.add(e.key);
    rev = Math.max(rev, e.modRevision);
    const was = live.get(e.key);
    if (e.type === 'delete') {
      if (was === null) bad(i, `delete of ${JSON.stringify(e.key)} at revision ${e.modRevision}, which does not exist then`);
      if (e.createRevision !== 0 || e.version !== 0) bad(i, `delete of ${JSON.stringify(e.key)} at revision ${e.modRevision} with create revision ${e.createRevision}, version ${e.version} (want 0, 0)`);
      live.set(e.key, null);
      continue;
    }
    const want = was ? { createRevision: was.createRevision, version: was.version + 1 } : was === null || e.createRevision >= h.firstRevision ? { createRevision: e.modRevision, version: 1 } : { createRevision: e.createRevision, version: e.version };
    if (e.createRevision !== want.createRevision || e.version !== want.version) bad(i, `put of ${JSON.stringify(e.key)} at revision ${e.modRevision} has create revision ${e.createRevision}, version ${e.version}; the history gives ${want.createRevision}, ${want.version}`);
    live.set(e.key, want);
  }
  return out;
}

/** Checks every stream against `committed` (see `checkWatchStream`). */
export function checkWatchStreams(committed: CommittedHistory, streams: readonly WatchStream[], options: WatchCheckOptions = {}): WatchCheckResult {
  const violations: WatchViolation[] = [];
  let events = 0;
  let resumptions = 0;
  for (const s of streams) {
    violations.push(...checkWatchStream(committed, s, options));
    events += s.items.filter((it) => it.kind === 'event').length;
    resumptions += Math.max(0, s.items.filter((it) => it.kind === 'open').length - 1);
  }
  return { ok: violations.length === 0, streams: streams.length, events, resumptions, violations };
}

/** Violations listed per stream; beyond, one line counts the rest (a stream that lost everything would list every event). */
const STREAM_VIOLATIONS_MAX = 20;
const eventId = (e: { modRevision: number; key: string }) => `${e.modRevision}\u0000${e.key}`;
const show = (e: WatchEvent) => `${e.type} ${JSON.stringify(e.key)}${e.type === 'put' ? ` = ${JSON.stringify(e.value)}` : ''} at revision ${e.modRevision} (create ${e.createRevision}, version ${e.version})`;

/**
 * One watcher's stream against the committed history. Violations (each reported once per stream,
 * the first of its kind at an item): an event that is not committed, or differs from the committed
 * one, or lies outside the range or below the revision the watch was (re)opened from; an event
 * delivered twice (across resumptions too); an event out of revision order; a gap — a committed
 * matching event below a delivered event's revision, or at most a progress notification's revision,
 * or at most `throughRevision`, that was not delivered before; COMPACTED for a revision the cluster
 * retained, or naming an oldest revision not above the one asked; a resumption that skips
 * revisions not seen (unless after COMPACTED, which may skip to the oldest revision).
 * @throws WatchHistoryError when the stream does not start with `open`.
 */
export function checkWatchStream(committed: CommittedHistory, stream: WatchStream, options: WatchCheckOptions = {}): WatchViolation[] {
  if (stream.items[0]?.kind !== 'open') throw new WatchHistoryError(`watcher ${stream.watcherId}: a stream starts with an open item`);
  const check = new StreamCheck(committed, stream, options.oldestRetainedRevision ?? committed.firstRevision);
  for (const [i, it] of stream.items.entries()) {
    if (it.kind === 'open') check.open(it.fromRevision, i);
    else if (it.kind === 'compacted') check.compacted(it, i);
    else if (it.kind === 'progress') check.progress(it.revision, i);
    else check.event(it.event, i);
  }
  return check.end();
}

/** The state of one stream's check as its items are read in order (checkWatchStream). */
class StreamCheck {
  private readonly byId: Map<string, WatchEvent>;
  private readonly matching: WatchEvent[];
  private readonly out: WatchViolation[] = [];
  private more = 0;
  private readonly delivered = new Set<string>();
  /** The revision the current opening started from; every revision below `claimed` + 1 must be delivered. */
  private openedFrom = 0;
  private claimed = 0;
  private lastRevision = 0;
  /** Gaps are measured from here: the first opening's revision, or where a post-COMPACTED opening jumped to. */
  private gapFloor = 0;
  /** Index into `matching` of the first event not yet required delivered. */
  private p = 0;
  private afterCompacted = false;

  constructor(
    private readonly committed: CommittedHistory,
    private readonly stream: WatchStream,
    private readonly oldestRetained: number,
  ) {
    this.byId = new Map(committed.events.map((e) => [eventId(e), e]));
    this.matching = committed.events.filter((e) => inWatchRange(stream.range, e.key));
  }

  open(fromRevision: number, i: number): void {
    // A resumption from the last revision seen + 1 is right: frames (and so the client's `next`) hold whole revisions.
    const seen = Math.max(this.claimed, this.lastRevision);
    if (i === 0) this.gapFloor = fromRevision;
    else if (fromRevision > seen + 1 && !this.afterCompacted) this.bad(i, `resumed from revision ${fromRevision}, skipping ${seen + 1}..${fromRevision - 1}`);
    else if (this.afterCompacted && fromRevision > seen + 1) {
      this.gapFloor = fromRevision;
      this.claimed = fromRevision - 1;
      for (; this.p < this.matching.length && this.matching[this.p]!.modRevision < fromRevision; this.p++);
    }
    if (i === 0) this.claimed = fromRevision - 1;
    this.openedFrom = fromRevision;
    this.afterCompacted = false;
  }

  compacted(it: { fromRevision: number; oldestRevision: number }, i: number): void {
    if (it.fromRevision >= this.oldestRetained) this.bad(i, `COMPACTED for revision ${it.fromRevision}, but the cluster retained every revision from ${this.oldestRetained}`);
    if (it.oldestRevision <= it.fromRevision) this.bad(i, `COMPACTED for revision ${it.fromRevision} names oldest revision ${it.oldestRevision}, not above it`);
    this.afterCompacted = true;
  }

  progress(revision: number, i: number): void {
    this.requireThrough(revision, i, `the progress notification at revision ${revision}`);
    this.claimed = Math.max(this.claimed, revision);
  }

  event(e: WatchEvent, i: number): void {
    const id = eventId(e);
    const want = this.byId.get(id);
    if (this.delivered.has(id)) return void this.bad(i, `duplicate: ${show(e)} delivered again`);
    if (e.modRevision < this.openedFrom) this.bad(i, `${show(e)} is below revision ${this.openedFrom}, which the watch was opened from`);
    if (e.modRevision < this.lastRevision) this.bad(i, `out of order: ${show(e)} after an event at revision ${this.lastRevision}`);
    else if (e.modRevision <= this.claimed && e.modRevision >= this.gapFloor && this.lastRevision < e.modRevision) this.bad(i, `${show(e)} arrives after revision ${this.claimed} was claimed complete`);
    if (!inWatchRange(this.stream.range, e.key)) this.bad(i, `${show(e)} is outside the watched range ${JSON.stringify(this.stream.range)}`);
    if (!want) {
      if (e.modRevision >= this.committed.firstRevision && e.modRevision <= this.committed.lastRevision) this.bad(i, `${show(e)} was never committed`);
    } else if (want.type !== e.type || want.value !== e.value || want.createRevision !== e.createRevision || want.version !== e.version) {
      this.bad(i, `${show(e)} differs from the committed ${show(want)}`);
    }
    this.delivered.add(id);
    if (e.modRevision > this.lastRevision) this.requireThrough(e.modRevision - 1, i, show(e));
    this.lastRevision = Math.max(this.lastRevision, e.modRevision);
    this.claimed = Math.max(this.claimed, e.modRevision - 1);
  }

  /** The violations, after the stream's `throughRevision` claim is checked. */
  end(): WatchViolation[] {
    const through = this.stream.throughRevision;
    if (through !== undefined) this.requireThrough(through, -1, `the end of the stream (seen through revision ${through})`);
    if (this.more > 0) this.out.push({ watcherId: this.stream.watcherId, itemIndex: -1, message: `${this.more} more violations not listed (${STREAM_VIOLATIONS_MAX} per stream)` });
    return this.out;
  }

  private bad(itemIndex: number, message: string): void {
    if (this.out.length < STREAM_VIOLATIONS_MAX) this.out.push({ watcherId: this.stream.watcherId, itemIndex, message });
    else this.more++;
  }

  private requireThrough(rev: number, itemIndex: number, why: string): void {
    // Each missing event is reported once: the pointer moves past it.
    for (; this.p < this.matching.length && this.matching[this.p]!.modRevision <= rev; this.p++) {
      const e = this.matching[this.p]!;
      if (e.modRevision >= this.gapFloor && !this.delivered.has(eventId(e))) this.bad(itemIndex, `gap: ${show(e)} was not delivered before ${why}`);
    }
  }
}

/** A client's write with what it learned of it (put and delete answers carry the revision). */
export interface WriteOutcome {
  type: 'put' | 'delete';
  key: string;
  value?: string;
  /** ok = acknowledged at `revision`; fail = definitely not applied; info = unknown. */
  outcome: 'ok' | 'fail' | 'info';
  revision?: number;
}

/**
 * The committed history against what the writers saw (values unique per write): every
 * acknowledged put is the committed put of its key at its revision; an acknowledged delete has no
 * put of its key at its revision; a failed put's value was never committed; every committed put's
 * value was written by a put of that key that did not fail, and is committed once (a write applied
 * twice would show twice). Writes with revisions outside [firstRevision, lastRevision] are skipped.
 * @returns the violations (watcherId -1).
 */
export function checkWritesCommitted(h: CommittedHistory, writes: readonly WriteOutcome[]): WatchViolation[] {
  const out: WatchViolation[] = [];
  const bad = (i: number, message: string) => out.push({ watcherId: -1, itemIndex: i, message });
  const byId = new Map(h.events.map((e) => [eventId(e), e]));
  const putValues = new Map<string, WatchEvent>();
  for (const [i, e] of h.events.entries()) {
    if (e.type !== 'put') continue;
    const v = `${e.key}\u0000${e.value}`;
    const twice = putValues.get(v);
    if (twice) bad(i, `${show(e)} commits the value of ${show(twice)} again`);
    putValues.set(v, e);
  }
  const written = new Set<string>();
  for (const [i, w] of writes.entries()) {
    if (w.type === 'put' && w.outcome !== 'fail') written.add(`${w.key}\u0000${w.value}`);
    if (w.type === 'put' && w.outcome === 'fail' && putValues.has(`${w.key}\u0000${w.value}`)) bad(i, `a failed put of ${JSON.stringify(w.key)} = ${JSON.stringify(w.value)} was committed: ${show(putValues.get(`${w.key}\u0000${w.value}`)!)}`);
    if (w.outcome !== 'ok' || w.revision === undefined || w.revision < h.firstRevision || w.revision > h.lastRevision) continue;
    const at = byId.get(eventId({ modRevision: w.revision, key: w.key }));
    if (w.type === 'put' && (at?.type !== 'put' || at.value !== w.value)) bad(i, `put ${JSON.stringify(w.key)} = ${JSON.stringify(w.value)} acknowledged at revision ${w.revision}, but the history has ${at ? show(at) : 'no event of the key'} there`);
    if (w.type === 'delete' && at?.type === 'put') bad(i, `delete ${JSON.stringify(w.key)} acknowledged at revision ${w.revision}, but the history has ${show(at)} there`);
  }
  for (const [i, e] of h.events.entries()) if (e.type === 'put' && !written.has(`${e.key}\u0000${e.value}`)) bad(i, `${show(e)}: no writer wrote this value (or its put failed)`);
  return out;
}

/** A report: the verdict line, then each violation. */
export function formatWatchCheckResult(r: WatchCheckResult): string {
  const lines = [`watch streams ${r.ok ? 'consistent' : 'NOT consistent'}: ${r.streams} streams, ${r.events} events, ${r.resumptions} resumptions, ${r.violations.length} violations`];
  for (const v of r.violations) lines.push(`${v.watcherId < 0 ? 'history' : `watcher ${v.watcherId}`}${v.itemIndex >= 0 ? ` item ${v.itemIndex}` : ''}: ${v.message}`);
  return lines.join('\n');
}
