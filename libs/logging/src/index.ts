/** `@cairn/logging`: every Cairn process's structured logger (JSON lines on stdout, pino). */
export { createLogger, type Logger } from './logger';
