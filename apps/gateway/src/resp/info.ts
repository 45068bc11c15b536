import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClusterView } from '../cluster/cluster-view';

/** The Redis version whose RESP2 behaviour the door follows (clients read `redis_version` to pick features). */
export const REDIS_COMPAT_VERSION = '7.0.0';

/** What INFO, HELLO, DBSIZE and CLIENT report: this gateway and its view of the cluster. */
export interface RespServerInfo {
  gatewayId: string;
  /** Cairn's version (the gateway package's). */
  version: string;
  startedAtMs: number;
  respPort: number;
  /** Open RESP connections. */
  connections: () => number;
  view: ClusterView;
  /** Wall-clock ms since the Unix epoch (the gateway's clock: virtual in the simulator and in tests). */
  now: () => number;
}

/** The gateway package's version, read at start (apps/gateway/package.json, from src/ or dist/). */
export function gatewayVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(__dirname, '../../package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** Keys in the store per the freshest live storage node's heartbeat (every node holds every key), or null when none is live. */
export function storedKeys(view: ClusterView): number | null {
  const [freshest] = view.liveStorageNodes();
  return freshest ? freshest.keys : null;
}

const SECTIONS = ['server', 'clients', 'persistence', 'replication', 'keyspace'] as const;
type Section = (typeof SECTIONS)[number];

/**
 * INFO's text: `# Section\r\nfield:value\r\n...`, sections separated by a blank line, as Redis
 * formats it. `requested` are section names (any case); none, `default`, `all` or `everything`
 * mean every section; unknown names select nothing.
 */
export function infoText(info: RespServerInfo, requested: string[]): string {
  const wanted = new Set<Section>();
  const names = requested.map((s) => s.toLowerCase());
  if (names.length === 0 || names.some((n) => n === 'default' || n === 'all' || n === 'everything')) SECTIONS.forEach((s) => wanted.add(s));
  else for (const n of names) if ((SECTIONS as readonly string[]).includes(n)) wanted.add(n as Section);
  const now = info.now();
  const snap = info.view.snapshot();
  const uptimeS = Math.floor((now - info.startedAtMs) / 1000);
  const leader = snap.consensus.find((c) => c.id === snap.leaderId);
  const commitIndex = leader?.commitIndex ?? Math.max(0, ...snap.consensus.map((c) => c.commitIndex));
  const keys = storedKeys(info.view);
  const fields: Record<Section, [string, string | number][]> = {
    server: [
      ['redis_version', REDIS_COMPAT_VERSION],
      ['cairn_version', info.version],
      ['redis_mode', 'standalone'],
      ['os', `${process.platform} ${process.arch}`],
      ['process_id', process.pid],
      ['tcp_port', info.respPort],
      ['uptime_in_seconds', uptimeS],
      ['uptime_in_days', Math.floor(uptimeS / 86400)],
      ['cairn_gateway_id', info.gatewayId],
    ],
    clients: [['connected_clients', info.connections()]],
    // ioredis waits while `loading` is not 0; a gateway has nothing to load.
    persistence: [['loading', 0]],
    replication: [
      // `master`: Redis clients read it as "this endpoint takes writes". Cairn's own roles follow.
      ['role', 'master'],
      ['connected_slaves', 0],
      ['cairn_role', 'gateway'],
      ['cairn_leader_id', snap.leaderId ?? ''],
      ['cairn_term', snap.term],
      ['cairn_commit_index', commitIndex],
      ...snap.consensus.map(
        (c): [string, string] => [`cairn_replica_${c.id}`, `role=${c.role},term=${c.term},commit_index=${c.commitIndex},applied_index=${c.appliedIndex},last_index=${c.lastIndex},age_ms=${c.ageMs}`],
      ),
      ...snap.storage.map((s): [string, string] => [`cairn_storage_${s.id}`, `applied_index=${s.appliedIndex},known_commit_index=${s.knownCommitIndex},keys=${s.keys},age_ms=${s.ageMs}`]),
    ],
    // Redis lists only non-empty databases.
    keyspace: keys ? [['db0', `keys=${keys},expires=0,avg_ttl=0`]] : [],
  };
  const title = (s: Section) => s[0].toUpperCase() + s.slice(1);
  return SECTIONS.filter((s) => wanted.has(s))
    .map((s) => `# ${title(s)}\r\n${fields[s].map(([k, v]) => `${k}:${v}\r\n`).join('')}`)
    .join('\r\n');
}
