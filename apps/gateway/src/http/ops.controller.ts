import { Controller, Get, Inject, Res } from '@nestjs/common';
import { Status } from '@cairn/protocol';
import type { Response } from 'express';
import { STATUS_STALE_MS } from '../cluster/cluster-view';
import { liveLeaderId } from '../metrics/gateway-metrics';
import { CairnHttpException } from './errors';
import { HTTP_DEPS, type HttpDeps } from './http-deps';

/** Cluster view, probes and metrics (docs/http.md). */
@Controller()
export class OpsController {
  constructor(@Inject(HTTP_DEPS) private readonly deps: HttpDeps) {}

  /**
   * The cluster as this gateway sees it from the status heartbeats: the leader, each replica
   * (role, term, commit/last/applied index, log bytes) and each storage node (applied index,
   * keys, data bytes); `live` = heartbeat younger than STATUS_STALE_MS.
   */
  @Get('v1/cluster')
  cluster() {
    const s = this.deps.view.snapshot();
    return {
      gateway: this.deps.gatewayId,
      leaderId: s.leaderId,
      leaderLive: liveLeaderId(s) !== null,
      term: s.term,
      replicas: s.consensus.map((c) => ({
        id: c.id,
        role: c.role,
        term: c.term,
        commitIndex: c.commitIndex,
        lastIndex: c.lastIndex,
        appliedIndex: c.appliedIndex,
        logBytes: c.logBytes,
        ageMs: c.ageMs,
        live: c.ageMs <= STATUS_STALE_MS,
      })),
      members: this.deps.view.members(),
      storage: s.storage.map((n) => ({
        id: n.id,
        appliedIndex: n.appliedIndex,
        knownCommitIndex: n.knownCommitIndex,
        keys: n.keys,
        dataBytes: n.dataBytes,
        ageMs: n.ageMs,
        live: n.ageMs <= STATUS_STALE_MS,
      })),
    };
  }

  /** Liveness: the process runs and its event loop answers. */
  @Get('healthz')
  healthz() {
    return { status: 'ok' };
  }

  /** Readiness: 200 only when a live leader and at least one live storage node are known, else 503. */
  @Get('readyz')
  readyz() {
    const s = this.deps.view.snapshot();
    const leaderId = liveLeaderId(s);
    const storageLive = this.deps.view.liveStorageNodes().length;
    const missing = [...(leaderId ? [] : ['no live leader known']), ...(storageLive > 0 ? [] : ['no live storage node'])];
    if (missing.length) throw new CairnHttpException(Status.Unavailable, missing.join('; '));
    return { status: 'ready', leaderId, storageLive };
  }

  /** Prometheus text exposition of the gateway's registry (every door, plus the cluster gauges). */
  @Get('metrics')
  async metrics(@Res() res: Response): Promise<void> {
    const text = await this.deps.metrics.scrape();
    res.status(200).setHeader('Content-Type', this.deps.metrics.contentType);
    res.end(text);
  }
}
