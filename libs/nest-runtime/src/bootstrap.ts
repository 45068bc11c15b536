import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import type { DynamicModule } from '@nestjs/common';
import { ConfigError } from '@cairn/config';
import { parseProcessArgs, type ProcessArgs, type ProcessRole } from './process-args';

/**
 * Standard `main()` of a Cairn process: parse args, build the Nest application context from
 * `module(args)`, install SIGTERM/SIGINT shutdown hooks. A bad config prints a clear message and
 * exits with code 2; any other start-up failure exits with code 1.
 */
export async function runProcess(role: ProcessRole, module: (args: ProcessArgs) => DynamicModule): Promise<void> {
  let args: ProcessArgs;
  try {
    args = parseProcessArgs(process.argv, role);
  } catch (e) {
    const err = e as Error & { code?: string; exitCode?: number };
    if (err.code?.startsWith('commander.')) process.exit(err.exitCode ?? 2);
    process.stderr.write(`cairn-${role}: ${err instanceof ConfigError ? err.message : err.stack}\n`);
    process.exit(2);
  }
  try {
    const app = await NestFactory.createApplicationContext(module(args), { logger: ['error', 'warn'] });
    app.enableShutdownHooks(['SIGTERM', 'SIGINT']);
    await app.init();
  } catch (e) {
    process.stderr.write(`cairn-${role} ${args.id}: failed to start: ${(e as Error).stack}\n`);
    process.exit(1);
  }
}
