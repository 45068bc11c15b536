import { CommandCondition, Status, type CommandMeta } from '@cairn/protocol';
import { EMPTY_ARRAY, NULL_BULK, OK, PONG, encodeArray, encodeBulk, encodeBulkArray, encodeError, encodeInteger } from '@cairn/resp';
import type { KvResult, KvSession } from '../paths/kv-session';
import { OrderGate, type Effect } from './order-gate';
import { REDIS_COMPAT_VERSION, infoText, storedKeys, type RespServerInfo } from './info';
import { ScanCursors, globMatch, literalPrefix } from './scan';
import { mgetReply, type CommandReads, type PartedReply } from './mget-reply';
import { TOO_MANY_FAILURES, isRefusal, type AuthIdentity, type GatewayAuth } from '../auth/gateway-auth';
import { RespTtlCommands } from './ttl-commands';
import { MULTI_LIMITS_DEFAULT, RespTxnCommands, type MultiLimits, type TxnState } from './txn-commands';

/** One RESP connection's state, as the commands see it. */
export interface RespClient {
  id: number;
  /** CLIENT SETNAME; null when unset. */
  name: string | null;
  remote: string;
  local: string;
  /** The connection's session: limits, errors and read-your-writes shared with the binary protocol. */
  session: KvSession;
  /** Set by QUIT: answer, then close. */
  quit: boolean;
  /** Orders the effects of this connection's pipelined commands (OrderGate). */
  gate: OrderGate;
  /** This connection's SCAN cursors (made at its first SCAN). */
  scanCursors?: ScanCursors;
  /** Who the connection is (AUTH / HELLO AUTH); the session's guard reads it. Absent (tests): anonymous. */
  identity?: AuthIdentity;
  /** The client's IP address, for the failed-auth bound per address. */
  address?: string;
  /** Failed AUTH attempts on this connection. */
  authFailures?: number;
  /** MULTI queue and WATCHed keys (made at the first MULTI or WATCH; docs/resp.md "Transactions"). */
  txn?: TxnState;
}

/** Commands an unauthenticated connection may send while auth is enabled (Redis answers the rest -NOAUTH). */
const OPEN_COMMANDS = new Set(['auth', 'hello', 'quit']);
const NOAUTH = 'NOAUTH Authentication required.';
/** Redis's answer to a failed AUTH; the same for an unknown user and a wrong password. */
const WRONGPASS = 'WRONGPASS invalid username-password pair or user is disabled.';
/** The user `AUTH <password>` authenticates (Redis's rule: one argument = user "default"). */
export const RESP_DEFAULT_USER = 'default';

/** Bounds of SCAN and KEYS (docs/resp.md "SCAN and KEYS"). */
export interface ScanLimits {
  /** KEYS answers at most this many keys; a pattern matching more is an error (use SCAN). */
  keysReplyMax: number;
  /** Live SCAN cursors per connection; beyond, the oldest is forgotten. */
  cursorsMax: number;
}

export const SCAN_LIMITS_DEFAULT: ScanLimits = Object.freeze({ keysReplyMax: 10_000, cursorsMax: 64 });

/** An encoded reply, now or when the cluster answers (a large MGET: in parts, PartedReply). */
export type Reply = Buffer | Promise<Buffer | PartedReply>;

export interface Command {
  /** Redis arity: > 0 exact argument count (command name included), < 0 at least -arity. */
  arity: number;
  /** Store effect, for the connection's OrderGate (default none). */
  effect?: Effect;
  /** Multi-key commands: how many keys `args` name (bounded by keysPerCommandMax). */
  keysOf?: (args: Buffer[]) => number;
  /** `reads`: the connection's read flow control for this command (absent in tests: unbounded reads). */
  run: (args: Buffer[], c: RespClient, reads?: CommandReads) => Reply;
}

const err = (message: string) => encodeError(message);
const wrongArity = (name: string) => err(`ERR wrong number of arguments for '${name}' command`);
const SYNTAX = err('ERR syntax error');
const NOT_INTEGER = err('ERR value is not an integer or out of range');

/**
 * The error reply for a failed KvResult (docs/resp.md, "Errors"). UNAVAILABLE on a read is
 * `-TRYAGAIN` (nothing happened, retrying is safe); on a write it is `-ERR` saying the outcome is
 * unknown, because the write may have been applied and an automatic retry could overwrite a later
 * write of another client (docs/protocol.md, UNAVAILABLE).
 */
export function kvError(r: KvResult, kind: 'read' | 'write'): Buffer {
  if (r.status === Status.Unauthenticated) return err(NOAUTH);
  if (r.status === Status.PermissionDenied) return err(`NOPERM ${r.message}`);
  if (r.status === Status.Unavailable) {
    return kind === 'read' ? err(`TRYAGAIN ${r.message}`) : err(`ERR ${r.message} (outcome unknown: the write may have been applied)`);
  }
  return err(`ERR ${r.message || Status[r.status]}`);
}

function lower(b: Buffer): string {
  return b.toString('latin1').toLowerCase();
}

const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;

/** Redis `string2ll` on an argument, the full signed 64-bit range; null when it is not one. */
export function i64Arg(b: Buffer): bigint | null {
  const s = b.toString('latin1');
  if (!/^(0|-?[1-9][0-9]{0,18})$/.test(s)) return null;
  const n = BigInt(s);
  return n < I64_MIN || n > I64_MAX ? null : n;
}

/** Redis `string2ll` on an argument; null when it is not an integer. */
function integerArg(b: Buffer): number | null {
  const s = b.toString('latin1');
  return /^(0|-?[1-9][0-9]{0,15})$/.test(s) ? Number(s) : null;
}

/** Redis's reply to an unknown command: names and arguments quoted and cut at 128 bytes (server.c processCommand). */
export function unknownCommand(args: Buffer[]): Buffer {
  let rest = '';
  for (let i = 1; i < args.length && rest.length < 128; i++) rest += `'${args[i].toString('latin1').slice(0, 128 - rest.length)}' `;
  return err(`ERR unknown command '${args[0].toString('latin1').slice(0, 128)}', with args beginning with: ${rest}`);
}

const unknownSubcommand = (sub: Buffer, cmd: string) => err(`ERR unknown subcommand '${sub.toString('latin1').slice(0, 128)}'. Try ${cmd} HELP.`);

/** Reads `keys` in order; a read that is not OK/NOT_FOUND fails the whole command. */
async function readAll(session: KvSession, keys: Buffer[]): Promise<KvResult[] | Buffer> {
  const rs = await Promise.all(keys.map((k) => session.get(k)));
  const bad = rs.find((r) => r.status !== Status.Ok && r.status !== Status.NotFound);
  return bad ? kvError(bad, 'read') : rs;
}

/** Writes all (key, value) pairs, each its own Raft entry; OK only if all were. Checks every limit before writing any. */
async function writeAll(session: KvSession, ops: { key: Buffer; value?: Buffer }[]): Promise<Buffer> {
  for (const op of ops) {
    const bad = session.check(op.key, op.value);
    if (bad) return kvError(bad, 'write');
  }
  const rs = await Promise.all(ops.map((op) => (op.value ? session.set(op.key, op.value) : session.del(op.key))));
  const bad = rs.find((r) => r.status !== Status.Ok);
  return bad ? kvError(bad, 'write') : OK;
}

function checkAll(session: KvSession, keys: Buffer[]): Buffer | null {
  for (const k of keys) {
    const bad = session.check(k);
    if (bad) return kvError(bad, 'read');
  }
  return null;
}

/**
 * The absolute expiry (ms since the Unix epoch) of SET's EX s / PX ms / EXAT s / PXAT ms with a
 * positive `t`, `nowMs` the gateway's clock; null when it is not a time (Redis: "invalid expire
 * time"; ours stay below 2^53 ms).
 */
/** Largest absolute expiry, ms since the Unix epoch: command operands are u64 read as exact JS numbers (2^53 − 1 ms: the year 287,396). */
const EXPIRES_AT_MS_MAX = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * The absolute expiry (ms since the Unix epoch) a time argument `t` names, with Redis 7.0's
 * overflow rules in signed 64 bits (expire.c expireGenericCommand, t_string.c
 * getExpireMillisecondsOrReply): null ("invalid expire time") when `t` in seconds overflows on
 * × 1000, or adding `nowMs` to a relative time passes INT64_MAX. A later expiry than Cairn can carry
 * (EXPIRES_AT_MS_MAX) is that one (it never comes in practice); a time already past is kept as a
 * past time, at least 1 ms after the epoch (the key is then expired at once: every read misses it
 * and the leader's ExpireKey deletes it, docs/leases.md).
 */
export function expiryMsOf(t: bigint, unitMs: 1 | 1000, absolute: boolean, nowMs: number): number | null {
  let at = t;
  if (unitMs === 1000) {
    if (at > I64_MAX / 1000n || at < I64_MIN / 1000n) return null;
    at *= 1000n;
  }
  const base = absolute ? 0n : BigInt(nowMs);
  if (at > I64_MAX - base) return null;
  at += base;
  if (at > EXPIRES_AT_MS_MAX) return Number.MAX_SAFE_INTEGER;
  return at < 1n ? 1 : Number(at);
}

/** SET / SETEX / GETEX's time option (Redis getExpireMillisecondsOrReply): `t` must be > 0; `opt` one of ex, px, exat, pxat. */
export function setExpiryMsOf(opt: string, t: bigint, nowMs: number): number | null {
  return t > 0n ? expiryMsOf(t, opt === 'ex' || opt === 'exat' ? 1000 : 1, opt === 'exat' || opt === 'pxat', nowMs) : null;
}

/** SET's options (SET key value [NX|XX] [GET] [EX s|PX ms|EXAT t|PXAT t|KEEPTTL]); `meta` absent: no expiry option. */
export interface SetOptions {
  nx: boolean;
  xx: boolean;
  get: boolean;
  meta?: CommandMeta;
}

/**
 * SET's options parsed with Redis's rules (t_string.c parseExtendedStringArgumentsOrReply), `nowMs`
 * the gateway's clock for EX / PX: the options, or the error reply (`-ERR syntax error`, not an
 * integer, invalid expire time).
 */
export function parseSetOptions(a: Buffer[], nowMs: number): SetOptions | Buffer {
  let nx = false;
  let xx = false;
  let get = false;
  let keepTtl = false;
  let expire = false;
  let expiresAtMs = 0;
  for (let i = 3; i < a.length; i++) {
    const opt = lower(a[i]);
    if (opt === 'nx' && !xx) nx = true;
    else if (opt === 'xx' && !nx) xx = true;
    else if (opt === 'get') get = true;
    else if (opt === 'keepttl' && !expire) keepTtl = true;
    else if ((opt === 'ex' || opt === 'px' || opt === 'exat' || opt === 'pxat') && !expire && !keepTtl && i + 1 < a.length) {
      expire = true;
      const t = i64Arg(a[++i]);
      if (t === null) return NOT_INTEGER;
      const at = setExpiryMsOf(opt, t, nowMs);
      if (at === null) return err("ERR invalid expire time in 'set' command");
      expiresAtMs = at;
    } else return SYNTAX;
  }
  const meta: CommandMeta | undefined = expire ? { leaseId: 0, expiresAtMs, keepTtl: false } : keepTtl ? { leaseId: 0, expiresAtMs: nowMs, keepTtl: true } : undefined;
  return meta ? { nx, xx, get, meta } : { nx, xx, get };
}

/** Commands Redis has that Cairn refuses on purpose, with the reason (rather than "unknown command"). */
const REFUSED: Record<string, string> = Object.fromEntries([
  ...['incrbyfloat', 'append', 'setrange'].map((n) => [n, 'is not implemented on Cairn yet']),
]);

/**
 * The RESP commands (docs/resp.md): each runs on the connection's KvSession and yields its
 * encoded reply. Pure of sockets, so tests call `handle` with fake read/write paths.
 */
export class RespCommands {
  private readonly table: Record<string, Command>;
  private readonly txn: RespTxnCommands;

  /**
   * @param keysPerCommandMax most keys in one MGET, MSET, DEL or EXISTS (gateway.keysPerCommandMax);
   *   more: `-ERR too many keys: N; keysPerCommandMax is M`, nothing read or written.
   */
  constructor(
    private readonly info: RespServerInfo,
    private readonly keysPerCommandMax = 1024,
    private readonly scanLimits: ScanLimits = SCAN_LIMITS_DEFAULT,
    private readonly auth?: GatewayAuth,
    multiLimits: MultiLimits = MULTI_LIMITS_DEFAULT,
  ) {
    this.txn = new RespTxnCommands(multiLimits);
    this.table = {
      ping: { arity: -1, run: (a) => (a.length === 1 ? PONG : a.length === 2 ? encodeBulk(a[1]) : wrongArity('ping')) },
      echo: { arity: 2, run: (a) => encodeBulk(a[1]) },
      get: { arity: 2, effect: 'read', run: (a, c, reads) => this.get(a[1], c.session, reads) },
      set: { arity: -3, effect: 'write', run: (a, c) => this.set(a, c.session) },
      setnx: { arity: 3, effect: 'write', run: (a, c) => this.setnx(a[1], a[2], c.session) },
      setex: { arity: 4, effect: 'write', run: (a, c) => this.setex(a, 1000, c.session) },
      psetex: { arity: 4, effect: 'write', run: (a, c) => this.setex(a, 1, c.session) },
      incr: { arity: 2, effect: 'write', run: (a, c) => this.incrBy(a[1], 1n, c.session) },
      decr: { arity: 2, effect: 'write', run: (a, c) => this.incrBy(a[1], -1n, c.session) },
      incrby: { arity: 3, effect: 'write', run: (a, c) => this.incrByArg(a[1], a[2], 1n, c.session) },
      decrby: { arity: 3, effect: 'write', run: (a, c) => this.incrByArg(a[1], a[2], -1n, c.session) },
      del: { arity: -2, effect: 'both', keysOf: (a) => a.length - 1, run: (a, c) => this.del(a.slice(1), c.session) },
      exists: { arity: -2, effect: 'read', keysOf: (a) => a.length - 1, run: (a, c) => this.exists(a.slice(1), c.session) },
      mget: { arity: -2, effect: 'read', keysOf: (a) => a.length - 1, run: (a, c, reads) => this.mget(a.slice(1), c.session, reads) },
      dbsize: { arity: 1, run: () => this.dbsize() },
      scan: { arity: -2, effect: 'read', run: (a, c) => this.scan(a, c) },
      keys: { arity: 2, effect: 'read', run: (a, c) => this.keys(a[1], c.session) },
      info: { arity: -1, run: (a) => encodeBulk(infoText(this.info, a.slice(1).map((x) => x.toString('latin1')))) },
      command: { arity: -1, run: (a) => this.command(a) },
      config: { arity: -2, run: (a) => this.config(a) },
      client: { arity: -2, run: (a, c) => this.client(a, c) },
      select: { arity: 2, run: (a) => this.select(a[1]) },
      hello: { arity: -1, run: (a, c) => this.hello(a, c) },
      auth: { arity: -2, run: (a, c) => (a.length > 3 ? SYNTAX : this.authenticate(a.length === 3 ? a[1].toString('utf8') : RESP_DEFAULT_USER, a[a.length - 1].toString('utf8'), c)) },
      quit: {
        arity: -1,
        run: (_a, c) => {
          c.quit = true;
          return OK;
        },
      },
      ...this.txn.commands(),
      ...new RespTtlCommands(() => this.nowMs()).commands(),
    };
  }

  /** Names of the supported commands (COMMAND COUNT / COMMAND LIST). */
  names(): string[] {
    return Object.keys(this.table);
  }

  /**
   * Runs one command. Never throws: a failure is an error reply. `reads`: the connection's read
   * flow control for it (GET and MGET reserve their values through it; docs/resp.md "Large replies").
   * `name`: `args[0]` in lower case, when the caller has it already.
   */
  handle(args: Buffer[], client: RespClient, reads?: CommandReads, name = lower(args[0])): Reply {
    const cmd = Object.prototype.hasOwnProperty.call(this.table, name) ? this.table[name] : undefined;
    const refused = this.refusal(name, cmd, args, client);
    // After MULTI every command but EXEC, DISCARD, MULTI, WATCH and QUIT is queued (a refusal flags the MULTI, as in Redis).
    if (client.txn?.queue && !this.txn.runsInMulti(name)) return this.txn.enqueue(name, args, client, refused);
    if (refused || !cmd) return refused!;
    try {
      // A command runs synchronously only when it answers at once (a Buffer, never a PartedReply).
      const r = client.gate.run<Buffer | PartedReply>(cmd.effect ?? 'none', () => cmd.run(args, client, reads)) as Reply;
      return Buffer.isBuffer(r) ? r : r.catch((e: Error) => err(`ERR gateway error: ${e.message}`));
    } catch (e) {
      return err(`ERR gateway error: ${(e as Error).message}`);
    }
  }

  /** Why `args` cannot run at all: unknown or refused command, NOAUTH, arity, too many keys; null when it can. */
  private refusal(name: string, cmd: Command | undefined, args: Buffer[], client: RespClient): Buffer | null {
    if (!cmd) return REFUSED[name] ? err(`ERR '${name}' ${REFUSED[name]}`) : unknownCommand(args);
    if (this.auth && !OPEN_COMMANDS.has(name) && (client.identity?.user ?? null) === null && this.auth.view.current()?.state.enabled) return err(NOAUTH);
    if (cmd.arity > 0 ? args.length !== cmd.arity : args.length < -cmd.arity) return wrongArity(name);
    const keys = cmd.keysOf?.(args) ?? 0;
    if (keys > this.keysPerCommandMax) return err(`ERR too many keys: ${keys}; keysPerCommandMax is ${this.keysPerCommandMax}`);
    return null;
  }

  /**
   * SCAN cursor [MATCH pattern] [COUNT n] [TYPE type]: one range page of at most COUNT keys (default
   * 10, cut to gateway.rangeKeysMax) in key order, from the pattern's literal prefix, filtered by
   * the pattern (so a page may hold fewer keys than COUNT, even none, as in Redis). Each page is
   * linearizable and consistent at one revision; a key present during the whole scan is returned
   * exactly once (Redis promises at least once). Cursors belong to the connection (ScanCursors).
   */
  private async scan(a: Buffer[], c: RespClient): Promise<Buffer> {
    const cursorText = a[1].toString('latin1');
    if (!/^\d+$/.test(cursorText)) return err('ERR invalid cursor');
    let match: Buffer | null = null;
    let count = 10;
    for (let i = 2; i < a.length; i += 2) {
      const opt = lower(a[i]);
      if (i + 1 >= a.length) return err('ERR syntax error');
      if (opt === 'match') match = a[i + 1];
      else if (opt === 'count') {
        count = Number(a[i + 1].toString('latin1'));
        if (!Number.isSafeInteger(count)) return err('ERR value is not an integer or out of range');
        if (count < 1) return err('ERR syntax error');
      } else if (opt === 'type') {
        if (lower(a[i + 1]) !== 'string') return encodeArray([encodeBulk('0'), EMPTY_ARRAY]); // every Cairn value is a string
      } else return err('ERR syntax error');
    }
    const cursors = (c.scanCursors ??= new ScanCursors(this.scanLimits.cursorsMax));
    let token: Buffer | undefined;
    if (cursorText !== '0') {
      token = cursors.take(Number(cursorText));
      if (!token) return err('ERR invalid cursor');
    }
    const r = await c.session.range({ start: match ? literalPrefix(match) : Buffer.alloc(0), prefix: true, keysOnly: true, limit: count, token });
    if (r.status !== Status.Ok) return kvError({ status: r.status, revision: 0, value: Buffer.alloc(0), message: r.message }, 'read');
    const keys = r.items.map((it) => Buffer.from(it.key)).filter((k) => !match || globMatch(match, k));
    const next = r.more ? String(cursors.add(r.token)) : '0';
    return encodeArray([encodeBulk(next), encodeBulkArray(keys)]);
  }

  /**
   * KEYS pattern: every matching key, in key order, read page by page from the pattern's literal
   * prefix (each page linearizable at its own revision, not one snapshot). More than
   * keysReplyMax matches: an error, nothing returned (use SCAN).
   */
  private async keys(pattern: Buffer, session: KvSession): Promise<Buffer> {
    const out: Buffer[] = [];
    let token: Buffer | undefined;
    for (;;) {
      const r = await session.range({ start: literalPrefix(pattern), prefix: true, keysOnly: true, token });
      if (r.status !== Status.Ok) return kvError({ status: r.status, revision: 0, value: Buffer.alloc(0), message: r.message }, 'read');
      for (const it of r.items) {
        if (!globMatch(pattern, it.key)) continue;
        if (out.length >= this.scanLimits.keysReplyMax) return err(`ERR KEYS matches more than ${this.scanLimits.keysReplyMax} keys (gateway.respKeysReplyMax); use SCAN`);
        out.push(Buffer.from(it.key));
      }
      if (!r.more) return encodeBulkArray(out);
      token = r.token;
    }
  }

  private async get(key: Buffer, session: KvSession, reads?: CommandReads): Promise<Buffer> {
    const r = await session.get(key, { reservation: reads?.reserve() });
    // Nothing is encoded for a connection that has gone (the reply would not be written).
    if (reads?.closed()) return NULL_BULK;
    if (r.status === Status.Ok) return encodeBulk(r.value);
    return r.status === Status.NotFound ? NULL_BULK : kvError(r, 'read');
  }

  /**
   * SET key value [NX|XX] [GET] [EX s|PX ms|EXAT t|PXAT t|KEEPTTL], options parsed with Redis's
   * rules (t_string.c). NX / XX are atomic: the condition travels in the replicated write and is
   * evaluated where it is applied, in log order, so of many clients racing SET NX on a key exactly
   * one gets +OK; the others get a nil reply, as from Redis. EX/PX/EXAT/PXAT give the key an
   * absolute expiry (ms since the Unix epoch, from this gateway's clock for EX/PX) carried in the
   * replicated write (docs/leases.md); KEEPTTL keeps the key's expiry; a plain SET clears it. GET
   * answers the old value, atomically (RespTxnCommands.setGet).
   */
  private set(a: Buffer[], session: KvSession): Reply {
    const o = parseSetOptions(a, this.nowMs());
    if (Buffer.isBuffer(o)) return o;
    const { nx, xx, meta } = o;
    if (o.get) return this.txn.setGet(a[1], a[2], o, session);
    // A plain SET: one write (session.set checks the limits as writeAll does).
    if (!nx && !xx && !meta) return session.set(a[1], a[2]).then((r) => (r.status === Status.Ok ? OK : kvError(r, 'write')));
    return this.conditionalSet(a[1], a[2], nx ? CommandCondition.IfAbsent : xx ? CommandCondition.IfPresent : CommandCondition.None, session, OK, NULL_BULK, meta);
  }

  /** Wall-clock ms since the Unix epoch (expiries are absolute times; the info's clock in tests). */
  private nowMs(): number {
    return this.info.now();
  }

  /** SETEX key seconds value / PSETEX key ms value (Redis t_string.c setexCommand): SET with EX / PX. */
  private setex(a: Buffer[], unitMs: 1 | 1000, session: KvSession): Reply {
    const t = i64Arg(a[2]);
    if (t === null) return NOT_INTEGER;
    const at = setExpiryMsOf(unitMs === 1000 ? 'ex' : 'px', t, this.nowMs());
    if (at === null) return err(`ERR invalid expire time in '${unitMs === 1000 ? 'setex' : 'psetex'}' command`);
    return this.conditionalSet(a[1], a[3], CommandCondition.None, session, OK, NULL_BULK, { leaseId: 0, expiresAtMs: at, keepTtl: false });
  }

  /** SETNX key value: `:1` when set, `:0` when the key existed (SET NX with Redis's integer replies). */
  private setnx(key: Buffer, value: Buffer, session: KvSession): Promise<Buffer> {
    return this.conditionalSet(key, value, CommandCondition.IfAbsent, session, encodeInteger(1), encodeInteger(0));
  }

  /** INCRBY / DECRBY: the increment parsed as Redis's string2ll; DECRBY of -2^63 cannot be negated (Redis 7.0: "decrement would overflow"). */
  private incrByArg(key: Buffer, arg: Buffer, sign: 1n | -1n, session: KvSession): Reply {
    const n = i64Arg(arg);
    if (n === null) return NOT_INTEGER;
    if (sign === -1n && n === I64_MIN) return err('ERR decrement would overflow');
    return this.incrBy(key, sign * n, session);
  }

  /**
   * INCR / DECR / INCRBY / DECRBY: one replicated Incr command, evaluated where it is applied, in
   * log order (so concurrent increments never lose one), answering the new value as a RESP
   * integer; a value that is not a decimal i64, or a sum out of range, is refused with Redis's
   * error text and nothing is written.
   */
  private async incrBy(key: Buffer, delta: bigint, session: KvSession): Promise<Buffer> {
    const r = await session.incr(key, delta);
    if (r.status === Status.Ok && r.counter !== undefined) return Buffer.from(`:${r.counter}\r\n`, 'latin1');
    if (r.status === Status.ConditionFailed) return err(`ERR ${r.message}`);
    return kvError(r, 'write');
  }

  private async conditionalSet(key: Buffer, value: Buffer, condition: CommandCondition, session: KvSession, applied: Buffer, notApplied: Buffer, meta?: CommandMeta): Promise<Buffer> {
    const r = await session.set(key, value, meta ? { condition, meta } : { condition });
    if (r.status === Status.Ok) return applied;
    return r.status === Status.ConditionFailed ? notApplied : kvError(r, 'write');
  }

  /**
   * DEL: up to txnOpsMax keys, ONE transaction deleting every key, its count the keys that existed
   * at its revision (RespTxnCommands.del: atomic and exact, as in Redis). More keys: reads every
   * key (to count those that existed), then deletes every key whatever the read said (a key set by
   * another client between the read and the delete must go too); the count is exact unless another
   * client writes one of the keys between the read and the delete. Costs a read and a write per key.
   */
  private async del(keys: Buffer[], session: KvSession): Promise<Buffer> {
    if (keys.length <= this.txn.opsMax()) return this.txn.del(keys, session);
    const bad = checkAll(session, keys);
    if (bad) return bad;
    const rs = await readAll(session, keys);
    if (Buffer.isBuffer(rs)) return rs;
    const w = await writeAll(
      session,
      keys.map((key) => ({ key })),
    );
    return w === OK ? encodeInteger(rs.filter((r) => r.status === Status.Ok).length) : w;
  }

  private async exists(keys: Buffer[], session: KvSession): Promise<Buffer> {
    const bad = checkAll(session, keys);
    if (bad) return bad;
    const rs = await readAll(session, keys);
    return Buffer.isBuffer(rs) ? rs : encodeInteger(rs.filter((r) => r.status === Status.Ok).length);
  }

  /** MGET: with the connection's read flow control, in a window of reserved bytes and maybe in parts (mgetReply). */
  private async mget(keys: Buffer[], session: KvSession, reads?: CommandReads): Promise<Buffer | PartedReply> {
    const bad = checkAll(session, keys);
    if (bad) return bad;
    if (reads) return mgetReply(session, keys, reads, (r) => kvError(r, 'read'));
    const rs = await readAll(session, keys);
    return Buffer.isBuffer(rs) ? rs : encodeBulkArray(rs.map((r) => (r.status === Status.Ok ? r.value : null)));
  }

  private dbsize(): Buffer {
    const keys = storedKeys(this.info.view);
    return keys === null ? err('TRYAGAIN no live storage node status yet') : encodeInteger(keys);
  }

  /** COMMAND: no command table (an empty array is enough for redis-cli and clients), COUNT, LIST, INFO (nil per name), DOCS (empty). */
  private command(a: Buffer[]): Buffer {
    if (a.length === 1) return EMPTY_ARRAY;
    const sub = lower(a[1]);
    if (sub === 'count' && a.length === 2) return encodeInteger(this.names().length);
    if (sub === 'list' && a.length === 2) return encodeBulkArray(this.names());
    if (sub === 'docs') return EMPTY_ARRAY;
    if (sub === 'info') return encodeArray(a.slice(2).map(() => NULL_BULK));
    return unknownSubcommand(a[1], 'COMMAND');
  }

  /**
   * CONFIG GET answers the few parameters that have a true meaning here (redis-benchmark asks for
   * `save` and `appendonly`): no RDB snapshots, no AOF (durability is the Raft log), one database.
   */
  private config(a: Buffer[]): Buffer {
    const sub = lower(a[1]);
    if (sub === 'get') {
      if (a.length < 3) return wrongArity('config|get');
      const params: [string, string][] = [
        ['save', ''],
        ['appendonly', 'no'],
        ['databases', '1'],
      ];
      const out: string[] = [];
      for (const [k, v] of params) if (a.slice(2).some((p) => globMatch(Buffer.from(lower(p)), Buffer.from(k)))) out.push(k, v);
      return encodeBulkArray(out);
    }
    if (sub === 'resetstat' && a.length === 2) return OK;
    if (sub === 'set') return err('ERR CONFIG SET is not supported: Cairn is configured by its cluster config file');
    return unknownSubcommand(a[1], 'CONFIG');
  }

  private client(a: Buffer[], c: RespClient): Buffer {
    const sub = lower(a[1]);
    if (sub === 'setname') {
      if (a.length !== 3) return wrongArity('client|setname');
      const name = a[2].toString('latin1');
      if (!/^[!-~]*$/.test(name)) return err('ERR Client names cannot contain spaces, newlines or special characters.');
      c.name = name === '' ? null : name;
      return OK;
    }
    if (sub === 'getname' && a.length === 2) return encodeBulk(c.name);
    if (sub === 'id' && a.length === 2) return encodeInteger(c.id);
    if (sub === 'info' && a.length === 2) return encodeBulk(`id=${c.id} addr=${c.remote} laddr=${c.local} name=${c.name ?? ''} db=0 resp=2 lib=cairn-gateway\n`);
    if (sub === 'setinfo' && a.length === 4) return OK; // clients announce their library; nothing to keep
    return unknownSubcommand(a[1], 'CLIENT');
  }

  private select(db: Buffer): Buffer {
    const n = integerArg(db);
    if (n === null) return NOT_INTEGER;
    return n === 0 ? OK : err('ERR DB index is out of range');
  }

  /**
   * AUTH [user] password (Redis 6 ACL form; one argument = user `default`): checks the credentials
   * (GatewayAuth.checkPassword: scrypt, the per-address bound) and makes the connection that user.
   * `-WRONGPASS` for an unknown user and a wrong password alike; the failuresPerConnectionMax-th
   * failure is answered and the connection closed. With no users at all: Redis's no-password error.
   */
  private async authenticate(user: string, password: string, c: RespClient): Promise<Buffer> {
    // No users at all (auth never set up): Redis's answer when no password is configured.
    if (!this.auth || this.auth.view.current()?.state.users.size === 0) return err('ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?');
    const r = await this.auth.checkPassword(user, password, c.address ?? '');
    if (!isRefusal(r)) {
      c.identity = Object.assign(c.identity ?? { user: null }, { user: r.user });
      return OK;
    }
    if (r.status !== Status.Unauthenticated) return err(`TRYAGAIN ${r.message}`);
    c.authFailures = (c.authFailures ?? 0) + 1;
    if (c.authFailures >= this.auth.settings.failuresPerConnectionMax) c.quit = true;
    return err(r.message === TOO_MANY_FAILURES ? `WRONGPASS ${r.message}` : WRONGPASS);
  }

  /** HELLO [protover [AUTH u p] [SETNAME name]]: RESP2 only; 3 → -NOPROTO so clients fall back. AUTH first, as Redis does. */
  private hello(a: Buffer[], c: RespClient): Reply {
    if (a.length < 2) return this.helloReply(a, c);
    const v = integerArg(a[1]);
    if (v === null) return err('ERR Protocol version is not an integer or out of range');
    if (v !== 2) return err('NOPROTO unsupported protocol version');
    const at = a.findIndex((x, i) => i >= 2 && lower(x) === 'auth');
    if (at < 0 || at + 2 >= a.length) return this.helloReply(a, c);
    return this.authenticate(a[at + 1].toString('utf8'), a[at + 2].toString('utf8'), c).then((r) => (r === OK ? this.helloReply([...a.slice(0, at), ...a.slice(at + 3)], c) : r));
  }

  private helloReply(a: Buffer[], c: RespClient): Buffer {
    if (this.auth && (c.identity?.user ?? null) === null && this.auth.view.current()?.state.enabled) return err(NOAUTH);
    for (let i = 2; i < a.length; i++) {
      const opt = lower(a[i]);
      if (opt === 'setname' && i + 1 < a.length) {
        const r = this.client([a[0], Buffer.from('setname'), a[++i]], c);
        if (r !== OK) return r;
      } else return err(`ERR Syntax error in HELLO option '${a[i].toString('latin1')}'`);
    }
    return encodeArray([
      encodeBulk('server'),
      encodeBulk('redis'),
      encodeBulk('version'),
      encodeBulk(REDIS_COMPAT_VERSION),
      encodeBulk('proto'),
      encodeInteger(2),
      encodeBulk('id'),
      encodeInteger(c.id),
      encodeBulk('mode'),
      encodeBulk('standalone'),
      encodeBulk('role'),
      encodeBulk('master'),
      encodeBulk('modules'),
      EMPTY_ARRAY,
    ]);
  }
}
