import { Controller, Get, Inject, Injectable, Req, Res, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { Status, statusName } from '@cairn/protocol';
import type { Request, Response } from 'express';
import { DOORS, type Door } from '../metrics/request-metrics';
import { ConsoleAssets } from './console-assets';
import { ConsoleStats, STATS_INTERVAL_MS } from './console-stats';
import { sendError } from './errors';
import { HTTP_DEPS, httpClock, type HttpDeps } from './http-deps';

/** The console's sampler as a Nest provider: sampling starts with the HTTP app and stops when it closes. */
@Injectable()
export class ConsoleStatsService extends ConsoleStats implements OnModuleInit, OnModuleDestroy {
  constructor(@Inject(HTTP_DEPS) deps: HttpDeps) {
    super(deps.metrics.registry, undefined, httpClock(deps));
  }

  onModuleInit(): void {
    this.start(STATS_INTERVAL_MS);
  }

  onModuleDestroy(): void {
    this.stop();
  }
}

/** The console's static files as a Nest provider (loaded once, when the HTTP app is created). */
@Injectable()
export class ConsoleAssetsService extends ConsoleAssets {
  constructor() {
    super();
  }
}

/**
 * The live web console (docs/http.md "Web console", docs/operations.md "Reading the console"):
 * `GET /ui/…` serves its static files from memory (a fixed table: no path from a URL reaches the
 * file system), `GET /v1/cluster/stats` the throughput and latency series its charts draw.
 * Neither is a /v1/kv route, so neither counts against the KV byte budget (pendingBytesMax).
 */
@Controller()
export class ConsoleController {
  private readonly startedAtMs: number;

  constructor(
    @Inject(HTTP_DEPS) private readonly deps: HttpDeps,
    private readonly assets: ConsoleAssetsService,
    private readonly stats: ConsoleStatsService,
  ) {
    this.startedAtMs = deps.startedAtMs ?? httpClock(deps).nowMs();
  }

  /**
   * `/ui` → 301 to `/ui/` (so the page's URLs resolve under /ui/); a console file: 200 with its
   * type, ETag and Cache-Control (304 when `If-None-Match` matches); 404 for any other path; 503
   * when the files could not be loaded. One handler for both: Express's non-strict routing sends
   * `/ui/` to a `ui` route too.
   */
  @Get(['ui', 'ui/*path'])
  file(@Req() req: Request, @Res() res: Response): void {
    if (req.path === '/ui') return res.redirect(301, '/ui/');
    if (this.assets.error) return sendError(res, 503, { error: statusName(Status.Unavailable), message: this.assets.error.message });
    const asset = this.assets.get(req.path.slice('/ui/'.length));
    if (!asset) return sendError(res, 404, { error: statusName(Status.NotFound), message: 'no such console file' });
    res.setHeader('Cache-Control', asset.cacheControl);
    res.setHeader('ETag', asset.etag);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Content-Security-Policy', this.assets.csp);
    res.setHeader('Referrer-Policy', 'no-referrer');
    if (req.headers['if-none-match'] === asset.etag) {
      res.status(304).end();
      return;
    }
    res.status(200).setHeader('Content-Type', asset.contentType);
    res.setHeader('Content-Length', asset.body.length);
    res.end(asset.body);
  }

  /**
   * Throughput and latency per door over the last few minutes (ConsoleStats columns), plus this
   * gateway's own figures: id, uptime, open connections per door, bytes held for clients, RSS.
   */
  @Get('v1/cluster/stats')
  async clusterStats() {
    const registry = this.deps.metrics.registry;
    const connections = { tlv: 0, http: 0, resp: 0 } as Record<Door, number>;
    const gauge = registry.getSingleMetric('cairn_gateway_connections');
    for (const v of gauge ? (await gauge.get()).values : []) if (DOORS.includes(v.labels.door as Door)) connections[v.labels.door as Door] = v.value;
    const pending = registry.getSingleMetric('cairn_gateway_pending_bytes');
    const pendingBytes = pending ? ((await pending.get()).values[0]?.value ?? 0) : 0;
    return {
      gateway: { id: this.deps.gatewayId, uptimeS: Math.round((httpClock(this.deps).nowMs() - this.startedAtMs) / 1000), connections, pendingBytes, rssBytes: process.memoryUsage.rss() },
      ...this.stats.columns(STATS_INTERVAL_MS),
    };
  }
}
