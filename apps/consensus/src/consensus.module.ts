import { Inject, Injectable, Module, type DynamicModule, type OnApplicationBootstrap, type BeforeApplicationShutdown } from '@nestjs/common';
import { CairnProcessModule, CLUSTER_CONFIG, LOGGER, NATS, PROCESS_ID, SUBJECTS, type ProcessArgs } from '@cairn/nest-runtime';
import type { ClusterConfig } from '@cairn/config';
import type { Logger, Subjects } from '@cairn/messaging';
import type { NatsConnection } from 'nats';
import { join } from 'node:path';
import { Replica } from './replica/replica';

/** Nest lifecycle around the Replica: start after DI is ready, stop before NATS is drained. */
@Injectable()
export class ReplicaService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  readonly replica: Replica;
  constructor(
    @Inject(CLUSTER_CONFIG) config: ClusterConfig,
    @Inject(PROCESS_ID) id: string,
    @Inject(NATS) nc: NatsConnection,
    @Inject(SUBJECTS) subjects: Subjects,
    @Inject(LOGGER) private readonly log: Logger,
  ) {
    this.replica = new Replica({
      id,
      voters: config.consensus.replicas.map((r) => r.id),
      config: config.consensus,
      dataDir: join(config.dataDir, id),
      nc,
      subjects,
      log,
    });
  }
  async onApplicationBootstrap(): Promise<void> {
    await this.replica.start();
    this.log.info('consensus replica ready');
  }
  async beforeApplicationShutdown(): Promise<void> {
    await this.replica.stop();
    this.log.info('consensus replica stopped');
  }
}

@Module({})
export class ConsensusModule {
  static forRoot(args: ProcessArgs): DynamicModule {
    return { module: ConsensusModule, imports: [CairnProcessModule.forRoot('consensus', args)], providers: [ReplicaService] };
  }
}
