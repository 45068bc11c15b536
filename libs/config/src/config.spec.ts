import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadClusterConfig, parseClusterConfig, roleOf } from './index';

const valid = () => ({
  clusterName: 'test',
  nats: { servers: ['nats://127.0.0.1:4222'] },
  consensus: { replicas: [{ id: 'c1' }, { id: 'c2' }, { id: 'c3' }] },
  storage: { nodes: [{ id: 's1' }, { id: 's2' }] },
  gateway: { gateways: [{ id: 'g1', port: 7380 }] },
});

function problemsOf(plain: unknown): string[] {
  try {
    parseClusterConfig(plain);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).problems;
  }
  throw new Error('expected ConfigError');
}

describe('cluster config', () => {
  it('accepts a minimal config and applies documented defaults', () => {
    const c = parseClusterConfig(valid());
    expect(c.consensus.electionTimeoutMinMs).toBe(150);
    expect(c.consensus.heartbeatIntervalMs).toBe(50);
    expect(c.consensus.fsyncPolicy).toBe('group');
    expect(c.gateway.keyBytesMax).toBe(1024);
    expect(c.gateway.valueBytesMax).toBe(1048576);
    expect(c.gateway.gateways[0].host).toBe('127.0.0.1');
    expect(roleOf(c, 'c2')).toBe('consensus');
    expect(roleOf(c, 's1')).toBe('storage');
    expect(roleOf(c, 'g1')).toBe('gateway');
    expect(() => roleOf(c, 'zz')).toThrow(ConfigError);
  });

  it('takes a read lease (ms) only below the election timeout and with checkQuorum', () => {
    const lease = (over: Record<string, unknown>) => ({ ...valid(), consensus: { ...valid().consensus, ...over } });
    expect(parseClusterConfig(lease({ readLeaseMs: 100 })).consensus.readLeaseMs).toBe(100);
    expect(parseClusterConfig(valid()).consensus.readLeaseMs).toBe(0);
    expect(problemsOf(lease({ readLeaseMs: 150 })).join()).toMatch(/readLeaseMs: must be 0/);
    expect(problemsOf(lease({ readLeaseMs: 100, checkQuorum: false })).join()).toMatch(/readLeaseMs: must be 0/);
  });

  it('names the field of a bad value', () => {
    const plain = valid();
    (plain.gateway.gateways[0] as { port: unknown }).port = 70000;
    expect(problemsOf(plain)).toEqual([expect.stringMatching(/^gateway\.gateways\.0\.port: /)]);
  });

  it('transaction bounds: defaults, and a bad value named by its path', () => {
    const c = parseClusterConfig(valid());
    expect([c.gateway.txnOpsMax, c.gateway.txnKeysMax, c.gateway.txnResultBytesMax, c.storage.txnResultsHeldBytesMax]).toEqual([128, 10_000, 1024 * 1024 - 8192, 64 * 1024 * 1024]);
    const plain = { ...valid(), gateway: { ...valid().gateway, txnOpsMax: 0, txnKeysMax: 1.5, txnResultBytesMax: 100 }, storage: { ...valid().storage, txnResultsHeldBytesMax: 1024 } };
    expect(problemsOf(plain)).toEqual([
      expect.stringMatching(/^storage\.txnResultsHeldBytesMax: /),
      expect.stringMatching(/^gateway\.txnOpsMax: /),
      expect.stringMatching(/^gateway\.txnKeysMax: /),
      expect.stringMatching(/^gateway\.txnResultBytesMax: /),
    ]);
  });

  it('takes an optional httpPort per gateway', () => {
    expect(parseClusterConfig(valid()).gateway.gateways[0].httpPort).toBeUndefined();
    const plain = valid();
    (plain.gateway.gateways[0] as { httpPort?: unknown }).httpPort = 8380;
    expect(parseClusterConfig(plain).gateway.gateways[0].httpPort).toBe(8380);
    (plain.gateway.gateways[0] as { httpPort?: unknown }).httpPort = 0;
    expect(problemsOf(plain)).toEqual([expect.stringMatching(/^gateway\.gateways\.0\.httpPort: /)]);
  });

  it('rejects unknown fields, bad ids, duplicates and inconsistent timing', () => {
    expect(problemsOf({ ...valid(), colour: 'red' })).toEqual([expect.stringMatching(/^colour: /)]);
    const badId = valid();
    badId.consensus.replicas[0].id = 'Bad Id';
    expect(problemsOf(badId)[0]).toMatch(/^consensus\.replicas\.0\.id: /);
    const dup = valid();
    dup.storage.nodes[1].id = 's1';
    expect(problemsOf(dup).join()).toMatch(/storage\.nodes ids must be unique/);
    const cross = valid();
    cross.storage.nodes[0].id = 'c1';
    expect(problemsOf(cross).join()).toMatch(/c1: process ids must be unique/);
    const timing = valid() as ReturnType<typeof valid> & { consensus: { heartbeatIntervalMs?: number } };
    timing.consensus.heartbeatIntervalMs = 200;
    expect(problemsOf(timing).join()).toMatch(/heartbeatIntervalMs: must be less than/);
    expect(problemsOf({ ...valid(), consensus: undefined }).join()).toMatch(/^consensus: /);
  });

  it('gateway TLS: mode is required, "tls" needs certFile and keyFile, mTLS needs caFile; defaults applied', () => {
    const withTls = (tls: unknown, door = 'tls') => ({ ...valid(), gateway: { gateways: [{ id: 'g1', port: 7380, [door]: tls }] } });
    const c = parseClusterConfig(withTls({ mode: 'tls', certFile: 'g.crt', keyFile: 'g.key' }));
    expect(c.gateway.gateways[0].tls).toMatchObject({ mode: 'tls', clientCertRequired: false, minVersion: 'TLSv1.2', reloadIntervalMs: 1000 });
    expect(parseClusterConfig(withTls({ mode: 'plain' }, 'httpTls')).gateway.gateways[0].httpTls?.mode).toBe('plain');
    expect(problemsOf(withTls({ certFile: 'g.crt', keyFile: 'g.key' })).join()).toMatch(/gateway\.gateways\.0\.tls\.mode: mode must be one of/);
    expect(problemsOf(withTls({ mode: 'tls', certFile: 'g.crt' }, 'respTls')).join()).toMatch(/respTls\.keyFile/);
    expect(problemsOf(withTls({ mode: 'tls', certFile: 'g.crt', keyFile: 'g.key', clientCertRequired: true })).join()).toMatch(/tls\.caFile/);
    expect(problemsOf(withTls({ mode: 'tls', certFile: 'g.crt', keyFile: 'g.key', minVersion: 'TLSv1.1' })).join()).toMatch(/tls\.minVersion/);
  });

  it('validates bus credentials and TLS to NATS (docs/security.md "The internal bus")', () => {
    const withNats = (nats: object) => ({ ...valid(), nats: { servers: ['nats://127.0.0.1:4222'], ...nats } });
    const ok = parseClusterConfig(withNats({ credentials: { gateway: { seedFile: 'g.nk' }, admin: { seedFile: 'a.nk' } }, tls: { caFile: 'ca.crt' } }));
    expect(ok.nats.credentials?.gateway?.seedFile).toBe('g.nk');
    expect(ok.nats.credentials?.consensus).toBeUndefined();
    expect(problemsOf(withNats({ credentials: { gateway: {} } })).join()).toMatch(/nats\.credentials\.gateway\.seedFile/);
    expect(problemsOf(withNats({ credentials: { cli: { seedFile: 'x' } } })).join()).toMatch(/nats\.credentials\.cli/);
    expect(problemsOf(withNats({ tls: { certFile: 'c.crt' } })).join()).toMatch(/nats\.tls\.keyFile/);
    expect(problemsOf(withNats({ tls: { keyFile: 'c.key' } })).join()).toMatch(/nats\.tls\.certFile/);
  });

  it('resolves the bus credential and TLS files next to the config file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cairn-config-'));
    const file = join(dir, 'cairn.json');
    writeFileSync(file, JSON.stringify({ ...valid(), nats: { servers: ['nats://127.0.0.1:4222'], credentials: { storage: { seedFile: 'keys/s.nk' } }, tls: { caFile: '/etc/ca.crt', certFile: 'c.crt', keyFile: 'c.key' } } }));
    const c = loadClusterConfig(file);
    expect(c.nats.credentials?.storage?.seedFile).toBe(join(dir, 'keys/s.nk'));
    expect(c.nats.tls).toEqual({ caFile: '/etc/ca.crt', certFile: join(dir, 'c.crt'), keyFile: join(dir, 'c.key') });
  });

  it('loads a file, resolving dataDir next to it, and reports unreadable or non-JSON files', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cairn-config-'));
    const file = join(dir, 'cairn.json');
    writeFileSync(file, JSON.stringify(valid()));
    expect(loadClusterConfig(file).dataDir).toBe(join(dir, 'data'));
    writeFileSync(file, '{ nope');
    expect(() => loadClusterConfig(file)).toThrow(/not valid JSON/);
    expect(() => loadClusterConfig(join(dir, 'missing.json'))).toThrow(/cannot read config file/);
  });
});
