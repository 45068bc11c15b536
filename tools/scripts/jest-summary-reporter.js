// Jest reporter: writes this project's test counts to <repo>/.test-results/<displayName>.json so
// `tools/scripts/test-summary.js` can print one closing line for the whole `npm test` (the Nx
// test target declares the file as an output, so a cache hit restores it too).
const { mkdirSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');

class SummaryReporter {
  constructor(globalConfig) {
    this.globalConfig = globalConfig;
  }
  onRunComplete(contexts, results) {
    const [context] = [...contexts];
    const name = (context && context.config.displayName && (context.config.displayName.name || context.config.displayName)) || 'tests';
    const dir = join(__dirname, '../../.test-results');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, `${name}.json`),
      JSON.stringify({ project: name, passed: results.numPassedTests, failed: results.numFailedTests + results.numRuntimeErrorTestSuites, skipped: results.numPendingTests }),
    );
  }
}
module.exports = SummaryReporter;
