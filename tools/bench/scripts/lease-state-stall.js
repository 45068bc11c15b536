#!/usr/bin/env node
/**
 * The Ready-loop stall of a lease-state save (issue 12; docs/leases.md "Restarts and compaction").
 * Builds a LeaseTable of 10,000 leases and N TTL keys of 30 bytes, then saves it three times into a
 * tmp dir as the replica does (LeaseTable.snapshot in the loop, then encodeLeaseStateSlices →
 * ChecksummedFile.writeSlices in slices of --slice bytes) while a 1 ms timer changes 100 keys of the
 * table per tick (the loop folding entries in). Prints per save: the snapshot's time (the whole
 * cost inside the loop), the longest slice encoding (the longest step the save runs without
 * yielding; wall and process CPU — process.cpuUsage also counts libuv's write threads and the GC),
 * the longest gap between two turns of the event loop, and the whole save.
 *
 * Run (after `npx nx run-many -t build`):
 *   node tools/bench/scripts/lease-state-stall.js [N=100000] [--slice 65536]
 */
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const root = path.join(__dirname, '..', '..', '..');
const { LeaseTable } = require(path.join(root, 'apps/consensus/dist/leases/lease-table'));
const { encodeLeaseStateSlices } = require(path.join(root, 'apps/consensus/dist/leases/lease-state-file'));
const { ChecksummedFile } = require(path.join(root, 'libs/log/dist'));
const { CommandOp, encodeLeaseGrant } = require(path.join(root, 'libs/protocol/dist'));

const args = process.argv.slice(2);
const at = args.indexOf('--slice');
const slice = at >= 0 ? Number(args[at + 1]) : 64 * 1024;
const N = Number(args.find((a, i) => !a.startsWith('--') && args[i - 1] !== '--slice') ?? 100_000);
const key = (i) => Buffer.from(`key-${String(i).padStart(26, '0')}`);
const setTtl = (i, expiresAtMs) => ({ op: CommandOp.Set, key: key(i), value: Buffer.from('v'), meta: { leaseId: 0, expiresAtMs, keepTtl: false } });
const cpuMs = (c) => (c.user + c.system) / 1000;

const t = new LeaseTable({ leasesMax: 10_000_000, ttlKeysMax: 100_000_000, expiriesPerCheckMax: 1000, expiryRetryMs: 2000 });
for (let i = 1; i <= 10_000; i++) t.applyCommitted({ op: CommandOp.LeaseGrant, key: Buffer.alloc(0), value: encodeLeaseGrant(i, 30_000) }, 0);
for (let i = 0; i < N; i++) t.applyCommitted(setTtl(i, 1e12 + i), 0);

(async () => {
  for (let run = 0; run < 3; run++) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-stall-'));
    const file = new ChecksummedFile(path.join(dir, 'lease-state'), 0x43524c53, 1, (m) => new Error(m));
    let maxGapMs = 0;
    let last = performance.now();
    let ticking = true;
    const tick = () => {
      const now = performance.now();
      maxGapMs = Math.max(maxGapMs, now - last);
      last = now;
      if (ticking) setImmediate(tick);
    };
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const table = t.snapshot();
    const snapshotMs = performance.now() - t0;
    const snapshotCpuMs = cpuMs(process.cpuUsage(c0));
    last = performance.now();
    setImmediate(tick);
    let changes = 0;
    const churn = setInterval(() => {
      for (let i = 0; i < 100; i++, changes++) t.applyCommitted(setTtl(changes % Math.max(1, N), 2e12 + changes), 0);
    }, 1);
    let longestMs = 0;
    let longestCpuMs = 0;
    let slices = 0;
    const gen = encodeLeaseStateSlices({ index: 1, gapThrough: 0, table }, slice);
    const timed = {
      [Symbol.iterator]: () => ({
        next: () => {
          const w0 = performance.now();
          const c = process.cpuUsage();
          const r = gen.next();
          longestCpuMs = Math.max(longestCpuMs, cpuMs(process.cpuUsage(c)));
          longestMs = Math.max(longestMs, performance.now() - w0);
          if (!r.done) slices++;
          return r;
        },
      }),
    };
    const s0 = performance.now();
    await file.writeSlices(timed);
    const saveMs = performance.now() - s0;
    ticking = false;
    clearInterval(churn);
    table.end();
    const bytes = fs.statSync(path.join(dir, 'lease-state')).size;
    fs.rmSync(dir, { recursive: true, force: true });
    const r = (x, d = 1) => Number(x.toFixed(d));
    console.log(JSON.stringify({ N, run, sliceBytes: slice, fileMB: r(bytes / 1e6), slices, snapshotMs: r(snapshotMs, 3), snapshotCpuMs: r(snapshotCpuMs, 3), longestSliceMs: r(longestMs), longestSliceCpuMs: r(longestCpuMs), longestLoopGapMs: r(maxGapMs), saveMs: Math.round(saveMs), changesDuring: changes }));
  }
})();
