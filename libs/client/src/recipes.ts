/**
 * Coordination recipes on leases, conditional writes and watch (docs/recipes.md; the semantics of
 * etcd client/v3/concurrency Mutex and Election, built differently): a lock with a fencing token
 * and a leader election. Every contender writes ONE key `name/<leaseId, hex>` attached to its own
 * lease, and the oldest key (lowest create revision) holds: a holder or waiter that stops renewing
 * (crash, pause, partition) loses its place one TTL later without anyone's help.
 */
import { AbortError, CandidatesMaxError, LeaseLostError } from './errors';
import type { GetResult, LeaseGrantResult, RangeItem, RangePage, RangeReadOptions, RequestOptions, SetOptions, SetResult } from './commands';
import type { KeepAliveOptions } from './lease-keeper';
import { compare } from './txn';
import type { ClientWatchOptions, WatchItem } from './watch';
import type { TxnCompare } from '@cairn/protocol';

/** What the recipes need of a client: CairnClient and CairnPool both are one. */
export interface RecipeClient {
  leaseGrant(ttlMs: number, opts?: RequestOptions): Promise<LeaseGrantResult>;
  leaseRevoke(leaseId: number, opts?: RequestOptions): Promise<{ revision: number }>;
  keepAlive(leaseId: number, opts?: KeepAliveOptions): { readonly closed: Promise<void>; stop(): void };
  set(key: string | Uint8Array, value: string | Uint8Array, opts?: SetOptions): Promise<SetResult>;
  get(key: string | Uint8Array, opts?: RequestOptions): Promise<GetResult | null>;
  range(opts: RangeReadOptions): Promise<RangePage>;
  watch(opts: ClientWatchOptions): AsyncGenerator<WatchItem, void, undefined>;
}

/** Options of `lock` and `campaign`. */
export interface HoldOptions {
  /** The holder's lease TTL, seconds (> 0; fractions allowed, at least 1 ms): how long after its last acknowledged renewal a silent holder loses the key. */
  ttlSec: number;
  /**
   * While acquiring: aborting rejects with AbortError and revokes the lease granted. Once held:
   * aborting stops the keep-alive only, as a process that stopped would: the key goes when the
   * lease expires, one TTL later (call `release()` to free it at once).
   */
  signal?: AbortSignal;
}

/**
 * A held lock or leadership: `fencingToken` is the holder's key's create revision, strictly
 * greater than that of every earlier holder of the same name (revisions only grow, and a holder
 * holds only once every older key under the name is gone).
 */
export interface Held {
  /** The holder's key: `name/<leaseId, hex>`. */
  readonly key: string;
  /** The lease the key is attached to. */
  readonly leaseId: number;
  /** The key's create revision (the Raft index that created it): the fencing token. */
  readonly fencingToken: bigint;
  /** Aborted when the hold ended: released, the signal aborted, or the lease lost (reason: LeaseLostError). */
  readonly signal: AbortSignal;
  /** Resolves on release / abort; rejects with LeaseLostError when the lease was lost (expired or revoked by another). */
  readonly lost: Promise<void>;
  /**
   * The compare that guards a write with this hold (etcd's `Mutex.IsOwner()`): holds only while
   * the key still has this create revision, so a txn of a holder that lost the key is refused.
   */
  guard(): TxnCompare;
  /** Stops the keep-alive and revokes the lease: the key is deleted at once. Idempotent; a lease already gone is not an error. */
  release(opts?: RequestOptions): Promise<void>;
}

/**
 * Acquires the lock `name` (etcd concurrency.Mutex.Lock): grants a lease of `ttlSec`, keeps it
 * alive, and enqueues this contender as the key `name/<leaseId, hex>` (SET IF_ABSENT + LEASE; its
 * create revision is the fencing token). The contender whose key has the lowest create revision
 * under `name/` holds the lock: a waiter watches only the key with the greatest create revision
 * below its own for its delete (etcd waitDeletes), then looks again, so a release wakes one waiter,
 * not all. Lock names must not nest (`a` and `a/b`): `a`'s queue is every key under `a/`.
 * @throws AbortError when `signal` aborts first (the lease is revoked, its key with it);
 * LeaseLostError when our lease (or key) is lost while waiting; RangeError on a bad `ttlSec`; the
 * client's errors of a request.
 */
export function lock(client: RecipeClient, name: string, opts: HoldOptions): Promise<Held> {
  return acquire(client, name, '', opts);
}

/**
 * Campaigns for leadership of `election` (etcd concurrency.Election.Campaign): as `lock`, with
 * `value` (e.g. the candidate's address) as the value of the candidate's key `election/<leaseId,
 * hex>`. Resolves once this candidate is the leader (its key the oldest under `election/`);
 * `fencingToken` orders leaderships as it orders locks. Observe the leader with `observeLeader`.
 * @throws as `lock`.
 */
export function campaign(client: RecipeClient, election: string, value: string, opts: HoldOptions): Promise<Held> {
  return acquire(client, election, value, opts);
}

/** One observation of an election: the leader's key, value and fencing token, or null when there is none. */
export type LeaderObservation = { key: Buffer; value: Buffer; fencingToken: bigint } | null;

/**
 * The leaders of `election`, as they change (etcd concurrency.Election.Observe): the current one
 * (the key with the lowest create revision under `election/`, or null), then each new leader or
 * leader value; null when no candidate is left. It scans the candidates with RANGE pages and
 * watches `election/` from the first page's revision + 1, applying to each key only the events
 * after the revision its page was read at: a leader that comes between the read and the watch is
 * not missed, and no event is counted twice. A scan of several pages is not one instant, so the
 * first observation then waits until the watch has passed the last page's revision.
 * Holds one entry per candidate (key, value, create revision), at most `candidatesMax` /
 * `candidateBytesMax`. Ends with AbortError when `signal` aborts; CandidatesMaxError past a
 * bound; the watch's errors (WatchCompactedError, WatchSlowError).
 */
export async function* observeLeader(client: RecipeClient, election: string, opts: ObserveOptions = {}): AsyncGenerator<LeaderObservation, void, undefined> {
  const queue = new Candidates(opts.candidatesMax ?? CANDIDATES_MAX_DEFAULT, opts.candidateBytesMax ?? CANDIDATE_BYTES_MAX_DEFAULT);
  const scan = await scanQueue(client, `${election}/`, opts.signal, false, (it) => queue.put(it.key, it.value, it.createRevision));
  let caughtUp = scan.firstRevision === scan.lastRevision;
  let shown: LeaderObservation | undefined;
  const changed = (): boolean => {
    const now = queue.leader();
    if (shown !== undefined && sameLeader(now, shown)) return false;
    shown = now;
    return true;
  };
  if (caughtUp && changed()) yield shown!;
  for await (const ev of client.watch({ prefix: `${election}/`, startRevision: scan.firstRevision + 1, progress: !caughtUp, signal: opts.signal })) {
    if (ev.type !== 'progress' && ev.modRevision > scan.revisionOf(ev.key)) {
      if (ev.type === 'put') queue.put(ev.key, ev.value, ev.createRevision);
      else queue.delete(ev.key);
    }
    if (!caughtUp) {
      if ((ev.type === 'progress' ? ev.revision : ev.modRevision) < scan.lastRevision) continue;
      caughtUp = true;
    }
    if (changed()) yield shown!;
  }
}

/** Options of `observeLeader`. */
export interface ObserveOptions {
  /** Aborting ends the iteration with AbortError and cancels the watch. */
  signal?: AbortSignal;
  /** Candidates followed at most (default 10,000); beyond, CandidatesMaxError. */
  candidatesMax?: number;
  /** Bytes of candidates' keys and values held at most (default 16 MiB); beyond, CandidatesMaxError. */
  candidateBytesMax?: number;
}

const CANDIDATES_MAX_DEFAULT = 10_000;
const CANDIDATE_BYTES_MAX_DEFAULT = 16 * 1024 * 1024;

interface Candidate {
  key: Buffer;
  value: Buffer;
  createRevision: number;
}

/** The candidates of an election as an observer follows them, bounded in count and bytes. */
class Candidates {
  private readonly byKey = new Map<string, Candidate>();
  private bytes = 0;

  constructor(
    private readonly countMax: number,
    private readonly bytesMax: number,
  ) {}

  /** @throws CandidatesMaxError past either bound. */
  put(key: Uint8Array, value: Uint8Array, createRevision: number): void {
    this.delete(key);
    const c = { key: Buffer.from(key), value: Buffer.from(value), createRevision };
    this.byKey.set(c.key.toString('hex'), c);
    this.bytes += c.key.length + c.value.length;
    if (this.byKey.size > this.countMax) throw new CandidatesMaxError(`more than candidatesMax ${this.countMax} candidates`);
    if (this.bytes > this.bytesMax) throw new CandidatesMaxError(`candidates' keys and values over candidateBytesMax ${this.bytesMax} bytes`);
  }

  delete(key: Uint8Array): void {
    const hex = Buffer.from(key).toString('hex');
    const c = this.byKey.get(hex);
    if (!c) return;
    this.byKey.delete(hex);
    this.bytes -= c.key.length + c.value.length;
  }

  /** The candidate with the lowest create revision, or null. */
  leader(): LeaderObservation {
    let first: Candidate | null = null;
    for (const c of this.byKey.values()) if (!first || c.createRevision < first.createRevision) first = c;
    return first ? { key: first.key, value: first.value, fencingToken: BigInt(first.createRevision) } : null;
  }
}

function sameLeader(a: LeaderObservation, b: LeaderObservation): boolean {
  return a === b || (a !== null && b !== null && a.fencingToken === b.fencingToken && a.key.equals(b.key) && a.value.equals(b.value));
}

/** A scan of every key under a prefix, page by page; each page is consistent at its own revision (docs/protocol.md "RANGE"). */
interface QueueScan {
  /** Revision of the first page (the earliest). */
  firstRevision: number;
  /** Revision of the last page. */
  lastRevision: number;
  /** The revision `key` was read at: that of the page whose key span holds it. */
  revisionOf(key: Uint8Array): number;
}

/** Hands each key under `prefix` to `visit` (nothing is kept: memory stays one page). */
async function scanQueue(client: RecipeClient, prefix: string, signal: AbortSignal | undefined, keysOnly: boolean, visit: (item: RangeItem) => void): Promise<QueueScan> {
  const spans: { lastKey: Buffer; revision: number }[] = [];
  let token: Uint8Array | undefined;
  for (;;) {
    const page = await client.range({ prefix, keysOnly, token, signal });
    for (const it of page.items) visit(it);
    if (!page.token) {
      spans.push({ lastKey: Buffer.alloc(0), revision: page.revision }); // the last page spans every key after the one before it
      break;
    }
    spans.push({ lastKey: Buffer.from(page.items[page.items.length - 1].key), revision: page.revision });
    token = page.token;
  }
  const last = spans[spans.length - 1];
  const revisionOf = (key: Uint8Array): number => spans.find((s) => s !== last && Buffer.compare(Buffer.from(key), s.lastKey) <= 0)?.revision ?? last.revision;
  return { firstRevision: spans[0].revision, lastRevision: last.revision, revisionOf };
}

function ttlMsOf(ttlSec: number): number {
  const ms = Math.round(ttlSec * 1000);
  if (!Number.isFinite(ttlSec) || ms < 1) throw new RangeError(`ttlSec must be a positive number of seconds (at least 1 ms), got ${ttlSec}`);
  return ms;
}

function abortError(signal: AbortSignal): AbortError {
  return new AbortError('aborted while acquiring', signal.reason);
}

async function acquire(client: RecipeClient, name: string, value: string, opts: HoldOptions): Promise<Held> {
  const ttlMs = ttlMsOf(opts.ttlSec);
  if (opts.signal?.aborted) throw abortError(opts.signal);
  const { leaseId } = await client.leaseGrant(ttlMs, { signal: opts.signal });
  const ended = new AbortController();
  const keeper = client.keepAlive(leaseId, { signal: ended.signal });
  const lost = keeper.closed.then(
    () => ended.abort(),
    (e: unknown) => {
      ended.abort(e);
      throw e;
    },
  );
  lost.catch(() => undefined);
  const release = async (o?: RequestOptions): Promise<void> => {
    ended.abort();
    await client.leaseRevoke(leaseId, o).catch((e: unknown) => {
      if ((e as { code?: string }).code !== 'LEASE_NOT_FOUND') throw e;
    });
  };
  const key = `${name}/${leaseId.toString(16)}`;
  try {
    const token = await takeTurn(client, name, key, value, leaseId, opts.signal, ended.signal);
    opts.signal?.addEventListener('abort', () => keeper.stop(), { once: true });
    if (opts.signal?.aborted) keeper.stop();
    return { key, leaseId, fencingToken: BigInt(token), signal: ended.signal, lost, guard: () => compare.createRevision(key, '=', token), release };
  } catch (e) {
    const cause = !opts.signal?.aborted && ended.signal.reason instanceof LeaseLostError ? ended.signal.reason : e;
    await release().catch(() => undefined);
    throw cause;
  }
}

/**
 * Enqueues `key` (SET IF_ABSENT + LEASE) and waits until no key under `name/` has a lower create
 * revision (etcd Mutex.Lock: tryAcquire, waitDeletes, then the check that our key is still there).
 * Resolves our key's create revision.
 */
async function takeTurn(client: RecipeClient, name: string, key: string, value: string, leaseId: number, signal: AbortSignal | undefined, ended: AbortSignal): Promise<number> {
  const both = signal ? AbortSignal.any([signal, ended]) : ended;
  const stillOn = (): void => {
    if (signal?.aborted) throw abortError(signal);
    if (ended.aborted) throw ended.reason instanceof LeaseLostError ? ended.reason : new LeaseLostError(leaseId, 'ended while acquiring');
  };
  const token = await enqueue(client, key, value, leaseId, both);
  for (;;) {
    stillOn();
    const { ahead, mine } = await lastAhead(client, `${name}/`, key, token, both);
    stillOn();
    // The scan that finds no key ahead also shows ours (etcd reads it with a Get after waiting): gone means our lease went.
    if (!ahead && !mine) throw new LeaseLostError(leaseId, 'its lock key was deleted while waiting');
    if (!ahead) return token;
    await deleted(client, ahead.key, ahead.revision + 1, both);
  }
}

/** Writes our key; resolves its create revision (when it exists already, a re-sent SET that had applied: its create revision, as etcd's Else branch). */
async function enqueue(client: RecipeClient, key: string, value: string, leaseId: number, signal: AbortSignal): Promise<number> {
  for (;;) {
    const w = await client.set(key, value, { ifAbsent: true, lease: leaseId, signal });
    if (w.applied) return w.revision;
    const kv = await client.get(key, { signal });
    if (kv?.createRevision) return kv.createRevision;
  }
}

/**
 * The key under `prefix` with the greatest create revision below `token` (etcd WithLastCreate +
 * WithMaxCreateRev), with the revision it was seen at (null when none), and whether `key` is there
 * with create revision `token`.
 */
async function lastAhead(client: RecipeClient, prefix: string, key: string, token: number, signal: AbortSignal): Promise<{ ahead: { key: Uint8Array; revision: number } | null; mine: boolean }> {
  const ours = Buffer.from(key);
  const seen: { ahead: RangeItem | null; mine: boolean } = { ahead: null, mine: false };
  const scan = await scanQueue(client, prefix, signal, true, (it) => {
    if (it.createRevision < token && (!seen.ahead || it.createRevision > seen.ahead.createRevision)) seen.ahead = it;
    if (it.createRevision === token && ours.equals(it.key)) seen.mine = true;
  });
  const ahead = seen.ahead;
  return { ahead: ahead ? { key: ahead.key, revision: scan.revisionOf(ahead.key) } : null, mine: seen.mine };
}

/** Resolves when `key` is deleted at a revision >= `fromRevision` (etcd waitDelete). */
async function deleted(client: RecipeClient, key: Uint8Array, fromRevision: number, signal: AbortSignal): Promise<void> {
  try {
    for await (const ev of client.watch({ key, startRevision: fromRevision, signal })) if (ev.type === 'delete') return;
  } catch (e) {
    // Aborted: the loop above says why (our signal, or our lease lost).
    if (!signal.aborted) throw e;
  }
}
