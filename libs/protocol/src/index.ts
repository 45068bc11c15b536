/**
 * `@cairn/protocol`: client wire protocol v1 (frames, streaming decoders) and the internal binary
 * messages between Cairn processes. Spec: docs/protocol.md; vectors: test-vectors/client-v1.json.
 */
export * from './constants';
export { encodeRequest, encodeResponse, encodeResponseInto, responseBytes, decodeRequestHeader, decodeResponseHeader, type RequestHeader, type ResponseHeader } from './frames';
export { RequestDecoder, type DecodeEvent } from './request-decoder';
export { ResponseDecoder, type ResponseDecoderOptions } from './response-decoder';
export { ByteReader, ByteWriter, STRING_BYTES_MAX, clampString } from './bytes';
export * from './internal';
export * from './command';
export * as internal from './internal';
export * from './snapshot-messages';
