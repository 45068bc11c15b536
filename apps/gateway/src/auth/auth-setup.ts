import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { AuthConfig } from '@cairn/config';
import { CodedError, ROOT_USER, Status } from '@cairn/protocol';
import type { Logger } from '@cairn/logging';
import type { ClusterView } from '../cluster/cluster-view';
import type { ReadPath } from '../paths/read-path';
import type { WritePath } from '../paths/write-path';
import { realClock, type Clock } from '@cairn/world';
import { AuthAdmin } from './auth-admin';
import { AuthView } from './auth-view';
import { GatewayAuth } from './gateway-auth';
import { TOKEN_SECRET_BYTES_MIN, TokenIssuer } from './tokens';

/** Auth at one gateway: the state view, the checks every door asks, and administration. */
export interface GatewayAuthStack {
  view: AuthView;
  gate: GatewayAuth;
  admin: AuthAdmin;
}

/** Raised when a configured secret file cannot be used (startup fails: a misconfiguration, not a runtime limit). */
export class AuthConfigError extends CodedError {
  readonly code = 'AUTH_CONFIG';
}

/** Trailing newlines are not part of a secret (files written by `echo`, Kubernetes Secrets from literals). */
function readSecretFile(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8').replace(/[\r\n]+$/, '');
  } catch (e) {
    throw new AuthConfigError(`cannot read ${what} file ${path}: ${(e as Error).message}`);
  }
}

/**
 * The token signing secret: env CAIRN_TOKEN_SECRET, else `auth.tokenSecretFile`, else 32 random
 * bytes (tokens then work only at this gateway, and not across its restarts; logged once).
 * @throws AuthConfigError when the secret is shorter than TOKEN_SECRET_BYTES_MIN bytes.
 */
export function tokenSecretOf(a: AuthConfig, env: NodeJS.ProcessEnv, log?: Logger): Buffer {
  const text = env.CAIRN_TOKEN_SECRET || (a.tokenSecretFile ? readSecretFile(a.tokenSecretFile, 'gateway.auth.tokenSecretFile') : undefined);
  if (text === undefined) {
    log?.info('no token secret configured (CAIRN_TOKEN_SECRET, gateway.auth.tokenSecretFile): tokens are signed with a random key of this gateway only');
    return randomBytes(TOKEN_SECRET_BYTES_MIN);
  }
  const secret = Buffer.from(text, 'utf8');
  if (secret.length < TOKEN_SECRET_BYTES_MIN) throw new AuthConfigError(`the token secret must be at least ${TOKEN_SECRET_BYTES_MIN} bytes, got ${secret.length}`);
  return secret;
}

/** The first root password: env CAIRN_ROOT_PASSWORD, else `auth.rootPasswordFile`, else none. */
export function rootPasswordOf(a: AuthConfig, env: NodeJS.ProcessEnv): string | undefined {
  return env.CAIRN_ROOT_PASSWORD || (a.rootPasswordFile ? readSecretFile(a.rootPasswordFile, 'gateway.auth.rootPasswordFile') : undefined);
}

/**
 * Builds a gateway's auth: an AuthView fed by the storage heartbeats' auth revision, the
 * GatewayAuth checks, and AuthAdmin (changes through `writes`). When a first root password is
 * configured, user `root` (role root) is created once the state is known and no root exists.
 * `clock` (default `realClock`; gateway.ts passes its world's): the view's waits, token times and
 * the failure windows.
 */
export function createGatewayAuth(deps: { auth: AuthConfig; view: ClusterView; reads: Pick<ReadPath, 'get'>; writes: Pick<WritePath, 'submit'>; readyTimeoutMs: number; log: Logger; env?: NodeJS.ProcessEnv; clock?: Clock }): GatewayAuthStack {
  const { auth: a, log } = deps;
  const env = deps.env ?? process.env;
  const clock = deps.clock ?? realClock;
  const nowMs = (): number => clock.nowMs();
  const authView = new AuthView({ reads: deps.reads, clock, log });
  deps.view.onStorageHeartbeat((s) => authView.heard(s.authRevision ?? 0));
  const tokens = new TokenIssuer(tokenSecretOf(a, env, log), a.tokenTtlMs, nowMs);
  const settings = { scryptCost: a.scryptCost, failuresPerAddressMax: a.failuresPerAddressMax, failureWindowMs: a.failureWindowMs, failuresPerConnectionMax: a.failuresPerConnectionMax, readyTimeoutMs: deps.readyTimeoutMs, metricsPublic: a.metricsPublic };
  const gate = new GatewayAuth(authView, tokens, settings, nowMs, log);
  const admin = new AuthAdmin({ view: authView, writes: deps.writes, limits: { usersMax: a.usersMax, rolesMax: a.rolesMax, permissionsPerRoleMax: a.permissionsPerRoleMax }, scryptCost: a.scryptCost, readyTimeoutMs: deps.readyTimeoutMs, log });
  const rootPassword = rootPasswordOf(a, env);
  if (rootPassword !== undefined) {
    // Once the state is known; a root that exists already is left as it is.
    let tried = false;
    authView.onChange((snap) => {
      if (tried || snap.state.users.has(ROOT_USER)) return;
      tried = true;
      void admin.bootstrapRoot(rootPassword).then((r) => {
        if (r && r.status !== Status.Ok) {
          tried = false;
          log.warn({ status: r.status, message: r.message }, 'creating the first root user failed; will retry on the next auth state');
        } else if (r) log.info('created user root from the configured first root password');
      });
    });
  }
  return { view: authView, gate, admin };
}
