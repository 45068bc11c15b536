import { CommandCondition, CommandOp, CounterRefusal, Status, decodeExpire, decodeIncrDelta, expireHolds, type Command, type CommandMeta, type RangeReply, type RangeRequest } from '@cairn/protocol';
import type { KvPaths } from '../paths/kv-session';
import type { ReadResult } from '../paths/read-path';
import { COUNTER_REFUSAL_MESSAGES, type WriteResult } from '../paths/write-path';
import { txnInMap } from './txn-testing';

/**
 * Test double of the gateway's read and write paths (no NATS): a map with Raft-like revisions.
 * `hold` makes every request wait until the test releases it (to reorder completions);
 * `fail` answers every request with that status instead. Conditional SETs are evaluated on the map.
 */
export function fakeStore(opts: { hold?: boolean; fail?: { status: Status; message: string } } = {}) {
  const data = new Map<string, { value: Buffer; revision: number; meta?: CommandMeta }>();
  let index = 0;
  const held: { kind: 'read' | 'write'; key: string; minIndex: number; release: () => void }[] = [];
  const later = <T>(kind: 'read' | 'write', key: string, minIndex: number, answer: () => T): Promise<T> =>
    new Promise((resolve) => {
      const release = () => resolve(answer());
      if (opts.hold) held.push({ kind, key, minIndex, release });
      else release();
    });
  const writes: KvPaths['writes'] = {
    submit: (c: Command) =>
      later<WriteResult>('write', Buffer.from(c.key).toString(), 0, () => {
        if (opts.fail) return { status: opts.fail.status, revision: 0, message: opts.fail.message };
        const revision = ++index;
        const current = data.get(Buffer.from(c.key).toString('latin1'));
        if (c.op === CommandOp.Incr) return incrInMap(data, c, current, revision);
        if (c.op === CommandOp.Txn) return txnInMap(data, c, revision);
        if (c.op === CommandOp.Expire) return expireInMap(current, c, revision);
        const holds = c.condition === CommandCondition.IfRevision ? (current?.revision ?? 0) === c.revision : !c.condition || (current !== undefined) === (c.condition === CommandCondition.IfPresent);
        if (!holds) return { status: Status.ConditionFailed, revision, message: 'condition not met' };
        if (c.op === CommandOp.Set) data.set(Buffer.from(c.key).toString('latin1'), { value: Buffer.from(c.value), revision, ...(c.meta ? { meta: c.meta } : {}) });
        else data.delete(Buffer.from(c.key).toString('latin1'));
        return { status: Status.Ok, revision, message: '' };
      }),
  };
  const reads: KvPaths['reads'] = {
    get: (key: Uint8Array, minIndex: number) =>
      later<ReadResult>('read', Buffer.from(key).toString(), minIndex, () => {
        if (opts.fail) return { status: opts.fail.status, revision: 0, value: new Uint8Array(0), message: opts.fail.message };
        const e = data.get(Buffer.from(key).toString('latin1'));
        return e ? { status: Status.Ok, revision: e.revision, value: e.value, message: '', expiresAtMs: e.meta?.expiresAtMs ?? 0 } : { status: Status.NotFound, revision: 0, value: new Uint8Array(0), message: '' };
      }),
    /** A storage node's range page over the map: key order, [start, end), limit, reverse (bytes unbounded). */
    range: (q: RangeRequest) =>
      later<RangeReply>('read', Buffer.from(q.start).toString(), q.minIndex, () => {
        if (opts.fail) return { status: opts.fail.status, revision: 0, count: 0, more: false, message: opts.fail.message, items: [] };
        const end = q.end;
        const keys = [...data.keys()].map((k) => Buffer.from(k, 'latin1')).filter((k) => Buffer.compare(k, q.start) >= 0 && (end === null || Buffer.compare(k, end) < 0));
        keys.sort(Buffer.compare);
        if (q.reverse) keys.reverse();
        const page = q.countOnly ? [] : keys.slice(0, q.limit);
        const items = page.map((k) => ({ key: k, value: q.keysOnly ? Buffer.alloc(0) : data.get(k.toString('latin1'))!.value, revision: data.get(k.toString('latin1'))!.revision, createRevision: 1, version: 1 }));
        return { status: Status.Ok, revision: index, count: keys.length, more: !q.countOnly && keys.length > page.length, message: '', items };
      }),
  };
  const paths: KvPaths = { reads, writes, limits: { keyBytesMax: 16, valueBytesMax: 64 } };
  return { data, held, paths };
}

/** The applier's Expire in miniature (apps/storage-node lease-apply.ts): a live key, its NX/XX/GT/LT against its expiry. */
function expireInMap(current: { meta?: CommandMeta } | undefined, c: Command, revision: number): WriteResult {
  const e = decodeExpire(c.value);
  if (!current || !expireHolds(e, current.meta?.expiresAtMs ?? 0)) return { status: Status.ConditionFailed, revision, message: 'condition not met' };
  if (e.expiresAtMs === 0) delete current.meta;
  else current.meta = { leaseId: 0, expiresAtMs: e.expiresAtMs, keepTtl: false };
  return { status: Status.Ok, revision, message: '' };
}

/** The applier's INCR in miniature (apps/storage-node command-applier.ts is the real one). */
function incrInMap(data: Map<string, { value: Buffer; revision: number }>, c: Command, current: { value: Buffer } | undefined, revision: number): WriteResult {
  const text = current ? current.value.toString('latin1') : '0';
  const ok = /^(0|-?[1-9][0-9]{0,18})$/.test(text) && BigInt(text) >= -(1n << 63n) && BigInt(text) < 1n << 63n;
  if (!ok) return { status: Status.ConditionFailed, revision, message: COUNTER_REFUSAL_MESSAGES[CounterRefusal.NotInteger], refusal: CounterRefusal.NotInteger };
  const sum = BigInt(text) + decodeIncrDelta(c.value);
  if (sum < -(1n << 63n) || sum >= 1n << 63n) return { status: Status.ConditionFailed, revision, message: COUNTER_REFUSAL_MESSAGES[CounterRefusal.Overflow], refusal: CounterRefusal.Overflow };
  data.set(Buffer.from(c.key).toString('latin1'), { value: Buffer.from(String(sum)), revision });
  return { status: Status.Ok, revision, message: '', counter: sum };
}
