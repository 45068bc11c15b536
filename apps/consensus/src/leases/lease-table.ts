import type { LeaseStateContent } from '@cairn/log';
import { SnapshotMap, type SnapshotReader } from './snapshot-map';
import { CommandOp, RevokeCause, peekCommandMeta, peekCommandOp, decodeExpire, keptExpiry, decodeLeaseGrant, decodeLeaseRevoke, encodeLeaseRevoke, expireHolds, decodeU64Operand, encodeU64Operand, type Command } from '@cairn/protocol';

/** Bounds of a LeaseTable (docs/leases.md "Leader lease table"). */
export interface LeaseTableOptions {
  /** Live leases at most; a grant beyond is refused before it is proposed (`canGrant`). */
  leasesMax: number;
  /** Key expiries tracked at most; a key beyond is not tracked here (it is still hidden from reads once expired: storage nodes check its expiry). */
  ttlKeysMax: number;
  /** Revoke/ExpireKey commands one `due` call returns at most (etcd bounds its revoke rate the same way). */
  expiriesPerCheckMax: number;
  /** Wait before the same lease or key is proposed for expiry again (its earlier proposal may have been lost with a leadership change), ms. */
  expiryRetryMs: number;
}

/** What a LeaseTable holds besides the leader's deadlines: what survives a restart (@cairn/log LeaseStateFile). */
export type LeaseTableContent = LeaseStateContent;

/**
 * A copy-on-write view of a LeaseTable's content at one instant (`LeaseTable.snapshot`): leases
 * as `[leaseId, ttlMs]`, tracked keys as `[key (latin1), expiresAtMs]`, read in slices while the
 * table keeps changing. `end()` when done.
 */
export interface LeaseTableSnapshot {
  leases: SnapshotReader<number>;
  keys: SnapshotReader<string>;
  end(): void;
}

interface LeaseState {
  /** SnapshotMap's insertion sequence. */
  seq: number;
  /** Never changes once granted (what a snapshot saves). */
  ttlMs: number;
  /** When the leader expires it (ms, leader's clock); null while this replica is not the leader. */
  deadlineMs: number | null;
  /** When this leader last proposed its revoke (0: never); retried after expiryRetryMs. */
  proposedAtMs: number;
}

interface KeyExpiry {
  /** SnapshotMap's insertion sequence. */
  seq: number;
  /** What a snapshot saves: change it only after `keys.touch`. */
  expiresAtMs: number;
  proposedAtMs: number;
}

/** A grant refused before it is proposed. */
export class LeaseLimitError extends Error {
  readonly code = 'LEASE_LIMIT';
}

/**
 * The Raft leader's view of leases and key expiries (docs/leases.md): every replica keeps it from
 * the committed commands in log order (`applyCommitted`), so whichever becomes leader has it, but
 * only the leader holds deadlines and decides expiry; storage nodes never expire on their own
 * clocks. On promotion every live lease gets `now + ttl + electionTimeout` (etcd's Promote with
 * extend = election timeout), so a failover never expires a lease whose keep-alives were
 * acknowledged in time by the old leader. A keep-alive sets `now + ttl` (etcd LeaseKeepAlive).
 * An expired lease or key becomes a LeaseRevoke / ExpireKey command for the leader to propose;
 * it is gone from this table only when that command commits. No clock is read here: times are
 * parameters.
 */
export class LeaseTable {
  private leases = new SnapshotMap<number, LeaseState>((l) => l.ttlMs);
  private keys = new SnapshotMap<string, KeyExpiry>((e) => e.expiresAtMs);
  private leader = false;

  constructor(private readonly opts: LeaseTableOptions) {
    for (const [name, v] of Object.entries(opts)) if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, got ${v}`);
  }

  get leaseCount(): number {
    return this.leases.size;
  }

  get trackedKeyCount(): number {
    return this.keys.size;
  }

  /**
   * Whether folding the committed command in `data` (an entry's encoded Command) can change the
   * table, read from its op byte alone: false for a plain Set (no META) or Delete while no key
   * expiry is tracked (they only clear a tracked expiry) and for the ops the table ignores (Incr,
   * Txn, auth). Unreadable bytes: true (applyCommitted's caller decodes and skips them). Lets a
   * replica skip decoding the bulk of an import (every replica folds every entry).
   */
  mayChange(data: Uint8Array): boolean {
    switch (peekCommandOp(data)) {
      case CommandOp.Set:
        return this.keys.size > 0 || peekCommandMeta(data);
      case CommandOp.Delete:
        return this.keys.size > 0;
      case CommandOp.LeaseGrant:
      case CommandOp.LeaseRevoke:
      case CommandOp.Expire:
      case CommandOp.ExpireKey:
      case null:
        return true;
      default:
        return false;
    }
  }

  /** Folds one committed command in (log order). `nowMs`: the leader's clock, for a grant's first deadline. */
  applyCommitted(c: Command, nowMs: number): void {
    switch (c.op) {
      case CommandOp.LeaseGrant: {
        const g = decodeLeaseGrant(c.value);
        // A grant of an existing lease is refused by every storage node alike: no change.
        if (!this.leases.has(g.leaseId)) this.leases.add(g.leaseId, { seq: 0, ttlMs: g.ttlMs, deadlineMs: this.leader ? nowMs + g.ttlMs : null, proposedAtMs: 0 });
        return;
      }
      case CommandOp.LeaseRevoke:
        this.leases.delete(decodeLeaseRevoke(c.value).leaseId);
        return;
      case CommandOp.Set:
        // KEEPTTL: expiresAtMs is the proposer's clock; an expiry that passed is not kept (the storage nodes' rule).
        if (!c.meta?.keepTtl) this.setKeyExpiry(c.key, c.meta?.expiresAtMs ?? 0);
        else if (keptExpiry(this.keys.get(latin1(c.key))?.expiresAtMs ?? 0, c.meta.expiresAtMs) === 0) this.setKeyExpiry(c.key, 0);
        return;
      case CommandOp.Delete:
        this.setKeyExpiry(c.key, 0);
        return;
      case CommandOp.Expire: {
        // The storage nodes' rule on the expiry this table holds (0 when untracked): the same keys change the same way.
        const e = decodeExpire(c.value);
        if (expireHolds(e, this.keys.get(latin1(c.key))?.expiresAtMs ?? 0)) this.setKeyExpiry(c.key, e.expiresAtMs);
        return;
      }
      case CommandOp.ExpireKey: {
        const k = latin1(c.key);
        if (this.keys.get(k)?.expiresAtMs === decodeU64Operand(c.value)) this.keys.delete(k);
        return;
      }
      default:
      // Incr keeps a key's expiry (Redis INCR); other ops do not touch leases or keys' expiries.
    }
  }

  /** The table's content without the leader's deadlines (the lease-state file, @cairn/log LeaseStateFile): leases by id, tracked key expiries. */
  content(): LeaseTableContent {
    return {
      leases: [...this.leases.entries()].map(([leaseId, l]) => ({ leaseId, ttlMs: l.ttlMs })),
      keys: [...this.keys.entries()].map(([k, e]) => ({ key: Buffer.from(k, 'latin1'), expiresAtMs: e.expiresAtMs })),
    };
  }

  /**
   * The content as of now, copy-on-write (O(1) here; the lease-state save reads it in slices in
   * the background while commands keep being folded in). One at a time. @throws when one is open.
   */
  snapshot(): LeaseTableSnapshot {
    const leases = this.leases.snapshot();
    let keys: SnapshotReader<string>;
    try {
      keys = this.keys.snapshot();
    } catch (e) {
      leases.end();
      throw e;
    }
    return {
      leases,
      keys,
      end: () => {
        leases.end();
        keys.end();
      },
    };
  }

  /**
   * Replaces the content with `c` (a replica's start, from its lease-state file, before any
   * command is folded in). Deadlines as on a follower: none until `promote`. Keys beyond
   * ttlKeysMax are left untracked, as `applyCommitted` leaves them.
   */
  restore(c: LeaseTableContent): void {
    if (this.leader) throw new Error('LeaseTableRestoredOnLeader: restore runs before the replica can lead');
    this.leases.clear();
    this.keys.clear();
    this.restoreMore(c);
  }

  /** Adds `c` to the content (a table being decoded chunk by chunk, lease-state-transfer.ts); as `restore` without the clearing. */
  restoreMore(c: LeaseTableContent): void {
    for (const l of c.leases) this.leases.add(l.leaseId, { seq: 0, ttlMs: l.ttlMs, deadlineMs: null, proposedAtMs: 0 });
    for (const k of c.keys) this.setKeyExpiry(k.key, k.expiresAtMs);
  }

  /**
   * Takes `other`'s content in place of its own (O(1): the maps move; `other` must not be used
   * again): a table fetched from a peer after a snapshot install. A leader gives every lease the
   * deadline of a promotion (`now + ttl + electionTimeoutMs`); a snapshot being read by a save keeps
   * reading the old content.
   */
  adopt(other: LeaseTable, nowMs: number, electionTimeoutMs: number): void {
    this.leases = other.leases;
    this.keys = other.keys;
    if (this.leader) this.promote(nowMs, electionTimeoutMs);
  }

  /** This replica became leader: every live lease's deadline is `now + ttl + electionTimeoutMs` (etcd Promote). */
  promote(nowMs: number, electionTimeoutMs: number): void {
    this.leader = true;
    for (const l of this.leases.values()) {
      l.deadlineMs = nowMs + l.ttlMs + electionTimeoutMs;
      l.proposedAtMs = 0;
    }
    for (const k of this.keys.values()) k.proposedAtMs = 0;
  }

  /** This replica is no longer leader: no deadlines (etcd Demote). */
  demote(): void {
    this.leader = false;
    for (const l of this.leases.values()) l.deadlineMs = null;
  }

  /** Why a proposal holding a LeaseGrant is refused before it is proposed (leasesMax leases live), or null. */
  refuseGrants(commands: readonly Command[]): string | null {
    if (!commands.some((c) => c.op === CommandOp.LeaseGrant)) return null;
    try {
      this.checkGrant();
      return null;
    } catch (e) {
      return (e as LeaseLimitError).message;
    }
  }

  /** @throws LeaseLimitError when leasesMax leases are live (a grant is checked before it is proposed). */
  checkGrant(): void {
    if (this.leases.size >= this.opts.leasesMax) throw new LeaseLimitError(`${this.leases.size} leases are live (consensus.leasesMax = ${this.opts.leasesMax})`);
  }

  /**
   * Leader only: renews `leaseId` to `now + ttl`; its TTL in ms, or null when it is not live (etcd:
   * lease not found). A lease past its deadline is not live even before its revoke commits (etcd's
   * Renew of an expired lease waits for the revoke): renewing it would acknowledge a keep-alive
   * while the revoke proposed (or about to be) deletes its keys.
   */
  keepAlive(leaseId: number, nowMs: number): number | null {
    const l = this.leases.get(leaseId);
    if (!l || !this.leader || l.deadlineMs === null || l.deadlineMs <= nowMs) return null;
    l.deadlineMs = nowMs + l.ttlMs;
    return l.ttlMs;
  }

  /** A lease's granted TTL and the ms left before the leader expires it (null remaining when this replica is not leader); null when it is not live. */
  timeToLive(leaseId: number, nowMs: number): { ttlMs: number; remainingMs: number | null } | null {
    const l = this.leases.get(leaseId);
    if (!l) return null;
    return { ttlMs: l.ttlMs, remainingMs: l.deadlineMs === null ? null : Math.max(0, l.deadlineMs - nowMs) };
  }

  /** Live lease ids, ascending. */
  leaseIds(): number[] {
    return [...this.leases.keys()].sort((a, b) => a - b);
  }

  /** One page of live lease ids: those > `afterId`, ascending, at most `limit`; `more` when others follow. */
  leaseIdsAfter(afterId: number, limit: number): { ids: number[]; more: boolean } {
    const after = this.leaseIds().filter((id) => id > afterId);
    return { ids: after.slice(0, limit), more: after.length > limit };
  }

  /**
   * Leader only: the commands that expire what is due at `nowMs` — a LeaseRevoke (cause Expired:
   * its keys' deletes are reported `expired`, not `del`) per lease past its deadline, an ExpireKey per key past its expiry — at most expiriesPerCheckMax, none proposed
   * again within expiryRetryMs. Empty on a follower.
   */
  due(nowMs: number): Command[] {
    const out: Command[] = [];
    if (!this.leader) return out;
    const max = this.opts.expiriesPerCheckMax;
    const retryBefore = nowMs - this.opts.expiryRetryMs;
    for (const [id, l] of this.leases.entries()) {
      if (out.length >= max) return out;
      if (l.deadlineMs === null || l.deadlineMs > nowMs || (l.proposedAtMs !== 0 && l.proposedAtMs > retryBefore)) continue;
      l.proposedAtMs = nowMs;
      out.push({ op: CommandOp.LeaseRevoke, key: EMPTY, value: encodeLeaseRevoke(id, RevokeCause.Expired) });
    }
    for (const [k, e] of this.keys.entries()) {
      if (out.length >= max) return out;
      if (e.expiresAtMs > nowMs || (e.proposedAtMs !== 0 && e.proposedAtMs > retryBefore)) continue;
      e.proposedAtMs = nowMs;
      out.push({ op: CommandOp.ExpireKey, key: Buffer.from(k, 'latin1'), value: encodeU64Operand(e.expiresAtMs) });
    }
    return out;
  }

  private setKeyExpiry(key: Uint8Array, expiresAtMs: number): void {
    const k = latin1(key);
    if (expiresAtMs === 0) {
      this.keys.delete(k);
      return;
    }
    const e = this.keys.get(k);
    if (e) {
      this.keys.touch(k);
      e.expiresAtMs = expiresAtMs;
      e.proposedAtMs = 0;
    } else if (this.keys.size < this.opts.ttlKeysMax) {
      this.keys.add(k, { seq: 0, expiresAtMs, proposedAtMs: 0 });
    }
  }
}

const EMPTY = Buffer.alloc(0);
const latin1 = (k: Uint8Array): string => Buffer.from(k.buffer, k.byteOffset, k.byteLength).toString('latin1');
