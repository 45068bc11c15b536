import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LauncherArgsError, parseLauncherArgs } from './args';
import { LocalCluster, REPO_ROOT, SUPERVISION_DEFAULTS, logTail, natsPort, restartBackoffMs } from './cluster';

const argv = (...a: string[]) => ['node', 'main.js', ...a];

describe('parseLauncherArgs', () => {
  it('defaults to ./cairn.config.json, a private nats-server and 30 s', () => {
    expect(parseLauncherArgs(argv())).toEqual({ configPath: 'cairn.config.json', startNats: true, logDir: undefined, readyTimeoutMs: 30_000, restart: true });
  });
  it('reads --config, --no-nats, --log-dir and --ready-timeout', () => {
    expect(parseLauncherArgs(argv('--config', 'x.json', '--no-nats', '--log-dir', '/tmp/l', '--ready-timeout', '500', '--no-restart'))).toEqual({
      configPath: 'x.json',
      startNats: false,
      logDir: '/tmp/l',
      readyTimeoutMs: 500,
      restart: false,
    });
  });
  it('rejects unknown options and stray arguments with exit code 2', () => {
    const out: string[] = [];
    expect(() => parseLauncherArgs(argv('--bogus'), (s) => out.push(s))).toThrow(LauncherArgsError);
    expect(() => parseLauncherArgs(argv('extra'), (s) => out.push(s))).toThrow(expect.objectContaining({ exitCode: 2 }));
    expect(out.join('')).toContain('--bogus');
  });
  it('rejects a non-numeric --ready-timeout', () => {
    expect(() => parseLauncherArgs(argv('--ready-timeout', 'soon'))).toThrow(/--ready-timeout/);
  });
  it('--help exits 0', () => {
    const out: string[] = [];
    expect(() => parseLauncherArgs(argv('--help'), (s) => out.push(s))).toThrow(expect.objectContaining({ exitCode: 0 }));
    expect(out.join('')).toContain('--no-nats');
  });
});

describe('helpers', () => {
  it('natsPort reads the port of a nats URL', () => {
    expect(natsPort('nats://127.0.0.1:4322')).toBe(4322);
    expect(natsPort('127.0.0.1:5000')).toBe(5000);
    expect(natsPort('nats://localhost')).toBe(4222);
  });
  it('logTail returns the last lines of a file and "" for a missing one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cairn-'));
    const f = join(dir, 'x.log');
    for (let i = 0; i < 50; i++) appendFileSync(f, `line ${i}\n`);
    const tail = logTail(f, 3).split('\n');
    expect(tail).toEqual(['line 47', 'line 48', 'line 49']);
    expect(logTail(join(dir, 'missing.log'))).toBe('');
  });
  it('restartBackoffMs doubles from the initial backoff up to the bound', () => {
    const o = { backoffInitialMs: 100, backoffMaxMs: 1000 };
    expect([1, 2, 3, 4, 5, 6].map((n) => restartBackoffMs(n, o))).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(restartBackoffMs(10_000, o)).toBe(1000);
    expect(restartBackoffMs(1)).toBe(SUPERVISION_DEFAULTS.backoffInitialMs);
    expect(restartBackoffMs(100)).toBe(SUPERVISION_DEFAULTS.backoffMaxMs);
    expect(() => restartBackoffMs(0, o)).toThrow(RangeError);
  });
  it('REPO_ROOT is the monorepo root', () => {
    expect(JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')).name).toBe('cairn');
  });
});

describe('LocalCluster.create', () => {
  it('loads the config and lists process ids by role without starting anything', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cairn-'));
    const path = join(dir, 'c.json');
    writeFileSync(path, JSON.stringify({
      clusterName: 't',
      dataDir: './d',
      nats: { servers: ['nats://127.0.0.1:4999'] },
      consensus: { replicas: [{ id: 'c1' }, { id: 'c2' }, { id: 'c3' }] },
      storage: { nodes: [{ id: 's1' }] },
      gateway: { gateways: [{ id: 'g1', host: '127.0.0.1', port: 7999 }] },
    }));
    const c = LocalCluster.create({ configPath: path });
    expect(c.ids()).toEqual(['c1', 'c2', 'c3', 's1', 'g1']);
    expect(c.ids('consensus')).toEqual(['c1', 'c2', 'c3']);
    expect(c.ids('gateway')).toEqual(['g1']);
    expect(c.logDir).toBe(join(dir, 'd', 'logs'));
    expect(c.pid('c1')).toBeNull();
    expect(() => c.pid('zz')).toThrow(/unknown process id/);
  });
});
