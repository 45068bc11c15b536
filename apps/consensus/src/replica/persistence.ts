import type { ConsensusConfig } from '@cairn/config';
import type { Logger } from '@cairn/logging';
import { HardStateFile, SnapshotFile, type Clock, type Disk } from '@cairn/log';
import type { Entry, HardState, LogOnDisk, RaftNode, Ready, Snapshot } from '@cairn/raft';
import { RaftLogStore } from '../storage/raft-log-store';
import { CodedError } from '@cairn/protocol';

/** A disk write, fsync or file operation of the Raft state failed: the only fault that stops a replica. */
export class PersistenceError extends CodedError {
  readonly code = 'RAFT_PERSISTENCE';
  constructor(
    readonly step: string,
    override readonly cause: unknown,
  ) {
    super(`${step} failed: ${(cause as Error)?.message ?? String(cause)}`);
  }
}

/** Runs a disk step of the Ready loop; its failure is a PersistenceError (the fatal path). */
export async function durably(step: string, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    throw new PersistenceError(step, e);
  }
}

/** What a replica finds on disk at start: the state to restore its RaftNode from. */
export interface RestoredRaftState {
  hardState: HardState;
  /** The durable commit index, capped to the log and at least the snapshot's index. */
  commit: number;
  /** The newest durable entries, those the log cache holds; the older ones are `onDisk`. */
  entries: Entry[];
  onDisk: LogOnDisk;
  snapshot: Snapshot | null;
}

/**
 * A replica's durable Raft state under `dataDir`: the segmented log (`raft-log/`), the hard state
 * file and the snapshot file; writes them in the order Raft needs (snapshot before the log it
 * replaces, term/vote before any message reflecting them, Raft Figure 2 and §7).
 */
export class RaftPersistence {
  private persistedTerm: number;
  private persistedVote: string | null;

  private constructor(
    readonly store: RaftLogStore,
    private readonly hardStateFile: HardStateFile,
    private readonly snapshotFile: SnapshotFile,
    hs: HardState,
  ) {
    this.persistedTerm = hs.term;
    this.persistedVote = hs.vote;
  }

  /** Opens (creating `dataDir` if needed) and recovers: a torn log tail is truncated, a log that does not continue the snapshot discarded (both logged). @throws what the disk throws (the log is closed again) */
  static async open(dataDir: string, config: ConsensusConfig, disk: Disk, log: Logger, clock: Clock): Promise<{ persistence: RaftPersistence; restored: RestoredRaftState }> {
    disk.mkdirSync(dataDir, { recursive: true });
    const snapshotFile = new SnapshotFile(dataDir, disk);
    const snap = snapshotFile.read();
    const store = await RaftLogStore.open(`${dataDir}/raft-log`, { segmentBytesMax: config.segmentBytesMax, fsyncPolicy: config.fsyncPolicy, disk, clock }, snap ? snap.index + 1 : 1);
    try {
      if (store.recovery.tornTail) log.warn({ tornTail: store.recovery.tornTail }, 'raft log: torn tail truncated on recovery');
      if (snap && (await store.alignWithSnapshot(snap))) {
        log.warn({ snapshot: { index: snap.index, term: snap.term } }, 'raft log did not continue the snapshot (crash while installing one): discarded');
      }
      const hardStateFile = new HardStateFile(dataDir, disk);
      const hs = hardStateFile.read() ?? { term: 0, vote: null, commit: 0 };
      const { entries, onDisk } = store.restoreTail(snap ? snap.index + 1 : 1, config.logCacheBytesMax);
      const commit = Math.max(Math.min(hs.commit, store.lastIndex()), snap?.index ?? 0);
      return { persistence: new RaftPersistence(store, hardStateFile, snapshotFile, hs), restored: { hardState: hs, commit, entries, onDisk, snapshot: snap } };
    } catch (e) {
      // The replica never holds a log it failed to restore: close it so the directory can be opened again.
      await store.close().catch(() => undefined);
      throw e;
    }
  }

  /**
   * Makes a Ready durable: its snapshot (InstallSnapshot, Raft §7: durable before the log it
   * replaces goes; `onSnapshotInstalled` runs right after), a changed term/vote, then its entries
   * (one group-committed fdatasync). @throws whatever the disk throws (callers wrap it: `durably`).
   */
  async persist(rd: Ready, onSnapshotInstalled: (s: Snapshot) => void): Promise<void> {
    if (rd.snapshot) {
      await this.snapshotFile.write(rd.snapshot);
      await this.store.reset(rd.snapshot.index + 1);
      onSnapshotInstalled(rd.snapshot);
    }
    const hs = rd.hardState;
    if (hs && (hs.term !== this.persistedTerm || hs.vote !== this.persistedVote)) {
      // Term/vote must be durable before any message reflecting them leaves (Raft Figure 2).
      this.hardStateFile.write(hs);
      this.persistedTerm = hs.term;
      this.persistedVote = hs.vote;
    }
    await this.store.persist(rd.entries);
  }

  /**
   * Whether `rd`'s leader replication messages (Append, Heartbeat) may leave before `persist(rd)`
   * (Raft thesis §10.2.1): only when the Ready neither changes the term or vote nor installs a
   * snapshot, since a message must never reflect a term or vote not yet durable (Raft Figure 2).
   * The leader's own entries count toward commit only after `advance`, so a commit still needs a
   * majority of durable copies.
   */
  mayReplicateBeforePersist(rd: Ready): boolean {
    if (rd.snapshot) return false;
    const hs = rd.hardState;
    return !hs || (hs.term === this.persistedTerm && hs.vote === this.persistedVote);
  }

  /**
   * Async storage writes: whether `rd` must wait for every earlier write before its own starts
   * (`persist`), rather than being queued behind them (`append`): it installs a snapshot (the log
   * is replaced), changes the term or vote (the hard state file is rewritten, and no later
   * message may leave before it is durable), or replaces stored entries (truncation, Raft §5.3).
   */
  waitsForEarlierWrites(rd: Ready): boolean {
    if (!this.mayReplicateBeforePersist(rd)) return true;
    return rd.entries.length > 0 && rd.entries[0].index <= this.store.lastIndex();
  }

  /** Queues `rd`'s entries after every earlier write (a Ready for which `waitsForEarlierWrites` is false); settles once they are durable. @throws (synchronously) on a gap */
  append(rd: Ready): Promise<void> {
    return this.store.append(rd.entries);
  }

  /** Compacts `node` to `target` (Raft §7): the node, then the snapshot file, then the log segments before target + 1. */
  async compact(node: RaftNode, target: number): Promise<void> {
    node.compact(target);
    await this.snapshotFile.write(node.snapshot());
    await this.store.dropPrefix(target + 1);
  }
}
