import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** PromQL words that are not metric names (operators and modifiers; functions are told by their `(`). */
const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'inf', 'nan']);

/**
 * The metric names a PromQL expression selects (`rate(x_bucket{a="b"}[5m])` → `x_bucket`):
 * string literals, label matchers, range and subquery brackets and grouping label lists are
 * dropped; of the identifiers left, those followed by `(` are functions or aggregations.
 * Enough for the expressions of Cairn's dashboards and rules, not a PromQL parser.
 */
export function metricNames(expr: string): string[] {
  const e = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = [...e.matchAll(/(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()/g)].map((m) => m[1]).filter((n) => !KEYWORDS.has(n.toLowerCase()));
  return [...new Set(names)];
}

/** Whether `name` is a family of `families` or a histogram/summary series of one (`_bucket`, `_sum`, `_count`). */
export function familyExists(name: string, families: ReadonlySet<string>): boolean {
  if (families.has(name)) return true;
  const m = /^(.*)_(bucket|sum|count)$/.exec(name);
  return m !== null && families.has(m[1]);
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' || e.name === 'dist' ? [] : tsFiles(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.spec.ts') ? [p] : [];
  });
}

/**
 * The `cairn_*` metric family names registered in the sources under `dirs` (non-test TypeScript):
 * every string literal that is a whole `cairn_…` name, which is how the metrics modules name their
 * families (prom-client `name:`, and the helpers' first argument).
 */
export function cairnFamiliesInSources(dirs: string[]): Set<string> {
  const out = new Set<string>();
  for (const file of dirs.flatMap(tsFiles)) {
    for (const m of readFileSync(file, 'utf8').matchAll(/['"`](cairn_[a-z0-9_]+)['"`]/g)) out.add(m[1]);
  }
  return out;
}
