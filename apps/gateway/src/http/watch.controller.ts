import { Controller, Get, Inject, Query, Req, Res } from '@nestjs/common';
import { Status, WatchCancelReason, WatchEventType, prefixEnd, singleKeyEnd, statusName, watchCancelReasonName, type WatchEvent } from '@cairn/protocol';
import { realClock } from '@cairn/world';
import { Transform } from 'class-transformer';
import { IsBoolean, IsInt, IsOptional, IsString, Min } from 'class-validator';
import type { Request, Response } from 'express';
import { destroyWithin } from '../server/close-deadline';
import { WatchersFullError, type Watcher } from '../watch/watch-hub';
import { httpStatusOf, sendError } from './errors';
import { HTTP_DEPS, type HttpDeps } from './http-deps';
import { identityOf } from './http-auth';

/** `GET /v1/watch` query (docs/http.md "Watch"). Keys are UTF-8 text (percent-encoded in the URL). */
export class WatchQuery {
  @IsOptional() @IsString() key?: string;
  @IsOptional() @IsString() prefix?: string;
  /** First revision to stream (every event with a revision ≥ it); absent: from now. Last-Event-ID, when sent, wins. */
  @IsOptional()
  @Transform(({ value }) => (typeof value === 'string' && /^\d{1,16}$/.test(value) ? Number(value) : value))
  @IsInt({ message: 'rev must be a revision ≥ 1' })
  @Min(1, { message: 'rev must be a revision ≥ 1' })
  rev?: number;
  @IsOptional()
  @Transform(({ value }) => (value === 'true' ? true : value === 'false' ? false : value))
  @IsBoolean({ message: 'prevValue must be true or false' })
  prevValue?: boolean;
}

/** UTF-8 text as `value`, anything else as `valueBase64` (the HTTP door's JSON convention, docs/http.md). */
function bytesJson(name: string, b: Uint8Array): Record<string, string> {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  const text = buf.toString('utf8');
  return Buffer.from(text, 'utf8').equals(buf) ? { [name]: text } : { [`${name}Base64`]: buf.toString('base64') };
}

/**
 * The SSE text of a frame's events: `event: put|delete` and `data:` one JSON object each; `id:` (the
 * revision) only on the last event of each revision, so a browser's Last-Event-ID never names a
 * revision whose events it has not all received.
 */
export function sseEvents(events: readonly WatchEvent[]): string {
  let out = '';
  events.forEach((e, i) => {
    const data = {
      type: e.type === WatchEventType.Put ? 'put' : 'delete',
      ...bytesJson('key', e.key),
      ...bytesJson('value', e.value),
      modRevision: e.modRevision,
      createRevision: e.createRevision,
      version: e.version,
      ...(e.prevValue ? bytesJson('prevValue', e.prevValue) : {}),
      ...(e.prevOmitted ? { prevOmitted: true } : {}),
    };
    const last = i === events.length - 1 || events[i + 1].modRevision !== e.modRevision;
    out += `${last ? `id: ${e.modRevision}\n` : ''}event: ${data.type}\ndata: ${JSON.stringify(data)}\n\n`;
  });
  return out;
}

/** Last-Event-ID (a revision every event up to which was received) → the revision to resume from; undefined when absent or not a revision. */
function resumeFrom(req: Request): number | undefined {
  const h = req.headers['last-event-id'];
  return typeof h === 'string' && /^\d{1,16}$/.test(h.trim()) ? Number(h.trim()) + 1 : undefined;
}

/**
 * `GET /v1/watch?key=K | prefix=P [&rev=N] [&prevValue=true]`: Server-Sent Events (WHATWG HTML
 * "Server-sent events") of the watch hub's events (docs/watch.md "Gateway"; docs/http.md "Watch").
 * 200 `text/event-stream`, then `event: put|delete` (JSON data, `id:` = revision), `event:
 * progress` (`{"revision"}`, id = it) and a final `event: cancel` (`{"reason","oldestRevision","message"}`)
 * before the stream ends. Resumes from `Last-Event-ID` + 1. 400 for a bad query, 401/403 as a range
 * read of the watched keys, 503 at gateway.watchersMax. A client that does not read is cancelled
 * SLOW by the hub's bounds (watchQueueEventsMax / watchQueueBytesMax unflushed), then closed.
 */
@Controller('v1/watch')
export class WatchController {
  constructor(@Inject(HTTP_DEPS) private readonly deps: HttpDeps) {}

  @Get()
  async watch(@Query() q: WatchQuery, @Req() req: Request, @Res() res: Response): Promise<void> {
    const hub = this.deps.watches;
    if (!hub) return sendError(res, 503, { error: 'UNAVAILABLE', message: 'this gateway serves no watches' });
    if ((q.key === undefined) === (q.prefix === undefined)) return sendError(res, 400, { error: 'BAD_REQUEST', message: 'watch takes key or prefix (one of them)' });
    const start = Buffer.from(q.key ?? q.prefix!, 'utf8');
    const keyBytesMax = this.deps.paths.limits.keyBytesMax;
    if (start.length > keyBytesMax) return sendError(res, 413, { error: 'TOO_LARGE', message: `key of ${start.length} bytes exceeds keyBytesMax ${keyBytesMax}` });
    const end = q.prefix !== undefined ? prefixEnd(start) : singleKeyEnd(start);
    const denied = await this.deps.auth?.gate.guardFor(identityOf(req)).range(start, end);
    if (denied) return sendError(res, httpStatusOf(denied.status), { error: statusName(denied.status), message: denied.message });
    if (res.destroyed) return;
    const startRevision = resumeFrom(req) ?? q.rev ?? 0;
    let watcher: Watcher;
    let revision: number;
    try {
      ({ watcher, revision } = hub.open(
        { start, end, startRevision, prevValue: q.prevValue === true },
        {
          events: (events, _rev, flushed) => void res.write(sseEvents(events), () => flushed()),
          progress: (rev) => void res.write(`id: ${rev}\nevent: progress\ndata: ${JSON.stringify({ revision: rev })}\n\n`),
          canceled: (reason, oldestRevision, message) => this.end(res, reason, oldestRevision, message),
        },
      ));
    } catch (e) {
      if (e instanceof WatchersFullError) return sendError(res, 503, { error: statusName(Status.Unavailable), message: e.message });
      throw e;
    }
    res.status(200);
    res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    res.setHeader('Cache-Control', 'no-cache');
    res.setHeader('X-Accel-Buffering', 'no'); // a proxy must not hold events back
    res.setHeader('Connection', 'close'); // the stream owns its connection: closed once the watch ends
    res.setHeader('X-Cairn-Watch-Revision', String(revision));
    res.flushHeaders();
    res.write(`: watching from revision ${revision + 1}\n\n`);
    // The client went away (or the socket died): the watch ends without a frame.
    res.once('close', () => hub.cancel(watcher, WatchCancelReason.Client, 0, 'connection closed', true));
  }

  /** The last event of a stream, then its end; a client that does not read it is cut off within closeTimeoutMs. */
  private end(res: Response, reason: WatchCancelReason, oldestRevision: number, message: string): void {
    if (res.writableEnded) return;
    res.end(`event: cancel\ndata: ${JSON.stringify({ reason: watchCancelReasonName(reason), oldestRevision, message })}\n\n`);
    if (res.socket) destroyWithin(res.socket, this.deps.limits?.closeTimeoutMs ?? 2000, this.deps.clock ?? realClock);
  }
}
