import { join } from 'node:path';
import { assertPayloadBounds, natsTransport, serverMaxPayloadBytes } from '@cairn/messaging';
import { componentModule, runProcess } from '@cairn/nest-runtime';
import { exitProcessOnFatal, realWorld } from '@cairn/world';
import { Replica } from './replica/replica';

void runProcess('consensus', (args) =>
  componentModule('consensus', args, ({ config, id, nc, subjects, log }) => {
    assertPayloadBounds(config, serverMaxPayloadBytes(nc));
    return new Replica({
      id,
      voters: config.consensus.replicas.map((r) => r.id),
      storage: config.storage.nodes.map((n) => n.id),
      config: config.consensus,
      dataDir: join(config.dataDir, id),
      bus: natsTransport(nc),
      world: realWorld,
      subjects,
      log,
      onFatal: exitProcessOnFatal,
    });
  }),
);
