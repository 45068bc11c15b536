import { CairnPool, LeaseNotFoundError } from '@cairn/client';
import { mulberry32 } from '@cairn/raft';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Leases and key TTLs during a chaos run (issue 12; docs/reliability.md "Leases and TTLs under
 * faults"), checked as they go, on one machine's clock (the gateway's, the leader's and the storage
 * nodes' are this one):
 * - **TTL keys**: keys `ttl/<n>` (each written once) with a seeded TTL of 300–1,000 ms; a read of
 *   one that starts after its write was acknowledged plus its TTL must miss (the expiry is taken
 *   from the gateway's clock before the write commits, so it is at most ack + TTL). A violation:
 *   an expired key returned.
 * - **A kept-alive lease**: a lease of LEASE_TTL_MS with LEASE_KEYS keys, renewed every
 *   RENEW_EVERY_MS with one LEASE_KEEPALIVE at a time; the leader never expires it before the
 *   send time of an acknowledged renewal plus its TTL (etcd's guarantee; a new leader extends by its
 *   election timeout). A violation: one of its keys missing from a read that ended before that.
 *   A lease the cluster did lose (NOT_FOUND after no acknowledged renewal for a whole TTL, e.g. every
 *   replica down longer) is replaced by a new one and counted, not a violation.
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
  /** Reads of the kept lease's keys checked against its renewals. */
  keptReads: number;
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
/** TTL keys remembered for reads after their expiry (the oldest are dropped). */
const TTL_KEYS_KEPT_MAX = 200;
const STEP_MS = 50;

interface TtlKey {
  key: string;
  value: string;
  /** Acknowledged at (ms, this clock) + TTL: no read starting later may return it. */
  goneByMs: number;
  /** When its SET was sent and acknowledged (ms, this clock), and the revision it was committed at: for the violation's report. */
  sentMs: number;
  ackMs: number;
  revision: number;
  ttlMs: number;
}

interface KeptLease {
  id: number;
  gen: number;
  /** Send time of the latest renewal (or the grant) acknowledged: the lease lives at least until this + LEASE_TTL_MS. */
  aliveUntilMs: number;
}

export class ChaosLeases {
  private readonly r: () => number;
  private readonly stats: ChaosLeasesResult = { ttlWrites: 0, ttlReadsAfterExpiry: 0, keptReads: 0, renewals: 0, leasesLost: 0, violations: [] };
  private readonly ttlKeys: TtlKey[] = [];
  private lease: KeptLease | null = null;
  private gen = 0;

  constructor(private readonly o: ChaosLeasesOptions) {
    this.r = mulberry32(o.seed ^ 0x1ea5e);
  }

  /** Runs the TTL writes and reads, the keep-alive and the kept keys' reads until `over()`; the result. */
  async run(over: () => boolean): Promise<ChaosLeasesResult> {
    const pool = await CairnPool.connect({ gateways: [{ host: this.o.host, port: this.o.port }], requestTimeoutMs: this.o.requestTimeoutMs }).catch(() => null);
    if (!pool) {
      this.stats.violations.push('leases: could not connect');
      return this.stats;
    }
    try {
      await Promise.all([this.ttlLoop(pool, over), this.keepLoop(pool, over), this.keptReadLoop(pool, over)]);
    } finally {
      await pool.close().catch(() => undefined);
    }
    return this.stats;
  }

  private async ttlLoop(pool: CairnPool, over: () => boolean): Promise<void> {
    for (let n = 0; !over(); n++) {
      const key = `ttl/${this.o.seed}/${n}`;
      const value = `v${n}`;
      const ttlMs = TTL_MS_MIN + Math.floor(this.r() * TTL_MS_SPREAD);
      const sentMs = Date.now();
      const set = await pool.set(key, value, { ttlMs }).catch(() => null);
      if (set) {
        const ackMs = Date.now();
        this.stats.ttlWrites++;
        this.ttlKeys.push({ key, value, goneByMs: ackMs + ttlMs, sentMs, ackMs, revision: set.revision, ttlMs });
        if (this.ttlKeys.length > TTL_KEYS_KEPT_MAX) this.ttlKeys.shift();
      }
      // Read back a remembered key whose expiry has passed: it must miss.
      const now = Date.now();
      const expired = this.ttlKeys.filter((t) => t.goneByMs < now);
      const t = expired[Math.floor(this.r() * expired.length)];
      if (t) {
        const startedMs = Date.now();
        const got = await pool.get(t.key).catch(() => undefined);
        if (got !== undefined) this.stats.ttlReadsAfterExpiry++;
        if (got) {
          this.stats.violations.push(
            `leases: ${t.key} (expiry by ${t.goneByMs}) returned ${JSON.stringify(got.value.toString())} to a read started at ${startedMs}, ${startedMs - t.goneByMs} ms after it expired ` +
              `(SET of TTL ${t.ttlMs} ms sent at ${t.sentMs}, acknowledged at ${t.ackMs} at revision ${t.revision}; the read's value has revision ${got.revision}, answered at ${Date.now()})`,
          );
        }
      }
      await sleep(STEP_MS);
    }
  }

  /** Grants the kept lease (and attaches its keys) when there is none; renews it every RENEW_EVERY_MS. */
  private async keepLoop(pool: CairnPool, over: () => boolean): Promise<void> {
    while (!over()) {
      if (!this.lease) await this.grant(pool).catch(() => undefined);
      else {
        const sentMs = Date.now();
        try {
          await pool.leaseKeepAliveOnce(this.lease.id);
          this.lease.aliveUntilMs = Math.max(this.lease.aliveUntilMs, sentMs + LEASE_TTL_MS);
          this.stats.renewals++;
        } catch (e) {
          if (e instanceof LeaseNotFoundError) this.lost(sentMs);
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
    this.lease = { id: g.leaseId, gen, aliveUntilMs: sentMs + LEASE_TTL_MS };
  }

  /** NOT_FOUND: a violation when an acknowledged renewal still covers now, else a lease the cluster lost (replaced). */
  private lost(sentMs: number): void {
    const l = this.lease!;
    if (sentMs < l.aliveUntilMs) this.stats.violations.push(`leases: lease ${l.id} not found at ${sentMs}, before ${l.aliveUntilMs} (an acknowledged renewal's send time + ${LEASE_TTL_MS} ms)`);
    else this.stats.leasesLost++;
    this.o.log?.(`chaos: lease ${l.id} lost (last acknowledged renewal covers until ${l.aliveUntilMs}, now ${sentMs}); granting another`);
    this.lease = null;
  }

  /** Reads the kept lease's keys: one missing from a read that ended while a renewal covered it is a violation. */
  private async keptReadLoop(pool: CairnPool, over: () => boolean): Promise<void> {
    while (!over()) {
      const l = this.lease;
      if (l) {
        const i = Math.floor(this.r() * LEASE_KEYS);
        const key = `lease/${this.o.seed}/${l.gen}/${i}`;
        const got = await pool.get(key).catch(() => undefined);
        const endedMs = Date.now();
        if (got !== undefined) this.stats.keptReads++;
        if (got === null && endedMs < l.aliveUntilMs) this.stats.violations.push(`leases: ${key} of lease ${l.id} missing from a read that ended at ${endedMs}, before ${l.aliveUntilMs} (an acknowledged renewal's send time + ${LEASE_TTL_MS} ms)`);
      }
      await sleep(STEP_MS * 2);
    }
  }
}
