import { Inject, Injectable, Module, type BeforeApplicationShutdown, type DynamicModule, type OnApplicationBootstrap } from '@nestjs/common';
import type { ClusterConfig } from '@cairn/config';
import type { Subjects } from '@cairn/messaging';
import type { Logger } from '@cairn/logging';
import type { NatsConnection } from 'nats';
import { CairnProcessModule, CLUSTER_CONFIG, LOGGER, NATS, PROCESS_ID, SUBJECTS } from './process.module';
import type { ProcessArgs, ProcessRole } from './process-args';

/** What a process's main component gets from the shell. */
export interface ProcessDeps {
  config: ClusterConfig;
  id: string;
  nc: NatsConnection;
  subjects: Subjects;
  log: Logger;
}

/** The library-level heart of a process (Replica, StorageNode, Gateway): started once, stopped once. */
export interface ProcessComponent {
  start(): Promise<void>;
  stop(): Promise<void>;
}

export const COMPONENT = Symbol('COMPONENT');
const ROLE = Symbol('ROLE');

/** Starts the component after DI is ready; stops it before the NATS connection is drained. */
@Injectable()
class ComponentLifecycle implements OnApplicationBootstrap, BeforeApplicationShutdown {
  constructor(
    @Inject(COMPONENT) private readonly component: ProcessComponent,
    @Inject(ROLE) private readonly role: ProcessRole,
    @Inject(LOGGER) private readonly log: Logger,
  ) {}
  async onApplicationBootstrap(): Promise<void> {
    await this.component.start();
    this.log.info(`${this.role} ready`);
  }
  async beforeApplicationShutdown(): Promise<void> {
    await this.component.stop();
    this.log.info(`${this.role} stopped`);
  }
}

/**
 * The whole NestJS shell of a Cairn app: the shared process providers plus `create(deps)` as the
 * component whose start/stop follow the application lifecycle (SIGTERM → stop → NATS drain).
 */
export function componentModule(role: ProcessRole, args: ProcessArgs, create: (deps: ProcessDeps) => ProcessComponent): DynamicModule {
  @Module({})
  class ComponentModule {}
  return {
    module: ComponentModule,
    imports: [CairnProcessModule.forRoot(role, args)],
    providers: [
      { provide: ROLE, useValue: role },
      {
        provide: COMPONENT,
        inject: [CLUSTER_CONFIG, PROCESS_ID, NATS, SUBJECTS, LOGGER],
        useFactory: (config: ClusterConfig, id: string, nc: NatsConnection, subjects: Subjects, log: Logger) => create({ config, id, nc, subjects, log }),
      },
      ComponentLifecycle,
    ],
    exports: [COMPONENT],
  };
}
