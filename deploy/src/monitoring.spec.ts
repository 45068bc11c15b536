import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { findKubectl, kustomize, readYamlDocuments } from './kustomize';
import { validateObject } from './models';
import { cairnFamiliesInSources, familyExists, metricNames } from './promql';

const REPO = resolve(__dirname, '../..');
const MONITORING = join(REPO, 'deploy/monitoring');
/** Families scraped from the kubelet, not from Cairn: named in the disk alerts and panel. */
const EXTERNAL_FAMILIES = ['kubelet_volume_stats_available_bytes', 'kubelet_volume_stats_capacity_bytes'];

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  datasource?: { type: string; uid: string };
  targets?: { refId: string; expr: string; datasource?: unknown }[];
}

const rules = (): Rule[] => {
  const [doc] = readYamlDocuments(join(MONITORING, 'alerts.yaml')) as { groups: { name: string; rules: Rule[] }[] }[];
  return doc.groups.flatMap((g) => g.rules);
};
const dashboard = () => JSON.parse(readFileSync(join(MONITORING, 'dashboard.json'), 'utf8')) as { uid: string; title: string; schemaVersion: number; panels: Panel[]; templating: { list: { name: string }[] } };

/** Every metric family a Cairn process exports: the cairn_* ones registered in apps/ and libs/, and prom-client's defaults from a real registry. */
async function knownFamilies(): Promise<Set<string>> {
  const families = cairnFamiliesInSources(['apps', 'libs'].flatMap((d) => readdirSync(join(REPO, d)).map((p) => join(REPO, d, p, 'src'))).filter((p) => {
    try {
      return readdirSync(p).length > 0;
    } catch {
      return false;
    }
  }));
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  for (const m of await registry.getMetricsAsJSON()) families.add(m.name);
  registry.clear();
  for (const f of EXTERNAL_FAMILIES) families.add(f);
  return families;
}

/** GitHub's anchor of a markdown heading. */
const anchor = (heading: string): string => heading.trim().toLowerCase().replace(/[^\w\- ]/g, '').replace(/ /g, '-');

describe('promql metricNames', () => {
  it('finds the selected metrics, not functions, labels, strings, ranges or grouping labels', () => {
    expect(metricNames('histogram_quantile(0.99, sum by (le, pod) (rate(cairn_x_bucket{job="a", pod=~"c.*"}[5m]))) > 0.1 and max(up) == 1')).toEqual(['cairn_x_bucket', 'up']);
    expect(metricNames('count(a == 1) < floor(max(b{kind="voter"}) / 2) + 1 or absent(a)')).toEqual(['a', 'b']);
  });
  it('tells histogram series from unknown names', () => {
    const f = new Set(['cairn_x_seconds']);
    expect(familyExists('cairn_x_seconds_bucket', f)).toBe(true);
    expect(familyExists('cairn_x_seconds', f)).toBe(true);
    expect(familyExists('cairn_y_seconds_bucket', f)).toBe(false);
  });
});

describe('deploy/monitoring', () => {
  let families: Set<string>;
  beforeAll(async () => {
    families = await knownFamilies();
  });

  it('collects the families of every process (sanity: consensus, storage node, gateway, Node.js defaults)', () => {
    for (const f of ['cairn_consensus_term', 'cairn_consensus_log_persist_duration_seconds', 'cairn_storage_node_apply_lag_entries', 'cairn_gateway_requests_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_p99_seconds']) {
      expect(families).toContain(f);
    }
  });

  it('every alert rule is complete: expr, severity, summary, a runbook section of docs/operations.md', () => {
    const ops = readFileSync(join(REPO, 'docs/operations.md'), 'utf8');
    const anchors = new Set([...ops.matchAll(/^#+ (.+)$/gm)].map((m) => anchor(m[1])));
    const all = rules();
    expect(all.length).toBeGreaterThanOrEqual(5);
    for (const r of all) {
      expect([r.alert, typeof r.expr, ['critical', 'warning']]).toEqual([r.alert, 'string', expect.arrayContaining([r.labels?.severity])]);
      expect([r.alert, r.annotations?.summary]).toEqual([r.alert, expect.any(String)]);
      const runbook = /^docs\/operations\.md#(.+)$/.exec(r.annotations?.runbook ?? '');
      expect([r.alert, runbook?.[1] !== undefined && anchors.has(runbook[1])]).toEqual([r.alert, true]);
    }
    // The alerts issue 15 asks for.
    expect(all.map((r) => r.alert)).toEqual(expect.arrayContaining(['CairnNoLeader', 'CairnQuorumAtRisk', 'CairnReplicaApplyLag', 'CairnStorageApplyLag', 'CairnLogFsyncSlow', 'CairnVolumeFillingUp']));
  });

  it('every alert expression names only metric families that exist', () => {
    const missing = rules().flatMap((r) => metricNames(r.expr).filter((n) => !familyExists(n, families)).map((n) => `${r.alert}: ${n}`));
    expect(missing).toEqual([]);
  });

  it('the dashboard is a loadable Grafana JSON model: unique ids, panels within the 24-column grid, a Prometheus target per query', () => {
    const d = dashboard();
    expect([typeof d.uid, typeof d.title, typeof d.schemaVersion]).toEqual(['string', 'string', 'number']);
    expect(d.templating.list.map((v) => v.name)).toContain('DS_PROMETHEUS');
    const ids = d.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of d.panels) {
      expect([p.id, p.gridPos.x >= 0 && p.gridPos.w > 0 && p.gridPos.x + p.gridPos.w <= 24 && p.gridPos.h > 0]).toEqual([p.id, true]);
      if (p.type === 'row') continue;
      expect([p.title, p.datasource]).toEqual([p.title, { type: 'prometheus', uid: '${DS_PROMETHEUS}' }]);
      expect([p.title, (p.targets ?? []).length > 0]).toEqual([p.title, true]);
      const refIds = (p.targets ?? []).map((t) => t.refId);
      expect(new Set(refIds).size).toBe(refIds.length);
    }
  });

  it('every dashboard query names only metric families that exist', () => {
    const queries = dashboard().panels.flatMap((p) => (p.targets ?? []).map((t) => [p.title, t.expr] as const));
    expect(queries.length).toBeGreaterThan(20);
    const missing = queries.flatMap(([title, expr]) => metricNames(expr).filter((n) => !familyExists(n, families)).map((n) => `${title}: ${n}`));
    expect(missing).toEqual([]);
  });

  (findKubectl() ? it : it.skip)('renders (kubectl kustomize) to the two ConfigMaps, valid against the schema, holding the files as they are', () => {
    const objects = kustomize(findKubectl()!, MONITORING);
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual(['ConfigMap/cairn-grafana-dashboard', 'ConfigMap/cairn-prometheus-rules']);
    for (const o of objects) expect(() => validateObject(o)).not.toThrow();
    const data = (name: string) => (objects.find((o) => o.metadata.name === name)!.data ?? {}) as Record<string, string>;
    expect(data('cairn-prometheus-rules')['cairn.rules.yaml']).toBe(readFileSync(join(MONITORING, 'alerts.yaml'), 'utf8'));
    expect(JSON.parse(data('cairn-grafana-dashboard')['cairn.json'])).toEqual(dashboard());
  });
});
