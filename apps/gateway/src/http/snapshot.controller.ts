import { Controller, Get, Inject, Query, Req, Res } from '@nestjs/common';
import { BackupRecordKind, SNAPSHOT_CHUNK_OVERHEAD_BYTES, decodeSnapshotManifest, encodeBackupEnd, encodeBackupHeader, encodeBackupMeta, encodeBackupRecord } from '@cairn/engine';
import { asTransport, type Subjects } from '@cairn/messaging';
import { SnapshotPart, Status, releaseSnapshotTransfer, requestSnapshotBegin, requestSnapshotChunk, type SnapshotBeginReply } from '@cairn/protocol';
import { realClock, sleep, type Clock, type Transport } from '@cairn/world';
import type { NatsConnection } from 'nats';
import type { Request, Response } from 'express';
import { IsOptional, Matches } from 'class-validator';
import type { ClusterView } from '../cluster/cluster-view';
import type { ReadIndexClient } from '../paths/read-index';
import type { ByteBudget } from '../server/flow';
import { CairnHttpException } from './errors';
import { HTTP_DEPS, type HttpDeps } from './http-deps';

/** Query of `GET /v1/snapshot`. */
export class SnapshotQuery {
  /** Storage node to take the snapshot from (default: the live node with the highest applied index). */
  @IsOptional()
  @Matches(/^[A-Za-z0-9_-]{1,64}$/, { message: 'node must be 1-64 of [A-Za-z0-9_-]' })
  node?: string;
}

/** How the gateway reaches storage nodes for a backup (built in gateway.ts). */
export interface SnapshotSourceDeps {
  nc: Transport | NatsConnection;
  subjects: Subjects;
  view: ClusterView;
  readIndex: Pick<ReadIndexClient, 'readIndex'>;
  /** One snapshot request's timeout (begin and each chunk), ms: the storage node's snapshotTransferTimeoutMs. */
  requestTimeoutMs: number;
  /** How long a begin waits for a node to apply up to the read index, ms (gateway readTimeoutMs). */
  beginTimeoutMs: number;
  /** The begin deadline and its retry waits run on it; absent: Node's timers (the process shell's). */
  clock?: Clock;
}

/** Thrown when no storage node can start a snapshot (none live, or each refused); answered 503. */
export class SnapshotUnavailableError extends Error {
  readonly code = 'SNAPSHOT_UNAVAILABLE';
}

/** Waits between begin attempts while the chosen node catches up to the read index, ms. */
const BEGIN_RETRY_MS = 100;

/**
 * Pulls one storage node's snapshot over NATS with the peer-bootstrap protocol (`snapshot.<node>`,
 * docs/protocol.md "Snapshot transfer"; one chunk request at a time, each reply ≤ the node's
 * chunkBytesMax ≤ SNAPSHOT_CHUNK_BYTES_MAX) and writes it as a backup file (libs/engine
 * backup-format.ts).
 */
export class SnapshotSource {
  private readonly bus: Transport;
  constructor(private readonly d: SnapshotSourceDeps) {
    this.bus = asTransport(d.nc);
  }

  /** Request/reply to `node`'s `snapshot.<node>` subject. */
  private asker(node: string): (data: Uint8Array) => Promise<Uint8Array> {
    return (data) => this.bus.request(this.d.subjects.snapshot(node), data, { timeoutMs: this.d.requestTimeoutMs }).then((r) => r.data);
  }

  /**
   * Opens a transfer on `node` (or the most advanced live node) at an applied index ≥ the
   * cluster's read index now, so the backup holds every write acknowledged before the request.
   * @throws SnapshotUnavailableError
   */
  async begin(gatewayId: string, node?: string): Promise<{ node: string; reply: SnapshotBeginReply }> {
    const ri = await this.d.readIndex.readIndex();
    if (!ri.ok) throw new SnapshotUnavailableError(`no read index: ${ri.message}`);
    const clock = this.d.clock ?? realClock;
    const deadline = clock.nowMs() + this.d.beginTimeoutMs;
    let last = 'no live storage node';
    for (;;) {
      const live = this.d.view.liveStorageNodes().map((s) => s.id);
      const candidates = node ? (live.includes(node) ? [node] : []) : live;
      if (node && !candidates.length) last = `storage node ${node} is not live`;
      for (const id of candidates) {
        try {
          return { node: id, reply: await requestSnapshotBegin(this.asker(id), { requesterId: `gateway-${gatewayId}`, minAppliedIndex: ri.index }) };
        } catch (e) {
          last = `${id}: ${(e as Error).message}`;
        }
      }
      if (clock.nowMs() + BEGIN_RETRY_MS > deadline) throw new SnapshotUnavailableError(`no storage node could start a snapshot at ≥ revision ${ri.index} (last: ${last})`);
      await sleep(clock, BEGIN_RETRY_MS);
    }
  }

  /** Chunk message of `file` at `offset` of an open transfer. @throws SnapshotRefusedError when the node answers not OK */
  chunk(node: string, transferId: string, file: string, offset: number): Promise<Uint8Array> {
    return requestSnapshotChunk(this.asker(node), { transferId, part: SnapshotPart.Engine, file, offset });
  }

  /** Releases the transfer on the node (best effort; an unreleased one expires after its idle timeout). */
  end(node: string, transferId: string): void {
    void releaseSnapshotTransfer(this.asker(node), transferId);
  }
}

/**
 * Writes `bytes` to the response, holding them in the gateway-wide ByteBudget until the socket
 * took them: resolves at once when the socket buffer has room, else at 'drain' (backpressure: at
 * most one chunk waits in the gateway per backup stream). Rejects when the client goes away.
 */
function writeHeld(res: Response, bytes: Buffer, budget: ByteBudget | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (res.destroyed || res.writableEnded) return reject(new Error('client closed the snapshot stream'));
    budget?.take(bytes.length);
    let released = false;
    const release = () => {
      if (!released) budget?.give(bytes.length);
      released = true;
    };
    const onClose = () => {
      release();
      reject(new Error('client closed the snapshot stream'));
    };
    if (res.write(bytes)) {
      release();
      return resolve();
    }
    res.once('close', onClose);
    res.once('drain', () => {
      res.off('close', onClose);
      release();
      resolve();
    });
  });
}

/**
 * `GET /v1/snapshot[?node=ID]` (docs/operations.md "Backup and restore"): a consistent snapshot
 * of one storage node at one revision, streamed as a backup file (`application/octet-stream`,
 * chunked). The status line is sent only once a node has opened its transfer (503 UNAVAILABLE
 * otherwise); a failure after that cuts the stream, which the reader detects (no END record).
 */
@Controller('v1/snapshot')
export class SnapshotController {
  constructor(@Inject(HTTP_DEPS) private readonly deps: HttpDeps) {}

  @Get()
  async save(@Query() q: SnapshotQuery, @Req() req: Request, @Res() res: Response): Promise<void> {
    const source = this.deps.snapshots;
    if (!source) throw new CairnHttpException(Status.Unavailable, 'snapshots are not served by this gateway (no NATS connection)');
    // A GET has no body: read its end now so the request deadline (frameDeadlineMs) stops counting.
    req.resume();
    if (this.deps.budget?.over()) throw new CairnHttpException(Status.Unavailable, 'overloaded: the gateway holds pendingBytesMax of unanswered requests and unread replies; retry later');
    let opened: Awaited<ReturnType<SnapshotSource['begin']>>;
    try {
      opened = await source.begin(this.deps.gatewayId, q.node);
    } catch (e) {
      throw new CairnHttpException(Status.Unavailable, (e as Error).message);
    }
    const { node, reply } = opened;
    try {
      await this.stream(source, node, reply, res);
    } catch (e) {
      this.deps.log?.warn({ err: e, node, appliedIndex: reply.appliedIndex }, 'snapshot stream cut');
      res.destroy();
    } finally {
      source.end(node, reply.transferId);
    }
  }

  private async stream(source: Pick<SnapshotSource, 'chunk'>, node: string, reply: SnapshotBeginReply, res: Response): Promise<void> {
    const manifest = decodeSnapshotManifest(reply.manifest);
    res.status(200);
    res.setHeader('Content-Type', 'application/octet-stream');
    res.setHeader('X-Cairn-Snapshot-Node', node);
    res.setHeader('X-Cairn-Snapshot-Revision', String(reply.appliedIndex));
    const budget = this.deps.budget;
    await writeHeld(res, Buffer.concat([encodeBackupHeader(reply.appliedIndex), encodeBackupMeta({ node, gateway: this.deps.gatewayId, savedAtMs: (this.deps.clock ?? realClock).nowMs(), appliedIndex: reply.appliedIndex, term: manifest.term }), encodeBackupRecord(BackupRecordKind.Manifest, reply.manifest)]), budget);
    let chunks = 0;
    let bytes = 0;
    for (const f of manifest.files) {
      let offset = 0;
      do {
        const message = await source.chunk(node, reply.transferId, f.name, offset);
        // File bytes of the message: total minus its framing and name (checked by every reader).
        const n = message.length - SNAPSHOT_CHUNK_OVERHEAD_BYTES - Buffer.byteLength(f.name, 'latin1');
        if (n < 0 || (n === 0 && f.sizeBytes > 0)) throw new Error(`chunk ${f.name}@${offset} from ${node}: ${message.length} bytes`);
        await writeHeld(res, encodeBackupRecord(BackupRecordKind.Chunk, message), budget);
        offset += n;
        bytes += n;
        chunks++;
      } while (offset < f.sizeBytes);
    }
    await writeHeld(res, encodeBackupEnd({ chunks, bytes }), budget);
    res.end();
  }
}
