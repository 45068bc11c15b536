/**
 * `@cairn/protocol`: client wire protocol v1 (frames, streaming decoders), the internal binary
 * messages between Cairn processes, and the control plane's JSON messages (status heartbeats,
 * membership requests). Spec: docs/protocol.md; vectors: test-vectors/client-v1.json.
 */
export { CodedError } from './coded-error';
export * from './constants';
export { encodeRequest, encodeResponse, encodeResponseInto, encodeResponseHeaderInto, responseBytes, decodeRequestHeader, decodeResponseHeader, type RequestHeader, type ResponseHeader } from './frames';
export { RequestDecoder, type DecodeEvent } from './request-decoder';
export { ResponseDecoder, type ResponseDecoderOptions } from './response-decoder';
export { ByteReader, ByteWriter, STRING_BYTES_MAX, clampString } from './bytes';
export * from './internal';
export * from './command';
export * from './auth';
export * as internal from './internal';
export * from './snapshot-messages';
export * from './snapshot-receiver';
export { STATUS_INTERVAL_MS, STATUS_REFRESH_MS, decodeStatus, encodeStatus, type ConsensusStatus, type StorageStatus } from './status-heartbeat';
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
export * from './kv-meta';
export * from './range';
export * from './watch';
export * from './txn';
export * from './incr';
export * from './hello';
export * from './lease';
export * from './reserved-keys';
