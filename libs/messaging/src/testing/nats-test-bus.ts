import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NatsConnection } from 'nats';
import { connectNats } from '../connection';
import { startNatsServer, type NatsServerHandle } from './nats-server';

/** A private nats-server and one client connection to it, for a test file's beforeAll/afterAll. */
export interface NatsTestBus {
  server: NatsServerHandle;
  nc: NatsConnection;
  /** Closes the connection, then stops the server (resolves when it has exited). */
  close(): Promise<void>;
}

/**
 * Starts a nats-server in a fresh temp dir (`cairn-<name>-*`) and connects to it as `name`.
 * @param maxPayloadBytes the server's max_payload (default: startNatsServer's 8 MiB).
 * @throws as startNatsServer (NatsServerMissingError, not ready in time) and connectNats.
 */
export async function startNatsTestBus(name: string, maxPayloadBytes?: number): Promise<NatsTestBus> {
  const server = await startNatsServer({ dir: mkdtempSync(join(tmpdir(), `cairn-${name}-`)), ...(maxPayloadBytes ? { maxPayloadBytes } : {}) });
  let nc: NatsConnection;
  try {
    nc = await connectNats({ servers: [server.url], name });
  } catch (e) {
    await server.stop();
    throw e;
  }
  return {
    server,
    nc,
    close: async () => {
      await nc.close();
      await server.stop();
    },
  };
}

/**
 * Resolves with the subject of the next permissions violation nats-server reports on `nc`
 * (`-ERR 'Permissions Violation for Publish|Subscription to "<subject>"'`, nats.js status `error`
 * with `permissionContext`). Call before the operation that should be refused.
 * @throws Error when the connection's status stream ends first (connection closed).
 */
export async function nextPermissionViolation(nc: NatsConnection, operation: 'publish' | 'subscription'): Promise<string> {
  for await (const st of nc.status()) {
    const ctx = (st as { permissionContext?: { operation: string; subject: string } }).permissionContext;
    if (st.type === 'error' && st.data === 'PERMISSIONS_VIOLATION' && ctx?.operation === operation) return ctx.subject;
  }
  throw new Error('status stream ended');
}
