import { CompareResult, CompareTarget, Status, TxnOpFlags, TxnOpKind, type CommandMeta, type TxnCompare, type TxnOp, type TxnOpResponse, type TxnRequest, type TxnResult } from '@cairn/protocol';
import { NULL_ARRAY, OK, PONG, encodeArray, encodeBulk, encodeBulkArray, encodeError, encodeInteger, encodeSimpleString } from '@cairn/resp';
import type { KvResult, KvSession } from '../paths/kv-session';
import { i64Arg, kvError, parseSetOptions, type Command, type RespClient, type SetOptions } from './commands';

/**
 * Bounds of the RESP door's transactions (docs/resp.md "Transactions"; gateway.respMulti…Max,
 * respWatchedKeysMax, respTxnAttemptsMax).
 */
export interface MultiLimits {
  /** Commands one MULTI queues at most; one more gets an error and flags the MULTI (EXEC: -EXECABORT). */
  commandsMax: number;
  /** Argument bytes one MULTI queues at most (same error). */
  bytesMax: number;
  /** Keys one connection WATCHes at most; a WATCH beyond gets an error and watches nothing more. */
  watchedKeysMax: number;
  /** Attempts of one EXEC (or SET … GET with a TTL) whose read keys change between its reads and its txn. */
  attemptsMax: number;
  /** The gateway's gateway.txnOpsMax: an EXEC whose read and watched keys alone exceed it is refused before reading anything. */
  txnOpsMax: number;
}

export const MULTI_LIMITS_DEFAULT: MultiLimits = Object.freeze({ commandsMax: 1024, bytesMax: 1024 * 1024, watchedKeysMax: 128, attemptsMax: 16, txnOpsMax: 128 });

/** A queued command on the txn's view: the keys whose current state it reads, and its run (writes go into the view). */
interface Plan {
  reads: Buffer[];
  run(v: TxnView): Buffer;
}

interface Watched {
  key: Buffer;
  /** The key's mod revision when WATCHed (0: missing). */
  revision: number;
}

/** One connection's MULTI queue and WATCHed keys. */
export interface TxnState {
  /** Commands queued since MULTI (a Plan, or the error EXEC answers for it); null outside MULTI. */
  queue: (Plan | Buffer)[] | null;
  queuedBytes: number;
  /** A command was refused while queueing (or the queue overflowed): EXEC answers -EXECABORT. */
  aborted: boolean;
  watched: Map<string, Watched>;
  /** A WATCH read failed: the key's revision is unknown, so the next EXEC fails (null array). */
  watchBroken: boolean;
}

const err = (message: string) => encodeError(message);
const QUEUED = encodeSimpleString('QUEUED');
const EXECABORT = err('EXECABORT Transaction discarded because of previous errors.');
const NOT_INTEGER = err('ERR value is not an integer or out of range');
const OVERFLOW = err('ERR increment or decrement would overflow');
const latin1 = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
const copy = (b: Buffer) => Buffer.from(b);
/** Commands that run at once inside MULTI instead of being queued (Redis processCommand). */
const RUN_IN_MULTI = new Set(['exec', 'discard', 'multi', 'watch', 'quit']);
const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;

/**
 * The state of the keys one EXEC reads and writes: values read before its txn (null = missing),
 * then each queued command's writes in order, so a later command sees an earlier one's.
 */
class TxnView {
  private readonly keys = new Map<string, { key: Buffer; value: Buffer | null; written: boolean; keepTtl: boolean }>();

  constructor(read: { key: Buffer; value: Buffer | null }[]) {
    for (const r of read) this.keys.set(latin1(r.key), { ...r, written: false, keepTtl: false });
  }

  /** @throws Error TxnViewReadsDeclared when `key` was neither read nor written (its plan did not declare it). */
  get(key: Buffer): Buffer | null {
    const e = this.keys.get(latin1(key));
    if (!e) throw new Error('TxnViewReadsDeclared: a queued command read a key its plan did not declare');
    return e.value;
  }

  /**
   * Writes `value` (null: deletes). `keepTtl` (INCR and its kin: Redis keeps a key's TTL through
   * them, while SET, MSET, GETSET and DEL clear it): the put keeps the key's expiry only when every
   * write of the key in this EXEC kept it and the key existed when read (a missing key has none).
   */
  set(key: Buffer, value: Buffer | null, keepTtl = false): void {
    const before = this.keys.get(latin1(key));
    const kept = keepTtl && value !== null && before !== undefined && (before.written ? before.keepTtl : before.value !== null);
    this.keys.set(latin1(key), { key, value, written: true, keepTtl: kept });
  }

  /** One put or delete per key written, its last state; a put that keeps the key's expiry carries KEEP_TTL. */
  ops(): TxnOp[] {
    return [...this.keys.values()]
      .filter((e) => e.written)
      .map((e) => (e.value === null ? { kind: TxnOpKind.Delete, key: e.key, end: Buffer.alloc(0) } : { kind: TxnOpKind.Put, key: e.key, value: e.value, ...(e.keepTtl ? { flags: TxnOpFlags.KeepTtl } : {}) }));
  }
}

/**
 * Per-key turns among this gateway's read-then-write transactions (EXEC, SET … GET with an
 * expiry): two of them reading the same key would make each other's compares fail and retry, so
 * they take turns instead (keys locked in sorted order: no deadlock). Correctness never depends
 * on it: the compares do; it only keeps clients of one gateway from starving each other. At most
 * one entry per key some transaction holds or waits for.
 */
export class KeyTurns {
  private readonly tails = new Map<string, Promise<void>>();

  /** Waits for the turn on every key; resolves with the function that ends it. */
  async take(keys: Buffer[]): Promise<() => void> {
    const names = [...new Set(keys.map(latin1))].sort();
    const ends: (() => void)[] = [];
    for (const name of names) {
      const before = this.tails.get(name) ?? Promise.resolve();
      let end!: () => void;
      const mine = new Promise<void>((resolve) => (end = resolve));
      this.tails.set(name, mine);
      ends.push(() => {
        if (this.tails.get(name) === mine) this.tails.delete(name);
        end();
      });
      await before;
    }
    return () => ends.forEach((e) => e());
  }

  /** Keys some transaction holds or waits for (tests). */
  size(): number {
    return this.tails.size;
  }
}

/** Redis string2ll on a stored value; null when it is not a decimal signed 64-bit integer. */
function counterOf(v: Buffer | null): bigint | null {
  if (v === null) return 0n;
  const s = v.toString('latin1');
  if (s.length > 20 || !/^(0|-?[1-9][0-9]*)$/.test(s)) return null;
  const n = BigInt(s);
  return n < I64_MIN || n > I64_MAX ? null : n;
}

const constant = (reply: Buffer): Plan => ({ reads: [], run: () => reply });

/** `MSET`-style pairs, the last value of a key named twice winning (as in Redis). */
function pairs(a: Buffer[]): Map<string, { key: Buffer; value: Buffer }> {
  const m = new Map<string, { key: Buffer; value: Buffer }>();
  for (let i = 1; i + 1 < a.length; i += 2) m.set(latin1(a[i]), { key: a[i], value: a[i + 1] });
  return m;
}

function incrPlan(key: Buffer, delta: bigint | null): Plan | Buffer {
  if (delta === null) return NOT_INTEGER;
  return {
    reads: [key],
    run: (v) => {
      const n = counterOf(v.get(key));
      if (n === null) return NOT_INTEGER;
      const sum = n + delta;
      if (sum < I64_MIN || sum > I64_MAX) return OVERFLOW;
      v.set(key, Buffer.from(String(sum), 'latin1'), true);
      return Buffer.from(`:${sum}\r\n`, 'latin1');
    },
  };
}

function setPlan(a: Buffer[]): Plan | Buffer | { refuse: string } {
  const o = parseSetOptions(a, 0);
  if (Buffer.isBuffer(o)) return o;
  if (o.meta) return { refuse: "ERR SET with EX, PX, EXAT, PXAT or KEEPTTL cannot be queued in MULTI: a transaction's put clears the key's expiry (docs/resp.md \"Transactions\")" };
  const [key, value] = [a[1], a[2]];
  return {
    reads: o.nx || o.xx || o.get ? [key] : [],
    run: (v) => {
      const old = o.nx || o.xx || o.get ? v.get(key) : null;
      const applies = o.nx ? old === null : o.xx ? old !== null : true;
      if (applies) v.set(key, value);
      return o.get ? encodeBulk(old) : applies ? OK : encodeBulk(null);
    },
  };
}

/**
 * What each command does inside MULTI, as a Plan on the txn's view (Redis's semantics); a Buffer
 * is an error EXEC answers for that command (Redis finds these when it runs the command); a
 * command absent here cannot be queued (docs/resp.md "Transactions").
 */
const PLANS: Record<string, (a: Buffer[]) => Plan | Buffer | { refuse: string }> = {
  ping: (a) => constant(a.length === 1 ? PONG : encodeBulk(a[1])),
  echo: (a) => constant(encodeBulk(a[1])),
  unwatch: () => constant(OK), // EXEC unwatches anyway
  get: (a) => ({ reads: [a[1]], run: (v) => encodeBulk(v.get(a[1])) }),
  mget: (a) => ({ reads: a.slice(1), run: (v) => encodeBulkArray(a.slice(1).map((k) => v.get(k))) }),
  exists: (a) => ({ reads: a.slice(1), run: (v) => encodeInteger(a.slice(1).filter((k) => v.get(k) !== null).length) }),
  del: (a) => ({
    reads: a.slice(1),
    run: (v) => {
      let n = 0;
      for (const k of a.slice(1)) {
        if (v.get(k) === null) continue;
        n++;
        v.set(k, null);
      }
      return encodeInteger(n);
    },
  }),
  set: setPlan,
  setnx: (a) => ({
    reads: [a[1]],
    run: (v) => {
      if (v.get(a[1]) !== null) return encodeInteger(0);
      v.set(a[1], a[2]);
      return encodeInteger(1);
    },
  }),
  getset: (a) => ({
    reads: [a[1]],
    run: (v) => {
      const old = v.get(a[1]);
      v.set(a[1], a[2]);
      return encodeBulk(old);
    },
  }),
  getdel: (a) => ({
    reads: [a[1]],
    run: (v) => {
      const old = v.get(a[1]);
      if (old !== null) v.set(a[1], null);
      return encodeBulk(old);
    },
  }),
  mset: (a) =>
    a.length % 2 === 0
      ? err("ERR wrong number of arguments for 'mset' command")
      : {
          reads: [],
          run: (v) => {
            for (const p of pairs(a).values()) v.set(p.key, p.value);
            return OK;
          },
        },
  msetnx: (a) => {
    if (a.length % 2 === 0) return err("ERR wrong number of arguments for 'msetnx' command");
    const ps = [...pairs(a).values()];
    return {
      reads: ps.map((p) => p.key),
      run: (v) => {
        if (ps.some((p) => v.get(p.key) !== null)) return encodeInteger(0);
        for (const p of ps) v.set(p.key, p.value);
        return encodeInteger(1);
      },
    };
  },
  incr: (a) => incrPlan(a[1], 1n),
  decr: (a) => incrPlan(a[1], -1n),
  incrby: (a) => incrPlan(a[1], i64Arg(a[2])),
  decrby: (a) => {
    const n = i64Arg(a[2]);
    return n === I64_MIN ? err('ERR decrement would overflow') : incrPlan(a[1], n === null ? null : -n);
  },
};

/** A txn's single put of `key` (PREV_KV: the old value comes back). */
const putPrev = (key: Buffer, value: Buffer): TxnOp => ({ kind: TxnOpKind.Put, key, value, flags: TxnOpFlags.PrevKv });
const compareRevision = (key: Buffer, result: CompareResult, revision: number): TxnCompare => ({ key, target: CompareTarget.ModRevision, result, operand: revision });
/** The value a txn's put / delete (PREV_KV) or get response carries, null when the key was missing. */
function valueOf(r: TxnOpResponse | undefined): Buffer | null {
  if (!r) return null;
  const kv = r.kind === TxnOpKind.Put ? r.prev : r.kind === TxnOpKind.Delete ? r.prev[0] : r.kind === TxnOpKind.Get ? r.kv : undefined;
  return kv ? Buffer.from(kv.value) : null;
}
const modRevisionOf = (r: TxnOpResponse | undefined) => (r?.kind === TxnOpKind.Get ? (r.kv?.modRevision ?? 0) : 0);

/**
 * The RESP door's transactions and atomic multi-key commands (docs/resp.md "Transactions"), each
 * ONE etcd Txn (libs/protocol txn.ts) applied atomically at one revision: MSET, MSETNX, GETSET,
 * GETDEL, SET … GET; and MULTI / EXEC / DISCARD / WATCH / UNWATCH with Redis's replies (Redis
 * multi.c), EXEC being optimistic: its reads, then one Txn whose compares are the WATCHed keys'
 * mod revisions from WATCH time and the read keys' from the reads.
 */
export class RespTxnCommands {
  /** Turns on read keys, shared by every connection of this door. */
  readonly turns = new KeyTurns();

  constructor(private readonly limits: MultiLimits) {}

  /** The command table entries (merged into RespCommands'). */
  commands(): Record<string, Command> {
    const pairsOf = (a: Buffer[]) => Math.floor((a.length - 1) / 2);
    return {
      mset: { arity: -3, effect: 'write', keysOf: pairsOf, run: (a, c) => this.mset(a, c.session) },
      msetnx: { arity: -3, effect: 'write', keysOf: pairsOf, run: (a, c) => this.msetnx(a, c.session) },
      getset: { arity: 3, effect: 'write', run: (a, c) => this.txnReply(c.session, { compares: [], success: [putPrev(a[1], a[2])], failure: [] }, (t) => encodeBulk(valueOf(t.responses[0]))) },
      getdel: { arity: 2, effect: 'write', run: (a, c) => this.txnReply(c.session, { compares: [], success: [{ kind: TxnOpKind.Delete, key: a[1], end: Buffer.alloc(0), flags: TxnOpFlags.PrevKv }], failure: [] }, (t) => encodeBulk(valueOf(t.responses[0]))) },
      multi: { arity: 1, run: (_a, c) => this.multi(c) },
      exec: { arity: 1, run: (_a, c) => this.exec(c) },
      discard: { arity: 1, run: (_a, c) => this.discard(c) },
      // Gated inside: whether the connection is in MULTI is decided now, not when earlier commands are done.
      watch: { arity: -2, keysOf: (a) => a.length - 1, run: (a, c) => (c.txn?.queue ? err('ERR WATCH inside MULTI is not allowed') : c.gate.run('read', () => this.watch(a.slice(1), c))) },
      unwatch: { arity: 1, effect: 'both', run: (_a, c) => this.unwatch(c) },
    };
  }

  /** Compares and ops one transaction holds (gateway.txnOpsMax). */
  opsMax(): number {
    return this.limits.txnOpsMax;
  }

  /** DEL of at most opsMax keys: ONE Txn deleting each in order; the reply counts those that existed (a key named twice counts once, as in Redis). */
  del(keys: Buffer[], session: KvSession): Promise<Buffer> {
    const success = keys.map((key): TxnOp => ({ kind: TxnOpKind.Delete, key, end: Buffer.alloc(0) }));
    return this.txnReply(session, { compares: [], success, failure: [] }, (t) => encodeInteger(t.responses.reduce((n, r) => n + (r.kind === TxnOpKind.Delete ? r.deleted : 0), 0)));
  }

  /** Whether `name` runs at once inside MULTI rather than being queued. */
  runsInMulti(name: string): boolean {
    return RUN_IN_MULTI.has(name);
  }

  /**
   * Queues one command after MULTI: `+QUEUED`, or an error that flags the MULTI (EXEC then answers
   * -EXECABORT, nothing runs): `refused` (unknown command, arity, NOAUTH, too many keys), a command
   * Cairn cannot run in a transaction, or the queue past commandsMax / bytesMax. A flagged MULTI
   * keeps answering +QUEUED but holds nothing more.
   */
  enqueue(name: string, args: Buffer[], c: RespClient, refused: Buffer | null): Buffer {
    const st = c.txn!;
    const plan = refused ? { refuse: '' } : Object.prototype.hasOwnProperty.call(PLANS, name) ? PLANS[name](args.map(copy)) : { refuse: `ERR '${name}' cannot be queued in MULTI on Cairn: only reads and writes of keys one transaction can express (docs/resp.md "Transactions")` };
    const bytes = args.reduce((n, a) => n + a.length, 0);
    let reply: Buffer | null = null;
    if ('refuse' in plan) reply = refused ?? err(plan.refuse);
    else if (st.queue!.length >= this.limits.commandsMax) reply = err(`ERR MULTI holds at most ${this.limits.commandsMax} commands (gateway.respMultiCommandsMax); transaction discarded`);
    else if (st.queuedBytes + bytes > this.limits.bytesMax) reply = err(`ERR MULTI holds at most ${this.limits.bytesMax} bytes of arguments (gateway.respMultiBytesMax); transaction discarded`);
    if (reply) {
      st.aborted = true;
      st.queue = [];
      st.queuedBytes = 0;
      return reply;
    }
    if (!st.aborted) {
      st.queue!.push(plan as Plan | Buffer);
      st.queuedBytes += bytes;
    }
    return QUEUED;
  }

  private state(c: RespClient): TxnState {
    return (c.txn ??= { queue: null, queuedBytes: 0, aborted: false, watched: new Map(), watchBroken: false });
  }

  private multi(c: RespClient): Buffer {
    const st = this.state(c);
    if (st.queue) return err('ERR MULTI calls can not be nested');
    st.queue = [];
    st.queuedBytes = 0;
    st.aborted = false;
    return OK;
  }

  /** Leaves MULTI at once (later commands are not queued); the watches go in the connection's effect order. */
  private leaveMulti(c: RespClient): { queue: (Plan | Buffer)[]; aborted: boolean } | null {
    const st = c.txn;
    if (!st?.queue) return null;
    const taken = { queue: st.queue, aborted: st.aborted };
    st.queue = null;
    st.queuedBytes = 0;
    st.aborted = false;
    return taken;
  }

  private takeWatches(c: RespClient): Watched[] | null {
    const st = this.state(c);
    const w = st.watchBroken ? null : [...st.watched.values()];
    st.watched = new Map();
    st.watchBroken = false;
    return w;
  }

  private discard(c: RespClient): Reply {
    if (!this.leaveMulti(c)) return err('ERR DISCARD without MULTI');
    return c.gate.run('both', () => {
      this.takeWatches(c);
      return OK;
    });
  }

  private unwatch(c: RespClient): Buffer {
    this.takeWatches(c);
    return OK;
  }

  /**
   * EXEC: the queued commands as ONE Txn, after every earlier command of the connection took effect
   * (OrderGate 'both'). Null array when a WATCHed key changed since WATCH; -EXECABORT when the
   * MULTI was flagged; else the array of the commands' replies.
   */
  private exec(c: RespClient): Reply {
    const taken = this.leaveMulti(c);
    if (!taken) return err('ERR EXEC without MULTI');
    return c.gate.run('both', () => {
      const watched = this.takeWatches(c);
      if (taken.aborted) return EXECABORT;
      return watched === null ? NULL_ARRAY : this.execute(taken.queue, watched, c.session);
    });
  }

  /**
   * Runs the plans optimistically: reads every key they read (linearizable GETs), evaluates them in
   * order on a TxnView, then submits one Txn: compares = the WATCHed keys' mod revisions from WATCH
   * time and the read keys' from the reads (a missing key = 0), success = the writes. A WATCHed key
   * that changed: null array. Only a read key changed: again, at most attemptsMax times.
   */
  private async execute(queue: (Plan | Buffer)[], watchedList: Watched[], session: KvSession): Promise<Buffer> {
    const readKeys = [...new Map(queue.flatMap((p) => (Buffer.isBuffer(p) ? [] : p.reads)).map((k) => [latin1(k), k])).values()];
    // Each read or watched key is a compare: refuse before reading (at most txnOpsMax values read).
    const compared = new Set([...readKeys, ...watchedList.map((w) => w.key)].map(latin1)).size;
    if (compared > this.limits.txnOpsMax) return err(`ERR a transaction holds at most ${this.limits.txnOpsMax} compares and ops (txnOpsMax), got at least ${compared}; nothing was applied`);
    if (readKeys.length === 0) return this.attempts(queue, watchedList, readKeys, session);
    const end = await this.turns.take(readKeys);
    try {
      return await this.attempts(queue, watchedList, readKeys, session);
    } finally {
      end();
    }
  }

  private async attempts(queue: (Plan | Buffer)[], watchedList: Watched[], readKeys: Buffer[], session: KvSession): Promise<Buffer> {
    const watched = new Map(watchedList.map((w) => [latin1(w.key), w]));
    for (let attempt = 0; attempt < this.limits.attemptsMax; attempt++) {
      const got = await Promise.all(readKeys.map((k) => session.get(k)));
      const bad = got.find((r) => r.status !== Status.Ok && r.status !== Status.NotFound);
      if (bad) return kvError(bad, 'read');
      const revisions = new Map<string, Watched>(watched);
      for (let i = 0; i < readKeys.length; i++) {
        const revision = got[i].status === Status.Ok ? got[i].revision : 0;
        const w = watched.get(latin1(readKeys[i]));
        if (w && w.revision !== revision) return NULL_ARRAY; // changed since WATCH: no need to try
        revisions.set(latin1(readKeys[i]), { key: readKeys[i], revision });
      }
      const view = new TxnView(readKeys.map((key, i) => ({ key, value: got[i].status === Status.Ok ? Buffer.from(got[i].value) : null })));
      const replies = queue.map((p) => (Buffer.isBuffer(p) ? p : p.run(view)));
      const compares = [...revisions.values()].map((r) => compareRevision(r.key, CompareResult.Equal, r.revision));
      const success = view.ops();
      if (compares.length + success.length === 0) return encodeArray(replies);
      // With read keys compared too, the failure branch tells whether a WATCHed key is the one that changed.
      const readCompares = revisions.size > watched.size;
      const failure: TxnOp[] = readCompares ? watchedList.map((w) => ({ kind: TxnOpKind.Get, key: w.key, flags: TxnOpFlags.KeysOnly })) : [];
      const r = await session.txn({ compares, success, failure });
      if (r.status !== Status.Ok || !r.txn) return kvError(r, 'write');
      if (r.txn.succeeded) return encodeArray(replies);
      if (!readCompares || watchedList.some((w, i) => modRevisionOf(r.txn!.responses[i]) !== w.revision)) return NULL_ARRAY;
    }
    return err(`ERR EXEC gave up after ${this.limits.attemptsMax} attempts (gateway.respTxnAttemptsMax): the keys it reads kept changing; nothing was applied`);
  }

  /**
   * WATCH key...: records each key's mod revision now (a linearizable read; 0 when missing), to be
   * compared by the next EXEC. A key already watched keeps its first revision (as in Redis). More
   * than watchedKeysMax keys on the connection: an error, nothing more watched. A failed read
   * answers its error and makes the next EXEC fail (null array): that key's revision is unknown
   * (a permission refusal only answers its error: nothing is watched).
   */
  private async watch(keys: Buffer[], c: RespClient): Promise<Buffer> {
    const st = this.state(c);
    for (const k of keys) {
      const bad = c.session.check(k);
      if (bad) return kvError(bad, 'read');
    }
    const fresh = [...new Map(keys.filter((k) => !st.watched.has(latin1(k))).map((k) => [latin1(k), copy(k)])).values()];
    const tooMany = () => st.watched.size + fresh.filter((k) => !st.watched.has(latin1(k))).length > this.limits.watchedKeysMax;
    const tooManyReply = () => err(`ERR WATCH of ${fresh.length} more keys: a connection watches at most ${this.limits.watchedKeysMax} (gateway.respWatchedKeysMax)`);
    if (tooMany()) return tooManyReply();
    const rs = await Promise.all(fresh.map((k) => c.session.get(k)));
    const bad = rs.find((r) => r.status !== Status.Ok && r.status !== Status.NotFound);
    if (bad) {
      // A refusal (NOPERM, NOAUTH) watches nothing, as in Redis; a read that failed leaves a revision unknown.
      if (bad.status !== Status.PermissionDenied && bad.status !== Status.Unauthenticated) st.watchBroken = true;
      return kvError(bad, 'read');
    }
    if (tooMany()) return tooManyReply(); // concurrent WATCHes of this connection filled it meanwhile
    fresh.forEach((key, i) => {
      if (!st.watched.has(latin1(key))) st.watched.set(latin1(key), { key, revision: rs[i].status === Status.Ok ? rs[i].revision : 0 });
    });
    return OK;
  }

  /** One Txn, its result turned into the reply; a failure (UNAVAILABLE: outcome unknown) as a write's. */
  private async txnReply(session: KvSession, request: TxnRequest, reply: (t: TxnResult) => Buffer): Promise<Buffer> {
    const r: KvResult = await session.txn(request);
    return r.status === Status.Ok && r.txn ? reply(r.txn) : kvError(r, 'write');
  }

  /** MSET: every pair in ONE Txn (a reader sees all or none); a key named twice takes its last value. */
  private mset(a: Buffer[], session: KvSession): Reply {
    if (a.length % 2 === 0) return err("ERR wrong number of arguments for 'mset' command");
    const success = [...pairs(a).values()].map((p): TxnOp => ({ kind: TxnOpKind.Put, key: p.key, value: p.value }));
    return this.txnReply(session, { compares: [], success, failure: [] }, () => OK);
  }

  /** MSETNX: ONE Txn that sets every pair only if no key exists (compares create revision = 0 on each): `:1` set, `:0` none set. */
  private msetnx(a: Buffer[], session: KvSession): Reply {
    if (a.length % 2 === 0) return err("ERR wrong number of arguments for 'msetnx' command");
    const ps = [...pairs(a).values()];
    const compares = ps.map((p): TxnCompare => ({ key: p.key, target: CompareTarget.CreateRevision, result: CompareResult.Equal, operand: 0 }));
    const success = ps.map((p): TxnOp => ({ kind: TxnOpKind.Put, key: p.key, value: p.value }));
    return this.txnReply(session, { compares, success, failure: [] }, (t) => encodeInteger(t.succeeded ? 1 : 0));
  }

  /**
   * SET key value [NX|XX] GET [expiry]: the old value (null bulk when missing), atomically with the
   * write. Without an expiry option ONE Txn: NX compares create revision = 0, XX > 0; success = the
   * put with PREV_KV, failure = a get (the value that stopped it). With EX/PX/EXAT/PXAT/KEEPTTL (a
   * txn's put cannot carry an expiry): a read, then a SET with that mod revision as IF_REVISION and
   * the expiry, again when another write came between (attemptsMax).
   */
  setGet(key: Buffer, value: Buffer, o: SetOptions, session: KvSession): Promise<Buffer> {
    if (o.meta) return this.casSetGet(key, value, o, o.meta, session);
    const compares = o.nx ? [{ key, target: CompareTarget.CreateRevision, result: CompareResult.Equal, operand: 0 }] : o.xx ? [{ key, target: CompareTarget.CreateRevision, result: CompareResult.Greater, operand: 0 }] : [];
    return this.txnReply(session, { compares, success: [putPrev(key, value)], failure: [{ kind: TxnOpKind.Get, key }] }, (t) => encodeBulk(valueOf(t.responses[0])));
  }

  private async casSetGet(key: Buffer, value: Buffer, o: SetOptions, meta: CommandMeta, session: KvSession): Promise<Buffer> {
    const bad = session.check(key, value);
    if (bad) return kvError(bad, 'write');
    const end = await this.turns.take([key]);
    try {
      return await this.casAttempts(key, value, o, meta, session);
    } finally {
      end();
    }
  }

  private async casAttempts(key: Buffer, value: Buffer, o: SetOptions, meta: CommandMeta, session: KvSession): Promise<Buffer> {
    for (let attempt = 0; attempt < this.limits.attemptsMax; attempt++) {
      const r = await session.get(key);
      if (r.status !== Status.Ok && r.status !== Status.NotFound) return kvError(r, 'read');
      const old = r.status === Status.Ok ? Buffer.from(r.value) : null;
      // The condition is false at the read's linearization point: nothing to write.
      if ((o.nx && old !== null) || (o.xx && old === null)) return encodeBulk(old);
      const w = await session.set(key, value, { ifRevision: old === null ? 0 : r.revision, meta });
      if (w.status === Status.Ok) return encodeBulk(old);
      if (w.status !== Status.ConditionFailed) return kvError(w, 'write');
    }
    return err(`ERR SET ... GET gave up after ${this.limits.attemptsMax} attempts (gateway.respTxnAttemptsMax): the key kept changing; nothing was written`);
  }
}

type Reply = Buffer | Promise<Buffer>;
