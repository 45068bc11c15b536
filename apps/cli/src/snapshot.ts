import { createReadStream } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import type { ClientTlsOptions } from '@cairn/client';
import { loadConfigFile } from './config-file';
import { BackupCorruptionError, BackupReader, BackupTruncatedError, SnapshotInstaller, type BackupEvent, type BackupMeta } from '@cairn/engine';
import { HardStateFile, LeaseStateFile, SnapshotFile, type SavedLeaseState } from '@cairn/log';
import { realClock } from '@cairn/world';
import { UsageError } from './exit-codes';
import { resolveHttp, MemberUnavailableError } from './member';
import { authHeader, authRefusal, type CliCredentials } from './credentials';
import { ReservedRecordScan, type LeaseBounds } from './reserved-scan';

export type { LeaseBounds } from './reserved-scan';

export interface SnapshotDeps {
  env?: NodeJS.ProcessEnv;
  out: (s: string) => void;
  /** The command's `--tls`, `--cacert`, `--cert`, `--key` (cli.ts tlsOptionsOf): HTTPS to the gateway when set. */
  tls?: (cmd: Command) => ClientTlsOptions | undefined;
  /** The command's credentials (`--user`, `--password`, `--token`, env; credentials.ts): sent as HTTP Basic or Bearer (a snapshot is admin-only). */
  credentials?: (cmd: Command) => CliCredentials | null;
}

/** Reads of the backup file during restore, bytes. */
const READ_BYTES = 1024 * 1024;

/** What a save or restore went through (the `--json` output). */
export interface SnapshotSummary {
  file: string;
  revision: number;
  term: number;
  node: string;
  savedAtMs: number;
  files: number;
  chunks: number;
  /** Engine file bytes in the snapshot. */
  bytes: number;
  /** Size of the backup file. */
  fileBytes: number;
  ms: number;
  /** Restore: leases and key expiries in the lease table written to the replicas (absent when no replica was written). */
  leases?: number;
  keyExpiries?: number;
}

/** Feeds `reader` and keeps the summary fields; `onEvent` sees every checked record. */
class Tally {
  meta: BackupMeta | null = null;
  files = 0;
  chunks = 0;
  bytes = 0;
  fileBytes = 0;
  constructor(private readonly reader = new BackupReader()) {}

  async push(data: Buffer, onEvent?: (e: BackupEvent) => Promise<void>): Promise<void> {
    this.fileBytes += data.length;
    for (const e of this.reader.push(data)) {
      if (e.kind === 'meta') this.meta = e.meta;
      if (e.kind === 'manifest') this.files = e.manifest.files.length;
      if (e.kind === 'end') ({ chunks: this.chunks, bytes: this.bytes } = e);
      if (onEvent) await onEvent(e);
    }
  }

  finish(file: string, startedMs: number): SnapshotSummary {
    this.reader.finish();
    const m = this.meta!;
    return { file, revision: m.appliedIndex, term: m.term, node: m.node, savedAtMs: m.savedAtMs, files: this.files, chunks: this.chunks, bytes: this.bytes, fileBytes: this.fileBytes, ms: Date.now() - startedMs };
  }
}

/** A damaged or cut backup file is input the user must fix (exit 2), named with its path. */
function asUsage(file: string, e: unknown): unknown {
  return e instanceof BackupCorruptionError || e instanceof BackupTruncatedError ? new UsageError(`${file}: ${e.message}; refusing it`) : e;
}

/**
 * `cairn snapshot save FILE`: `GET /v1/snapshot` from a gateway, checked record by record as it
 * arrives (BackupReader), written to `FILE.part`, fsynced and renamed to FILE only once whole.
 * @throws MemberUnavailableError (exit 3) when no gateway or storage node answers; UsageError for a bad reply.
 */
export async function saveSnapshot(o: { file: string; http: { host: string; port: number }; node?: string; idleTimeoutMs: number; tls?: ClientTlsOptions; credentials?: CliCredentials | null }): Promise<SnapshotSummary> {
  const started = Date.now();
  const { host, port } = o.http;
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    const path = `/v1/snapshot${o.node ? `?node=${encodeURIComponent(o.node)}` : ''}`;
    // HTTPS when the gateway's HTTP door has TLS (docs/security.md): the same options as the TLV door's.
    const headers = authHeader(o.credentials ?? null);
    const req = o.tls ? https.get({ host, port, path, headers, ...o.tls }, resolve) : http.get({ host, port, path, headers }, resolve);
    req.setTimeout(o.idleTimeoutMs, () => req.destroy(Object.assign(new Error(`no data for ${o.idleTimeoutMs} ms`), { code: 'TIMEOUT' })));
    req.on('error', (e: NodeJS.ErrnoException) => {
      const tlsFailed = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|SSL|EPROTO|TLS/.test(e.code ?? '');
      const why = tlsFailed
        ? `TLS with the gateway HTTP API at ${host}:${port} failed: ${e.message} (${e.code}) — check --cacert, --cert, --key (docs/security.md)`
        : `cannot reach the gateway HTTP API at ${host}:${port}: ${e.code ?? e.message} — is the cluster running, with an httpPort on its gateway? (else check --http / $CAIRN_HTTP${o.tls ? '' : '; --tls when its HTTP door has TLS'})`;
      reject(new MemberUnavailableError(why, e.code ?? 'UNAVAILABLE'));
    });
  });
  if (res.statusCode !== 200) {
    let body = '';
    for await (const c of res) body += String(c);
    let msg = body;
    try {
      msg = (JSON.parse(body || '{}') as { message?: string }).message ?? body;
    } catch {
      // not JSON: the body as is
    }
    const refused = authRefusal(res.statusCode ?? 0, msg);
    if (refused) throw refused;
    throw new MemberUnavailableError(`gateway ${host}:${port} answered ${res.statusCode}: ${msg}`);
  }
  const part = `${o.file}.part`;
  const fh = await fsp.open(part, 'w');
  const tally = new Tally();
  try {
    for await (const data of res as AsyncIterable<Buffer>) {
      await tally.push(data);
      await fh.write(data);
    }
    if (!res.complete) throw new MemberUnavailableError(`the snapshot stream from ${host}:${port} was cut after ${tally.fileBytes} bytes (the gateway or the storage node failed; see its log)`);
    const summary = tally.finish(o.file, started);
    await fh.sync();
    await fh.close();
    await fsp.rename(part, o.file);
    return summary;
  } catch (e) {
    await fh.close().catch(() => undefined);
    await fsp.rm(part, { force: true });
    if (e instanceof BackupTruncatedError) throw new MemberUnavailableError(`the snapshot stream from ${host}:${port} ended early: ${e.message}`);
    throw asUsage(o.file, e);
  }
}

/** Where `restore` writes: every storage node's and consensus replica's data directory. */
export interface RestoreTarget {
  dataDir: string;
  /** The fresh cluster's storage nodes and voters: the Raft configuration written. */
  storage: string[];
  replicas: string[];
  /** Write only these members' directories (one volume per process, e.g. Kubernetes); default all. */
  only?: string[];
  /** The new cluster's lease bounds (consensus.leasesMax / ttlKeysMax); default the config defaults. */
  leaseBounds?: LeaseBounds;
}

/** `consensus.leasesMax` / `ttlKeysMax` defaults (libs/config schema.ts), used without --config. */
const LEASE_BOUNDS_DEFAULT: LeaseBounds = { leasesMax: 100_000, ttlKeysMax: 1_000_000 };

/** Whether `dir` is missing or empty. */
async function isFresh(dir: string): Promise<boolean> {
  try {
    return (await fsp.readdir(dir)).length === 0;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw e;
  }
}

/**
 * A consensus replica's Raft state as if its log had been compacted at `index` (Raft §7): its
 * snapshot file with the fresh cluster's configuration, its lease table as of `index` (rebuilt
 * from the backup, `ReservedRecordScan`) and its hard state (term, commit = index, no vote), written by
 * the same `@cairn/log` classes the replica reads them with. Its log then starts at `index + 1`,
 * so new writes get revisions after the restored one.
 */
async function writeReplicaState(dir: string, index: number, term: number, conf: { voters: string[]; storage: string[] }, leases: SavedLeaseState): Promise<void> {
  await fsp.mkdir(dir, { recursive: true });
  await new SnapshotFile(dir).write({ index, term, conf: { voters: conf.voters, learners: [], storage: conf.storage } });
  new LeaseStateFile(dir).write(leases);
  new HardStateFile(dir).write({ term, vote: null, commit: index });
}

/**
 * `cairn snapshot restore FILE`: checks the whole backup while installing it into every storage
 * node's engine directory (`<dataDir>/<id>/engine`, SnapshotInstaller: staged, committed only once
 * the END record is read) and reading its reserved keyspace from the engine files as they pass
 * (`ReservedRecordScan`: no second open of the restored engine), then writes each consensus
 * replica's Raft snapshot at the backup's revision and its lease table rebuilt from those records.
 * Offline, into a fresh cluster: every target directory must be missing or empty.
 * @throws UsageError (exit 2): a target directory is not empty, the file is corrupt or truncated,
 *   or it holds more leases than `leaseBounds.leasesMax` (nothing is left behind).
 */
export async function restoreSnapshot(file: string, t: RestoreTarget): Promise<SnapshotSummary> {
  const started = Date.now();
  if (!t.storage.length || !t.replicas.length) throw new UsageError('restore needs at least one storage node and one consensus replica (from --config, --storage, --replicas)');
  const unknown = (t.only ?? []).filter((id) => !t.storage.includes(id) && !t.replicas.includes(id));
  if (unknown.length) throw new UsageError(`--only ${unknown.join(',')}: not among the storage nodes (${t.storage.join(',')}) or replicas (${t.replicas.join(',')})`);
  const mine = (id: string) => !t.only || t.only.includes(id);
  const storage = t.storage.filter(mine);
  const replicas = t.replicas.filter(mine);
  const dirs = [...storage, ...replicas].map((id) => join(t.dataDir, id));
  for (const d of dirs) if (!(await isFresh(d))) throw new UsageError(`${d} is not empty: restore writes a fresh cluster's data directories only (stop the cluster and move them away first)`);
  // Directories that exist (empty) may be mount points: on failure only their contents go.
  const existed = new Set((await Promise.all(dirs.map(async (d) => ((await fsp.stat(d).catch(() => null)) ? d : null)))).filter((d): d is string => d !== null));
  const installers: SnapshotInstaller[] = [];
  const tally = new Tally();
  const engineDirs = storage.map((id) => join(t.dataDir, id, 'engine'));
  // The replicas' lease table is read from the engine files as they pass (no store to open after).
  const scan = replicas.length ? new ReservedRecordScan() : null;
  try {
    for await (const data of createReadStream(file, { highWaterMark: READ_BYTES }) as AsyncIterable<Buffer>) {
      await tally.push(data, async (e) => {
        if (e.kind === 'manifest') for (const dir of engineDirs) installers.push(await SnapshotInstaller.begin(dir, e.bytes, { clock: realClock }));
        if (e.kind === 'chunk') {
          scan?.push(e.message);
          for (const i of installers) await i.write(e.message);
        }
      });
    }
    const summary = tally.finish(file, started);
    scan?.finish();
    // Before any install is committed: a refusal (too many leases) leaves nothing behind.
    const leases = scan?.leaseState(summary.revision, t.leaseBounds ?? LEASE_BOUNDS_DEFAULT);
    for (const i of installers) await i.finish();
    if (leases) {
      for (const id of replicas) await writeReplicaState(join(t.dataDir, id), summary.revision, Math.max(1, summary.term), { voters: t.replicas, storage: t.storage }, leases);
      summary.leases = leases.leases.length;
      summary.keyExpiries = leases.keys.length;
    }
    return { ...summary, ms: Date.now() - started };
  } catch (e) {
    for (const i of installers) await i.abort().catch(() => undefined);
    for (const d of dirs) {
      if (!existed.has(d)) await fsp.rm(d, { recursive: true, force: true });
      else for (const name of await fsp.readdir(d).catch(() => [])) await fsp.rm(join(d, name), { recursive: true, force: true });
    }
    throw asUsage(file, e);
  }
}

function formatSummary(verb: string, s: SnapshotSummary): string {
  const mib = (s.fileBytes / 1024 / 1024).toFixed(1);
  return `${verb} ${s.file}: revision ${s.revision} (term ${s.term}) of storage node ${s.node}; ${s.files} engine files, ${s.bytes} bytes in ${s.chunks} chunks; file ${mib} MiB; ${s.ms} ms`;
}

/** `cairn snapshot save | restore` (docs/operations.md "Backup and restore", docs/cli.md). */
export function snapshotCommand(deps: SnapshotDeps): Command {
  const json = (cmd: Command) => cmd.optsWithGlobals<{ json?: boolean }>().json === true;
  const list = (v: string) => v.split(',').map((x) => x.trim()).filter(Boolean);
  const snapshot = new Command('snapshot').description('back up a storage node at one revision to a file, and restore a file into a fresh cluster');
  snapshot
    .command('save')
    .description("stream a consistent snapshot of one storage node (at ≥ the cluster's read index) through a gateway into FILE (checked, written to FILE.part, renamed when whole)")
    .argument('<file>')
    .addOption(new Option('--http <host:port>', 'gateway HTTP API (default: first gateway of --config with an httpPort, else $CAIRN_HTTP, else 127.0.0.1:8380)'))
    .option('--node <id>', 'storage node to snapshot (default: the live one with the highest applied index)')
    .addOption(new Option('--idle-timeout-ms <ms>', 'give up when the stream stalls this long').default(60_000).argParser(Number))
    .action(async (file: string, o: { node?: string; idleTimeoutMs: number }, cmd: Command) => {
      const g = cmd.optsWithGlobals<{ http?: string; config?: string }>();
      const s = await saveSnapshot({ file, http: await resolveHttp(g, deps.env), node: o.node, idleTimeoutMs: o.idleTimeoutMs, tls: deps.tls?.(cmd), credentials: deps.credentials?.(cmd) });
      deps.out(json(cmd) ? JSON.stringify(s) : formatSummary('saved', s));
    });
  snapshot
    .command('restore')
    .description("offline: check FILE and write it into a fresh cluster's data directories (every storage node's engine, every consensus replica's Raft snapshot at its revision); start the cluster afterwards")
    .argument('<file>')
    .option('--data-dir <dir>', "the cluster's dataDir (default: --config's)")
    .option('--storage <ids>', "storage node ids, comma-separated (default: --config's storage.nodes)", list)
    .option('--replicas <ids>', "consensus replica ids, comma-separated (default: --config's consensus.replicas)", list)
    .option('--only <ids>', 'write only these members\' directories (each process on its own volume); the configuration still names them all', list)
    .action(async (file: string, o: { dataDir?: string; storage?: string[]; replicas?: string[]; only?: string[] }, cmd: Command) => {
      const { config } = cmd.optsWithGlobals<{ config?: string }>();
      const c = config ? await loadConfigFile(config) : null;
      const dataDir = o.dataDir ?? c?.dataDir;
      if (!dataDir) throw new UsageError('restore needs --config FILE or --data-dir DIR');
      const leaseBounds = c ? { leasesMax: c.consensus.leasesMax, ttlKeysMax: c.consensus.ttlKeysMax } : undefined;
      const target = { dataDir, storage: o.storage ?? c?.storage.nodes.map((n) => n.id) ?? [], replicas: o.replicas ?? c?.consensus.replicas.map((r) => r.id) ?? [], only: o.only, leaseBounds };
      const s = await restoreSnapshot(file, target);
      deps.out(json(cmd) ? JSON.stringify({ ...s, dataDir, storage: target.storage, replicas: target.replicas }) : `${formatSummary('restored', s)}\ninto ${dataDir}: storage ${target.storage.join(', ')}; replicas ${target.replicas.join(', ')} (Raft log starts at ${s.revision + 1})${s.leases === undefined ? '' : `; lease table: ${s.leases} leases, ${s.keyExpiries} key expiries`}`);
    });
  return snapshot;
}
