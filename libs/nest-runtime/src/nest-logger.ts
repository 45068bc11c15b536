import type { LoggerService } from '@nestjs/common';
import type { Logger } from '@cairn/logging';

type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';

/**
 * NestJS's own log lines (bootstrap, route mapping, unhandled errors) through the process's pino
 * logger, so stdout stays JSON lines with level names (docs/architecture.md, "Logs") instead of
 * Nest's coloured text. Nest's `log` is chatty start-up detail: written at debug; `verbose` at
 * trace. Nest passes its context (a class name) as the last string argument: it becomes `nest`;
 * an error's stack string (error(message, stack, context)) becomes `stack`.
 */
export function nestLogger(log: Logger): LoggerService {
  const write =
    (level: Level) =>
    (message: unknown, ...params: unknown[]): void => {
      if (!log.isLevelEnabled(level)) return;
      const fields: Record<string, unknown> = {};
      if (params.length > 0 && typeof params[params.length - 1] === 'string') fields.nest = params.pop();
      if ((level === 'error' || level === 'fatal') && typeof params[0] === 'string') fields.stack = params.shift();
      if (message instanceof Error) log[level]({ ...fields, err: message }, message.message);
      else log[level](fields, typeof message === 'string' ? message : JSON.stringify(message));
    };
  return { log: write('debug'), verbose: write('trace'), debug: write('debug'), warn: write('warn'), error: write('error'), fatal: write('fatal') };
}
