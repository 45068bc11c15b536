import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { encodeSnapshotChunk, type EngineSnapshot, type SnapshotReader } from '@cairn/engine';
import {
  SNAPSHOT_BEGIN_REQUEST_TYPE,
  SNAPSHOT_CHUNK_BYTES_MAX,
  SNAPSHOT_CHUNK_REQUEST_TYPE,
  SnapshotPart,
  Status,
  decodeSnapshotBeginRequest,
  decodeSnapshotChunkRequest,
  encodeSnapshotBeginReply,
  encodeSnapshotChunkReply,
  peekMessageType,
} from '@cairn/protocol';

/** An engine snapshot plus the session table encoded as of the same applied index. */
export interface NodeSnapshot {
  snapshot: EngineSnapshot;
  sessions: Buffer;
}

export interface SnapshotServerOptions {
  /** null when the node can serve a snapshot now, else why not (bootstrapping itself, stopping). */
  unavailable(): string | null;
  /** A snapshot at an applied index ≥ `minAppliedIndex` if the node has applied that far (taken between two apply batches, or reused). */
  take(minAppliedIndex: number): Promise<NodeSnapshot>;
  /** The engine's reader of a committed snapshot (keeps it on disk until closed). */
  openReader(appliedIndex: number, chunkBytesMax: number): SnapshotReader;
  transfersMax: number;
  /** A transfer without a request for this long is dropped and its reader closed, ms. */
  idleTimeoutMs: number;
  /** File bytes per engine chunk / session slice; at most SNAPSHOT_CHUNK_BYTES_MAX. */
  chunkBytesMax?: number;
  now?: () => number;
  log?: { info(o: object, msg: string): void; warn(o: object, msg: string): void };
}

interface Transfer {
  id: string;
  requesterId: string;
  reader: SnapshotReader;
  sessions: Buffer;
  lastUsedMs: number;
  bytesSent: number;
}

/**
 * Serves this storage node's snapshots to peers (subject `snapshot.<node>`; messages in
 * libs/protocol snapshot-messages.ts, docs/protocol.md "Snapshot transfer"). A begin request opens
 * a transfer: a snapshot reader (the snapshot stays on disk while it is open) and the session table
 * bytes of the same applied index; chunk requests are served from it by (file, offset), so a
 * receiver pulls at its own pace. A transfer ends with an End request or after `idleTimeoutMs`
 * without a request (a dead peer never pins snapshot files); at most `transfersMax` at once.
 */
export class SnapshotServer {
  private readonly transfers = new Map<string, Transfer>();
  /** Begin requests between their slot check and their transfer (they hold a slot). */
  private starting = 0;
  private readonly chunkBytesMax: number;
  private readonly now: () => number;

  constructor(private readonly opts: SnapshotServerOptions) {
    this.chunkBytesMax = opts.chunkBytesMax ?? SNAPSHOT_CHUNK_BYTES_MAX;
    if (!Number.isSafeInteger(this.chunkBytesMax) || this.chunkBytesMax <= 0 || this.chunkBytesMax > SNAPSHOT_CHUNK_BYTES_MAX) {
      throw new RangeError(`chunkBytesMax must be an integer in 1..${SNAPSHOT_CHUNK_BYTES_MAX}, got ${opts.chunkBytesMax}`);
    }
    this.now = opts.now ?? Date.now;
  }

  /** Transfers open now. */
  size(): number {
    return this.transfers.size;
  }

  /** Answers one request (begin or chunk); never throws for a bad request, answers it. */
  async handle(data: Uint8Array): Promise<Uint8Array> {
    const type = peekMessageType(data) as number;
    if (type === SNAPSHOT_BEGIN_REQUEST_TYPE) return this.begin(data);
    if (type === SNAPSHOT_CHUNK_REQUEST_TYPE) return this.chunk(data);
    return encodeSnapshotChunkReply({ status: Status.BadRequest, message: `not a snapshot request: message type ${type}`, data: Buffer.alloc(0) });
  }

  /** Drops transfers idle for `idleTimeoutMs` (called on every request and by the node's timer). */
  sweep(): void {
    const now = this.now();
    for (const t of [...this.transfers.values()]) {
      if (now - t.lastUsedMs >= this.opts.idleTimeoutMs) {
        this.opts.log?.warn({ transferId: t.id, requester: t.requesterId, bytesSent: t.bytesSent, idleMs: now - t.lastUsedMs }, 'snapshot transfer expired (peer silent): released');
        this.drop(t);
      }
    }
  }

  /** Drops every transfer (the node stops or bootstraps itself). */
  closeAll(): void {
    for (const t of [...this.transfers.values()]) this.drop(t);
  }

  private drop(t: Transfer): void {
    this.transfers.delete(t.id);
    void t.reader.close().catch(() => undefined);
  }

  private unavailableReply(message: string): Uint8Array {
    return encodeSnapshotBeginReply({ status: Status.Unavailable, message, transferId: '', appliedIndex: 0, chunkBytesMax: 0, manifest: Buffer.alloc(0), sessionBytes: 0, sessionCrc32: 0 });
  }

  private async begin(data: Uint8Array): Promise<Uint8Array> {
    const req = decodeSnapshotBeginRequest(data);
    this.sweep();
    const why = this.opts.unavailable();
    if (why) return this.unavailableReply(why);
    if (this.transfers.size + this.starting >= this.opts.transfersMax) return this.unavailableReply(`serving ${this.opts.transfersMax} snapshot transfers already (snapshotTransfersMax)`);
    this.starting++;
    let taken: NodeSnapshot;
    let reader: SnapshotReader;
    try {
      taken = await this.opts.take(req.minAppliedIndex);
      reader = this.opts.openReader(taken.snapshot.appliedIndex, this.chunkBytesMax);
    } catch (e) {
      return this.unavailableReply(`snapshot not available: ${(e as Error).message}`);
    } finally {
      this.starting--;
    }
    if (taken.snapshot.appliedIndex < req.minAppliedIndex) {
      void reader.close();
      return this.unavailableReply(`applied index ${taken.snapshot.appliedIndex} is below the ${req.minAppliedIndex} asked for`);
    }
    const t: Transfer = { id: randomBytes(8).toString('hex'), requesterId: req.requesterId, reader, sessions: taken.sessions, lastUsedMs: this.now(), bytesSent: 0 };
    this.transfers.set(t.id, t);
    this.opts.log?.info({ transferId: t.id, requester: req.requesterId, appliedIndex: taken.snapshot.appliedIndex, sizeBytes: taken.snapshot.sizeBytes, sessionBytes: t.sessions.length }, 'snapshot transfer started');
    return encodeSnapshotBeginReply({
      status: Status.Ok,
      message: '',
      transferId: t.id,
      appliedIndex: taken.snapshot.appliedIndex,
      chunkBytesMax: this.chunkBytesMax,
      manifest: reader.manifestBytes,
      sessionBytes: t.sessions.length,
      sessionCrc32: crc32(t.sessions),
    });
  }

  private async chunk(data: Uint8Array): Promise<Uint8Array> {
    const req = decodeSnapshotChunkRequest(data);
    this.sweep();
    const t = this.transfers.get(req.transferId);
    const reply = (status: Status, message: string, bytes: Uint8Array = Buffer.alloc(0)) => encodeSnapshotChunkReply({ status, message, data: bytes });
    if (!t) return reply(Status.NotFound, `no snapshot transfer ${req.transferId} (unknown or expired)`);
    t.lastUsedMs = this.now();
    if (req.part === SnapshotPart.End) {
      this.opts.log?.info({ transferId: t.id, requester: t.requesterId, bytesSent: t.bytesSent }, 'snapshot transfer ended');
      this.drop(t);
      return reply(Status.Ok, '');
    }
    if (req.part === SnapshotPart.Sessions) {
      if (req.offset > t.sessions.length || (req.offset === t.sessions.length && t.sessions.length > 0)) return reply(Status.BadRequest, `session table offset ${req.offset} outside its ${t.sessions.length} bytes`);
      const slice = t.sessions.subarray(req.offset, req.offset + this.chunkBytesMax);
      t.bytesSent += slice.length;
      return reply(Status.Ok, '', slice);
    }
    try {
      const c = await t.reader.readChunk(req.file, req.offset);
      t.bytesSent += c.bytes.length;
      return reply(Status.Ok, '', encodeSnapshotChunk(c));
    } catch (e) {
      return reply(Status.Error, `snapshot chunk ${req.file}@${req.offset}: ${(e as Error).message}`);
    }
  }
}
