import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';

/**
 * Rendering of Cairn's kustomizations with the real renderer, `kubectl kustomize` (kubectl ≥ 1.14
 * embeds kustomize; 1.32 / kustomize v5.5.0 here), plus the two things a test needs around it:
 * strict YAML parsing (duplicate keys are errors) and the list of files a kustomization reads.
 */

/** A Kubernetes object as parsed from YAML. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; [field: string]: unknown };
  [field: string]: unknown;
}

/** Base of this project's errors: `name` is the class name, `code` a stable string. */
export abstract class DeployError extends Error {
  abstract readonly code: string;
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** YAML that does not parse cleanly, or a document that is not a Kubernetes object. */
export class ManifestError extends DeployError {
  readonly code = 'MANIFEST_INVALID';
}

/** `kubectl kustomize` failed (exit status ≠ 0 or output on stderr). */
export class KustomizeError extends DeployError {
  readonly code = 'KUSTOMIZE_FAILED';
}

type Plain = Record<string, unknown>;

function isPlainObject(value: unknown): value is Plain {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Parses every YAML document of `text` (comments-only documents skipped).
 * @throws ManifestError on any YAML error or warning (duplicate keys included), naming `source`.
 */
export function parseYamlDocuments(text: string, source: string): unknown[] {
  const out: unknown[] = [];
  for (const doc of parseAllDocuments(text, { uniqueKeys: true })) {
    const problems = [...doc.errors, ...doc.warnings];
    if (problems.length) throw new ManifestError(`${source}: ${problems.map((p) => p.message).join('; ')}`);
    if (doc.contents !== null) out.push(doc.toJS());
  }
  return out;
}

/** parseYamlDocuments of a file. @throws ManifestError */
export function readYamlDocuments(file: string): unknown[] {
  return parseYamlDocuments(readFileSync(file, 'utf8'), file);
}

/** @throws ManifestError when `doc` lacks apiVersion, kind or metadata.name. */
export function asKubeObject(doc: unknown, source: string): KubeObject {
  const ok = isPlainObject(doc) && typeof doc.apiVersion === 'string' && typeof doc.kind === 'string' && isPlainObject(doc.metadata) && typeof doc.metadata.name === 'string';
  if (!ok) throw new ManifestError(`${source}: every document must have apiVersion, kind and metadata.name`);
  return doc as KubeObject;
}

/** Path of a working `kubectl` (`$KUBECTL` or `kubectl` on the PATH), or null when there is none. */
export function findKubectl(): string | null {
  const bin = process.env.KUBECTL || 'kubectl';
  const r = spawnSync(bin, ['version', '--client'], { encoding: 'utf8', timeout: 30_000 });
  return r.status === 0 ? bin : null;
}

/**
 * The objects `kubectl kustomize <dir>` renders, in its order; generated ConfigMaps carry
 * kustomize's content hash (`cairn-config-<10 chars>`) and every reference to them is rewritten.
 * @throws KustomizeError when kubectl fails or warns; ManifestError on output that is not objects.
 */
export function kustomize(kubectl: string, dir: string): KubeObject[] {
  const r = spawnSync(kubectl, ['kustomize', dir], { encoding: 'utf8', timeout: 60_000, maxBuffer: 16 << 20 });
  if (r.status !== 0 || r.stderr !== '') throw new KustomizeError(`kubectl kustomize ${dir}: status ${r.status}: ${r.stderr || String(r.error)}`);
  return parseYamlDocuments(r.stdout, `kubectl kustomize ${dir}`).map((d) => asKubeObject(d, dir));
}

/** `name` without kustomize's generator hash suffix (`cairn-config-5c9d8h7k2f` → `cairn-config`). */
export function unhashedName(name: string, generated: readonly string[]): string {
  return generated.find((g) => new RegExp(`^${g}-[a-z0-9]{10}$`).test(name)) ?? name;
}

function entries(value: unknown, kfile: string, field: string): unknown[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new ManifestError(`${kfile}: ${field} must be a list`);
  return value;
}

function pathsOf(k: Plain, kfile: string): string[] {
  const resources = entries(k.resources, kfile, 'resources').filter((r): r is string => typeof r === 'string');
  const patches = entries(k.patches, kfile, 'patches').flatMap((p) => (isPlainObject(p) && typeof p.path === 'string' ? [p.path] : []));
  const generated = ['configMapGenerator', 'secretGenerator'].flatMap((f) =>
    entries(k[f], kfile, f).flatMap((g) => (isPlainObject(g) ? entries(g.files, kfile, `${f}.files`) : [])),
  );
  // A generator file may be `key=path`.
  const files = generated.filter((f): f is string => typeof f === 'string').map((f) => f.slice(f.indexOf('=') + 1));
  return [...resources, ...patches, ...files];
}

/**
 * Absolute paths of every local file the kustomization in `dir` reads: its kustomization.yaml,
 * resources (directories followed), patch files and generator files. Not a renderer: it only
 * lists inputs, so that a test can tell a file nobody renders.
 * @throws ManifestError on a kustomization that is not one YAML mapping.
 */
export function kustomizationInputs(dir: string): Set<string> {
  const root = resolve(dir);
  const kfile = join(root, 'kustomization.yaml');
  const [k, ...more] = readYamlDocuments(kfile);
  if (!isPlainObject(k) || more.length) throw new ManifestError(`${kfile}: expected one kustomization document`);
  const files = new Set([kfile]);
  for (const rel of pathsOf(k, kfile)) {
    const path = join(root, rel);
    if (statSync(path).isDirectory()) kustomizationInputs(path).forEach((f) => files.add(f));
    else files.add(path);
  }
  return files;
}
