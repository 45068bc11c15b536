import { Inject, Injectable, Module, type BeforeApplicationShutdown, type DynamicModule, type OnApplicationBootstrap } from '@nestjs/common';
import { CairnProcessModule, CLUSTER_CONFIG, LOGGER, NATS, PROCESS_ID, SUBJECTS, type ProcessArgs } from '@cairn/nest-runtime';
import type { ClusterConfig } from '@cairn/config';
import type { Logger, Subjects } from '@cairn/messaging';
import type { NatsConnection } from 'nats';
import { join } from 'node:path';
import { StorageNode } from './node/storage-node';

/** Nest lifecycle around the StorageNode. */
@Injectable()
export class StorageNodeService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  readonly node: StorageNode;
  constructor(
    @Inject(CLUSTER_CONFIG) config: ClusterConfig,
    @Inject(PROCESS_ID) id: string,
    @Inject(NATS) nc: NatsConnection,
    @Inject(SUBJECTS) subjects: Subjects,
    @Inject(LOGGER) private readonly log: Logger,
  ) {
    this.node = new StorageNode({
      id,
      replicaIds: config.consensus.replicas.map((r) => r.id),
      config: config.storage,
      dataDir: join(config.dataDir, id),
      nc,
      subjects,
      log,
    });
  }
  async onApplicationBootstrap(): Promise<void> {
    await this.node.start();
    this.log.info('storage node ready');
  }
  async beforeApplicationShutdown(): Promise<void> {
    await this.node.stop();
    this.log.info('storage node stopped');
  }
}

@Module({})
export class StorageNodeModule {
  static forRoot(args: ProcessArgs): DynamicModule {
    return { module: StorageNodeModule, imports: [CairnProcessModule.forRoot('storage', args)], providers: [StorageNodeService] };
  }
}
