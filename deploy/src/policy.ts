import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPodTemplateSpec } from 'kubernetes-models/v1/PodTemplateSpec';
import type { KubeObject } from './kustomize';

/** Kinds whose pods the policy covers (`spec.template` is a pod template). */
const WORKLOADS = new Set(['StatefulSet', 'Deployment', 'DaemonSet', 'ReplicaSet']);
/** Kinds that must have a PodDisruptionBudget selecting their pods. */
const NEEDS_PDB = new Set(['StatefulSet', 'Deployment']);

/**
 * An image reference pinned to one build: a tag holding an exact x.y.z version
 * (`nats:2.10.22-alpine`, `cairn:0.1.0`) and/or a sha256 digest. Not `latest`, not tagless, not a
 * floating tag (`2.10-alpine`, `24-bookworm-slim`).
 */
export function imagePinned(image: string): boolean {
  const m = /^(?<name>[^@]+?)(?::(?<tag>[\w][\w.-]{0,127}))?(?:@sha256:(?<digest>[0-9a-f]{64}))?$/.exec(image);
  if (!m?.groups) return false;
  const { tag, digest } = m.groups;
  if (digest) return true;
  return tag !== undefined && /(^|[^\d.])\d+\.\d+\.\d+([^\d.]|$)/.test(tag);
}

function containerProblems(c: IContainer, podNonRoot: boolean): string[] {
  const out: string[] = [];
  if (!c.readinessProbe) out.push('no readinessProbe');
  if (!c.livenessProbe) out.push('no livenessProbe');
  for (const bound of ['requests', 'limits'] as const) {
    for (const r of ['cpu', 'memory']) if (c.resources?.[bound]?.[r] === undefined) out.push(`no resources.${bound}.${r}`);
  }
  const sc = c.securityContext;
  if (!sc) out.push('no securityContext');
  else {
    if (sc.allowPrivilegeEscalation !== false) out.push('securityContext.allowPrivilegeEscalation is not false');
    if (sc.readOnlyRootFilesystem !== true) out.push('securityContext.readOnlyRootFilesystem is not true');
    if (!sc.capabilities?.drop?.includes('ALL')) out.push('securityContext.capabilities.drop lacks ALL');
    if (sc.privileged === true) out.push('securityContext.privileged');
  }
  if (!podNonRoot && sc?.runAsNonRoot !== true) out.push('runs as root (runAsNonRoot is not true on the pod or the container)');
  if (!c.image || !imagePinned(c.image)) out.push(`image ${String(c.image)} is not pinned to an exact version or digest`);
  return out;
}

function selects(pdb: IPodDisruptionBudget, labels: Record<string, string>): boolean {
  const want = pdb.spec?.selector?.matchLabels;
  if (!want || pdb.spec?.selector?.matchExpressions?.length) return false;
  return Object.entries(want).every(([k, v]) => labels[k] === v);
}

/**
 * Cairn's deployment policy over a rendered set of objects: every container of every workload has
 * a readiness and a liveness probe, CPU and memory requests and limits, a restrictive
 * securityContext (no privilege escalation, read-only root, ALL capabilities dropped, non-root)
 * and a pinned image; every StatefulSet and Deployment has a PodDisruptionBudget selecting its
 * pods. Returns one line per violation, `Kind/name container: problem`; empty when all hold.
 */
export function policyViolations(objects: readonly KubeObject[]): string[] {
  const pdbs = objects.filter((o): o is KubeObject & IPodDisruptionBudget => o.kind === 'PodDisruptionBudget');
  const out: string[] = [];
  for (const o of objects.filter((x) => WORKLOADS.has(x.kind))) {
    const where = `${o.kind}/${o.metadata.name}`;
    const template = (o.spec as { template?: IPodTemplateSpec } | undefined)?.template;
    const pod = template?.spec;
    if (!pod) {
      out.push(`${where}: no pod template`);
      continue;
    }
    const podNonRoot = pod.securityContext?.runAsNonRoot === true;
    const containers = [...pod.containers, ...(pod.initContainers ?? []).filter((c) => c.restartPolicy === 'Always')];
    for (const c of containers) out.push(...containerProblems(c, podNonRoot).map((p) => `${where} ${c.name}: ${p}`));
    // Plain init containers run to completion before the pod is ready: no probes, the rest applies.
    for (const c of (pod.initContainers ?? []).filter((x) => x.restartPolicy !== 'Always')) {
      out.push(...containerProblems({ ...c, readinessProbe: {}, livenessProbe: {} }, podNonRoot).map((p) => `${where} ${c.name}: ${p}`));
    }
    if (NEEDS_PDB.has(o.kind) && !pdbs.some((p) => selects(p, template.metadata?.labels ?? {}))) out.push(`${where}: no PodDisruptionBudget selects its pods`);
  }
  return out;
}
