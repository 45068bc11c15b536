export { Subjects } from './subjects';
export { STATUS_INTERVAL_MS, decodeStatus, encodeStatus, type ConsensusStatus, type StorageStatus } from './status';
export { connectNats, serveRequests, type NatsOptions } from './connection';
export { createLogger, type Logger } from './logger';
export {
  NatsServerMissingError,
  findNatsServer,
  freePort,
  startNatsServer,
  type NatsServerHandle,
  type NatsServerOptions,
} from './nats-server';
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
