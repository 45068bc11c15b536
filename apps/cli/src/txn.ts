/**
 * `cairn txn`: an etcd transaction written as etcdctl's `txn` reads it (etcdctl/ctlv3/command/txn_command.go):
 * compares, a blank line, success ops, a blank line, failure ops, e.g.
 * ```
 * mod("lock") = "0"
 *
 * put lock me
 * get config/ --prefix
 *
 * get lock
 * ```
 * Compares: `value|mod|create|version|ver("KEY") =|!=|>|< "OPERAND"` (the operand quoted or bare).
 * Ops: `put KEY VALUE [--prev-kv] [--lease ID | --ignore-lease]`, `get KEY [END] [--prefix] [--from-key] [--keys-only]
 * [--count-only] [--limit N] [--order ASCEND|DESCEND]`, `del KEY [END] [--prefix] [--from-key] [--prev-kv]`.
 * Words are split on blanks; a word in double quotes is a JSON string (`"a b"`, `"tab\there"`, `""`).
 */
import { CompareResult, CompareTarget, TxnOpFlags, TxnOpKind, type TxnCompare, type TxnKv, type TxnOp, type TxnOpResponse, type TxnRequest } from '@cairn/protocol';
import { UsageError } from './exit-codes';
import { valueJson } from './format';

/** Bytes of a txn script read at most (a file or standard input): a txn is at most the gateway's valueBytesMax (1 MiB by default) encoded. */
export const TXN_SCRIPT_BYTES_MAX = 16 * 1024 * 1024;

const TARGETS: Record<string, CompareTarget> = { value: CompareTarget.Value, mod: CompareTarget.ModRevision, create: CompareTarget.CreateRevision, version: CompareTarget.Version, ver: CompareTarget.Version };
const RESULTS: Record<string, CompareResult> = { '=': CompareResult.Equal, '==': CompareResult.Equal, '!=': CompareResult.NotEqual, '>': CompareResult.Greater, '<': CompareResult.Less };
const COMPARE = /^\s*(\w+)\(("(?:[^"\\]|\\.)*")\)\s*(==|=|!=|>|<)\s*(.*?)\s*$/;

/** Splits a line into words: blanks separate, a double-quoted word is a JSON string. @throws UsageError on an unterminated or malformed quote. */
export function words(line: string, where: string): string[] {
  const out: string[] = [];
  const re = /\s*(?:("(?:[^"\\]|\\.)*")|(\S+))/y;
  let m: RegExpExecArray | null;
  while (re.lastIndex < line.length && (m = re.exec(line))) {
    if (m[1] !== undefined) out.push(jsonString(m[1], where));
    else if (m[2].startsWith('"')) throw new UsageError(`${where}: unterminated quote in ${m[2]}`);
    else if (m[2] !== undefined) out.push(m[2]);
  }
  return out;
}

function jsonString(quoted: string, where: string): string {
  try {
    return JSON.parse(quoted) as string;
  } catch {
    throw new UsageError(`${where}: bad quoted word ${quoted} (quoted words are JSON strings)`);
  }
}

function compareOf(line: string, where: string): TxnCompare {
  const m = COMPARE.exec(line);
  if (!m) throw new UsageError(`${where}: a compare is TARGET("KEY") OP "OPERAND", e.g. mod("k") = "0", got: ${line}`);
  const target = TARGETS[m[1]];
  if (target === undefined) throw new UsageError(`${where}: unknown compare target ${m[1]} (value, mod, create, version)`);
  const key = Buffer.from(jsonString(m[2], where));
  const operand = m[4].startsWith('"') ? jsonString(m[4], where) : m[4];
  if (target === CompareTarget.Value) return { key, target, result: RESULTS[m[3]], value: Buffer.from(operand) };
  if (!/^\d{1,16}$/.test(operand) || !Number.isSafeInteger(Number(operand))) throw new UsageError(`${where}: ${m[1]} compares an integer in 0..2^53-1, got ${operand}`);
  return { key, target, result: RESULTS[m[3]], operand: Number(operand) };
}

/** Flags of an op line: `--name` or `--name value` (`--limit 5`, `--order DESCEND`); the rest are its positional words. */
function splitFlags(args: string[], valued: Set<string>, allowed: Set<string>, where: string): { pos: string[]; flags: Map<string, string> } {
  const pos: string[] = [];
  const flags = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!a.startsWith('--')) {
      pos.push(a);
      continue;
    }
    const [name, inline] = a.slice(2).split('=', 2);
    if (!allowed.has(name)) throw new UsageError(`${where}: unknown option --${name}`);
    if (!valued.has(name)) flags.set(name, '');
    else if (inline !== undefined) flags.set(name, inline);
    else if (i + 1 < args.length) flags.set(name, args[++i]);
    else throw new UsageError(`${where}: --${name} needs a value`);
  }
  return { pos, flags };
}

/** The range of a get / del: END, `--prefix` or `--from-key` (every key ≥ KEY). */
function rangeOf(pos: string[], flags: Map<string, string>, where: string): { end: Buffer; flags: number } {
  const ways = [pos.length > 1, flags.has('prefix'), flags.has('from-key')].filter(Boolean).length;
  if (ways > 1) throw new UsageError(`${where}: END, --prefix and --from-key exclude each other`);
  if (flags.has('prefix')) return { end: Buffer.alloc(0), flags: TxnOpFlags.Prefix };
  if (flags.has('from-key')) return { end: Buffer.from([0]), flags: 0 };
  return { end: Buffer.from(pos[1] ?? ''), flags: 0 };
}

const GET_FLAGS = new Set(['prefix', 'from-key', 'keys-only', 'count-only', 'limit', 'order']);
const DEL_FLAGS = new Set(['prefix', 'from-key', 'prev-kv']);
const PUT_FLAGS = new Set(['prev-kv', 'lease', 'ignore-lease']);
const VALUED = new Set(['limit', 'order', 'lease']);

function opOf(line: string, where: string): TxnOp {
  const [verb, ...args] = words(line, where);
  if (verb === 'put') {
    const { pos, flags } = splitFlags(args, VALUED, PUT_FLAGS, where);
    if (pos.length !== 2) throw new UsageError(`${where}: put takes KEY VALUE`);
    const put: TxnOp = { kind: TxnOpKind.Put, key: Buffer.from(pos[0]), value: Buffer.from(pos[1]), flags: (flags.has('prev-kv') ? TxnOpFlags.PrevKv : 0) | (flags.has('ignore-lease') ? TxnOpFlags.KeepTtl : 0) };
    const lease = flags.get('lease');
    if (lease !== undefined) {
      // Decimal, as `cairn put --lease` and `cairn lease grant` print it (etcdctl's is hexadecimal).
      if (flags.has('ignore-lease')) throw new UsageError(`${where}: --lease and --ignore-lease exclude each other`);
      if (!/^[1-9]\d{0,15}$/.test(lease) || !Number.isSafeInteger(Number(lease))) throw new UsageError(`${where}: --lease takes a lease id, an integer in 1..2^53-1, got ${lease}`);
      put.flags! |= TxnOpFlags.Lease;
      put.lease = Number(lease);
    }
    return put;
  }
  if (verb === 'get') {
    const { pos, flags } = splitFlags(args, VALUED, GET_FLAGS, where);
    if (pos.length < 1 || pos.length > 2) throw new UsageError(`${where}: get takes KEY [END]`);
    const r = rangeOf(pos, flags, where);
    const limit = flags.get('limit') ?? '0';
    if (!/^\d{1,10}$/.test(limit) || Number(limit) > 0xffff_ffff) throw new UsageError(`${where}: --limit takes an integer in 0..2^32-1, got ${limit}`);
    const order = flags.get('order') ?? 'ASCEND';
    if (order !== 'ASCEND' && order !== 'DESCEND') throw new UsageError(`${where}: --order is ASCEND or DESCEND, got ${order}`);
    const more = (flags.has('keys-only') ? TxnOpFlags.KeysOnly : 0) | (flags.has('count-only') ? TxnOpFlags.CountOnly : 0) | (order === 'DESCEND' ? TxnOpFlags.Reverse : 0);
    return { kind: TxnOpKind.Range, key: Buffer.from(pos[0]), end: r.end, flags: r.flags | more, limit: Number(limit) };
  }
  if (verb === 'del' || verb === 'delete') {
    const { pos, flags } = splitFlags(args, VALUED, DEL_FLAGS, where);
    if (pos.length < 1 || pos.length > 2) throw new UsageError(`${where}: del takes KEY [END]`);
    const r = rangeOf(pos, flags, where);
    return { kind: TxnOpKind.Delete, key: Buffer.from(pos[0]), end: r.end, flags: r.flags | (flags.has('prev-kv') ? TxnOpFlags.PrevKv : 0) };
  }
  throw new UsageError(`${where}: an op is put, get or del, got: ${line}`);
}

/**
 * Parses a txn script (lines without their line ends): three sections separated by a blank line
 * (compares, success ops, failure ops); missing trailing sections are empty. @throws UsageError
 * naming the line of anything malformed, or a fourth section.
 */
export function parseTxnScript(lines: string[], source: string): TxnRequest {
  const request: TxnRequest = { compares: [], success: [], failure: [] };
  let section = 0;
  lines.forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    const where = `${source}:${i + 1}`;
    if (line.trim() === '') {
      section++;
      return;
    }
    if (section === 0) request.compares.push(compareOf(line, where));
    else if (section === 1) request.success.push(opOf(line, where));
    else if (section === 2) request.failure.push(opOf(line, where));
    else throw new UsageError(`${where}: a txn has three sections (compares, success ops, failure ops) separated by one blank line each`);
  });
  return request;
}

const raw = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

/** A kv in `--json`: `key` or `keyBase64`, `value` or `valueBase64` (as `get --json`), `revision` (the mod revision), `createRevision`, `version`. */
export function kvJson(kv: TxnKv, keysOnly = false): Record<string, unknown> {
  const k = valueJson(kv.key);
  const key = 'value' in k ? { key: k.value } : { keyBase64: k.valueBase64 };
  return { ...key, ...(keysOnly ? {} : valueJson(kv.value)), revision: kv.modRevision, createRevision: kv.createRevision, version: kv.version };
}

/** One response in `--json`: `{put: {prevKv?}}`, `{range: {count, more, kvs}}`, `{delete: {deleted, prevKvs}}`. */
export function responseJson(x: TxnOpResponse, op: TxnOp | undefined): Record<string, unknown> {
  const keysOnly = ((op?.flags ?? 0) & TxnOpFlags.KeysOnly) !== 0;
  switch (x.kind) {
    case TxnOpKind.Put:
      return { put: x.prev ? { prevKv: kvJson(x.prev) } : {} };
    case TxnOpKind.Delete:
      return { delete: { deleted: x.deleted, prevKvs: x.prev.map((kv) => kvJson(kv)) } };
    case TxnOpKind.Get:
      return { range: { count: x.kv ? 1 : 0, more: false, kvs: x.kv ? [kvJson(x.kv, keysOnly)] : [] } };
    case TxnOpKind.Range:
      return { range: { count: x.count, more: x.more, kvs: x.kvs.map((kv) => kvJson(kv, keysOnly)) } };
  }
}

/**
 * The text answer, as etcdctl prints a txn: `SUCCESS` or `FAILURE`, then per response a blank line
 * and: put `OK` (and the previous key and value with --prev-kv); get the key and value lines of
 * each kv (keys only: the keys; --count-only: the count); del the number deleted (and the
 * previous keys and values with --prev-kv). Keys and values are written as they are (bytes).
 */
export function txnText(succeeded: boolean, responses: TxnOpResponse[], ops: TxnOp[]): Buffer {
  const parts: Buffer[] = [Buffer.from(succeeded ? 'SUCCESS\n' : 'FAILURE\n')];
  const line = (b: Uint8Array | string) => parts.push(typeof b === 'string' ? Buffer.from(b) : raw(b), Buffer.from('\n'));
  const kvLines = (kv: TxnKv, keysOnly: boolean) => {
    line(kv.key);
    if (!keysOnly) line(kv.value);
  };
  responses.forEach((x, i) => {
    parts.push(Buffer.from('\n'));
    const flags = ops[i]?.flags ?? 0;
    if (x.kind === TxnOpKind.Put) {
      line('OK');
      if (x.prev) kvLines(x.prev, false);
    } else if (x.kind === TxnOpKind.Delete) {
      line(String(x.deleted));
      for (const kv of x.prev) kvLines(kv, false);
    } else if (flags & TxnOpFlags.CountOnly) line(String(x.kind === TxnOpKind.Range ? x.count : x.kv ? 1 : 0));
    else for (const kv of x.kind === TxnOpKind.Range ? x.kvs : x.kv ? [x.kv] : []) kvLines(kv, (flags & TxnOpFlags.KeysOnly) !== 0);
  });
  return Buffer.concat(parts);
}
