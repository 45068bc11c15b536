import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CommandOp, encodeLeaseGrant, type Command } from '@cairn/protocol';
import { LeaseStateFile, LeaseStateFileCorruptionError, type SavedLeaseState } from './lease-state-file';
import { LeaseTable } from './lease-table';

const EMPTY = Buffer.alloc(0);
const opts = { leasesMax: 10, ttlKeysMax: 10, expiriesPerCheckMax: 10, expiryRetryMs: 500 };
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
});
