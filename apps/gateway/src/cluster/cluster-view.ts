import { decodeStatus, type ConsensusStatus, type StorageStatus } from '@cairn/protocol';
import { asTransport, type Subjects } from '@cairn/messaging';
import { realClock, type Clock, type Transport, type TransportSubscription } from '@cairn/world';
import type { NatsConnection } from 'nats';

/** A status heartbeat older than this marks its process as not alive, ms (heartbeats come every 100 ms). */
export const STATUS_STALE_MS = 1000;

/**
 * What this gateway knows of the cluster, from the status heartbeats (libs/messaging) and from
 * NOT_LEADER hints: which replica leads (highest term wins) and how far each storage node applied.
 */
export class ClusterView {
  private readonly consensus = new Map<string, ConsensusStatus & { seenAtMs: number }>();
  private readonly storage = new Map<string, StorageStatus & { seenAtMs: number }>();
  private leader: { id: string; term: number } | null = null;
  private leaderWaiters: (() => void)[] = [];
  /** In-flight leader requests watching their leader (one entry per request attempt; removed when it settles). */
  private readonly leaderWatches = new Set<{ id: string; fire(why: string): void }>();
  private sub: TransportSubscription[] = [];
  private readonly storageListeners: ((s: StorageStatus) => void)[] = [];
  private readonly now: () => number;
  private readonly clock: Clock;

  /** `time`: a Clock (the simulator's), or just a time source with real timers (tests); default the real clock. */
  constructor(time: Clock | (() => number) = realClock) {
    this.clock = typeof time === 'function' ? realClock : time;
    this.now = typeof time === 'function' ? time : () => time.nowMs();
  }

  start(bus: Transport | NatsConnection, subjects: Subjects): void {
    const t = asTransport(bus);
    for (const subject of [subjects.consensusStatus(), subjects.storageStatus()]) {
      this.sub.push(
        t.subscribe(subject, (msg) => {
          const s = decodeStatus(msg.data);
          if (s?.kind === 'consensus') this.onConsensusStatus(s);
          else if (s?.kind === 'storage') this.onStorageStatus(s);
        }),
      );
    }
  }

  stop(): void {
    for (const s of this.sub) s.unsubscribe();
    this.wakeLeaderWaiters();
  }

  onConsensusStatus(s: ConsensusStatus): void {
    this.consensus.set(s.id, { ...s, seenAtMs: this.now() });
    if (s.role === 'leader' && (!this.leader || s.term >= this.leader.term)) this.setLeader(s.id, s.term);
    else if (this.leader?.id === s.id && s.role !== 'leader') this.leader = null;
    this.checkLeaderWatches(s);
  }

  onStorageStatus(s: StorageStatus): void {
    this.storage.set(s.id, { ...s, seenAtMs: this.now() });
    for (const fn of this.storageListeners) fn(s);
  }

  /** Calls `fn` with every storage node heartbeat (the auth view follows their auth revision). */
  onStorageHeartbeat(fn: (s: StorageStatus) => void): void {
    this.storageListeners.push(fn);
  }

  /**
   * The replica believed to lead, or null when unknown. A leader whose status heartbeats stopped
   * (older than STATUS_STALE_MS) is down, never the leader, whatever its last heartbeat said; a
   * leader learnt only from a NOT_LEADER hint (no heartbeat yet) counts.
   */
  leaderId(): string | null {
    if (!this.leader) return null;
    const hb = this.consensus.get(this.leader.id);
    if (hb && this.now() - hb.seenAtMs > STATUS_STALE_MS) return null;
    return this.leader.id;
  }

  /** A NOT_LEADER reply named `id` as the leader (term unknown: keep the one we had). */
  hintLeader(id: string): void {
    if (id && this.leader?.id !== id) this.setLeader(id, this.leader?.term ?? 0);
  }

  /**
   * `id` did not answer a request: forget it as leader so the next heartbeat or hint decides.
   * `gone`: proof that it does not lead (it answered NOT_LEADER, or nobody subscribes to its
   * subject): requests in flight to it are abandoned too (`watchLeader`). A timeout alone is no
   * such proof (a loaded leader is slow, not gone).
   */
  suspectLeader(id: string, gone?: string): void {
    if (this.leader?.id === id) this.leader = null;
    if (gone) this.fireLeaderWatches(id, gone);
  }

  /**
   * Watches `id`, the leader a request was just sent to: `moved` resolves (with the reason) as soon
   * as this view learns that `id` no longer leads: another replica is the leader (heartbeat at the
   * same or a higher term, or a NOT_LEADER hint), `id`'s own heartbeat reports another role, its
   * heartbeats stopped (none for STATUS_STALE_MS, checked on every replica heartbeat) or another
   * request proved it gone (`suspectLeader` with `gone`). It never resolves otherwise; call
   * `cancel` when the request settles.
   */
  watchLeader(id: string): { moved: Promise<string>; cancel(): void } {
    let watch!: { id: string; fire(why: string): void };
    const moved = new Promise<string>((resolve) => {
      watch = {
        id,
        fire: (why) => {
          this.leaderWatches.delete(watch);
          resolve(why);
        },
      };
    });
    this.leaderWatches.add(watch);
    return { moved, cancel: () => this.leaderWatches.delete(watch) };
  }

  /** Resolves when a leader becomes known (or changes), or after `timeoutMs`. */
  waitForLeader(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const clock = this.clock;
      const t = clock.setTimeout(done, timeoutMs);
      const waiters = this.leaderWaiters;
      function done() {
        clock.clearTimer(t);
        const i = waiters.indexOf(done);
        if (i >= 0) waiters.splice(i, 1);
        resolve();
      }
      waiters.push(done);
    });
  }

  /** Storage nodes whose last heartbeat is fresh, highest applied index first. */
  liveStorageNodes(): (StorageStatus & { seenAtMs: number })[] {
    const now = this.now();
    return [...this.storage.values()].filter((s) => now - s.seenAtMs <= STATUS_STALE_MS).sort((a, b) => b.appliedIndex - a.appliedIndex);
  }

  /** Raises the known applied index of a node after one of its read replies. */
  noteApplied(nodeId: string, appliedIndex: number): void {
    const s = this.storage.get(nodeId);
    if (s && appliedIndex > s.appliedIndex) s.appliedIndex = appliedIndex;
  }

  /**
   * The cluster configuration (thesis §4): the one with the highest config index among the live
   * replicas' heartbeats (the leader's is never behind a committed change), or null when no live
   * replica reported one. `committed`: whether that index is at or below the reporter's commit index.
   */
  members(): { voters: string[]; learners: string[]; storage: string[]; confIndex: number; committed: boolean } | null {
    const now = this.now();
    let best: (ConsensusStatus & { seenAtMs: number }) | null = null;
    for (const c of this.consensus.values()) {
      if (!c.conf || now - c.seenAtMs > STATUS_STALE_MS) continue;
      if (!best || (c.confIndex ?? 0) > (best.confIndex ?? 0) || ((c.confIndex ?? 0) === (best.confIndex ?? 0) && c.role === 'leader')) best = c;
    }
    if (!best?.conf) return null;
    const confIndex = best.confIndex ?? 0;
    return { ...best.conf, confIndex, committed: confIndex <= best.commitIndex };
  }

  /**
   * The cluster as the status heartbeats show it (the STATUS opcode's and `cairn status`'s JSON).
   * Every process carries `ageMs` (since its last heartbeat reached this gateway), `live` (ageMs ≤
   * STATUS_STALE_MS), `lastSeenAtMs` (Unix ms, this gateway's clock, of that last heartbeat) and
   * `downSinceMs` (= lastSeenAtMs when not live, else null). A replica that is not live has role
   * `'down'`: its last heartbeat's role (say "leader") is history, never shown as current.
   */
  snapshot() {
    const now = this.now();
    const liveness = (seenAtMs: number) => {
      const live = now - seenAtMs <= STATUS_STALE_MS;
      return { ageMs: now - seenAtMs, live, lastSeenAtMs: seenAtMs, downSinceMs: live ? null : seenAtMs };
    };
    return {
      leaderId: this.leaderId(),
      term: this.leader?.term ?? Math.max(0, ...[...this.consensus.values()].map((c) => c.term)),
      consensus: [...this.consensus.values()]
        .sort((a, b) => a.id.localeCompare(b.id))
        .map(({ seenAtMs, ...s }) => {
          const l = liveness(seenAtMs);
          const role: ConsensusStatus['role'] | 'down' = l.live ? s.role : 'down';
          return { ...s, role, ...l };
        }),
      storage: [...this.storage.values()].sort((a, b) => a.id.localeCompare(b.id)).map(({ seenAtMs, ...s }) => ({ ...s, ...liveness(seenAtMs) })),
    };
  }

  private setLeader(id: string, term: number): void {
    const changed = this.leader?.id !== id;
    this.leader = { id, term };
    if (changed) this.wakeLeaderWaiters();
    for (const w of [...this.leaderWatches]) if (w.id !== id) w.fire(`replica ${id} leads now (term ${term || 'unknown'})`);
  }

  private fireLeaderWatches(id: string, why: string): void {
    for (const w of [...this.leaderWatches]) if (w.id === id) w.fire(why);
  }

  /** After heartbeat `s`: watched leaders that report another role, or whose heartbeats stopped. */
  private checkLeaderWatches(s: ConsensusStatus): void {
    if (this.leaderWatches.size === 0) return;
    if (s.role !== 'leader') this.fireLeaderWatches(s.id, `replica ${s.id} reports role ${s.role} (term ${s.term})`);
    const now = this.now();
    for (const w of [...this.leaderWatches]) {
      const hb = this.consensus.get(w.id);
      if (hb && now - hb.seenAtMs > STATUS_STALE_MS) w.fire(`replica ${w.id} sent no heartbeat for ${now - hb.seenAtMs} ms`);
    }
  }

  private wakeLeaderWaiters(): void {
    const ws = this.leaderWaiters;
    this.leaderWaiters = [];
    for (const w of ws) w();
  }
}
