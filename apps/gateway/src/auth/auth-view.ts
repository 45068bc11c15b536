import { AUTH_STATE_KEY, Status, decodeAuthState, emptyAuthState, type AuthState } from '@cairn/protocol';
import type { Logger } from '@cairn/logging';
import type { Clock, TimerHandle } from '@cairn/world';
import type { ReadPath } from '../paths/read-path';

/** Wait before a failed auth state load is tried again, ms. */
export const AUTH_LOAD_RETRY_MS = 200;

/** The auth state at one auth revision. */
export interface AuthSnapshot {
  state: AuthState;
  /** The Raft index of the last auth change in it (0 = never changed). */
  revision: number;
}

/**
 * This gateway's copy of the replicated auth state (libs/protocol auth.ts), kept current from the
 * storage nodes' status heartbeats: each carries the node's auth revision (the index of the last
 * auth change it applied, every 100 ms); when one is newer than the copy, the gateway reads the
 * state (the engine's empty key) from a storage node with `minIndex` = that revision, so it gets
 * that state or a newer one. A gateway that proposed a change itself reloads at the change's index
 * before answering (`refresh`). Until the first heartbeat the state is unknown and requests wait
 * for it (`ready`): never served as if auth were off.
 */
export class AuthView {
  private snapshot: AuthSnapshot | null = null;
  /** Highest auth revision a heartbeat reported. */
  private wanted = -1;
  private loading = false;
  private retry: TimerHandle | null = null;
  private waiters: (() => void)[] = [];
  private stopped = false;
  private readonly listeners: ((s: AuthSnapshot) => void)[] = [];

  constructor(
    private readonly deps: {
      reads: Pick<ReadPath, 'get'>;
      clock: Clock;
      log: Logger;
    },
  ) {}

  /** The current state, or null before it is known. */
  current(): AuthSnapshot | null {
    return this.snapshot;
  }

  /** Called with every new state (after a load that moved the revision forward). */
  onChange(fn: (s: AuthSnapshot) => void): void {
    this.listeners.push(fn);
  }

  /** A storage node's heartbeat reported `revision` (StorageStatus.authRevision). */
  heard(revision: number): void {
    if (this.stopped || revision <= this.wanted) return;
    this.wanted = revision;
    if (revision === 0 && !this.snapshot) {
      // No auth change was ever applied: auth is off, no read needed.
      this.install({ state: emptyAuthState(), revision: 0 });
      return;
    }
    if (revision > (this.snapshot?.revision ?? -1)) this.kick();
  }

  /** Resolves true once the state is known, false after `timeoutMs`. */
  ready(timeoutMs: number): Promise<boolean> {
    if (this.snapshot) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = () => {
        this.deps.clock.clearTimer(t);
        this.waiters = this.waiters.filter((w) => w !== done);
        resolve(this.snapshot !== null);
      };
      const t = this.deps.clock.setTimeout(done, timeoutMs);
      this.waiters.push(done);
    });
  }

  /** Loads the state as of at least `minIndex` now (after this gateway's own change committed at it). */
  async refresh(minIndex: number): Promise<boolean> {
    const s = await this.load(minIndex);
    if (s) this.install(s);
    return s !== null && s.revision >= 0;
  }

  stop(): void {
    this.stopped = true;
    if (this.retry) this.deps.clock.clearTimer(this.retry);
  }

  private kick(): void {
    if (this.loading || this.stopped) return;
    this.loading = true;
    const target = this.wanted;
    void this.load(target).then((s) => {
      this.loading = false;
      if (s) this.install(s);
      if (this.stopped || (this.snapshot?.revision ?? -1) >= this.wanted) return;
      if (s && s.revision >= target) this.kick();
      else if (!this.retry)
        this.retry = this.deps.clock.setTimeout(() => {
          this.retry = null;
          this.kick();
        }, AUTH_LOAD_RETRY_MS);
    });
  }

  private async load(minIndex: number): Promise<AuthSnapshot | null> {
    try {
      const r = await this.deps.reads.get(AUTH_STATE_KEY, minIndex);
      if (r.status === Status.NotFound) return { state: emptyAuthState(), revision: 0 };
      if (r.status !== Status.Ok) {
        this.deps.log.debug({ status: r.status, message: r.message, minIndex }, 'auth state load failed; retrying');
        return null;
      }
      return { state: decodeAuthState(r.value), revision: r.revision };
    } catch (err) {
      this.deps.log.warn({ err, minIndex }, 'auth state load failed; retrying');
      return null;
    }
  }

  private install(s: AuthSnapshot): void {
    if (this.snapshot && s.revision <= this.snapshot.revision) return;
    const was = this.snapshot;
    this.snapshot = s;
    if (!was || was.state.enabled !== s.state.enabled) this.deps.log.info({ authRevision: s.revision, authEnabled: s.state.enabled, users: s.state.users.size, roles: s.state.roles.size }, 'auth state loaded');
    for (const w of [...this.waiters]) w();
    for (const l of this.listeners) l(s);
  }
}
