import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { findNatsServer, freePort } from '@cairn/messaging/testing';
import { parseAllDocuments } from 'yaml';

/**
 * Runs pods of a rendered Cairn overlay as local processes, the way the kubelet would run them,
 * for the entrypoint e2e (docs/deploy.md, "The entrypoint test"). What is taken from the rendered
 * YAML: each container's command (the image's ENTRYPOINT `node` when absent) and args with
 * `$(VAR)` expansion, its env (values, `metadata.name` field refs and Secret keys), its ConfigMap and Secret mounts (files
 * written under a temp root), its probes and its postStart/preStop exec hooks. What is mapped,
 * because every pod shares one host here: mount paths to directories of that root, Service and
 * pod host names to 127.0.0.1, container ports to free local ports (ports in the config files are
 * rewritten to match, and the consensus and storage pods get per-member metricsPort overrides).
 */

/** The slice of a rendered Kubernetes object this harness reads. */
export interface RenderedObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  data?: Record<string, string>;
  spec?: { replicas?: number; template?: { spec: PodSpec }; ports?: { name?: string; port: number; targetPort?: string | number }[] };
}
interface Probe {
  httpGet?: { path: string; port: string | number };
}
interface Container {
  name: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string }; secretKeyRef?: { name: string; key: string } } }[];
  ports?: { name?: string; containerPort: number }[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  lifecycle?: { postStart?: { exec?: { command: string[] } }; preStop?: { exec?: { command: string[] } } };
  volumeMounts?: { name: string; mountPath: string }[];
}
interface PodSpec {
  containers: Container[];
  volumes?: { name: string; configMap?: { name: string }; secret?: { secretName: string } }[];
}

/** `kubectl kustomize <dir>` as objects. @throws Error when kubectl fails. */
export function renderOverlay(kubectl: string, dir: string): RenderedObject[] {
  const r = spawnSync(kubectl, ['kustomize', dir], { encoding: 'utf8', timeout: 60_000, maxBuffer: 16 << 20 });
  if (r.status !== 0) throw new Error(`kubectl kustomize ${dir}: ${r.stderr}`);
  return parseAllDocuments(r.stdout).map((d) => d.toJS() as RenderedObject);
}

/** A working kubectl ($KUBECTL or on the PATH), or null. */
export function findKubectl(): string | null {
  const bin = process.env.KUBECTL || 'kubectl';
  return spawnSync(bin, ['version', '--client'], { encoding: 'utf8', timeout: 30_000 }).status === 0 ? bin : null;
}

export function objectNamed(objects: RenderedObject[], kind: string, name: string): RenderedObject {
  const o = objects.find((x) => x.kind === kind && (x.metadata.name === name || new RegExp(`^${name}-[a-z0-9]{10}$`).test(x.metadata.name)));
  if (!o) throw new Error(`no ${kind} ${name} in the rendering`);
  return o;
}

/** Exit of a process or hook. */
export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** One pod: its container process, its hooks, its local ports. */
export class LocalPod {
  child: ChildProcess | null = null;
  exited: Promise<Exit> | null = null;

  constructor(
    readonly name: string,
    private readonly container: Container,
    private readonly env: NodeJS.ProcessEnv,
    /** containerPort → local port. */
    readonly ports: Map<number, number>,
    private readonly mapArg: (s: string) => string,
    private readonly logDir: string,
    private readonly binaries: Record<string, string>,
  ) {}

  private argv(cmd: string[]): [string, string[]] {
    const expanded = cmd.map((a) => this.mapArg(a.replace(/\$\(([A-Z_][A-Z0-9_]*)\)/g, (all, v: string) => this.env[v] ?? all)));
    return [this.binaries[expanded[0]] ?? expanded[0], expanded.slice(1)];
  }

  /** Starts the container: command (default: the image's ENTRYPOINT, node) + args, env, cwd /app (the repo). */
  start(): void {
    const [bin, args] = this.argv([...(this.container.command ?? ['node']), ...(this.container.args ?? [])]);
    const log = openSync(join(this.logDir, `${this.name}.log`), 'a');
    const child = spawn(bin, args, { cwd: this.binaries.cwd, env: this.env, stdio: ['ignore', log, log] });
    this.child = child;
    this.exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
  }

  /** Runs a lifecycle hook's exec command with the container's env; resolves with its exit and output. */
  hook(which: 'postStart' | 'preStop'): Promise<Exit & { output: string }> {
    const cmd = this.container.lifecycle?.[which]?.exec?.command;
    if (!cmd) return Promise.resolve({ code: 0, signal: null, output: '' });
    const [bin, args] = this.argv(cmd);
    return new Promise((r, reject) => {
      const child = spawn(bin, args, { cwd: this.binaries.cwd, env: this.env, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.on('data', (d) => (output += d));
      child.stderr.on('data', (d) => (output += d));
      child.on('error', reject);
      child.on('exit', (code, signal) => r({ code, signal, output }));
    });
  }

  /** The local URL of a probe (`readinessProbe` …), or null when the container has none. */
  probeUrl(which: 'readinessProbe' | 'livenessProbe' | 'startupProbe'): string | null {
    const get = this.container[which]?.httpGet;
    if (!get) return null;
    const port = typeof get.port === 'number' ? get.port : this.container.ports?.find((p) => p.name === get.port)?.containerPort;
    const local = port === undefined ? undefined : this.ports.get(port);
    if (local === undefined) throw new Error(`${this.name}: probe port ${get.port} is not a declared container port`);
    return `http://127.0.0.1:${local}${get.path}`;
  }

  /** What the kubelet does on delete: preStop hook, then SIGTERM, SIGKILL after the grace period. */
  async terminate(graceMs = 30_000): Promise<Exit & { preStop: Exit & { output: string } }> {
    const preStop = await this.hook('preStop');
    return { ...(await this.stop(graceMs)), preStop };
  }

  /** SIGTERM without the preStop hook (test clean-up), SIGKILL after `graceMs`; resolves on exit. */
  async stop(graceMs = 10_000): Promise<Exit> {
    if (!this.child || !this.exited) return { code: null, signal: null };
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child?.kill('SIGKILL'), graceMs);
    const exit = await this.exited;
    clearTimeout(t);
    return exit;
  }
}

/** Local stand-ins for the paths and names the pods see. */
export interface PodWorld {
  root: string;
  /** Service or pod DNS name → local port map (containerPort/Service port → local port). */
  hosts: Map<string, Map<number, number>>;
  /** Extra env for every pod (the Kubernetes API stand-in). */
  env: NodeJS.ProcessEnv;
  /** The Secrets the manifests read (created by hand in a real namespace, docs/deploy.md): name → key → content. */
  secrets: Map<string, Record<string, string>>;
}

/** Maps a mounted ConfigMap file's text for pod `pod` (host names, ports, mount paths). */
export type FileRewrite = (map: string, key: string, text: string, pod: string) => string;

/** Writes every ConfigMap and Secret a pod mounts under `<root>/<pod>/<mountPath>` and returns the path mapper. */
function mountVolumes(objects: RenderedObject[], world: PodWorld, spec: PodSpec, c: Container, podRoot: string, rewrite: FileRewrite, pod: string): (s: string) => string {
  const mounts: [string, string][] = [];
  for (const m of c.volumeMounts ?? []) {
    const local = join(podRoot, m.mountPath);
    mkdirSync(local, { recursive: true });
    mounts.push([m.mountPath, local]);
    const volume = spec.volumes?.find((v) => v.name === m.name);
    if (volume?.secret) {
      const secret = world.secrets.get(volume.secret.secretName);
      if (!secret) throw new Error(`${pod}: Secret ${volume.secret.secretName} is not in the test's stand-ins`);
      for (const [key, text] of Object.entries(secret)) writeFileSync(join(local, key), text, { mode: 0o600 });
    }
    const cm = volume?.configMap;
    if (!cm) continue;
    const data = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === cm.name)?.data ?? {};
    for (const [key, text] of Object.entries(data)) writeFileSync(join(local, key), rewrite(cm.name.replace(/-[a-z0-9]{10}$/, ''), key, text, pod));
  }
  mounts.sort((a, b) => b[0].length - a[0].length);
  return (s) => {
    const hit = mounts.find(([from]) => s === from || s.startsWith(`${from}/`));
    return hit ? hit[1] + s.slice(hit[0].length) : s;
  };
}

/**
 * Builds pod `<statefulSet>-<ordinal>` from its StatefulSet's template, exactly as rendered;
 * `rewrite` maps the ConfigMap files it mounts (ports and host names), `ports` its container
 * ports to local ones.
 */
export function podOf(objects: RenderedObject[], statefulSet: string, ordinal: number, world: PodWorld, ports: Map<number, number>, rewrite: FileRewrite): LocalPod {
  const spec = objectNamed(objects, 'StatefulSet', statefulSet).spec!.template!.spec;
  const [c] = spec.containers;
  const name = `${statefulSet}-${ordinal}`;
  const podRoot = join(world.root, 'pods', name);
  const mapPath = mountVolumes(objects, world, spec, c, podRoot, rewrite, name);
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: podRoot, ...world.env };
  for (const e of c.env ?? []) {
    if (e.value !== undefined) env[e.name] = mapHostPorts(mapPath(e.value), world.hosts);
    else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.name') env[e.name] = name;
    else if (e.valueFrom?.secretKeyRef) env[e.name] = world.secrets.get(e.valueFrom.secretKeyRef.name)?.[e.valueFrom.secretKeyRef.key];
    else throw new Error(`${name}: env ${e.name}: only values, metadata.name and Secret keys are mapped`);
  }
  const binaries = { node: process.execPath, 'nats-server': findNatsServer(), cwd: resolve(__dirname, '../../..') };
  const logDir = join(world.root, 'logs');
  mkdirSync(logDir, { recursive: true });
  return new LocalPod(name, c, env, ports, mapPath, logDir, binaries);
}

/** `host:port` and `scheme://host:port` of a known Service or pod name → 127.0.0.1 and its local port. */
export function mapHostPorts(text: string, hosts: Map<string, Map<number, number>>): string {
  return text.replace(/\b([a-z0-9-]+(?:\.[a-z0-9-]+)?):(\d+)\b/g, (all, host: string, port: string) => {
    const local = hosts.get(host)?.get(Number(port));
    return local === undefined ? all : `127.0.0.1:${local}`;
  });
}

/** n free local ports. */
export async function freePorts(n: number): Promise<number[]> {
  const out: number[] = [];
  while (out.length < n) {
    const p = await freePort();
    if (!out.includes(p)) out.push(p);
  }
  return out;
}

/** GET `url`: status and body text; a refused or failed connection is status 0. */
export async function httpGet(url: string): Promise<{ status: number; text: string }> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(5_000) });
    return { status: r.status, text: await r.text() };
  } catch (e) {
    return { status: 0, text: String((e as Error).message) };
  }
}

/** Polls `url` (as a probe does, every `periodMs`) until it answers 200; throws with the last answer after `timeoutMs`. */
export async function until200(url: string, timeoutMs = 30_000, periodMs = 100): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await httpGet(url);
    if (r.status === 200) return r.text;
    if (Date.now() > deadline) throw new Error(`${url} never answered 200 within ${timeoutMs} ms; last: ${r.status} ${r.text}`);
    await new Promise((res) => setTimeout(res, periodMs));
  }
}

export function readLog(root: string, pod: string): string {
  try {
    return readFileSync(join(root, 'logs', `${pod}.log`), 'utf8').slice(-3000);
  } catch {
    return '';
  }
}
