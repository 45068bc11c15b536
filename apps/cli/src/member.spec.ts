import { httpHarness as harness } from './cli.spec-helpers';
import { formatMembers, resolveHttp } from './member';

const conf = { voters: ['c1', 'c2', 'c3', 'c4'], learners: [], storage: ['s1', 's2'] };

describe('cairn member', () => {
  it('add posts {id, kind} to the HTTP API and prints the new configuration', async () => {
    const h = harness(() => ({ status: 200, json: { status: 'ok', message: 'replica c4 added as voter', conf, confIndex: 42 } }));
    expect(await h.cairn('member', 'add', 'c4', '--http', '127.0.0.1:9000', '--wait-ms', '1000')).toBe(0);
    expect(h.calls).toEqual([{ method: 'POST', url: 'http://127.0.0.1:9000/v1/cluster/members?timeoutMs=1000', body: { id: 'c4', kind: 'replica' } }]);
    expect(h.stdout.text).toContain('replica c4 added as voter');
    expect(h.stdout.text).toContain('voters:   c1, c2, c3, c4');
  });

  it('remove --storage sends DELETE with kind=storage; list prints the configuration', async () => {
    const h = harness((method) => (method === 'GET' ? { status: 200, json: { ...conf, confIndex: 7, committed: true } } : { status: 200, json: { status: 'ok', message: 'storage node s2 removed', conf, confIndex: 9 } }));
    expect(await h.cairn('member', 'remove', 's2', '--storage', '--http', 'h:1')).toBe(0);
    expect(h.calls[0]).toMatchObject({ method: 'DELETE', url: 'http://h:1/v1/cluster/members/s2?timeoutMs=90000&kind=storage' });
    expect(await h.cairn('member', 'list', '--http', 'h:1')).toBe(0);
    expect(h.stdout.text).toContain('config index: 7');
  });

  it('--json: list, add and remove print the configuration as JSON', async () => {
    const h = harness((method) => (method === 'GET' ? { status: 200, json: { ...conf, confIndex: 7, committed: true } } : { status: 200, json: { status: 'ok', message: 'replica c4 added as voter', conf, confIndex: 42 } }));
    expect(await h.cairn('member', 'list', '--json')).toBe(0);
    expect(JSON.parse(h.stdout.text)).toEqual({ ...conf, confIndex: 7, committed: true });
    h.stdout.text = '';
    expect(await h.cairn('--json', 'member', 'add', 'c4')).toBe(0);
    expect(JSON.parse(h.stdout.text)).toEqual({ ...conf, confIndex: 42, message: 'replica c4 added as voter' });
    h.stdout.text = '';
    expect(await h.cairn('member', 'remove', 'c4', '--json')).toBe(0);
    expect(JSON.parse(h.stdout.text)).toMatchObject({ voters: conf.voters, confIndex: 42 });
  });

  it('maps answers to exit codes: 412 → 6, 503 → 3, unreachable → 3, 400 → 2', async () => {
    expect(await harness(() => ({ status: 412, json: { message: 'c1 is the last voter' } })).cairn('member', 'remove', 'c1')).toBe(6);
    expect(await harness(() => ({ status: 503, json: { message: 'no leader' } })).cairn('member', 'add', 'c4')).toBe(3);
    const refused = Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } });
    const h = harness(() => refused);
    expect(await h.cairn('member', 'list')).toBe(3);
    expect(h.stderr.text).toContain('cannot reach the gateway HTTP API at 127.0.0.1:8380: ECONNREFUSED — is the cluster running, with an httpPort on its gateway? `npm start` starts one');
    expect(await harness(() => ({ status: 400, json: { message: 'id must be' } })).cairn('member', 'add', 'c4')).toBe(2);
  });

  it('resolves the HTTP address from --http, $CAIRN_HTTP, then the default', async () => {
    expect(await resolveHttp({ http: '10.0.0.1:81' })).toEqual({ host: '10.0.0.1', port: 81 });
    expect(await resolveHttp({}, { CAIRN_HTTP: 'x:82' })).toEqual({ host: 'x', port: 82 });
    expect(await resolveHttp({}, {})).toEqual({ host: '127.0.0.1', port: 8380 });
    expect(formatMembers({ voters: ['a'], learners: [], storage: [], confIndex: 3, committed: false })).toContain('(not committed yet)');
  });
});
