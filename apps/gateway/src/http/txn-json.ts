import { isUtf8 } from 'node:buffer';
import { CompareResult, CompareTarget, TxnOpFlags, TxnOpKind, type TxnCompare, type TxnKv, type TxnOp, type TxnOpResponse, type TxnRequest, type TxnResult } from '@cairn/protocol';
import { Transform, Type } from 'class-transformer';
import { IsArray, IsBoolean, IsIn, IsInt, IsOptional, IsString, Max, Min, ValidateNested } from 'class-validator';

/**
 * `POST /v1/txn`'s JSON, shaped after etcd's v3 JSON gateway (`POST /v3/kv/txn`, etcdserverpb
 * TxnRequest / TxnResponse; docs/http.md "Transactions"). Differences from etcd: keys, values and
 * range ends are UTF-8 strings unless the body says `"encoding": "base64"` (etcd: always base64);
 * integers are JSON numbers (etcd: decimal strings, also accepted here); `prefix: true` on a range
 * or delete is a Cairn shorthand for etcd's computed range_end; a compare has no range_end and no
 * LEASE target.
 */

/** How keys, values and range ends are written in the body and the answer. */
export type TxnEncoding = 'utf8' | 'base64';

/** A u64 operand as etcd's JSON gateway writes it (a decimal string) or as a JSON number. */
const toInteger = ({ value }: { value: unknown }) => (typeof value === 'string' && /^\d{1,16}$/.test(value) ? Number(value) : value);
const REVISION_MESSAGE = 'must be an integer in 0..2^53-1 (a JSON number or a decimal string)';
const LEASE_MESSAGE = 'lease must be an integer in 1..2^53-1 (a JSON number or a decimal string)';

/** etcd Compare: `target` VALUE (with `value`), VERSION (`version`), CREATE (`create_revision`) or MOD (`mod_revision`); `result` defaults to EQUAL, a missing operand to 0 / "" (proto3 defaults). */
export class TxnCompareJson {
  @IsString() key!: string;
  @IsIn(['VALUE', 'VERSION', 'CREATE', 'MOD'], { message: 'target must be VALUE, VERSION, CREATE or MOD' }) target!: 'VALUE' | 'VERSION' | 'CREATE' | 'MOD';
  @IsOptional() @IsIn(['EQUAL', 'NOT_EQUAL', 'GREATER', 'LESS'], { message: 'result must be EQUAL, NOT_EQUAL, GREATER or LESS' }) result?: 'EQUAL' | 'NOT_EQUAL' | 'GREATER' | 'LESS';
  @IsOptional() @IsString() value?: string;
  @IsOptional() @Transform(toInteger) @IsInt({ message: `version ${REVISION_MESSAGE}` }) @Min(0, { message: `version ${REVISION_MESSAGE}` }) @Max(Number.MAX_SAFE_INTEGER, { message: `version ${REVISION_MESSAGE}` }) version?: number;
  @IsOptional() @Transform(toInteger) @IsInt({ message: `create_revision ${REVISION_MESSAGE}` }) @Min(0, { message: `create_revision ${REVISION_MESSAGE}` }) @Max(Number.MAX_SAFE_INTEGER, { message: `create_revision ${REVISION_MESSAGE}` }) create_revision?: number;
  @IsOptional() @Transform(toInteger) @IsInt({ message: `mod_revision ${REVISION_MESSAGE}` }) @Min(0, { message: `mod_revision ${REVISION_MESSAGE}` }) @Max(Number.MAX_SAFE_INTEGER, { message: `mod_revision ${REVISION_MESSAGE}` }) mod_revision?: number;
}

/**
 * etcd PutRequest (no ignore_value): `lease` attaches the key to that lease (LEASE; a lease that
 * does not exist at apply fails the whole txn: 404), `ignore_lease` keeps the key's lease and
 * expiry (KEEP_TTL); not both (etcd refuses both too).
 */
export class TxnPutJson {
  @IsString() key!: string;
  @IsOptional() @IsString() value?: string;
  @IsOptional() @IsBoolean() prev_kv?: boolean;
  @IsOptional() @IsBoolean() ignore_lease?: boolean;
  @IsOptional() @Transform(toInteger) @IsInt({ message: LEASE_MESSAGE }) @Min(1, { message: LEASE_MESSAGE }) @Max(Number.MAX_SAFE_INTEGER, { message: LEASE_MESSAGE }) lease?: number;
}

/** etcd RangeRequest: no range_end = the single key; range_end "\0" = every key ≥ key; `sort_order` DESCEND = reverse key order (sort_target KEY only). */
export class TxnRangeJson {
  @IsString() key!: string;
  @IsOptional() @IsString() range_end?: string;
  @IsOptional() @IsBoolean() prefix?: boolean;
  @IsOptional() @Transform(toInteger) @IsInt({ message: 'limit must be an integer in 0..2^32-1' }) @Min(0, { message: 'limit must be an integer in 0..2^32-1' }) @Max(0xffff_ffff, { message: 'limit must be an integer in 0..2^32-1' }) limit?: number;
  @IsOptional() @IsBoolean() keys_only?: boolean;
  @IsOptional() @IsBoolean() count_only?: boolean;
  @IsOptional() @IsIn(['NONE', 'ASCEND', 'DESCEND'], { message: 'sort_order must be NONE, ASCEND or DESCEND' }) sort_order?: 'NONE' | 'ASCEND' | 'DESCEND';
  @IsOptional() @IsIn(['KEY'], { message: 'sort_target must be KEY (ranges are in key order)' }) sort_target?: 'KEY';
}

/** etcd DeleteRangeRequest. */
export class TxnDeleteJson {
  @IsString() key!: string;
  @IsOptional() @IsString() range_end?: string;
  @IsOptional() @IsBoolean() prefix?: boolean;
  @IsOptional() @IsBoolean() prev_kv?: boolean;
}

/** etcd RequestOp: exactly one of the three. */
export class TxnRequestOpJson {
  @IsOptional() @ValidateNested() @Type(() => TxnPutJson) request_put?: TxnPutJson;
  @IsOptional() @ValidateNested() @Type(() => TxnRangeJson) request_range?: TxnRangeJson;
  @IsOptional() @ValidateNested() @Type(() => TxnDeleteJson) request_delete_range?: TxnDeleteJson;
}

/** The body of `POST /v1/txn` (etcd TxnRequest, plus `encoding`). */
export class TxnBodyJson {
  @IsOptional() @IsIn(['utf8', 'base64'], { message: 'encoding must be utf8 or base64' }) encoding?: TxnEncoding;
  @IsOptional() @IsArray() @ValidateNested({ each: true }) @Type(() => TxnCompareJson) compare?: TxnCompareJson[];
  @IsOptional() @IsArray() @ValidateNested({ each: true }) @Type(() => TxnRequestOpJson) success?: TxnRequestOpJson[];
  @IsOptional() @IsArray() @ValidateNested({ each: true }) @Type(() => TxnRequestOpJson) failure?: TxnRequestOpJson[];
}

/** A body the shapes allow but the semantics do not (two ops in one RequestOp, an operand for another target...). */
export class TxnJsonError extends Error {
  readonly code = 'BAD_REQUEST';
}

const TARGETS = { VALUE: CompareTarget.Value, VERSION: CompareTarget.Version, CREATE: CompareTarget.CreateRevision, MOD: CompareTarget.ModRevision } as const;
const RESULTS = { EQUAL: CompareResult.Equal, NOT_EQUAL: CompareResult.NotEqual, GREATER: CompareResult.Greater, LESS: CompareResult.Less } as const;
/** The operand field each integer target takes. */
const OPERAND_FIELD = { VERSION: 'version', CREATE: 'create_revision', MOD: 'mod_revision' } as const;
const OPERAND_FIELDS = ['version', 'create_revision', 'mod_revision'] as const;

function bytesOf(s: string, encoding: TxnEncoding, what: string): Buffer {
  if (encoding === 'utf8') return Buffer.from(s, 'utf8');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 === 1) throw new TxnJsonError(`${what} is not base64`);
  return Buffer.from(s, 'base64');
}

function compareOf(c: TxnCompareJson, encoding: TxnEncoding, at: string): TxnCompare {
  const target = TARGETS[c.target];
  const result = RESULTS[c.result ?? 'EQUAL'];
  const key = bytesOf(c.key, encoding, `${at}.key`);
  if (c.target === 'VALUE') {
    const extra = OPERAND_FIELDS.find((f) => c[f] !== undefined);
    if (extra) throw new TxnJsonError(`${at}: target VALUE compares value, not ${extra}`);
    return { key, target, result, value: bytesOf(c.value ?? '', encoding, `${at}.value`) };
  }
  const field = OPERAND_FIELD[c.target];
  const extra = c.value !== undefined ? 'value' : OPERAND_FIELDS.find((f) => f !== field && c[f] !== undefined);
  if (extra) throw new TxnJsonError(`${at}: target ${c.target} compares ${field}, not ${extra}`);
  return { key, target, result, operand: c[field] ?? 0 };
}

/** The end of a range / delete: `prefix` (PREFIX flag), `range_end` (etcd: "\0" = every key ≥ key), or none (the single key). */
function endOf(o: { range_end?: string; prefix?: boolean }, encoding: TxnEncoding, at: string): { flags: number; end: Buffer } {
  if (o.prefix && o.range_end !== undefined) throw new TxnJsonError(`${at}: prefix excludes range_end`);
  if (o.prefix) return { flags: TxnOpFlags.Prefix, end: Buffer.alloc(0) };
  return { flags: 0, end: o.range_end === undefined ? Buffer.alloc(0) : bytesOf(o.range_end, encoding, `${at}.range_end`) };
}

function opOf(r: TxnRequestOpJson, encoding: TxnEncoding, at: string): TxnOp {
  const given = (['request_put', 'request_range', 'request_delete_range'] as const).filter((k) => r[k] !== undefined);
  if (given.length !== 1) throw new TxnJsonError(`${at} must hold exactly one of request_put, request_range, request_delete_range`);
  if (r.request_put) {
    const p = r.request_put;
    if (p.lease !== undefined && p.ignore_lease) throw new TxnJsonError(`${at}.request_put: lease and ignore_lease cannot both be set`);
    const put: TxnOp = { kind: TxnOpKind.Put, key: bytesOf(p.key, encoding, `${at}.request_put.key`), value: bytesOf(p.value ?? '', encoding, `${at}.request_put.value`), flags: (p.prev_kv ? TxnOpFlags.PrevKv : 0) | (p.ignore_lease ? TxnOpFlags.KeepTtl : 0) | (p.lease !== undefined ? TxnOpFlags.Lease : 0) };
    if (p.lease !== undefined) put.lease = p.lease;
    return put;
  }
  if (r.request_range) {
    const q = r.request_range;
    const { flags, end } = endOf(q, encoding, `${at}.request_range`);
    const more = (q.keys_only ? TxnOpFlags.KeysOnly : 0) | (q.count_only ? TxnOpFlags.CountOnly : 0) | (q.sort_order === 'DESCEND' ? TxnOpFlags.Reverse : 0);
    return { kind: TxnOpKind.Range, key: bytesOf(q.key, encoding, `${at}.request_range.key`), end, flags: flags | more, limit: q.limit ?? 0 };
  }
  const d = r.request_delete_range!;
  const { flags, end } = endOf(d, encoding, `${at}.request_delete_range`);
  return { kind: TxnOpKind.Delete, key: bytesOf(d.key, encoding, `${at}.request_delete_range.key`), end, flags: flags | (d.prev_kv ? TxnOpFlags.PrevKv : 0) };
}

/** The TxnRequest of a validated body. @throws TxnJsonError (→ 400) on what the shapes cannot say. */
export function txnRequestOf(body: TxnBodyJson): TxnRequest {
  const encoding = body.encoding ?? 'utf8';
  return {
    compares: (body.compare ?? []).map((c, i) => compareOf(c, encoding, `compare.${i}`)),
    success: (body.success ?? []).map((o, i) => opOf(o, encoding, `success.${i}`)),
    failure: (body.failure ?? []).map((o, i) => opOf(o, encoding, `failure.${i}`)),
  };
}

/** etcd mvccpb.KeyValue in JSON. With utf8, a key or value that is not UTF-8 is sent in base64 and its kv says `"encoding": "base64"`. */
export interface KvJson {
  key: string;
  value?: string;
  create_revision: number;
  mod_revision: number;
  version: number;
  encoding?: 'base64';
}

function kvJson(kv: TxnKv, encoding: TxnEncoding, keysOnly: boolean): KvJson {
  const asBase64 = encoding === 'base64' || !isUtf8(kv.key) || (!keysOnly && !isUtf8(kv.value));
  const text = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString(asBase64 ? 'base64' : 'utf8');
  const out: KvJson = { key: text(kv.key), create_revision: kv.createRevision, mod_revision: kv.modRevision, version: kv.version };
  if (!keysOnly) out.value = text(kv.value);
  if (asBase64 && encoding === 'utf8') out.encoding = 'base64';
  return out;
}

/** etcd ResponseOp in JSON (response_put / response_range / response_delete_range). */
export type ResponseOpJson =
  | { response_put: { prev_kv?: KvJson } }
  | { response_range: { kvs: KvJson[]; count: number; more: boolean } }
  | { response_delete_range: { deleted: number; prev_kvs: KvJson[] } };

function responseJson(x: TxnOpResponse, op: TxnOp | undefined, encoding: TxnEncoding): ResponseOpJson {
  const keysOnly = ((op?.flags ?? 0) & TxnOpFlags.KeysOnly) !== 0;
  switch (x.kind) {
    case TxnOpKind.Put:
      return { response_put: x.prev ? { prev_kv: kvJson(x.prev, encoding, false) } : {} };
    case TxnOpKind.Delete:
      return { response_delete_range: { deleted: x.deleted, prev_kvs: x.prev.map((kv) => kvJson(kv, encoding, false)) } };
    case TxnOpKind.Get:
      return { response_range: { kvs: x.kv ? [kvJson(x.kv, encoding, keysOnly)] : [], count: x.kv ? 1 : 0, more: false } };
    case TxnOpKind.Range:
      return { response_range: { kvs: x.kvs.map((kv) => kvJson(kv, encoding, keysOnly)), count: x.count, more: x.more } };
  }
}

/** etcd TxnResponse in JSON: `header.revision` = the txn's revision (its Raft index). */
export interface TxnResponseJson {
  header: { revision: number };
  succeeded: boolean;
  responses: ResponseOpJson[];
}

/** The answer to `request` (the branch that ran gives each response its op, for keys_only). */
export function txnResponseJson(request: TxnRequest, result: TxnResult, revision: number, encoding: TxnEncoding): TxnResponseJson {
  const ops = result.succeeded ? request.success : request.failure;
  return { header: { revision }, succeeded: result.succeeded, responses: result.responses.map((x, i) => responseJson(x, ops[i], encoding)) };
}
