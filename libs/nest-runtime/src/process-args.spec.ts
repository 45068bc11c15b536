import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseProcessArgs } from './process-args';

describe('parseProcessArgs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-args-'));
  const file = join(dir, 'c.json');
  writeFileSync(
    file,
    JSON.stringify({
      nats: { servers: ['nats://127.0.0.1:4222'] },
      consensus: { replicas: [{ id: 'c1' }] },
      storage: { nodes: [{ id: 's1' }] },
      gateway: { gateways: [{ id: 'g1', port: 7000 }] },
    }),
  );
  const argv = (...a: string[]) => ['node', 'main.js', ...a];

  it('loads the config and checks the role of the id', () => {
    expect(parseProcessArgs(argv('--config', file, '--id', 'c1'), 'consensus').id).toBe('c1');
    expect(() => parseProcessArgs(argv('--config', file, '--id', 's1'), 'consensus')).toThrow(/is a storage member, not a consensus member/);
    expect(() => parseProcessArgs(argv('--config', file), 'gateway')).toThrow(/--id is required/);
    expect(() => parseProcessArgs(argv('--config', join(dir, 'nope.json'), '--id', 'g1'), 'gateway')).toThrow(/cannot read config file/);
  });

  it('CAIRN_JOIN=auto joins exactly when the id is not in the config (consensus and storage)', () => {
    const saved = process.env.CAIRN_JOIN;
    process.env.CAIRN_JOIN = 'auto';
    try {
      expect(parseProcessArgs(argv('--config', file, '--id', 'c4'), 'consensus')).toMatchObject({ id: 'c4', join: true });
      expect(parseProcessArgs(argv('--config', file, '--id', 'c1'), 'consensus')).toMatchObject({ id: 'c1', join: false });
      expect(parseProcessArgs(argv('--config', file, '--id', 's9'), 'storage').join).toBe(true);
      expect(() => parseProcessArgs(argv('--config', file, '--id', 's1'), 'consensus')).toThrow(/is a storage member/);
      expect(() => parseProcessArgs(argv('--config', file, '--id', 'g9'), 'gateway')).toThrow(/not in the config|unknown|not a/);
    } finally {
      if (saved === undefined) delete process.env.CAIRN_JOIN;
      else process.env.CAIRN_JOIN = saved;
    }
  });

  it('--join admits an id outside the config for consensus and storage only', () => {
    expect(() => parseProcessArgs(argv('--config', file, '--id', 'c4'), 'consensus')).toThrow(/use --join/);
    expect(parseProcessArgs(argv('--config', file, '--id', 'c4', '--join'), 'consensus')).toMatchObject({ id: 'c4', join: true });
    expect(parseProcessArgs(argv('--config', file, '--id', 's9', '--join'), 'storage').join).toBe(true);
    expect(() => parseProcessArgs(argv('--config', file, '--id', 's1', '--join'), 'consensus')).toThrow(/is a storage member/);
    expect(() => parseProcessArgs(argv('--config', file, '--id', 'g9', '--join'), 'gateway')).toThrow(/--join is for consensus/);
    expect(() => parseProcessArgs(argv('--config', file, '--id', 'a.b', '--join'), 'consensus')).toThrow(/must be 1-64/);
  });
});
