import pino, { type DestinationStream, type Logger } from 'pino';

/**
 * One structured (JSON lines) logger per process; `process` names the role and id.
 * @param destination where lines go (default stdout); tests pass a sink to read them back.
 */
export function createLogger(process: string, level: string = 'info', destination?: DestinationStream): Logger {
  return pino({ level, base: { process }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}
export type { Logger } from 'pino';
