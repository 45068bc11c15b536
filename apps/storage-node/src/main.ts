import { join } from 'node:path';
import { componentModule, runProcess } from '@cairn/nest-runtime';
import { StorageNode } from './node/storage-node';

void runProcess('storage', (args) =>
  componentModule('storage', args, ({ config, id, nc, subjects, log }) =>
    new StorageNode({ id, replicaIds: config.consensus.replicas.map((r) => r.id), config: config.storage, dataDir: join(config.dataDir, id), nc, subjects, log }),
  ),
);
