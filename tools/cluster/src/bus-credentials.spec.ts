import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BusCredentialError } from '@cairn/messaging';
import { opensslAvailable } from '@cairn/messaging/testing';
import { BusTlsFilesError, ensureBusCredentials, ensureBusTls } from './bus-credentials';

describe('launcher bus credentials (docs/security.md "The internal bus")', () => {
  it('creates missing seeds (0600) and keeps existing ones, so a restart keeps the identities', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cairn-bus-creds-'));
    const creds = { gateway: { seedFile: join(dir, 'keys', 'gateway.nk') }, storage: { seedFile: join(dir, 'storage.nk') } };
    const first = ensureBusCredentials(creds);
    expect(Object.keys(first).sort()).toEqual(['gateway', 'storage']);
    expect(first.gateway).toMatch(/^U[A-Z2-7]{55}$/);
    expect(statSync(creds.gateway.seedFile).mode & 0o777).toBe(0o600);
    expect(ensureBusCredentials(creds)).toEqual(first);
    writeFileSync(creds.storage.seedFile, 'not a seed');
    expect(() => ensureBusCredentials(creds)).toThrow(BusCredentialError);
  });

  (opensslAvailable() ? it : it.skip)('makes a CA, a server and a client certificate once, and refuses to overwrite a CA whose certificates are gone', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cairn-bus-tls-'));
    const tls = { caFile: join(dir, 'bus', 'ca.crt'), certFile: join(dir, 'client', 'c.crt'), keyFile: join(dir, 'client', 'c.key') };
    const server = ensureBusTls(tls)!;
    expect(server).toEqual({ certFile: join(dir, 'bus', 'nats-server.crt'), keyFile: join(dir, 'bus', 'nats-server.key'), caFile: tls.caFile, verify: true });
    for (const f of [server.keyFile, tls.keyFile]) expect(statSync(f).mode & 0o777).toBe(0o600);
    const ca = readFileSync(tls.caFile);
    expect(ensureBusTls(tls)).toEqual(server);
    expect(readFileSync(tls.caFile)).toEqual(ca);
    rmSync(server.certFile);
    expect(() => ensureBusTls(tls)).toThrow(BusTlsFilesError);
    expect(ensureBusTls({ caFile: join(dir, 'other', 'ca.crt') })?.verify).toBe(false);
    expect(ensureBusTls({})).toBeUndefined();
  });
});
