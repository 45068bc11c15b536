import { Permission, ROOT_ROLE, prefixEnd, type AuthState } from '@cairn/protocol';

/** `[start, end)` in key order; `end` null = no upper bound. */
interface Interval {
  start: Buffer;
  end: Buffer | null;
}

/** Sorted, non-overlapping, non-adjacent intervals covering the union of `xs`. */
function merge(xs: Interval[]): Interval[] {
  const sorted = [...xs].sort((a, b) => Buffer.compare(a.start, b.start));
  const out: Interval[] = [];
  for (const x of sorted) {
    const last = out[out.length - 1];
    if (last && (last.end === null || Buffer.compare(x.start, last.end) <= 0)) {
      if (last.end !== null && (x.end === null || Buffer.compare(x.end, last.end) > 0)) last.end = x.end;
    } else out.push({ start: x.start, end: x.end });
  }
  return out;
}

/** The merged interval holding `key`, or null (intervals sorted: binary search). */
function find(xs: Interval[], key: Uint8Array): Interval | null {
  let lo = 0;
  let hi = xs.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const x = xs[mid];
    if (Buffer.compare(key, x.start) < 0) hi = mid - 1;
    else if (x.end !== null && Buffer.compare(key, x.end) >= 0) lo = mid + 1;
    else return x;
  }
  return null;
}

/**
 * What one user may do with keys, from its roles' key-prefix permissions (etcd's RBAC with its
 * range permission cache, Redis ACL `~prefix*`): each permission covers `[prefix, prefixEnd(prefix))`;
 * read and write intervals are merged separately, so a key or a range is checked with one binary
 * search. A range read `[start, end)` is allowed when it lies inside one merged read interval
 * (prefixes `a/` and `a0` together cover `a/x`..`a0z`, as etcd merges them). Role `root`: everything,
 * and administration.
 */
export class KeyAccess {
  private constructor(
    readonly admin: boolean,
    private readonly reads: Interval[],
    private readonly writes: Interval[],
  ) {}

  /** Everything, administration included (auth disabled, or role root). */
  static readonly ALL = new KeyAccess(true, [{ start: Buffer.alloc(0), end: null }], [{ start: Buffer.alloc(0), end: null }]);

  /** The access of `user` in `state`, or null when no such user exists. */
  static of(state: AuthState, user: string): KeyAccess | null {
    const u = state.users.get(user);
    if (!u) return null;
    if (u.roles.includes(ROOT_ROLE)) return KeyAccess.ALL;
    const reads: Interval[] = [];
    const writes: Interval[] = [];
    for (const name of u.roles) {
      for (const p of state.roles.get(name)?.permissions ?? []) {
        const x = { start: Buffer.from(p.prefix), end: prefixEnd(p.prefix) };
        if (p.permission & Permission.Read) reads.push(x);
        if (p.permission & Permission.Write) writes.push({ ...x });
      }
    }
    return new KeyAccess(false, merge(reads), merge(writes));
  }

  canRead(key: Uint8Array): boolean {
    return find(this.reads, key) !== null;
  }

  canWrite(key: Uint8Array): boolean {
    return find(this.writes, key) !== null;
  }

  /** Whether every key of `[start, end)` (`end` null = no upper bound) may be written (a txn's range delete; etcd checks a range delete the same way). */
  canWriteRange(start: Uint8Array, end: Uint8Array | null): boolean {
    return within(this.writes, start, end);
  }

  /** Whether every key of `[start, end)` (`end` null = no upper bound) may be read. */
  canReadRange(start: Uint8Array, end: Uint8Array | null): boolean {
    return within(this.reads, start, end);
  }
}

/** Whether `[start, end)` lies inside one of the merged `intervals`. */
function within(intervals: Interval[], start: Uint8Array, end: Uint8Array | null): boolean {
  const x = find(intervals, start);
  if (!x) return false;
  if (x.end === null) return true;
  return end !== null && Buffer.compare(end, x.end) <= 0;
}
