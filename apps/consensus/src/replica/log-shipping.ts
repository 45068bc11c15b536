import { Status, decodeFetchRequest, encodeFetchReply, encodeShipBatch, type WireEntry } from '@cairn/protocol';
import { EntryType, type Entry } from '@cairn/raft';
import { payloadBytesMax, publishSafe, type Subjects } from '@cairn/messaging';
import type { Logger } from '@cairn/logging';
import type { Transport } from '@cairn/world';
import type { RaftLogStore } from '../storage/raft-log-store';
import { clampFetchEntries, packShipBatches } from './bus-batches';

/** Largest entry count per ShipBatch (bytes: bounded by the server's max_payload, payloadBytesMax). */
export const SHIP_BATCH_ENTRIES_MAX = 4096;
const EMPTY = new Uint8Array(0);
/**
 * A commit heartbeat that would repeat what the storage nodes were last sent (same term and commit
 * index, by a ShipBatch or a commit heartbeat) is sent only this long after that, ms: an idle
 * leader sends about 3 a second instead of one per heartbeat interval, and a busy one about as
 * many (its ShipBatches carry the commit index). A node that lost the last ShipBatch hears of it
 * within this bound; one that lost an earlier one sees the gap at the next batch.
 */
export const COMMIT_HEARTBEAT_REFRESH_MS = 300;

/**
 * What storage nodes receive in place of a Raft config entry: a no-op at the same index (they hold
 * no Raft configuration, and their apply loop needs every index).
 */
export function forStorage(e: Entry): Entry {
  return e.type === EntryType.Config ? { index: e.index, term: e.term, type: EntryType.Noop, data: EMPTY } : e;
}

/**
 * The replica's side of log shipping (docs/architecture.md, "Log shipping and storage nodes"):
 * the leader publishes committed entries on `ship` and a commit heartbeat; every replica answers
 * `log.fetch.<replica>` backfill requests from its log, up to what it has handed on.
 */
export class LogShipper {
  /** What the storage nodes were last sent (a ShipBatch or a commit heartbeat): its term, commit index and when (ms, the world's clock). */
  private lastHeartbeat = { term: -1, commitIndex: -1, atMs: 0 };

  constructor(private readonly o: { id: string; bus: Transport; subjects: Subjects; log: Logger }) {}

  /**
   * Publishes committed entries to every storage node, in index order, in batches of at most
   * payloadBytesMax bytes and SHIP_BATCH_ENTRIES_MAX entries. A lost batch is backfilled: the
   * node sees the gap and fetches (commit heartbeat).
   */
  ship(entries: Entry[], term: number, nowMs: number): void {
    const { bus, subjects, log, id } = this.o;
    const batches = packShipBatches(entries.map(forStorage) as WireEntry[], { leaderId: id, term, bytesMax: payloadBytesMax(bus), entriesMax: SHIP_BATCH_ENTRIES_MAX });
    for (const payload of batches) publishSafe(bus, subjects.ship(), payload, log);
    // Each batch carries its last index as the commit index: the next commit heartbeat need not repeat it.
    if (entries.length) this.lastHeartbeat = { term, commitIndex: entries[entries.length - 1].index, atMs: nowMs };
  }

  /**
   * An empty ShipBatch: tells a node that missed a batch (or restarted) how far to backfill. The
   * leader calls it with each Raft heartbeat it sends, so both leave in one socket write; one that
   * repeats what was last sent (same term and commit index, by a ShipBatch or a commit heartbeat)
   * is skipped until COMMIT_HEARTBEAT_REFRESH_MS passed since that. Returns whether it was sent.
   */
  commitHeartbeat(term: number, commitIndex: number, nowMs: number): boolean {
    const last = this.lastHeartbeat;
    if (last.term === term && last.commitIndex === commitIndex && nowMs - last.atMs < COMMIT_HEARTBEAT_REFRESH_MS) return false;
    this.lastHeartbeat = { term, commitIndex, atMs: nowMs };
    publishSafe(this.o.bus, this.o.subjects.ship(), encodeShipBatch({ leaderId: this.o.id, term, commitIndex, entries: [] }), this.o.log);
    return true;
  }

  /**
   * Answers a FetchRequest with entries from `fromIndex` up to `applied` (this replica's handed-on
   * index), within the request's and the bus's byte bound; an ERROR naming compaction when the
   * entries are gone (Raft §7: the node must bootstrap from a peer's storage snapshot).
   */
  fetchReply(data: Uint8Array, store: RaftLogStore, applied: number): Uint8Array {
    const req = decodeFetchRequest(data);
    if (req.fromIndex < store.firstIndex()) {
      return encodeFetchReply({ status: Status.Error, commitIndex: applied, entries: [], message: `compacted: entries before ${store.firstIndex()} are gone from the Raft log; bootstrap from a storage snapshot` });
    }
    const to = Math.min(applied, req.fromIndex + Math.max(1, req.entriesMax) - 1);
    // The reply must fit one NATS message whatever the requester asked for.
    const bytesMax = Math.min(req.bytesMax, payloadBytesMax(this.o.bus));
    const entries = req.fromIndex >= 1 && req.fromIndex <= to ? store.entries(req.fromIndex, to, bytesMax) : [];
    return encodeFetchReply({ status: Status.Ok, commitIndex: applied, entries: clampFetchEntries(entries.map(forStorage) as WireEntry[], bytesMax), message: '' });
  }
}
