// Runs the longest e2e files first, so that two workers finish together instead of one running a
// long file alone at the end. A fresh clone (CI) has no jest timing cache; without one jest orders
// by file size, which put cli.e2e (~1 min) among the last. Weights: seconds each file took in a
// fresh-clone CI run at 3bd4fae (2026-12-07, two workers); a file not listed counts as 20 s.
const Sequencer = require('@jest/test-sequencer').default;
const { basename } = require('node:path');

const SECONDS = {
  'cli.e2e.spec.ts': 59, 'catch-up-at-scale.e2e.spec.ts': 48, 'lease.e2e.spec.ts': 34, 'membership.e2e.spec.ts': 34,
  'storage-bootstrap.e2e.spec.ts': 33, 'backup.e2e.spec.ts': 32, 'auth.e2e.spec.ts': 31, 'cluster.e2e.spec.ts': 29,
  'incr.e2e.spec.ts': 27, 'txn.e2e.spec.ts': 23, 'console.e2e.spec.ts': 22, 'compaction.e2e.spec.ts': 21,
  'txn-faults.e2e.spec.ts': 20, 'watch-doors.e2e.spec.ts': 19, 'incr-faults.e2e.spec.ts': 19, 'bad-input.e2e.spec.ts': 19,
  'big-reads.e2e.spec.ts': 18, 'resp-txn.e2e.spec.ts': 17, 'entrypoint.e2e.spec.ts': 15, 'tls.e2e.spec.ts': 14,
  'conditional-writes.e2e.spec.ts': 13, 'ttl.e2e.spec.ts': 12, 'client-failover.e2e.spec.ts': 11, 'nats-auth.e2e.spec.ts': 11,
  'range-reads.e2e.spec.ts': 11, 'duplicate-writes.e2e.spec.ts': 8, 'watch.e2e.spec.ts': 8, 'resp.e2e.spec.ts': 7,
  'protocol-semantics.e2e.spec.ts': 7, 'http.e2e.spec.ts': 4,
};

class LongestFirst extends Sequencer {
  sort(tests) {
    const weight = (t) => SECONDS[basename(t.path)] ?? 20;
    return [...tests].sort((a, b) => weight(b) - weight(a) || (a.path < b.path ? -1 : 1));
  }
}
module.exports = LongestFirst;
