import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import type { DynamicModule } from '@nestjs/common';
import { ConfigError } from '@cairn/config';
import type { Logger } from '@cairn/logging';
import type { NatsConnection } from 'nats';
import { hopTrace } from '@cairn/messaging';
import { ControlPlaneServer } from './control-plane';
import { nestLogger } from './nest-logger';
import { parseProcessArgs, type ProcessArgs, type ProcessRole } from './process-args';
import { LOGGER, NATS } from './process.module';

/** How a process is run. */
export interface RunOptions {
  /**
   * Serve the module's `@MessagePattern` controllers (the control plane) on Nest's NATS transport
   * over the process's connection (`ControlPlaneServer`); subscribed once the component started.
   */
  controlPlane?: boolean;
}

/**
 * Standard `main()` of a Cairn process: parse args, build the Nest application context from
 * `module(args)` (Nest's own log lines through the process logger: `nestLogger`), install
 * SIGTERM/SIGINT shutdown hooks. A bad config prints a clear message and exits with code 2; any
 * other start-up failure exits with code 1. With `controlPlane`, the application is a Nest
 * microservice (`ControlPlaneServer` strategy); its close unsubscribes before the component stops.
 */
export async function runProcess(role: ProcessRole, module: (args: ProcessArgs) => DynamicModule, opts: RunOptions = {}): Promise<void> {
  let args: ProcessArgs;
  try {
    args = parseProcessArgs(process.argv, role);
  } catch (e) {
    const err = e as Error & { code?: string; exitCode?: number };
    if (err.code?.startsWith('commander.')) process.exit(err.exitCode ?? 2);
    process.stderr.write(`cairn-${role}: ${err instanceof ConfigError ? err.message : err.stack}\n`);
    process.exit(2);
  }
  hopTrace.start(role, args.id);
  try {
    // Nest's own lines (errors and warnings, as before) wait until the process logger exists, then
    // go through it as JSON lines; if the start fails first, Nest prints them itself.
    const nestOpts = { logger: ['error', 'warn'] as ('error' | 'warn')[], bufferLogs: true };
    if (!opts.controlPlane) {
      const app = await NestFactory.createApplicationContext(module(args), nestOpts);
      app.useLogger(nestLogger(app.get<Logger>(LOGGER)));
      app.enableShutdownHooks(['SIGTERM', 'SIGINT']);
      await app.init();
      return;
    }
    const server = new ControlPlaneServer();
    const app = await NestFactory.createMicroservice(module(args), { ...nestOpts, strategy: server });
    const log = app.get<Logger>(LOGGER);
    app.useLogger(nestLogger(log));
    app.enableShutdownHooks(['SIGTERM', 'SIGINT']);
    server.useConnection(app.get<NatsConnection>(NATS), log);
    await app.listen(); // runs init (the component starts) once, then subscribes
  } catch (e) {
    process.stderr.write(`cairn-${role} ${args.id}: failed to start: ${(e as Error).stack}\n`);
    process.exit(1);
  }
}

