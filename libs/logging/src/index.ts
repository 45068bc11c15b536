/** `@cairn/logging`: every Cairn process's structured logger (JSON lines on stdout, pino). */
export { createLogger, requestLogger, type Logger } from './logger';
