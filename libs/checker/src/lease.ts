/**
 * Key TTLs and kept-alive leases checked against the reads of them (docs/checker.md "Leases and
 * TTLs"; issue 12), on ONE clock shared by the clients and every server (a simulation's virtual
 * clock, or one host's in a chaos run; across hosts add the deployment's clock-drift bound):
 * - **TTL keys.** A key written once with a TTL: the server stamps its expiry when it executes the
 *   write (Redis EX counts from then; Cairn's gateway stamps it when it decodes the request), some
 *   time between the write's invocation and its acknowledgement, so the key is expired by
 *   `ackMs + ttlMs` at the latest. A read that started at or after that and returned the written
 *   value is a violation (`expired-key-returned`).
 * - **A kept-alive lease** (etcd's guarantee): the leader sets a renewed lease's deadline after the
 *   renewal was sent, so the lease lives at least until the send time of its latest acknowledged
 *   renewal (or grant) plus its TTL (a new leader extends every lease by its election timeout). A
 *   read of one of its keys that ended before that and missed the key is a violation
 *   (`kept-key-missing`), and so is a keep-alive answered "not found" (the lease is gone) before it
 *   (`kept-lease-lost`).
 *
 * Pure: no clock, no I/O; times are ms on the shared clock. Values are strings (a test writes
 * unique values, so a value names its write).
 */

/** An acknowledged write of `key` (written once) with a TTL. */
export interface TtlWrite {
  key: string;
  value: string;
  /** When the write was sent (invoked) and acknowledged, ms. */
  invokeMs: number;
  ackMs: number;
  ttlMs: number;
}

/** A completed read of a TTL key: the value it returned (null: not found). */
export interface TtlRead {
  key: string;
  startMs: number;
  endMs: number;
  value: string | null;
}

/** A kept-alive lease's life as its keeper saw it. */
export interface KeptLease {
  leaseId: number;
  ttlMs: number;
  /** Send times of its grant and of every acknowledged renewal, ms (any order). */
  acknowledgedSentMs: number[];
  /** Send times of keep-alives answered "not found" (the lease is gone), ms. */
  notFoundSentMs: number[];
  /** Reads of its keys (all attached before the first read), each found or missed (`value` null). */
  reads: { key: string; startMs: number; endMs: number; value: string | null }[];
}

export interface LeaseViolation {
  kind: 'expired-key-returned' | 'kept-key-missing' | 'kept-lease-lost';
  key: string;
  message: string;
}

export interface LeaseCheckResult {
  ok: boolean;
  /** Reads of TTL keys that started at or after the key's expiry bound (each must miss). */
  ttlReadsAfterExpiry: number;
  /** Reads of kept-alive leases' keys that ended while an acknowledged renewal covered them (each must find the key). */
  keptReadsCovered: number;
  violations: LeaseViolation[];
}

/**
 * Checks TTL reads against their writes and kept leases against their renewals (see the module doc).
 * Reads of keys with no acknowledged write are ignored (a write that failed or timed out may or may
 * not have applied). @throws RangeError when a key has two writes (each TTL key is written once).
 */
export function checkLeases(ttl: { writes: readonly TtlWrite[]; reads: readonly TtlRead[] }, kept: readonly KeptLease[] = []): LeaseCheckResult {
  const violations: LeaseViolation[] = [];
  const byKey = new Map<string, TtlWrite>();
  for (const w of ttl.writes) {
    if (byKey.has(w.key)) throw new RangeError(`TTL key ${w.key} written twice: each TTL key is written once`);
    byKey.set(w.key, w);
  }
  let ttlReadsAfterExpiry = 0;
  for (const r of ttl.reads) {
    const w = byKey.get(r.key);
    if (!w || r.startMs < w.ackMs + w.ttlMs) continue;
    ttlReadsAfterExpiry++;
    if (r.value === w.value) {
      const goneByMs = w.ackMs + w.ttlMs;
      violations.push({ kind: 'expired-key-returned', key: r.key, message: `${r.key} (TTL ${w.ttlMs} ms, written ${w.invokeMs}..${w.ackMs}, expired by ${goneByMs}) returned ${JSON.stringify(r.value)} to a read started at ${r.startMs}, ${r.startMs - goneByMs} ms after it expired` });
    }
  }
  let keptReadsCovered = 0;
  for (const l of kept) {
    const covered = (atMs: number): number | null => {
      // The latest acknowledged send at or before `atMs` covers it until that send + TTL.
      let best: number | null = null;
      for (const s of l.acknowledgedSentMs) if (s <= atMs && (best === null || s > best)) best = s;
      return best !== null && atMs < best + l.ttlMs ? best + l.ttlMs : null;
    };
    for (const r of l.reads) {
      const until = covered(r.endMs);
      if (until === null) continue;
      keptReadsCovered++;
      if (r.value === null) violations.push({ kind: 'kept-key-missing', key: r.key, message: `${r.key} of lease ${l.leaseId} missing from a read that ended at ${r.endMs}, before ${until} (an acknowledged renewal's send time + ${l.ttlMs} ms)` });
    }
    for (const s of l.notFoundSentMs) {
      const until = covered(s);
      if (until !== null) violations.push({ kind: 'kept-lease-lost', key: '', message: `lease ${l.leaseId} not found at ${s}, before ${until} (an acknowledged renewal's send time + ${l.ttlMs} ms)` });
    }
  }
  return { ok: violations.length === 0, ttlReadsAfterExpiry, keptReadsCovered, violations };
}
