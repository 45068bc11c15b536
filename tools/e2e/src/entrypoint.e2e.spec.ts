import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { BUS_ROLES, createNkeyUser } from '@cairn/messaging';
import { makeTestPki, opensslAvailable, type TestCert } from '@cairn/messaging/testing';
import { findKubectl, freePorts, httpGet, mapHostPorts, objectNamed, podOf, readLog, renderOverlay, until200, type FileRewrite, type LocalPod, type PodWorld, type RenderedObject } from './entrypoint-pods';

/**
 * The entrypoint test (issue 15; docs/deploy.md "The entrypoint test"): no Kubernetes cluster runs
 * here, so the dev overlay is rendered with `kubectl kustomize` and its pods are started as local
 * processes exactly as the manifests say (command, args, env, mounted ConfigMaps and Secrets, lifecycle hooks;
 * host names and ports mapped to 127.0.0.1, entrypoint-pods.ts): NATS as its 3-server cluster,
 * 3 consensus replicas, 1 storage node, 1 gateway. Their probes must answer over HTTP; scaling the
 * consensus StatefulSet up (a 4th pod, its postStart hook) must make a voter of it, and scaling it
 * down (its preStop hook, then SIGTERM) must remove it and leave a healthy cluster. The hooks read
 * the StatefulSet's replicas from a stand-in of the Kubernetes API.
 */
const OVERLAY = resolve(__dirname, '../../../deploy/overlays/dev');
const KUBECTL = findKubectl();
if (!KUBECTL) console.warn('entrypoint e2e: kubectl is not on the PATH (or $KUBECTL): SKIPPED. Install kubectl to run it.');

interface Members {
  voters: string[];
  learners: string[];
  storage: string[];
}

/** The stand-in Kubernetes API: GET .../namespaces/cairn/statefulsets/<name> → { spec: { replicas } }, with the pod's bearer token. */
function kubeApi(replicas: Map<string, number>, token: string): Server {
  return createServer((req, res) => {
    const m = /^\/apis\/apps\/v1\/namespaces\/cairn\/statefulsets\/([a-z0-9-]+)$/.exec(req.url ?? '');
    const n = m ? replicas.get(m[1]) : undefined;
    if (req.headers.authorization !== `Bearer ${token}`) res.writeHead(401).end('{}');
    else if (n === undefined) res.writeHead(404).end('{}');
    else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'StatefulSet', spec: { replicas: n } }));
  });
}

/** Rewrites the ConfigMap files for this host: each NATS server's own ports, the cluster config's ports, hosts and data dir. */
function fileRewrite(root: string, portsOf: Map<string, Map<number, number>>, world: PodWorld): FileRewrite {
  return (map, _key, text, pod) => {
    // Absolute mount paths inside the files (the bus's Secrets) → this pod's local copies.
    const podPath = (s: string) => s.replace(/\/etc\/(nats-tls|cairn-bus)\//g, (_all, dir: string) => `${join(world.root, 'pods', pod, 'etc', dir)}/`);
    if (map === 'cairn-nats') {
      const p = portsOf.get(pod)!;
      const conf = podPath(text)
        .replace(/^port:\s*4222$/m, `port: ${p.get(4222)}`)
        .replace(/^http_port:\s*8222$/m, `http_port: ${p.get(8222)}`)
        .replace(/^(\s+)port:\s*6222$/m, `$1port: ${p.get(6222)}`);
      return mapHostPorts(conf, world.hosts);
    }
    if (map !== 'cairn-config') return text;
    const c = JSON.parse(podPath(mapHostPorts(text, world.hosts))) as ConfigShape;
    c.dataDir = join(root, 'data');
    const local = (id: string, port: number | undefined) => portsOf.get(id)!.get(port!);
    for (const r of c.consensus.replicas) r.metricsPort = local(r.id, c.consensus.metricsPort);
    // A --join replica uses the role's port: the spare pod's.
    c.consensus.metricsPort = local(`cairn-consensus-${c.consensus.replicas.length}`, c.consensus.metricsPort);
    for (const n of c.storage.nodes) n.metricsPort = local(n.id, c.storage.metricsPort);
    c.storage.metricsPort = local(`cairn-storage-${c.storage.nodes.length}`, c.storage.metricsPort);
    for (const g of c.gateway.gateways) Object.assign(g, { host: '127.0.0.1', port: local(g.id, g.port), respPort: local(g.id, g.respPort), httpPort: local(g.id, g.httpPort) });
    return JSON.stringify(c, null, 2);
  };
}

/**
 * The bus's Secrets as docs/deploy.md "Bus credentials" creates them: one NKey per role (seed and
 * public key), a private CA with nats-server's certificate (here for 127.0.0.1, where the host names
 * are mapped) and the processes' client certificate.
 */
function busSecrets(root: string): Map<string, Record<string, string>> {
  const secrets = new Map<string, Record<string, string>>();
  const publicKeys: Record<string, string> = {};
  for (const r of BUS_ROLES) {
    const u = createNkeyUser();
    secrets.set(`cairn-bus-${r}`, { seed: u.seed });
    publicKeys[r] = u.publicKey;
  }
  secrets.set('cairn-bus-public-keys', publicKeys);
  const dir = join(root, 'pki');
  mkdirSync(dir, { recursive: true });
  const pki = makeTestPki(dir);
  const pem = (c: TestCert) => ({ 'ca.crt': pki.ca.toString(), 'tls.crt': c.cert.toString(), 'tls.key': c.key.toString() });
  secrets.set('cairn-nats-tls', pem(pki.issue('cairn-nats', 'server')));
  secrets.set('cairn-bus-tls', pem(pki.issue('cairn-bus', 'client')));
  return secrets;
}

interface ConfigShape {
  dataDir: string;
  consensus: { replicas: { id: string; metricsPort?: number }[]; metricsPort?: number };
  storage: { nodes: { id: string; metricsPort?: number }[]; metricsPort?: number };
  gateway: { gateways: { id: string; host: string; port: number; respPort?: number; httpPort?: number }[] };
}

/** Free local ports for every container port of every pod (plus one spare consensus and storage pod), and the host names that reach them. */
async function assignPorts(objects: RenderedObject[]): Promise<{ portsOf: Map<string, Map<number, number>>; hosts: Map<string, Map<number, number>> }> {
  const wanted: [string, number[]][] = [];
  for (const [sts, extra] of [['cairn-nats', 0], ['cairn-consensus', 1], ['cairn-storage', 1], ['cairn-gateway', 0]] as const) {
    const spec = objectNamed(objects, 'StatefulSet', sts).spec!;
    const ports = spec.template!.spec.containers[0].ports!.map((p) => p.containerPort);
    for (let i = 0; i < spec.replicas! + extra; i++) wanted.push([`${sts}-${i}`, ports]);
  }
  const free = await freePorts(wanted.reduce((n, [, p]) => n + p.length, 0));
  const portsOf = new Map(wanted.map(([pod, ports]) => [pod, new Map(ports.map((p) => [p, free.shift()!]))]));
  const hosts = new Map<string, Map<number, number>>();
  for (const [pod, ports] of portsOf) hosts.set(pod.startsWith('cairn-nats-') ? `${pod}.cairn-nats-headless` : pod, ports);
  // Services: one pod behind each is enough here.
  hosts.set('cairn-nats', portsOf.get('cairn-nats-0')!);
  hosts.set('cairn-gateway', portsOf.get('cairn-gateway-0')!);
  return { portsOf, hosts };
}

const HAVE_OPENSSL = opensslAvailable();
if (!HAVE_OPENSSL) console.warn('entrypoint e2e: openssl is not on the PATH (the bus Secrets\' CA is made with it): SKIPPED.');

(KUBECTL && HAVE_OPENSSL ? describe : describe.skip)('entrypoint: the dev overlay run as the manifests say (kubectl kustomize)', () => {
  const root = mkdtempSync(join(tmpdir(), 'cairn-entrypoint-'));
  const TOKEN = 'entrypoint-e2e-token';
  const replicas = new Map<string, number>();
  const pods = new Map<string, LocalPod>();
  let objects: RenderedObject[];
  let portsOf: Map<string, Map<number, number>>;
  let world: PodWorld;
  let rewrite: FileRewrite;
  let api: Server;
  let http: string;

  const withLogs = async <T>(what: Promise<T>): Promise<T> => {
    try {
      return await what;
    } catch (e) {
      const logs = [...pods.keys()].map((p) => `--- ${p}\n${readLog(root, p)}`).join('\n');
      throw new Error(`${(e as Error).message}\n${logs}`);
    }
  };
  const members = async (): Promise<Members> => JSON.parse((await httpGet(`http://${http}/v1/cluster/members`)).text) as Members;
  const membersUntil = async (pred: (m: Members) => boolean, timeoutMs = 15_000): Promise<Members> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = await members().catch(() => null);
      if (m && pred(m)) return m;
      if (Date.now() > deadline) throw new Error(`members never matched; last ${JSON.stringify(m)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const startPod = (statefulSet: string, ordinal: number): LocalPod => {
    const pod = podOf(objects, statefulSet, ordinal, world, portsOf.get(`${statefulSet}-${ordinal}`)!, rewrite);
    pod.start();
    pods.set(pod.name, pod);
    return pod;
  };
  const cairnPods = () => [...pods.values()].filter((p) => !p.name.startsWith('cairn-nats-'));

  beforeAll(async () => {
    objects = renderOverlay(KUBECTL!, OVERLAY);
    const assigned = await assignPorts(objects);
    portsOf = assigned.portsOf;
    const sa = join(root, 'serviceaccount');
    mkdirSync(sa, { recursive: true });
    writeFileSync(join(sa, 'namespace'), 'cairn\n');
    writeFileSync(join(sa, 'token'), `${TOKEN}\n`);
    for (const s of ['cairn-consensus', 'cairn-storage', 'cairn-gateway', 'cairn-nats']) replicas.set(s, objectNamed(objects, 'StatefulSet', s).spec!.replicas!);
    api = kubeApi(replicas, TOKEN).listen(0, '127.0.0.1');
    await once(api, 'listening');
    world = { root, hosts: assigned.hosts, env: { CAIRN_KUBE_API: `http://127.0.0.1:${(api.address() as AddressInfo).port}`, CAIRN_KUBE_SA_DIR: sa }, secrets: busSecrets(root) };
    rewrite = fileRewrite(root, portsOf, world);
    http = `127.0.0.1:${portsOf.get('cairn-gateway-0')!.get(8380)}`;
  });

  afterAll(async () => {
    await Promise.all(cairnPods().map((p) => p.stop()));
    await Promise.all([...pods.values()].map((p) => p.stop()));
    api?.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('starts every pod from its rendered command, args and env; every probe answers over HTTP; initial members\' postStart hooks add nothing', async () => {
    for (let i = 0; i < replicas.get('cairn-nats')!; i++) startPod('cairn-nats', i);
    await withLogs(Promise.all([...pods.values()].map((p) => until200(p.probeUrl('readinessProbe')!))));
    const started: LocalPod[] = [];
    for (const sts of ['cairn-consensus', 'cairn-storage', 'cairn-gateway']) for (let i = 0; i < replicas.get(sts)!; i++) started.push(startPod(sts, i));
    // The kubelet runs postStart as the container starts: the initial members' hooks find them members (or no gateway yet).
    const hooks = await withLogs(Promise.all(started.map((p) => p.hook('postStart'))));
    for (const h of hooks) expect([h.code, h.output]).toEqual([0, expect.stringMatching(/already a member|initial member|^$/)]);
    for (const which of ['startupProbe', 'livenessProbe', 'readinessProbe'] as const) {
      await withLogs(Promise.all([...pods.values()].map((p) => until200(p.probeUrl(which)!))));
    }
    for (const p of cairnPods()) expect((await httpGet(p.probeUrl('readinessProbe')!.replace(/\/readyz$/, '/metrics'))).text).toMatch(/^# HELP /m);
    expect(await members()).toMatchObject({ voters: ['cairn-consensus-0', 'cairn-consensus-1', 'cairn-consensus-2'], storage: ['cairn-storage-0'] });
    expect((await fetch(`http://${http}/v1/kv/entrypoint`, { method: 'PUT', body: 'before' })).status).toBe(200);
  });

  it('a scale-up\'s new consensus pod starts with --join and its postStart hook makes a voter of it; a restart\'s preStop keeps the member', async () => {
    replicas.set('cairn-consensus', 4);
    const pod = startPod('cairn-consensus', 3);
    const hook = await withLogs(pod.hook('postStart'));
    expect([hook.code, hook.output]).toEqual([0, expect.stringContaining('"msg":"added"')]);
    // The hook's answer is the committed configuration; the gateway's list follows with the heartbeats.
    expect(hook.output).toMatch(/"voters":\[[^\]]*"cairn-consensus-3"/);
    await withLogs(membersUntil((m) => m.voters.includes('cairn-consensus-3') && m.learners.length === 0));
    await withLogs(until200(pod.probeUrl('readinessProbe')!));
    // cairn-consensus-0's preStop, as on a rolling update: ordinal 0 < 4 replicas, so it stays.
    const keep = await pods.get('cairn-consensus-0')!.hook('preStop');
    expect([keep.code, keep.output]).toEqual([0, expect.stringContaining('member kept')]);
    expect((await members()).voters).toHaveLength(4);
  });

  it('a scale-down\'s preStop hook removes the replica before SIGTERM; the cluster stays healthy', async () => {
    replicas.set('cairn-consensus', 3);
    const exit = await withLogs(pods.get('cairn-consensus-3')!.terminate());
    expect([exit.preStop.code, exit.preStop.output]).toEqual([0, expect.stringContaining('removed (scale-down)')]);
    // A graceful stop (Nest re-raises SIGTERM after its shutdown hooks ran), not the grace period's SIGKILL.
    expect(exit.signal === 'SIGTERM' || exit.code === 0).toBe(true);
    expect(readLog(root, 'cairn-consensus-3')).toContain('consensus stopped');
    pods.delete('cairn-consensus-3');
    const m = await membersUntil((x) => x.voters.length === 3);
    expect(m.voters).toEqual(['cairn-consensus-0', 'cairn-consensus-1', 'cairn-consensus-2']);
    await withLogs(Promise.all(cairnPods().map((p) => until200(p.probeUrl('readinessProbe')!))));
    expect((await fetch(`http://${http}/v1/kv/entrypoint`, { method: 'PUT', body: 'after' })).status).toBe(200);
    expect(await (await fetch(`http://${http}/v1/kv/entrypoint`)).text()).toBe('after');
  });

  it('a storage scale-up joins and is added by its postStart hook; its scale-down removes it by preStop', async () => {
    replicas.set('cairn-storage', 2);
    const pod = startPod('cairn-storage', 1);
    const hook = await withLogs(pod.hook('postStart'));
    expect([hook.code, hook.output]).toEqual([0, expect.stringContaining('"msg":"added"')]);
    await withLogs(until200(pod.probeUrl('readinessProbe')!));
    await withLogs(membersUntil((m) => m.storage.includes('cairn-storage-1')));
    replicas.set('cairn-storage', 1);
    const exit = await withLogs(pod.terminate());
    expect([exit.preStop.code, exit.preStop.output]).toEqual([0, expect.stringContaining('removed (scale-down)')]);
    pods.delete(pod.name);
    expect((await membersUntil((m) => m.storage.length === 1)).storage).toEqual(['cairn-storage-0']);
    expect(await (await fetch(`http://${http}/v1/kv/entrypoint`)).text()).toBe('after');
  });
});
