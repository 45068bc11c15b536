import { Command, Option } from 'commander';
import { UsageError } from './exit-codes';
import { CodedError } from '@cairn/protocol';

/** What the lease commands need of a connection (`CairnPool` satisfies it; @cairn/client "Leases"). */
export interface LeaseClient {
  leaseGrant(ttlMs: number, opts?: { id?: number }): Promise<{ leaseId: number; ttlMs: number; revision: number }>;
  leaseRevoke(leaseId: number): Promise<{ revision: number }>;
  leaseKeepAliveOnce(leaseId: number): Promise<number>;
  leaseTimeToLive(leaseId: number, opts?: { keys?: boolean }): Promise<{ ttlMs: number; remainingMs: number; keys: Uint8Array[]; more: boolean } | null>;
  leases(): Promise<number[]>;
  keepAlive(leaseId: number, opts?: { signal?: AbortSignal; onRenewed?: (ttlMs: number) => void }): { closed: Promise<void> };
}

/** A lease that is not live (exit 1, as a missing key). */
export class LeaseNotLiveError extends CodedError {
  readonly code = 'LEASE_NOT_FOUND';
  constructor(leaseId: number) {
    super(`lease ${leaseId} not found (expired or revoked)`);
  }
}

const DURATION = /^([1-9]\d{0,11})(ms|s|m|h)?$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A TTL argument: a positive integer with an optional unit `ms`, `s` (default, as etcdctl's seconds), `m`, `h`. @throws UsageError. */
export function durationMsArg(name: string) {
  return (v: string): number => {
    const m = DURATION.exec(v);
    if (!m) throw new UsageError(`${name} must be a positive integer with an optional unit ms, s, m or h (e.g. 30s), got "${v}"`);
    return Number(m[1]) * UNIT_MS[m[2] ?? 's'];
  };
}

/** A lease id argument: an integer in 1..2^53-1. @throws UsageError. */
export function leaseIdArg(name: string) {
  return (v: string): number => {
    if (!/^[1-9]\d{0,15}$/.test(v) || !Number.isSafeInteger(Number(v))) throw new UsageError(`${name} must be a lease id, an integer in 1..2^53-1, got "${v}"`);
    return Number(v);
  };
}

const secs = (ms: number): string => (ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`);

export interface LeaseCommandDeps {
  withClient(cmd: Command, fn: (c: LeaseClient) => Promise<void>): Promise<void>;
  out(s: string): void;
  json(cmd: Command): boolean;
  /** Called when `lease keepalive` starts: the signal that ends it (main.ts: SIGINT / SIGTERM); absent: it runs until the lease is lost. */
  interrupted?: () => AbortSignal;
}

/**
 * `cairn lease grant|keepalive|revoke|ttl|list` (etcdctl's lease commands; docs/cli.md "Leases").
 * A lease that is not live exits 1.
 */
export function leaseCommand(d: LeaseCommandDeps): Command {
  const lease = new Command('lease').description('leases (etcd style): keys attached with put --lease go when the lease is revoked or expires');
  lease
    .command('grant')
    .description('grant a lease with TTL (e.g. 10s, 500ms; a bare number is seconds); prints its id')
    .argument('<ttl>', 'the lease TTL', durationMsArg('TTL'))
    .addOption(new Option('--id <id>', 'the id to grant (default: the gateway picks one)').argParser(leaseIdArg('--id')))
    .action(async (ttlMs: number, o: { id?: number }, cmd: Command) =>
      d.withClient(cmd, async (c) => {
        const g = await c.leaseGrant(ttlMs, o.id === undefined ? {} : { id: o.id });
        d.out(d.json(cmd) ? JSON.stringify({ id: g.leaseId, ttlMs: g.ttlMs, revision: g.revision }) : String(g.leaseId));
      }),
    );
  lease
    .command('keepalive')
    .description('keep the lease alive (renewed every TTL/3 at the leader) until interrupted; --once renews it once. Exit 1 when the lease is lost')
    .argument('<id>', 'the lease id', leaseIdArg('ID'))
    .option('--once', 'renew once and exit')
    .action(async (id: number, o: { once?: boolean }, cmd: Command) =>
      d.withClient(cmd, async (c) => {
        const print = (ttlMs: number) => d.out(d.json(cmd) ? JSON.stringify({ id, ttlMs }) : `lease ${id} keepalived with TTL(${secs(ttlMs)})`);
        if (o.once) return print(await notLive(id, c.leaseKeepAliveOnce(id)));
        await notLive(id, c.keepAlive(id, { signal: d.interrupted?.(), onRenewed: print }).closed);
      }),
    );
  lease
    .command('revoke')
    .description('revoke the lease: it and every key attached are deleted at one revision, which is printed')
    .argument('<id>', 'the lease id', leaseIdArg('ID'))
    .action(async (id: number, _o, cmd: Command) =>
      d.withClient(cmd, async (c) => {
        const r = await notLive(id, c.leaseRevoke(id));
        d.out(d.json(cmd) ? JSON.stringify({ id, revision: r.revision }) : String(r.revision));
      }),
    );
  lease
    .command('ttl')
    .alias('timetolive')
    .description('the lease TTL and time remaining; --keys also the keys attached. Exit 1 when not live')
    .argument('<id>', 'the lease id', leaseIdArg('ID'))
    .option('--keys', 'list the keys attached')
    .action(async (id: number, o: { keys?: boolean }, cmd: Command) =>
      d.withClient(cmd, async (c) => {
        const t = await c.leaseTimeToLive(id, { keys: o.keys === true });
        if (!t) throw new LeaseNotLiveError(id);
        const keys = t.keys.map((k) => Buffer.from(k).toString('utf8'));
        if (d.json(cmd)) d.out(JSON.stringify({ id, ttlMs: t.ttlMs, remainingMs: t.remainingMs, ...(o.keys ? { keys, more: t.more } : {}) }));
        else d.out(`lease ${id} granted with TTL(${secs(t.ttlMs)}), remaining(${secs(Math.ceil(t.remainingMs / 1000) * 1000)})${o.keys ? `, attached keys([${keys.join(' ')}]${t.more ? ' …' : ''})` : ''}`);
      }),
    );
  lease
    .command('list')
    .description('the ids of every live lease, one per line')
    .action(async (_o, cmd: Command) =>
      d.withClient(cmd, async (c) => {
        const ids = await c.leases();
        d.out(d.json(cmd) ? JSON.stringify({ leases: ids }) : ids.length ? ids.join('\n') : '');
      }),
    );
  return lease;
}

/** The client's LEASE_NOT_FOUND / LEASE_LOST as the CLI's LeaseNotLiveError (exit 1). */
async function notLive<T>(id: number, p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (code === 'LEASE_NOT_FOUND' || code === 'LEASE_LOST') throw new LeaseNotLiveError(id);
    throw e;
  }
}
