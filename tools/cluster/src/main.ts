#!/usr/bin/env node
/**
 * `npm start`: starts a local Cairn cluster from a config file (default ./cairn.config.json) with its
 * data under the config's dataDir, prints where to reach it, and stays up until Ctrl-C / SIGTERM,
 * which stop every process in order (gateways, storage, consensus, nats-server) and exit 0.
 * A process that exits on its own is restarted with exponential backoff (`--no-restart`: not).
 * Exit codes: 0 stopped cleanly, 1 start-up failed (nats-server missing, a process died, not ready),
 * 2 bad arguments or config.
 */
import { ConfigError } from '@cairn/config';
import { NatsServerMissingError, OpensslMissingError } from '@cairn/messaging/testing';
import { join, relative } from 'node:path';
import { LauncherArgsError, parseLauncherArgs } from './args';
import { LocalCluster, REPO_ROOT } from './cluster';

function say(line = ''): void {
  process.stdout.write(`${line}\n`);
}

/** The cluster of the launcher's arguments; a bad config exits 2. */
function createCluster(args: ReturnType<typeof parseLauncherArgs>): LocalCluster {
  try {
    return LocalCluster.create({
      configPath: args.configPath,
      startNats: args.startNats,
      logDir: args.logDir,
      supervise: args.restart,
      ...(args.cpuProfDir ? { cpuProfDir: args.cpuProfDir } : {}),
      onUnexpectedExit: (x) =>
        process.stderr.write(
          `cairn-cluster: ${x.role} ${x.id} exited unexpectedly (code ${x.code}, signal ${x.signal}); last log lines:\n${x.logTail}\n` +
            (args.restart ? '' : `The rest of the cluster keeps running (--no-restart: it stays down); Ctrl-C to stop.\n`),
        ),
      onRestartScheduled: (r) =>
        process.stderr.write(`cairn-cluster: restarting ${r.role} ${r.id} in ${r.delayMs} ms (restart #${r.restarts})\n`),
    });
  } catch (e) {
    process.stderr.write(`cairn-cluster: ${e instanceof ConfigError ? e.message : (e as Error).stack}\n`);
    process.exit(2);
  }
}

/** Prints where the started cluster is reached and a few commands to try. */
async function sayReady(cluster: LocalCluster, startNats: boolean): Promise<void> {
  const cfg = cluster.config;
  const leader = await cluster.leaderId().catch(() => '(none yet)');
  const cli = relative(process.cwd(), join(REPO_ROOT, 'apps', 'cli', 'dist', 'main.js')) || 'apps/cli/dist/main.js';
  const gw = cfg.gateway.gateways[0];
  say('');
  say(`Cairn cluster "${cfg.clusterName}" is ready.`);
  for (const g of cfg.gateway.gateways) say(`  gateway ${g.id} listening on ${g.host}:${g.port}`);
  say(`  consensus: ${cluster.ids('consensus').join(', ')} (leader ${leader}); storage: ${cluster.ids('storage').join(', ')}`);
  say(`  nats: ${cfg.nats.servers.join(', ')}${startNats ? ' (private nats-server)' : ''}${cfg.nats.tls ? ', TLS' : ''}${cfg.nats.credentials ? ', per-role credentials' : ''}`);
  say(`  process logs: ${cluster.logDir}/<id>.log`);
  say('');
  say('Try (in another terminal):');
  const c = `node ${cli} --gateway ${gw.host}:${gw.port}`;
  say(`  ${c} put hello world`);
  say(`  ${c} get hello`);
  say(`  ${c} status`);
  say(`  ${c} ping --count 10`);
  say(`  ${c} import FILE.tsv`);
  say('');
  say('Ctrl-C stops the cluster.');
}

async function main(): Promise<void> {
  let args;
  try {
    args = parseLauncherArgs(process.argv);
  } catch (e) {
    if (e instanceof LauncherArgsError) process.exit(e.exitCode);
    throw e;
  }

  const cluster = createCluster(args);

  let stopping: Promise<void> | null = null;
  const shutdown = (signal: NodeJS.Signals) => {
    if (stopping) {
      // Second Ctrl-C: do not wait for graceful shutdown any longer.
      process.stderr.write(`cairn-cluster: ${signal} again, killing every process\n`);
      void cluster.killAll('SIGKILL').then(() => process.exit(1));
      return;
    }
    process.stderr.write(`cairn-cluster: ${signal}, stopping the cluster...\n`);
    stopping = cluster.stop().then(
      () => {
        process.stderr.write('cairn-cluster: stopped\n');
        process.exit(0);
      },
      (e: unknown) => {
        process.stderr.write(`cairn-cluster: stop failed: ${(e as Error).stack}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);

  const cfg = cluster.config;
  say(`cairn-cluster: starting cluster "${cfg.clusterName}" from ${cluster.configPath}`);
  say(`  data: ${cfg.dataDir}`);
  say(`  logs: ${cluster.logDir}`);
  try {
    await cluster.launch(args.readyTimeoutMs);
  } catch (e) {
    if (stopping) return; // Ctrl-C during start-up: shutdown() exits.
    if (e instanceof NatsServerMissingError || e instanceof OpensslMissingError) process.stderr.write(`cairn-cluster: ${e.message}\n`);
    else process.stderr.write(`cairn-cluster: start failed: ${(e as Error).message}\n`);
    process.exit(1);
  }

  await sayReady(cluster, args.startNats);
}

main().catch((e: unknown) => {
  process.stderr.write(`cairn-cluster: ${(e as Error).stack}\n`);
  process.exit(1);
});
