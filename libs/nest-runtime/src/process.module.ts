import { Global, Inject, Module, type DynamicModule, type OnApplicationShutdown } from '@nestjs/common';
import { busConnectOptions, connectNats, Subjects, type NatsOptions } from '@cairn/messaging';
import { ConfigError } from '@cairn/config';
import { createLogger, type Logger } from '@cairn/logging';
import type { NatsConnection } from 'nats';
import type { ProcessArgs, ProcessRole } from './process-args';

/** DI tokens shared by every Cairn process. */
export const CLUSTER_CONFIG = Symbol('CLUSTER_CONFIG');
export const PROCESS_ID = Symbol('PROCESS_ID');
export const LOGGER = Symbol('LOGGER');
export const NATS = Symbol('NATS');
/** The connection for control requests a gateway sends as `admin` (membership, snapshot pulls); NATS itself elsewhere. */
export const NATS_CONTROL = Symbol('NATS_CONTROL');
export const SUBJECTS = Symbol('SUBJECTS');

/** Drains the NATS connections last, after the app's own shutdown hooks stopped using them. */
class NatsCloser implements OnApplicationShutdown {
  constructor(
    @Inject(NATS) private readonly nc: NatsConnection,
    @Inject(NATS_CONTROL) private readonly control: NatsConnection,
  ) {}
  async onApplicationShutdown(): Promise<void> {
    for (const nc of new Set([this.control, this.nc])) if (!nc.isClosed()) await nc.drain().catch(() => nc.close());
  }
}

/**
 * The process's own connection options: its role's credential, reply inbox and TLS (docs/security.md "The internal bus").
 * @throws ConfigError when other roles have credentials and this one has none; BusCredentialError on a bad seed file.
 */
function ownBusOptions(role: ProcessRole, args: ProcessArgs, subjects: Subjects): NatsOptions {
  const o = busConnectOptions(args.config.nats, role, subjects, `cairn-${role}-${args.id}`);
  if (!o) throw new ConfigError(`nats.credentials has no "${role}" entry (the bus is authenticated: every role needs its credential)`);
  return o;
}

/**
 * A gateway's `admin` connection when the config names an admin credential; else its one connection
 * (with credentials but no `admin`, the bus refuses its membership and snapshot requests: logged).
 */
async function controlConnection(role: ProcessRole, args: ProcessArgs, subjects: Subjects, nc: NatsConnection, log: Logger): Promise<NatsConnection> {
  if (role !== 'gateway' || !args.config.nats.credentials) return nc;
  const o = busConnectOptions(args.config.nats, 'admin', subjects, `cairn-${role}-${args.id}-admin`);
  if (o) return connectNats(o, log);
  log.warn({}, 'nats.credentials has no "admin" entry: membership changes and snapshot pulls through this gateway will be refused by the bus');
  return nc;
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
    const subjects = new Subjects(args.config.clusterName);
    return {
      module: CairnProcessModule,
      providers: [
        { provide: CLUSTER_CONFIG, useValue: args.config },
        { provide: PROCESS_ID, useValue: args.id },
        { provide: LOGGER, useValue: logger },
        { provide: SUBJECTS, useValue: subjects },
        { provide: NATS, useFactory: () => connectNats(ownBusOptions(role, args, subjects), logger) },
        { provide: NATS_CONTROL, inject: [NATS], useFactory: (nc: NatsConnection) => controlConnection(role, args, subjects, nc, logger) },
        NatsCloser,
      ],
      exports: [CLUSTER_CONFIG, PROCESS_ID, LOGGER, SUBJECTS, NATS, NATS_CONTROL],
    };
  }
}
