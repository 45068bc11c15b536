import { join } from 'node:path';
import { assertPayloadBounds, serverMaxPayloadBytes } from '@cairn/messaging';
import { componentModule, runProcess } from '@cairn/nest-runtime';
import { StorageNode } from './node/storage-node';

void runProcess('storage', (args) =>
  componentModule('storage', args, ({ config, id, nc, subjects, log }) => {
    assertPayloadBounds(config, serverMaxPayloadBytes(nc));
    return new StorageNode({ id, replicaIds: config.consensus.replicas.map((r) => r.id), config: config.storage, dataDir: join(config.dataDir, id), nc, subjects, log });
  }),
);
