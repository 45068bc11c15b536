/**
 * `@cairn/client`: the TypeScript client of Cairn over protocol v1 (docs/protocol.md): one
 * pipelined TCP connection to a gateway.
 */
export { CairnClient, type ClientOptions, type GetResult } from './client';
export {
  BadRequestError,
  CairnError,
  ClientOverloadedError,
  ConnectionClosedError,
  NotFoundError,
  NotLeaderError,
  ResponseProtocolError,
  ServerError,
  TimeoutError,
  TooLargeError,
  UnavailableError,
  errorForResponse,
} from './errors';
export { Opcode, RequestFlags, Status, type Response } from '@cairn/protocol';
