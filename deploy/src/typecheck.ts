import { join } from 'node:path';
import ts from 'typescript';
import { MODELS, modelKey, UnknownKindError, type ModelKey } from './models';
import type { KubeObject } from './kustomize';

/**
 * Type-checks objects against the kubernetes-models TypeScript interfaces of their kinds, as
 * object literals: TypeScript's excess property check then reports unknown and misspelled fields
 * (`imagee`, `replcias`), which the OpenAPI schema validation lets through.
 * Returns one line per problem, `Kind/name: message`; empty when every object type-checks.
 * @throws UnknownKindError for a kind outside MODELS.
 */
export function typecheckObjects(objects: KubeObject[]): string[] {
  // The virtual file sits in deploy/src so that `kubernetes-models` resolves from the repo's node_modules.
  const file = join(__dirname, '__rendered_manifests__.ts');
  const lines = objects.map((o, i) => {
    const key = modelKey(o);
    if (!(key in MODELS)) throw new UnknownKindError(key);
    const { module, iface } = MODELS[key as ModelKey];
    return `import type { ${iface} as T${i} } from '${module}'; export const o${i}: T${i} = ${JSON.stringify(o)};`;
  });
  const source = lines.join('\n');
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, languageVersion, ...rest) =>
    name === file ? ts.createSourceFile(name, source, languageVersion) : getSourceFile(name, languageVersion, ...rest);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === file || fileExists(name);
  const program = ts.createProgram([file], options, host);
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const where = d.file === undefined || d.start === undefined ? undefined : d.file.getLineAndCharacterOfPosition(d.start).line;
    const o = where === undefined || d.file?.fileName !== file ? undefined : objects[where];
    return `${o ? `${o.kind}/${o.metadata.name}` : (d.file?.fileName ?? 'program')}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
  });
}
