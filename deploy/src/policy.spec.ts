import type { KubeObject } from './kustomize';
import { imagePinned, policyViolations } from './policy';

const labels = { app: 'x' };

/** A StatefulSet and its PDB that satisfy the policy; each test breaks one rule. */
function good(): KubeObject[] {
  return [
    {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name: 'x' },
      spec: {
        selector: { matchLabels: labels },
        serviceName: 'x',
        template: {
          metadata: { labels },
          spec: {
            securityContext: { runAsNonRoot: true },
            containers: [
              {
                name: 'c',
                image: 'cairn:0.1.0',
                readinessProbe: { httpGet: { path: '/readyz', port: 1 } },
                livenessProbe: { httpGet: { path: '/healthz', port: 1 } },
                resources: { requests: { cpu: '1', memory: '1Mi' }, limits: { cpu: '1', memory: '1Mi' } },
                securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
              },
            ],
          },
        },
      },
    },
    { apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: { name: 'x' }, spec: { maxUnavailable: 1, selector: { matchLabels: labels } } },
  ];
}

type Container = Record<string, unknown> & { securityContext: Record<string, unknown>; resources: { limits: Record<string, unknown> } };
function container(objects: KubeObject[]): Container {
  return (objects[0].spec as { template: { spec: { containers: Container[] } } }).template.spec.containers[0];
}

describe('policyViolations', () => {
  it('accepts a workload that follows every rule', () => {
    expect(policyViolations(good())).toEqual([]);
  });

  it.each([
    ['no readinessProbe', (o: KubeObject[]) => delete container(o).readinessProbe],
    ['no livenessProbe', (o: KubeObject[]) => delete container(o).livenessProbe],
    ['no resources.limits.memory', (o: KubeObject[]) => delete container(o).resources.limits.memory],
    ['no securityContext', (o: KubeObject[]) => delete (container(o) as Partial<Container>).securityContext],
    ['readOnlyRootFilesystem is not true', (o: KubeObject[]) => (container(o).securityContext.readOnlyRootFilesystem = false)],
    ['allowPrivilegeEscalation is not false', (o: KubeObject[]) => delete container(o).securityContext.allowPrivilegeEscalation],
    ['drop lacks ALL', (o: KubeObject[]) => (container(o).securityContext.capabilities = { drop: ['NET_RAW'] })],
    ['runs as root', (o: KubeObject[]) => ((o[0].spec as { template: { spec: Record<string, unknown> } }).template.spec.securityContext = {})],
    ['is not pinned', (o: KubeObject[]) => (container(o).image = 'nats:2.10-alpine')],
    ['no PodDisruptionBudget selects its pods', (o: KubeObject[]) => o.pop()],
    ['no PodDisruptionBudget selects its pods', (o: KubeObject[]) => ((o[1].spec as { selector: unknown }).selector = { matchLabels: { app: 'y' } })],
  ])('reports %s', (problem, breakIt) => {
    const objects = good();
    breakIt(objects);
    const found = policyViolations(objects);
    expect(found).toHaveLength(1);
    expect(found[0]).toContain(problem);
    expect(found[0]).toMatch(/^StatefulSet\/x/);
  });
});

describe('imagePinned', () => {
  it.each(['cairn:0.1.0', 'nats:2.10.22-alpine', 'node:24.21.0-bookworm-slim', `node@sha256:${'a'.repeat(64)}`, `reg.example:5000/cairn:1.2.3@sha256:${'0'.repeat(64)}`])('pins %s', (image) => {
    expect(imagePinned(image)).toBe(true);
  });
  it.each(['cairn', 'cairn:latest', 'nats:2.10-alpine', 'node:24-bookworm-slim', 'reg.example:5000/cairn', 'node@sha256:abc'])('does not pin %s', (image) => {
    expect(imagePinned(image)).toBe(false);
  });
});
