import { ApplyOutcome, ByteReader, ByteWriter, ProtocolError, type CommandSession } from '@cairn/protocol';
import type { ApplyResult } from './apply-result';

/** Default bound of the sessions a storage node remembers. */
export const SESSIONS_MAX = 4096;
/** Default bound of the results one session keeps (seqs at or above its firstPendingSeq). */
export const RESULTS_PER_SESSION_MAX = 65_536;

export interface SessionLimits {
  sessionsMax: number;
  resultsPerSessionMax: number;
}

interface SessionState {
  /** Seqs below it are answered (the client said so, or the results bound forced it): a later copy of one is never applied. */
  firstPendingSeq: number;
  /** Index of the session's latest entry: the least recently active session is evicted first. */
  lastIndex: number;
  /** Outcome of each seq ≥ firstPendingSeq applied so far. */
  results: Map<number, ApplyResult>;
}

/** What the table decided for one session write. */
export type SessionDecision =
  /** First time this (session, seq) is seen: apply it; `result` is what evaluating it gave. */
  | { kind: 'new'; result: ApplyResult }
  /** Applied before (a re-sent copy): do not apply; `result` is the original outcome. */
  | { kind: 'duplicate'; result: ApplyResult }
  /** Below the session's firstPendingSeq: its result is forgotten and the client no longer waits for it; not applied. */
  | { kind: 'stale' };

/**
 * The client-session table of a storage node (Raft thesis §6.3): per session id, the outcome of
 * each write seq not yet acknowledged to the client, so a re-sent write (same session and seq) is
 * applied at most once and its duplicate answers the original outcome.
 *
 * Deterministic: the table changes only in `apply`, called once per committed session write in
 * log order, and every decision depends only on the table and that write, so every storage node
 * holds the same table at the same applied index (and so decides duplicates identically).
 *
 * Bounds (docs/reliability.md, "Duplicate-safe writes"):
 * - `sessionsMax`: a new session beyond it evicts the least recently active session (smallest
 *   `lastIndex`). A later write of the evicted session starts it afresh, so a re-sent copy of one
 *   of its old writes would apply again: it takes `sessionsMax` newer sessions (gateway starts)
 *   while a write is being re-sent.
 * - `resultsPerSessionMax`: beyond it the lowest seq's result is dropped and the session's
 *   firstPendingSeq raised past it, so a late copy of that write is never applied (at most once
 *   holds; its outcome becomes unknown).
 * Results below the client's `firstPendingSeq` are dropped as each write arrives.
 */
export class SessionTable {
  private readonly sessions = new Map<bigint, SessionState>();

  constructor(readonly limits: SessionLimits = { sessionsMax: SESSIONS_MAX, resultsPerSessionMax: RESULTS_PER_SESSION_MAX }) {
    for (const [k, v] of Object.entries(limits)) if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`${k} must be a positive integer, got ${v}`);
  }

  /**
   * Decides the session write at `index` and updates the table. `evaluate` is called only for a
   * new write (it evaluates the write's condition against the state right before it).
   */
  apply(index: number, s: CommandSession, evaluate: () => ApplyResult): SessionDecision {
    let st = this.sessions.get(s.sessionId);
    if (!st) {
      if (this.sessions.size >= this.limits.sessionsMax) this.evictLeastRecent();
      st = { firstPendingSeq: 0, lastIndex: index, results: new Map() };
      this.sessions.set(s.sessionId, st);
    }
    if (index <= st.lastIndex && st.results.size > 0) throw new Error(`SessionIndexIncreases: session write at index ${index} after ${st.lastIndex}`);
    st.lastIndex = index;
    if (s.firstPendingSeq > st.firstPendingSeq) this.forgetBelow(st, s.firstPendingSeq);
    if (s.seq < st.firstPendingSeq) return { kind: 'stale' };
    const prior = st.results.get(s.seq);
    if (prior) return { kind: 'duplicate', result: prior };
    const result = evaluate();
    st.results.set(s.seq, result);
    if (st.results.size > this.limits.resultsPerSessionMax) this.forgetBelow(st, Math.min(...st.results.keys()) + 1);
    return { kind: 'new', result };
  }

  /** The recorded outcome of (sessionId, seq), or null when the table has none (never seen, forgotten, or evicted). */
  result(sessionId: bigint, seq: number): ApplyResult | null {
    return this.sessions.get(sessionId)?.results.get(seq) ?? null;
  }

  /** Sessions held and results held in all of them. */
  size(): { sessions: number; results: number } {
    let results = 0;
    for (const st of this.sessions.values()) results += st.results.size;
    return { sessions: this.sessions.size, results };
  }

  /**
   * `u32 sessions | per session: u32 idHigh | u32 idLow | u64 firstPendingSeq | u64 lastIndex |
   * u32 results | (u64 seq | u8 outcome | u64 revision)*`.
   */
  encode(): Buffer {
    let size = 4;
    for (const st of this.sessions.values()) size += 8 + 8 + 8 + 4 + st.results.size * 17;
    const w = new ByteWriter(size).u32(this.sessions.size);
    for (const [id, st] of this.sessions) {
      w.u32(Number(id >> 32n)).u32(Number(id & 0xffff_ffffn)).u64(st.firstPendingSeq).u64(st.lastIndex).u32(st.results.size);
      for (const [seq, r] of st.results) w.u64(seq).u8(r.outcome).u64(r.revision);
    }
    return w.finish();
  }

  /** @throws ProtocolError on malformed bytes. */
  static decode(b: Uint8Array, limits?: SessionLimits): SessionTable {
    const t = new SessionTable(limits);
    const r = new ByteReader(b);
    const n = r.count(28);
    for (let i = 0; i < n; i++) {
      const id = (BigInt(r.u32()) << 32n) | BigInt(r.u32());
      const st: SessionState = { firstPendingSeq: r.u64(), lastIndex: r.u64(), results: new Map() };
      const m = r.count(17);
      for (let j = 0; j < m; j++) {
        const seq = r.u64();
        const outcome = r.u8();
        if (outcome !== ApplyOutcome.Applied && outcome !== ApplyOutcome.ConditionFailed) throw new ProtocolError(`session result with outcome ${outcome}`);
        st.results.set(seq, { outcome, revision: r.u64() });
      }
      t.sessions.set(id, st);
    }
    r.end();
    return t;
  }

  private forgetBelow(st: SessionState, seq: number): void {
    st.firstPendingSeq = seq;
    for (const k of st.results.keys()) if (k < seq) st.results.delete(k);
  }

  private evictLeastRecent(): void {
    let victim: bigint | null = null;
    let oldest = Infinity;
    for (const [id, st] of this.sessions) {
      if (st.lastIndex < oldest) {
        oldest = st.lastIndex;
        victim = id;
      }
    }
    if (victim !== null) this.sessions.delete(victim);
  }
}
