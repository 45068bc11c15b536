import { requestLogger, type Logger } from '@cairn/logging';
import type { NextFunction, Request, Response } from 'express';
import { performance } from 'node:perf_hooks';

/** An `X-Request-Id` a client sends is kept when it is 1 to this many of `[A-Za-z0-9._:-]`; otherwise the gateway names the request itself. */
export const REQUEST_ID_BYTES_MAX = 128;
const CLIENT_ID = new RegExp(`^[A-Za-z0-9._:-]{1,${REQUEST_ID_BYTES_MAX}}$`);
/** Paths in log lines are cut to this many characters (a key can be up to keyBytesMax, percent-encoded three times longer). */
const LOGGED_PATH_CHARS_MAX = 256;

const loggers = new WeakMap<Response, Logger>();

/** The logger of the request `res` answers (lines carry its `reqId`); undefined before `requestIdMiddleware` ran or without a logger. */
export function requestLog(res: Response): Logger | undefined {
  return loggers.get(res);
}

/**
 * Runs first on every HTTP request: names it (the client's valid `X-Request-Id`, else
 * `<gatewayId>-<n>` with n counting this gateway's requests in base 36), echoes the id in the
 * `X-Request-Id` response header, and gives the request a child logger whose lines carry
 * `reqId`. When the response is finished or the connection closes it writes one debug line
 * (method, path, HTTP status, ms): at the default `info` level, requests are not logged.
 */
export function requestIdMiddleware(gatewayId: string, log: Logger | undefined) {
  let seq = 0;
  return (req: Request, res: Response, next: NextFunction): void => {
    const sent = req.headers['x-request-id'];
    const reqId = typeof sent === 'string' && CLIENT_ID.test(sent) ? sent : `${gatewayId}-${(++seq).toString(36)}`;
    res.setHeader('X-Request-Id', reqId);
    if (log) {
      const rlog = requestLogger(log, reqId);
      loggers.set(res, rlog);
      if (rlog.isLevelEnabled('debug')) {
        const startMs = performance.now();
        const path = req.originalUrl.slice(0, LOGGED_PATH_CHARS_MAX);
        let done = false;
        const answered = () => {
          if (done) return;
          done = true;
          rlog.debug({ method: req.method, path, status: res.statusCode, finished: res.writableFinished, ms: Math.round((performance.now() - startMs) * 1000) / 1000 }, 'http request');
        };
        res.once('finish', answered);
        res.once('close', answered);
      }
    }
    next();
  };
}
