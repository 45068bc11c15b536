import pino, { type Logger } from 'pino';

/** One structured (JSON lines) logger per process, on stdout; `process` names the role and id. */
export function createLogger(process: string, level: string = 'info'): Logger {
  return pino({ level, base: { process }, timestamp: pino.stdTimeFunctions.isoTime });
}
export type { Logger } from 'pino';
