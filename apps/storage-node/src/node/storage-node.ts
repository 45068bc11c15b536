import { join } from 'node:path';
import { BitcaskEngine, ENGINE_DEFAULTS, EngineOp, recordBytesMaxOf, type EngineStats } from '@cairn/engine';
import type { Disk } from '@cairn/log';
import {
  AUTH_STATE_KEY,
  ApplyOutcome,
  OUTCOME_REQUEST_TYPE,
  outcomeResultBytes,
  OUTCOME_REPLY_BASE_BYTES,
  RANGE_REQUEST_TYPE,
  LEASE_KEYS_REQUEST_TYPE,
  decodeLeaseKeysRequest,
  encodeLeaseKeysReply,
  decodeRangeRequest,
  encodeRangeReply,
  Status,
  decodeFetchReply,
  decodeOutcomeRequest,
  decodeReadRequest,
  decodeShipBatch,
  encodeFetchRequest,
  encodeOutcomeReply,
  encodeReadReply,
  SNAPSHOT_CHUNK_BYTES_MAX,
  encodeSnapshotChunkReply,
  peekMessageType,
  type OutcomeReply,
  type ReadReply,
  type WireEntry,
  decodeStatus,
  encodeStatus,
  STATUS_INTERVAL_MS,
  type StorageStatus,
  WATCH_HISTORY_REQUEST_TYPE,
  WATCH_INTEREST_MS_MAX,
  WATCH_INTEREST_TYPE,
  decodeWatchInterest,
  type WatchEvent,
} from '@cairn/protocol';
import { hopTrace, payloadBytesMax, publishSafe, serveRequests } from '@cairn/messaging';
import type { ProcessWorld } from '@cairn/nest-runtime';
import type { StorageConfig } from '@cairn/config';
import { sleep, type TimerHandle, type TransportSubscription } from '@cairn/world';
import { ReadWaiters } from './read-waiters';
import { encodeBoundedReadReply } from './read-reply';
import { encodeBoundedRangeReply } from './range-reply';
import { leaseKeysReply } from './lease-keys';
import { CommandApplier } from './command-applier';
import { SessionStore } from './session-store';
import { LeaseIndex, isReservedKey } from './lease-index';
import { SnapshotServer, type NodeSnapshot } from './snapshot-server';
import { BootstrapLoop, BootstrapStoppedError, fetchSnapshot, type FetchedSnapshot, type PeerInfo } from './snapshot-bootstrap';
import { WatchHistory, watchHistoryDir } from './watch-history';
import { WatchSource } from './watch-source';

/** Entries handed to the engine per apply call (one group-committed fsync each). */
const APPLY_BATCH_ENTRIES_MAX = 4096;
/** Backfill request timeout, ms. */
const FETCH_TIMEOUT_MS = 2000;
/** Backfill entry bytes per fetch reply at most, bytes; lower when the NATS payload bound is (see fetchBytesMax). */
const FETCH_BYTES_MAX = 1024 * 1024;
/** Bytes of a FetchReply around its entries' data: header, status, commit index, a message of up to 1 KiB, count. */
const FETCH_REPLY_OVERHEAD_BYTES = 2 + 1 + 8 + 2 + 1024 + 4;
/** Bytes each entry adds to a FetchReply around its data: `u64 index | u64 term | u8 type | u32 length`. */
const FETCH_ENTRY_OVERHEAD_BYTES = 8 + 8 + 1 + 4;
/** Bytes of a SnapshotChunkReply around its data: header, status, a message of up to 1 KiB, length; plus the engine chunk's own framing (≤ 64). */
const SNAPSHOT_CHUNK_REPLY_OVERHEAD_BYTES = 2 + 1 + 2 + 1024 + 4 + 64;
/** A snapshot this node took for a peer is handed to further peers for this long (then a new one is taken), ms. */
const SNAPSHOT_REUSE_MS = 10_000;
/** A peer storage node is live while its last status heartbeat is this recent, ms. */
const PEER_LIVE_MS = 10 * STATUS_INTERVAL_MS;
/** The smallest key a client can have: a range read starts here at the earliest, so the empty key (AUTH_STATE_KEY) never leaves through one. */
const RANGE_START_MIN = Buffer.from([0]);
/** The consensus replica's FetchReply message for entries gone from its log (apps/consensus). */
const COMPACTED_PREFIX = 'compacted:';

type ReadResult = ReadReply['results'][number];

export interface StorageNodeOptions extends Omit<ProcessWorld, 'onFatal'> {
  id: string;
  replicaIds: string[];
  config: StorageConfig;
  /** The disk under `dataDir` (default node:fs; the simulator passes a simulated disk). */
  disk?: Disk;
  /**
   * Called once when the node must stop: a failed engine write or fsync, or a failed snapshot
   * install. The node has stopped applying; the process shell ends the process (exit code 70).
   */
  onFatal: (err: unknown) => void;
  /**
   * Test hook (the simulator's invariant "every storage node applies the same sequence"): called
   * with each batch of committed entries after the engine applied it durably.
   */
  onApplied?: (entries: readonly WireEntry[]) => void;
  /** Called after a read, range page or outcome query waited for the applied index to reach its minIndex, with the wait in ms (metrics: NodeMetrics.observeReadWait). */
  onReadWait?: (waitedMs: number) => void;
  /**
   * Test switch for the simulator (never set in production): lifts the read reply's payload bound,
   * restoring the read-reply bug of issue 9 (a reply over max_payload). Default false.
   */
  unboundedReadReplies?: boolean;
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
  /** Watch event history (docs/watch.md); open with the engine. */
  private history!: WatchHistory;
  private watchSource!: WatchSource;
  private applying = false;
  private fetching = false;
  private fetchTarget = 0;
  private stopped = false;
  private applyDone: Promise<void> = Promise.resolve();
  private readonly waiters: ReadWaiters;
  private subs: TransportSubscription[] = [];
  private timers: TimerHandle[] = [];
  /** Engine and session store open (false only while a snapshot install swaps them). */
  private storesOpen = false;
  /** Installing a peer's snapshot: no apply, reads answered UNAVAILABLE (never a half-installed state). */
  private bootstrapping = false;
  private lastStatus: Omit<StorageStatus, 'atMs'> | null = null;
  /** The term of the last entry handed to the engine (for the snapshot manifest; 0 = unknown). */
  private lastTerm = { index: 0, term: 0 };
  /** Run at the next boundary between two apply batches (snapshot capture). */
  private boundaryTasks: (() => void)[] = [];
  private snapshotTaking: Promise<NodeSnapshot> | null = null;
  private lastSnapshot: (NodeSnapshot & { atMs: number }) | null = null;
  private readonly peers = new Map<string, { appliedIndex: number; heardAtMs: number }>();
  private snapshotServer!: SnapshotServer;
  /** Peer snapshots installed since start (metrics). */
  private snapshotsInstalled = 0;
  /** The auth revision: mod revision of AUTH_STATE_KEY in the engine (0 = auth never changed), published on the status heartbeat. */
  private authRevision = 0;
  /**
   * Watch events are published until this time (clock ms): some gateway has open watches and said
   * so (WatchInterest, refreshed every WATCH_INTEREST_REFRESH_MS). Until then nothing is encoded or
   * sent; the history records every batch either way (docs/watch.md "Delivery").
   */
  private watchInterestUntilMs = 0;

  constructor(private readonly opts: StorageNodeOptions) {
    this.waiters = new ReadWaiters(opts.config.readsWaitingMax, opts.config.readWaitMs, opts.world.clock);
  }

  async start(): Promise<void> {
    const { config, bus, subjects, id, log } = this.opts;
    const { clock } = this.opts.world;
    this.watchSource = new WatchSource(id, () => payloadBytesMax(bus));
    await this.openStores();
    this.snapshotServer = new SnapshotServer({
      unavailable: () => (this.bootstrapping ? 'bootstrapping from a peer snapshot itself' : this.stopped || !this.storesOpen ? 'stopping' : null),
      take: (min) => this.takeSnapshot(min),
      openReader: (index, chunkBytesMax) => this.engine.openSnapshotReader(index, chunkBytesMax),
      transfersMax: config.snapshotTransfersMax,
      idleTimeoutMs: config.snapshotTransferTimeoutMs,
      // A chunk reply stays under the payload bound (the start-up check makes that the full 512 KiB).
      chunkBytesMax: Math.max(1024, Math.min(SNAPSHOT_CHUNK_BYTES_MAX, payloadBytesMax(bus) - SNAPSHOT_CHUNK_REPLY_OVERHEAD_BYTES)),
      now: () => clock.nowMs(),
      log,
    });
    this.subs.push(
      bus.subscribe(subjects.storageStatus(), (msg) => {
        const st = decodeStatus(msg.data);
        if (st?.kind === 'storage' && st.id !== id) this.peers.set(st.id, { appliedIndex: st.appliedIndex, heardAtMs: clock.nowMs() });
      }),
      serveRequests(bus, subjects.snapshot(id), (data) => this.snapshotServer.handle(data), {
        log,
        onError: (e) => encodeSnapshotChunkReply({ status: Status.Error, message: String(e), data: Buffer.alloc(0) }),
      }),
    );
    this.timers.push(clock.setInterval(() => this.snapshotServer.sweep(), Math.max(100, Math.floor(config.snapshotTransferTimeoutMs / 4))));
    this.subs.push(
      bus.subscribe(subjects.ship(), (msg) => this.onShip(msg.data)),
      serveRequests(bus, subjects.read(id), (data) => this.onRead(data), {
        log,
        onError: (e) =>
          encodeReadReply({ appliedIndex: this.engine.appliedIndex(), results: [{ status: Status.Error, revision: 0, value: Buffer.alloc(0), message: String(e) }] }),
      }),
    );
    this.timers.push(clock.setInterval(() => this.publishStatus(), STATUS_INTERVAL_MS));
    if (config.snapshotIntervalMs > 0) {
      // A snapshot ready before a peer needs one; its hard links keep pre-merge files on disk until pruned.
      this.timers.push(
        clock.setInterval(() => {
          if (!this.bootstrapping && this.storesOpen) this.takeSnapshot(0).catch((err: unknown) => this.opts.log.warn({ err }, 'periodic snapshot failed'));
        }, config.snapshotIntervalMs),
      );
    }
  }

  /** Opens the engine and the session table as of its applied index; applying resumes from there. */
  private async openStores(): Promise<void> {
    const { config, dataDir, log } = this.opts;
    const started = this.opts.world.clock.nowMs();
    this.engine = await BitcaskEngine.open({
      dir: this.engineDir(),
      segmentBytesMax: config.segmentBytesMax,
      fsyncPolicy: config.fsyncPolicy,
      mergeDeadBytesRatioMin: config.mergeDeadBytesRatioMin,
      mergeBytesPerSecondMax: config.mergeBytesPerSecondMax,
      disk: this.opts.disk,
      clock: this.opts.world.clock,
    });
    if (this.engine.openReport?.installCompleted) log.warn({ appliedIndex: this.engine.appliedIndex() }, 'engine open finished a snapshot install interrupted past its commit point');
    this.nextIndex = this.engine.appliedIndex() + 1;
    // The session table as of the engine's applied index (docs/reliability.md, "Duplicate-safe
    // writes"); a table staged by a snapshot install is adopted when the engine is at its index.
    this.sessions = await SessionStore.open({
      dir: join(dataDir, 'sessions'),
      fsync: config.fsyncPolicy !== 'interval',
      appliedIndex: this.engine.appliedIndex(),
      onWarning: (msg) => log.warn(msg),
      disk: this.opts.disk,
    });
    this.history = await WatchHistory.open({
      dir: watchHistoryDir(dataDir),
      limits: { revisionsMax: config.watchHistoryRevisionsMax, historyMs: config.watchHistoryMs, bytesMax: config.watchHistoryBytesMax },
      fsyncPolicy: config.fsyncPolicy,
      appliedIndex: this.engine.appliedIndex(),
      disk: this.opts.disk,
      clock: this.opts.world.clock,
    });
    this.applier = new CommandApplier({
      sessions: this.sessions.table,
      // Lease and expiry state lives in the engine's reserved keyspace (docs/leases.md): read back at open.
      leases: LeaseIndex.load(this.engine),
      keysPerLeaseMax: config.keysPerLeaseMax,
      txnResultsHeldBytesMax: config.txnResultsHeldBytesMax,
      get: (key) => this.engine.get(key),
      range: (q) => this.engine.range(q),
      // The engine's largest record (it is opened with the default key and value bounds).
      mutationBytesMax: recordBytesMaxOf(ENGINE_DEFAULTS.keyBytesMax, ENGINE_DEFAULTS.valueBytesMax),
      onUndecodable: (index, err) => log.error({ err, index }, 'undecodable committed command applied as a no-op'),
      onAuthRefused: (index, reason) => log.info({ index, reason }, 'auth change refused at apply'),
    });
    this.authRevision = this.engine.get(AUTH_STATE_KEY)?.revision ?? 0;
    this.storesOpen = true;
    this.status();
    const stats = this.engine.stats();
    const r = this.engine.openReport;
    const files = r ? { hintFilesLoaded: r.hintFilesLoaded, logHintFilesLoaded: r.logHintFilesLoaded, logFilesScanned: r.logFilesScanned, mergedFilesScanned: r.mergedFilesScanned, engineOpenMs: r.durationMs } : {};
    log.info({ appliedIndex: stats.appliedIndex, keys: stats.keys, dataBytes: stats.dataBytes, ...files, openMs: this.opts.world.clock.nowMs() - started }, 'engine opened');
  }

  private engineDir(): string {
    return join(this.opts.dataDir, 'engine');
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const t of this.timers) this.opts.world.clock.clearTimer(t);
    for (const s of this.subs) s.unsubscribe();
    this.waiters.cancelAll();
    this.snapshotServer?.closeAll();
    await this.applyDone;
    await this.bootstrapDone;
    await this.closeStores();
  }

  /** Closes the engine, the session store and the watch history once (stop, or a simulated crash). */
  private async closeStores(): Promise<void> {
    if (!this.storesOpen) return;
    this.storesOpen = false;
    await this.engine.close();
    await this.sessions.close();
    await this.history.close();
  }

  /** Figures for the metrics endpoint (apps/storage-node/src/metrics): engine stats (null while the stores are closed), snapshot transfers served now, peer snapshots installed since start. */
  metrics(): { engine: EngineStats | null; transfersServing: number; snapshotsInstalled: number } {
    return { engine: this.storesOpen ? this.engine.stats() : null, transfersServing: this.snapshotServer?.size() ?? 0, snapshotsInstalled: this.snapshotsInstalled };
  }

  status(): StorageStatus {
    if (this.storesOpen) {
      const s = this.engine.stats();
      this.lastStatus = { kind: 'storage', id: this.opts.id, appliedIndex: s.appliedIndex, knownCommitIndex: this.knownCommitIndex, keys: s.keys, dataBytes: s.dataBytes, authRevision: this.authRevision };
    }
    return { ...this.lastStatus!, knownCommitIndex: this.knownCommitIndex, atMs: this.opts.world.clock.nowMs() };
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
    if (this.bootstrapping) return;
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
    if (this.applying || this.stopped || this.bootstrapping || this.queue.length === 0) return;
    this.applying = true;
    this.applyDone = this.applyLoop().finally(() => {
      this.applying = false;
      this.runBoundaryTasks();
      if (this.stopped || this.bootstrapping) return;
      if (this.queue.length) this.kickApply();
      else if (this.knownCommitIndex >= this.nextIndex) this.backfill();
    });
  }

  /** Runs `task` between two apply batches: now when no batch is being applied, else before the next one starts. */
  private atBatchBoundary(task: () => void): void {
    if (!this.applying) task();
    else this.boundaryTasks.push(task);
  }

  private runBoundaryTasks(): void {
    const tasks = this.boundaryTasks;
    this.boundaryTasks = [];
    for (const t of tasks) t();
  }

  private async applyLoop(): Promise<void> {
    while (!this.stopped && !this.bootstrapping && this.queue.length) {
      this.runBoundaryTasks();
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
        // A txn reads the engine itself, so a batch is handed over in parts ending before each txn;
        // engine.apply updates the keydir at once, and the parts share the durability wait.
        const applying: Promise<number>[] = [];
        const events: WatchEvent[] = [];
        let authRevision = this.authRevision;
        for (let rest = wire; rest.length > 0; ) {
          const batch = this.applier.toEngineEntries(rest);
          // The batch's session writes reach the journal before the engine sees the batch, so the
          // session table can always be rebuilt as of the engine's applied index.
          await this.sessions.append(batch.sessionRecords);
          const part = this.engine.apply(batch.engine);
          // The engine's keydir has the batch now (apply takes it in when called): reads follow the lease index again.
          this.applier.leases.handedToEngine();
          // Awaited below with the other parts; the handler keeps an early failure from being an unhandled rejection meanwhile.
          part.catch(() => undefined);
          applying.push(part);
          for (const ee of batch.engine) if (ee.op === EngineOp.Set && ee.key.length === 0) authRevision = ee.index;
          for (const ev of batch.events) events.push(ev);
          rest = rest.slice(batch.consumed);
        }
        const last = wire[wire.length - 1];
        this.lastTerm = { index: last.index, term: last.term };
        // The batch's watch events go to the history log in parallel with the engine's write.
        // Chains to the history's last revision; a jump (a peer snapshot was installed) is
        // published as one, so gateways see the gap and ask the history (COMPACTED there).
        const prevRevision = Math.max(this.history.lastRevision(), wire[0].index - 1);
        // A failed history write is as fatal as the engine's (caught below), whichever fails first.
        const historyFailed = this.history.append(wire[0].index, last.index, events, this.opts.world.clock.nowMs()).then(
          () => null,
          (e: unknown) => e,
        );
        const applied = Math.max(...(await Promise.all(applying)));
        const historyError = await historyFailed;
        if (historyError) throw historyError;
        this.authRevision = authRevision;
        await this.sessions.maybeCompact(applied);
        this.publishWatchEvents(prevRevision, last.index, events);
        this.opts.onApplied?.(wire);
        if (hopTrace.enabled) hopTrace.mark('applied');
        this.waiters.notify(applied);
      } catch (e) {
        // Disk full or I/O error: the engine's durable state is unknown beyond appliedIndex.
        // Stop with a clear error rather than serve from a state we cannot vouch for.
        this.fatal(e, 'engine apply failed; stopping the storage node');
        return;
      }
    }
  }

  /** Pulls committed entries from `nextIndex` up to the known commit index, leader first. */
  private backfill(): void {
    if (this.fetching || this.stopped || this.bootstrapping) return;
    if (this.queue.length >= this.opts.config.applyQueueEntriesMax) return; // resumes when the queue drains
    this.fetching = true;
    void this.fetchLoop().finally(() => {
      this.fetching = false;
    });
  }

  private async fetchLoop(): Promise<void> {
    const { bus, subjects, replicaIds, config, log } = this.opts;
    let attempt = 0;
    /** The first index a replica still holds, when one answered that `nextIndex` was compacted away. */
    let compactedFirst = 0;
    while (!this.stopped && !this.bootstrapping && this.knownCommitIndex >= this.nextIndex && this.queue.length < config.applyQueueEntriesMax) {
      const replica = attempt === 0 && this.leaderHint ? this.leaderHint : replicaIds[this.fetchTarget++ % replicaIds.length];
      try {
        const res = await bus.request(
          subjects.fetch(replica),
          encodeFetchRequest({ fromIndex: this.nextIndex, entriesMax: config.fetchEntriesMax, bytesMax: this.fetchBytesMax() }),
          { timeoutMs: FETCH_TIMEOUT_MS },
        );
        const reply = decodeFetchReply(res.data);
        if (reply.status === Status.Ok && reply.entries.length > 0) {
          this.enqueue(reply.entries);
          attempt = 0;
          compactedFirst = 0;
          continue;
        }
        if (reply.status === Status.Error && reply.message.startsWith(COMPACTED_PREFIX)) {
          // This replica compacted the entries we need (Raft §7); another may still hold them.
          compactedFirst = Math.max(compactedFirst, Number(/before (\d+)/.exec(reply.message)?.[1] ?? this.nextIndex + 1));
          log.debug({ replica, nextIndex: this.nextIndex, message: reply.message }, 'backfill: compacted');
        }
      } catch (e) {
        log.debug({ err: e, replica }, 'backfill fetch failed');
      }
      // That replica had nothing for us (lagging, restarting) or did not answer: try another,
      // backing off so a cluster without a leader is not hammered.
      attempt++;
      if (attempt > replicaIds.length) {
        // No replica holds `nextIndex` any more: only a peer's snapshot can bring this node up.
        if (compactedFirst > this.nextIndex) this.startBootstrap(compactedFirst - 1);
        return; // else the next ShipBatch, commit heartbeat or status tick retries
      }
      await sleep(this.opts.world.clock, Math.min(200, 10 * attempt));
    }
  }

  /**
   * Entry data bytes to ask per fetch, so that the reply (entry framing for up to fetchEntriesMax
   * entries included) fits the NATS payload bound; at least 1 (the replica always sends one entry,
   * and the start-up check makes one entry fit).
   */
  private fetchBytesMax(): number {
    const room = payloadBytesMax(this.opts.bus) - FETCH_REPLY_OVERHEAD_BYTES - this.opts.config.fetchEntriesMax * FETCH_ENTRY_OVERHEAD_BYTES;
    return Math.max(1, Math.min(FETCH_BYTES_MAX, room));
  }

  // ---- reads ----------------------------------------------------------------------------------

  /** Waits (up to readWaitMs; ReadWaiters) until the applied index reaches `minIndex`, unless bootstrapping; a wait that happened is reported to `onReadWait`. */
  private async awaitApplied(minIndex: number): Promise<void> {
    if (this.bootstrapping || this.engine.appliedIndex() >= minIndex) return;
    const clock = this.opts.world.clock;
    const startMs = clock.nowMs();
    await this.waiters.wait(minIndex);
    this.opts.onReadWait?.(clock.nowMs() - startMs);
  }

  private async onRead(data: Uint8Array): Promise<Uint8Array | null> {
    // The outcome query shares the read subject (same routing, same wait for the applied index).
    const type = peekMessageType(data) as number;
    if (type === OUTCOME_REQUEST_TYPE) return this.onOutcome(data);
    if (type === RANGE_REQUEST_TYPE) return this.onRange(data);
    if (type === LEASE_KEYS_REQUEST_TYPE) return this.onLeaseKeys(data);
    if (type === WATCH_INTEREST_TYPE) return this.onWatchInterest(data);
    if (type === WATCH_HISTORY_REQUEST_TYPE) return this.watchSource.history(data, this.bootstrapping || !this.storesOpen ? null : this.history, (e) => this.opts.log.error({ err: e }, 'watch history read failed'));
    const req = decodeReadRequest(data);
    const minIndex = req.reads.reduce((m, r) => Math.max(m, r.minIndex), 0);
    await this.awaitApplied(minIndex);
    if (this.bootstrapping || !this.storesOpen) {
      // Never a read from a half-installed store: the gateway tries another node.
      const message = `storage node ${this.opts.id} is bootstrapping from a peer snapshot`;
      return encodeReadReply({ appliedIndex: 0, results: req.reads.map(() => ({ status: Status.Unavailable, revision: 0, value: Buffer.alloc(0), message })) });
    }
    const applied = this.engine.appliedIndex();
    const resultAt = (i: number): ReadResult => {
      const r = req.reads[i];
      if (applied < r.minIndex) return { status: Status.Unavailable, revision: 0, value: Buffer.alloc(0), message: `storage node ${this.opts.id} has not applied index ${r.minIndex} yet` };
      try {
        // A reserved key is not a client's; a key whose expiry passed is gone for every reader even
        // before the leader's ExpireKey reaches this node (docs/leases.md "Clock drift").
        const got = isReservedKey(r.key) || this.applier.leases.expired(r.key, this.opts.world.clock.nowMs()) ? null : this.engine.get(r.key);
        if (!got) return { status: Status.NotFound, revision: 0, value: Buffer.alloc(0), message: '' };
        return { status: Status.Ok, revision: got.revision, createRevision: got.createRevision, version: got.version, value: got.value, message: '', expiresAtMs: this.applier.leases.expiryOf(r.key) };
      } catch (e) {
        // A corrupt record is never returned as data: the gateway retries on another node.
        this.opts.log.error({ err: e }, 'read failed');
        return { status: Status.Unavailable, revision: 0, value: Buffer.alloc(0), message: `storage node ${this.opts.id}: ${(e as Error).message}` };
      }
    };
    // The reply fits the NATS payload bound: the reads that do not fit are left out, and the
    // gateway asks again for them (docs/protocol.md, "Message size bounds on the internal bus").
    // Values above a read's valueBytesMax (what the gateway reserved for it) are withheld: read
    // flow control, docs/protocol.md "Read flow control".
    return encodeBoundedReadReply(applied, req.reads.length, resultAt, this.opts.unboundedReadReplies ? Infinity : payloadBytesMax(this.opts.bus), (i) => req.reads[i].valueBytesMax, req.withExpiry === true).reply;
  }

  /** One page of a range read, once applied up to its minIndex (waiting up to readWaitMs like a read). */
  private async onRange(data: Uint8Array): Promise<Uint8Array> {
    const decoded = decodeRangeRequest(data);
    const req = decoded.start.length === 0 ? { ...decoded, start: RANGE_START_MIN } : decoded;
    await this.awaitApplied(req.minIndex);
    const unavailable = (message: string) => encodeRangeReply({ status: Status.Unavailable, revision: 0, count: 0, more: false, message, items: [] });
    if (this.bootstrapping || !this.storesOpen) return unavailable(`storage node ${this.opts.id} is bootstrapping from a peer snapshot`);
    if (this.engine.appliedIndex() < req.minIndex) return unavailable(`storage node ${this.opts.id} has not applied index ${req.minIndex} yet`);
    const bound = this.opts.unboundedReadReplies ? Infinity : payloadBytesMax(this.opts.bus);
    return encodeBoundedRangeReply(this.engine, req, bound, (e) => this.opts.log.error({ err: e }, 'range read failed'), {
      hidden: (key) => this.applier.leases.expired(key, this.opts.world.clock.nowMs()),
    });
  }

  /** A lease's attached keys (LEASE_TTL with KEYS), once applied up to its minIndex (waiting up to readWaitMs like a read). */
  private async onLeaseKeys(data: Uint8Array): Promise<Uint8Array> {
    const req = decodeLeaseKeysRequest(data);
    await this.awaitApplied(req.minIndex);
    const unavailable = (message: string) => encodeLeaseKeysReply({ status: Status.Unavailable, appliedIndex: 0, message, more: false, keys: [] });
    if (this.bootstrapping || !this.storesOpen) return unavailable(`storage node ${this.opts.id} is bootstrapping from a peer snapshot`);
    const applied = this.engine.appliedIndex();
    if (applied < req.minIndex) return unavailable(`storage node ${this.opts.id} has not applied index ${req.minIndex} yet`);
    return leaseKeysReply(this.applier.leases, req, applied, this.opts.world.clock.nowMs(), this.opts.unboundedReadReplies ? Infinity : payloadBytesMax(this.opts.bus));
  }

  /** The recorded outcome of each index, once applied (waiting up to readWaitMs like a read; Pending if not applied by then). */
  private async onOutcome(data: Uint8Array): Promise<Uint8Array> {
    const req = decodeOutcomeRequest(data);
    const minIndex = req.queries.reduce((m, q) => Math.max(m, q.index), 0);
    await this.awaitApplied(minIndex);
    if (this.bootstrapping || !this.storesOpen) return encodeOutcomeReply({ appliedIndex: 0, results: req.queries.map(() => ({ outcome: ApplyOutcome.Pending, revision: 0 })) });
    const applied = this.engine.appliedIndex();
    // A prefix when the whole reply would not fit the payload bound (at least one: a txn's result
    // is bounded by the gateway to fit alone); the gateway asks again for the rest.
    const bytesMax = payloadBytesMax(this.opts.bus);
    const results: OutcomeReply['results'] = [];
    let bytes = OUTCOME_REPLY_BASE_BYTES;
    for (const q of req.queries) {
      const r = q.index > applied ? { outcome: ApplyOutcome.Pending, revision: 0 } : this.applier.outcomeOf(q.index, q.session);
      bytes += outcomeResultBytes(r);
      if (results.length > 0 && bytes > bytesMax) break;
      results.push(r);
    }
    return encodeOutcomeReply({ appliedIndex: applied, results });
  }

  /** A gateway's WatchInterest: publish watch events for its `forMs` (at most WATCH_INTEREST_MS_MAX) from now; no reply. */
  private onWatchInterest(data: Uint8Array): null {
    const { forMs } = decodeWatchInterest(data);
    this.watchInterestUntilMs = Math.max(this.watchInterestUntilMs, this.opts.world.clock.nowMs() + Math.min(forMs, WATCH_INTEREST_MS_MAX));
    return null;
  }

  /**
   * Publishes an applied batch's watch events (WatchEvents messages chained by revision; docs/watch.md
   * "Delivery") while a gateway wants them. A batch not published is still in the history, so a
   * gateway that gets the next message sees its prevRevision above what it has seen and pages the gap.
   */
  private publishWatchEvents(prevRevision: number, lastRevision: number, events: Parameters<WatchHistory['append']>[2]): void {
    if (lastRevision <= prevRevision) return; // entries applied again after a restart: published before
    if (this.opts.world.clock.nowMs() >= this.watchInterestUntilMs) return; // no gateway watches
    const subject = this.opts.subjects.watch(this.opts.id);
    const fresh = events.length > 0 && events[0].modRevision <= prevRevision ? events.filter((e) => e.modRevision > prevRevision) : events;
    for (const m of this.watchSource.encode(prevRevision, lastRevision, fresh)) publishSafe(this.opts.bus, subject, m, this.opts.log);
  }

  private publishStatus(): void {
    if (this.stopped) return;
    if (this.storesOpen && !this.bootstrapping) this.history.trim(this.opts.world.clock.nowMs());
    publishSafe(this.opts.bus, this.opts.subjects.storageStatus(), encodeStatus(this.status()), this.opts.log);
    // Safety net: a fetch that gave up (no leader at the time) is retried on the status tick.
    if (this.knownCommitIndex >= this.nextIndex) this.backfill();
  }

  // ---- snapshots: serving peers ----------------------------------------------------------------

  /**
   * An engine snapshot plus the session table at the same applied index: both captured in one
   * synchronous step between two apply batches (the engine fixes its applied index synchronously
   * when createSnapshot is called). A snapshot taken for a peer less than SNAPSHOT_REUSE_MS ago
   * and recent enough is handed out again; concurrent requests share one capture.
   */
  private takeSnapshot(minAppliedIndex: number): Promise<NodeSnapshot> {
    const last = this.lastSnapshot;
    if (last && last.snapshot.appliedIndex >= minAppliedIndex && this.opts.world.clock.nowMs() - last.atMs < SNAPSHOT_REUSE_MS && this.engine.snapshots().some((x) => x.appliedIndex === last.snapshot.appliedIndex)) {
      return Promise.resolve(last);
    }
    if (this.snapshotTaking) return this.snapshotTaking;
    const taking = new Promise<NodeSnapshot>((resolve, reject) => {
      this.atBatchBoundary(() => {
        if (!this.storesOpen || this.bootstrapping) return reject(new Error('the node is not serving snapshots now'));
        const termAt = (index: number) => (index === this.lastTerm.index ? this.lastTerm.term : 0);
        const snapshot = this.engine.createSnapshot({ termAt });
        const sessions = this.sessions.table.encode();
        snapshot.then((snap) => resolve({ snapshot: snap, sessions }), reject);
      });
    });
    this.snapshotTaking = taking
      .then((t) => {
        this.lastSnapshot = { ...t, atMs: this.opts.world.clock.nowMs() };
        return t;
      })
      .finally(() => {
        this.snapshotTaking = null;
      });
    return this.snapshotTaking;
  }

  // ---- snapshots: bootstrapping from a peer ----------------------------------------------------

  private bootstrapDone: Promise<void> = Promise.resolve();

  /** Live peer storage nodes (heartbeat within PEER_LIVE_MS). */
  private livePeers(): PeerInfo[] {
    const now = this.opts.world.clock.nowMs();
    const out: PeerInfo[] = [];
    for (const [id, p] of this.peers) if (now - p.heardAtMs <= PEER_LIVE_MS) out.push({ id, appliedIndex: p.appliedIndex });
    return out;
  }

  /**
   * The Raft log no longer holds `nextIndex` (compacted, Raft §7): stop applying, answer reads
   * UNAVAILABLE, pull a peer's snapshot at ≥ `minAppliedIndex`, install it, and continue with the
   * log after it (docs/architecture.md, "Storage node lifecycle").
   */
  private startBootstrap(minAppliedIndex: number): void {
    if (this.bootstrapping || this.stopped) return;
    const { log, config, id, bus, subjects } = this.opts;
    const { clock } = this.opts.world;
    this.bootstrapping = true;
    this.queue = [];
    this.snapshotServer.closeAll();
    const started = clock.nowMs();
    log.warn({ nextIndex: this.nextIndex, minAppliedIndex, peers: this.livePeers() }, 'bootstrap: the Raft log is compacted past this node; installing a peer storage node snapshot (reads answer UNAVAILABLE meanwhile)');
    const loop = new BootstrapLoop({
      peers: () => this.livePeers(),
      fetch: (peer, min) =>
        fetchSnapshot({
          request: async (p, data, timeoutMs) => (await bus.request(subjects.snapshot(p), data, { timeoutMs })).data,
          peer,
          requesterId: id,
          minAppliedIndex: min,
          engineDir: this.engineDir(),
          disk: this.opts.disk,
          timeoutMs: config.snapshotTransferTimeoutMs,
          cancelled: () => this.stopped,
          onBegin: (info) => log.info(info, 'bootstrap: receiving snapshot'),
          clock,
        }),
      install: (f) => this.installFetched(f),
      backoffMs: config.snapshotRetryBackoffMs,
      wait: (ms) => sleep(clock, ms),
      stopped: () => this.stopped,
      log,
    });
    this.bootstrapDone = loop.run(minAppliedIndex).then(
      (f) => {
        log.info({ peer: f.peer, appliedIndex: f.appliedIndex, bytes: f.bytes, chunks: f.chunks, transferMs: f.durationMs, totalMs: clock.nowMs() - started, keys: this.engine.stats().keys }, 'bootstrap: snapshot installed; continuing from the log after it');
        this.bootstrapping = false;
        this.snapshotsInstalled++;
        this.waiters.notify(this.engine.appliedIndex());
        this.backfill();
      },
      (e) => {
        if (e instanceof BootstrapStoppedError) return;
        this.fatal(e, 'snapshot install failed; stopping the storage node');
      },
    );
  }

  /**
   * Commits a fetched snapshot: the session table is staged first (adopted by SessionStore.open
   * only when the engine is at its index), then, with the stores closed, the engine install's
   * commit point; then both reopen at the snapshot's applied index. A crash anywhere leaves either
   * the old engine (the staged table is discarded at open) or the complete new one with its table.
   */
  private async installFetched(f: FetchedSnapshot): Promise<void> {
    await SessionStore.stageInstall(join(this.opts.dataDir, 'sessions'), f.appliedIndex, f.sessions, undefined, this.opts.disk);
    await this.applyDone;
    this.storesOpen = false;
    try {
      await this.engine.close();
      await this.sessions.close();
      await this.history.close();
      await f.installer.finish();
    } finally {
      // Reopen whatever is on disk: the snapshot (committed) or, before the commit point, the old store.
      await this.openStores();
    }
    this.queue = [];
  }

  private fatal(e: unknown, msg: string): void {
    this.opts.log.fatal({ err: e }, msg);
    this.stopped = true;
    this.opts.onFatal(e);
  }

  /**
   * A crash as the simulator models it (its world incarnation is killed by the caller): nothing
   * more is answered or sent. Waits for an apply batch being written, then closes the stores so a
   * new StorageNode can open the same directory.
   */
  async abandon(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) this.opts.world.clock.clearTimer(t);
    for (const s of this.subs) s.unsubscribe();
    await this.applyDone;
    await this.closeStores();
  }

  /** The apply batch being written, when one is (the simulator waits for it before advancing virtual time); else null. */
  busy(): Promise<void> | null {
    return this.applying ? this.applyDone : null;
  }
}
