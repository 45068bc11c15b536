import pino, { type DestinationStream, type Logger } from 'pino';

/**
 * One structured logger per process: JSON lines `{"level":"info","time":"<ISO 8601>","process":…,
 * "msg":…}`; `level` is the name (trace, debug, info, warn, error, fatal), not pino's number, so
 * lines read and filter without a table. `process` names the role and id. Per-request lines carry
 * a `reqId` from a child logger (`requestLogger`).
 * @param destination where lines go (default stdout); tests pass a sink to read them back.
 */
export function createLogger(process: string, level: string = 'info', destination?: DestinationStream): Logger {
  return pino({ level, base: { process }, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label) => ({ level: label }) } }, destination);
}

/** The logger of one request: every line it writes carries `reqId` (pino child logger). */
export function requestLogger(log: Logger, reqId: string): Logger {
  return log.child({ reqId });
}
export type { Logger } from 'pino';
