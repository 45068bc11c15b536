import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CompareResult, CompareTarget, TxnOpFlags, TxnOpKind, type TxnOpResponse, type TxnRequest } from '@cairn/protocol';
import type { ClientWatchOptions, RangeReadOptions, ScanOptions, WatchItem } from '@cairn/client';
import { run, type CliClient, type CliDeps, type ConnectOptions } from './cli';
import { formatStatus, silentMembers, summarizePings, table, valueJson } from './format';
import { parseEndpoints, parseHostPort, resolveEndpoints } from './gateway';

const coded = (code: string, extra: object = {}) => Object.assign(new Error(code), { code, ...extra });

class Sink {
  chunks: string[] = [];
  isTTY = false;
  write(s: string | Uint8Array) {
    this.chunks.push(typeof s === 'string' ? s : Buffer.from(s).toString('utf8'));
    return true;
  }
  get text() {
    return this.chunks.join('');
  }
}

function harness(opts: { watchItems?: WatchItem[]; watchError?: Error; connectError?: Error; setErrors?: Error[]; setAlwaysFails?: Error; getError?: Error; endpointsUp?: boolean[]; txnAnswer?: { revision: number; succeeded: boolean; responses: TxnOpResponse[] } } = {}) {
  const data = new Map<string, string>();
  /** Each key's mod revision (for ifRevision). */
  const revs = new Map<string, number>();
  const txns: TxnRequest[] = [];
  const watches: ClientWatchOptions[] = [];
  let revision = 0;
  const connects: ConnectOptions[] = [];
  let clock = 0;
  const rangeQueries: (RangeReadOptions & ScanOptions)[] = [];
  /** The keys of a range in order, as a gateway reads them (keys compared as bytes; ASCII here). */
  const inRange = (o: RangeReadOptions) => {
    const keys = [...data.keys()].filter((k) => (o.prefix !== undefined ? k.startsWith(String(o.prefix)) : k >= String(o.start ?? '') && (o.end === undefined || k < String(o.end)))).sort();
    return o.reverse ? keys.reverse() : keys;
  };
  const item = (k: string, keysOnly?: boolean) => ({ key: Buffer.from(k), value: Buffer.from(keysOnly ? '' : data.get(k)!), revision: revs.get(k) ?? 1, createRevision: 1, version: 1 });
  /** Live leases: id → { ttlMs, keys } (the lease commands and put --lease). */
  const leases = new Map<number, { ttlMs: number; keys: string[] }>();
  const setOpts: { lease?: number; ttlMs?: number }[] = [];
  const notLive = (id: number) => coded('LEASE_NOT_FOUND', { message: `lease ${id} not found` });
  const client: CliClient = {
    async range(o) {
      rangeQueries.push(o);
      return { revision, count: inRange(o).length, more: false, token: null, items: [] };
    },
    // Pages of 2 keys, so that every range of more than 2 keys is read in several pages.
    async *pages(o) {
      rangeQueries.push(o);
      const keys = inRange(o).slice(0, o.keysMax ?? Infinity);
      const total = inRange(o).length;
      for (let i = 0; i === 0 || i < keys.length; i += 2) {
        const items = keys.slice(i, i + 2);
        const more = i + items.length < total;
        yield { revision: revision + i, count: total - i, more, token: more ? Buffer.from('t') : null, items: items.map((k) => item(k, o.keysOnly)) };
      }
    },
    async set(k, v, o = {}) {
      const e = opts.setErrors?.shift() ?? opts.setAlwaysFails;
      if (e) throw e;
      setOpts.push({ lease: o.lease, ttlMs: o.ttlMs });
      if (o.lease !== undefined && !leases.has(o.lease)) throw notLive(o.lease);
      if (o.lease !== undefined) leases.get(o.lease)!.keys.push(k);
      ++revision;
      if ((o.ifAbsent && data.has(k)) || (o.ifPresent && !data.has(k))) return { revision, applied: false };
      if (o.ifRevision !== undefined && (revs.get(k) ?? 0) !== o.ifRevision) return { revision, applied: false };
      data.set(k, v);
      revs.set(k, revision);
      return { revision, applied: true };
    },
    async commitTxn(request) {
      // A write like set: the same scripted failures; a txn without compares applies its puts (import's batches).
      const e = opts.setErrors?.shift() ?? opts.setAlwaysFails;
      if (e) throw e;
      txns.push(request);
      if (opts.txnAnswer) return opts.txnAnswer;
      ++revision;
      if (request.compares.length === 0) {
        for (const o of request.success) {
          if (o.kind !== TxnOpKind.Put) continue;
          data.set(Buffer.from(o.key).toString(), Buffer.from(o.value ?? []).toString());
          revs.set(Buffer.from(o.key).toString(), revision);
        }
      }
      return { revision, succeeded: true, responses: [] };
    },
    async get(k) {
      if (opts.getError) throw opts.getError;
      const v = data.get(k);
      return v === undefined ? null : { value: Buffer.from(v), revision: 1, createRevision: 1, version: 1 };
    },
    async del(k, o = {}) {
      ++revision;
      if (o.ifRevision !== undefined && (revs.get(k) ?? 0) !== o.ifRevision) return { revision, applied: false };
      data.delete(k);
      revs.delete(k);
      return { revision, applied: true };
    },
    async ping() {
      return undefined;
    },
    async *watch(o) {
      watches.push(o);
      yield* opts.watchItems ?? [];
      if (opts.watchError) throw opts.watchError;
      // Then nothing happens until the user interrupts.
      await new Promise((_, reject) => o.signal?.addEventListener('abort', () => reject(coded('ABORT_ERR'))));
    },
    async status() {
      return {
        gateway: { id: 'g1' },
        leaderId: 'c2',
        term: 3,
        consensus: [
          { id: 'c2', role: 'leader', term: 3, commitIndex: 10, lastIndex: 10, ageMs: 12 },
          { id: 'c1', role: 'follower', term: 3, commitIndex: 9, lastIndex: 10, ageMs: 40 },
        ],
        storage: [{ id: 's1', appliedIndex: 9, keys: 4, ageMs: 5 }],
      };
    },
    async leaseGrant(ttlMs, o = {}) {
      const leaseId = o.id ?? 100 + leases.size;
      if (leases.has(leaseId)) throw coded('LEASE_EXISTS');
      leases.set(leaseId, { ttlMs, keys: [] });
      return { leaseId, ttlMs, revision: ++revision };
    },
    async leaseRevoke(id) {
      const l = leases.get(id);
      if (!l) throw notLive(id);
      for (const k of l.keys) data.delete(k);
      leases.delete(id);
      return { revision: ++revision };
    },
    async leaseKeepAliveOnce(id) {
      const l = leases.get(id);
      if (!l) throw notLive(id);
      return l.ttlMs;
    },
    async leaseTimeToLive(id, o = {}) {
      const l = leases.get(id);
      return l ? { ttlMs: l.ttlMs, remainingMs: l.ttlMs - 1, keys: o.keys ? l.keys.map((k) => Buffer.from(k)) : [], more: false } : null;
    },
    async leases() {
      return [...leases.keys()];
    },
    keepAlive(id, o = {}) {
      // Renews twice, then the lease is lost (revoked elsewhere).
      const l = leases.get(id);
      if (l) o.onRenewed?.(l.ttlMs);
      if (l) o.onRenewed?.(l.ttlMs);
      return { closed: Promise.reject(coded('LEASE_LOST')) };
    },
    close: () => undefined,
    ...(opts.endpointsUp ? { stats: () => ({ gateways: opts.endpointsUp!.map((up, i) => ({ host: '127.0.0.1', port: 7380 + i, up })) }) } : {}),
  };
  const stdout = new Sink();
  const stderr = new Sink();
  const deps: CliDeps = {
    connect: async (o) => {
      connects.push(o);
      if (opts.connectError) throw opts.connectError;
      return client;
    },
    stdout,
    stderr,
    env: {},
    // A fake clock that only backoff waits advance: retry deadlines do not depend on machine speed.
    sleep: async (ms: number) => {
      clock += Math.max(1, ms);
    },
    now: () => clock,
    progress: () => ({ update: () => undefined, stop: () => undefined }),
  };
  const cairn = (...args: string[]) => run(['node', 'cairn', ...args], deps);
  return { data, connects, stdout, stderr, cairn, txns, deps, watches, rangeQueries, leases, setOpts };
}

function tsvFile(text: string): string {
  const f = join(mkdtempSync(join(tmpdir(), 'cairn-')), 'rows.tsv');
  writeFileSync(f, text);
  return f;
}

describe('cairn lease', () => {
  it('grant prints the id; put --lease / --ttl attach and expire the key; ttl, list, keepalive --once, revoke; a lease not live exits 1', async () => {
    const h = harness();
    expect(await h.cairn('lease', 'grant', '10')).toBe(0);
    expect(h.stdout.text).toBe('100\n');
    expect(h.leases.get(100)?.ttlMs).toBe(10_000);
    expect(await h.cairn('put', '--lease', '100', '--ttl', '500ms', 'svc', 'a')).toBe(0);
    expect(h.setOpts).toEqual([{ lease: 100, ttlMs: 500 }]);
    expect(await h.cairn('lease', 'ttl', '100', '--keys')).toBe(0);
    expect(h.stdout.text).toContain('lease 100 granted with TTL(10s), remaining(10s), attached keys([svc])');
    expect(await h.cairn('lease', 'list')).toBe(0);
    expect(await h.cairn('lease', 'keepalive', '--once', '100')).toBe(0);
    expect(h.stdout.text).toContain('lease 100 keepalived with TTL(10s)');
    expect(await h.cairn('--json', 'lease', 'revoke', '100')).toBe(0);
    expect(h.data.has('svc')).toBe(false);
    expect(await h.cairn('lease', 'revoke', '100')).toBe(1);
    expect(h.stderr.text).toContain('lease 100 not found');
    expect(await h.cairn('lease', 'ttl', '100')).toBe(1);
    expect(await h.cairn('put', '--lease', '100', 'k', 'v')).toBe(1);
    expect(await h.cairn('lease', 'grant', '--id', '7', '1s')).toBe(0);
    expect(await h.cairn('lease', 'grant', '--id', '7', '1s')).toBe(6);
  });

  it('keepalive prints each renewal and exits 1 when the lease is lost; bad ids and TTLs are usage errors', async () => {
    const h = harness();
    await h.cairn('lease', 'grant', '2s');
    expect(await h.cairn('lease', 'keepalive', '100')).toBe(1);
    expect(h.stdout.text.match(/keepalived with TTL\(2s\)/g)).toHaveLength(2);
    expect(await h.cairn('lease', 'revoke', '0')).toBe(2);
    expect(await h.cairn('lease', 'grant', '10x')).toBe(2);
    expect(await h.cairn('put', '--ttl', '-1', 'k', 'v')).toBe(2);
  });
});

describe('cairn commands', () => {
  it('put prints the revision, get prints the raw value, del deletes', async () => {
    const h = harness();
    expect(await h.cairn('put', 'k', 'v 1')).toBe(0);
    expect(h.stdout.text).toBe('1\n');
    expect(await h.cairn('get', 'k')).toBe(0);
    expect(h.stdout.text).toBe('1\nv 1');
    expect(await h.cairn('del', 'k')).toBe(0);
    expect(h.data.has('k')).toBe(false);
  });

  it('put --nx / --xx write only when the key is absent / present; exit 6 when not applied', async () => {
    const h = harness();
    expect(await h.cairn('put', '--xx', 'lock', 'a')).toBe(6);
    expect(h.stderr.text).toContain('not applied: lock does not exist (--xx)');
    expect(await h.cairn('put', '--nx', 'lock', 'a')).toBe(0);
    expect(h.stdout.text).toBe('2\n');
    expect(await h.cairn('put', 'lock', 'b', '--nx')).toBe(6);
    expect(h.stderr.text).toContain('not applied: lock exists (--nx); condition evaluated at revision 3');
    expect(await h.cairn('put', '--xx', 'lock', 'c')).toBe(0);
    expect(h.data.get('lock')).toBe('c');
    expect(await h.cairn('put', '--nx', '--xx', 'lock', 'd')).toBe(2);
  });

  it('put --if-rev N writes only when the key\'s mod revision is N (0: absent); exit 6 with the reason when not applied', async () => {
    const h = harness();
    expect(await h.cairn('put', '--if-rev', '0', 'k', 'a')).toBe(0);
    expect(h.stdout.text).toBe('1\n');
    expect(await h.cairn('put', '--if-rev', '0', 'k', 'b')).toBe(6);
    expect(h.stderr.text).toContain('not applied: k exists (--if-rev 0); condition evaluated at revision 2');
    expect(await h.cairn('put', 'k', 'c', '--if-rev', '1')).toBe(0);
    expect(h.data.get('k')).toBe('c');
    expect(await h.cairn('--json', 'put', '--if-rev', '1', 'k', 'd')).toBe(6);
    expect(JSON.parse(h.stdout.chunks.pop()!)).toEqual({ key: 'k', revision: 4, applied: false });
    expect(h.stderr.text).toContain('not applied: k has another mod revision than 1, or does not exist (--if-rev 1); condition evaluated at revision 4');
    expect(h.data.get('k')).toBe('c');
    expect(await h.cairn('put', '--if-rev', 'x1', 'k', 'e')).toBe(2);
    expect(await h.cairn('put', '--if-rev', '-1', 'k', 'e')).toBe(2);
    expect(await h.cairn('put', '--if-rev', '3', '--nx', 'k', 'e')).toBe(2);
    expect(h.data.get('k')).toBe('c');
  });

  it('del --if-rev N deletes only when the key\'s mod revision is N; exit 6 when not', async () => {
    const h = harness();
    expect(await h.cairn('put', 'k', 'a')).toBe(0);
    expect(await h.cairn('del', '--if-rev', '5', 'k')).toBe(6);
    expect(h.stderr.text).toContain('not deleted: k has another mod revision than 5, or does not exist (--if-rev 5); condition evaluated at revision 2');
    expect(h.data.get('k')).toBe('a');
    expect(await h.cairn('--json', 'del', '--if-rev', '1', 'k')).toBe(0);
    expect(JSON.parse(h.stdout.chunks.pop()!)).toEqual({ key: 'k', revision: 3, applied: true });
    expect(h.data.has('k')).toBe(false);
  });

  it('txn --file: compares, success and failure ops as etcdctl reads them, one Txn; prints SUCCESS / FAILURE and the responses', async () => {
    const kv = (key: string, value: string, rev: number) => ({ key: Buffer.from(key), value: Buffer.from(value), modRevision: rev, createRevision: 2, version: 3 });
    const h = harness({
      txnAnswer: {
        revision: 9,
        succeeded: true,
        responses: [
          { kind: TxnOpKind.Put, prev: kv('lock', 'old', 5) },
          { kind: TxnOpKind.Range, count: 2, more: false, kvs: [kv('cfg/a', '1', 6), kv('cfg/b', '2', 7)] },
          { kind: TxnOpKind.Delete, deleted: 4, prev: [] },
        ],
      },
    });
    const file = tsvFile('mod("lock") = "5"\nvalue("owner") != "me"\n\nput lock me --prev-kv\nget cfg/ --prefix\ndel tmp/ --prefix\n\nget lock\n');
    expect(await h.cairn('txn', '--file', file)).toBe(0);
    expect(h.txns).toEqual([
      {
        compares: [
          { key: Buffer.from('lock'), target: CompareTarget.ModRevision, result: CompareResult.Equal, operand: 5 },
          { key: Buffer.from('owner'), target: CompareTarget.Value, result: CompareResult.NotEqual, value: Buffer.from('me') },
        ],
        success: [
          { kind: TxnOpKind.Put, key: Buffer.from('lock'), value: Buffer.from('me'), flags: TxnOpFlags.PrevKv },
          { kind: TxnOpKind.Range, key: Buffer.from('cfg/'), end: Buffer.alloc(0), flags: TxnOpFlags.Prefix, limit: 0 },
          { kind: TxnOpKind.Delete, key: Buffer.from('tmp/'), end: Buffer.alloc(0), flags: TxnOpFlags.Prefix },
        ],
        failure: [{ kind: TxnOpKind.Range, key: Buffer.from('lock'), end: Buffer.alloc(0), flags: 0, limit: 0 }],
      },
    ]);
    expect(h.stdout.text).toBe('SUCCESS\n\nOK\nlock\nold\n\ncfg/a\n1\ncfg/b\n2\n\n4\n');
    expect(await h.cairn('--json', 'txn', '-f', file)).toBe(0);
    expect(JSON.parse(h.stdout.chunks.pop()!)).toEqual({
      succeeded: true,
      revision: 9,
      responses: [
        { put: { prevKv: { key: 'lock', value: 'old', revision: 5, createRevision: 2, version: 3 } } },
        { range: { count: 2, more: false, kvs: [{ key: 'cfg/a', value: '1', revision: 6, createRevision: 2, version: 3 }, { key: 'cfg/b', value: '2', revision: 7, createRevision: 2, version: 3 }] } },
        { delete: { deleted: 4, prevKvs: [] } },
      ],
    });
  });

  it('txn from standard input: FAILURE with the failure branch; on a terminal, prompts on stderr and stops after the third section', async () => {
    const h = harness({ txnAnswer: { revision: 4, succeeded: false, responses: [{ kind: TxnOpKind.Range, count: 1, more: false, kvs: [{ key: Buffer.from('lock'), value: Buffer.from('you'), modRevision: 3, createRevision: 3, version: 1 }] }] } });
    const feed = (lines: string[], isTTY: boolean) => {
      h.deps.stdin = {
        isTTY,
        async *lines() {
          yield* lines;
        },
      };
    };
    feed(['create("lock") = "0"', '', 'put lock me', '', 'get lock'], false);
    expect(await h.cairn('txn')).toBe(0);
    expect(h.stdout.text).toBe('FAILURE\n\nlock\nyou\n');
    expect(h.stderr.text).toBe('');
    feed(['version("lock") > 0', '', 'put lock me', '', 'get lock', '', 'never read'], true);
    expect(await h.cairn('txn')).toBe(0);
    expect(h.stderr.text).toBe('compares:\n\nsuccess requests (get, put, del):\n\nfailure requests (get, put, del):\n');
    expect(h.txns[1].compares).toEqual([{ key: Buffer.from('lock'), target: CompareTarget.Version, result: CompareResult.Greater, operand: 0 }]);
  });

  it('txn: a malformed line exits 2 naming it, before connecting', async () => {
    const h = harness();
    const file = tsvFile('mod("k") = "1"\n\nput k\n');
    expect(await h.cairn('txn', '--file', file)).toBe(2);
    expect(h.stderr.text).toContain(`${file}:3: put takes KEY VALUE`);
    expect(await h.cairn('txn', '--file', '/nonexistent/txn')).toBe(2);
    expect(h.connects).toHaveLength(0);
  });

  it('watch prints each change as etcdctl watch does (--prev-kv, --json) and exits 0 on Ctrl-C; COMPACTED exits 5; KEY or --prefix', async () => {
    const ev = (type: 'put' | 'delete', key: string, value: string, rev: number, prev: string | null): WatchItem => ({ type, key: Buffer.from(key), value: Buffer.from(value), modRevision: rev, createRevision: type === 'put' ? 3 : 0, version: type === 'put' ? 1 : 0, prevValue: prev === null ? null : Buffer.from(prev), prevOmitted: false });
    const items = [ev('put', 'p/a', '1', 3, null), { type: 'progress', revision: 4 } as WatchItem, ev('put', 'p/a', '2', 5, '1'), ev('delete', 'p/a', '', 6, '2')];
    const h = harness({ watchItems: items });
    const ac = new AbortController();
    h.deps.interrupted = () => ac.signal;
    const code = h.cairn('watch', '--prefix', 'p/', '--rev', '3', '--prev-kv');
    await new Promise<void>((r) => {
      const check = () => (h.stdout.text.includes('DELETE') ? r() : setImmediate(check));
      check();
    });
    ac.abort();
    expect(await code).toBe(0);
    expect(h.watches[0]).toMatchObject({ prefix: 'p/', startRevision: 3, prevValue: true });
    expect(h.stdout.text).toBe('PUT\np/a\n1\nPUT\np/a\n1\np/a\n2\nDELETE\np/a\n2\np/a\n\n');

    const j = harness({ watchItems: items.slice(0, 1), watchError: coded('COMPACTED', { oldestRevision: 9 }) });
    expect(await j.cairn('--json', 'watch', 'p/a')).toBe(5);
    expect(j.watches[0]).toMatchObject({ key: 'p/a', startRevision: undefined, prevValue: false });
    expect(JSON.parse(j.stdout.text)).toEqual({ type: 'PUT', key: 'p/a', value: '1', modRevision: 3, createRevision: 3, version: 1 });
    expect(j.stderr.text).toContain('COMPACTED');
    expect(await j.cairn('watch')).toBe(2);
    expect(await j.cairn('watch', 'k', '--prefix', 'p')).toBe(2);
    expect(await j.cairn('watch', 'k', '--rev', '0')).toBe(2);
  });

  it('get --prefix prints each key and its value in key order over several pages; --keys-only, --count-only, --limit, --reverse, --stale', async () => {
    const h = harness();
    for (const k of ['user/b', 'user/a', 'user/c', 'other', 'user/d', 'userx']) await h.cairn('put', k, `v-${k}`);
    h.stdout.chunks.length = 0;
    expect(await h.cairn('get', '--prefix', 'user/')).toBe(0);
    expect(h.stdout.text).toBe('user/a\nv-user/a\nuser/b\nv-user/b\nuser/c\nv-user/c\nuser/d\nv-user/d\n');
    // etcdctl's form: the key is the prefix
    h.stdout.chunks.length = 0;
    expect(await h.cairn('get', 'user/', '--prefix', '--keys-only', '--limit', '3', '--reverse')).toBe(0);
    expect(h.stdout.text).toBe('user/d\nuser/c\nuser/b\n');
    expect(h.rangeQueries.at(-1)).toMatchObject({ prefix: 'user/', keysMax: 3, keysOnly: true, reverse: true, stale: false });
    h.stdout.chunks.length = 0;
    expect(await h.cairn('get', '--prefix', 'user/', '--count-only', '--stale', '--limit', '1')).toBe(0);
    expect(h.stdout.text).toBe('4\n');
    expect(h.rangeQueries.at(-1)).toMatchObject({ prefix: 'user/', countOnly: true, stale: true });
    expect(h.rangeQueries.at(-1)).not.toHaveProperty('keysMax');
    h.stdout.chunks.length = 0;
    expect(await h.cairn('get', '--prefix', 'nothing/')).toBe(0);
    expect(h.stdout.text).toBe('');
  });

  it('get --from A --to B reads [A, B); --json is one object with every kv, count, more, revision, pages', async () => {
    const h = harness();
    for (const k of ['a', 'b', 'c', 'd', 'e']) await h.cairn('put', k, `v${k}`);
    h.stdout.chunks.length = 0;
    expect(await h.cairn('get', '--from', 'b', '--to', 'e')).toBe(0);
    expect(h.stdout.text).toBe('b\nvb\nc\nvc\nd\nvd\n');
    h.stdout.chunks.length = 0;
    expect(await h.cairn('get', '--from', 'b', '--json', '--limit', '3')).toBe(0);
    const j = JSON.parse(h.stdout.text);
    expect(j).toMatchObject({ count: 4, more: true, pages: 2 });
    expect(j.kvs).toEqual([
      { key: 'b', value: 'vb', revision: 2, createRevision: 1, version: 1 },
      { key: 'c', value: 'vc', revision: 3, createRevision: 1, version: 1 },
      { key: 'd', value: 'vd', revision: 4, createRevision: 1, version: 1 },
    ]);
    h.stdout.chunks.length = 0;
    expect(await h.cairn('get', '--from', 'a', '--to', 'c', '--count-only', '--json')).toBe(0);
    expect(JSON.parse(h.stdout.text)).toEqual({ count: 2, revision: 5 });
  });

  it('ls [PREFIX] lists keys, one a line (every key without a prefix); --json lists them', async () => {
    const h = harness();
    for (const k of ['cfg/b', 'cfg/a', 'x']) await h.cairn('put', k, 'v');
    h.stdout.chunks.length = 0;
    expect(await h.cairn('ls', 'cfg/')).toBe(0);
    expect(h.stdout.text).toBe('cfg/a\ncfg/b\n');
    h.stdout.chunks.length = 0;
    expect(await h.cairn('ls')).toBe(0);
    expect(h.stdout.text).toBe('cfg/a\ncfg/b\nx\n');
    h.stdout.chunks.length = 0;
    expect(await h.cairn('ls', '--json', '--limit', '2', '--stale')).toBe(0);
    expect(JSON.parse(h.stdout.text)).toMatchObject({ keys: ['cfg/a', 'cfg/b'], count: 3, more: true });
    expect(h.rangeQueries.at(-1)).toMatchObject({ prefix: '', keysMax: 2, keysOnly: true, stale: true });
  });

  it.each([
    [['get', 'k', '--limit', '2'], /--limit needs a range/],
    [['get', '--keys-only', 'k'], /--keys-only needs a range/],
    [['get'], /needs a KEY/],
    [['get', '--prefix', 'a', '--from', 'b'], /--prefix excludes/],
    [['get', 'k', '--from', 'b'], /not both/],
    [['get', '--prefix', 'a', '--keys-only', '--count-only'], /exclude each other/],
    [['get', '--prefix', 'a', '--limit', '0'], /--limit must be a positive integer/],
  ])('get %j is a usage error (exit 2) before connecting', async (args, message) => {
    const h = harness();
    expect(await h.cairn(...args)).toBe(2);
    expect(h.stderr.text).toMatch(message);
    expect(h.rangeQueries).toHaveLength(0);
  });

  it('get of a missing key exits 1', async () => {
    const h = harness();
    expect(await h.cairn('get', 'nope')).toBe(1);
    expect(h.stderr.text).toContain('key not found: nope');
  });

  it('usage errors exit 2', async () => {
    const h = harness();
    expect(await h.cairn('put', 'only-key')).toBe(2);
    expect(await h.cairn('frobnicate')).toBe(2);
    expect(await h.cairn('--gateway', 'no-port', 'get', 'k')).toBe(2);
    expect(await h.cairn('ping', '--count', '0')).toBe(2);
    expect(await h.cairn('import', '/nonexistent/file.tsv')).toBe(2);
    expect(h.connects).toHaveLength(0);
  });

  it('--help exits 0 and documents the exit codes', async () => {
    const h = harness();
    expect(await h.cairn('--help')).toBe(0);
    expect(h.stdout.text).toContain('Exit codes:');
    expect(h.stdout.text).toContain('4  verify found missing or mismatched keys');
  });

  it('cannot connect exits 3', async () => {
    const h = harness({ connectError: coded('ECONNREFUSED') });
    expect(await h.cairn('get', 'k')).toBe(3);
  });

  it('a non-retryable server error exits 5', async () => {
    const h = harness({ setErrors: [coded('VALUE_TOO_LARGE', { retryable: false })] });
    expect(await h.cairn('put', 'k', 'v')).toBe(5);
    expect(h.stderr.text).toContain('VALUE_TOO_LARGE');
  });

  it('passes --gateway and --timeout to connect', async () => {
    const h = harness();
    await h.cairn('--gateway', '10.0.0.5:9000', '--timeout', '250', 'ping', '-n', '2');
    expect(h.connects[0]).toMatchObject({ endpoints: [{ host: '10.0.0.5', port: 9000 }], requestTimeoutMs: 250, retries: 'pool' });
    expect(h.stdout.text).toMatch(/^ping 1: \d+ µs\nping 2: \d+ µs\n2 pings: min=\d+µs avg=\d+µs p50=\d+µs max=\d+µs\n$/);
  });

  it('status prints the leader and both tables', async () => {
    const h = harness();
    expect(await h.cairn('status')).toBe(0);
    expect(h.stdout.text).toContain('leader:  c2 (term 3)');
    expect(h.stdout.text).toMatch(/c1\s+follower\s+3\s+9\s+10/);
    expect(h.stdout.text).toMatch(/s1\s+9\s+4/);
  });

  it('import then verify a file; verify exits 4 after a key changed', async () => {
    const h = harness({ setErrors: [coded('UNAVAILABLE', { retryable: true })] });
    const f = tsvFile('name\tversion\tsummary\na\t1\tx\ty\nb\t2\t\n');
    expect(await h.cairn('import', f, '--inflight', '2')).toBe(0);
    expect(h.stdout.text).toMatch(/^imported rows=2 seconds=[\d.]+ rows\/s=\d+\n$/);
    expect(h.data.get('a')).toBe('1\tx\ty');
    expect(h.connects[0].inflightMax).toBe(2);
    expect(await h.cairn('verify', f)).toBe(0);
    expect(h.stdout.text).toContain('rows=2 ok=2 missing=0 mismatched=0');
    h.data.set('b', 'changed');
    expect(await h.cairn('verify', f)).toBe(4);
    expect(h.stdout.text).toContain('rows=2 ok=1 missing=0 mismatched=1');
    expect(h.stderr.text).toContain('mismatched: line 3 key "b"');
  });

  it('import writes rows as TXNs of puts (--rows-per-txn, default 128), and one SET per row with --rows-per-txn 1', async () => {
    const f = tsvFile('name\tv\na\t1\nb\t2\nc\t3\n');
    const h = harness();
    expect(await h.cairn('import', f, '--rows-per-txn', '2', '--txns-inflight', '1')).toBe(0);
    expect(h.txns.map((t) => t.success.map((o) => Buffer.from(o.key).toString()))).toEqual([['a', 'b'], ['c']]);
    expect(h.setOpts).toEqual([]);
    expect(h.data.get('c')).toBe('3');
    const one = harness();
    expect(await one.cairn('import', f)).toBe(0);
    expect(one.txns).toHaveLength(1);
    const rowByRow = harness();
    expect(await rowByRow.cairn('import', f, '--rows-per-txn', '1')).toBe(0);
    expect(rowByRow.txns).toEqual([]);
    expect(rowByRow.setOpts).toHaveLength(3);
    expect([...rowByRow.data.keys()].sort()).toEqual(['a', 'b', 'c']);
  });

  it('import gives up with exit 3 when the cluster stays unavailable past --retry-ms', async () => {
    const h = harness({ setAlwaysFails: coded('UNAVAILABLE', { retryable: true }) });
    const f = tsvFile('a\t1\n');
    // Each backoff wait advances the fake clock: retries until 500 ms of (fake) time have passed.
    expect(await h.cairn('import', f, '--retry-ms', '500')).toBe(3);
    expect(h.stderr.text).toContain('import: retrying (UNAVAILABLE');
    expect(h.stderr.text).toContain('line 1 (key "a"): UNAVAILABLE');
    // One connection (a CairnPool: it reconnects by itself); the rows make one attempt per call.
    expect(h.connects).toEqual([expect.objectContaining({ retries: 'none', inflightMax: 512 })]);
  });

  it('import exits 3 at once when no endpoint can be reached', async () => {
    const h = harness({ connectError: coded('ECONNREFUSED') });
    expect(await h.cairn('import', tsvFile('a\t1\n'))).toBe(3);
    expect(h.connects).toHaveLength(1);
  });

  it('--endpoints and $CAIRN_ENDPOINTS reach connect as a list; bench spreads its clients over them', async () => {
    const h = harness();
    expect(await h.cairn('--endpoints', 'a:1, b:2,c:3', 'get', 'k')).toBe(1);
    expect(h.connects[0].endpoints).toEqual([
      { host: 'a', port: 1 },
      { host: 'b', port: 2 },
      { host: 'c', port: 3 },
    ]);
    expect(await h.cairn('--endpoints', 'a:1', '--gateway', 'b:2', 'get', 'k')).toBe(2);
    expect(h.stderr.text).toContain('give --endpoints or --gateway, not both');
    expect(await h.cairn('--endpoints', 'a:1,b:2', 'bench', '--clients', '3', '--requests', '3')).toBe(0);
    expect(h.connects.slice(1).map((c) => c.endpoints)).toEqual([[{ host: 'a', port: 1 }], [{ host: 'b', port: 2 }], [{ host: 'a', port: 1 }]]);
    expect(h.connects.slice(1).every((c) => c.retries === 'none')).toBe(true);
  });

  it('--tls, --cacert, --cert, --key reach connect as TLS options with the files read; a lone --cert or a missing file exits 2', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cairn-cli-tls-'));
    for (const f of ['ca.crt', 'c.crt', 'c.key']) writeFileSync(join(dir, f), `PEM ${f}`);
    const h = harness();
    expect(await h.cairn('get', 'k')).toBe(1);
    expect(h.connects[0].tls).toBeUndefined();
    expect(await h.cairn('--tls', 'get', 'k')).toBe(1);
    expect(h.connects[1].tls).toEqual({});
    expect(await h.cairn('--cacert', join(dir, 'ca.crt'), '--cert', join(dir, 'c.crt'), '--key', join(dir, 'c.key'), 'get', 'k')).toBe(1);
    expect(h.connects[2].tls).toEqual({ ca: Buffer.from('PEM ca.crt'), cert: Buffer.from('PEM c.crt'), key: Buffer.from('PEM c.key') });
    expect(await h.cairn('--tls', '--endpoints', 'a:1', 'bench', '--clients', '1', '--requests', '1')).toBe(0);
    expect(h.connects[3].tls).toEqual({});
    expect(await h.cairn('--cert', join(dir, 'c.crt'), 'get', 'k')).toBe(2);
    expect(h.stderr.text).toContain('--cert and --key go together');
    expect(await h.cairn('--cacert', join(dir, 'missing.crt'), 'get', 'k')).toBe(2);
    expect(h.stderr.text).toContain('cannot read --cacert');
  });

  it('a failed TLS handshake exits 3 and says which flag to give', async () => {
    const untrusted = harness({ connectError: coded('UNABLE_TO_VERIFY_LEAF_SIGNATURE', { message: 'unable to verify the first certificate' }) });
    expect(await untrusted.cairn('--tls', 'get', 'k')).toBe(3);
    expect(untrusted.stderr.text).toMatch(/not trusted \(unable to verify the first certificate\) — give --cacert/);
    const noClientCert = harness({ connectError: coded('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', { message: 'tlsv13 alert certificate required' }) });
    expect(await noClientCert.cairn('--tls', 'get', 'k')).toBe(3);
    expect(noClientCert.stderr.text).toContain('give --cert and --key');
  });
});

describe('--version, --json, errors that say what to check', () => {
  it('--version prints the version of apps/cli/package.json', async () => {
    const h = harness();
    const { version } = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as { version: string };
    expect(version).toMatch(/^\d+\.\d+\.\d+/);
    expect(await h.cairn('--version')).toBe(0);
    expect(h.stdout.text).toBe(`${version}\n`);
    expect(h.connects).toHaveLength(0);
  });

  it('--json: put, get (value and revision), del, ping print one JSON object each', async () => {
    const h = harness();
    const json = () => JSON.parse(h.stdout.chunks.pop()!) as Record<string, unknown>;
    expect(await h.cairn('--json', 'put', 'k', 'v 1')).toBe(0);
    expect(json()).toEqual({ key: 'k', revision: 1, applied: true });
    expect(await h.cairn('get', 'k', '--json')).toBe(0);
    expect(json()).toEqual({ key: 'k', value: 'v 1', revision: 1, createRevision: 1, version: 1 });
    expect(await h.cairn('put', '--nx', 'k', 'w', '--json')).toBe(6);
    expect(json()).toEqual({ key: 'k', revision: 2, applied: false });
    expect(await h.cairn('del', 'k', '--json')).toBe(0);
    expect(json()).toEqual({ key: 'k', revision: 3 });
    expect(await h.cairn('ping', '-n', '3', '--json')).toBe(0);
    expect(h.stdout.chunks).toHaveLength(1); // no per-ping lines in JSON mode
    expect(json()).toMatchObject({ count: 3, rttUs: [expect.any(Number), expect.any(Number), expect.any(Number)] });
  });

  it('--json: a value that is not UTF-8 comes as valueBase64', () => {
    expect(valueJson(Buffer.from([0xff, 0x00]))).toEqual({ valueBase64: '/wA=' });
    expect(valueJson(Buffer.from('ñ'))).toEqual({ value: 'ñ' });
  });

  it('--json: import and verify summaries', async () => {
    const h = harness();
    const f = tsvFile('a\t1\nb\t2\n');
    expect(await h.cairn('--json', 'import', f)).toBe(0);
    expect(JSON.parse(h.stdout.chunks.pop()!)).toMatchObject({ rows: 2, seconds: expect.any(Number), rowsPerSecond: expect.any(Number) });
    h.data.set('b', 'x');
    expect(await h.cairn('--json', 'verify', f)).toBe(4);
    expect(JSON.parse(h.stdout.chunks.pop()!)).toEqual({ rows: 2, ok: 1, missing: 0, mismatched: 1, examples: [{ key: 'b', problem: 'mismatched', lineNo: 2 }] });
  });

  it('status marks the endpoints the CLI could not reach; --json adds them to the STATUS JSON', async () => {
    const h = harness({ endpointsUp: [true, false] });
    expect(await h.cairn('--endpoints', '127.0.0.1:7380,127.0.0.1:7381', 'status')).toBe(0);
    expect(h.stdout.text).toContain('endpoints: 127.0.0.1:7380 up, 127.0.0.1:7381 UNREACHABLE\ngateway: g1');
    expect(await h.cairn('status', '--json')).toBe(0);
    expect(JSON.parse(h.stdout.chunks.pop()!)).toMatchObject({
      leaderId: 'c2',
      unreachable: { replicas: [], storage: [] },
      endpoints: [
        { address: '127.0.0.1:7380', reachable: true },
        { address: '127.0.0.1:7381', reachable: false },
      ],
    });
  });

  it('no gateway: names the endpoints and says how to start a cluster (exit 3)', async () => {
    const h = harness({ connectError: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:7380'), { code: 'ECONNREFUSED' }) });
    expect(await h.cairn('get', 'k')).toBe(3);
    expect(h.stderr.text).toBe(
      'cairn: no gateway at 127.0.0.1:7380 (connection refused) — is the cluster running? `npm start` starts one (else point --endpoints or $CAIRN_ENDPOINTS at a running gateway)\n',
    );
    expect(await h.cairn('--endpoints', 'a:1,[::1]:2', 'put', 'k', 'v')).toBe(3);
    expect(h.stderr.text).toContain('cairn: no gateway at a:1, [::1]:2 (connection refused)');
  });

  it('a timeout names --timeout; UNAVAILABLE points at cairn status; both exit 3', async () => {
    const t = harness({ getError: coded('TIMEOUT', { retryable: true, message: 'GET timed out after 250 ms' }) });
    expect(await t.cairn('-t', '250', 'get', 'k')).toBe(3);
    expect(t.stderr.text).toContain('GET timed out after 250 ms — no answer within --timeout 250 ms: check `cairn status` (is there a leader?), or raise --timeout');
    const u = harness({ setErrors: [coded('UNAVAILABLE', { retryable: true, message: 'no leader' })] });
    expect(await u.cairn('put', 'k', 'v')).toBe(3);
    expect(u.stderr.text).toContain('no leader — the cluster could not serve it in time');
    expect(u.stderr.text).toContain('`cairn status` shows which processes are down');
  });

  it('usage errors and not-found keep their own message', async () => {
    const h = harness();
    expect(await h.cairn('get', 'nope')).toBe(1);
    expect(h.stderr.text).toBe('cairn: key not found: nope\n');
  });
});

describe('the cairn bin', () => {
  it('is a committed, executable file outside dist/, the same in package-lock.json (npm links it at `npm ci`, before any build)', () => {
    const root = join(__dirname, '..', '..', '..');
    const pkg = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as { bin: Record<string, string> };
    const bin = pkg.bin.cairn;
    expect(bin).not.toMatch(/dist\//);
    const file = join(__dirname, '..', bin);
    expect(statSync(file).mode & 0o111).not.toBe(0);
    expect(readFileSync(file, 'utf8')).toMatch(/^#!\/usr\/bin\/env node\n/);
    const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, { bin?: Record<string, string> }> };
    expect(lock.packages['apps/cli'].bin).toEqual({ cairn: bin.replace(/^\.\//, '') });
  });
});

describe('gateway address', () => {
  it('--endpoints or --gateway win, then --config (every gateway), then $CAIRN_ENDPOINTS, then $CAIRN_GATEWAY, then the default', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cairn-'));
    const cfg = join(dir, 'c.json');
    writeFileSync(
      cfg,
      JSON.stringify({
        clusterName: 't',
        dataDir: './d',
        nats: { servers: ['nats://127.0.0.1:4999'] },
        consensus: { replicas: [{ id: 'c1' }] },
        storage: { nodes: [{ id: 's1' }] },
        gateway: {
          gateways: [
            { id: 'g1', host: '127.0.0.2', port: 7001 },
            { id: 'g2', host: '127.0.0.3', port: 7002 },
          ],
        },
      }),
    );
    const env = { CAIRN_ENDPOINTS: 'x:3,y:4', CAIRN_GATEWAY: 'e:2' };
    expect(await resolveEndpoints({ endpoints: 'p:5,q:6', config: cfg }, env)).toEqual([
      { host: 'p', port: 5 },
      { host: 'q', port: 6 },
    ]);
    expect(await resolveEndpoints({ gateway: 'h:1', config: cfg }, env)).toEqual([{ host: 'h', port: 1 }]);
    expect(await resolveEndpoints({ config: cfg }, env)).toEqual([
      { host: '127.0.0.2', port: 7001 },
      { host: '127.0.0.3', port: 7002 },
    ]);
    expect(await resolveEndpoints({}, env)).toEqual([
      { host: 'x', port: 3 },
      { host: 'y', port: 4 },
    ]);
    expect(await resolveEndpoints({}, { CAIRN_GATEWAY: 'e:2' })).toEqual([{ host: 'e', port: 2 }]);
    expect(await resolveEndpoints({}, {})).toEqual([{ host: '127.0.0.1', port: 7380 }]);
    await expect(resolveEndpoints({ endpoints: 'a:1', gateway: 'b:2' }, {})).rejects.toThrow(/not both/);
  });
  it('parses endpoint lists, rejects empty ones', () => {
    expect(parseEndpoints('[::1]:80,h:9')).toEqual([
      { host: '::1', port: 80 },
      { host: 'h', port: 9 },
    ]);
    expect(() => parseEndpoints(' , ')).toThrow(/empty/);
    expect(() => parseEndpoints('a:1,b')).toThrow(/host:port/);
  });
  it('parses host:port and [v6]:port, rejects the rest', () => {
    expect(parseHostPort('[::1]:80')).toEqual({ host: '::1', port: 80 });
    expect(() => parseHostPort('h:99999')).toThrow(/host:port/);
    expect(() => parseHostPort('h')).toThrow(/host:port/);
  });
});

describe('formatting', () => {
  it('summarizes pings with nearest-rank p50', () => {
    expect(summarizePings([30, 10, 20, 40])).toEqual({ count: 4, minUs: 10, avgUs: 25, p50Us: 20, maxUs: 40 });
    expect(() => summarizePings([])).toThrow(RangeError);
  });
  it('pads table columns', () => {
    expect(table(['A', 'BB'], [['xyz', 1]])).toBe('A    BB\nxyz  1');
  });
  it('status without a leader says so', () => {
    expect(formatStatus({ gateway: { id: 'g' }, leaderId: null, term: 0, consensus: [], storage: [] })).toContain('leader:  (none) (term 0)');
  });
  it('status shows a process whose heartbeats stopped as DOWN since when, never with its last role', () => {
    const now = Date.parse('2026-12-07T02:15:10.000Z');
    const downSinceMs = now - 70_000;
    const text = formatStatus(
      {
        gateway: { id: 'g1' },
        leaderId: 'c2',
        term: 2,
        consensus: [
          // What the gateway sends (ClusterView.snapshot): role 'down', live false, downSinceMs.
          { id: 'c1', role: 'down', term: 1, commitIndex: 7, lastIndex: 7, ageMs: 70_000, live: false, lastSeenAtMs: downSinceMs, downSinceMs },
          { id: 'c2', role: 'leader', term: 2, commitIndex: 9, lastIndex: 9, ageMs: 40, live: true, lastSeenAtMs: now - 40, downSinceMs: null },
        ],
        storage: [{ id: 's1', appliedIndex: 9, keys: 4, ageMs: 2_500, live: false, lastSeenAtMs: now - 2_500, downSinceMs: now - 2_500 }],
      },
      now,
    );
    expect(text).toContain('leader:  c2 (term 2)');
    expect(text).toContain('down:    c1, s1');
    expect(text).toMatch(/c1\s+down\s+1\s+7\s+7\s+DOWN since 2026-12-07 02:14:00Z \(1 min 10 s\)/);
    expect(text).toMatch(/c2\s+leader\s+2\s+9\s+9\s+up \(40 ms ago\)/);
    expect(text).toMatch(/s1\s+9\s+4\s+DOWN since 2026-12-07 02:15:07Z \(2.5 s\)/);
  });
  it('status marks members of the configuration that no heartbeat of reached the gateway as UNREACHABLE (a down replica\'s conf is not trusted)', () => {
    const conf = { voters: ['c1', 'c2', 'c3'], learners: ['c4'], storage: ['s1', 's2'] };
    const s = {
      gateway: { id: 'g1' },
      leaderId: 'c1',
      term: 2,
      consensus: [
        { id: 'c1', role: 'leader', term: 2, commitIndex: 9, lastIndex: 9, ageMs: 10, live: true, conf, confIndex: 5 },
        { id: 'c2', role: 'follower', term: 2, commitIndex: 9, lastIndex: 9, ageMs: 10, live: true, conf: { ...conf, learners: [] }, confIndex: 3 },
        { id: 'c9', role: 'down', term: 1, commitIndex: 1, lastIndex: 1, ageMs: 90_000, live: false, conf: { voters: ['c9', 'x'], learners: [], storage: ['y'] }, confIndex: 99 },
      ],
      storage: [{ id: 's1', appliedIndex: 9, keys: 4, ageMs: 10, live: true }],
    };
    expect(silentMembers(s)).toEqual({ replicas: ['c3', 'c4'], storage: ['s2'] });
    const text = formatStatus(s, Date.parse('2026-12-07T02:15:10.000Z'));
    expect(text).toContain('down:    c3, c4, c9, s2');
    expect(text).toMatch(/c3\s+down\s+-\s+-\s+-\s+UNREACHABLE \(in the configuration, never heard by this gateway\)/);
    expect(text).toMatch(/s2\s+-\s+-\s+UNREACHABLE/);
    expect(silentMembers({ ...s, consensus: s.consensus.map(({ conf: _c, ...c }) => c) })).toEqual({ replicas: [], storage: [] });
  });
  it('status from a gateway that sends only ageMs: a stale replica is down and not the leader, even if the gateway names it', () => {
    const now = Date.parse('2026-12-07T02:15:10.000Z');
    const text = formatStatus(
      {
        gateway: { id: 'g1' },
        leaderId: 'c1',
        term: 1,
        consensus: [
          { id: 'c1', role: 'leader', term: 1, commitIndex: 7, lastIndex: 7, ageMs: 70_000 },
          { id: 'c2', role: 'follower', term: 1, commitIndex: 7, lastIndex: 7, ageMs: 1_000 },
        ],
        storage: [],
      },
      now,
    );
    expect(text).toContain('leader:  (none) (term 1)');
    expect(text).not.toMatch(/c1\s+leader/);
    expect(text).toMatch(/c1\s+down\s+1\s+7\s+7\s+DOWN since 2026-12-07 02:14:00Z \(1 min 10 s\)/);
    expect(text).toMatch(/c2\s+follower\s+.*up \(1.0 s ago\)/);
    expect(text).not.toContain('down:    c2');
  });
});
