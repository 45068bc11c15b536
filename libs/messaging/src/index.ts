export { Subjects } from './subjects';
export { STATUS_INTERVAL_MS, decodeStatus, encodeStatus, type ConsensusStatus, type StorageStatus } from './status';
export { connectNats, serveRequests, type NatsOptions } from './connection';
export { asTransport, natsTransport } from './transport';
export { createLogger, type Logger } from './logger';
export {
  MemberRequestInvalidError,
  decodeMemberReply,
  decodeMemberRequest,
  encodeMemberReply,
  encodeMemberRequest,
  type MemberKind,
  type MemberReply,
  type MemberRequest,
} from './membership';
export {
  PAYLOAD_HEADROOM_BYTES,
  PUBLISH_FAULT_LOG_INTERVAL_MS,
  PayloadTooLargeError,
  logNetworkFault,
  payloadBytesMax,
  publishSafe,
  respondSafe,
  serverMaxPayloadBytes,
} from './bus';
export {
  COMMAND_OVERHEAD_BYTES,
  PayloadBoundsError,
  RAFT_MESSAGE_OVERHEAD_BYTES,
  WIRE_ENTRY_OVERHEAD_BYTES,
  assertPayloadBounds,
  busSizes,
  payloadBoundsProblems,
  type BusLimits,
  type BusSizes,
} from './bounds';
