import { refreshConf } from './membership';
import type { Progress } from './progress';
import type { Raft } from './raft';
import { EntryType, MessageType, decodeConfState, encodeConfState, type Entry, type Message, type NodeId, type Snapshot } from './types';

/**
 * Log compaction and InstallSnapshot (Raft §7). A Cairn replica's snapshot is metadata only
 * (index, term, configuration): storage nodes keep the state machine and their own snapshots.
 */

/** See RaftNode.compact. @throws RangeError `CompactInvalid` when `index` > the applied index. */
export function compact(r: Raft, index: number): void {
  if (index <= r.log.snapshotIndex) return;
  if (!Number.isSafeInteger(index) || index > r.applied) throw new RangeError(`CompactInvalid: compact to ${index} beyond the applied index ${r.applied}`);
  const i = r.log.lastConfIndex(index);
  if (i) {
    r.snapshotConf = decodeConfState(r.log.entry(i).data);
    r.snapshotConfIndex = i;
  }
  r.log.compact(index);
}

/** The compacted prefix (index 0 when nothing was compacted). */
export function snapshotOf(r: Raft): Snapshot {
  return { index: r.log.snapshotIndex, term: r.log.snapshotTerm, conf: r.snapshotConf };
}

/**
 * Leader: the follower needs entries we compacted. Send the snapshot (metadata and the
 * configuration at its index) and wait in probe for its answer (a lost one is re-sent after the
 * next heartbeat response, like a lost probe).
 */
export function sendSnapshot(r: Raft, to: NodeId, pr: Progress): boolean {
  const snap = snapshotOf(r);
  const confEntry: Entry = { index: snap.index, term: snap.term, type: EntryType.Config, data: encodeConfState(snap.conf) };
  r.send({ type: MessageType.Snapshot, to, index: snap.index, logTerm: snap.term, entries: [confEntry], commit: r.commit });
  pr.becomeProbe(snap.index + 1);
  pr.probeSent = true;
  return true;
}

/**
 * Follower: InstallSnapshot receiver. Already covered by our commit: just acknowledge. Our log
 * holds the snapshot's last entry: keep the log, commit up to it. Otherwise discard the whole log
 * and start after the snapshot, adopting its configuration; `Ready.snapshot` tells the driver.
 * @throws Error `SnapshotInvalid` without the configuration entry at the snapshot index.
 */
export function handleSnapshot(r: Raft, m: Message): void {
  const index = m.index;
  const term = m.logTerm;
  const confEntry = m.entries[0];
  if (!confEntry || confEntry.type !== EntryType.Config || confEntry.index !== index) throw new Error(`SnapshotInvalid: snapshot at ${index} from ${m.from} lacks its configuration entry`);
  if (index <= r.commit) {
    r.send({ type: MessageType.AppendResponse, to: m.from, index: r.commit });
    return;
  }
  if (r.log.matchTerm(index, term)) {
    r.commitTo(index);
    r.send({ type: MessageType.AppendResponse, to: m.from, index });
    return;
  }
  const conf = decodeConfState(confEntry.data);
  r.log.restore(index, term);
  r.snapshotConf = conf;
  r.snapshotConfIndex = index;
  r.commit = index;
  r.applied = index;
  r.pendingSnapshot = { index, term, conf };
  refreshConf(r);
  r.send({ type: MessageType.AppendResponse, to: m.from, index });
}
