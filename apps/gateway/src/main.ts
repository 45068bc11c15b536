import { assertPayloadBounds, serverMaxPayloadBytes } from '@cairn/messaging';
import { componentModule, runProcess } from '@cairn/nest-runtime';
import { Gateway } from './gateway';

void runProcess('gateway', (args) =>
  componentModule('gateway', args, (deps) => {
    assertPayloadBounds(deps.config, serverMaxPayloadBytes(deps.nc));
    return new Gateway(deps);
  }),
);
