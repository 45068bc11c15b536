import { CommandOp, CompareResult, CompareTarget, LeaseRefusal, Status, TxnOpFlags, TxnOpKind, decodeTxnCommandValue, type Command, type TxnCommandValue, type TxnResult } from '@cairn/protocol';
import { ClusterView } from '../cluster/cluster-view';
import { GatewayMetrics } from '../metrics/gateway-metrics';
import type { KvPaths } from '../paths/kv-session';
import type { WriteResult } from '../paths/write-path';
import { HttpApi } from './http-api';

const EMPTY = Buffer.alloc(0);
const b = (s: string) => Buffer.from(s);
const kv = (key: string | Buffer, value: string | Buffer, modRevision: number, createRevision = modRevision, version = 1) => ({ key: Buffer.from(key), value: Buffer.from(value), modRevision, createRevision, version });

/** An HTTP door whose write path records the Txn commands it gets and answers `answer`. */
async function start(opts: { opsMax?: number } = {}) {
  const sent: TxnCommandValue[] = [];
  const state = { answer: { status: Status.Ok, revision: 12, message: '', txn: { succeeded: true, responses: [] } as TxnResult } as WriteResult };
  const writes = {
    submit: async (c: Command): Promise<WriteResult> => {
      expect(c.op).toBe(CommandOp.Txn);
      sent.push(decodeTxnCommandValue(c.value));
      return state.answer;
    },
  } satisfies KvPaths['writes'];
  const view = new ClusterView();
  const txnBounds = { opsMax: opts.opsMax ?? 128, resultBytesMax: 100_000, keysMax: 50 };
  const api = new HttpApi({ gatewayId: 'g1', paths: { reads: { get: () => Promise.reject(new Error('a txn reads through its write')) }, writes, limits: { keyBytesMax: 64, valueBytesMax: 1024 }, txnBounds }, view, metrics: new GatewayMetrics(view) });
  await api.listen('127.0.0.1', 0);
  const base = `http://127.0.0.1:${api.port()}`;
  const post = (body: unknown, headers: Record<string, string> = { 'content-type': 'application/json' }) => fetch(`${base}/v1/txn`, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body), headers });
  return { api, sent, state, post };
}

let s: Awaited<ReturnType<typeof start>>;
afterEach(() => s.api.close());

describe('POST /v1/txn (etcd v3 JSON gateway shapes)', () => {
  it('turns compares and put / range / delete ops into one Txn command and answers etcd TxnResponse JSON', async () => {
    s = await start();
    s.state.answer = {
      status: Status.Ok,
      revision: 12,
      message: '',
      txn: {
        succeeded: true,
        responses: [
          { kind: TxnOpKind.Put, prev: kv('a', 'old', 7, 3, 2) },
          { kind: TxnOpKind.Range, count: 3, more: true, kvs: [kv('p/2', '', 9), kv('p/1', '', 8)] },
          { kind: TxnOpKind.Delete, deleted: 1, prev: [kv('x', 'gone', 5)] },
        ],
      },
    };
    const r = await s.post({
      compare: [
        { key: 'a', target: 'MOD', result: 'EQUAL', mod_revision: '7' },
        { key: 'a', target: 'VALUE', result: 'NOT_EQUAL', value: 'zz' },
        { key: 'b', target: 'VERSION', result: 'LESS', version: 3 },
        { key: 'c', target: 'CREATE', create_revision: 0 },
      ],
      success: [
        { request_put: { key: 'a', value: 'new', prev_kv: true } },
        { request_range: { key: 'p/', prefix: true, keys_only: true, sort_order: 'DESCEND', limit: 2 } },
        { request_delete_range: { key: 'x', range_end: '\u0000', prev_kv: true } },
      ],
      failure: [{ request_range: { key: 'a' } }, { request_range: { key: 'a', range_end: 'b', count_only: true } }, { request_put: { key: 'n', value: '2', ignore_lease: true } }],
    });
    expect(r.status).toBe(200);
    expect(r.headers.get('x-cairn-revision')).toBe('12');
    expect(await r.json()).toEqual({
      header: { revision: 12 },
      succeeded: true,
      responses: [
        { response_put: { prev_kv: { key: 'a', value: 'old', mod_revision: 7, create_revision: 3, version: 2 } } },
        { response_range: { count: 3, more: true, kvs: [{ key: 'p/2', mod_revision: 9, create_revision: 9, version: 1 }, { key: 'p/1', mod_revision: 8, create_revision: 8, version: 1 }] } },
        { response_delete_range: { deleted: 1, prev_kvs: [{ key: 'x', value: 'gone', mod_revision: 5, create_revision: 5, version: 1 }] } },
      ],
    });
    expect(s.sent).toEqual([
      {
        limits: { resultBytesMax: 100_000, keysMax: 50 },
        request: {
          compares: [
            { key: b('a'), target: CompareTarget.ModRevision, result: CompareResult.Equal, operand: 7 },
            { key: b('a'), target: CompareTarget.Value, result: CompareResult.NotEqual, value: b('zz') },
            { key: b('b'), target: CompareTarget.Version, result: CompareResult.Less, operand: 3 },
            { key: b('c'), target: CompareTarget.CreateRevision, result: CompareResult.Equal, operand: 0 },
          ],
          success: [
            { kind: TxnOpKind.Put, key: b('a'), value: b('new'), flags: TxnOpFlags.PrevKv },
            { kind: TxnOpKind.Range, key: b('p/'), end: EMPTY, flags: TxnOpFlags.Prefix | TxnOpFlags.KeysOnly | TxnOpFlags.Reverse, limit: 2 },
            { kind: TxnOpKind.Delete, key: b('x'), end: Buffer.from([0]), flags: TxnOpFlags.PrevKv },
          ],
          failure: [
            { kind: TxnOpKind.Range, key: b('a'), end: EMPTY, flags: 0, limit: 0 },
            { kind: TxnOpKind.Range, key: b('a'), end: b('b'), flags: TxnOpFlags.CountOnly, limit: 0 },
            { kind: TxnOpKind.Put, key: b('n'), value: b('2'), flags: TxnOpFlags.KeepTtl },
          ],
        },
      },
    ]);
  });

  it('answers 200 succeeded false with the failure branch, as etcd; any Content-Type is read as JSON', async () => {
    s = await start();
    s.state.answer = { status: Status.Ok, revision: 20, message: '', txn: { succeeded: false, responses: [{ kind: TxnOpKind.Range, count: 1, more: false, kvs: [kv('a', 'v', 4)] }] } };
    const r = await s.post('{"compare":[{"key":"a","target":"MOD","mod_revision":3}],"success":[{"request_put":{"key":"a","value":"w"}}],"failure":[{"request_range":{"key":"a"}}]}', { 'content-type': 'application/x-www-form-urlencoded' });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ header: { revision: 20 }, succeeded: false, responses: [{ response_range: { count: 1, more: false, kvs: [{ key: 'a', value: 'v', mod_revision: 4, create_revision: 4, version: 1 }] } }] });
  });

  it('encoding base64: keys, values and range ends in base64 both ways; with utf8, a kv that is not UTF-8 comes in base64 and says so', async () => {
    s = await start();
    const bin = Buffer.from([0xff, 0x00, 0xfe]);
    s.state.answer = { status: Status.Ok, revision: 3, message: '', txn: { succeeded: true, responses: [{ kind: TxnOpKind.Range, count: 1, more: false, kvs: [kv(bin, 'v', 2)] }] } };
    const r = await s.post({ encoding: 'base64', compare: [{ key: bin.toString('base64'), target: 'VALUE', value: 'dg==' }], success: [{ request_range: { key: 'AA==', range_end: '/w==' } }] });
    expect(r.status).toBe(200);
    expect(await r.json()).toMatchObject({ responses: [{ response_range: { kvs: [{ key: bin.toString('base64'), value: 'dg==' }] } }] });
    expect(s.sent[0].request.compares[0]).toEqual({ key: bin, target: CompareTarget.Value, result: CompareResult.Equal, value: b('v') });
    expect(s.sent[0].request.success[0]).toMatchObject({ key: Buffer.from([0]), end: Buffer.from([0xff]) });
    const u = await s.post({ success: [{ request_range: { key: 'k' } }] });
    expect(await u.json()).toMatchObject({ responses: [{ response_range: { kvs: [{ key: bin.toString('base64'), value: 'dg==', encoding: 'base64' }] } }] });
    const bad = await s.post({ encoding: 'base64', success: [{ request_put: { key: 'not base64!', value: '' } }] });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ error: 'BAD_REQUEST', message: 'success.0.request_put.key is not base64' });
  });

  it('400 for a malformed body, naming the field; nothing is proposed', async () => {
    s = await start();
    const cases: [unknown, string][] = [
      [{ compare: [{ key: 'a', result: 'EQUAL' }] }, 'compare.0: target must be VALUE, VERSION, CREATE or MOD'],
      [{ compare: [{ key: 'a', target: 'MOD', version: 2 }] }, 'compare.0: target MOD compares mod_revision, not version'],
      [{ compare: [{ key: 'a', target: 'VALUE', mod_revision: 2 }] }, 'compare.0: target VALUE compares value, not mod_revision'],
      [{ compare: [{ key: 'a', target: 'MOD', mod_revision: -1 }] }, 'compare.0: mod_revision must be an integer in 0..2^53-1 (a JSON number or a decimal string)'],
      [{ success: [{ request_put: { key: 'a' }, request_range: { key: 'a' } }] }, 'success.0 must hold exactly one of request_put, request_range, request_delete_range'],
      [{ success: [{}] }, 'success.0 must hold exactly one of request_put, request_range, request_delete_range'],
      [{ failure: [{ request_range: { key: 'a', prefix: true, range_end: 'b' } }] }, 'failure.0.request_range: prefix excludes range_end'],
      [{ success: [{ request_range: { key: 'a', sort_target: 'MOD' } }] }, 'success.0.request_range: sort_target must be KEY (ranges are in key order)'],
      // etcd's ignore_value is not supported (lease is: below).
      [{ success: [{ request_put: { key: 'a', ignore_value: true } }] }, 'success.0.request_put: property ignore_value should not exist'],
      [{ compares: [] }, 'property compares should not exist'],
      [{ encoding: 'hex' }, 'encoding must be utf8 or base64'],
      [{ success: [{ request_put: { key: '', value: 'v' } }] }, 'empty key'],
    ];
    for (const [body, message] of cases) {
      const r = await s.post(body);
      expect({ body, status: r.status, json: await r.json() }).toEqual({ body, status: 400, json: { error: 'BAD_REQUEST', message } });
    }
    for (const raw of ['{"compare": [', '[]', '"txn"']) expect((await s.post(raw)).status).toBe(400);
    expect(s.sent).toEqual([]);
  });

  it('bounds: gateway.txnOpsMax (400), a key over keyBytesMax, the encoded txn over valueBytesMax, the body over 2 × valueBytesMax (413); nothing is proposed', async () => {
    s = await start({ opsMax: 2 });
    const get = { request_range: { key: 'a' } };
    const ops = await s.post({ compare: [{ key: 'a', target: 'VERSION' }], success: [get], failure: [get] });
    expect(ops.status).toBe(400);
    expect(await ops.json()).toEqual({ error: 'BAD_REQUEST', message: 'a transaction holds at most 2 compares and ops (txnOpsMax), got 3' });
    const key = await s.post({ success: [{ request_put: { key: 'k'.repeat(65), value: '' } }] });
    expect(key.status).toBe(413);
    const encoded = await s.post({ success: [{ request_put: { key: 'a', value: 'v'.repeat(600) } }, { request_put: { key: 'b', value: 'v'.repeat(600) } }] });
    expect(encoded.status).toBe(413);
    expect(await encoded.json()).toEqual({ error: 'TOO_LARGE', message: 'the transaction is 1228 bytes encoded; valueBytesMax is 1024' });
    const body = await s.post({ success: [{ request_put: { key: 'a', value: 'v'.repeat(2100) } }] });
    expect(body.status).toBe(413);
    expect(((await body.json()) as { message: string }).message).toMatch(/^body is \d+ bytes; the txn body limit \(2 × valueBytesMax\) is 2048$/);
    expect(s.sent).toEqual([]);
  });

  it('maps the cluster\'s answers as the other /v1 routes: TOO_LARGE at apply 413, UNAVAILABLE 503 with Retry-After, ERROR 500', async () => {
    s = await start();
    const body = { success: [{ request_range: { key: 'a', range_end: '\u0000' } }] };
    s.state.answer = { status: Status.TooLarge, revision: 0, message: 'transaction result over resultBytesMax' };
    const large = await s.post(body);
    expect([large.status, await large.json()]).toEqual([413, { error: 'TOO_LARGE', message: 'transaction result over resultBytesMax' }]);
    s.state.answer = { status: Status.Unavailable, revision: 0, message: 'no leader' };
    const unavailable = await s.post(body);
    expect([unavailable.status, unavailable.headers.get('retry-after'), await unavailable.json()]).toEqual([503, '1', { error: 'UNAVAILABLE', message: 'no leader' }]);
    s.state.answer = { status: Status.Error, revision: 0, message: 'applied at revision 9, result no longer known' };
    expect((await s.post(body)).status).toBe(500);
  });

  it('request_put.lease (etcd PutRequest.lease, a number or a decimal string) is op flag LEASE; refused at apply: 404 lease not found, 413 lease full; with ignore_lease or out of range: 400, nothing proposed', async () => {
    s = await start();
    s.state.answer = { status: Status.Ok, revision: 12, message: '', txn: { succeeded: true, responses: [{ kind: TxnOpKind.Put }, { kind: TxnOpKind.Put }] } };
    const ok = await s.post({ success: [{ request_put: { key: 'a', value: '1', lease: 7 } }, { request_put: { key: 'b', value: '2', lease: '9007199254740991', prev_kv: true } }] });
    expect(ok.status).toBe(200);
    expect(s.sent[0].request.success).toEqual([
      { kind: TxnOpKind.Put, key: b('a'), value: b('1'), flags: TxnOpFlags.Lease, lease: 7 },
      { kind: TxnOpKind.Put, key: b('b'), value: b('2'), flags: TxnOpFlags.Lease | TxnOpFlags.PrevKv, lease: 2 ** 53 - 1 },
    ]);
    const body = { success: [{ request_put: { key: 'a', value: '1', lease: 7 } }] };
    s.state.answer = { status: Status.ConditionFailed, revision: 13, message: "transaction refused: a put's lease not found (nothing applied)", leaseRefusal: LeaseRefusal.NotFound };
    const missing = await s.post(body);
    expect([missing.status, await missing.json()]).toEqual([404, { error: 'NOT_FOUND', message: "transaction refused: a put's lease not found (nothing applied)" }]);
    s.state.answer = { status: Status.ConditionFailed, revision: 14, message: 'lease full', leaseRefusal: LeaseRefusal.KeysFull };
    expect((await s.post(body)).status).toBe(413);
    s.sent.length = 0;
    for (const put of [{ key: 'a', lease: 7, ignore_lease: true }, { key: 'a', lease: 0 }, { key: 'a', lease: 2 ** 53 }, { key: 'a', lease: 'x' }]) {
      const bad = await s.post({ success: [{ request_put: put }] });
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as { message: string }).message).toMatch(/lease/);
    }
    expect(s.sent).toEqual([]);
  });
});
