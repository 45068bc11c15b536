import { readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';

/**
 * An offline stand-in for `kubectl kustomize` covering the subset of kustomize that Cairn's
 * overlays use, so the manifest test runs where kubectl is absent (CI). Anything outside the
 * subset throws UnsupportedKustomizationError rather than being rendered wrongly; when kubectl is
 * present, manifests.spec.ts checks this renderer against the real one.
 *
 * Subset: `resources` (files and directories), `configMapGenerator` (`name`, `files` as plain
 * paths, `behavior` create|replace), `patches` (`path` only: strategic merge patches matched by
 * apiVersion, kind and name), `replicas` (`name`, `count`) and `images` (`name`, `newName`, `newTag`
 * on Deployment and StatefulSet containers). Generated ConfigMaps keep their
 * plain name (kustomize appends a content hash and rewrites the references).
 */

/** A Kubernetes object as parsed from YAML. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; [field: string]: unknown };
  [field: string]: unknown;
}

export interface Rendering {
  objects: KubeObject[];
  /** Absolute paths of every file the kustomizations read (kustomization.yaml files included). */
  files: Set<string>;
}

/** Base of this project's errors: `name` is the class name, `code` a stable string. */
export abstract class DeployError extends Error {
  abstract readonly code: string;
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** Thrown for kustomize features outside the subset this renderer implements. */
export class UnsupportedKustomizationError extends DeployError {
  readonly code = 'KUSTOMIZATION_UNSUPPORTED';
}

/** Thrown for YAML that does not parse cleanly or is not a list of Kubernetes objects. */
export class ManifestError extends DeployError {
  readonly code = 'MANIFEST_INVALID';
}

type Plain = Record<string, unknown>;

const KUSTOMIZATION_FIELDS = new Set(['apiVersion', 'kind', 'resources', 'configMapGenerator', 'patches', 'replicas', 'images']);
const SCALABLE_KINDS = new Set(['Deployment', 'StatefulSet', 'ReplicaSet']);

export function isPlainObject(value: unknown): value is Plain {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Parses every YAML document of a file (comments-only documents skipped).
 * @throws ManifestError on any YAML error or warning (duplicate keys included).
 */
export function readYamlDocuments(file: string): unknown[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'), { uniqueKeys: true });
  const out: unknown[] = [];
  for (const doc of docs) {
    const problems = [...doc.errors, ...doc.warnings];
    if (problems.length) throw new ManifestError(`${file}: ${problems.map((p) => p.message).join('; ')}`);
    if (doc.contents !== null) out.push(doc.toJS());
  }
  return out;
}

/** @throws ManifestError when `doc` lacks apiVersion, kind or metadata.name. */
export function asKubeObject(doc: unknown, source: string): KubeObject {
  const ok =
    isPlainObject(doc) &&
    typeof doc.apiVersion === 'string' &&
    typeof doc.kind === 'string' &&
    isPlainObject(doc.metadata) &&
    typeof doc.metadata.name === 'string';
  if (!ok) throw new ManifestError(`${source}: every document must have apiVersion, kind and metadata.name`);
  return doc as KubeObject;
}

/** Renders the kustomization in `dir` (a directory holding kustomization.yaml). */
export function render(dir: string): Rendering {
  const root = resolve(dir);
  const kfile = join(root, 'kustomization.yaml');
  const [k, ...more] = readYamlDocuments(kfile);
  if (!isPlainObject(k) || more.length) throw new ManifestError(`${kfile}: expected one kustomization document`);
  const unsupported = Object.keys(k).filter((f) => !KUSTOMIZATION_FIELDS.has(f));
  if (unsupported.length) {
    throw new UnsupportedKustomizationError(`${kfile}: ${unsupported.join(', ')} not supported by deploy/src/render.ts`);
  }
  const files = new Set([kfile]);
  const objects: KubeObject[] = [];

  for (const entry of list(k.resources, kfile, 'resources')) {
    if (typeof entry !== 'string') throw new ManifestError(`${kfile}: resources entries must be paths`);
    const path = join(root, entry);
    if (statSync(path).isDirectory()) {
      const sub = render(path);
      objects.push(...sub.objects);
      sub.files.forEach((f) => files.add(f));
    } else {
      files.add(path);
      objects.push(...readYamlDocuments(path).map((d) => asKubeObject(d, path)));
    }
  }

  for (const gen of list(k.configMapGenerator, kfile, 'configMapGenerator')) {
    const map = generateConfigMap(gen, root, kfile, files);
    const at = objects.findIndex((o) => o.kind === 'ConfigMap' && o.metadata.name === map.metadata.name);
    const behavior = isPlainObject(gen) ? (gen.behavior ?? 'create') : 'create';
    if (behavior === 'create' && at < 0) objects.push(map);
    else if (behavior === 'replace' && at >= 0) objects[at] = map;
    else throw new UnsupportedKustomizationError(`${kfile}: configMapGenerator ${map.metadata.name}: behavior ${String(behavior)} does not apply`);
  }

  for (const p of list(k.patches, kfile, 'patches')) {
    if (!isPlainObject(p) || Object.keys(p).join() !== 'path' || typeof p.path !== 'string') {
      throw new UnsupportedKustomizationError(`${kfile}: patches entries must be { path } (strategic merge, no target)`);
    }
    const path = join(root, p.path);
    files.add(path);
    for (const doc of readYamlDocuments(path)) {
      const patch = asKubeObject(doc, path);
      if (isPlainObject(patch.spec) && 'replicas' in patch.spec) {
        throw new UnsupportedKustomizationError(`${path}: set replica counts with the kustomization's replicas field`);
      }
      const at = objects.findIndex((o) => o.apiVersion === patch.apiVersion && o.kind === patch.kind && o.metadata.name === patch.metadata.name);
      if (at < 0) throw new ManifestError(`${path}: no ${patch.kind} ${patch.metadata.name} to patch`);
      objects[at] = strategicMerge(objects[at], patch) as KubeObject;
    }
  }

  for (const r of list(k.replicas, kfile, 'replicas')) {
    if (!isPlainObject(r) || typeof r.name !== 'string' || !Number.isInteger(r.count)) {
      throw new ManifestError(`${kfile}: replicas entries must be { name, count }`);
    }
    const targets = objects.filter((o) => SCALABLE_KINDS.has(o.kind) && o.metadata.name === r.name);
    if (!targets.length) throw new ManifestError(`${kfile}: replicas: no Deployment or StatefulSet ${r.name}`);
    for (const t of targets) t.spec = { ...(t.spec as Plain), replicas: r.count };
  }

  for (const image of list(k.images, kfile, 'images')) setImage(objects, image, kfile);
  return { objects, files };
}

function list(value: unknown, kfile: string, field: string): unknown[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new ManifestError(`${kfile}: ${field} must be a list`);
  return value;
}

/** kustomize's images transformer, on the containers of Deployments and StatefulSets. */
function setImage(objects: KubeObject[], image: unknown, kfile: string): void {
  const fields = isPlainObject(image) ? Object.keys(image) : [];
  if (!isPlainObject(image) || typeof image.name !== 'string' || fields.some((f) => !['name', 'newName', 'newTag'].includes(f))) {
    throw new UnsupportedKustomizationError(`${kfile}: images entries must be { name, newName?, newTag? }`);
  }
  for (const o of objects.filter((x) => SCALABLE_KINDS.has(x.kind))) {
    const pod = (o.spec as { template?: { spec?: { containers?: Plain[]; initContainers?: Plain[] } } } | undefined)?.template?.spec;
    for (const c of [...(pod?.containers ?? []), ...(pod?.initContainers ?? [])]) {
      const ref = String(c.image);
      const [, name, tag] = /^(.*?)(?::([^:/@]+))?(@.*)?$/.exec(ref)!;
      if (name !== image.name) continue;
      if (ref.includes('@')) throw new UnsupportedKustomizationError(`${kfile}: images: digest references are not supported`);
      const newTag = image.newTag ?? tag;
      c.image = `${image.newName ?? name}${newTag === undefined ? '' : `:${newTag}`}`;
    }
  }
}

function generateConfigMap(gen: unknown, root: string, kfile: string, files: Set<string>): KubeObject {
  const fields = isPlainObject(gen) ? Object.keys(gen) : [];
  if (!isPlainObject(gen) || typeof gen.name !== 'string' || !Array.isArray(gen.files) || fields.some((f) => !['name', 'files', 'behavior'].includes(f))) {
    throw new UnsupportedKustomizationError(`${kfile}: configMapGenerator entries must be { name, files, behavior? }`);
  }
  const data: Record<string, string> = {};
  for (const f of gen.files) {
    if (typeof f !== 'string' || f.includes('=')) throw new UnsupportedKustomizationError(`${kfile}: configMapGenerator files must be plain paths`);
    const path = join(root, f);
    files.add(path);
    data[basename(f)] = readFileSync(path, 'utf8');
  }
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: gen.name }, data };
}

/** Merge keys of the lists that strategic merge patches merge element-wise (Kubernetes API
 * `patchMergeKey`); every other list is replaced whole. `ports` is keyed by containerPort in a
 * container and by port in a Service. */
const MERGE_KEYS: Record<string, (element: Plain) => string> = {
  containers: () => 'name',
  initContainers: () => 'name',
  volumes: () => 'name',
  env: () => 'name',
  imagePullSecrets: () => 'name',
  volumeMounts: () => 'mountPath',
  ports: (e) => ('containerPort' in e ? 'containerPort' : 'port'),
};

/**
 * Strategic merge patch of plain JSON values: maps merge recursively, `null` deletes a field,
 * lists named in MERGE_KEYS merge by their key, other lists and scalars are replaced.
 * @throws UnsupportedKustomizationError on patch directives (`$patch`, `$retainKeys`, ...).
 */
export function strategicMerge(target: unknown, patch: unknown, field = ''): unknown {
  if (isPlainObject(patch)) {
    const out: Plain = isPlainObject(target) ? { ...target } : {};
    for (const [k, v] of Object.entries(patch)) {
      if (k.startsWith('$')) throw new UnsupportedKustomizationError(`patch directive ${k} not supported by deploy/src/render.ts`);
      if (v === null) delete out[k];
      else out[k] = strategicMerge(out[k], v, k);
    }
    return out;
  }
  const keyOf = MERGE_KEYS[field];
  if (keyOf && Array.isArray(patch) && Array.isArray(target) && [...patch, ...target].every(isPlainObject)) {
    const out = [...(target as Plain[])];
    for (const element of patch as Plain[]) {
      const key = keyOf(element);
      const at = out.findIndex((t) => t[key] === element[key]);
      if (at >= 0) out[at] = strategicMerge(out[at], element) as Plain;
      else out.push(element);
    }
    return out;
  }
  return patch;
}
