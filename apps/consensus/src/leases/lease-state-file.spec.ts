import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CommandOp, encodeLeaseGrant, encodeLeaseRevoke, type Command } from '@cairn/protocol';
import { LeaseStateFile, LeaseStateFileCorruptionError, decodeLeaseState, encodeLeaseState, encodeLeaseStateSlices, type SavedLeaseState } from '@cairn/log';
import { LeaseTable } from './lease-table';

const EMPTY = Buffer.alloc(0);
const opts = { leasesMax: 100_000, ttlKeysMax: 100_000, expiriesPerCheckMax: 10, expiryRetryMs: 500 };
const grant = (id: number, ttlMs: number): Command => ({ op: CommandOp.LeaseGrant, key: EMPTY, value: encodeLeaseGrant(id, ttlMs) });
const setTtl = (key: Buffer, expiresAtMs: number): Command => ({ op: CommandOp.Set, key, value: Buffer.from('v'), meta: { leaseId: 0, expiresAtMs, keepTtl: false } });

describe('LeaseStateFile (docs/leases.md "Restarts and compaction")', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'cairn-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('a table saved and read back holds the same leases and key expiries (binary keys too); none saved reads null', () => {
    const file = new LeaseStateFile(dir);
    expect(file.read()).toBeNull();
    const t = new LeaseTable(opts);
    t.applyCommitted(grant(7, 2000), 0);
    t.applyCommitted(grant(2 ** 53 - 1, 1), 0);
    t.applyCommitted(setTtl(Buffer.from([0, 0xff, 0x80]), 1234), 0);
    t.applyCommitted(setTtl(Buffer.from('k'), 2 ** 52), 0);
    file.write({ index: 42, gapThrough: 3, ...t.content() });
    const back = file.read()!;
    expect({ index: back.index, gapThrough: back.gapThrough }).toEqual({ index: 42, gapThrough: 3 });
    const restored = new LeaseTable(opts);
    restored.restore(back);
    expect(restored.content()).toEqual(t.content());
    expect(restored.leaseIds()).toEqual([7, 2 ** 53 - 1]);
    // Follower state: no deadline until promoted, then ttl + the election timeout.
    expect(restored.timeToLive(7, 100)).toEqual({ ttlMs: 2000, remainingMs: null });
    restored.promote(100, 300);
    expect(restored.timeToLive(7, 100)).toEqual({ ttlMs: 2000, remainingMs: 2300 });
  });

  it('a flipped byte or a truncated file is LEASE_STATE_FILE_CORRUPTION, never a silently smaller table', () => {
    const file = new LeaseStateFile(dir);
    const s: SavedLeaseState = { index: 9, gapThrough: 0, leases: [{ leaseId: 1, ttlMs: 10 }], keys: [{ key: Buffer.from('abc'), expiresAtMs: 5 }] };
    file.write(s);
    const path = join(dir, 'lease-state');
    const good = readFileSync(path);
    const flipped = Buffer.from(good);
    flipped[flipped.length - 3] ^= 0x01;
    writeFileSync(path, flipped);
    expect(() => file.read()).toThrow(LeaseStateFileCorruptionError);
    writeFileSync(path, good.subarray(0, good.length - 4));
    expect(() => file.read()).toThrow(LeaseStateFileCorruptionError);
    writeFileSync(path, good);
    expect(file.read()).toEqual(s);
  });

  /** A table of `leases` leases and `keys` TTL keys of 20-odd bytes (one of 70 KB: a slice of its own). */
  function bigTable(leases: number, keys: number): LeaseTable {
    const t = new LeaseTable(opts);
    for (let i = 1; i <= leases; i++) t.applyCommitted(grant(i, 1000 + i), 0);
    for (let i = 0; i < keys; i++) t.applyCommitted(setTtl(Buffer.from(`key-${String(i).padStart(16, '0')}`), 5000 + i), 0);
    t.applyCommitted(setTtl(Buffer.alloc(70_000, 0x41), 7), 0);
    return t;
  }

  it('encodes in slices of at most sliceBytesMax bytes (an entry larger goes alone) that concatenate to a body of the table as of the snapshot, whatever changes between slices', () => {
    const t = bigTable(20_000, 10_000);
    const before = encodeLeaseState({ index: 5, gapThrough: 2, ...t.content() });
    const table = t.snapshot();
    const slices: Buffer[] = [];
    let i = 0;
    for (const slice of encodeLeaseStateSlices({ index: 5, gapThrough: 2, table }, 64 * 1024)) {
      slices.push(Buffer.from(slice));
      // The table keeps changing while the save reads it.
      t.applyCommitted(grant(900_000 + i, 1), 0);
      t.applyCommitted({ op: CommandOp.LeaseRevoke, key: EMPTY, value: encodeLeaseRevoke(1 + i) }, 0);
      t.applyCommitted(setTtl(Buffer.from(`key-${String(i).padStart(16, '0')}`), 1), 0);
      i++;
    }
    table.end();
    expect(slices.length).toBeGreaterThan(5);
    expect(slices.filter((s) => s.length > 64 * 1024).map((s) => s.length)).toEqual([70_000 + 12]);
    // The same entries (those changed during the read come last) and the same bytes in all.
    const sorted = (b: Buffer) => {
      const s = decodeLeaseState(b);
      return { ...s, leases: [...s.leases].sort((x, y) => x.leaseId - y.leaseId), keys: [...s.keys].sort((x, y) => Buffer.compare(x.key, y.key)) };
    };
    const whole = Buffer.concat(slices);
    expect(whole.length).toBe(before.length);
    expect(sorted(whole)).toEqual(sorted(before));
    expect(t.leaseCount).toBe(20_000);
  });

  it('save writes the file in slices and reads back whole; a save cancelled midway leaves the previous file', async () => {
    const file = new LeaseStateFile(dir);
    const small: SavedLeaseState = { index: 3, gapThrough: 0, leases: [{ leaseId: 1, ttlMs: 10 }], keys: [] };
    file.write(small);
    const t = bigTable(20_000, 1000);
    let table = t.snapshot();
    let slices = 0;
    expect(await file.save({ index: 9, gapThrough: 0, table }, 128 * 1024, () => ++slices > 1)).toBe(false);
    table.end();
    expect(file.read()).toEqual(small);
    table = t.snapshot();
    expect(await file.save({ index: 9, gapThrough: 1, table }, 128 * 1024, () => false)).toBe(true);
    table.end();
    expect(file.read()).toEqual({ index: 9, gapThrough: 1, ...t.content() });
  });
});
