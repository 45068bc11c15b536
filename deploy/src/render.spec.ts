import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UnknownKindError, validateObject } from './models';
import { ManifestError, render, strategicMerge, UnsupportedKustomizationError, type KubeObject } from './render';
import { typecheckObjects } from './typecheck';

const statefulSet = (spec: Record<string, unknown>): KubeObject => ({ apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 'x' }, spec });
const podTemplate = (container: Record<string, unknown>) => ({
  selector: { matchLabels: { a: 'b' } },
  serviceName: 'x',
  template: { metadata: { labels: { a: 'b' } }, spec: { containers: [{ name: 'c', image: 'i', ...container }] } },
});

const trees: string[] = [];
afterAll(() => trees.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-'));
  trees.push(dir);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

describe('strategicMerge', () => {
  it('merges maps, deletes on null, merges containers by name and volumeMounts by mountPath, replaces other lists', () => {
    const target = {
      a: 1,
      gone: 2,
      containers: [
        { name: 'x', image: 'i', args: ['1', '2'], volumeMounts: [{ name: 'v', mountPath: '/v' }] },
        { name: 'y', image: 'j' },
      ],
      volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: { size: 1 } }],
    };
    const patch = {
      gone: null,
      b: { c: 3 },
      containers: [{ name: 'x', args: ['3'], volumeMounts: [{ mountPath: '/v', readOnly: true }] }, { name: 'z', image: 'k' }],
      volumeClaimTemplates: [{ metadata: { name: 'data' } }],
    };
    expect(strategicMerge(target, patch)).toEqual({
      a: 1,
      b: { c: 3 },
      containers: [
        { name: 'x', image: 'i', args: ['3'], volumeMounts: [{ name: 'v', mountPath: '/v', readOnly: true }] },
        { name: 'y', image: 'j' },
        { name: 'z', image: 'k' },
      ],
      volumeClaimTemplates: [{ metadata: { name: 'data' } }],
    });
  });

  it('keys container ports by containerPort and Service ports by port', () => {
    expect(strategicMerge({ ports: [{ containerPort: 1, name: 'a' }] }, { ports: [{ containerPort: 1, name: 'b' }] })).toEqual({ ports: [{ containerPort: 1, name: 'b' }] });
    expect(strategicMerge({ ports: [{ port: 1, name: 'a' }] }, { ports: [{ port: 2, name: 'b' }] })).toEqual({ ports: [{ port: 1, name: 'a' }, { port: 2, name: 'b' }] });
  });

  it('refuses patch directives', () => {
    expect(() => strategicMerge({ a: [] }, { $patch: 'replace', a: [] })).toThrow(UnsupportedKustomizationError);
  });
});

describe('render', () => {
  const base = {
    'base/kustomization.yaml': 'resources: [sts.yaml]\nconfigMapGenerator:\n  - name: cfg\n    files: [c.json]\n',
    'base/sts.yaml': 'apiVersion: apps/v1\nkind: StatefulSet\nmetadata: { name: s }\nspec: { replicas: 1, template: { spec: { containers: [{ name: c, image: i }] } } }\n',
    'base/c.json': '{"a":1}',
  };

  it('applies generators (create, replace), patches and replica counts, and lists the files it read', () => {
    const dir = tree({
      ...base,
      'o/kustomization.yaml':
        'resources: [../base]\nreplicas: [{ name: s, count: 3 }]\npatches: [{ path: p.yaml }]\nconfigMapGenerator:\n  - { name: cfg, behavior: replace, files: [c.json] }\n',
      'o/p.yaml': 'apiVersion: apps/v1\nkind: StatefulSet\nmetadata: { name: s }\nspec: { template: { spec: { containers: [{ name: c, image: j }] } } }\n',
      'o/c.json': '{"a":2}',
    });
    const r = render(join(dir, 'o'));
    expect(r.objects).toEqual([
      { apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 's' }, spec: { replicas: 3, template: { spec: { containers: [{ name: 'c', image: 'j' }] } } } },
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cfg' }, data: { 'c.json': '{"a":2}' } },
    ]);
    expect([...r.files].map((f) => f.slice(dir.length + 1)).sort()).toEqual(
      ['base/c.json', 'base/kustomization.yaml', 'base/sts.yaml', 'o/c.json', 'o/kustomization.yaml', 'o/p.yaml'].sort(),
    );
  });

  it('sets images like kustomize: newName and newTag each replace their part, other images stay', () => {
    const dir = tree({
      ...base,
      'base/sts.yaml':
        'apiVersion: apps/v1\nkind: StatefulSet\nmetadata: { name: s }\nspec: { template: { spec: { containers: [{ name: a, image: "cairn:0.1.0" }, { name: b, image: "reg:5000/cairn" }, { name: c, image: "nats:2.10" }] } } }\n',
      'o/kustomization.yaml': 'resources: [../base]\nimages:\n  - { name: cairn, newName: reg:5000/cairn }\n  - { name: "reg:5000/cairn", newTag: "0.2.0" }\n',
    });
    const sts = render(join(dir, 'o')).objects[0] as unknown as { spec: { template: { spec: { containers: { image: string }[] } } } };
    expect(sts.spec.template.spec.containers.map((c) => c.image)).toEqual(['reg:5000/cairn:0.2.0', 'reg:5000/cairn:0.2.0', 'nats:2.10']);
  });

  it.each([
    ['namePrefix (it would rename pods away from their config ids)', 'resources: [../base]\nnamePrefix: x-\n'],
    ['a patch with a target', 'resources: [../base]\npatches: [{ path: p.yaml, target: { kind: StatefulSet } }]\n'],
    ['a generator with literals', 'resources: [../base]\nconfigMapGenerator: [{ name: cfg, behavior: replace, literals: [a=b] }]\n'],
  ])('refuses %s', (_what, kustomization) => {
    const dir = tree({ ...base, 'o/kustomization.yaml': kustomization, 'o/p.yaml': 'apiVersion: v1\nkind: X\nmetadata: { name: s }\n' });
    expect(() => render(join(dir, 'o'))).toThrow(UnsupportedKustomizationError);
  });

  it('refuses replica counts in patches, and duplicate YAML keys', () => {
    const patched = tree({
      ...base,
      'o/kustomization.yaml': 'resources: [../base]\npatches: [{ path: p.yaml }]\n',
      'o/p.yaml': 'apiVersion: apps/v1\nkind: StatefulSet\nmetadata: { name: s }\nspec: { replicas: 2 }\n',
    });
    expect(() => render(join(patched, 'o'))).toThrow(UnsupportedKustomizationError);
    const duplicated = tree({ ...base, 'base/sts.yaml': 'apiVersion: v1\nkind: Service\nkind: Service\nmetadata: { name: s }\n' });
    expect(() => render(join(duplicated, 'base'))).toThrow(ManifestError);
  });
});

describe('validateObject and typecheckObjects', () => {
  it('accept a well-formed object', () => {
    const o = statefulSet(podTemplate({}));
    expect(() => validateObject(o)).not.toThrow();
    expect(typecheckObjects([o])).toEqual([]);
  });

  it('the schema check rejects wrong types and unknown kinds', () => {
    expect(() => validateObject(statefulSet({ ...podTemplate({}), replicas: '3' }))).toThrow(/replicas must be integer/);
    expect(() => validateObject({ apiVersion: 'v1', kind: 'Pdo', metadata: { name: 'x' } })).toThrow(UnknownKindError);
  });

  it('the type check rejects misspelled fields, which the schema check lets through', () => {
    const objects = [statefulSet({ ...podTemplate({}), replcias: 3 }), statefulSet(podTemplate({ imagee: 'typo' }))];
    for (const o of objects) expect(() => validateObject(o)).not.toThrow();
    expect(typecheckObjects(objects)).toEqual([
      expect.stringMatching(/^StatefulSet\/x: .*'"replcias"' does not exist in type 'IStatefulSetSpec'/),
      expect.stringMatching(/^StatefulSet\/x: .*'"imagee"' does not exist in type 'IContainer'/),
    ]);
  });
});
