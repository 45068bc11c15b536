import { AUTH_STATE_KEY, Status, applyAuthChange, authChangeOf, emptyAuthState, encodeAuthState, isAuthOp, type AuthState, type Command } from '@cairn/protocol';
import { createLogger } from '@cairn/logging';
import { realClock } from '@cairn/world';
import type { ReadPath, ReadResult } from '../paths/read-path';
import type { WritePath, WriteResult } from '../paths/write-path';
import { memoryKv } from '../paths/testing';
import { AuthAdmin } from './auth-admin';
import { AuthView } from './auth-view';
import type { GatewayAuthStack } from './auth-setup';
import { GatewayAuth } from './gateway-auth';
import { TokenIssuer } from './tokens';

/** The cheapest accepted scrypt cost: tests check behaviour, not hashing cost. */
export const TEST_SCRYPT_COST = 1024;

/**
 * An in-memory cluster for auth tests (no NATS): a log index, the auth state applied as a storage
 * node applies it (ops 9..12 through applyAuthChange, refusals → CONDITION_FAILED), plain keys,
 * and the read/write paths over them. `heartbeat()` tells the view the current auth revision.
 */
export function fakeAuthCluster() {
  let auth: { state: AuthState; revision: number } = { state: emptyAuthState(), revision: 0 };
  const kv = memoryKv();
  const data = kv.data;
  const writes = {
    submit: async (c: Command): Promise<WriteResult> => {
      if (!isAuthOp(c.op)) return kv.submit(c);
      const index = kv.nextIndex();
      const r = applyAuthChange(auth.state, authChangeOf(c));
      if (!r.ok) return { status: Status.ConditionFailed, revision: index, message: 'condition not met' };
      auth = { state: r.state, revision: index };
      return { status: Status.Ok, revision: index, message: '' };
    },
  } satisfies Pick<WritePath, 'submit'>;
  const reads = {
    get: async (key: Uint8Array): Promise<ReadResult> => {
      if (key.length === AUTH_STATE_KEY.length) {
        if (auth.revision === 0) return { status: Status.NotFound, revision: 0, value: new Uint8Array(0), message: '' };
        return { status: Status.Ok, revision: auth.revision, value: encodeAuthState(auth.state), message: '' };
      }
      return kv.get(key);
    },
  } satisfies Pick<ReadPath, 'get'>;
  const log = createLogger('test', 'silent');
  const view = new AuthView({ reads, clock: realClock, log });
  const tokens = new TokenIssuer(Buffer.alloc(32, 7), 60_000);
  const gate = new GatewayAuth(view, tokens, { scryptCost: TEST_SCRYPT_COST, failuresPerAddressMax: 20, failureWindowMs: 60_000, failuresPerConnectionMax: 3, readyTimeoutMs: 2_000, metricsPublic: true }, Date.now, log);
  const admin = new AuthAdmin({ view, writes, limits: { usersMax: 100, rolesMax: 10, permissionsPerRoleMax: 8 }, scryptCost: TEST_SCRYPT_COST, readyTimeoutMs: 2_000, log });
  const stack: GatewayAuthStack = { view, gate, admin };
  return {
    stack,
    reads,
    writes,
    data,
    heartbeat: () => view.heard(auth.revision),
    /** Creates root (role root) with `password` and enables auth. */
    async enableWithRoot(password: string): Promise<void> {
      view.heard(auth.revision);
      const u = await admin.addUser('root', password, ['root']);
      if (u.status !== Status.Ok) throw new Error(`root: ${u.message}`);
      const e = await admin.setEnabled(true);
      if (e.status !== Status.Ok) throw new Error(`enable: ${e.message}`);
    },
  };
}
