#!/usr/bin/env node
// Prints one closing line for the whole test run from .test-results/*.json (see jest-summary-reporter.js).
const { readdirSync, readFileSync } = require('node:fs');
const { join } = require('node:path');
const dir = join(__dirname, '../../.test-results');
let passed = 0, failed = 0, skipped = 0;
const rows = [];
for (const f of readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
  const r = JSON.parse(readFileSync(join(dir, f), 'utf8'));
  passed += r.passed; failed += r.failed; skipped += r.skipped;
  rows.push(`  ${r.project.padEnd(14)} ${String(r.passed).padStart(5)} passed ${String(r.failed).padStart(3)} failed ${String(r.skipped).padStart(3)} skipped`);
}
console.log(rows.join('\n'));
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
