import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { DeployError, type KubeObject } from './kustomize';

/**
 * The kinds Cairn's manifests may use, keyed `apiVersion/kind`, with the kubernetes-models class
 * (Kubernetes OpenAPI schema) that validates them and the module declaring its interface.
 * A new kind in deploy/ must be added here.
 */
export const MODELS = {
  'v1/ConfigMap': { model: ConfigMap, module: 'kubernetes-models/v1/ConfigMap', iface: 'IConfigMap' },
  'v1/Namespace': { model: Namespace, module: 'kubernetes-models/v1/Namespace', iface: 'INamespace' },
  'v1/Service': { model: Service, module: 'kubernetes-models/v1/Service', iface: 'IService' },
  'v1/ServiceAccount': { model: ServiceAccount, module: 'kubernetes-models/v1/ServiceAccount', iface: 'IServiceAccount' },
  'rbac.authorization.k8s.io/v1/Role': { model: Role, module: 'kubernetes-models/rbac.authorization.k8s.io/v1/Role', iface: 'IRole' },
  'rbac.authorization.k8s.io/v1/RoleBinding': { model: RoleBinding, module: 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding', iface: 'IRoleBinding' },
  'apps/v1/Deployment': { model: Deployment, module: 'kubernetes-models/apps/v1/Deployment', iface: 'IDeployment' },
  'apps/v1/StatefulSet': { model: StatefulSet, module: 'kubernetes-models/apps/v1/StatefulSet', iface: 'IStatefulSet' },
  'networking.k8s.io/v1/NetworkPolicy': { model: NetworkPolicy, module: 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy', iface: 'INetworkPolicy' },
  'policy/v1/PodDisruptionBudget': {
    model: PodDisruptionBudget,
    module: 'kubernetes-models/policy/v1/PodDisruptionBudget',
    iface: 'IPodDisruptionBudget',
  },
} as const;

export type ModelKey = keyof typeof MODELS;

export function modelKey(o: Pick<KubeObject, 'apiVersion' | 'kind'>): string {
  return `${o.apiVersion}/${o.kind}`;
}

export class UnknownKindError extends DeployError {
  readonly code = 'KIND_UNKNOWN';
  constructor(key: string) {
    super(`${key} is not in deploy/src/models.ts MODELS`);
  }
}

/**
 * Validates `o` against its kind's OpenAPI schema (types, required fields, enums, formats).
 * The schema does not reject unknown fields: see typecheckObjects in manifests.spec.ts for that.
 * @throws UnknownKindError for a kind outside MODELS, or the model's validation error.
 */
export function validateObject(o: KubeObject): void {
  const key = modelKey(o);
  if (!(key in MODELS)) throw new UnknownKindError(key);
  // Each model's constructor takes its own interface; the schema check is what verifies `o`.
  const { model } = MODELS[key as ModelKey] as { model: new (data: unknown) => { validate(): void } };
  new model(o).validate();
}
