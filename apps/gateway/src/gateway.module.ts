import { Inject, Injectable, Module, type BeforeApplicationShutdown, type DynamicModule, type OnApplicationBootstrap } from '@nestjs/common';
import { CairnProcessModule, CLUSTER_CONFIG, LOGGER, NATS, PROCESS_ID, SUBJECTS, type ProcessArgs } from '@cairn/nest-runtime';
import type { ClusterConfig } from '@cairn/config';
import type { Logger, Subjects } from '@cairn/messaging';
import type { NatsConnection } from 'nats';
import { ClusterView } from './cluster/cluster-view';
import { ReadPath } from './paths/read-path';
import { WritePath } from './paths/write-path';
import { TcpServer } from './server/tcp-server';

/** Wires the gateway: cluster view (status heartbeats), write and read paths, TCP server. */
@Injectable()
export class GatewayService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  readonly view = new ClusterView();
  private readonly writes: WritePath;
  private readonly server: TcpServer;
  private readonly host: string;
  private readonly port: number;

  constructor(
    @Inject(CLUSTER_CONFIG) config: ClusterConfig,
    @Inject(PROCESS_ID) private readonly id: string,
    @Inject(NATS) private readonly nc: NatsConnection,
    @Inject(SUBJECTS) private readonly subjects: Subjects,
    @Inject(LOGGER) private readonly log: Logger,
  ) {
    const g = config.gateway;
    const me = g.gateways.find((x) => x.id === id)!;
    this.host = process.env.CAIRN_GATEWAY_HOST ?? me.host;
    this.port = Number(process.env.CAIRN_GATEWAY_PORT ?? me.port);
    this.writes = new WritePath(nc, subjects, this.view, g, log);
    const reads = new ReadPath(nc, subjects, this.view, g, log);
    this.server = new TcpServer(
      {
        limits: { keyBytesMax: g.keyBytesMax, valueBytesMax: g.valueBytesMax },
        inflightMax: g.inflightPerConnectionMax,
        idleTimeoutMs: g.idleTimeoutMs,
        connectionsMax: g.connectionsMax,
        drainTimeoutMs: g.drainTimeoutMs,
        reads,
        writes: this.writes,
        status: () => ({ gateway: { id: this.id, connections: this.server.connectionCount() }, ...this.view.snapshot() }),
      },
      log,
    );
  }

  async onApplicationBootstrap(): Promise<void> {
    this.view.start(this.nc, this.subjects);
    await this.server.listen(this.host, this.port);
    this.log.info({ host: this.host, port: this.port }, 'gateway ready');
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.server.close();
    this.writes.stop();
    this.view.stop();
    this.log.info('gateway stopped');
  }
}

@Module({})
export class GatewayModule {
  static forRoot(args: ProcessArgs): DynamicModule {
    return { module: GatewayModule, imports: [CairnProcessModule.forRoot('gateway', args)], providers: [GatewayService] };
  }
}
