import { Inject, Injectable, Module, type BeforeApplicationShutdown, type DynamicModule, type OnApplicationBootstrap, type Type } from '@nestjs/common';
import type { ClusterConfig } from '@cairn/config';
import { assertPayloadBounds, natsTransport, serverMaxPayloadBytes, type Subjects } from '@cairn/messaging';
import type { Logger } from '@cairn/logging';
import { exitProcessOnFatal, realWorld, type Transport, type World } from '@cairn/world';
import type { NatsConnection } from 'nats';
import { join } from 'node:path';
import { CairnProcessModule, CLUSTER_CONFIG, LOGGER, NATS, NATS_CONTROL, PROCESS_ID, SUBJECTS } from './process.module';
import type { ProcessArgs, ProcessRole } from './process-args';

/** What a process's main component gets from the shell. */
export interface ProcessDeps {
  config: ClusterConfig;
  id: string;
  nc: NatsConnection;
  /** Control requests a gateway sends as `admin` (membership, snapshot pulls): a second connection when the bus is authenticated, else `nc`. */
  controlNc: NatsConnection;
  subjects: Subjects;
  log: Logger;
}

/** The world a replica or storage node runs in: what its options take besides its own settings (ReplicaOptions, StorageNodeOptions). */
export interface ProcessWorld {
  /** `<config.dataDir>/<id>`. */
  dataDir: string;
  /** The message bus (production: `natsTransport(nc)`; simulation: `SimNetwork.connect`). */
  bus: Transport;
  /** Time and randomness (production: `realWorld`; simulation: the scheduler's). */
  world: World;
  subjects: Subjects;
  log: Logger;
  /** A failed disk write or fsync, or a broken invariant: ends the process (exit code 70). */
  onFatal: (err: unknown) => void;
}

/** The production wiring of a process's component: NATS as its bus, real time and randomness, its own data directory, exit on a fatal error (the simulator wires its own). */
export function processWorld(deps: ProcessDeps): ProcessWorld {
  return { dataDir: join(deps.config.dataDir, deps.id), bus: natsTransport(deps.nc), world: realWorld, subjects: deps.subjects, log: deps.log, onFatal: exitProcessOnFatal };
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
 * Before creating it, checks that the configured limits fit the NATS server's max_payload
 * (`assertPayloadBounds`: a PayloadBoundsError fails the start, exit 1). `controllers` (thin
 * `@MessagePattern` shells that inject COMPONENT) are served when the process runs with
 * `runProcess(…, { controlPlane: true })`.
 */
export function componentModule(role: ProcessRole, args: ProcessArgs, create: (deps: ProcessDeps) => ProcessComponent, controllers: Type[] = []): DynamicModule {
  @Module({})
  class ComponentModule {}
  return {
    module: ComponentModule,
    imports: [CairnProcessModule.forRoot(role, args)],
    controllers,
    providers: [
      { provide: ROLE, useValue: role },
      {
        provide: COMPONENT,
        inject: [CLUSTER_CONFIG, PROCESS_ID, NATS, NATS_CONTROL, SUBJECTS, LOGGER],
        useFactory: (config: ClusterConfig, id: string, nc: NatsConnection, controlNc: NatsConnection, subjects: Subjects, log: Logger) => {
          assertPayloadBounds(config, serverMaxPayloadBytes(nc));
          return create({ config, id, nc, controlNc, subjects, log });
        },
      },
      ComponentLifecycle,
    ],
    exports: [COMPONENT],
  };
}
