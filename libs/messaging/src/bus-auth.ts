import { nkeys } from 'nats';
import { readFileSync } from 'node:fs';
import type { NatsOptions } from './connection';
import type { Subjects } from './subjects';
import { CodedError } from '@cairn/protocol';

/**
 * A bus identity (docs/security.md "The internal bus"): each Cairn process connects as its role;
 * `admin` is the gateway's second connection for membership changes and snapshot pulls, and the
 * local launcher's and operators' observer (status heartbeats).
 */
export type BusRole = 'consensus' | 'storage' | 'gateway' | 'admin';
export const BUS_ROLES: readonly BusRole[] = ['consensus', 'storage', 'gateway', 'admin'];

/** What one role may do on the bus: nats-server `permissions { publish, subscribe, allow_responses }`. */
export interface BusPermissions {
  /** Subjects (NATS wildcards) the role may publish to. */
  publish: string[];
  /** Subjects the role may subscribe to (its own reply inbox included when it sends requests). */
  subscribe: string[];
  /** It answers requests: may publish once to the reply subject of each request it received (nats-server `allow_responses`). */
  allowResponses: boolean;
}

/**
 * Least-privilege subject permissions of every role of one cluster (prefix `cairn.<cluster>`);
 * the table in docs/security.md is this function. Source of the subjects: libs/messaging
 * subjects.ts (docs/protocol.md). Per role, not per process: a consensus replica may subscribe to
 * any `raft.*`, not only its own (per-process identities are future work, docs/security.md).
 */
export function busPermissions(s: Subjects): Record<BusRole, BusPermissions> {
  const statusBoth = [s.consensusStatus(), s.storageStatus()];
  return {
    consensus: {
      // lease.*: a replica that installed a leader's snapshot fetches a peer's lease-state file (docs/leases.md "Snapshot install").
      publish: [s.raft('*'), s.ship(), s.consensusStatus(), s.lease('*')],
      subscribe: [s.raft('*'), s.propose('*'), s.readIndex('*'), s.lease('*'), s.member('*'), s.fetch('*'), s.storageStatus(), `${s.inboxPrefix('consensus')}.>`],
      allowResponses: true,
    },
    storage: {
      publish: [s.storageStatus(), s.fetch('*'), s.snapshot('*'), s.watch('*')],
      subscribe: [s.ship(), s.read('*'), s.snapshot('*'), s.storageStatus(), `${s.inboxPrefix('storage')}.>`],
      allowResponses: true,
    },
    gateway: {
      publish: [s.propose('*'), s.readIndex('*'), s.lease('*'), s.read('*')],
      subscribe: [...statusBoth, s.watch('*'), `${s.inboxPrefix('gateway')}.>`],
      allowResponses: false,
    },
    admin: {
      publish: [s.member('*'), s.snapshot('*')],
      subscribe: [...statusBoth, `${s.inboxPrefix('admin')}.>`],
      allowResponses: false,
    },
  };
}

const list = (xs: string[]): string => `[${xs.map((x) => JSON.stringify(x)).join(', ')}]`;

/**
 * nats-server `authorization` block: one NKey user per role given in `publicKeys` (`U…`), with
 * `busPermissions`. deploy/base/nats.conf holds its output for cluster `cairn` with `$CAIRN_NKEY_<ROLE>`
 * keys (the manifest test checks it: regenerate it when the permissions change). Roles absent from `publicKeys` get no user. Every user is denied what its
 * allow lists do not name (nats-server: an allow list denies everything else).
 */
export function natsServerAuthorization(s: Subjects, publicKeys: Partial<Record<BusRole, string>>): string {
  const perms = busPermissions(s);
  const users = BUS_ROLES.filter((r) => publicKeys[r]).map((r) => {
    const p = perms[r];
    const responses = p.allowResponses ? ', allow_responses: true' : '';
    return `    # ${r}\n    { nkey: ${publicKeys[r]}, permissions: { publish: { allow: ${list(p.publish)} }, subscribe: { allow: ${list(p.subscribe)} }${responses} } }`;
  });
  return `authorization {\n  users = [\n${users.join(',\n')}\n  ]\n}\n`;
}

/** A bus credential that cannot be used: the seed file is unreadable or not an NKey user seed. */
export class BusCredentialError extends CodedError {
  readonly code = 'BUS_CREDENTIAL_INVALID';
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`NATS credential ${file}: ${reason}`);
  }
}

/**
 * Reads an NKey user seed file (`SU…`, surrounding whitespace ignored).
 * @returns the seed bytes (nats.js `nkeyAuthenticator`) and the user's public key (`U…`).
 * @throws BusCredentialError when unreadable or not a user seed.
 */
export function readNkeySeed(file: string): { seed: Uint8Array; publicKey: string } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (e) {
    throw new BusCredentialError(file, `cannot read: ${(e as Error).message}`);
  }
  const seed = new TextEncoder().encode(text);
  try {
    const kp = nkeys.fromSeed(seed);
    const publicKey = kp.getPublicKey();
    if (!publicKey.startsWith('U')) throw new Error('not a user seed (SU…)');
    return { seed, publicKey };
  } catch (e) {
    throw new BusCredentialError(file, `not an NKey user seed: ${(e as Error).message}`);
  }
}

/** A new NKey user: its seed (keep secret, file mode 0600) and public key (goes into nats-server's config). */
export function createNkeyUser(): { seed: string; publicKey: string } {
  const kp = nkeys.createUser();
  return { seed: new TextDecoder().decode(kp.getSeed()), publicKey: kp.getPublicKey() };
}

/** The bus settings of the cluster config (`nats`, libs/config NatsConfig), as far as connecting goes. */
export interface BusSettings {
  servers: string[];
  credentials?: Partial<Record<BusRole, { seedFile: string } | undefined>>;
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
}

/**
 * How a process of `role` connects (connectNats options): its role's seed when the config names
 * one, its role's reply inbox, TLS when configured.
 * @returns null when `role` has no credential although others do (e.g. a gateway without `admin`).
 * @throws BusCredentialError when the role's seed file is unreadable or invalid.
 */
export function busConnectOptions(nats: BusSettings, role: BusRole, subjects: Subjects, name: string): NatsOptions | null {
  const cred = nats.credentials?.[role];
  const anyCred = BUS_ROLES.some((r) => nats.credentials?.[r]);
  if (!cred && anyCred) return null;
  const tls = nats.tls ? { ...(nats.tls.caFile ? { caFile: nats.tls.caFile } : {}), ...(nats.tls.certFile ? { certFile: nats.tls.certFile, keyFile: nats.tls.keyFile } : {}) } : undefined;
  return {
    servers: nats.servers,
    name,
    inboxPrefix: subjects.inboxPrefix(role),
    ...(cred ? { seed: readNkeySeed(cred.seedFile).seed } : {}),
    ...(tls ? { tls } : {}),
  };
}
