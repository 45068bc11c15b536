import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuthConfig } from '@cairn/config';
import { createLogger } from '@cairn/logging';
import { ClusterView } from '../cluster/cluster-view';
import { AuthConfigError, createGatewayAuth, rootPasswordOf, tokenSecretOf } from './auth-setup';
import { fakeAuthCluster } from './testing';

const heartbeat = (authRevision: number) => ({ kind: 'storage' as const, id: 's1', appliedIndex: authRevision, knownCommitIndex: authRevision, keys: 0, dataBytes: 0, authRevision, atMs: 0 });

describe('createGatewayAuth', () => {
  it('follows the storage heartbeats and creates the first root from CAIRN_ROOT_PASSWORD once', async () => {
    const c = fakeAuthCluster();
    const view = new ClusterView();
    const auth = Object.assign(new AuthConfig(), { scryptCost: 1024 });
    const stack = createGatewayAuth({ auth, view, reads: c.reads, writes: c.writes, readyTimeoutMs: 2000, log: createLogger('test', 'silent'), env: { CAIRN_ROOT_PASSWORD: 'first', CAIRN_TOKEN_SECRET: 'x'.repeat(32) } });
    const created = new Promise<void>((resolve) => stack.view.onChange((s) => s.state.users.has('root') && resolve()));
    view.onStorageStatus(heartbeat(0));
    await created;
    expect(stack.view.current()!.state.users.get('root')!.roles).toEqual(['root']);
    expect(await stack.gate.checkPassword('root', 'first', 'a')).toEqual({ user: 'root' });
    stack.view.stop();
  });
});

describe('secrets from env and files', () => {
  it('takes env first, then the file (trailing newline dropped), and refuses a short token secret', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cairn-'));
    const file = join(dir, 'secret');
    writeFileSync(file, `${'s'.repeat(40)}\n`);
    const a = Object.assign(new AuthConfig(), { tokenSecretFile: file, rootPasswordFile: file });
    expect(tokenSecretOf(a, {}).toString()).toBe('s'.repeat(40));
    expect(tokenSecretOf(a, { CAIRN_TOKEN_SECRET: 'e'.repeat(32) }).toString()).toBe('e'.repeat(32));
    expect(() => tokenSecretOf(a, { CAIRN_TOKEN_SECRET: 'short' })).toThrow(AuthConfigError);
    expect(tokenSecretOf(new AuthConfig(), {}).length).toBe(32);
    expect(rootPasswordOf(a, {})).toBe('s'.repeat(40));
    expect(rootPasswordOf(new AuthConfig(), {})).toBeUndefined();
    expect(() => rootPasswordOf(Object.assign(new AuthConfig(), { rootPasswordFile: join(dir, 'none') }), {})).toThrow(AuthConfigError);
  });
});
