/**
 * `@cairn/messaging`: the NATS transport between Cairn processes: subjects, connection, the
 * Transport over nats.js, safe publish/reply under the payload bound, and the start-up payload
 * bounds check. Message formats live in @cairn/protocol; the logger in @cairn/logging.
 */
export { Subjects } from './subjects';
export { connectNats, inboxPrefixOf, natsSecurityOptions, serveRequests, type NatsOptions } from './connection';
export {
  BUS_ROLES,
  BusCredentialError,
  busConnectOptions,
  busPermissions,
  createNkeyUser,
  natsServerAuthorization,
  readNkeySeed,
  type BusPermissions,
  type BusRole,
  type BusSettings,
} from './bus-auth';
export { HOP_TRACE_EVENTS_MAX, hopTrace, subjectKind } from './hop-trace';
export { PUBLISH_COALESCE_BYTES_MAX, REQUESTS_PENDING_MAX, asTransport, natsTransport, natsTransportError } from './transport';
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
