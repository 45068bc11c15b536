import { CairnClient } from '@cairn/client';
import { LocalCluster } from '@cairn/cluster';
import { freePort } from '@cairn/messaging/testing';
import { Etcd3 } from 'etcd3';
import { Redis } from 'ioredis';
import { connect as natsConnect, type NatsConnection } from 'nats';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Workload } from './options';
import { ServerGroup } from './procs';
import type { DoorId } from './report';

/** One client connection of a door: one request at a time per connection in the closed loop. */
export interface Conn {
  /** Runs one request; resolves when answered (a missing key is an answer). */
  op(w: Workload, key: string, value: Buffer): Promise<unknown>;
  close(): Promise<void>;
}

/** A store reached through one client library. */
export interface Door {
  id: DoorId;
  connect(): Promise<Conn>;
}

/** A store started by the run: its doors, what it is, and how to stop it. */
export interface RunningStore {
  /** e.g. `etcd Version: 3.4.23, 3 members`. */
  description: string;
  doors: Door[];
  /** Stops every process the store started and waits for them. Never throws. */
  stop(): Promise<void>;
}

/** The JetStream KV bucket the benchmark uses. */
export const NATS_BUCKET = 'bench';

/** Redis through ioredis: no offline queue and no reconnect, so a lost connection fails requests instead of hiding in a queue. */
async function redisConn(port: number): Promise<Redis> {
  const r = new Redis({ host: '127.0.0.1', port, lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
  // Failures reach the requests (and the readiness check); without a listener ioredis prints each one.
  r.on('error', () => undefined);
  try {
    await r.connect();
  } catch (e) {
    r.disconnect();
    throw e;
  }
  return r;
}

function redisDoor(id: DoorId, port: number, stale: Workload): Door {
  return {
    id,
    connect: async () => {
      const r = await redisConn(port);
      return {
        op: (w, k, v) => (w === 'put' ? r.set(k, v) : w === stale ? r.get(k) : Promise.reject(new Error(`${id} has no ${w}`))),
        close: async () => void r.disconnect(),
      };
    },
  };
}

/**
 * Cairn through the local launcher: `replicas` consensus replicas (c1…), `storageNodes` storage
 * nodes (s1…), 1 gateway with its TLV and RESP doors, logLevel warn, every other setting at its
 * default. `register` gets the stop before any process starts.
 */
export async function startCairn(dir: string, topology: { replicas: number; storageNodes: number }, register: (stop: () => Promise<void>) => void): Promise<Omit<RunningStore, 'description'>> {
  const [natsPort, port, respPort] = [await freePort(), await freePort(), await freePort()];
  const config = {
    clusterName: 'bench',
    dataDir: join(dir, 'data'),
    nats: { servers: [`nats://127.0.0.1:${natsPort}`] },
    consensus: { replicas: Array.from({ length: topology.replicas }, (_, i) => ({ id: `c${i + 1}` })) },
    storage: { nodes: Array.from({ length: topology.storageNodes }, (_, i) => ({ id: `s${i + 1}` })) },
    gateway: { gateways: [{ id: 'g1', host: '127.0.0.1', port, respPort }] },
    logLevel: 'warn',
  };
  mkdirSync(dir, { recursive: true });
  const configPath = join(dir, 'cairn.json');
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  const cluster = LocalCluster.create({ configPath });
  const stop = () => cluster.stop().catch(() => undefined);
  // Registered before the processes start, so Ctrl-C during start-up stops them too.
  register(stop);
  await cluster.launch(60_000);
  const tlv: Door = {
    id: 'cairn-tlv',
    connect: async () => {
      const c = await CairnClient.connect({ host: '127.0.0.1', port });
      return {
        op: (w, k, v) => (w === 'put' ? c.set(k, v) : c.get(k, { stale: w === 'staleGet' })),
        close: async () => void (await c.close()),
      };
    },
  };
  return { doors: [tlv, redisDoor('cairn-resp', respPort, 'get')], stop };
}

/** etcd with 3 members on loopback (distinct client and peer ports), default settings but zap logs at warn. */
export async function startEtcd(binary: string, dir: string, group: ServerGroup): Promise<Omit<RunningStore, 'description'>> {
  const ids = ['e1', 'e2', 'e3'];
  const client: string[] = [];
  const peer: string[] = [];
  for (let i = 0; i < ids.length; i++) {
    client.push(`http://127.0.0.1:${await freePort()}`);
    peer.push(`http://127.0.0.1:${await freePort()}`);
  }
  const initialCluster = ids.map((id, i) => `${id}=${peer[i]}`).join(',');
  ids.forEach((id, i) => {
    const args = ['--name', id, '--data-dir', join(dir, id), '--listen-client-urls', client[i], '--advertise-client-urls', client[i], '--listen-peer-urls', peer[i], '--initial-advertise-peer-urls', peer[i]];
    args.push('--initial-cluster', initialCluster, '--initial-cluster-state', 'new', '--initial-cluster-token', 'cairn-bench', '--logger', 'zap', '--log-level', 'warn');
    group.start(`etcd ${id}`, binary, args, join(dir, `${id}.log`));
  });
  const probe = new Etcd3({ hosts: client });
  try {
    await group.waitUntil('etcd (a put through the 3-member cluster)', async () => (await probe.put('bench-ready').value('1'), true));
  } finally {
    probe.close();
  }
  const door: Door = {
    id: 'etcd',
    connect: async () => {
      const c = new Etcd3({ hosts: client });
      return {
        op: (w, k, v) => (w === 'put' ? c.put(k).value(v).exec() : c.get(k).serializable(w === 'staleGet').buffer()),
        close: async () => c.close(),
      };
    },
  };
  return { doors: [door], stop: () => group.stopAll() };
}

function natsServerConfig(name: string, port: number, clusterPort: number, routes: number[], storeDir: string): string {
  return [
    `server_name: ${name}`,
    `listen: 127.0.0.1:${port}`,
    `jetstream { store_dir: ${JSON.stringify(storeDir)} }`,
    `cluster { name: bench, listen: 127.0.0.1:${clusterPort}, routes: [${routes.map((p) => `nats-route://127.0.0.1:${p}`).join(', ')}] }`,
    '',
  ].join('\n');
}

/** A 3-server nats-server cluster with JetStream, and a KV bucket with 3 replicas (other settings default). */
export async function startNats(binary: string, dir: string, group: ServerGroup): Promise<Omit<RunningStore, 'description'>> {
  const ids = ['n1', 'n2', 'n3'];
  const ports: number[] = [];
  const clusterPorts: number[] = [];
  for (let i = 0; i < ids.length; i++) {
    ports.push(await freePort());
    clusterPorts.push(await freePort());
  }
  ids.forEach((id, i) => {
    const conf = join(dir, `${id}.conf`);
    writeFileSync(conf, natsServerConfig(id, ports[i], clusterPorts[i], clusterPorts, join(dir, id)));
    group.start(`nats-server ${id}`, binary, ['-c', conf], join(dir, `${id}.log`));
  });
  const servers = ports.map((p) => `nats://127.0.0.1:${p}`);
  let admin: NatsConnection | null = null;
  try {
    await group.waitUntil('NATS JetStream (a KV bucket with 3 replicas)', async () => {
      admin ??= await natsConnect({ servers, name: 'bench-admin' });
      const kv = await admin.jetstream().views.kv(NATS_BUCKET, { replicas: 3 });
      await kv.put('bench-ready', Buffer.from('1'));
      return true;
    });
  } finally {
    await (admin as NatsConnection | null)?.close();
  }
  const door: Door = {
    id: 'nats',
    connect: async () => {
      const nc = await natsConnect({ servers, name: 'bench' });
      const kv = await nc.jetstream().views.kv(NATS_BUCKET, { bindOnly: true });
      return {
        op: (w, k, v) => (w === 'put' ? kv.put(k, v) : w === 'staleGet' ? kv.get(k) : Promise.reject(new Error(`NATS KV has no ${w}`))),
        close: () => nc.close(),
      };
    },
  };
  return { doors: [door], stop: () => group.stopAll() };
}

/** Redis, one node, `appendonly yes`, `appendfsync always`, no RDB snapshots. */
export async function startRedis(binary: string, dir: string, group: ServerGroup): Promise<Omit<RunningStore, 'description'>> {
  const port = await freePort();
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--daemonize', 'no', '--protected-mode', 'no', '--logfile', ''];
  group.start('redis-server', binary, args, join(dir, 'redis.log'));
  await group.waitUntil('redis-server (PING)', async () => {
    const r = await redisConn(port);
    try {
      return (await r.ping()) === 'PONG';
    } finally {
      r.disconnect();
    }
  });
  return { doors: [redisDoor('redis', port, 'staleGet')], stop: () => group.stopAll() };
}
