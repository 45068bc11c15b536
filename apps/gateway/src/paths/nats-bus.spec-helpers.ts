import { encodeProposeReply, Status, type ProposeReply } from '@cairn/protocol';
import { startNatsTestBus, type NatsTestBus } from '@cairn/messaging/testing';

/**
 * The describe block's private nats-server and connection (startNatsTestBus `name`): started in
 * beforeAll, closed in afterAll. Read `bus.nc` inside a test; before the start it throws.
 */
export function useNatsTestBus(name: string): Pick<NatsTestBus, 'nc'> {
  let started: NatsTestBus | undefined;
  beforeAll(async () => {
    started = await startNatsTestBus(name);
  });
  afterAll(() => started?.close());
  return {
    get nc() {
      if (!started) throw new Error(`nats test bus ${name} is not started (read it inside a test)`);
      return started.nc;
    },
  };
}

/** A fake replica's ProposeReply: OK with empty fields unless `r` says otherwise. */
export const proposeReply = (r: Partial<ProposeReply>): Uint8Array => encodeProposeReply({ status: Status.Ok, firstIndex: 0, lastIndex: 0, leaderHint: '', message: '', ...r });
