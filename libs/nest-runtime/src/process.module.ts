import { Global, Inject, Module, type DynamicModule, type OnApplicationShutdown } from '@nestjs/common';
import { connectNats, Subjects } from '@cairn/messaging';
import { createLogger, type Logger } from '@cairn/logging';
import type { NatsConnection } from 'nats';
import type { ProcessArgs, ProcessRole } from './process-args';

/** DI tokens shared by every Cairn process. */
export const CLUSTER_CONFIG = Symbol('CLUSTER_CONFIG');
export const PROCESS_ID = Symbol('PROCESS_ID');
export const LOGGER = Symbol('LOGGER');
export const NATS = Symbol('NATS');
export const SUBJECTS = Symbol('SUBJECTS');

/** Drains the NATS connection last, after the app's own shutdown hooks stopped using it. */
class NatsCloser implements OnApplicationShutdown {
  constructor(@Inject(NATS) private readonly nc: NatsConnection) {}
  async onApplicationShutdown(): Promise<void> {
    if (!this.nc.isClosed()) await this.nc.drain().catch(() => this.nc.close());
  }
}

/**
 * Global module with what every process needs: its validated config, id, logger, NATS connection
 * and subject names. Apps import `CairnProcessModule.forRoot(role, args)` once.
 */
@Global()
@Module({})
export class CairnProcessModule {
  static forRoot(role: ProcessRole, args: ProcessArgs): DynamicModule {
    const logger: Logger = createLogger(`${role}:${args.id}`, args.config.logLevel);
    return {
      module: CairnProcessModule,
      providers: [
        { provide: CLUSTER_CONFIG, useValue: args.config },
        { provide: PROCESS_ID, useValue: args.id },
        { provide: LOGGER, useValue: logger },
        { provide: SUBJECTS, useValue: new Subjects(args.config.clusterName) },
        {
          provide: NATS,
          useFactory: () => connectNats({ servers: args.config.nats.servers, name: `cairn-${role}-${args.id}` }, logger),
        },
        NatsCloser,
      ],
      exports: [CLUSTER_CONFIG, PROCESS_ID, LOGGER, SUBJECTS, NATS],
    };
  }
}
