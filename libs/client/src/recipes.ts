/**
 * Coordination recipes on leases, conditional writes and watch (docs/recipes.md; the semantics of
 * etcd client/v3/concurrency Mutex and Election, built differently): a lock with a fencing token
 * and a leader election. Both hold ONE key attached to the holder's lease, so a holder that stops
 * renewing (crash, pause, partition) loses it one TTL later without anyone's help.
 */
import { AbortError, LeaseLostError } from './errors';
import type { GetResult, LeaseGrantResult, RangePage, RangeReadOptions, RequestOptions, SetOptions, SetResult } from './commands';
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
 * A held key (a lock or a leadership): `fencingToken` is the key's create revision, strictly
 * greater than that of every earlier holder of the same key (revisions only grow).
 */
export interface Held {
  /** The key held. */
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
 * alive, and writes `name` → the lease id (decimal) with SET IF_ABSENT + LEASE (create revision 0
 * → put with lease, atomic where applied). When another holds it, watches the holder's key for
 * its delete (a release, or its lease's expiry) and tries again. Every waiter watches the holder
 * (not, as etcd, the next-lower waiter), so a release wakes all of them and one wins: fine for a
 * few contenders, a herd for many.
 * @throws AbortError when `signal` aborts first (the lease is revoked); LeaseLostError when our
 * lease is lost while waiting; RangeError on a bad `ttlSec`; the client's errors of a request.
 */
export function lock(client: RecipeClient, name: string, opts: HoldOptions): Promise<Held> {
  return acquire(client, name, null, opts);
}

/**
 * Campaigns for leadership of `election` (etcd concurrency.Election.Campaign): as `lock`, with
 * `value` (e.g. the candidate's address) as the leader key's value. Resolves once this candidate
 * is the leader; `fencingToken` orders leaderships as it orders locks. Observe the leader with
 * `observeLeader`. @throws as `lock`.
 */
export function campaign(client: RecipeClient, election: string, value: string, opts: HoldOptions): Promise<Held> {
  return acquire(client, election, value, opts);
}

/** One observation of an election: the leader's value and fencing token, or null when there is none. */
export type LeaderObservation = { value: Buffer; fencingToken: bigint } | null;

/**
 * The leaders of `election`, as they change (etcd concurrency.Election.Observe): the current one
 * (or null), then each new value or leader, and null when the leader key is deleted. The current
 * one is read with a RANGE of the one key, consistent at the page's revision R, and the watch
 * starts at R + 1, so a leader that comes between the read and the watch is seen (a GET answers
 * a missing key with no revision, and a watch "from now" starts at what its gateway has applied,
 * which can be older than R). Ends with AbortError when `signal` aborts; the watch's errors
 * (WatchCompactedError, WatchSlowError).
 */
export async function* observeLeader(client: RecipeClient, election: string, opts: { signal?: AbortSignal } = {}): AsyncGenerator<LeaderObservation, void, undefined> {
  const page = await client.range({ start: election, end: `${election}\0`, limit: 1, signal: opts.signal });
  const now = page.items[0];
  yield now ? { value: now.value, fencingToken: BigInt(now.createRevision) } : null;
  for await (const ev of client.watch({ key: election, signal: opts.signal, startRevision: page.revision + 1 })) {
    if (ev.type === 'progress') continue;
    yield ev.type === 'put' ? { value: Buffer.from(ev.value), fencingToken: BigInt(ev.createRevision) } : null;
  }
}

function ttlMsOf(ttlSec: number): number {
  const ms = Math.round(ttlSec * 1000);
  if (!Number.isFinite(ttlSec) || ms < 1) throw new RangeError(`ttlSec must be a positive number of seconds (at least 1 ms), got ${ttlSec}`);
  return ms;
}

function abortError(signal: AbortSignal): AbortError {
  return new AbortError('aborted while acquiring', signal.reason);
}

async function acquire(client: RecipeClient, key: string, value: string | null, opts: HoldOptions): Promise<Held> {
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
  try {
    const token = await takeKey(client, key, value ?? String(leaseId), leaseId, opts.signal, ended.signal);
    opts.signal?.addEventListener('abort', () => keeper.stop(), { once: true });
    if (opts.signal?.aborted) keeper.stop();
    return { key, leaseId, fencingToken: BigInt(token), signal: ended.signal, lost, guard: () => compare.createRevision(key, '=', token), release };
  } catch (e) {
    const cause = !opts.signal?.aborted && ended.signal.reason instanceof LeaseLostError ? ended.signal.reason : e;
    await release().catch(() => undefined);
    throw cause;
  }
}

/** Loops SET IF_ABSENT + LEASE until applied; resolves the key's create revision (the write's). */
async function takeKey(client: RecipeClient, key: string, value: string, leaseId: number, signal: AbortSignal | undefined, ended: AbortSignal): Promise<number> {
  const both = signal ? AbortSignal.any([signal, ended]) : ended;
  for (;;) {
    if (signal?.aborted) throw abortError(signal);
    if (ended.aborted) throw ended.reason instanceof LeaseLostError ? ended.reason : new LeaseLostError(leaseId, 'ended while acquiring');
    const w = await client.set(key, value, { ifAbsent: true, lease: leaseId, signal: both });
    if (w.applied) return w.revision;
    const holder = await client.get(key, { signal: both });
    if (holder) await deleted(client, key, holder.revision + 1, both);
  }
}

/** Resolves when `key` is deleted at a revision >= `fromRevision`. */
async function deleted(client: RecipeClient, key: string, fromRevision: number, signal: AbortSignal): Promise<void> {
  try {
    for await (const ev of client.watch({ key, startRevision: fromRevision, signal })) if (ev.type === 'delete') return;
  } catch (e) {
    // Aborted: the loop above says why (our signal, or our lease lost).
    if (!signal.aborted) throw e;
  }
}
