import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { BackupRecordKind, BitcaskEngine, EngineOp, encodeBackupEnd, encodeBackupHeader, encodeBackupMeta, encodeBackupRecord, encodeSnapshotChunk } from '@cairn/engine';
import { LeaseStateFile } from '@cairn/log';
import { ByteWriter, encodeKeyMeta, keyMetaRecordKey, leaseRecordKey } from '@cairn/protocol';
import { realClock } from '@cairn/world';
import { ExitCode, UsageError, exitCodeFor } from './exit-codes';
import { AuthRefusedError } from './credentials';
import { restoreSnapshot, saveSnapshot } from './snapshot';
import { testPkiOrSay } from './cli.spec-helpers';

type Write = { op: EngineOp.Set | EngineOp.Delete; key: Buffer; value: Buffer };
/** 300 writes to 120 keys. */
const plainWrites: Write[] = Array.from({ length: 300 }, (_, i) => ({ op: EngineOp.Set, key: Buffer.from(`k${i % 120}`), value: Buffer.from(`v${i + 1}`) }));

/** A backup stream of a real engine after `writes` (at revision writes.length), as a gateway sends it. */
async function backupBytes(dir: string, writes: Write[] = plainWrites): Promise<Buffer> {
  const e = await BitcaskEngine.open({ dir, clock: realClock, autoMerge: false, segmentBytesMax: 8 * 1024 });
  await e.apply(writes.map((w, i) => ({ index: i + 1, ...w })));
  const snap = await e.createSnapshot({ termAt: () => 4 });
  const reader = e.openSnapshotReader(snap.appliedIndex, 2048);
  const parts = [encodeBackupHeader(snap.appliedIndex), encodeBackupMeta({ node: 's1', gateway: 'g1', savedAtMs: 1, appliedIndex: snap.appliedIndex, term: 4 }), encodeBackupRecord(BackupRecordKind.Manifest, reader.manifestBytes)];
  let bytes = 0;
  for await (const c of reader.chunks()) {
    parts.push(encodeBackupRecord(BackupRecordKind.Chunk, encodeSnapshotChunk(c)));
    bytes += c.bytes.length;
  }
  parts.push(encodeBackupEnd({ chunks: parts.length - 3, bytes }));
  await reader.close();
  await e.close();
  return Buffer.concat(parts);
}

/** A one-route HTTP server on a free loopback port; `handler` answers GET /v1/snapshot. */
async function gateway(handler: (res: http.ServerResponse, req: http.IncomingMessage) => void): Promise<{ port: number; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => handler(res, req));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, close: () => new Promise((r) => server.close(() => r())) };
}

describe('cairn snapshot save / restore', () => {
  let dir: string;
  let backup: Buffer;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-'));
    backup = await backupBytes(path.join(dir, 'source'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('saves a whole stream to FILE (via FILE.part) and restores it into fresh data directories', async () => {
    const gw = await gateway((res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      // In pieces, as chunked transfer delivers it.
      for (let at = 0; at < backup.length; at += 1000) res.write(backup.subarray(at, at + 1000));
      res.end();
    });
    const file = path.join(dir, 'ok.cairn');
    try {
      const s = await saveSnapshot({ file, http: { host: '127.0.0.1', port: gw.port }, idleTimeoutMs: 10_000 });
      expect(s).toMatchObject({ revision: 300, term: 4, node: 's1', fileBytes: backup.length });
      expect(s.files).toBeGreaterThan(1);
    } finally {
      await gw.close();
    }
    expect(fs.readFileSync(file).equals(backup)).toBe(true);
    expect(fs.existsSync(`${file}.part`)).toBe(false);

    const dataDir = path.join(dir, 'cluster');
    const r = await restoreSnapshot(file, { dataDir, storage: ['s1', 's2'], replicas: ['c1', 'c2', 'c3'] });
    expect(r.revision).toBe(300);
    for (const id of ['s1', 's2']) {
      const e = await BitcaskEngine.open({ dir: path.join(dataDir, id, 'engine'), clock: realClock, autoMerge: false });
      expect(e.appliedIndex()).toBe(300);
      expect(e.stats().keys).toBe(120);
      expect(Buffer.from(e.get(Buffer.from('k5'))!.value).toString()).toBe('v246');
      await e.close();
    }
    for (const id of ['c1', 'c2', 'c3']) {
      const snap = fs.readFileSync(path.join(dataDir, id, 'raft-snapshot'));
      expect(snap.subarray(0, 4).toString('latin1')).toBe('CRSN');
      expect(Number(snap.readBigUInt64BE(9))).toBe(300);
      expect(Number(snap.readBigUInt64BE(17))).toBe(4);
      expect(JSON.parse(snap.subarray(29).toString('utf8'))).toEqual({ voters: ['c1', 'c2', 'c3'], learners: [], storage: ['s1', 's2'] });
      expect(fs.readFileSync(path.join(dataDir, id, 'hardstate')).subarray(0, 4).toString('latin1')).toBe('CRHS');
    }
    // A second restore into the same (now used) directories is refused, exit 2.
    const again = restoreSnapshot(file, { dataDir, storage: ['s1', 's2'], replicas: ['c1', 'c2', 'c3'] });
    await expect(again).rejects.toThrow(/is not empty/);
    await expect(again.catch((e: unknown) => exitCodeFor(e))).resolves.toBe(ExitCode.usage);
    // --only writes one member's directory; the configuration still names them all.
    const one = path.join(dir, 'one');
    await restoreSnapshot(file, { dataDir: one, storage: ['s1', 's2'], replicas: ['c1'], only: ['c1'] });
    expect(fs.readdirSync(one)).toEqual(['c1']);
    await expect(restoreSnapshot(file, { dataDir: one, storage: ['s1'], replicas: ['c1'], only: ['x9'] })).rejects.toThrow(/--only x9/);
  });

  it('sends the credentials as HTTP Basic or Bearer; a 401 / 403 is exit 7', async () => {
    const seen: (string | undefined)[] = [];
    const gw = await gateway((res, req) => {
      seen.push(req.headers.authorization);
      const ok = req.headers.authorization === `Basic ${Buffer.from('root:rpw').toString('base64')}`;
      res.writeHead(ok ? 200 : req.headers.authorization ? 403 : 401, { 'content-type': ok ? 'application/octet-stream' : 'application/json' });
      res.end(ok ? backup : JSON.stringify({ error: 'X', message: 'no' }));
    });
    try {
      const file = path.join(dir, 'auth.cairn');
      const s = await saveSnapshot({ file, http: { host: '127.0.0.1', port: gw.port }, idleTimeoutMs: 10_000, credentials: { username: 'root', password: 'rpw' } });
      expect(s.revision).toBe(300);
      const anon = await saveSnapshot({ file, http: { host: '127.0.0.1', port: gw.port }, idleTimeoutMs: 10_000 }).catch((e: unknown) => e);
      expect([anon instanceof AuthRefusedError, exitCodeFor(anon)]).toEqual([true, ExitCode.denied]);
      const token = await saveSnapshot({ file, http: { host: '127.0.0.1', port: gw.port }, idleTimeoutMs: 10_000, credentials: { token: 't' } }).catch((e: unknown) => e);
      expect([(token as AuthRefusedError).code, exitCodeFor(token)]).toEqual(['PERMISSION_DENIED', ExitCode.denied]);
      expect(seen).toEqual([`Basic ${Buffer.from('root:rpw').toString('base64')}`, undefined, 'Bearer t']);
    } finally {
      await gw.close();
    }
  });

  it('keeps no FILE when the stream is cut (exit 3), and reports a refusal (503) with its message', async () => {
    const cut = await gateway((res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.write(backup.subarray(0, Math.floor(backup.length / 2)), () => res.destroy());
    });
    const file = path.join(dir, 'cut.cairn');
    try {
      const err = await saveSnapshot({ file, http: { host: '127.0.0.1', port: cut.port }, idleTimeoutMs: 10_000 }).catch((e: unknown) => e);
      expect(String(err)).toMatch(/cut|ended early|socket hang up|aborted/);
      expect(exitCodeFor(err)).toBe(ExitCode.unavailable);
    } finally {
      await cut.close();
    }
    expect(fs.existsSync(file) || fs.existsSync(`${file}.part`)).toBe(false);

    const refusing = await gateway((res) => {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'UNAVAILABLE', message: 'no live storage node' }));
    });
    try {
      const err = await saveSnapshot({ file, http: { host: '127.0.0.1', port: refusing.port }, idleTimeoutMs: 10_000 }).catch((e: unknown) => e);
      expect(String(err)).toMatch(/answered 503: no live storage node/);
      expect(exitCodeFor(err)).toBe(ExitCode.unavailable);
    } finally {
      await refusing.close();
    }
  });

  it('saves over HTTPS when the gateway\'s HTTP door has TLS (--tls/--cacert), and refuses an untrusted certificate', async () => {
    const pki = testPkiOrSay('snapshot.spec: the HTTPS save is not tested');
    if (!pki) return;
    const server = pki.issue('gateway', 'server');
    const gw = https.createServer({ cert: server.cert, key: server.key }, (req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(backup);
    });
    await new Promise<void>((r) => gw.listen(0, '127.0.0.1', r));
    const port = (gw.address() as AddressInfo).port;
    const file = path.join(dir, 'tls.cairn');
    try {
      const s = await saveSnapshot({ file, http: { host: '127.0.0.1', port }, idleTimeoutMs: 10_000, tls: { ca: pki.ca } });
      expect(s).toMatchObject({ revision: 300, fileBytes: backup.length });
      const untrusted = await saveSnapshot({ file: path.join(dir, 'untrusted.cairn'), http: { host: '127.0.0.1', port }, idleTimeoutMs: 10_000, tls: {} }).catch((e: unknown) => e);
      expect(exitCodeFor(untrusted)).toBe(ExitCode.unavailable);
      expect(String(untrusted)).toMatch(/TLS with the gateway HTTP API at 127\.0\.0\.1:\d+ failed: .*--cacert/);
    } finally {
      await new Promise<void>((r) => gw.close(() => r()));
      fs.rmSync(pki.dir, { recursive: true, force: true });
    }
  });

  it('refuses a corrupt or truncated file with exit 2 and leaves no data directory behind', async () => {
    const corrupt = Buffer.from(backup);
    corrupt[Math.floor(corrupt.length * 0.6)] ^= 0x01;
    const cases: [Buffer, RegExp][] = [
      [corrupt, /corrupt backup at byte \d+/],
      [backup.subarray(0, backup.length - 1), /truncated backup/],
      [Buffer.from('hello, not a backup at all'), /not a cairn snapshot save file/],
    ];
    for (const [bytes, why] of cases) {
      const file = path.join(dir, 'bad.cairn');
      fs.writeFileSync(file, bytes);
      const dataDir = path.join(dir, 'bad-cluster');
      // s1's directory exists and is empty (as a mounted volume would): kept, and left empty.
      fs.mkdirSync(path.join(dataDir, 's1'), { recursive: true });
      const err = await restoreSnapshot(file, { dataDir, storage: ['s1'], replicas: ['c1'] }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UsageError);
      expect(String(err)).toMatch(why);
      expect(fs.readdirSync(dataDir)).toEqual(['s1']);
      expect(fs.readdirSync(path.join(dataDir, 's1'))).toEqual([]);
    }
  });

  it("rebuilds every replica's lease table from the backup's reserved keyspace: leases with their TTL, key expiries, as of its revision (etcd lessor recovery)", async () => {
    const ttl = (ms: number) => new ByteWriter(8).u64(ms).finish();
    const set = (key: Buffer, value: Buffer): Write => ({ op: EngineOp.Set, key, value });
    const del = (key: Buffer): Write => ({ op: EngineOp.Delete, key, value: Buffer.alloc(0) });
    const writes: Write[] = [
      ...plainWrites.slice(0, 50),
      set(leaseRecordKey(7), ttl(2000)),
      set(leaseRecordKey(2 ** 53 - 1), ttl(5000)),
      set(leaseRecordKey(9), ttl(1000)),
      // A key attached to lease 7 (its expiry is the lease's), a key with an absolute expiry, one whose expiry was cleared.
      set(Buffer.from('a'), Buffer.from('1')),
      set(keyMetaRecordKey(Buffer.from('a')), encodeKeyMeta({ leaseId: 7, expiresAtMs: 0 })),
      set(Buffer.from([0, 0xff, 0x80]), Buffer.from('2')),
      set(keyMetaRecordKey(Buffer.from([0, 0xff, 0x80])), encodeKeyMeta({ leaseId: 0, expiresAtMs: 1_234_567 })),
      set(keyMetaRecordKey(Buffer.from('z')), encodeKeyMeta({ leaseId: 0, expiresAtMs: 2 ** 52 })),
      set(keyMetaRecordKey(Buffer.from('c')), encodeKeyMeta({ leaseId: 0, expiresAtMs: 99 })),
      del(keyMetaRecordKey(Buffer.from('c'))),
      // Lease 9 revoked.
      del(leaseRecordKey(9)),
    ];
    const file = path.join(dir, 'leases.cairn');
    fs.writeFileSync(file, await backupBytes(path.join(dir, 'lease-source'), writes));
    const expected = { index: writes.length, gapThrough: 0, leases: [{ leaseId: 7, ttlMs: 2000 }, { leaseId: 2 ** 53 - 1, ttlMs: 5000 }], keys: [{ key: Buffer.from([0, 0xff, 0x80]), expiresAtMs: 1_234_567 }, { key: Buffer.from('z'), expiresAtMs: 2 ** 52 }] };

    const dataDir = path.join(dir, 'lease-cluster');
    const r = await restoreSnapshot(file, { dataDir, storage: ['s1', 's2'], replicas: ['c1', 'c2', 'c3'] });
    expect(r).toMatchObject({ revision: writes.length, leases: 2, keyExpiries: 2 });
    for (const id of ['c1', 'c2', 'c3']) expect(new LeaseStateFile(path.join(dataDir, id)).read()).toEqual(expected);
    // The storage nodes keep their reserved records (their own LeaseIndex, attached keys included).
    const e = await BitcaskEngine.open({ dir: path.join(dataDir, 's1', 'engine'), clock: realClock, autoMerge: false });
    expect(e.get(keyMetaRecordKey(Buffer.from('a')))).not.toBeNull();
    await e.close();

    // A replica's volume alone (--only): no store is written, the records are read as the file passes.
    const one = path.join(dir, 'lease-one');
    await restoreSnapshot(file, { dataDir: one, storage: ['s1'], replicas: ['c1', 'c2'], only: ['c2'] });
    expect(fs.readdirSync(one)).toEqual(['c2']);
    expect(fs.readdirSync(path.join(one, 'c2')).sort()).toEqual(['hardstate', 'lease-state', 'raft-snapshot']);
    expect(new LeaseStateFile(path.join(one, 'c2')).read()).toEqual(expected);

    // More leases than the new cluster's leasesMax: refused, exit 2, nothing left behind; key expiries beyond ttlKeysMax are left out.
    const small = path.join(dir, 'lease-small');
    const err = await restoreSnapshot(file, { dataDir: small, storage: ['s1'], replicas: ['c1'], leaseBounds: { leasesMax: 1, ttlKeysMax: 10 } }).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(UsageError);
    expect(String(err)).toMatch(/more than 1 leases/);
    expect(fs.readdirSync(small)).toEqual([]);
    await restoreSnapshot(file, { dataDir: small, storage: ['s1'], replicas: ['c1'], leaseBounds: { leasesMax: 2, ttlKeysMax: 1 } });
    expect(new LeaseStateFile(path.join(small, 'c1')).read()).toEqual({ ...expected, keys: expected.keys.slice(0, 1) });
  });

  it('a backup without leases gives each replica an empty lease table at its revision', async () => {
    const file = path.join(dir, 'plain.cairn');
    fs.writeFileSync(file, backup);
    const dataDir = path.join(dir, 'plain-cluster');
    await restoreSnapshot(file, { dataDir, storage: ['s1'], replicas: ['c1'] });
    expect(new LeaseStateFile(path.join(dataDir, 'c1')).read()).toEqual({ index: 300, gapThrough: 0, leases: [], keys: [] });
  });
});
