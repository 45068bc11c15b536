import type { NatsConnection } from 'nats';
import type { Logger } from '@cairn/logging';
import { realClock, type Clock, type Transport, type TransportMsg } from '@cairn/world';
import { asTransport } from './transport';
import { CodedError } from '@cairn/protocol';

/**
 * Bytes of the server's `max_payload` that Cairn's batchers leave unused (docs/protocol.md,
 * "Message size bounds on the internal bus"). nats-server counts payload plus headers against
 * `max_payload` (subject and reply are not counted); Cairn sends no headers, so this is slack for
 * a future header and for rounding in callers' size estimates, not a measured overhead.
 */
export const PAYLOAD_HEADROOM_BYTES = 4096;

/** How often one kind of publish failure is logged at most, ms; the others are counted. */
export const PUBLISH_FAULT_LOG_INTERVAL_MS = 5_000;

/** An internal message or reply larger than the server accepts (`bytes` > `bytesMax`). */
export class PayloadTooLargeError extends CodedError {
  readonly code = 'PAYLOAD_TOO_LARGE';
  constructor(
    readonly subject: string,
    readonly bytes: number,
    readonly bytesMax: number,
  ) {
    super(`message of ${bytes} bytes on ${subject} is over the NATS server's max_payload of ${bytesMax} bytes`);
  }
}

/**
 * The connected server's `max_payload` (INFO at connect, updated on reconnect), bytes. Before the
 * first INFO (never, after `connectNats`, which waits for the connection) it is nats-server's
 * default of 1 MiB.
 */
export function serverMaxPayloadBytes(nc: NatsConnection): number {
  return nc.info?.max_payload ?? 1024 * 1024;
}

/**
 * Largest payload a Cairn batcher may put in one publish or reply on `nc`, bytes: the server's
 * `max_payload` minus PAYLOAD_HEADROOM_BYTES. Read it per batch, not once: a reconnect may land
 * on a server with another `max_payload`.
 */
export function payloadBytesMax(t: Transport | NatsConnection): number {
  return Math.max(0, asTransport(t).maxPayloadBytes() - PAYLOAD_HEADROOM_BYTES);
}

/**
 * Last log time and suppressed count per kind of fault, per logger (a process has one logger
 * tree; several simulated processes in one test each have their own, so one's suppression never
 * hides another's first line). A handful of kinds: bounded by FAULT_KINDS_MAX.
 */
const faultLogs = new WeakMap<Logger, Map<string, { atMs: number; suppressed: number }>>();
const FAULT_KINDS_MAX = 256;

/**
 * Logs a network fault at most once per PUBLISH_FAULT_LOG_INTERVAL_MS per `kind` (with the count
 * suppressed since the last line): a publish failing on every message must not flood the log.
 * `clock`: whose time the interval is measured on (the simulator's virtual clock in a simulation).
 */
export function logNetworkFault(log: Logger | undefined, kind: string, fields: Record<string, unknown>, message: string, clock: Clock = realClock): void {
  if (!log) return;
  const now = clock.nowMs();
  let faultLog = faultLogs.get(log);
  if (!faultLog) faultLogs.set(log, (faultLog = new Map()));
  let s = faultLog.get(kind);
  if (s && now - s.atMs < PUBLISH_FAULT_LOG_INTERVAL_MS) {
    s.suppressed++;
    return;
  }
  if (!s) {
    if (faultLog.size >= FAULT_KINDS_MAX) faultLog.clear();
    faultLog.set(kind, (s = { atMs: now, suppressed: 0 }));
  }
  log.warn({ ...fields, suppressed: s.suppressed }, message);
  s.atMs = now;
  s.suppressed = 0;
}

function faultCode(e: unknown): string {
  // The client library's own code when the Transport wrapped one (nats.js: CONNECTION_CLOSED, ...).
  const inner = (e as { cause?: { code?: unknown } })?.cause?.code;
  if (typeof inner === 'string') return inner;
  return (e as { code?: string })?.code ?? (e as Error)?.name ?? 'unknown';
}

/**
 * Publishes `data` on `subject` and never throws: a message over the server's `max_payload`, a
 * closed or draining connection or any other client error is a network fault (core NATS is
 * at-most-once anyway), logged rate-limited and reported as `false`. Callers treat `false` like
 * a lost message: Raft retransmits, shipping is backfilled, a requester times out.
 * @returns true when the client accepted the message (not a delivery guarantee).
 */
export function publishSafe(bus: Transport | NatsConnection, subject: string, data: Uint8Array, log?: Logger): boolean {
  // The size check is the client's own (nats.js, the simulated bus): one check, where it is enforced.
  const t = asTransport(bus);
  try {
    t.publish(subject, data);
    return true;
  } catch (e) {
    const code = faultCode(e);
    if (code === 'MAX_PAYLOAD_EXCEEDED') {
      logNetworkFault(log, `publish:${code}`, { subject, bytes: data.length, code, maxPayloadBytes: t.maxPayloadBytes() }, 'dropped a message over the NATS max_payload (a bug in its batcher)');
    } else {
      logNetworkFault(log, `publish:${code}`, { subject, bytes: data.length, code, err: e }, 'publish failed; treated as a lost message');
    }
    return false;
  }
}

/**
 * `msg.respond(data)` that never throws: the client's own size check (nats.js, the simulated bus)
 * and a closed connection come back as the fault's code (`MAX_PAYLOAD_EXCEEDED`, `CONNECTION_CLOSED`, …).
 */
export function tryRespond(msg: Pick<TransportMsg, 'respond'>, data: Uint8Array): { ok: boolean; code?: string; err?: unknown } {
  try {
    return { ok: msg.respond(data) };
  } catch (e) {
    return { ok: false, code: faultCode(e), err: e };
  }
}

/**
 * Answers a request (`msg.respond`) and never throws; like `publishSafe`: a reply over the
 * server's `max_payload` (the client's own check) or one the connection refuses is logged
 * rate-limited, and the requester times out.
 * @returns true when the reply was handed to the client; false when `msg` has no reply subject,
 *   the reply is too large or the connection refused it.
 */
export function respondSafe(msg: Pick<TransportMsg, 'subject' | 'reply' | 'respond'>, data: Uint8Array, log?: Logger): boolean {
  if (!msg.reply) return false;
  const r = tryRespond(msg, data);
  if (r.code === 'MAX_PAYLOAD_EXCEEDED') logNetworkFault(log, `respond:${r.code}`, { subject: msg.subject, bytes: data.length, code: r.code }, 'dropped a reply over the NATS max_payload');
  else if (r.code) logNetworkFault(log, `respond:${r.code}`, { subject: msg.subject, bytes: data.length, code: r.code, err: r.err }, 'reply failed; the requester will time out');
  return r.ok;
}
