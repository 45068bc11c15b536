import { ExpireCondition, Status } from '@cairn/protocol';
import { NULL_BULK, encodeBulk, encodeBulkArray, encodeError, encodeInteger } from '@cairn/resp';
import type { KvResult, KvSession } from '../paths/kv-session';
import { expiryMsOf, i64Arg, kvError, setExpiryMsOf, type Command } from './commands';

const err = (message: string) => encodeError(message);
const SYNTAX = err('ERR syntax error');
const NOT_INTEGER = err('ERR value is not an integer or out of range');
const ZERO = encodeInteger(0);
const ONE = encodeInteger(1);

/** How an EXPIRE-family command reads its time argument: a relative time or a Unix time, in s or ms. */
interface ExpireForm {
  name: string;
  /** Ms per unit of the argument (1000: seconds). */
  unitMs: 1 | 1000;
  /** The argument is a Unix time (EXPIREAT / PEXPIREAT), not a time from now. */
  absolute: boolean;
}

const FORMS: ExpireForm[] = [
  { name: 'expire', unitMs: 1000, absolute: false },
  { name: 'pexpire', unitMs: 1, absolute: false },
  { name: 'expireat', unitMs: 1000, absolute: true },
  { name: 'pexpireat', unitMs: 1, absolute: true },
];

/** Redis 7 expire.c: NX / XX / GT / LT, at most one of NX / XX and GT / LT, NX with neither of the others. */
function expireCondition(opts: Buffer[]): ExpireCondition | Buffer {
  let nx = false;
  let xx = false;
  let gt = false;
  let lt = false;
  for (const o of opts) {
    const s = o.toString('latin1').toLowerCase();
    if (s === 'nx') nx = true;
    else if (s === 'xx') xx = true;
    else if (s === 'gt') gt = true;
    else if (s === 'lt') lt = true;
    else return err(`ERR Unsupported option ${o.toString('latin1')}`);
  }
  if (nx && (xx || gt || lt)) return err('ERR NX and XX, GT or LT options at the same time are not compatible');
  if (gt && lt) return err('ERR GT and LT options at the same time are not compatible');
  // XX with GT: GT already fails on a key without expiry (the same outcome). XX with LT: LT alone holds there, so both travel.
  if (lt) return xx ? ExpireCondition.LtXx : ExpireCondition.Lt;
  return nx ? ExpireCondition.Nx : gt ? ExpireCondition.Gt : xx ? ExpireCondition.Xx : ExpireCondition.None;
}

/**
 * Redis's key-expiry commands on the RESP door (docs/resp.md "Key expiry", docs/leases.md): EXPIRE,
 * PEXPIRE, EXPIREAT, PEXPIREAT (NX/XX/GT/LT evaluated on the storage nodes at apply time, in log
 * order: atomic, as Redis's), PERSIST, TTL, PTTL, EXPIRETIME, PEXPIRETIME and GETEX. An expiry is
 * an absolute time from this gateway's clock (`now`); a key's is read back with its value (the
 * storage node's ReadReply expiry trailer, docs/protocol.md).
 */
export class RespTtlCommands {
  constructor(private readonly now: () => number) {}

  commands(): Record<string, Command> {
    const table: Record<string, Command> = {
      persist: { arity: 2, effect: 'write', run: (a, c) => this.expireReply(c.session.expire(a[1], 0, ExpireCondition.Xx, this.now())) },
      ttl: { arity: 2, effect: 'read', run: (a, c) => this.ttl(a[1], c.session, (left) => Math.floor((left + 500) / 1000)) },
      pttl: { arity: 2, effect: 'read', run: (a, c) => this.ttl(a[1], c.session, (left) => left) },
      expiretime: { arity: 2, effect: 'read', run: (a, c) => this.expireTime(a[1], c.session, 1000) },
      pexpiretime: { arity: 2, effect: 'read', run: (a, c) => this.expireTime(a[1], c.session, 1) },
      getex: { arity: -2, effect: 'both', run: (a, c) => this.getex(a, c.session) },
      // Redis TIME: this gateway's clock (the one expiries are taken from), Unix seconds and microseconds (ms resolution).
      time: { arity: 1, run: () => this.time() },
    };
    for (const form of FORMS) table[form.name] = { arity: -3, effect: 'write', run: (a, c) => this.expire(a, form, c.session) };
    return table;
  }

  private time(): Buffer {
    const ms = this.now();
    return encodeBulkArray([String(Math.floor(ms / 1000)), String((ms % 1000) * 1000)]);
  }

  /** EXPIRE key t [NX|XX|GT|LT] and its three siblings: `:1` when the expiry was set, `:0` when the key is missing or the condition failed. */
  private expire(a: Buffer[], form: ExpireForm, session: KvSession): Buffer | Promise<Buffer> {
    const t = i64Arg(a[2]);
    if (t === null) return NOT_INTEGER;
    const condition = expireCondition(a.slice(3));
    if (Buffer.isBuffer(condition)) return condition;
    const nowMs = this.now();
    const at = expiryMsOf(t, form.unitMs, form.absolute, nowMs);
    if (at === null) return err(`ERR invalid expire time in '${form.name}' command`);
    return this.expireReply(session.expire(a[1], at, condition, nowMs));
  }

  private async expireReply(p: Promise<KvResult>): Promise<Buffer> {
    const r = await p;
    if (r.status === Status.Ok) return ONE;
    return r.status === Status.ConditionFailed ? ZERO : kvError(r, 'write');
  }

  /** The key's expiry from a read: null when it is missing (Redis -2), 0 when it has none (-1), else the absolute ms; or the error reply. */
  private async expiryOf(key: Buffer, session: KvSession): Promise<number | null | Buffer> {
    const r = await session.get(key);
    if (r.status === Status.NotFound) return null;
    if (r.status !== Status.Ok) return kvError(r, 'read');
    return r.expiresAtMs ?? 0;
  }

  /** TTL / PTTL (Redis ttlGenericCommand): -2 missing, -1 no expiry, else the time left (never below 0), `scale`d. */
  private async ttl(key: Buffer, session: KvSession, scale: (leftMs: number) => number): Promise<Buffer> {
    const at = await this.expiryOf(key, session);
    if (Buffer.isBuffer(at)) return at;
    if (at === null) return encodeInteger(-2);
    if (at === 0) return encodeInteger(-1);
    return encodeInteger(scale(Math.max(0, at - this.now())));
  }

  /** EXPIRETIME / PEXPIRETIME: -2 missing, -1 no expiry, else the absolute Unix time in s (floored) or ms. */
  private async expireTime(key: Buffer, session: KvSession, unitMs: 1 | 1000): Promise<Buffer> {
    const at = await this.expiryOf(key, session);
    if (Buffer.isBuffer(at)) return at;
    return encodeInteger(at === null ? -2 : at === 0 ? -1 : Math.floor(at / unitMs));
  }

  /**
   * GETEX key [EX s | PX ms | EXAT s | PXAT ms | PERSIST] (Redis 6.2 getexCommand): the value (nil
   * when missing), and then the new expiry or none. Not atomic as Redis's: the read, then an Expire
   * on the key (applied only while it is live); a write between them is answered with the value read.
   */
  private async getex(a: Buffer[], session: KvSession): Promise<Buffer> {
    let expiresAtMs: number | null = null;
    if (a.length > 2) {
      const opt = a[2].toString('latin1').toLowerCase();
      if (opt === 'persist' && a.length === 3) expiresAtMs = 0;
      else if (['ex', 'px', 'exat', 'pxat'].includes(opt) && a.length === 4) {
        const t = i64Arg(a[3]);
        if (t === null) return NOT_INTEGER;
        const at = setExpiryMsOf(opt, t, this.now());
        if (at === null) return err("ERR invalid expire time in 'getex' command");
        expiresAtMs = at;
      } else return SYNTAX;
    }
    const r = await session.get(a[1]);
    if (r.status === Status.NotFound) return NULL_BULK;
    if (r.status !== Status.Ok) return kvError(r, 'read');
    if (expiresAtMs !== null && !(expiresAtMs === 0 && !r.expiresAtMs)) {
      const w = await session.expire(a[1], expiresAtMs, ExpireCondition.None, this.now());
      if (w.status !== Status.Ok && w.status !== Status.ConditionFailed) return kvError(w, 'write');
    }
    return encodeBulk(r.value);
  }
}
