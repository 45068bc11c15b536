import { BUS_ROLES, createNkeyUser, readNkeySeed, type BusRole } from '@cairn/messaging';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

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
