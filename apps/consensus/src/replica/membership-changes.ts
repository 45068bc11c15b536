import { decodeMemberRequest, encodeMemberReply, type MemberReply, type MemberRequest } from '@cairn/protocol';
import { ConfChangeInProgressError, ConfChangeInvalidError, EntryType, NotLeaderError, type ConfChange, type Entry, type RaftNode } from '@cairn/raft';
import { respondSafe } from '@cairn/messaging';
import type { Logger } from '@cairn/logging';
import type { Clock, TimerHandle, TransportMsg } from '@cairn/world';
import { catchUpVerdict, planMembership } from './membership-plan';
import { ReadyInputs } from './ready-inputs';

/** A membership step that failed; `status` is the MemberReply status to answer with. */
export class MemberStepError extends Error {
  constructor(
    readonly status: MemberReply['status'],
    message: string,
    readonly leaderHint = '',
  ) {
    super(message);
    this.name = 'MemberStepError';
  }
}

/** What membership changes need of their replica. */
export interface MembershipHost {
  id: string;
  log: Logger;
  clock: Clock;
  /** How long a new replica may take to catch up before it is left a learner (config memberCatchUpTimeoutMs). */
  memberCatchUpTimeoutMs: number;
  node(): RaftNode;
  isLeader(): boolean;
  leaderId(): string | null;
  stopped(): boolean;
  /** Wakes the Ready loop, which calls `drain`, `checkCatchUp` and `resolveConfWaiters`. */
  kick(): void;
}

/**
 * The leader's membership control plane (Raft thesis §4) on `member.<replica>`: one operation at a
 * time, run as the single-server changes `planMembership` gives, each proposed through the Ready
 * loop and committed (or, for a new replica, caught up: §4.2.1) before the next.
 */
export class MembershipChanges {
  /** Changes waiting to be handed to the state machine (thesis §4.1). */
  private readonly queued: ReadyInputs<{ cc: ConfChange; resolve: () => void; reject: (e: Error) => void }>;
  /** Proposed config entries awaiting commit, by index. */
  private readonly waiters = new Map<number, { term: number; resolve: () => void; reject: (e: Error) => void }>();
  /** One membership operation at a time per replica (the state machine allows one change at a time anyway). */
  private busy = false;
  /** The learner being waited for (thesis §4.2.1), checked after each batch of inputs; at most one (busy). */
  private catchUp: { node: string; target: number; timer: TimerHandle; resolve: () => void; reject: (e: Error) => void } | null = null;

  constructor(private readonly host: MembershipHost) {
    this.queued = new ReadyInputs(() => host.kick());
  }

  /** Answers a request on the raw bus (`member.<replica>`; the simulator's wiring). */
  async onMember(msg: TransportMsg): Promise<void> {
    respondSafe(msg, await this.answer(msg.data), this.host.log);
  }

  /**
   * One membership request: a JSON MemberRequest (docs/protocol.md) in, the encoded MemberReply
   * out, always (a bad request answers `bad_request`, a follower `not_leader`, a change in flight
   * `busy`, a failed step its MemberStepError status). Never rejects.
   */
  async answer(data: Uint8Array): Promise<Uint8Array> {
    const h = this.host;
    const reply = (r: Omit<MemberReply, 'conf' | 'confIndex'>): Uint8Array => {
      const st = h.node().status();
      return encodeMemberReply({ ...r, conf: st.conf, confIndex: st.confIndex });
    };
    let req: MemberRequest;
    try {
      req = decodeMemberRequest(data);
    } catch (e) {
      return reply({ status: 'bad_request', message: (e as Error).message, leaderHint: '' });
    }
    if (!h.isLeader() || h.stopped()) return reply({ status: 'not_leader', message: 'not the leader', leaderHint: h.leaderId() ?? '' });
    if (this.busy) return reply({ status: 'busy', message: 'another membership change is in progress on this leader', leaderHint: h.id });
    this.busy = true;
    try {
      const message = await this.changeMembership(req);
      h.log.info({ req, conf: h.node().status().conf }, `membership: ${message}`);
      return reply({ status: 'ok', message, leaderHint: h.id });
    } catch (e) {
      const err = e instanceof MemberStepError ? e : null;
      h.log.warn({ req, err: e }, 'membership change failed');
      return reply({ status: err?.status ?? 'unavailable', message: (e as Error).message, leaderHint: err?.leaderHint ?? h.leaderId() ?? '' });
    } finally {
      this.busy = false;
    }
  }

  /** Changes are waiting for the Ready loop. */
  hasQueued(): boolean {
    return this.queued.hasQueued();
  }

  /** Proposes the queued changes (Ready loop, with the other inputs); each waiter is registered before the next Ready, so its commit cannot be missed. */
  drain(node: RaftNode): void {
    this.queued.drain((c) => {
      try {
        const r = node.proposeConfChange(c.cc);
        this.waiters.set(r.index, { term: r.term, resolve: c.resolve, reject: c.reject });
      } catch (e) {
        c.reject(e as Error);
      }
    });
  }

  /** Settles the waiters of committed config entries: done if still of the term proposed, else overwritten by a new leader. */
  resolveConfWaiters(entries: Entry[]): void {
    if (this.waiters.size === 0) return;
    for (const e of entries) {
      if (e.type !== EntryType.Config) continue;
      const w = this.waiters.get(e.index);
      if (!w) continue;
      this.waiters.delete(e.index);
      if (e.term === w.term) w.resolve();
      else w.reject(new MemberStepError('unavailable', 'configuration change overwritten by a new leader; not applied'));
    }
  }

  /** Fails every queued and proposed change with `message` (leadership lost, shutdown): outcome unknown. */
  failConfChanges(message: string): void {
    for (const c of this.queued.takeAll()) c.reject(new MemberStepError('unavailable', message));
    for (const w of this.waiters.values()) w.reject(new MemberStepError('unavailable', message));
    this.waiters.clear();
  }

  /** Settles the catch-up wait, if there is one and `catchUpVerdict` says it is over. */
  checkCatchUp(expired: boolean): void {
    const w = this.catchUp;
    if (!w) return;
    const v = catchUpVerdict(this.host.node().status(), w.node, w.target, expired, this.host.stopped());
    if (v.kind === 'waiting') return;
    this.catchUp = null;
    this.host.clock.clearTimer(w.timer);
    if (v.kind === 'caughtUp') w.resolve();
    else if (v.kind === 'notLeader') w.reject(new MemberStepError('not_leader', 'leadership lost while the new replica was catching up', v.leaderHint));
    else {
      w.reject(new MemberStepError('unavailable', `replica ${w.node} did not catch up within ${this.host.memberCatchUpTimeoutMs} ms (match ${v.match}, target ${w.target}); it stays a learner: is it running with --join? run the add again to retry`));
    }
  }

  /**
   * Runs one membership operation as the single-server changes `planMembership` gives (thesis
   * §4.1), each committed (or caught up) before the next. Idempotent: asking for what is already
   * true answers ok. @returns a human-readable summary. @throws MemberStepError
   */
  private async changeMembership(req: MemberRequest): Promise<string> {
    const plan = planMembership(this.host.node().status().conf, req);
    for (const step of plan.steps) {
      if (step.kind === 'confChange') await this.commitConfChange(step.cc);
      else await this.waitCaughtUp(step.node);
    }
    return plan.message;
  }

  /** Proposes `cc` through the Ready loop and resolves once its entry is committed. @throws MemberStepError (rejections carry it, or a state machine error mapped here) */
  private async commitConfChange(cc: ConfChange): Promise<void> {
    try {
      await new Promise<void>((resolve, reject) => this.queued.push({ cc, resolve, reject }));
    } catch (e) {
      if (e instanceof ConfChangeInProgressError) throw new MemberStepError('busy', e.message, this.host.id);
      if (e instanceof ConfChangeInvalidError) throw new MemberStepError('invalid', e.message, this.host.id);
      if (e instanceof NotLeaderError) throw new MemberStepError('not_leader', e.message, e.leaderId ?? '');
      throw e;
    }
  }

  /**
   * Thesis §4.2.1: a new server joins as a learner and becomes a voter only once its log has
   * caught up with the leader's commit index as of the start of the wait, so adding it does not
   * stall commits. Checked (catchUpVerdict) now, after each batch of inputs the Ready loop steps,
   * and at the deadline.
   * @throws MemberStepError 'unavailable' after memberCatchUpTimeoutMs, 'not_leader' on leadership loss or stop.
   */
  private waitCaughtUp(node: string): Promise<void> {
    const target = this.host.node().status().commit;
    return new Promise<void>((resolve, reject) => {
      const timer = this.host.clock.setTimeout(() => this.checkCatchUp(true), this.host.memberCatchUpTimeoutMs);
      this.catchUp = { node, target, timer, resolve, reject };
      this.checkCatchUp(false);
    });
  }
}
