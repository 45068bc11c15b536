import type { NextFunction, Request, Response } from 'express';
import type { Socket } from 'node:net';
import { Status, statusName } from '@cairn/protocol';
import { AUTH_REQUIRED, isRefusal, type AuthIdentity, type AuthRefusal, type GatewayAuth } from '../auth/gateway-auth';
import { httpStatusOf, sendError } from './errors';

/** Who made each request (set by httpAuthMiddleware; read by the controllers). */
const IDENTITIES = new WeakMap<Request, AuthIdentity>();
/** Failed authentications per HTTP connection (gateway.auth.failuresPerConnectionMax). */
const CONNECTION_FAILURES = new WeakMap<Socket, number>();

/** The request's identity (user null: anonymous, which only a disabled auth lets through). */
export function identityOf(req: Request): AuthIdentity {
  return IDENTITIES.get(req) ?? { user: null };
}

/** Paths open to everyone, auth enabled or not: the probes. */
const PROBES = new Set(['/healthz', '/readyz']);

/**
 * Whether a request administers the cluster (role root while auth is enabled, docs/security.md):
 * membership changes, snapshots (a backup holds every key), users, roles and auth enable/disable.
 * Reading the membership, the cluster view and `POST /v1/auth/token` need only a user.
 */
export function isAdminRequest(method: string, path: string): boolean {
  if (path.startsWith('/v1/cluster/members')) return method !== 'GET' && method !== 'HEAD';
  if (path === '/v1/snapshot' || path.startsWith('/v1/snapshot/')) return true;
  if (path === '/v1/auth/token') return false;
  return path === '/v1/auth' || path.startsWith('/v1/auth/');
}

/** The user a request's `Authorization` header names (RFC 7617 Basic, RFC 6750 Bearer), or why not. */
async function authenticate(gate: GatewayAuth, req: Request): Promise<{ user: string } | AuthRefusal> {
  const h = req.headers.authorization;
  const address = req.socket.remoteAddress ?? '';
  if (!h) return { status: Status.Unauthenticated, message: AUTH_REQUIRED };
  const m = /^(Basic|Bearer) +([A-Za-z0-9+/=._~-]+) *$/i.exec(h);
  if (!m) return { status: Status.Unauthenticated, message: 'the Authorization header must be Basic or Bearer' };
  if (m[1].toLowerCase() === 'bearer') return gate.checkToken(m[2]);
  const text = Buffer.from(m[2], 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon < 0) return { status: Status.Unauthenticated, message: 'Basic credentials are user:password' };
  return gate.checkPassword(text.slice(0, colon), text.slice(colon + 1), address);
}

function refuse(req: Request, res: Response, r: AuthRefusal, failuresPerConnectionMax: number): void {
  if (r.status === Status.Unauthenticated && req.headers.authorization) {
    const n = (CONNECTION_FAILURES.get(req.socket) ?? 0) + 1;
    CONNECTION_FAILURES.set(req.socket, n);
    // The connection's last allowed failure: answered, then closed.
    if (n >= failuresPerConnectionMax) res.setHeader('Connection', 'close');
  }
  sendError(res, httpStatusOf(r.status), { error: statusName(r.status), message: r.message });
}

/**
 * The HTTP door's authentication and administration check (docs/security.md): while auth is
 * enabled every request but the probes (and `/metrics` when gateway.auth.metricsPublic) needs
 * valid `Authorization: Basic` or `Bearer` credentials (else 401 UNAUTHENTICATED with a
 * WWW-Authenticate challenge) and an administrator for isAdminRequest routes (else 403
 * PERMISSION_DENIED); key permissions are checked per key by the KvSession guard. While auth is
 * disabled, credentials are not checked and everything is allowed. Until the auth state is known:
 * 503 UNAVAILABLE (never served as if auth were off).
 */
export function httpAuthMiddleware(gate: GatewayAuth) {
  return (req: Request, res: Response, next: NextFunction): void => {
    if (PROBES.has(req.path) || (req.path === '/metrics' && gate.settings.metricsPublic)) return next();
    void (async () => {
      const on = await gate.enabled();
      if (isRefusal(on)) return refuse(req, res, on, gate.settings.failuresPerConnectionMax);
      if (!on && req.path !== '/v1/auth/token') return next();
      const who = await authenticate(gate, req);
      if (isRefusal(who)) return refuse(req, res, who, gate.settings.failuresPerConnectionMax);
      IDENTITIES.set(req, who);
      if (on && isAdminRequest(req.method, req.path)) {
        const denied = await gate.authorizeAdmin(who);
        if (denied) return refuse(req, res, denied, gate.settings.failuresPerConnectionMax);
      }
      next();
    })().catch(next);
  };
}
