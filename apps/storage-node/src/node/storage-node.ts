import { BitcaskEngine } from '@cairn/engine';
import {
  ApplyOutcome,
  OUTCOME_REQUEST_TYPE,
  Status,
  decodeFetchReply,
  decodeOutcomeRequest,
  decodeReadRequest,
  decodeShipBatch,
  encodeFetchRequest,
  encodeOutcomeReply,
  encodeReadReply,
  peekMessageType,
  type OutcomeReply,
  type ReadReply,
  type WireEntry,
} from '@cairn/protocol';
import { encodeStatus, serveRequests, STATUS_INTERVAL_MS, type Logger, type StorageStatus, type Subjects } from '@cairn/messaging';
import type { StorageConfig } from '@cairn/config';
import type { NatsConnection, Subscription } from 'nats';
import { ReadWaiters } from './read-waiters';
import { CommandApplier } from './command-applier';
import { SessionStore } from './session-store';

/** Entries handed to the engine per apply call (one group-committed fsync each). */
const APPLY_BATCH_ENTRIES_MAX = 4096;
/** Backfill request timeout, ms. */
const FETCH_TIMEOUT_MS = 2000;
/** Backfill bytes per fetch reply (NATS max_payload is 8 MiB in the local cluster). */
const FETCH_BYTES_MAX = 1024 * 1024;

export interface StorageNodeOptions {
  id: string;
  replicaIds: string[];
  config: StorageConfig;
  dataDir: string;
  nc: NatsConnection;
  subjects: Subjects;
  log: Logger;
}

/**
 * A storage node: applies committed entries in log order to its Bitcask engine and serves reads.
 *
 * Entries arrive pushed (ShipBatch from the leader) and are pulled on a gap (FetchRequest to a
 * consensus replica): core NATS may drop a ShipBatch, so the node tracks the next index it needs
 * (`nextIndex`) and the highest commit index it heard of, and backfills the difference. The engine
 * skips indexes it already applied, so a duplicate or overlapping delivery is harmless.
 */
export class StorageNode {
  private engine!: BitcaskEngine;
  /** Next index to queue for apply (everything below is applied or queued). */
  private nextIndex = 1;
  private knownCommitIndex = 0;
  private leaderHint: string | null = null;
  /** Committed entries waiting to be applied; turned into engine entries only when applied (conditions see the state right before them). */
  private queue: WireEntry[] = [];
  private applier!: CommandApplier;
  private sessions!: SessionStore;
  private applying = false;
  private fetching = false;
  private fetchTarget = 0;
  private stopped = false;
  private applyDone: Promise<void> = Promise.resolve();
  private readonly waiters: ReadWaiters;
  private subs: Subscription[] = [];
  private timers: NodeJS.Timeout[] = [];

  constructor(private readonly opts: StorageNodeOptions) {
    this.waiters = new ReadWaiters(opts.config.readsWaitingMax, opts.config.readWaitMs);
  }

  async start(): Promise<void> {
    const { config, dataDir, nc, subjects, id, log } = this.opts;
    const started = Date.now();
    this.engine = await BitcaskEngine.open({
      dir: `${dataDir}/engine`,
      segmentBytesMax: config.segmentBytesMax,
      fsyncPolicy: config.fsyncPolicy,
      mergeDeadBytesRatioMin: config.mergeDeadBytesRatioMin,
      mergeBytesPerSecondMax: config.mergeBytesPerSecondMax,
    });
    this.nextIndex = this.engine.appliedIndex() + 1;
    // The session table as of the engine's applied index (docs/reliability.md, "Duplicate-safe writes").
    this.sessions = await SessionStore.open({
      dir: `${dataDir}/sessions`,
      fsync: config.fsyncPolicy !== 'interval',
      appliedIndex: this.engine.appliedIndex(),
      onWarning: (msg) => log.warn(msg),
    });
    this.applier = new CommandApplier({
      sessions: this.sessions.table,
      exists: (key) => this.engine.get(key) !== null,
      onUndecodable: (index, err) => log.error({ err, index }, 'undecodable committed command applied as a no-op'),
    });
    const stats = this.engine.stats();
    log.info({ appliedIndex: stats.appliedIndex, keys: stats.keys, dataBytes: stats.dataBytes, openMs: Date.now() - started }, 'engine opened');
    this.subs.push(
      nc.subscribe(subjects.ship(), {
        callback: (err, msg) => {
          if (!err) this.onShip(msg.data);
        },
      }),
      serveRequests(nc, subjects.read(id), (data) => this.onRead(data), {
        log,
        onError: (e) =>
          encodeReadReply({ appliedIndex: this.engine.appliedIndex(), results: [{ status: Status.Error, revision: 0, value: Buffer.alloc(0), message: String(e) }] }),
      }),
    );
    this.timers.push(setInterval(() => this.publishStatus(), STATUS_INTERVAL_MS));
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    for (const s of this.subs) s.unsubscribe();
    this.waiters.cancelAll();
    await this.applyDone;
    await this.engine.close();
    await this.sessions.close();
  }

  status(): StorageStatus {
    const s = this.engine.stats();
    return { kind: 'storage', id: this.opts.id, appliedIndex: s.appliedIndex, knownCommitIndex: this.knownCommitIndex, keys: s.keys, dataBytes: s.dataBytes, atMs: Date.now() };
  }

  // ---- log shipping consumer -----------------------------------------------------------------

  private onShip(data: Uint8Array): void {
    let batch;
    try {
      batch = decodeShipBatch(data);
    } catch (e) {
      this.opts.log.warn({ err: e }, 'dropping undecodable ship batch');
      return;
    }
    this.leaderHint = batch.leaderId;
    if (batch.commitIndex > this.knownCommitIndex) this.knownCommitIndex = batch.commitIndex;
    if (batch.entries.length > 0 && batch.entries[0].index <= this.nextIndex) this.enqueue(batch.entries);
    // A gap (a lost ShipBatch) or a commit heartbeat ahead of us: pull the missing range.
    if (this.knownCommitIndex >= this.nextIndex) this.backfill();
  }

  /** Queues entries from `nextIndex` on; entries already queued are skipped. Bounded by applyQueueEntriesMax. */
  private enqueue(entries: WireEntry[]): void {
    for (const e of entries) {
      if (e.index < this.nextIndex) continue;
      if (e.index !== this.nextIndex) break;
      // Full queue: stop taking; the missing range is backfilled once the queue drains.
      if (this.queue.length >= this.opts.config.applyQueueEntriesMax) break;
      this.queue.push(e);
      this.nextIndex++;
    }
    this.kickApply();
  }

  private kickApply(): void {
    if (this.applying || this.stopped || this.queue.length === 0) return;
    this.applying = true;
    this.applyDone = this.applyLoop().finally(() => {
      this.applying = false;
      if (!this.stopped && this.queue.length) this.kickApply();
      else if (!this.stopped && this.knownCommitIndex >= this.nextIndex) this.backfill();
    });
  }

  private async applyLoop(): Promise<void> {
    while (!this.stopped && this.queue.length) {
      let wire: WireEntry[];
      if (this.queue.length <= APPLY_BATCH_ENTRIES_MAX) {
        wire = this.queue;
        this.queue = [];
      } else {
        wire = this.queue.slice(0, APPLY_BATCH_ENTRIES_MAX);
        this.queue = this.queue.slice(APPLY_BATCH_ENTRIES_MAX);
      }
      try {
        // Conditions are evaluated here, against the engine state the previous apply left (the
        // keydir is updated as apply is called) plus this batch's earlier entries.
        const batch = this.applier.toEngineEntries(wire);
        // The batch's session writes reach the journal before the engine sees the batch, so the
        // session table can always be rebuilt as of the engine's applied index.
        await this.sessions.append(batch.sessionRecords);
        const applied = await this.engine.apply(batch.engine);
        await this.sessions.maybeCompact(applied);
        this.waiters.notify(applied);
      } catch (e) {
        // Disk full or I/O error: the engine's durable state is unknown beyond appliedIndex.
        // Stop with a clear error rather than serve from a state we cannot vouch for.
        this.opts.log.fatal({ err: e }, 'engine apply failed; stopping the storage node');
        process.exitCode = 70;
        this.stopped = true;
        process.kill(process.pid, 'SIGTERM');
        return;
      }
    }
  }

  /** Pulls committed entries from `nextIndex` up to the known commit index, leader first. */
  private backfill(): void {
    if (this.fetching || this.stopped) return;
    if (this.queue.length >= this.opts.config.applyQueueEntriesMax) return; // resumes when the queue drains
    this.fetching = true;
    void this.fetchLoop().finally(() => {
      this.fetching = false;
    });
  }

  private async fetchLoop(): Promise<void> {
    const { nc, subjects, replicaIds, config, log } = this.opts;
    let attempt = 0;
    while (!this.stopped && this.knownCommitIndex >= this.nextIndex && this.queue.length < config.applyQueueEntriesMax) {
      const replica = attempt === 0 && this.leaderHint ? this.leaderHint : replicaIds[this.fetchTarget++ % replicaIds.length];
      try {
        const res = await nc.request(
          subjects.fetch(replica),
          encodeFetchRequest({ fromIndex: this.nextIndex, entriesMax: config.fetchEntriesMax, bytesMax: FETCH_BYTES_MAX }),
          { timeout: FETCH_TIMEOUT_MS },
        );
        const reply = decodeFetchReply(res.data);
        if (reply.status === Status.Ok && reply.entries.length > 0) {
          this.enqueue(reply.entries);
          attempt = 0;
          continue;
        }
      } catch (e) {
        log.debug({ err: e, replica }, 'backfill fetch failed');
      }
      // That replica had nothing for us (lagging, restarting) or did not answer: try another,
      // backing off so a cluster without a leader is not hammered.
      attempt++;
      if (attempt > replicaIds.length) return; // the next ShipBatch, commit heartbeat or status tick retries
      await new Promise((r) => setTimeout(r, Math.min(200, 10 * attempt)));
    }
  }

  // ---- reads ----------------------------------------------------------------------------------

  private async onRead(data: Uint8Array): Promise<Uint8Array> {
    // The outcome query shares the read subject (same routing, same wait for the applied index).
    if ((peekMessageType(data) as number) === OUTCOME_REQUEST_TYPE) return this.onOutcome(data);
    const req = decodeReadRequest(data);
    const results: ReadReply['results'] = new Array(req.reads.length);
    const minIndex = req.reads.reduce((m, r) => Math.max(m, r.minIndex), 0);
    if (this.engine.appliedIndex() < minIndex) await this.waiters.wait(minIndex);
    const applied = this.engine.appliedIndex();
    for (let i = 0; i < req.reads.length; i++) {
      const r = req.reads[i];
      if (applied < r.minIndex) {
        results[i] = { status: Status.Unavailable, revision: 0, value: Buffer.alloc(0), message: `storage node ${this.opts.id} has not applied index ${r.minIndex} yet` };
        continue;
      }
      try {
        const got = this.engine.get(r.key);
        results[i] = got
          ? { status: Status.Ok, revision: got.revision, value: got.value, message: '' }
          : { status: Status.NotFound, revision: 0, value: Buffer.alloc(0), message: '' };
      } catch (e) {
        // A corrupt record is never returned as data: the gateway retries on another node.
        this.opts.log.error({ err: e }, 'read failed');
        results[i] = { status: Status.Unavailable, revision: 0, value: Buffer.alloc(0), message: `storage node ${this.opts.id}: ${(e as Error).message}` };
      }
    }
    return encodeReadReply({ appliedIndex: applied, results });
  }

  /** The recorded outcome of each index, once applied (waiting up to readWaitMs like a read; Pending if not applied by then). */
  private async onOutcome(data: Uint8Array): Promise<Uint8Array> {
    const req = decodeOutcomeRequest(data);
    const minIndex = req.queries.reduce((m, q) => Math.max(m, q.index), 0);
    if (this.engine.appliedIndex() < minIndex) await this.waiters.wait(minIndex);
    const applied = this.engine.appliedIndex();
    const results: OutcomeReply['results'] = req.queries.map((q) => (q.index > applied ? { outcome: ApplyOutcome.Pending, revision: 0 } : this.applier.outcomeOf(q.index, q.session)));
    return encodeOutcomeReply({ appliedIndex: applied, results });
  }

  private publishStatus(): void {
    if (this.stopped) return;
    this.opts.nc.publish(this.opts.subjects.storageStatus(), encodeStatus(this.status()));
    // Safety net: a fetch that gave up (no leader at the time) is retried on the status tick.
    if (this.knownCommitIndex >= this.nextIndex) this.backfill();
  }
}
