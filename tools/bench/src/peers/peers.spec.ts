import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ERRORS_IN_A_ROW_MAX, keyName, loadKeys, measure } from './harness';
import { ensurePeer, findBinary, type InstallEnv } from './install';
import { PEERS_DEFAULTS, PeersUsageError, parseClients, parseDuration, parseOnly, parsePeersArgs } from './options';
import { doorsOf, formatCell, formatLimits, formatRatio, formatTables, median, percentile, pointOf, ratio, type PointResult } from './report';
import { ServerExitedError, ServerGroup } from './procs';
import type { Conn } from './stores';

describe('parsePeersArgs', () => {
  it('defaults to every store at 1, 16 and 128 clients, 10 s per point, 2 rounds, 100,000 keys of 256 bytes', () => {
    expect(parsePeersArgs([])).toEqual({ only: ['cairn', 'etcd', 'nats', 'redis'], clients: [1, 16, 128], durationMs: 10_000, rounds: 2, keys: 100_000, valueBytes: 256, out: null, install: true, limits: true, cairnReplicas: 3, cairnStorageNodes: 2 });
    expect(PEERS_DEFAULTS.keys).toBe(100_000);
  });

  it('--quick is 1 client, 2 s, 1 round; explicit options override it', () => {
    expect(parsePeersArgs(['--quick'])).toMatchObject({ clients: [1], durationMs: 2000, rounds: 1 });
    expect(parsePeersArgs(['--quick', '--clients', '4', '--duration', '500ms', '--rounds', '3'])).toMatchObject({ clients: [4], durationMs: 500, rounds: 3 });
  });

  it('reads --only, --clients, --duration, --out, --keys, --value-bytes and --no-install', () => {
    const o = parsePeersArgs(['--only', 'redis,cairn', '--clients', '128,1,16,1', '--duration', '1m', '--out', 'r.json', '--keys', '1000', '--value-bytes', '64', '--no-install', '--no-limits']);
    expect(o).toEqual({ only: ['cairn', 'redis'], clients: [1, 16, 128], durationMs: 60_000, rounds: 2, keys: 1000, valueBytes: 64, out: 'r.json', install: false, limits: false, cairnReplicas: 3, cairnStorageNodes: 2 });
  });

  it("sets Cairn's topology: an odd replica count up to 7, up to 5 storage nodes", () => {
    expect(parsePeersArgs(['--cairn-replicas', '5', '--cairn-storage-nodes', '3'])).toMatchObject({ cairnReplicas: 5, cairnStorageNodes: 3 });
    expect(() => parsePeersArgs(['--cairn-replicas', '4'])).toThrow(/odd/);
    expect(() => parsePeersArgs(['--cairn-replicas', '9'])).toThrow(/\[1, 7\]/);
    expect(() => parsePeersArgs(['--cairn-storage-nodes', '0'])).toThrow(/--cairn-storage-nodes/);
  });

  it('refuses unknown stores, bad counts and durations, and unknown options, with the usage', () => {
    expect(() => parsePeersArgs(['--only', 'cairn,mongo'])).toThrow(/unknown store "mongo"/);
    expect(() => parsePeersArgs(['--clients', '0'])).toThrow(PeersUsageError);
    expect(() => parsePeersArgs(['--clients', '2000'])).toThrow(/\[1, 1024\]/);
    expect(() => parsePeersArgs(['--duration', 'soon'])).toThrow(/--duration/);
    expect(() => parsePeersArgs(['--rounds', '1.5'])).toThrow(/--rounds/);
    expect(() => parsePeersArgs(['--frobnicate'])).toThrow(/unknown option.*\n.*Usage/s);
  });

  it('--help is a usage error marked help (exit 0)', () => {
    try {
      parsePeersArgs(['--help']);
      throw new Error('no throw');
    } catch (e) {
      expect(e).toBeInstanceOf(PeersUsageError);
      expect((e as PeersUsageError).help).toBe(true);
      expect((e as Error).message).toMatch(/--only <stores>/);
    }
  });

  it('parses the pieces', () => {
    expect(parseDuration('10s')).toBe(10_000);
    expect(parseDuration('2')).toBe(2000);
    expect(parseDuration('1.5s')).toBe(1500);
    expect(() => parseDuration('50ms')).toThrow(PeersUsageError);
    expect(parseOnly(' NATS , etcd ')).toEqual(['etcd', 'nats']);
    expect(() => parseOnly(',')).toThrow(/no store/);
    expect(parseClients('16,1')).toEqual([1, 16]);
  });
});

describe('median, percentile, ratio', () => {
  it('median: the middle value, the mean of the middle two for an even count', () => {
    expect(median([3])).toBe(3);
    expect(median([5, 1, 3])).toBe(3);
    expect(median([400, 200])).toBe(300);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(() => median([])).toThrow(RangeError);
  });

  it('percentile: nearest rank', () => {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(xs, 50)).toBe(50);
    expect(percentile(xs, 99)).toBe(99);
    expect(percentile(xs, 100)).toBe(100);
    expect(percentile([7], 50)).toBe(7);
    expect(percentile([1, 2, 3], 50)).toBe(2);
    expect(() => percentile([], 50)).toThrow(RangeError);
    expect(() => percentile([1], 0)).toThrow(RangeError);
  });

  it("ratio: Cairn's over the peer's, null when either is missing or the peer measured 0", () => {
    expect(ratio(300, 150)).toBe(2);
    expect(ratio(100, 0)).toBeNull();
    expect(ratio(undefined, 10)).toBeNull();
    expect(ratio(10, undefined)).toBeNull();
  });

  it('pointOf folds rounds into medians and sums errors', () => {
    const p = pointOf('etcd', 'put', 16, [
      { opsPerSec: 100, p50Ms: 2, p99Ms: 9, errors: 1 },
      { opsPerSec: 300, p50Ms: 4, p99Ms: 11, errors: 2 },
    ]);
    expect(p).toMatchObject({ opsPerSec: 200, p50Ms: 3, p99Ms: 10, errors: 3 });
    expect(p.firstError).toBeUndefined();
  });
});

function point(door: PointResult['door'], workload: PointResult['workload'], clients: number, opsPerSec: number, p50Ms: number, errors = 0): PointResult {
  return pointOf(door, workload, clients, [{ opsPerSec, p50Ms, p99Ms: p50Ms * 3, errors }]);
}

describe('table', () => {
  it('formats cells and ratios', () => {
    expect(formatCell(point('etcd', 'put', 1, 1439.4, 0.634))).toBe('1,439 (0.63)');
    expect(formatCell(point('etcd', 'put', 1, 12.6, 80, 2))).toBe('13 (80.00) !');
    expect(formatCell(undefined)).toBe('—');
    expect(formatRatio(0.4687)).toBe('0.47×');
    expect(formatRatio(12.34)).toBe('12.3×');
    expect(formatRatio(null)).toBe('—');
  });

  it('prints ops/s (p50) per door and point, then TLV over each peer and RESP over TLV', () => {
    const results = [
      point('cairn-tlv', 'put', 1, 216, 3.97),
      point('cairn-resp', 'put', 1, 264, 3.5),
      point('etcd', 'put', 1, 461, 1.97),
      point('redis', 'put', 1, 3310, 0.27),
      point('cairn-tlv', 'get', 1, 483, 1.8),
      point('cairn-resp', 'get', 1, 497, 1.7),
      point('etcd', 'get', 1, 760, 1.15),
      point('cairn-tlv', 'staleGet', 1, 1342, 0.7),
      point('etcd', 'staleGet', 1, 1068, 0.77),
      point('redis', 'staleGet', 1, 8533, 0.11),
    ];
    const doors = doorsOf(['cairn', 'etcd', 'redis']);
    expect(doors).toEqual(['cairn-tlv', 'cairn-resp', 'etcd', 'redis']);
    expect(formatTables(results, doors, [1, 16])).toBe(
      [
        '| ops/s (p50 ms) | Cairn TLV | Cairn RESP | etcd | Redis AOF always |',
        '| --- | ---: | ---: | ---: | ---: |',
        '| put, 1 client | 216 (3.97) | 264 (3.50) | 461 (1.97) | 3,310 (0.27) |',
        '| linearizable get, 1 client | 483 (1.80) | 497 (1.70) | 760 (1.15) | — |',
        '| stale/serializable get, 1 client | 1,342 (0.70) | — | 1,068 (0.77) | 8,533 (0.11) |',
        '',
        "| Cairn's ratio (ops/s) | TLV / etcd | TLV / Redis AOF always | RESP / TLV |",
        '| --- | ---: | ---: | ---: |',
        '| put, 1 client | 0.47× | 0.07× | 1.22× |',
        '| linearizable get, 1 client | 0.64× | — | 1.03× |',
        '| stale/serializable get, 1 client | 1.26× | 0.16× | — |',
        '',
      ].join('\n'),
    );
  });

  it('prints the limits measured, one line each', () => {
    expect(formatLimits({})).toBe('');
    expect(formatLimits({ fsync: { opsPerSec: 3740.2, p50Ms: 0.25, p99Ms: 0.8 }, pingPong: { opsPerSec: 9214, p50Ms: 0.095, p99Ms: 0.3 } })).toBe(
      'limit: 4 KiB append + fdatasync, one at a time: 3,740/s, p50 0.25 ms, p99 0.80 ms\nlimit: 64-byte TCP ping-pong between two Node processes: 9,214/s, p50 0.10 ms, p99 0.30 ms\n',
    );
  });

  it('prints no ratio table without Cairn', () => {
    const out = formatTables([point('nats', 'put', 16, 6265, 2.4)], doorsOf(['nats']), [16]);
    expect(out).toBe('| ops/s (p50 ms) | NATS KV R3 |\n| --- | ---: |\n| put, 16 clients | 6,265 (2.40) |\n');
  });
});

describe('ensurePeer', () => {
  const pkg = { binary: 'etcd', aptPackage: 'etcd-server' };
  function env(o: { have?: string[]; root?: boolean; aptCodes?: number[] }) {
    const have = new Set(o.have ?? []);
    const calls: string[][] = [];
    const codes = [...(o.aptCodes ?? [])];
    const e: InstallEnv = {
      find: (n) => (have.has(n) ? `/usr/bin/${n}` : null),
      isRoot: o.root ?? true,
      aptGet: (args) => {
        calls.push(args);
        const code = codes.shift() ?? 0;
        if (code === 0 && args[0] === 'install') have.add('etcd');
        return code;
      },
      log: () => undefined,
    };
    return { e, calls };
  }

  it('uses a binary already there', () => {
    const { e, calls } = env({ have: ['etcd'] });
    expect(ensurePeer(pkg, true, e)).toEqual({ path: '/usr/bin/etcd', installed: false });
    expect(calls).toEqual([]);
  });

  it('installs a missing one with apt-get as root', () => {
    const { e, calls } = env({ have: ['apt-get'] });
    expect(ensurePeer(pkg, true, e)).toEqual({ path: '/usr/bin/etcd', installed: true });
    expect(calls).toEqual([['install', '-y', 'etcd-server']]);
  });

  it('runs apt-get update and installs again when the first install fails', () => {
    const { e, calls } = env({ have: ['apt-get'], aptCodes: [100, 0, 0] });
    expect(ensurePeer(pkg, true, e)).toEqual({ path: '/usr/bin/etcd', installed: true });
    expect(calls).toEqual([['install', '-y', 'etcd-server'], ['update'], ['install', '-y', 'etcd-server']]);
  });

  it('skips, naming the command, without apt-get, when not root, with --no-install, or when the install fails', () => {
    expect(ensurePeer(pkg, true, env({}).e)).toEqual({ skipped: expect.stringMatching(/apt-get is not available.*etcd-server/) });
    expect(ensurePeer(pkg, true, env({ have: ['apt-get'], root: false }).e)).toEqual({ skipped: expect.stringMatching(/not root: run `sudo apt-get install -y etcd-server`/) });
    expect(ensurePeer(pkg, false, env({ have: ['apt-get'] }).e)).toEqual({ skipped: expect.stringMatching(/--no-install/) });
    expect(ensurePeer(pkg, true, env({ have: ['apt-get'], aptCodes: [100, 100] }).e)).toEqual({ skipped: expect.stringMatching(/failed/) });
  });

  it('findBinary looks on PATH, then in the system directories', () => {
    expect(findBinary('sh', '')).toMatch(/\/sh$/);
    expect(findBinary('no-such-binary-cairn', '/nonexistent')).toBeNull();
  });
});

describe('harness', () => {
  it('keys are key_ and 12 digits', () => {
    expect(keyName(42)).toBe('key_000000000042');
  });

  it('loadKeys puts every key of the key space exactly once', async () => {
    const seen: string[] = [];
    const conns: Conn[] = [0, 1, 2].map(() => ({ op: async (w, k) => void seen.push(`${w}:${k}`), close: async () => undefined }));
    await loadKeys(conns, 1000, Buffer.from('v'));
    expect(seen).toHaveLength(1000);
    expect(new Set(seen)).toEqual(new Set(Array.from({ length: 1000 }, (_, i) => `put:${keyName(i)}`)));
  });

  it('loadKeys rejects with the first failure', async () => {
    const conns: Conn[] = [{ op: async () => Promise.reject(new Error('refused')), close: async () => undefined }];
    await expect(loadKeys(conns, 10, Buffer.from('v'))).rejects.toThrow('refused');
  });

  it('measure: a client stops after ERRORS_IN_A_ROW_MAX failures in a row, each counted', async () => {
    const conns: Conn[] = [0, 1].map(() => ({ op: async () => Promise.reject(new Error('gone')), close: async () => undefined }));
    const m = await measure(conns, 'get', 10, Buffer.from('v'), 3_600_000);
    expect(m.result).toMatchObject({ opsPerSec: 0, errors: 2 * ERRORS_IN_A_ROW_MAX, p50Ms: 0 });
    expect(m.firstError).toBe('gone');
  });
});

describe('ServerGroup', () => {
  it('a server that exits fails the wait with its exit and the last lines of its log', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-'));
    const group = new ServerGroup();
    try {
      group.start('exiter', process.execPath, ['-e', "console.log('line 1'); console.error('it broke'); process.exit(3)"], path.join(dir, 'exiter.log'));
      const err = await group.waitUntil('exiter', async () => false, 3_600_000).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ServerExitedError);
      expect((err as Error).message).toBe('exiter exited (code 3); last lines of its log:\nline 1\nit broke');
    } finally {
      await group.stopAll();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
