import { CodedError, OUTCOME_REPLY_BASE_BYTES, OUTCOME_TXN_OVERHEAD_BYTES, SNAPSHOT_CHUNK_BYTES_MAX } from '@cairn/protocol';
import { PAYLOAD_HEADROOM_BYTES } from './bus';

/** Longest process id on the wire (config ids are ≤ 32, `--join` ids ≤ 64 characters). */
const ID_BYTES_MAX = 64;
/** Internal message header: `u8 type | u8 version`. */
const HEADER = 2;
/** One entry on the wire around its data: `u64 index | u64 term | u8 type | u32 length`. */
export const WIRE_ENTRY_OVERHEAD_BYTES = 8 + 8 + 1 + 4;
/** A RaftMessages batch of one message, without its entries' bytes: header, count, the fixed fields, two ids, entry count. */
export const RAFT_MESSAGE_OVERHEAD_BYTES = HEADER + 4 + 1 + 2 * (2 + ID_BYTES_MAX) + 8 * 4 + 1 + 8 + 8 + 4;
/** A Command (one entry's data) around its key and value: header, op byte, session fields, two length prefixes. */
export const COMMAND_OVERHEAD_BYTES = HEADER + 1 + 24 + 4 + 4;
/** A ShipBatch / FetchReply / ReadReply / SnapshotChunkReply around one item; the largest of them (FetchReply with a 1 KiB message). */
const REPLY_OVERHEAD_BYTES = HEADER + 1 + 8 + 2 + 1024 + 4 + 2 * (2 + ID_BYTES_MAX) + 16;

/** The settings that size internal messages (a structural subset of `ClusterConfig`). */
export interface BusLimits {
  consensus: { msgBytesMax: number; entriesPerMsgMax: number };
  /** `txnResultBytesMax`: a txn's result travels alone in an outcome reply (absent: not checked). */
  gateway: { keyBytesMax: number; valueBytesMax: number; txnResultBytesMax?: number };
}

/** The sizes the bus must carry, bytes, derived from the settings (docs/protocol.md, "Message size bounds on the internal bus"). */
export interface BusSizes {
  /** Largest Raft entry data: one Command with a key of keyBytesMax and a value of valueBytesMax, with session fields. */
  entryDataBytesMax: number;
  /** Largest publish of one Raft Append message (one message alone). */
  appendMessageBytesMax: number;
  /** Largest ShipBatch / FetchReply holding one entry, ReadReply holding one value, SnapshotChunkReply. */
  singleItemReplyBytesMax: number;
}

export function busSizes(limits: BusLimits): BusSizes {
  const { keyBytesMax, valueBytesMax } = limits.gateway;
  const { msgBytesMax, entriesPerMsgMax } = limits.consensus;
  const entryDataBytesMax = COMMAND_OVERHEAD_BYTES + keyBytesMax + valueBytesMax;
  // libs/raft sliceBounded: entries up to msgBytesMax data bytes and entriesPerMsgMax of them, or
  // one entry alone when it is larger than msgBytesMax.
  const appendMessageBytesMax =
    RAFT_MESSAGE_OVERHEAD_BYTES + Math.max(WIRE_ENTRY_OVERHEAD_BYTES + entryDataBytesMax, entriesPerMsgMax * WIRE_ENTRY_OVERHEAD_BYTES + msgBytesMax);
  const singleItemReplyBytesMax = REPLY_OVERHEAD_BYTES + WIRE_ENTRY_OVERHEAD_BYTES + Math.max(entryDataBytesMax, SNAPSHOT_CHUNK_BYTES_MAX + 128);
  return { entryDataBytesMax, appendMessageBytesMax, singleItemReplyBytesMax };
}

/** Configured limits that cannot fit the NATS server's `max_payload`: the process refuses to start. */
export class PayloadBoundsError extends CodedError {
  readonly code = 'PAYLOAD_BOUNDS';
  constructor(
    readonly problems: string[],
    readonly maxPayloadBytes: number,
  ) {
    super(
      `the configured limits do not fit the NATS server's max_payload of ${maxPayloadBytes} bytes ` +
        `(${PAYLOAD_HEADROOM_BYTES} bytes of it kept as headroom):\n  - ${problems.join('\n  - ')}\n` +
        `Lower these settings or raise max_payload in the nats-server configuration (docs/protocol.md, "Message size bounds on the internal bus").`,
    );
  }
}

/**
 * Why `limits` cannot fit a server whose `max_payload` is `maxPayloadBytes`: one line per problem
 * naming the settings and sizes; empty when everything fits. Pure arithmetic.
 */
export function payloadBoundsProblems(limits: BusLimits, maxPayloadBytes: number): string[] {
  const room = maxPayloadBytes - PAYLOAD_HEADROOM_BYTES;
  const s = busSizes(limits);
  const { keyBytesMax, valueBytesMax } = limits.gateway;
  const { msgBytesMax, entriesPerMsgMax } = limits.consensus;
  const out: string[] = [];
  if (s.entryDataBytesMax + WIRE_ENTRY_OVERHEAD_BYTES + RAFT_MESSAGE_OVERHEAD_BYTES > room) {
    out.push(
      `gateway.valueBytesMax (${valueBytesMax}) + gateway.keyBytesMax (${keyBytesMax}) + ${COMMAND_OVERHEAD_BYTES + WIRE_ENTRY_OVERHEAD_BYTES + RAFT_MESSAGE_OVERHEAD_BYTES} bytes of command and Append encoding ` +
        `= ${s.entryDataBytesMax + WIRE_ENTRY_OVERHEAD_BYTES + RAFT_MESSAGE_OVERHEAD_BYTES} bytes > ${room}`,
    );
  }
  const appendFull = entriesPerMsgMax * WIRE_ENTRY_OVERHEAD_BYTES + msgBytesMax + RAFT_MESSAGE_OVERHEAD_BYTES;
  if (appendFull > room) {
    out.push(
      `consensus.msgBytesMax (${msgBytesMax}) + consensus.entriesPerMsgMax (${entriesPerMsgMax}) × ${WIRE_ENTRY_OVERHEAD_BYTES} bytes of entry framing + ${RAFT_MESSAGE_OVERHEAD_BYTES} bytes of Append encoding = ${appendFull} bytes > ${room}`,
    );
  }
  if (s.singleItemReplyBytesMax > room) {
    out.push(`one entry, read value or snapshot chunk (${SNAPSHOT_CHUNK_BYTES_MAX} bytes) in a ship batch, fetch, read or snapshot reply = ${s.singleItemReplyBytesMax} bytes > ${room}`);
  }
  const { txnResultBytesMax } = limits.gateway;
  if (txnResultBytesMax !== undefined && OUTCOME_REPLY_BASE_BYTES + OUTCOME_TXN_OVERHEAD_BYTES + txnResultBytesMax > room) {
    out.push(`gateway.txnResultBytesMax (${txnResultBytesMax}) + ${OUTCOME_REPLY_BASE_BYTES + OUTCOME_TXN_OVERHEAD_BYTES} bytes of outcome reply = ${OUTCOME_REPLY_BASE_BYTES + OUTCOME_TXN_OVERHEAD_BYTES + txnResultBytesMax} bytes > ${room}`);
  }
  return out;
}

/**
 * Start-up check every process runs after connecting (the server's `max_payload` comes from its
 * INFO). @throws PayloadBoundsError naming the settings and the server's max_payload.
 */
export function assertPayloadBounds(limits: BusLimits, maxPayloadBytes: number): void {
  const problems = payloadBoundsProblems(limits, maxPayloadBytes);
  if (problems.length > 0) throw new PayloadBoundsError(problems, maxPayloadBytes);
}
