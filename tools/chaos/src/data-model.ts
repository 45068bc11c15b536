/**
 * The data-model workload of a chaos run (`--txn`, issue 11): next to get/put/delete/cas on the
 * `k*` keys, INCRBY on counters `n*` (through a CairnPool that retries each increment in its own
 * session, so a re-sent copy must apply at most once), bank transfers between accounts `a*`
 * (a range read of the accounts, then ONE etcd Txn: if both mod revisions are still the ones read,
 * put both new balances, else get both), and linearizable range reads of every account. Every
 * operation is recorded for libs/checker's map model (docs/checker.md): counters each alone,
 * the accounts as one component (the range reads link them).
 *
 * Values are unique (`<balance>|c<client>-t<n>`), so a compare on a mod revision is recorded as a
 * compare on the value read (the key's mod revision is r exactly when it holds the value written
 * at r; 0 = absent). An account never written holds the opening balance.
 */
import type { HistoryRecorder, Operation, TxnSpec } from '@cairn/checker';
import { BadRequestError, CairnPool, IncrRefusedError, TooLargeError, TxnOpKind, compare, op, type CairnClient, type RangeItem } from '@cairn/client';

/** Counters `n0..`, accounts `a0..` (the range [a, b) holds exactly the accounts: no other workload key starts with `a`). */
export const DATA_MODEL = { counters: 2, accounts: 4, openingBalance: 100, transferMax: 20, deltaMax: 3, rangeStart: 'a', rangeEnd: 'b' } as const;

export const counterKeys = (): string[] => Array.from({ length: DATA_MODEL.counters }, (_, i) => `n${i}`);
export const accountKeys = (): string[] => Array.from({ length: DATA_MODEL.accounts }, (_, i) => `a${i}`);

/** How a failed write is recorded (chaos.ts writeOutcome). */
type WriteOutcome = (err: unknown) => 'fail' | 'info';

/** What one client of the workload needs from the run. */
export interface DataModelContext {
  recorder: HistoryRecorder;
  clientId: number;
  random: () => number;
  host: string;
  port: number;
  requestTimeoutMs: number;
  writeOutcome: WriteOutcome;
}

/** One client's data-model operations; each method records what it did and resolves false when the operation failed (the caller backs off). */
export class DataModelClient {
  private pool: CairnPool | null = null;
  private transfers = 0;

  constructor(private readonly ctx: DataModelContext) {}

  /** A draw of `roll` in [0, 1): INCRBY 35 %, a counter read 10 %, a transfer 35 %, a range read 20 %. */
  async run(conn: CairnClient, roll: number): Promise<boolean> {
    if (roll < 0.35) return this.incr();
    if (roll < 0.45) return this.readCounter(conn);
    if (roll < 0.8) return this.transfer(conn);
    return (await this.readAccounts(conn)) !== null;
  }

  async close(): Promise<void> {
    await this.pool?.close().catch(() => this.pool?.destroy());
    this.pool = null;
  }

  private pick<T>(list: readonly T[]): T {
    return list[Math.floor(this.ctx.random() * list.length)]!;
  }

  /** INCRBY 1..deltaMax through the pool: retried in the pool's session until acknowledged or its request timeout. */
  private async incr(): Promise<boolean> {
    const { recorder, clientId, random } = this.ctx;
    const key = this.pick(counterKeys());
    const delta = 1 + Math.floor(random() * DATA_MODEL.deltaMax);
    const id = recorder.invokeIncr(clientId, key, delta);
    try {
      this.pool ??= await CairnPool.connect({
        gateways: [{ host: this.ctx.host, port: this.ctx.port }],
        connectTimeoutMs: 2000,
        requestTimeoutMs: 2 * this.ctx.requestTimeoutMs,
        attemptTimeoutMs: this.ctx.requestTimeoutMs,
      });
      recorder.okIncr(id, (await this.pool.incrBy(key, delta)).value);
      return true;
    } catch (e) {
      // Refused (not a number, malformed, too large): nothing written; a pool that could not connect
      // sent nothing. Any other error is indeterminate even when its last attempt was provably not
      // sent: an earlier attempt may have been applied (chaos.ts writeOutcome judges one attempt).
      if (e instanceof IncrRefusedError || e instanceof BadRequestError || e instanceof TooLargeError || !this.pool) recorder.fail(id);
      else recorder.info(id);
      return false;
    }
  }

  private async readCounter(conn: CairnClient): Promise<boolean> {
    const { recorder, clientId } = this.ctx;
    const key = this.pick(counterKeys());
    const id = recorder.invoke(clientId, 'get', key);
    try {
      const got = await conn.get(key);
      recorder.ok(id, got ? got.value.toString('utf8') : null);
      return true;
    } catch {
      recorder.fail(id); // a read has no effect
      return false;
    }
  }

  /** A linearizable range read of every account, recorded; null when it failed. */
  private async readAccounts(conn: CairnClient): Promise<RangeItem[] | null> {
    const { recorder, clientId } = this.ctx;
    const id = recorder.invokeRange(clientId, DATA_MODEL.rangeStart, DATA_MODEL.rangeEnd);
    try {
      const page = await conn.range({ start: DATA_MODEL.rangeStart, end: DATA_MODEL.rangeEnd });
      if (page.more) throw new Error(`RangePageInvariant: ${DATA_MODEL.accounts} accounts did not fit one page`);
      recorder.okRange(
        id,
        page.items.map((it) => [it.key.toString('utf8'), it.value.toString('utf8')]),
      );
      return page.items;
    } catch (e) {
      recorder.fail(id);
      if ((e as Error).message.startsWith('RangePageInvariant')) throw e;
      return null;
    }
  }

  /** Reads the accounts, then moves 1..transferMax from one to another in one txn guarded by both mod revisions. */
  private async transfer(conn: CairnClient): Promise<boolean> {
    const { recorder, clientId, random } = this.ctx;
    const items = await this.readAccounts(conn);
    if (!items) return false;
    const accounts = accountKeys();
    const from = this.pick(accounts);
    const to = accounts.filter((a) => a !== from)[Math.floor(random() * (accounts.length - 1))]!;
    const amount = 1 + Math.floor(random() * DATA_MODEL.transferMax);
    const seen = (key: string) => items.find((it) => it.key.toString('utf8') === key);
    const valueOf = (key: string) => seen(key)?.value.toString('utf8') ?? null;
    const balance = (key: string) => {
      const v = valueOf(key);
      return v === null ? DATA_MODEL.openingBalance : Number(v.split('|')[0]);
    };
    const tag = `c${clientId}-t${++this.transfers}`;
    const spec: TxnSpec = {
      compares: [
        { key: from, value: valueOf(from) },
        { key: to, value: valueOf(to) },
      ],
      success: [
        { kind: 'put', key: from, value: `${balance(from) - amount}|${tag}` },
        { kind: 'put', key: to, value: `${balance(to) + amount}|${tag}` },
      ],
      failure: [
        { kind: 'get', key: from },
        { kind: 'get', key: to },
      ],
    };
    const id = recorder.invokeTxn(clientId, spec);
    try {
      const r = await conn
        .txn()
        .if(compare.modRevision(from, '=', seen(from)?.revision ?? 0), compare.modRevision(to, '=', seen(to)?.revision ?? 0))
        .then(...spec.success.map((s) => op.put(s.key, s.kind === 'put' ? s.value : '')))
        .else(op.get(from), op.get(to))
        .commit();
      const results = r.succeeded ? [] : r.responses.map((x) => (x.kind === TxnOpKind.Get && x.kv ? Buffer.from(x.kv.value).toString('utf8') : null));
      recorder.okTxn(id, r.succeeded, results);
      return true;
    } catch (e) {
      if (this.ctx.writeOutcome(e) === 'fail') recorder.fail(id);
      else recorder.info(id);
      return false;
    }
  }
}

/**
 * A copy of a data-model history with one deliberate anomaly, for showing that the checker fails
 * it (tests, `--check-history` experiments):
 * - `double-incr`: the first acknowledged increment returns one delta more (applied twice);
 * - `torn-txn`: a range read after a succeeded transfer sees its debit but not its credit;
 * - `range-missing-write`: a range read of every account misses one written account.
 * @throws Error when the history has no operation to break that way.
 */
export function breakHistory(ops: readonly Operation[], how: 'double-incr' | 'torn-txn' | 'range-missing-write'): Operation[] {
  const copy = ops.map((op) => structuredClone(op));
  const ok = (op: Operation, kind: Operation['kind']) => op.kind === kind && op.outcome === 'ok';
  if (how === 'double-incr') {
    const inc = copy.find((op) => ok(op, 'incr'));
    if (!inc) throw new Error('breakHistory: no acknowledged increment');
    inc.value = String(BigInt(inc.value!) + BigInt(inc.delta!));
    return copy;
  }
  if (how === 'range-missing-write') {
    const r = copy.find((op) => ok(op, 'range') && op.entries!.length > 0);
    if (!r) throw new Error('breakHistory: no range read that saw an account');
    r.entries = r.entries!.slice(1);
    return copy;
  }
  for (const t of copy.filter((op) => ok(op, 'txn') && op.succeeded)) {
    const [debit, credit] = t.txn!.success as { key: string; value: string }[];
    const r = copy.find((op) => ok(op, 'range') && op.invokeMs > t.completeMs! && op.entries!.some(([k, v]) => k === debit!.key && v === debit!.value) && op.entries!.some(([k, v]) => k === credit!.key && v === credit!.value));
    if (!r) continue;
    const before = t.txn!.compares.find((c) => c.key === credit!.key)!.value;
    r.entries = r.entries!.flatMap(([k, v]): [string, string][] => (k !== credit!.key ? [[k, v]] : before === null ? [] : [[k, before]]));
    return copy;
  }
  throw new Error('breakHistory: no range read that saw both sides of a transfer');
}
