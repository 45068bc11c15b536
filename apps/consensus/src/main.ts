import { join } from 'node:path';
import { assertPayloadBounds, serverMaxPayloadBytes } from '@cairn/messaging';
import { componentModule, runProcess } from '@cairn/nest-runtime';
import { Replica } from './replica/replica';

void runProcess('consensus', (args) =>
  componentModule('consensus', args, ({ config, id, nc, subjects, log }) => {
    assertPayloadBounds(config, serverMaxPayloadBytes(nc));
    return new Replica({ id, voters: config.consensus.replicas.map((r) => r.id), storage: config.storage.nodes.map((n) => n.id), config: config.consensus, dataDir: join(config.dataDir, id), nc, subjects, log });
  }),
);
