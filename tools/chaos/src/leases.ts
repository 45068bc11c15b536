import { checkLeases, type KeptLease, type TtlRead, type TtlWrite } from '@cairn/checker';
import { CairnPool, LeaseNotFoundError } from '@cairn/client';
import { mulberry32 } from '@cairn/raft';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Leases and key TTLs during a chaos run (issue 12; docs/reliability.md "Leases and TTLs under
 * faults"), recorded as they go and checked by libs/checker's `checkLeases` (docs/checker.md
 * "Leases and TTLs", the rule the whole-cluster simulator's histories are checked by), on one
 * machine's clock (the gateway's, the leader's and the storage nodes' are this one):
 * - **TTL keys**: keys `ttl/<n>` (each written once) with a seeded TTL of 300–1,000 ms, each read
 *   back once its write's acknowledgement plus its TTL has passed: such a read must miss (the
 *   expiry is taken from the gateway's clock before the write commits, so it is at most ack +
 *   TTL). A violation: an expired key returned.
 * - **A kept-alive lease**: a lease of LEASE_TTL_MS with LEASE_KEYS keys, renewed every
 *   RENEW_EVERY_MS with one LEASE_KEEPALIVE at a time; the leader never expires it before the
 *   send time of an acknowledged renewal plus its TTL (etcd's guarantee; a new leader extends by its
 *   election timeout). A violation: one of its keys missing from a read that ended before that, or
 *   a keep-alive answered NOT_FOUND before it. A lease the cluster did lose (NOT_FOUND after no
 *   acknowledged renewal for a whole TTL, e.g. every replica down longer) is replaced by a new one
 *   and counted, not a violation.
 * Bounded: a TTL key's history (its write and reads) is checked and dropped when the key leaves
 * the TTL_KEYS_KEPT_MAX remembered ones, a lease's when it is replaced or holds
 * KEPT_READS_CHECK_AT reads (then only its latest acknowledged renewal is kept: every later read
 * and keep-alive ends after it); the rest at the end of the run.
 */
export interface ChaosLeasesOptions {
  seed: number;
  host: string;
  port: number;
  requestTimeoutMs: number;
  log?: (line: string) => void;
}

/** What the lease workload did and found. */
export interface ChaosLeasesResult {
  ttlWrites: number;
  /** Reads of TTL keys started after their expiry (each must miss). */
  ttlReadsAfterExpiry: number;
  /** Reads of the kept lease's keys completed (found or missed). */
  keptReads: number;
  /** Of those, the reads that ended while an acknowledged renewal covered the lease (checkLeases: each must find its key). */
  keptReadsCovered: number;
  renewals: number;
  /** Leases lost with no renewal acknowledged within their TTL (replaced; not violations). */
  leasesLost: number;
  violations: string[];
}

const LEASE_TTL_MS = 3000;
const LEASE_KEYS = 5;
const RENEW_EVERY_MS = 500;
const TTL_MS_MIN = 300;
const TTL_MS_SPREAD = 700;
/** TTL keys remembered for reads after their expiry (the oldest is checked and dropped). */
const TTL_KEYS_KEPT_MAX = 200;
/** Reads of the kept lease after which its history so far is checked and dropped. */
const KEPT_READS_CHECK_AT = 1000;
const STEP_MS = 50;

/** A TTL key's write and the reads of it: a checkLeases history of one key. */
export interface TtlKey {
  write: TtlWrite;
  reads: TtlRead[];
  /** The revision its SET committed at: for a violation's report. */
  revision: number;
}

/** The kept lease's history as checkLeases reads it, and the generation naming its keys. */
export interface Kept extends KeptLease {
  gen: number;
}

/**
 * What the lease workload did and saw, judged by `checkLeases` in bounded parts (see the module
 * doc): a TTL key's history when it leaves the `ttlKeysMax` remembered ones (or at `finish`), the
 * kept lease's when it is replaced, holds `keptReadsCheckAt` reads, or at `finish`. No clock, no
 * I/O: times are parameters (ms on the one clock of the run).
 */
export class LeaseHistory {
  readonly result: ChaosLeasesResult = { ttlWrites: 0, ttlReadsAfterExpiry: 0, keptReads: 0, keptReadsCovered: 0, renewals: 0, leasesLost: 0, violations: [] };
  private readonly ttlKeys: TtlKey[] = [];

  constructor(private readonly limits: { ttlKeysMax: number; keptReadsCheckAt: number } = { ttlKeysMax: TTL_KEYS_KEPT_MAX, keptReadsCheckAt: KEPT_READS_CHECK_AT }) {}

  /** An acknowledged TTL write (its key written once). */
  ttlWritten(write: TtlWrite, revision: number): void {
    this.result.ttlWrites++;
    this.ttlKeys.push({ write, reads: [], revision });
    if (this.ttlKeys.length > this.limits.ttlKeysMax) this.checkTtl(this.ttlKeys.shift()!);
  }

  /** The remembered TTL keys whose expiry bound (ack + TTL) is before `nowMs`: a read of one started now must miss. */
  ttlExpired(nowMs: number): TtlKey[] {
    return this.ttlKeys.filter((t) => t.write.ackMs + t.write.ttlMs < nowMs);
  }

  /** A completed read of TTL key `t` (value null: missed). */
  ttlRead(t: TtlKey, read: TtlRead): void {
    t.reads.push(read);
  }

  /** The kept lease, granted (sent) at `sentMs` with its keys attached since. */
  keptGranted(leaseId: number, ttlMs: number, gen: number, sentMs: number): Kept {
    return { leaseId, ttlMs, gen, acknowledgedSentMs: [sentMs], notFoundSentMs: [], reads: [] };
  }

  /** A renewal of `l` sent at `sentMs`, acknowledged. */
  keptRenewed(l: Kept, sentMs: number): void {
    l.acknowledgedSentMs.push(sentMs);
    this.result.renewals++;
  }

  /**
   * A keep-alive of `l` sent at `sentMs` answered NOT_FOUND: checkLeases calls it a violation when
   * an acknowledged renewal still covers `sentMs`, else the cluster lost it legitimately (counted).
   * `l`'s history is checked now (the lease is replaced). @returns when its coverage ended.
   */
  keptNotFound(l: Kept, sentMs: number): number {
    const coveredUntilMs = Math.max(...l.acknowledgedSentMs) + l.ttlMs;
    l.notFoundSentMs.push(sentMs);
    if (sentMs >= coveredUntilMs) this.result.leasesLost++;
    this.checkKept(l);
    return coveredUntilMs;
  }

  /** A completed read of one of `l`'s keys; `current`: `l` is still the kept lease (else it was checked already, and this read is checked now). */
  keptRead(l: Kept, read: TtlRead, current: boolean): void {
    this.result.keptReads++;
    l.reads.push(read);
    if (l.reads.length >= this.limits.keptReadsCheckAt || !current) this.checkKept(l);
  }

  /** Checks what is left (the remembered TTL keys, the kept lease `current`); the result. */
  finish(current: Kept | null): ChaosLeasesResult {
    for (const t of this.ttlKeys.splice(0)) this.checkTtl(t);
    if (current) this.checkKept(current);
    return this.result;
  }

  /** checkLeases on one TTL key's history; its counts and violations go to the result. */
  private checkTtl(t: TtlKey): void {
    const r = checkLeases({ writes: [t.write], reads: t.reads });
    this.result.ttlReadsAfterExpiry += r.ttlReadsAfterExpiry;
    for (const v of r.violations) this.result.violations.push(`leases: ${v.message} (its SET committed at revision ${t.revision})`);
  }

  /** checkLeases on the kept lease's history so far, which is then dropped but for its latest acknowledged renewal (every later read and keep-alive ends after it). */
  private checkKept(l: Kept): void {
    const r = checkLeases({ writes: [], reads: [] }, [l]);
    this.result.keptReadsCovered += r.keptReadsCovered;
    for (const v of r.violations) this.result.violations.push(`leases: ${v.message}`);
    l.acknowledgedSentMs = [Math.max(...l.acknowledgedSentMs)];
    l.notFoundSentMs = [];
    l.reads = [];
  }
}

export class ChaosLeases {
  private readonly r: () => number;
  private readonly history = new LeaseHistory();
  private lease: Kept | null = null;
  private gen = 0;

  constructor(private readonly o: ChaosLeasesOptions) {
    this.r = mulberry32(o.seed ^ 0x1ea5e);
  }

  /** Runs the TTL writes and reads, the keep-alive and the kept keys' reads until `over()`; the result. */
  async run(over: () => boolean): Promise<ChaosLeasesResult> {
    const pool = await CairnPool.connect({ gateways: [{ host: this.o.host, port: this.o.port }], requestTimeoutMs: this.o.requestTimeoutMs }).catch(() => null);
    if (!pool) {
      this.history.result.violations.push('leases: could not connect');
      return this.history.result;
    }
    try {
      await Promise.all([this.ttlLoop(pool, over), this.keepLoop(pool, over), this.keptReadLoop(pool, over)]);
    } finally {
      await pool.close().catch(() => undefined);
    }
    return this.history.finish(this.lease);
  }

  private async ttlLoop(pool: CairnPool, over: () => boolean): Promise<void> {
    for (let n = 0; !over(); n++) {
      const key = `ttl/${this.o.seed}/${n}`;
      const value = `v${n}`;
      const ttlMs = TTL_MS_MIN + Math.floor(this.r() * TTL_MS_SPREAD);
      const invokeMs = Date.now();
      const set = await pool.set(key, value, { ttlMs }).catch(() => null);
      if (set) this.history.ttlWritten({ key, value, invokeMs, ackMs: Date.now(), ttlMs }, set.revision);
      // Read back a remembered key whose expiry bound (ack + TTL) has passed: checkLeases says it must miss.
      const expired = this.history.ttlExpired(Date.now());
      const t = expired[Math.floor(this.r() * expired.length)];
      if (t) {
        const startMs = Date.now();
        const got = await pool.get(t.write.key).catch(() => undefined);
        if (got !== undefined) this.history.ttlRead(t, { key: t.write.key, startMs, endMs: Date.now(), value: got ? got.value.toString() : null });
      }
      await sleep(STEP_MS);
    }
  }

  /** Grants the kept lease (and attaches its keys) when there is none; renews it every RENEW_EVERY_MS. */
  private async keepLoop(pool: CairnPool, over: () => boolean): Promise<void> {
    while (!over()) {
      if (!this.lease) await this.grant(pool).catch(() => undefined);
      else {
        const l = this.lease;
        const sentMs = Date.now();
        try {
          await pool.leaseKeepAliveOnce(l.leaseId);
          this.history.keptRenewed(l, sentMs);
        } catch (e) {
          if (e instanceof LeaseNotFoundError) this.lost(l, sentMs);
        }
      }
      await sleep(RENEW_EVERY_MS);
    }
  }

  private async grant(pool: CairnPool): Promise<void> {
    const sentMs = Date.now();
    const g = await pool.leaseGrant(LEASE_TTL_MS);
    const gen = ++this.gen;
    // The keys are attached after the grant: the lease is "kept" (checked) only once all are in.
    for (let i = 0; i < LEASE_KEYS; i++) await pool.set(`lease/${this.o.seed}/${gen}/${i}`, `g${gen}`, { lease: g.leaseId });
    this.lease = this.history.keptGranted(g.leaseId, LEASE_TTL_MS, gen, sentMs);
  }

  /** NOT_FOUND: a violation while an acknowledged renewal covers `sentMs` (LeaseHistory), else a lease the cluster lost; replaced either way. */
  private lost(l: Kept, sentMs: number): void {
    const coveredUntilMs = this.history.keptNotFound(l, sentMs);
    this.o.log?.(`chaos: lease ${l.leaseId} lost (last acknowledged renewal covers until ${coveredUntilMs}, now ${sentMs}); granting another`);
    if (this.lease === l) this.lease = null;
  }

  /** Reads the kept lease's keys: one missing from a read that ended while a renewal covered it is a violation. */
  private async keptReadLoop(pool: CairnPool, over: () => boolean): Promise<void> {
    while (!over()) {
      const l = this.lease;
      if (l) {
        const i = Math.floor(this.r() * LEASE_KEYS);
        const key = `lease/${this.o.seed}/${l.gen}/${i}`;
        const startMs = Date.now();
        const got = await pool.get(key).catch(() => undefined);
        // A lease replaced while the read was out was checked already: this read is checked at once.
        if (got !== undefined) this.history.keptRead(l, { key, startMs, endMs: Date.now(), value: got ? got.value.toString() : null }, this.lease === l);
      }
      await sleep(STEP_MS * 2);
    }
  }
}
