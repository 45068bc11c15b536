import * as fs from 'node:fs';
import * as os from 'node:os';
import fc from 'fast-check';
import { SegmentedLog, type FsyncPolicy } from './index';
import { VirtualClock } from './testing';

type Cmd = { kind: 'append'; sizes: number[] } | { kind: 'truncate'; back: number } | { kind: 'drop'; fraction: number } | { kind: 'reopen' };

const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('append' as const), sizes: fc.array(fc.nat({ max: 60 }), { minLength: 1, maxLength: 6 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('truncate' as const), back: fc.nat({ max: 12 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('drop' as const), fraction: fc.double({ min: 0, max: 1, noNaN: true }) }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'reopen' as const }) },
);

const payload = (seed: number, size: number): Buffer => {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (seed * 31 + i * 7) & 0xff;
  return b;
};

describe('SegmentedLog matches an in-memory model (fast-check)', () => {
  it('random append / truncateSuffix / dropPrefix / reopen sequences', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(cmdArb, { minLength: 1, maxLength: 25 }),
        fc.constantFrom<FsyncPolicy>('always', 'group', 'interval'),
        fc.integer({ min: 40, max: 300 }),
        async (cmds, fsyncPolicy, segmentBytesMax) => {
          const dir = fs.mkdtempSync(os.tmpdir() + '/cairn-');
          // 'interval': its timer fires between every two commands (virtual time, so every run is the same).
          const clock = new VirtualClock();
          const options = { dir, fsyncPolicy, segmentBytesMax, fsyncIntervalMs: 5, clock };
          let log = await SegmentedLog.open(options);
          // model: index -> payload for [first, first + records.length)
          let first = 1;
          let records: Buffer[] = [];
          let seed = 0;
          try {
            for (const cmd of cmds) {
              if (cmd.kind === 'append') {
                const batch = cmd.sizes.map((s) => payload(seed++, s));
                // Issue half, then half without awaiting: exercises group commit.
                const half = Math.ceil(batch.length / 2);
                const p1 = log.append(batch.slice(0, half));
                const p2 = log.append(batch.slice(half));
                await Promise.all([p1, p2]);
                records.push(...batch);
              } else if (cmd.kind === 'truncate') {
                const from = Math.max(log.firstIndex(), log.lastIndex() + 1 - cmd.back);
                await log.truncateSuffix(from);
                records = records.slice(0, from - first);
              } else if (cmd.kind === 'drop') {
                const before = first + Math.floor(records.length * cmd.fraction);
                await log.dropPrefix(before);
                const newFirst = log.firstIndex();
                expect(newFirst).toBeGreaterThanOrEqual(first);
                expect(newFirst).toBeLessThanOrEqual(Math.max(before, first));
                records = records.slice(newFirst - first);
                first = newFirst;
              } else {
                await log.close();
                log = await SegmentedLog.open(options);
                expect(log.recovery.tornTail).toBeNull();
              }
              expect(log.firstIndex()).toBe(first);
              expect(log.lastIndex()).toBe(first + records.length - 1);
              clock.advance(options.fsyncIntervalMs);
            }
            for (let i = 0; i < records.length; i++) expect(log.read(first + i)).toEqual(records[i]);
            if (records.length > 0) expect(log.readRange(first, first + records.length - 1)).toEqual(records);
            expect([...log.scan()].map((r) => r.payload)).toEqual(records);
          } finally {
            await log.close();
            fs.rmSync(dir, { recursive: true, force: true });
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});
