export { RespParser, ProtocolErrors, parseRespInteger, INLINE_BYTES_MAX, type RespEvent, type RespParserLimits } from './parser';
export { splitInlineArgs } from './inline';
export {
  encodeSimpleString,
  encodeError,
  encodeInteger,
  encodeBulk,
  encodeArray,
  encodeBulkArray,
  encodeCommand,
  encodeValue,
  OK,
  PONG,
  NULL_BULK,
  NULL_ARRAY,
  EMPTY_ARRAY,
  type RespValue,
} from './encode';
export { ReplyDecoder, RespProtocolError } from './reply-decoder';
export { RespSocketClient } from './socket-client';
