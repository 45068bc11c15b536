import { crc32 } from 'node:zlib';
import { SnapshotInstaller } from '@cairn/engine';
import type { Clock, Disk } from '@cairn/log';
import { CodedError, releaseSnapshotTransfer, requestSnapshotBegin, requestSnapshotChunk, SNAPSHOT_CHUNK_BYTES_MAX, SnapshotPart, SnapshotRefusedError } from '@cairn/protocol';

/** Request/reply to a peer storage node's `snapshot.<peer>` subject; rejects on timeout or no responder. */
export type SnapshotRequest = (peer: string, data: Uint8Array, timeoutMs: number) => Promise<Uint8Array>;

/** A snapshot received into the engine installer's staging directory, not installed yet. */
export interface FetchedSnapshot {
  peer: string;
  appliedIndex: number;
  installer: SnapshotInstaller;
  /** The peer's session table as of `appliedIndex` (size and CRC32 checked). */
  sessions: Buffer;
  /** Engine file bytes + session table bytes received. */
  bytes: number;
  chunks: number;
  durationMs: number;
}

export class SnapshotFetchError extends CodedError {
  readonly code = 'STORAGE_SNAPSHOT_FETCH_FAILED';
  constructor(
    readonly peer: string,
    message: string,
  ) {
    super(`snapshot from ${peer}: ${message}`);
  }
}

export interface FetchSnapshotOptions {
  request: SnapshotRequest;
  peer: string;
  requesterId: string;
  minAppliedIndex: number;
  /** The engine directory the installer stages into (`<dir>/snapshot-install.staging`). */
  engineDir: string;
  /** The file operations of the install (default node:fs). */
  disk?: Disk;
  timeoutMs: number;
  /** Checked between requests: a true answer aborts the fetch (the node is stopping). */
  cancelled?: () => boolean;
  /** Called once the transfer began (diagnostics). */
  onBegin?: (info: { peer: string; appliedIndex: number; bytesTotal: number }) => void;
  /** The clock `durationMs` (and the installer's report) is read from: the node passes its world's (virtual in the simulator). */
  clock: Clock;
}

/**
 * Pulls one snapshot from `peer` (docs/protocol.md, "Snapshot transfer"): begin, then every engine
 * chunk `SnapshotInstaller.next()` names (each chunk message and each file checked by the
 * installer), then the session table in slices (size and CRC32 checked), then End. The result is
 * staged, not installed: the caller commits it (`installer.finish()`) once its engine is closed.
 * @throws SnapshotFetchError (the peer refused, a request failed or timed out, a bad session
 *   table), or the installer's SnapshotCorruptionError / SnapshotSequenceError; on any error the
 *   staging directory is deleted and the transfer released (best effort).
 */
export async function fetchSnapshot(o: FetchSnapshotOptions): Promise<FetchedSnapshot> {
  const started = o.clock.nowMs();
  const ask = async (data: Uint8Array): Promise<Uint8Array> => {
    if (o.cancelled?.()) throw new SnapshotFetchError(o.peer, 'cancelled (the node is stopping)');
    try {
      return await o.request(o.peer, data, o.timeoutMs);
    } catch (e) {
      throw new SnapshotFetchError(o.peer, `request failed: ${(e as Error).message}`);
    }
  };
  const begin = await requestSnapshotBegin(ask, { requesterId: o.requesterId, minAppliedIndex: o.minAppliedIndex }).catch((e: unknown) => {
    throw refusal(o.peer, e);
  });
  if (begin.chunkBytesMax < 1 || begin.chunkBytesMax > SNAPSHOT_CHUNK_BYTES_MAX) throw new SnapshotFetchError(o.peer, `chunkBytesMax ${begin.chunkBytesMax} outside 1..${SNAPSHOT_CHUNK_BYTES_MAX}`);
  const transferId = begin.transferId;
  const end = () => releaseSnapshotTransfer((data) => o.request(o.peer, data, o.timeoutMs), transferId);
  let installer: SnapshotInstaller | null = null;
  try {
    installer = await SnapshotInstaller.begin(o.engineDir, begin.manifest, { chunkBytesMax: begin.chunkBytesMax, disk: o.disk, clock: o.clock });
    if (installer.manifest.appliedIndex !== begin.appliedIndex) throw new SnapshotFetchError(o.peer, `manifest at index ${installer.manifest.appliedIndex}, begin reply says ${begin.appliedIndex}`);
    o.onBegin?.({ peer: o.peer, appliedIndex: begin.appliedIndex, bytesTotal: installer.progress().bytesTotal + begin.sessionBytes });
    let chunks = 0;
    for (let want = installer.next(); want; want = installer.next()) {
      await installer.write(await requestSnapshotChunk(ask, { transferId, part: SnapshotPart.Engine, file: want.file, offset: want.offset }));
      chunks++;
    }
    const sessions = Buffer.alloc(begin.sessionBytes);
    for (let at = 0; at < begin.sessionBytes; ) {
      const data = await requestSnapshotChunk(ask, { transferId, part: SnapshotPart.Sessions, file: '', offset: at });
      if (data.length === 0 || data.length > begin.chunkBytesMax || at + data.length > begin.sessionBytes) throw new SnapshotFetchError(o.peer, `session table slice of ${data.length} bytes at ${at} of ${begin.sessionBytes}`);
      sessions.set(data, at);
      at += data.length;
      chunks++;
    }
    if (crc32(sessions) !== begin.sessionCrc32) throw new SnapshotFetchError(o.peer, 'session table CRC32 mismatch');
    void end();
    return { peer: o.peer, appliedIndex: begin.appliedIndex, installer, sessions, bytes: installer.progress().bytesTotal + sessions.length, chunks, durationMs: o.clock.nowMs() - started };
  } catch (e) {
    await installer?.abort();
    void end();
    throw refusal(o.peer, e);
  }
}

/** The peer's refusal (a reply not OK) as a SnapshotFetchError; other errors unchanged. */
function refusal(peer: string, e: unknown): unknown {
  return e instanceof SnapshotRefusedError ? new SnapshotFetchError(peer, e.message) : e;
}

/** A peer storage node as its status heartbeats show it. */
export interface PeerInfo {
  id: string;
  appliedIndex: number;
}

export interface BootstrapLoopOptions {
  /** Live peers (heard from recently), this node excluded. */
  peers(): PeerInfo[];
  /** Fetches a snapshot of at least `minAppliedIndex` from `peer`. */
  fetch(peer: string, minAppliedIndex: number): Promise<FetchedSnapshot>;
  /** Installs a fetched snapshot (closes and reopens the node's stores). Errors are fatal (not retried). */
  install(f: FetchedSnapshot): Promise<void>;
  /** First wait after a failure, ms; doubles per consecutive failure up to 10×. */
  backoffMs: number;
  /** Waits `ms` (a timer in the node; immediate in tests). */
  wait(ms: number): Promise<void>;
  stopped(): boolean;
  log: { info(o: object, msg: string): void; warn(o: object, msg: string): void };
}

/** Thrown by `BootstrapLoop.run` when the node stopped before a snapshot was installed. */
export class BootstrapStoppedError extends CodedError {
  readonly code = 'STORAGE_BOOTSTRAP_STOPPED';
  constructor() {
    super('storage node stopped during bootstrap');
  }
}

/**
 * The bootstrap state machine of a storage node that cannot catch up from the Raft log:
 * pick the live peer with the highest applied index ≥ `minAppliedIndex` that has not failed in this
 * round → fetch its snapshot → install. A failed fetch (peer died or refused, checksum error) is
 * logged, the peer set aside for the round, and after a backoff the loop starts from scratch with
 * another peer (no resume; docs/engine.md). When every live peer failed (or none qualifies) the
 * round restarts after the backoff.
 */
export class BootstrapLoop {
  constructor(private readonly o: BootstrapLoopOptions) {}

  /** The peer to try next, or null. */
  static pickPeer(peers: PeerInfo[], minAppliedIndex: number, failed: ReadonlySet<string>): PeerInfo | null {
    let best: PeerInfo | null = null;
    for (const p of peers) {
      if (p.appliedIndex < minAppliedIndex || failed.has(p.id)) continue;
      if (!best || p.appliedIndex > best.appliedIndex || (p.appliedIndex === best.appliedIndex && p.id < best.id)) best = p;
    }
    return best;
  }

  /** Resolves once a snapshot at ≥ `minAppliedIndex` is installed. @throws BootstrapStoppedError; the install's error. */
  async run(minAppliedIndex: number): Promise<FetchedSnapshot> {
    const failed = new Set<string>();
    let failures = 0;
    for (;;) {
      if (this.o.stopped()) throw new BootstrapStoppedError();
      const peer = BootstrapLoop.pickPeer(this.o.peers(), minAppliedIndex, failed);
      if (!peer) {
        const live = this.o.peers();
        this.o.log.warn({ minAppliedIndex, peers: live, failedThisRound: [...failed] }, 'snapshot bootstrap: no live peer storage node with a recent enough applied index; waiting');
        failed.clear();
        await this.o.wait(this.backoff(++failures));
        continue;
      }
      let fetched: FetchedSnapshot;
      try {
        fetched = await this.o.fetch(peer.id, minAppliedIndex);
      } catch (e) {
        if (this.o.stopped()) throw new BootstrapStoppedError();
        failed.add(peer.id);
        const waitMs = this.backoff(++failures);
        this.o.log.warn({ err: e, peer: peer.id, failures, retryInMs: waitMs }, `snapshot bootstrap from ${peer.id} failed; starting over with another peer after the backoff`);
        await this.o.wait(waitMs);
        continue;
      }
      await this.o.install(fetched);
      return fetched;
    }
  }

  private backoff(failures: number): number {
    return this.o.backoffMs * Math.min(10, 2 ** Math.min(failures - 1, 4));
  }
}
