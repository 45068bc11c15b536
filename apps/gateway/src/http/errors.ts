import { ArgumentsHost, Catch, HttpException, type ExceptionFilter, type ValidationError } from '@nestjs/common';
import { Status, statusName } from '@cairn/protocol';
import type { Response } from 'express';
import { requestLog } from './request-id';

/** Protocol status → HTTP status (docs/http.md, "Status mapping"). NOT_LEADER never leaves the gateway; 503 if it did. */
const HTTP_STATUS: Record<Status, number> = {
  [Status.Ok]: 200,
  [Status.NotFound]: 404,
  [Status.Error]: 500,
  [Status.BadRequest]: 400,
  [Status.TooLarge]: 413,
  [Status.Unavailable]: 503,
  [Status.NotLeader]: 503,
  [Status.ConditionFailed]: 412,
  [Status.Unauthenticated]: 401,
  [Status.PermissionDenied]: 403,
};

export function httpStatusOf(status: Status): number {
  return HTTP_STATUS[status] ?? 500;
}

/** HTTP status → the protocol status it stands for (Nest's own 404/400s, body-parser's 413, metrics labels). */
export function statusOfHttp(httpStatus: number): Status {
  if (httpStatus < 400) return Status.Ok;
  if (httpStatus === 404) return Status.NotFound;
  if (httpStatus === 413) return Status.TooLarge;
  if (httpStatus === 412) return Status.ConditionFailed;
  if (httpStatus === 401) return Status.Unauthenticated;
  if (httpStatus === 403) return Status.PermissionDenied;
  if (httpStatus === 503) return Status.Unavailable;
  if (httpStatus < 500) return Status.BadRequest;
  return Status.Error;
}

/** The HTTP form of a non-OK protocol status: JSON body `{ error: CODE, message }`. */
export class CairnHttpException extends HttpException {
  readonly code: string;

  constructor(status: Status, message: string) {
    super({ error: statusName(status), message }, httpStatusOf(status));
    this.code = statusName(status);
  }
}

/** ValidationPipe errors → 400 BAD_REQUEST listing every violated constraint; a nested one prefixed by its path (`compare.0: target must be …`). */
export function validationException(errors: ValidationError[]): CairnHttpException {
  return new CairnHttpException(Status.BadRequest, constraintMessages(errors, '').join('; '));
}

function constraintMessages(errors: ValidationError[], path: string): string[] {
  return errors.flatMap((e) => {
    const at = path === '' ? '' : `${path}: `;
    const own = e.constraints ? Object.values(e.constraints).map((m) => at + m) : [];
    const nested = e.children && e.children.length > 0 ? constraintMessages(e.children, path === '' ? e.property : `${path}.${e.property}`) : [];
    return own.length > 0 || nested.length > 0 ? [...own, ...nested] : [`${at}${e.property} is invalid`];
  });
}

/**
 * Every error leaves as `{ error: CODE, message }` with the mapped HTTP status — Nest's own
 * exceptions (unknown route → 404 NOT_FOUND) and unexpected throws (500 ERROR) included — and
 * every 503 carries `Retry-After: 1` (UNAVAILABLE is retryable: no leader yet, catching up). A 500
 * is logged at error with the request's `reqId`.
 */
@Catch()
export class ErrorBodyFilter implements ExceptionFilter {
  catch(e: unknown, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<Response>();
    const { httpStatus, body } = errorBody(e);
    // Only the unexpected: a thrown bug (500), logged with the request's id; mapped statuses are answers, not faults.
    if (httpStatus === 500) requestLog(res)?.error({ err: e }, 'http request failed');
    if (res.headersSent) {
      res.end();
      return;
    }
    sendError(res, httpStatus, body);
  }
}

export function errorBody(e: unknown): { httpStatus: number; body: { error: string; message: string } } {
  if (e instanceof CairnHttpException) return { httpStatus: e.getStatus(), body: e.getResponse() as { error: string; message: string } };
  if (e instanceof HttpException) {
    const r = e.getResponse();
    const message = typeof r === 'string' ? r : String((r as { message?: unknown }).message ?? e.message);
    return { httpStatus: e.getStatus(), body: { error: statusName(statusOfHttp(e.getStatus())), message } };
  }
  return { httpStatus: 500, body: { error: statusName(Status.Error), message: `gateway error: ${(e as Error)?.message ?? String(e)}` } };
}

/** The challenge of every 401 (RFC 7235; RFC 7617 Basic, RFC 6750 Bearer). */
export const WWW_AUTHENTICATE = 'Basic realm="cairn", charset="UTF-8", Bearer realm="cairn"';

export function sendError(res: Response, httpStatus: number, body: { error: string; message: string }): void {
  if (httpStatus === 503) res.setHeader('Retry-After', '1');
  if (httpStatus === 401) res.setHeader('WWW-Authenticate', WWW_AUTHENTICATE);
  res.status(httpStatus).json(body);
}

/**
 * Maps a body parser's error (raw-body / body-parser `type`s) to Cairn's JSON errors: over the
 * limit → 413 TOO_LARGE, anything else (bad JSON, aborted, bad encoding) → its 4xx or 400.
 */
export function bodyParserErrors(limitName: string, limit: number, what: string) {
  return (err: unknown, res: Response): void => {
    const e = err as { type?: string; status?: number; length?: number; message?: string };
    if (e.type === 'entity.too.large') {
      const size = e.length !== undefined ? `${what} is ${e.length} bytes` : `${what} is too large`;
      return sendError(res, 413, { error: statusName(Status.TooLarge), message: `${size}; ${limitName} is ${limit}` });
    }
    const httpStatus = e.status && e.status >= 400 && e.status < 500 ? e.status : 400;
    sendError(res, httpStatus, { error: statusName(statusOfHttp(httpStatus)), message: e.message ?? 'bad request body' });
  };
}
