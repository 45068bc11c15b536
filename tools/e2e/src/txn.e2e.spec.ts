import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CairnClient, TxnOpKind, compare, op, type TxnOpResponse } from '@cairn/client';
import { useBusCluster } from './bus-cluster.spec-helpers';
import { runCli } from './fixtures';

/**
 * etcd-style transactions on real processes (issue 11): TXN over the TLV door, evaluated and applied
 * atomically at one revision by every storage node. A bank-transfer workload (compare the mod
 * revisions of both accounts, then move an amount) keeps the total constant, checked by a range
 * read inside a txn. The same txns through `POST /v1/txn` and the built `cairn txn` / `put --if-rev`.
 */
describe('transactions end to end', () => {
  const e2e = useBusCluster('e2e-txn');
  const kvOf = (r: TxnOpResponse) => (r.kind === TxnOpKind.Get ? r.kv : undefined);

  it('if/then/else at one revision; 8 clients x 20 transfers between 5 accounts keep the total at 500', async () => {
    const clients = await Promise.all(Array.from({ length: 8 }, () => CairnClient.connect({ host: '127.0.0.1', port: e2e.cfg.gatewayPort })));
    try {
      const c = clients[0];
      const accounts = ['acct/0', 'acct/1', 'acct/2', 'acct/3', 'acct/4'];
      // create every account only if none exists (create revision 0), all at one revision
      const init = await c.txn().if(compare.createRevision('acct/0', '=', 0)).then(...accounts.map((a) => op.put(a, '100'))).commit();
      expect(init.succeeded).toBe(true);
      const again = await c.txn().if(compare.createRevision('acct/0', '=', 0)).then(op.put('acct/0', '0')).else(op.get('acct/0')).commit();
      expect(again.succeeded).toBe(false);
      expect(kvOf(again.responses[0])).toMatchObject({ value: Buffer.from('100'), modRevision: init.revision, createRevision: init.revision, version: 1 });

      // compare-and-swap on a plain SET / DEL (request flag IF_REVISION)
      expect(await c.set('acct/0', '0', { ifRevision: init.revision - 1 })).toMatchObject({ applied: false });
      const cas = await c.set('cas', 'a', { ifRevision: 0 });
      expect(cas.applied).toBe(true);
      expect(await c.set('cas', 'b', { ifRevision: 0 })).toMatchObject({ applied: false });
      expect(await c.set('cas', 'b', { ifRevision: cas.revision })).toMatchObject({ applied: true });
      expect(await c.del('cas', { ifRevision: cas.revision })).toMatchObject({ applied: false });
      expect((await c.get('cas'))?.value.toString()).toBe('b');

      let conflicts = 0;
      let transfers = 0;
      await Promise.all(
        clients.map(async (client, n) => {
          for (let i = 0; i < 25; i++) {
            const from = accounts[(n + i) % 5];
            const to = accounts[(n + 2 * i + 1) % 5];
            if (from === to) continue;
            for (;;) {
              const read = await client.txn().then(op.get(from), op.get(to)).commit();
              const [a, b] = read.responses.map(kvOf);
              const amount = 1 + ((n + i) % 7);
              const t = await client
                .txn()
                .if(compare.modRevision(from, '=', a!.modRevision), compare.modRevision(to, '=', b!.modRevision))
                .then(op.put(from, String(Number(Buffer.from(a!.value).toString()) - amount)), op.put(to, String(Number(Buffer.from(b!.value).toString()) + amount)))
                .commit();
              if (t.succeeded) {
                transfers++;
                break;
              }
              conflicts++;
            }
          }
        }),
      );
      expect(transfers).toBe(160);
      const sum = await c.txn().then(op.range('acct/', { prefix: true })).commit();
      const page = sum.responses[0];
      if (page.kind !== TxnOpKind.Range) throw new Error('expected a range response');
      expect(page.count).toBe(5);
      expect(page.kvs.reduce((s, kv) => s + Number(Buffer.from(kv.value).toString()), 0)).toBe(500);
      // every account's last write is one transfer: both sides of a transfer share its revision
      expect(page.kvs.every((kv) => kv.modRevision > init.revision)).toBe(true);
      console.log(`txn e2e: ${transfers} transfers, ${conflicts} compare conflicts retried`);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
  });

  it('POST /v1/txn and cairn txn / put --if-rev / del --if-rev on the same cluster: a lock taken once, its holder read back', async () => {
    const http = `http://127.0.0.1:${e2e.cfg.httpPort}`;
    const take = { compare: [{ key: 'lock', target: 'CREATE', create_revision: 0 }], success: [{ request_put: { key: 'lock', value: 'http' } }], failure: [{ request_range: { key: 'lock' } }] };
    const post = async (body: unknown) => {
      const r = await fetch(`${http}/v1/txn`, { method: 'POST', body: JSON.stringify(body) });
      return { status: r.status, revision: Number(r.headers.get('x-cairn-revision')), json: (await r.json()) as { header: { revision: number }; succeeded: boolean; responses: unknown[] } };
    };
    const first = await post(take);
    expect(first).toMatchObject({ status: 200, json: { succeeded: true, responses: [{ response_put: {} }] } });
    expect(first.json.header.revision).toBe(first.revision);
    const second = await post(take);
    expect(second.json).toEqual({
      header: { revision: second.revision },
      succeeded: false,
      responses: [{ response_range: { count: 1, more: false, kvs: [{ key: 'lock', value: 'http', mod_revision: first.revision, create_revision: first.revision, version: 1 }] } }],
    });
    const get = await fetch(`${http}/v1/kv/lock`);
    expect([get.headers.get('cairn-mod-revision'), get.headers.get('cairn-version')]).toEqual([String(first.revision), '1']);

    const gw = ['--gateway', `127.0.0.1:${e2e.cfg.gatewayPort}`];
    const file = join(mkdtempSync(join(tmpdir(), 'cairn-e2e-txn-')), 'swap.txn');
    writeFileSync(file, `mod("lock") = "${first.revision}"\n\nput lock cli --prev-kv\n\nget lock\n`);
    expect(await runCli([...gw, 'txn', '--file', file])).toEqual({ code: 0, stdout: 'SUCCESS\n\nOK\nlock\nhttp\n', stderr: '' });
    const again = await runCli([...gw, '--json', 'txn', '--file', file]);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ succeeded: false, responses: [{ range: { count: 1, kvs: [{ key: 'lock', value: 'cli', version: 2, createRevision: first.revision }] } }] });
    // standard input, as `… | cairn txn`
    expect(await runCli([...gw, 'txn'], { input: 'value("lock") = "cli"\n\ndel lock\n' })).toEqual({ code: 0, stdout: 'SUCCESS\n\n1\n', stderr: '' });
    const put = await runCli([...gw, 'put', '--if-rev', '0', 'lock', 'cas']);
    expect(put.code).toBe(0);
    const refused = await runCli([...gw, 'put', '--if-rev', '0', 'lock', 'other']);
    expect(refused.code).toBe(6);
    expect(refused.stderr).toContain('not applied: lock exists (--if-rev 0)');
    const swapped = await runCli([...gw, 'put', '--if-rev', put.stdout.trim(), 'lock', 'swapped']);
    expect(swapped.code).toBe(0);
    expect(await runCli([...gw, 'del', '--if-rev', put.stdout.trim(), 'lock'])).toMatchObject({ code: 6 });
    expect(await runCli([...gw, 'del', '--if-rev', swapped.stdout.trim(), 'lock'])).toMatchObject({ code: 0 });
    // Fewer CLI runs (each a Node start): the last write and the delete checked through the client.
    const c = await CairnClient.connect({ host: '127.0.0.1', port: e2e.cfg.gatewayPort });
    try {
      expect(await c.get('lock')).toBeNull();
    } finally {
      await c.close();
    }
  });
});
