import { parseClusterConfig, type ClusterConfig } from '@cairn/config';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import type { IStatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
import type { IService } from 'kubernetes-models/v1/Service';
import { parseAllDocuments } from 'yaml';
import { validateObject } from './models';
import { readYamlDocuments, render, type KubeObject, type Rendering } from './render';
import { typecheckObjects } from './typecheck';

const DEPLOY = resolve(__dirname, '..');
const REPO = resolve(DEPLOY, '..');
const KUSTOMIZATIONS = ['base', 'overlays/dev', 'overlays/prod'];
const CONFIG_MAP = 'cairn-config';
const CONFIG_KEY = 'cairn.config.json';
const NATS_MAP = 'cairn-nats';
/** NATS reads `8MB` as 8 MiB; count it as 8·10^6 to keep a margin. */
const NATS_PAYLOAD_BYTES = 8_000_000;
/** Room for the envelope around the largest Append or proposal payload. */
const ENVELOPE_BYTES = 64 * 1024;

/** Each Cairn role: its StatefulSet, its app under apps/, its ids in the config. */
const ROLES = [
  { statefulSet: 'cairn-consensus', app: 'consensus', stateful: true, ids: (c: ClusterConfig) => c.consensus.replicas.map((m) => m.id) },
  { statefulSet: 'cairn-storage', app: 'storage-node', stateful: true, ids: (c: ClusterConfig) => c.storage.nodes.map((m) => m.id) },
  { statefulSet: 'cairn-gateway', app: 'gateway', stateful: false, ids: (c: ClusterConfig) => c.gateway.gateways.map((m) => m.id) },
];

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' || e.name === 'dist' ? [] : yamlFiles(path);
    return /\.ya?ml$/.test(e.name) ? [path] : [];
  });
}

function find<T>(r: Rendering, kind: string, name: string): T {
  const found = r.objects.filter((o) => o.kind === kind && o.metadata.name === name);
  if (found.length !== 1) throw new Error(`expected one ${kind} ${name}, found ${found.length}`);
  return found[0] as unknown as T;
}

function clusterConfig(r: Rendering, source: string): ClusterConfig {
  const data = find<IConfigMap>(r, 'ConfigMap', CONFIG_MAP).data ?? {};
  expect(Object.keys(data)).toEqual([CONFIG_KEY]);
  return parseClusterConfig(JSON.parse(data[CONFIG_KEY]), source);
}

function podSpec(r: Rendering, statefulSet: string): IPodSpec {
  return find<IStatefulSet>(r, 'StatefulSet', statefulSet).spec!.template.spec!;
}

function argAfter(c: IContainer, flag: string): string | undefined {
  const args = c.args ?? [];
  const at = args.indexOf(flag);
  return at < 0 ? undefined : args[at + 1];
}

function kubectlAvailable(): boolean {
  return spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8', timeout: 30_000 }).status === 0;
}

describe('YAML under deploy/', () => {
  const files = yamlFiles(DEPLOY);

  it('finds the manifests', () => {
    expect(files.map((f) => relative(DEPLOY, f))).toEqual(expect.arrayContaining(['base/kustomization.yaml', 'overlays/dev/kustomization.yaml', 'overlays/prod/kustomization.yaml']));
  });

  it.each(files.map((f) => [relative(DEPLOY, f), f]))('%s parses without errors, warnings or duplicate keys', (_name, file) => {
    expect(readYamlDocuments(file).length).toBeGreaterThan(0);
  });

  it('is read by a kustomization, every file of it (nothing lies around unrendered and untested)', () => {
    const read = new Set(KUSTOMIZATIONS.flatMap((k) => [...render(join(DEPLOY, k)).files]));
    expect(files.filter((f) => !read.has(f)).map((f) => relative(DEPLOY, f))).toEqual([]);
  });
});

describe.each(KUSTOMIZATIONS)('kustomization %s', (dir) => {
  let cached: Rendering | undefined;
  const rendered = (): Rendering => (cached ??= render(join(DEPLOY, dir)));
  const config = (): ClusterConfig => clusterConfig(rendered(), `deploy/${dir}/${CONFIG_KEY}`);

  it('renders offline and every object validates against its kind in kubernetes-models', () => {
    for (const o of rendered().objects) {
      expect(() => validateObject(o)).not.toThrow();
    }
  });

  it('every object type-checks against its kubernetes-models interface (no unknown or misspelled fields)', () => {
    expect(typecheckObjects(rendered().objects)).toEqual([]);
  });

  it('holds a cluster config that parseClusterConfig from @cairn/config accepts', () => {
    expect(() => config()).not.toThrow();
    expect(config().dataDir).toBe('/var/lib/cairn');
  });

  it.each(ROLES)('StatefulSet $statefulSet: pod names (name-ordinal) are exactly the config ids', ({ statefulSet, ids }) => {
    const replicas = find<IStatefulSet>(rendered(), 'StatefulSet', statefulSet).spec!.replicas ?? 1;
    expect(Array.from({ length: replicas }, (_, i) => `${statefulSet}-${i}`)).toEqual(ids(config()));
  });

  it('has an odd number of consensus replicas (an even one adds no fault tolerance)', () => {
    expect(config().consensus.replicas.length % 2).toBe(1);
  });

  it.each(ROLES)('$statefulSet runs apps/$app with the mounted config and --id from the pod name', ({ statefulSet, app }) => {
    const spec = podSpec(rendered(), statefulSet);
    expect(spec.containers).toHaveLength(1);
    const [c] = spec.containers;
    expect(c.args?.[0]).toBe(`apps/${app}/dist/main.js`);
    const pkg = JSON.parse(readFileSync(join(REPO, 'apps', app, 'package.json'), 'utf8')) as { main: string };
    expect(join('apps', app, pkg.main)).toBe(join(c.args![0]));

    const configVolume = spec.volumes?.find((v) => v.configMap?.name === CONFIG_MAP);
    const mount = c.volumeMounts?.find((m) => m.name === configVolume?.name);
    expect(mount).toBeDefined();
    const configPath = `${mount!.mountPath}/${CONFIG_KEY}`;
    expect(argAfter(c, '--config')).toBe(configPath);
    expect(c.env).toContainEqual({ name: 'CAIRN_CONFIG', value: configPath });
    expect(argAfter(c, '--id')).toBe('$(CAIRN_ID)');
    expect(c.env).toContainEqual({ name: 'CAIRN_ID', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } });
    expect(spec.terminationGracePeriodSeconds).toBe(30);
  });

  it.each(ROLES)('$statefulSet keeps dataDir on its own volume when stateful', ({ statefulSet, stateful }) => {
    const sts = find<IStatefulSet>(rendered(), 'StatefulSet', statefulSet);
    const claims = sts.spec!.volumeClaimTemplates ?? [];
    const dataMount = sts.spec!.template.spec!.containers[0].volumeMounts?.find((m) => m.mountPath === config().dataDir);
    if (stateful) {
      expect(claims.map((t) => t.metadata?.name)).toEqual([dataMount?.name]);
      expect(claims[0].spec?.resources?.requests?.storage).toBeDefined();
      expect(sts.spec!.persistentVolumeClaimRetentionPolicy).toEqual({ whenDeleted: 'Retain', whenScaled: 'Retain' });
    } else {
      expect(claims).toEqual([]);
      expect(dataMount).toBeUndefined();
    }
  });

  it('gateways listen on a non-loopback host, every door (TLV, RESP, HTTP) at the ports the Services target', () => {
    const [c] = podSpec(rendered(), 'cairn-gateway').containers;
    for (const g of config().gateway.gateways) {
      expect(['127.0.0.1', 'localhost', '::1']).not.toContain(g.host);
      expect(c.ports).toEqual([
        { name: 'cairn', containerPort: g.port },
        { name: 'resp', containerPort: g.respPort },
        { name: 'http', containerPort: g.httpPort },
      ]);
    }
    for (const name of ['cairn-gateway', 'cairn-gateway-headless']) {
      const ports = find<IService>(rendered(), 'Service', name).spec!.ports!;
      expect(ports.map((p) => p.targetPort)).toEqual(['cairn', 'resp', 'http']);
    }
  });

  it.each([...ROLES.map((r) => r.statefulSet), 'cairn-nats'])('%s probes readiness on /readyz (NATS: /healthz) and liveness on /healthz over HTTP, on a declared port', (statefulSet) => {
    const [c] = podSpec(rendered(), statefulSet).containers;
    const names = (c.ports ?? []).map((p) => p.name);
    const ready = statefulSet === 'cairn-nats' ? '/healthz' : '/readyz';
    for (const [probe, path] of [[c.startupProbe, '/healthz'], [c.readinessProbe, ready], [c.livenessProbe, '/healthz']] as const) {
      expect([statefulSet, probe?.httpGet?.path]).toEqual([statefulSet, path]);
      expect(names).toContain(probe?.httpGet?.port);
    }
  });

  it.each([
    ['cairn-consensus', (c: ClusterConfig) => [c.consensus.metricsPort, ...c.consensus.replicas.map((r) => r.metricsPort)]],
    ['cairn-storage', (c: ClusterConfig) => [c.storage.metricsPort, ...c.storage.nodes.map((n) => n.metricsPort)]],
  ] as const)('%s: the metrics port the config opens is the container port the probes and the headless Service use', (statefulSet, ports) => {
    const [c] = podSpec(rendered(), statefulSet).containers;
    const [rolePort, ...memberPorts] = ports(config());
    expect(memberPorts.filter((p) => p !== undefined)).toEqual([]);
    expect(c.ports).toEqual([{ name: 'metrics', containerPort: rolePort }]);
    const svc = find<IService>(rendered(), 'Service', `${statefulSet}-headless`).spec!;
    expect(svc.ports).toEqual([{ name: 'metrics', port: rolePort, targetPort: 'metrics' }]);
    expect(svc.publishNotReadyAddresses).toBe(true);
  });

  it('runs NATS as a cluster whose routes name every pod of its StatefulSet', () => {
    const sts = find<IStatefulSet>(rendered(), 'StatefulSet', 'cairn-nats');
    const conf = (find<IConfigMap>(rendered(), 'ConfigMap', NATS_MAP).data ?? {})['nats.conf'] ?? '';
    const routes = [...conf.matchAll(/nats:\/\/([a-z0-9-]+)\.([a-z0-9-]+):(\d+)/g)];
    expect(sts.spec!.replicas).toBe(3);
    expect(routes.map((m) => m[1])).toEqual(Array.from({ length: sts.spec!.replicas! }, (_, i) => `cairn-nats-${i}`));
    expect(new Set(routes.map((m) => m[2]))).toEqual(new Set([sts.spec!.serviceName]));
    expect(sts.spec!.template.spec!.containers[0].ports).toContainEqual({ name: 'cluster', containerPort: Number(routes[0][3]) });
    expect(find<IPodDisruptionBudget>(rendered(), 'PodDisruptionBudget', 'cairn-nats').spec!.maxUnavailable).toBe(1);
  });

  it('points the config at the NATS Service, which runs core NATS with max_payload 8MB above the largest message', () => {
    const ports = find<IService>(rendered(), 'Service', 'cairn-nats').spec!.ports!.map((p) => p.port);
    for (const url of config().nats.servers) {
      const u = new URL(url);
      expect(u.protocol).toBe('nats:');
      expect(u.hostname).toBe('cairn-nats');
      expect(ports).toContain(Number(u.port));
    }
    const conf = (find<IConfigMap>(rendered(), 'ConfigMap', NATS_MAP).data ?? {})['nats.conf'] ?? '';
    const settings = conf.split('\n').filter((l) => !/^\s*(#|$)/.test(l));
    expect(settings).toContainEqual(expect.stringMatching(/^max_payload:\s*8MB$/));
    expect(settings.filter((l) => /jetstream/i.test(l))).toEqual([]);
    const c = config();
    expect(c.consensus.msgBytesMax + ENVELOPE_BYTES).toBeLessThanOrEqual(NATS_PAYLOAD_BYTES);
    expect(c.gateway.keyBytesMax + c.gateway.valueBytesMax + ENVELOPE_BYTES).toBeLessThanOrEqual(NATS_PAYLOAD_BYTES);
  });

  it('runs every pod as non-root with bounded resources and a read-only root filesystem', () => {
    const pods = rendered()
      .objects.filter((o) => o.kind === 'StatefulSet' || o.kind === 'Deployment')
      .map((o) => [o.metadata.name, (o as unknown as IStatefulSet).spec!.template.spec!] as const);
    expect(pods.length).toBe(4);
    for (const [name, spec] of pods) {
      expect([name, spec.securityContext?.runAsNonRoot]).toEqual([name, true]);
      for (const c of spec.containers) {
        expect([name, c.securityContext]).toMatchObject([name, { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } }]);
        for (const bound of ['requests', 'limits'] as const) {
          expect([name, bound, Object.keys(c.resources?.[bound] ?? {}).sort()]).toEqual([name, bound, ['cpu', 'memory']]);
        }
      }
    }
  });

  it('pins every image to an exact version (x.y.z) or a digest, never latest or a floating tag', () => {
    const images = rendered()
      .objects.filter((o) => o.kind === 'StatefulSet' || o.kind === 'Deployment')
      .flatMap((o) => (o as unknown as IStatefulSet).spec!.template.spec!.containers.map((c) => c.image));
    expect(images.length).toBeGreaterThan(0);
    for (const image of images) expect(image).toMatch(/^[^:@]+(:[^:@]*\d+\.\d+\.\d+[^:@]*)?(@sha256:[0-9a-f]{64})?$/);
    for (const image of images) expect(image).toMatch(/(:[^:@]*\d+\.\d+\.\d+|@sha256:)/);
  });

  it.each(ROLES)('$statefulSet has a PodDisruptionBudget and prefers spreading across nodes', ({ statefulSet }) => {
    const sts = find<IStatefulSet>(rendered(), 'StatefulSet', statefulSet);
    const labels = sts.spec!.template.metadata!.labels;
    expect(sts.spec!.selector.matchLabels).toEqual(labels);
    const pdb = find<IPodDisruptionBudget>(rendered(), 'PodDisruptionBudget', statefulSet);
    expect(pdb.spec!.selector!.matchLabels).toEqual(labels);
    expect(pdb.spec!.maxUnavailable).toBe(1);
    const preferred = sts.spec!.template.spec!.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? [];
    expect(preferred).toContainEqual(
      expect.objectContaining({ podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: labels } } }),
    );
  });

  // CI machines may lack kubectl: there the offline renderer stands alone; here it must agree
  // with real kustomize (generated ConfigMap names aside: kustomize appends a content hash).
  (kubectlAvailable() ? it : it.skip)('renders the same objects as `kubectl kustomize`', () => {
    const out = spawnSync('kubectl', ['kustomize', join(DEPLOY, dir)], { encoding: 'utf8', timeout: 60_000, maxBuffer: 16 << 20 });
    expect(out.stderr).toBe('');
    expect(out.status).toBe(0);
    const mine = rendered().objects;
    const generated = mine.filter((o) => o.kind === 'ConfigMap').map((o) => o.metadata.name);
    const unhash = (text: string): string => generated.reduce((t, name) => t.replace(new RegExp(`"${name}-[a-z0-9]{10}"`, 'g'), `"${name}"`), text);
    const theirs = parseAllDocuments(out.stdout).map((d) => JSON.parse(unhash(JSON.stringify(d.toJS()))) as KubeObject);
    const byKey = (objects: KubeObject[]): Record<string, KubeObject> => Object.fromEntries(objects.map((o) => [`${o.kind}/${o.metadata.name}`, o]));
    expect(byKey(mine)).toEqual(byKey(theirs));
  });
});
