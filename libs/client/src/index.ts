/**
 * `@cairn/client`: the TypeScript client of Cairn over protocol v1 (docs/protocol.md):
 * `CairnClient`, one pipelined TCP connection to a gateway, and `CairnPool`, connections to several
 * gateways with deadlines, abort, retries and failover.
 */
export { CairnClient, newSessionId, type ClientCredentials, type ClientOptions, type ClientTlsOptions, type StreamListener } from './client';
export { CairnPool, type GatewayAddress, type PoolOptions, type PoolStats } from './pool';
export type { DelOptions, GetOptions, GetResult, IncrResult, LeaseGrantResult, RangeItem, RangePage, RangeReadOptions, RequestOptions, ScanOptions, SetOptions, SetResult, TxnCommitResult } from './commands';
export { LeaseKeeper, type KeepAliveOptions } from './lease-keeper';
export type { LeaseTtl } from '@cairn/protocol';
export { TxnBuilder, compare, op, type CompareOperator, type TxnRangeOptions } from './txn';
export { campaign, lock, observeLeader, type Held, type HoldOptions, type LeaderObservation, type ObserveOptions, type RecipeClient } from './recipes';
export { ClientSession } from './session';
export { watchRequest, type ClientWatchOptions, type WatchBatch, type WatchEventItem, type WatchItem, type WatchProgressItem } from './watch';
export { RetryBudget, fullJitterBackoffMs, isIdempotent, mayRetry, provablyNotSent, type RetryWrites } from './retry';
export {
  AbortError,
  AuthError,
  BadRequestError,
  CairnError,
  CandidatesMaxError,
  ClientOverloadedError,
  IncrRefusedError,
  LeaseExistsError,
  LeaseLostError,
  LeaseNotFoundError,
  ConnectionClosedError,
  NoGatewayError,
  NotFoundError,
  NotLeaderError,
  PermissionDeniedError,
  ResponseProtocolError,
  ServerError,
  TimeoutError,
  TooLargeError,
  UnauthenticatedError,
  UnavailableError,
  WatchCompactedError,
  WatchSlowError,
  errorForResponse,
} from './errors';
export { Opcode, RequestFlags, Status, TxnOpKind, type Response, type TxnOpResponse, type TxnKv, type TxnRequest } from '@cairn/protocol';
