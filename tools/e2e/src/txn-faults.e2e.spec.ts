import { CairnPool, TxnOpKind, compare, op, type RangePage, type TxnCommitResult, type TxnKv } from '@cairn/client';
import { faultRetryingPool, useTwoGatewayCluster } from './bus-cluster.spec-helpers';
import { runCli, twoFaultSchedule } from './fixtures';

const CLIENTS = 8;
const PER_CLIENT = Number(process.env.CAIRN_TXN_PER_CLIENT ?? 40);
const ACCOUNTS = Array.from({ length: 10 }, (_, i) => `acct/${i}`);
const OPENING = 1000;
const TOTAL = OPENING * ACCOUNTS.length;
const STORAGE = ['s1', 's2'];
/** Re-sends of one transfer txn after unknown outcomes before the test gives up on it. */
const RESENDS_MAX = 200;

interface Account {
  balance: number;
  modRevision: number;
}

/** A transfer the cluster applied, and how the client learnt it. */
interface Applied {
  from: string;
  to: string;
  amount: number;
  /** `marker`: its answer was lost; a re-sent copy failed its compares and the marker showed the first copy applied. */
  how: 'answer' | 'marker';
}

const isRetryable = (e: unknown) => (e as { retryable?: unknown }).retryable === true;
const kvsOf = (r: TxnCommitResult, i: number): TxnKv[] => {
  const x = r.responses[i];
  if (x.kind === TxnOpKind.Range) return x.kvs;
  if (x.kind === TxnOpKind.Get) return x.kv ? [x.kv] : [];
  throw new Error(`response ${i} is not a read`);
};

/**
 * The bank-transfer workload of issue 11's acceptance on real processes: 8 CairnPools over two
 * gateways move amounts between 10 accounts with etcd-style transactions
 * (`if mod(from) = r1 ∧ mod(to) = r2 ∧ create(marker) = 0 then put from, put to, put marker
 * else get marker, range acct/`), while the Raft leader is SIGKILLed and then a gateway is
 * SIGKILLed holding committed transfers it could not answer (storage nodes frozen first, as in
 * incr-faults). A transfer whose outcome is unknown (lost connection, timeout, UNAVAILABLE) is
 * re-sent unchanged: its compares make a second copy fail once the first applied (the mod
 * revisions moved and its marker exists), and the failure branch's marker read says which
 * happened, so nothing applies twice. Linearizable range reads of `acct/` (one page, one revision)
 * during and after the faults always sum to the opening total; at the end every account equals
 * its opening balance plus the transfers the clients know applied, and there is exactly one
 * marker per applied transfer.
 */
describe('bank transfers through a leader SIGKILL and a gateway SIGKILL', () => {
  const e2e = useTwoGatewayCluster('txnfaults', STORAGE);
  const connect = () => faultRetryingPool(e2e.ports);

  it(`${CLIENTS} clients × ${PER_CLIENT} transfers between ${ACCOUNTS.length} accounts: every range read sums to ${TOTAL}, each transfer applied once`, async () => {
    const pools = await Promise.all(Array.from({ length: CLIENTS }, connect));
    const checker = await connect();
    const applied: Applied[] = [];
    let resends = 0;
    let conflicts = 0;
    let running = CLIENTS;
    const checks = { reads: 0, afterFaults: [0, 0], errors: 0 };
    const sumOf = (page: RangePage) => page.items.reduce((s, it) => s + Number(it.value.toString()), 0);

    const schedule = twoFaultSchedule({ cluster: e2e.cluster, pools, gateways: e2e.ports.length, storage: STORAGE, total: CLIENTS * PER_CLIENT, inflightWanted: () => running });
    const { faults } = schedule;
    const onApplied = () => schedule.progress(applied.length);

    /** One client: a cache of every account (refreshed from each failed txn), transfers sent until each is known applied once. */
    const client = async (pool: CairnPool, n: number) => {
      const cache = new Map<string, Account>();
      const refresh = (kvs: TxnKv[]) => kvs.forEach((kv) => cache.set(Buffer.from(kv.key).toString(), { balance: Number(Buffer.from(kv.value).toString()), modRevision: kv.modRevision }));
      refresh((await pool.range({ prefix: 'acct/' })).items.map((it) => ({ ...it, modRevision: it.revision })));
      for (let i = 0; i < PER_CLIENT; i++) {
        const from = ACCOUNTS[(n + 3 * i) % ACCOUNTS.length];
        const to = ACCOUNTS[(n + 3 * i + 1 + (i % 7)) % ACCOUNTS.length];
        const amount = 1 + ((n * 7 + i) % 50);
        const marker = `xfer/${n}/${i}`;
        for (;;) {
          const a = cache.get(from)!;
          const b = cache.get(to)!;
          const txn = pool
            .txn()
            .if(compare.modRevision(from, '=', a.modRevision), compare.modRevision(to, '=', b.modRevision), compare.createRevision(marker, '=', 0))
            .then(op.put(from, String(a.balance - amount)), op.put(to, String(b.balance + amount)), op.put(marker, `${from}>${to}:${amount}`))
            .else(op.get(marker), op.range('acct/', { prefix: true }));
          let r: TxnCommitResult | null = null;
          for (let sent = 0; r === null; sent++) {
            try {
              r = await txn.commit();
            } catch (e) {
              // Unknown outcome: send the very same txn again; its compares let at most one copy apply.
              if (!isRetryable(e) || sent >= RESENDS_MAX) throw e;
              resends++;
            }
          }
          if (r.succeeded) {
            cache.set(from, { balance: a.balance - amount, modRevision: r.revision });
            cache.set(to, { balance: b.balance + amount, modRevision: r.revision });
            applied.push({ from, to, amount, how: 'answer' });
            onApplied();
            break;
          }
          refresh(kvsOf(r, 1));
          if (kvsOf(r, 0).length === 1) {
            applied.push({ from, to, amount, how: 'marker' });
            onApplied();
            break;
          }
          conflicts++;
        }
      }
      running--;
    };

    try {
      const opening = await checker
        .txn()
        .if(compare.createRevision(ACCOUNTS[0], '=', 0))
        .then(...ACCOUNTS.map((a) => op.put(a, String(OPENING))))
        .commit();
      expect(opening.succeeded).toBe(true);
      let done = false;
      const readChecker = (async () => {
        while (!done) {
          try {
            const page = await checker.range({ prefix: 'acct/' });
            expect(page.items.map((it) => it.key.toString())).toEqual(ACCOUNTS);
            expect(sumOf(page)).toBe(TOTAL);
            checks.reads++;
            if (faults.length >= 1) checks.afterFaults[faults.length - 1]++;
          } catch (e) {
            if (!isRetryable(e)) throw e;
            checks.errors++;
          }
        }
      })();
      try {
        await Promise.all(pools.map((p, n) => client(p, n)));
        await schedule.finished();
      } finally {
        done = true;
        await readChecker;
      }
      const { victimHeld } = schedule;
      expect(faults).toHaveLength(2);
      expect(faults[1]).toMatch(/^g[12]$/);
      expect(victimHeld).toBeGreaterThanOrEqual(1);
      // The killed gateway held transfers whose outcome its clients could not know: each was re-sent.
      expect(resends).toBeGreaterThanOrEqual(victimHeld);
      expect(applied).toHaveLength(CLIENTS * PER_CLIENT);
      expect(checks.afterFaults[1]).toBeGreaterThanOrEqual(1);

      // After the faults: the total, each account against the ledger of applied transfers, one marker each.
      const final = await checker.range({ prefix: 'acct/' });
      expect(sumOf(final)).toBe(TOTAL);
      const expected = new Map(ACCOUNTS.map((a) => [a, OPENING]));
      for (const t of applied) {
        expected.set(t.from, expected.get(t.from)! - t.amount);
        expected.set(t.to, expected.get(t.to)! + t.amount);
      }
      expect(new Map(final.items.map((it) => [it.key.toString(), Number(it.value.toString())]))).toEqual(expected);
      expect((await checker.range({ prefix: 'xfer/', countOnly: true })).count).toBe(applied.length);

      // The same state through the built CLI's range read (cairn get --prefix / ls on real processes).
      const endpoints = e2e.ports.map((p) => `127.0.0.1:${p}`).join(',');
      const cli = await runCli(['--endpoints', endpoints, '--json', 'get', '--prefix', 'acct/']);
      expect(cli.code).toBe(0);
      const json = JSON.parse(cli.stdout) as { kvs: { key: string; value: string }[]; count: number; more: boolean };
      expect(json).toMatchObject({ count: ACCOUNTS.length, more: false });
      expect(new Map(json.kvs.map((kv) => [kv.key, Number(kv.value)]))).toEqual(expected);
      const ls = await runCli(['--endpoints', endpoints, 'ls', 'xfer/0/', '--limit', '3']);
      expect(ls.code).toBe(0);
      expect(ls.stdout.split('\n').filter(Boolean)).toHaveLength(3);

      const byMarker = applied.filter((t) => t.how === 'marker').length;
      process.stderr.write(
        `txn-faults: ${applied.length} transfers (${byMarker} known applied only by their marker), ${conflicts} compare conflicts, ${resends} re-sends after unknown outcomes (${victimHeld} in flight at the killed gateway), ${checks.reads} range checks (${checks.afterFaults.join('/')} after each fault, ${checks.errors} retryable errors), faults ${faults.join(', ')}\n`,
      );
    } finally {
      await Promise.all([...pools, checker].map((p) => p.close()));
    }
  });
});
