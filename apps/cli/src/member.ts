import { loadConfigFile } from './config-file';
import { Command, Option } from 'commander';
import { NotAppliedError, UsageError } from './exit-codes';
import { parseHostPort, type GatewayAddress } from './gateway';
import { authHeader, authRefusal, credentialsOf } from './credentials';
import { CodedError } from '@cairn/protocol';

export const DEFAULT_HTTP = '127.0.0.1:8380';

/** What `cairn member` needs: an HTTP client (global fetch by default; tests inject one). */
export interface MemberDeps {
  fetch?: typeof fetch;
  env?: NodeJS.ProcessEnv;
  out(s: string): void;
}

/** The gateway HTTP API did not answer, or answered 503: retryable (exit 3). */
export class MemberUnavailableError extends CodedError {
  readonly retryable = true;
  constructor(
    message: string,
    readonly code = 'UNAVAILABLE',
  ) {
    super(message);
  }
}

/**
 * The gateway HTTP address for membership: `--http`, else the first gateway of `--config` with
 * an httpPort, else $CAIRN_HTTP, else 127.0.0.1:8380. @throws UsageError
 */
export async function resolveHttp(opts: { http?: string; config?: string }, env: NodeJS.ProcessEnv = process.env): Promise<GatewayAddress> {
  if (opts.http) return parseHostPort(opts.http);
  if (opts.config) {
    const g = (await loadConfigFile(opts.config)).gateway.gateways.find((x) => x.httpPort !== undefined);
    if (!g) throw new UsageError(`no gateway in ${opts.config} has an httpPort: pass --http host:port`);
    return { host: g.host, port: g.httpPort! };
  }
  return parseHostPort(env.CAIRN_HTTP || DEFAULT_HTTP);
}

interface Conf {
  voters: string[];
  learners: string[];
  storage: string[];
  confIndex: number;
  committed?: boolean;
}

export function formatMembers(c: Conf): string {
  const list = (xs: string[]) => (xs.length ? xs.join(', ') : '-');
  return [
    `voters:   ${list(c.voters)}`,
    `learners: ${list(c.learners)}`,
    `storage:  ${list(c.storage)}`,
    `config index: ${c.confIndex}${c.committed === false ? ' (not committed yet)' : ''}`,
  ].join('\n');
}

/**
 * `cairn member list | add <id> | remove <id>` over the gateway HTTP API (docs/cli.md,
 * docs/http.md "Membership"; Raft thesis §4). Adding a replica waits until it has caught up and is
 * a voter; start it first with `--join`. Every command is idempotent.
 */
export function memberCommand(deps: MemberDeps): Command {
  const doFetch = deps.fetch ?? fetch;
  const call = async (cmd: Command, method: string, path: string, body?: unknown): Promise<Conf & { message?: string }> => {
    const o = cmd.optsWithGlobals<{ http?: string; config?: string; waitMs: number; user?: string; password?: string; token?: string }>();
    const { host, port } = await resolveHttp(o, deps.env);
    const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}${path}`;
    let res: Response;
    try {
      res = await doFetch(url, {
        method,
        headers: { ...authHeader(credentialsOf(o, deps.env)), ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
        signal: AbortSignal.timeout(o.waitMs + 5_000),
      });
    } catch (e) {
      const cause = (e as { cause?: { code?: string } }).cause;
      throw new MemberUnavailableError(
        `cannot reach the gateway HTTP API at ${host}:${port}: ${cause?.code ?? (e as Error).message} — is the cluster running, with an httpPort on its gateway? \`npm start\` starts one (else check --http / $CAIRN_HTTP)`,
        cause?.code ?? 'TIMEOUT',
      );
    }
    const json = (await res.json().catch(() => ({}))) as { message?: string; conf?: Conf; confIndex?: number } & Partial<Conf>;
    const refused = authRefusal(res.status, json.message ?? res.statusText);
    if (refused) throw refused;
    if (res.status === 412) throw new NotAppliedError(`not applied: ${json.message ?? 'the change does not apply'}`);
    if (res.status === 400) throw new UsageError(json.message ?? 'bad request');
    if (!res.ok) throw new MemberUnavailableError(`${res.status}: ${json.message ?? res.statusText}`);
    return json.conf ? { ...json.conf, confIndex: json.confIndex ?? 0, message: json.message } : (json as Conf);
  };
  const waitOpt = () => new Option('--wait-ms <ms>', 'how long the change may take (adding a replica waits for it to catch up)').default(90_000).argParser(Number);
  const httpOpt = () => new Option('--http <host:port>', 'gateway HTTP API (default: first gateway of --config with an httpPort, else $CAIRN_HTTP, else 127.0.0.1:8380)');
  const json = (cmd: Command) => cmd.optsWithGlobals<{ json?: boolean }>().json === true;
  const kindOpt = () => new Option('--storage', 'the member is a storage node (default: a consensus replica)');

  const member = new Command('member').description('list, add and remove consensus replicas and storage nodes (Raft single-server changes)');
  member
    .command('list')
    .description('the configuration in effect: voters, learners, storage nodes')
    .addOption(httpOpt())
    .addOption(waitOpt())
    .action(async (_o, cmd: Command) => {
      const c = await call(cmd, 'GET', '/v1/cluster/members');
      deps.out(json(cmd) ? JSON.stringify(c) : formatMembers(c));
    });
  member
    .command('add')
    .description('add a replica (start it first with --join; it becomes a learner, catches up, then a voter) or, with --storage, a storage node')
    .argument('<id>')
    .addOption(kindOpt())
    .addOption(httpOpt())
    .addOption(waitOpt())
    .action(async (id: string, o: { storage?: boolean; waitMs: number }, cmd: Command) => {
      const r = await call(cmd, 'POST', `/v1/cluster/members?timeoutMs=${o.waitMs}`, { id, kind: o.storage ? 'storage' : 'replica' });
      deps.out(json(cmd) ? JSON.stringify(r) : `${r.message ?? 'ok'}\n${formatMembers(r)}`);
    });
  member
    .command('remove')
    .description('remove a replica (the leader too: it hands over first) or, with --storage, a storage node')
    .argument('<id>')
    .addOption(kindOpt())
    .addOption(httpOpt())
    .addOption(waitOpt())
    .action(async (id: string, o: { storage?: boolean; waitMs: number }, cmd: Command) => {
      const r = await call(cmd, 'DELETE', `/v1/cluster/members/${encodeURIComponent(id)}?timeoutMs=${o.waitMs}${o.storage ? '&kind=storage' : ''}`);
      deps.out(json(cmd) ? JSON.stringify(r) : `${r.message ?? 'ok'}\n${formatMembers(r)}`);
    });
  return member;
}
