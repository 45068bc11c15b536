import { BUS_ROLES, createNkeyUser, readNkeySeed, type BusRole } from '@cairn/messaging';
import { makeTestPki, type NatsServerOptions } from '@cairn/messaging/testing';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CodedError } from '@cairn/protocol';

/**
 * The local launcher's bus credentials (docs/security.md "The internal bus"): for every role the
 * config names in `nats.credentials`, creates its NKey seed file when absent (directory mode
 * 0700, file mode 0600, never overwritten: a restart keeps the same identities) and returns the
 * public keys for nats-server's `authorization` block.
 * @throws BusCredentialError when an existing seed file is not a valid NKey user seed.
 */
export function ensureBusCredentials(credentials: Partial<Record<BusRole, { seedFile: string } | undefined>>): Partial<Record<BusRole, string>> {
  const keys: Partial<Record<BusRole, string>> = {};
  for (const role of BUS_ROLES) {
    const c = credentials[role];
    if (!c) continue;
    if (!existsSync(c.seedFile)) {
      mkdirSync(dirname(c.seedFile), { recursive: true, mode: 0o700 });
      writeFileSync(c.seedFile, `${createNkeyUser().seed}\n`, { mode: 0o600, flag: 'wx' });
    }
    keys[role] = readNkeySeed(c.seedFile).publicKey;
  }
  return keys;
}

/** Validity of the certificates the launcher makes, days (a local cluster may run for months). */
export const LOCAL_BUS_CERT_DAYS = 365;

/** A launcher's bus TLS files are incomplete: some exist, some do not, and it will not overwrite a CA. */
export class BusTlsFilesError extends CodedError {
  readonly code = 'BUS_TLS_FILES_INCOMPLETE';
  constructor(missing: string, caFile: string) {
    super(`NATS TLS: ${missing} is missing but ${caFile} exists; delete ${caFile} to have the launcher make a new CA and certificates`);
  }
}

/**
 * The local launcher's bus TLS (docs/security.md "The internal bus"): when `tls.caFile` is absent,
 * makes a private CA with openssl (P-256, `LOCAL_BUS_CERT_DAYS`), a server certificate for
 * nats-server (`nats-server.crt|.key` next to `caFile`; SAN localhost, 127.0.0.1) and, when the
 * config names `certFile`/`keyFile`, a client certificate there (every Cairn process presents it).
 * Keys are mode 0600; the CA's key is deleted once they are issued. Existing files are kept.
 * @returns nats-server's `tls` options: verify client certificates exactly when `certFile` is set.
 * @throws OpensslMissingError without openssl; BusTlsFilesError when `caFile` exists and a certificate it would need is missing.
 */
export function ensureBusTls(tls: { caFile?: string; certFile?: string; keyFile?: string }): NonNullable<NatsServerOptions['tls']> | undefined {
  if (!tls.caFile) return undefined; // No CA of ours to make: the processes trust the system's CAs; nats-server's TLS is not ours to set up.
  const dir = dirname(tls.caFile);
  const server = { certFile: join(dir, 'nats-server.crt'), keyFile: join(dir, 'nats-server.key') };
  const client = tls.certFile && tls.keyFile ? { certFile: tls.certFile, keyFile: tls.keyFile } : undefined;
  if (!existsSync(tls.caFile)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const work = mkdtempSync(join(dir, '.pki-'));
    try {
      const pki = makeTestPki(work, 'cairn-bus-ca', LOCAL_BUS_CERT_DAYS);
      const moves: [string, string][] = [[pki.caFile, tls.caFile]];
      const s = pki.issue('nats-server', 'server');
      moves.push([s.certFile, server.certFile], [s.keyFile, server.keyFile]);
      if (client) {
        const c = pki.issue('cairn-bus', 'client');
        moves.push([c.certFile, client.certFile], [c.keyFile, client.keyFile]);
      }
      for (const [from, to] of moves) {
        mkdirSync(dirname(to), { recursive: true, mode: 0o700 });
        renameSync(from, to);
        if (to === server.keyFile || to === client?.keyFile) chmodSync(to, 0o600);
      }
    } finally {
      rmSync(work, { recursive: true, force: true }); // the CA key, CSRs and extension files
    }
  }
  for (const f of [server.certFile, server.keyFile, client?.certFile, client?.keyFile]) if (f && !existsSync(f)) throw new BusTlsFilesError(f, tls.caFile);
  return { ...server, caFile: tls.caFile, verify: client !== undefined };
}
