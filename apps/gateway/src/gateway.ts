import type { ProcessComponent, ProcessDeps } from '@cairn/nest-runtime';
import { BufferReclaimer, exposedCompactingGc, exposedGc } from '@cairn/nest-runtime';
import { realWorld } from '@cairn/world';
import { createGatewayAuth, type GatewayAuthStack } from './auth/auth-setup';
import { MembershipClient } from './cluster/membership-client';
import { ClusterView } from './cluster/cluster-view';
import { HttpApi, httpLimits } from './http/http-api';
import { SnapshotSource } from './http/snapshot.controller';
import { GatewayMetrics } from './metrics/gateway-metrics';
import { ReadIndexClient } from './paths/read-index';
import { LeaseClient } from './paths/lease-client';
import type { KvLeasePaths } from './paths/kv-session';
import { ReadPath } from './paths/read-path';
import { txnBoundsOf } from './paths/kv-session';
import { WritePath } from './paths/write-path';
import { createRespServer, type RespServer } from './resp/resp-server';
import { TcpServer } from './server/tcp-server';
import { ByteBudget, flowLimits } from './server/flow';
import { doorTlsOf } from './server/tls';
import { WatchHub } from './watch/watch-hub';

const LEASE_ID_MASK = 2n ** 53n - 1n;

/** The gateway: cluster view (status heartbeats), the write and read paths, and the TCP listener. */
export class Gateway implements ProcessComponent {
  readonly view = new ClusterView();
  /** One Prometheus registry for every front door, served on the HTTP door's /metrics. */
  readonly metrics = new GatewayMetrics(this.view);
  /** The HTTP API (docs/http.md); null when this member has no httpPort. */
  private readonly http: HttpApi | null = null;
  private readonly httpPort: number = 0;
  /** The RESP2 listener (docs/resp.md); null when this member has no respPort. */
  private readonly resp: RespServer | null = null;
  private readonly respPort: number = 0;
  private readonly writes: WritePath;
  private readonly server: TcpServer;
  private readonly host: string;
  private readonly port: number;
  /** Forces a collection when dead Buffers pile up (gateway.bufferGarbageBytesMax); null when off or unavailable. */
  private readonly reclaimer: BufferReclaimer | null = null;
  /** Users, roles, credentials and permissions (docs/security.md), shared by every door. */
  readonly auth: GatewayAuthStack;
  /** Every watch of this gateway, on every door (docs/watch.md "Gateway"). */
  private readonly watches: WatchHub;

  /** The process shell's clock: every timer and wall-clock read of the gateway's parts runs on it. */
  private readonly clock = realWorld.clock;
  /** When this gateway started, ms since the epoch (RESP INFO and the console's uptime). */
  private readonly startedAtMs = this.clock.nowMs();

  constructor(private readonly deps: ProcessDeps) {
    const { config, id, nc, subjects, log } = deps;
    const g = config.gateway;
    const me = g.gateways.find((x) => x.id === id);
    if (!me) throw new Error(`gateway id ${id} is not in gateway.gateways`);
    // Overrides for running a second gateway by hand (`nx serve gateway`) without editing the config.
    this.host = process.env.CAIRN_GATEWAY_HOST ?? me.host;
    this.port = Number(process.env.CAIRN_GATEWAY_PORT ?? me.port);
    this.writes = new WritePath(nc, subjects, this.view, g, log);
    const reads = new ReadPath(nc, subjects, this.view, g, log);
    const readIndex = new ReadIndexClient({ nc, subjects, view: this.view, log }, g);
    // Lease ids the gateway picks (LEASE_GRANT id 0): random in 1..2^53-1, as etcd's lessor picks them.
    const leases: KvLeasePaths = {
      client: new LeaseClient({ nc, subjects, view: this.view, log }, { timeoutMs: g.readTimeoutMs }),
      newLeaseId: () => Number(realWorld.random.uint64() & LEASE_ID_MASK) || 1,
      // A lease's keys from a storage node; their bytes bounded like a range page.
      keys: (leaseId, minIndex, keysMax) => reads.leaseKeys({ leaseId, minIndex, keysMax, bytesMax: g.rangeBytesMax }).then((r) => ({ ...r, keys: r.keys.map((k) => Buffer.from(k.buffer, k.byteOffset, k.byteLength)) })),
      keysMax: g.leaseKeysMax,
    };
    this.auth = createGatewayAuth({ auth: g.auth, view: this.view, reads, writes: this.writes, readyTimeoutMs: g.readTimeoutMs, log, clock: this.clock });
    this.watches = new WatchHub(nc, subjects, this.view, g, log);
    // One bound on bytes held for clients, across the TLV and RESP doors (docs/protocol.md).
    const budget = new ByteBudget(g.pendingBytesMax);
    const rangeLimits = { keysMax: g.rangeKeysMax, bytesMax: g.rangeBytesMax };
    const txnBounds = txnBoundsOf(g);
    // TLS per door (docs/security.md): respTls / httpTls, else tls; plain TCP only when chosen or on loopback.
    const tls = doorTlsOf('TLV', this.host, me.tls, undefined);
    const respTls = doorTlsOf('RESP', this.host, me.respTls, me.tls);
    const httpTls = doorTlsOf('HTTP', this.host, me.httpTls, me.tls);
    this.server = new TcpServer(
      {
        limits: { keyBytesMax: g.keyBytesMax, valueBytesMax: g.valueBytesMax },
        rangeLimits,
        txnBounds,
        inflightMax: g.inflightPerConnectionMax,
        flow: flowLimits(g),
        budget,
        connectionsMax: g.connectionsMax,
        drainTimeoutMs: g.drainTimeoutMs,
        reads,
        readIndex,
        writes: this.writes,
        leases,
        status: () => ({ gateway: { id, connections: this.server.connectionCount() }, ...this.view.snapshot() }),
        observer: this.metrics.observer('tlv'),
        watches: { hub: this.watches, perConnectionMax: g.watchesPerConnectionMax },
        tls,
        auth: this.auth.gate,
        clock: this.clock,
      },
      log,
    );
    this.metrics.trackConnections('tlv', () => this.server.connectionCount());
    this.metrics.trackTraffic('tlv', this.server.traffic);
    this.metrics.trackPendingBytes(() => budget.used());
    this.reclaimer = this.bufferReclaimer(g, budget);
    const httpPort = process.env.CAIRN_GATEWAY_HTTP_PORT ?? me.httpPort;
    if (httpPort !== undefined) {
      this.httpPort = Number(httpPort);
      const paths = { reads, readIndex, writes: this.writes, limits: { keyBytesMax: g.keyBytesMax, valueBytesMax: g.valueBytesMax }, rangeLimits, txnBounds, leases };
      // Membership and snapshot pulls go out as `admin`: the `gateway` bus role may not publish member.* or snapshot.* (docs/security.md).
      const members = new MembershipClient({ nc: deps.controlNc, subjects, view: this.view, log });
      const snapshots = new SnapshotSource({ nc: deps.controlNc, subjects, view: this.view, readIndex, requestTimeoutMs: config.storage.snapshotTransferTimeoutMs, beginTimeoutMs: g.readTimeoutMs });
      this.http = new HttpApi({ gatewayId: id, paths, view: this.view, metrics: this.metrics, members, snapshots, limits: httpLimits(g), budget, log, auth: this.auth, watches: this.watches, clock: this.clock, startedAtMs: this.startedAtMs }, httpTls);
    }
    const respPort = process.env.CAIRN_GATEWAY_RESP_PORT ?? me.respPort;
    if (respPort !== undefined) {
      this.respPort = Number(respPort);
      const paths = { reads, readIndex, writes: this.writes, limits: { keyBytesMax: g.keyBytesMax, valueBytesMax: g.valueBytesMax }, rangeLimits, txnBounds };
      this.resp = createRespServer({ gatewayId: id, g, paths, view: this.view, respPort: this.respPort, budget, log, tls: respTls, auth: this.auth.gate, watches: { hub: this.watches, perConnectionMax: g.watchesPerConnectionMax }, clock: this.clock, startedAtMs: this.startedAtMs });
      const resp = this.resp;
      this.metrics.trackConnections('resp', () => resp.connectionCount());
      this.metrics.trackTraffic('resp', resp.traffic);
    }
  }

  /** Forces collections when dead Buffers pile up (gateway.bufferGarbageBytesMax); null when off or when the runtime gives no gc(). */
  private bufferReclaimer(g: ProcessDeps['config']['gateway'], budget: ByteBudget): BufferReclaimer | null {
    if (g.bufferGarbageBytesMax === 0) return null;
    const gc = exposedGc();
    if (gc) return new BufferReclaimer(g.bufferGarbageBytesMax, g.bufferCheckIntervalMs, gc, exposedCompactingGc(), () => budget.used(), g.bufferGarbageBytesMax, this.clock);
    this.deps.log.warn('this Node.js runtime gives no gc(): dead Buffers wait for V8 (gateway.bufferGarbageBytesMax has no effect)');
    return null;
  }

  async start(): Promise<void> {
    this.view.start(this.deps.nc, this.deps.subjects);
    this.watches.start();
    this.reclaimer?.start();
    await this.server.listen(this.host, this.port);
    this.deps.log.info({ host: this.host, port: this.port }, 'gateway listening');
    if (this.resp) {
      await this.resp.listen(this.host, this.respPort);
      this.deps.log.info({ host: this.host, respPort: this.respPort }, 'gateway RESP listening');
    }
    if (this.http) {
      await this.http.listen(this.host, this.httpPort);
      this.deps.log.info({ host: this.host, httpPort: this.httpPort }, 'gateway HTTP API listening');
    }
  }

  /** Graceful: stop accepting, drain in-flight requests (bounded by drainTimeoutMs), close. */
  async stop(): Promise<void> {
    // Watches end first (CANCELED SHUTDOWN frames), so the drain waits only for requests.
    this.watches.stop();
    await this.server.close();
    await this.resp?.close();
    await this.http?.close();
    this.writes.stop();
    this.auth.view.stop();
    this.view.stop();
    this.reclaimer?.stop();
  }
}
