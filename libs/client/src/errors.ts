import { CodedError, Status, statusName, type Response } from '@cairn/protocol';

/**
 * Base of every error the client rejects with (except the raw socket error of a failed connect,
 * e.g. `ECONNREFUSED`, which is passed through). `code` is stable: switch on it rather than on
 * `instanceof` across package copies. `retryable`: repeating the same request may succeed
 * (for writes: SET/DEL are idempotent in the state they leave, so retrying them is safe).
 */
export class CairnError extends CodedError {
  constructor(
    readonly code: string,
    /** The response status, or the status the failure is closest to for client-side failures. */
    readonly status: Status,
    message: string,
    readonly retryable = false,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** NOT_FOUND for an opcode other than GET (GET resolves null instead). */
export class NotFoundError extends CairnError {
  constructor(message: string) {
    super('NOT_FOUND', Status.NotFound, message);
  }
}

/** A lease that is not live (expired, revoked, never granted): LEASE_REVOKE / LEASE_KEEPALIVE NOT_FOUND, a SET with LEASE refused, or a keep-alive loop that lost its lease. Not retryable: grant a new lease. */
export class LeaseNotFoundError extends CairnError {
  constructor(message: string) {
    super('LEASE_NOT_FOUND', Status.NotFound, message);
  }
}

/** A keep-alive loop (`keepAlive`) lost its lease: the gateway answered NOT_FOUND, or no renewal was acknowledged for a whole TTL. Its keys are gone or about to go. */
export class LeaseLostError extends CairnError {
  constructor(
    readonly leaseId: number,
    reason: string,
    cause?: unknown,
  ) {
    super('LEASE_LOST', Status.NotFound, `lease ${leaseId} lost: ${reason}`, false, { cause });
  }
}

/** LEASE_GRANT with an id that is live (CONDITION_FAILED). */
export class LeaseExistsError extends CairnError {
  constructor(message: string) {
    super('LEASE_EXISTS', Status.ConditionFailed, message);
  }
}

/** UNAVAILABLE: no leader yet, replicas catching up, cluster timeouts. Retryable; a write may still have been applied. */
export class UnavailableError extends CairnError {
  constructor(message: string) {
    super('UNAVAILABLE', Status.Unavailable, message, true);
  }
}

/** BAD_REQUEST: the gateway refused the frame (unknown opcode/flags, missing or forbidden key/value). */
export class BadRequestError extends CairnError {
  constructor(message: string) {
    super('BAD_REQUEST', Status.BadRequest, message);
  }
}

/** TOO_LARGE: key over keyBytesMax or value over valueBytesMax of the gateway. */
export class TooLargeError extends CairnError {
  constructor(message: string) {
    super('TOO_LARGE', Status.TooLarge, message);
  }
}

/**
 * Authentication or authorization refused (docs/security.md): base of UnauthenticatedError and
 * PermissionDeniedError. Not retryable: the same credentials get the same answer.
 */
export class AuthError extends CairnError {
  constructor(code: 'UNAUTHENTICATED' | 'PERMISSION_DENIED', status: Status, message: string) {
    super(code, status, message);
  }
}

/**
 * UNAUTHENTICATED: auth is enabled and the connection has not logged in (no `username`/`token`
 * given), or the credentials are wrong (an unknown user gets the same answer), the token is bad or
 * expired, the user was deleted, or the client address made too many failed attempts. Also what
 * `CairnClient.connect` / `CairnPool.connect` reject with when their AUTH is refused.
 */
export class UnauthenticatedError extends AuthError {
  constructor(message: string) {
    super('UNAUTHENTICATED', Status.Unauthenticated, message);
  }
}

/** PERMISSION_DENIED: the user's roles do not cover the key, the whole range, or the request. */
export class PermissionDeniedError extends AuthError {
  constructor(message: string) {
    super('PERMISSION_DENIED', Status.PermissionDenied, message);
  }
}

/** ERROR, or a status byte this client does not know (`status` holds the raw byte). */
export class ServerError extends CairnError {
  constructor(message: string, status: Status = Status.Error) {
    super('SERVER_ERROR', status, message);
  }
}

/** NOT_LEADER; `leaderHint` is the leader's id when the server knew it, else ''. Retryable. */
export class NotLeaderError extends CairnError {
  constructor(readonly leaderHint: string) {
    super('NOT_LEADER', Status.NotLeader, leaderHint ? `not the leader; leader is ${leaderHint}` : 'not the leader; leader unknown', true);
  }
}

/**
 * No response within the request timeout (or no connection within `connectTimeoutMs`). Retryable.
 * `requestSent`: false only when the frame provably never left the client (the request was still
 * waiting for an in-flight slot or for its write); true means the outcome is unknown.
 */
export class TimeoutError extends CairnError {
  constructor(
    message: string,
    readonly requestSent = true,
  ) {
    super('TIMEOUT', Status.Unavailable, message, true);
  }
}

/**
 * The connection closed (by the server, a network error, a protocol violation or `close()`) before
 * the response. Retryable on a new connection. `requestSent` as for TimeoutError: false proves the
 * gateway never received the frame, so even a write may be re-sent.
 */
export class ConnectionClosedError extends CairnError {
  constructor(
    message: string,
    cause?: unknown,
    readonly requestSent = true,
  ) {
    super('CONNECTION_CLOSED', Status.Unavailable, message, true, cause === undefined ? undefined : { cause });
  }
}

/**
 * The caller's AbortSignal fired (name `AbortError`, code `ABORT_ERR` as Node's own abort errors);
 * `cause` is the signal's reason. Not retryable. The request's in-flight slot is freed at once; a
 * frame already written may still be applied by the gateway (its response is dropped as late).
 */
export class AbortError extends CairnError {
  constructor(message: string, reason?: unknown) {
    super('ABORT_ERR', Status.Error, message, false, reason === undefined ? undefined : { cause: reason });
  }
}

/**
 * INCR answered CONDITION_FAILED: the key's value is not a decimal signed 64-bit integer, or the
 * sum would overflow (the message is Redis's text); nothing was written. `revision`: the index it
 * was evaluated at. Not retryable: it is the answer.
 */
export class IncrRefusedError extends CairnError {
  constructor(
    message: string,
    readonly revision: number,
  ) {
    super('INCR_REFUSED', Status.ConditionFailed, message);
  }
}

/** CairnPool: no gateway has a live connection right now (all down or reconnecting). Nothing was sent; retryable. */
export class NoGatewayError extends CairnError {
  constructor(message: string) {
    super('NO_GATEWAY', Status.Unavailable, message, true);
  }
}

/** The server broke protocol v1 (bad magic/version, a payload over `payloadBytesMax`, a wrong PING echo); the connection is closed. */
export class ResponseProtocolError extends CairnError {
  constructor(message: string, cause?: unknown) {
    super('PROTOCOL_ERROR', Status.Error, message, false, cause === undefined ? undefined : { cause });
  }
}

/** More callers waiting for an in-flight slot than `waitingMax`. Retryable once load drops. */
export class ClientOverloadedError extends CairnError {
  constructor(waitingMax: number) {
    super('CLIENT_OVERLOADED', Status.Unavailable, `more than waitingMax ${waitingMax} requests are waiting for an in-flight slot`, true);
  }
}

/**
 * A watch's start revision is older than the oldest one the cluster retains (CANCELED frame,
 * reason COMPACTED; etcd ErrCompacted). `oldestRevision`: the smallest revision a watch may start
 * from now; `requestedRevision`: the revision the watch asked for. Not retryable as is: start
 * again from `oldestRevision` (events in between are lost) or re-read the state.
 */
export class WatchCompactedError extends CairnError {
  constructor(
    message: string,
    readonly oldestRevision: number,
    readonly requestedRevision: number,
  ) {
    super('COMPACTED', Status.Error, message);
  }
}

/**
 * A watcher did not keep up: the gateway cancelled it SLOW (its connection did not take the
 * events: gateway.watchQueueEventsMax / watchQueueBytesMax), or the iterator's own buffer crossed
 * `bufferEventsMax` / `bufferBytesMax` because the loop did not pull. Every event before
 * `resumeRevision` was yielded: watching again from it gives no gap and no duplicate. Retryable.
 */
export class WatchSlowError extends CairnError {
  constructor(
    message: string,
    readonly resumeRevision: number,
  ) {
    super('SLOW', Status.Unavailable, message, true);
  }
}

/** `observeLeader` would follow more candidates than its `candidatesMax`, or more of their key and value bytes than `candidateBytesMax` (docs/recipes.md). Not retryable as is. */
export class CandidatesMaxError extends CairnError {
  constructor(message: string) {
    super('CANDIDATES_MAX', Status.TooLarge, message);
  }
}

/** The typed error for a non-OK response (NOT_FOUND included: callers decide when it is not an error). */
export function errorForResponse(res: Response): CairnError {
  const text = res.payload.toString('utf8');
  switch (res.status) {
    case Status.NotFound:
      return new NotFoundError(text || 'not found');
    case Status.Unavailable:
      return new UnavailableError(text || 'unavailable');
    case Status.BadRequest:
      return new BadRequestError(text || 'bad request');
    case Status.TooLarge:
      return new TooLargeError(text || 'too large');
    case Status.NotLeader:
      return new NotLeaderError(text);
    case Status.Error:
      return new ServerError(text || 'server error');
    case Status.Unauthenticated:
      return new UnauthenticatedError(text || 'unauthenticated');
    case Status.PermissionDenied:
      return new PermissionDeniedError(text || 'permission denied');
    default:
      return new ServerError(`unknown response status ${statusName(res.status)}${text ? `: ${text}` : ''}`, res.status);
  }
}
