import { join } from 'node:path';
import { assertPayloadBounds, natsTransport, serverMaxPayloadBytes } from '@cairn/messaging';
import { componentModule, runProcess } from '@cairn/nest-runtime';
import { exitProcessOnFatal, realWorld } from '@cairn/world';
import { StorageNode } from './node/storage-node';

void runProcess('storage', (args) =>
  componentModule('storage', args, ({ config, id, nc, subjects, log }) => {
    assertPayloadBounds(config, serverMaxPayloadBytes(nc));
    return new StorageNode({
      id,
      replicaIds: config.consensus.replicas.map((r) => r.id),
      config: config.storage,
      dataDir: join(config.dataDir, id),
      bus: natsTransport(nc),
      world: realWorld,
      subjects,
      log,
      onFatal: exitProcessOnFatal,
    });
  }),
);
