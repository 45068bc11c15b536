import { Command, Option } from 'commander';
import type { ClientWatchOptions, WatchItem } from '@cairn/client';
import { UsageError } from './exit-codes';
import { valueJson } from './format';

/** What `cairn watch` needs of a connection (CairnPool `watch`). */
export interface WatchClient {
  watch(opts: ClientWatchOptions): AsyncIterable<WatchItem>;
}

export interface WatchCommandDeps {
  /** Runs `fn` on a fresh connection of the command's endpoints and closes it. */
  withClient(cmd: Command, fn: (c: WatchClient) => Promise<void>): Promise<void>;
  out(s: string): void;
  json(cmd: Command): boolean;
  /** Aborted on Ctrl-C / SIGTERM (main.ts installs the handlers only for this command); absent: never. */
  interrupted?: () => AbortSignal;
}

/**
 * One event as etcdctl watch prints it (simple format): the type (`PUT` / `DELETE`), with
 * `--prev-kv` the previous key and value, then the key and the value, one per line. `--json`: one
 * object per line, `{"type","key","value"|"valueBase64","modRevision","createRevision","version"[,"prevValue"|"prevValueBase64"]}`
 * (keys not UTF-8: `keyBase64`).
 */
export function formatWatchEvent(ev: WatchItem, o: { prevKv: boolean; json: boolean }): string | null {
  if (ev.type === 'progress') return null;
  const type = ev.type === 'put' ? 'PUT' : 'DELETE';
  const text = (b: Buffer) => b.toString('utf8');
  if (o.json) {
    const key = valueJson(ev.key);
    const prev = ev.prevValue ? valueJson(ev.prevValue) : null;
    return JSON.stringify({
      type,
      ...('value' in key ? { key: key.value } : { keyBase64: key.valueBase64 }),
      ...valueJson(ev.value),
      modRevision: ev.modRevision,
      createRevision: ev.createRevision,
      version: ev.version,
      ...(prev ? ('value' in prev ? { prevValue: prev.value } : { prevValueBase64: prev.valueBase64 }) : {}),
    });
  }
  const lines = [type];
  if (o.prevKv && ev.prevValue) lines.push(text(ev.key), text(ev.prevValue));
  lines.push(text(ev.key), text(ev.value));
  return lines.join('\n');
}

function revisionArg(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`--rev must be a revision ≥ 1, got "${v}"`);
  return n;
}

/**
 * `cairn watch KEY | --prefix P [--rev N] [--prev-kv] [--json]` (etcdctl watch): prints every
 * change until Ctrl-C / SIGTERM (exit 0), resuming across a gateway failover without gap or
 * duplicate (CairnPool `watch`). COMPACTED (--rev older than the cluster keeps) exits 5 with the
 * oldest revision available; no gateway for the resume timeout exits 3.
 */
export function watchCommand(d: WatchCommandDeps): Command {
  return new Command('watch')
    .description('print every change of KEY (or of every key under --prefix) as etcdctl watch does, until Ctrl-C; --rev N: from revision N')
    .argument('[key]')
    .addOption(new Option('--prefix <prefix>', 'watch every key starting with PREFIX ("" = every key)'))
    .option('--rev <n>', 'start at revision N (every change with a revision ≥ N); default: from now', revisionArg)
    .option('--prev-kv', "also print each change's previous key and value")
    .action(async (key: string | undefined, o: { prefix?: string; rev?: number; prevKv?: boolean }, cmd: Command) => {
      if ((key === undefined) === (o.prefix === undefined)) throw new UsageError('watch takes KEY or --prefix PREFIX (one of them)');
      const signal = d.interrupted?.();
      await d.withClient(cmd, async (c) => {
        const json = d.json(cmd);
        try {
          for await (const ev of c.watch({ ...(key !== undefined ? { key } : { prefix: o.prefix }), startRevision: o.rev, prevValue: o.prevKv === true, signal })) {
            const line = formatWatchEvent(ev, { prevKv: o.prevKv === true, json });
            if (line !== null) d.out(`${line}\n`); // a delete's empty value is an empty line, as etcdctl prints it
          }
        } catch (e) {
          if (signal?.aborted) return; // Ctrl-C / SIGTERM: a clean exit
          throw e;
        }
      });
    });
}
