import type { Logger } from '@cairn/logging';
import { realClock, type Clock } from '@cairn/world';
import type { GatewayAuthStack } from '../auth/auth-setup';
import type { ClusterView } from '../cluster/cluster-view';
import type { MembershipClient } from '../cluster/membership-client';
import type { GatewayMetrics } from '../metrics/gateway-metrics';
import type { KvPaths } from '../paths/kv-session';
import type { ByteBudget } from '../server/flow';
import type { WatchHub } from '../watch/watch-hub';
import type { HttpLimits } from './http-limits';
import type { SnapshotSource } from './snapshot.controller';

/** What the HTTP door shares with the rest of the gateway (one provider: HTTP_DEPS). */
export interface HttpDeps {
  gatewayId: string;
  /** The gateway's read/write paths and request limits: every request gets a KvSession on them. */
  paths: KvPaths;
  view: ClusterView;
  metrics: GatewayMetrics;
  /** Forwards membership changes to the leader; absent in HTTP unit tests without NATS. */
  members?: MembershipClient;
  /** Pulls storage node snapshots for `GET /v1/snapshot` (backups); absent in HTTP unit tests without NATS. */
  snapshots?: Pick<SnapshotSource, 'begin' | 'chunk' | 'end'>;
  /** Connection, header and deadline bounds; absent in tests: the config defaults. */
  limits?: HttpLimits;
  /** The gateway-wide bytes bound shared with the TLV and RESP doors (pendingBytesMax); absent in tests: unbounded. */
  budget?: ByteBudget;
  /** The gateway's logger: each request logs through a child carrying its `reqId` (request-id.ts); absent in tests: no request lines. */
  log?: Logger;
  /** The HTTP door's deadlines, close timeouts, console sampler and TTL start times run on it (http-limits.ts, `httpClock`); absent: `realClock` (the process shell's). */
  clock?: Clock;
  /** When the gateway started, ms on `clock` (the console's uptime); absent in tests: when the console controller was created. */
  startedAtMs?: number;
  /** The gateway's watches (`GET /v1/watch`, docs/http.md "Watch"); absent in tests: 503. */
  watches?: Pick<WatchHub, 'open' | 'cancel'>;
  /** Authentication, key permissions and auth administration (docs/security.md); absent in tests: everything allowed, /v1/auth answers 503. */
  auth?: GatewayAuthStack;
}

export const HTTP_DEPS = Symbol('HTTP_DEPS');

/** The clock of the HTTP door: `deps.clock`, else `realClock`. */
export function httpClock(deps: Pick<HttpDeps, 'clock'>): Clock {
  return deps.clock ?? realClock;
}
