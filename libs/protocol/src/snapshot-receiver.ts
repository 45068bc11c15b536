import { Status, statusName } from './constants';
import {
  SnapshotPart,
  decodeSnapshotBeginReply,
  decodeSnapshotChunkReply,
  encodeSnapshotBeginRequest,
  encodeSnapshotChunkRequest,
  type SnapshotBeginReply,
  type SnapshotBeginRequest,
  type SnapshotChunkRequest,
} from './snapshot-messages';
import { CodedError } from './coded-error';

/**
 * One request/reply to the sender's `snapshot.<node>` subject (docs/protocol.md "Snapshot
 * transfer"): the caller's transport, with its timeout and its errors.
 */
export type SnapshotAsk = (request: Uint8Array) => Promise<Uint8Array>;

/** The sender answered a transfer request with a status other than OK (`status`); the message names the request. */
export class SnapshotRefusedError extends CodedError {
  readonly code = 'SNAPSHOT_REFUSED';
  constructor(
    readonly status: Status,
    what: string,
    reason: string,
  ) {
    super(`${what} answered ${statusName(status)}: ${reason}`);
  }
}

/**
 * Receiver side: opens a transfer. @returns the OK begin reply.
 * @throws SnapshotRefusedError (not OK), ProtocolError (a malformed reply), or `ask`'s errors
 */
export async function requestSnapshotBegin(ask: SnapshotAsk, q: SnapshotBeginRequest): Promise<SnapshotBeginReply> {
  const reply = decodeSnapshotBeginReply(await ask(encodeSnapshotBeginRequest(q)));
  if (reply.status !== Status.Ok) throw new SnapshotRefusedError(reply.status, 'begin', reply.message);
  return reply;
}

/**
 * Receiver side: one part of an open transfer (an engine chunk message, or a session table slice).
 * @returns the reply's data. @throws SnapshotRefusedError (not OK), ProtocolError, or `ask`'s errors
 */
export async function requestSnapshotChunk(ask: SnapshotAsk, q: Omit<SnapshotChunkRequest, 'part'> & { part: SnapshotPart.Engine | SnapshotPart.Sessions }): Promise<Uint8Array> {
  const r = decodeSnapshotChunkReply(await ask(encodeSnapshotChunkRequest(q)));
  if (r.status !== Status.Ok) throw new SnapshotRefusedError(r.status, q.part === SnapshotPart.Sessions ? `session table @${q.offset}` : `chunk ${q.file}@${q.offset}`, r.message);
  return r.data;
}

/** Receiver side: releases the transfer (best effort, never rejects: an unreleased transfer expires after the sender's snapshotTransferTimeoutMs). */
export async function releaseSnapshotTransfer(ask: SnapshotAsk, transferId: string): Promise<void> {
  await ask(encodeSnapshotChunkRequest({ transferId, part: SnapshotPart.End, file: '', offset: 0 })).catch(() => undefined);
}
