import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { CairnClient } from '@cairn/client';
import { Opcode, RequestFlags, ResponseDecoder, Status, encodeRequest, type Response } from '@cairn/protocol';
import { useBusCluster } from './bus-cluster.spec-helpers';

/**
 * The connection-level rules of docs/protocol.md ("Connection lifecycle", "Request ids"), checked
 * with raw sockets against a real gateway on a real cluster: what a cut frame, a half-close, a
 * duplicate request id and an idle connection do.
 */
describe('protocol v1 connection semantics end to end', () => {
  let port: number;
  let client: CairnClient;
  const idleTimeoutMs = 1000;
  const e2e = useBusCluster('e2e-protocol-semantics', { gateway: { idleTimeoutMs } }, { beforeStop: () => client?.destroy() });

  beforeAll(async () => {
    port = e2e.cfg.gatewayPort;
    client = await CairnClient.connect({ host: '127.0.0.1', port });
  });

  /** A raw connection collecting every response until the gateway closes it. */
  async function raw(): Promise<{ socket: Socket; responses: Response[]; closed: Promise<unknown>; next: (n: number) => Promise<Response[]> }> {
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    const decoder = new ResponseDecoder();
    const responses: Response[] = [];
    const waiters: { n: number; resolve: () => void }[] = [];
    socket.on('data', (chunk: Buffer) => {
      responses.push(...decoder.push(chunk));
      for (const w of waiters.filter((x) => responses.length >= x.n)) w.resolve();
    });
    socket.on('error', () => undefined);
    const closed = once(socket, 'close');
    const next = (n: number) => (responses.length >= n ? Promise.resolve(responses) : new Promise<Response[]>((resolve) => waiters.push({ n, resolve: () => resolve(responses) })));
    return { socket, responses, closed, next };
  }

  const frame = (opcode: Opcode, requestId: number, key = '', value = '', flags = 0) => encodeRequest({ opcode, requestId, flags, key: Buffer.from(key), value: Buffer.from(value) });

  it('two requests in flight with the same id are both executed and both answered with that id', async () => {
    const c = await raw();
    c.socket.write(Buffer.concat([frame(Opcode.Set, 7, 'dup-a', 'x'), frame(Opcode.Set, 7, 'dup-b', 'y')]));
    const rs = await c.next(2);
    expect(rs.map((r) => [r.requestId, r.status])).toEqual([
      [7, Status.Ok],
      [7, Status.Ok],
    ]);
    expect((await client.get('dup-a'))?.value.toString()).toBe('x');
    expect((await client.get('dup-b'))?.value.toString()).toBe('y');
    c.socket.destroy();
  });

  it('a frame cut by the end of the stream is discarded, never executed; the complete frames before it are', async () => {
    const c = await raw();
    const cut = frame(Opcode.Set, 2, 'cut', 'hello');
    c.socket.write(Buffer.concat([frame(Opcode.Set, 1, 'whole', 'v'), cut.subarray(0, cut.length - 3)]));
    const [first] = await c.next(1); // the complete SET is answered; the cut one waits for bytes
    expect(first).toMatchObject({ requestId: 1, status: Status.Ok });
    c.socket.end();
    await c.closed;
    expect(c.responses).toHaveLength(1);
    // Read after the cut SET could have committed: a linearizable GET sees every committed write.
    expect(await client.get('cut')).toBeNull();
    expect((await client.get('whole'))?.value.toString()).toBe('v');
  });

  it('a half-close ends the input only: requests already sent are executed and answered, then the gateway closes', async () => {
    const c = await raw();
    c.socket.end(frame(Opcode.Set, 1, 'half-closed', 'applied'));
    await c.closed;
    // The gateway keeps its sending side open (allowHalfOpen) until every answer is flushed, as `nc` users expect.
    expect(c.responses.map((r) => [r.requestId, r.status])).toEqual([[1, Status.Ok]]);
    expect((await client.get('half-closed'))?.value.toString()).toBe('applied');
  });

  it('STALE reads answer committed data; the revision says how fresh', async () => {
    const w = await client.set('stale-key', 'v1');
    const c = await raw();
    c.socket.write(frame(Opcode.Get, 1, 'stale-key', '', RequestFlags.Stale));
    const [r] = await c.next(1);
    // Either node may answer, before or after applying the write: never an uncommitted value.
    if (r.status === Status.Ok) {
      expect(r.payload.toString()).toBe('v1');
      expect(r.revision).toBe(w.revision);
    } else expect(r).toMatchObject({ status: Status.NotFound, revision: 0 });
    c.socket.destroy();
  });

  it('error responses carry revision 0', async () => {
    const c = await raw();
    c.socket.write(Buffer.concat([frame(Opcode.Get, 1, 'k'.repeat(2000)), frame(Opcode.Get, 2), frame(Opcode.Get, 3, 'nothing-here')]));
    const rs = await c.next(3);
    expect(rs.map((r) => [r.requestId, r.status, r.revision])).toEqual([
      [1, Status.TooLarge, 0],
      [2, Status.BadRequest, 0],
      [3, Status.NotFound, 0],
    ]);
    c.socket.destroy();
  });

  it('closes a connection idle for gateway.idleTimeoutMs with nothing in flight, also one holding part of a frame', async () => {
    const idle = await raw();
    const partial = await raw();
    partial.socket.write(frame(Opcode.Ping, 1).subarray(0, 5));
    await Promise.all([idle.closed, partial.closed]);
    expect(idle.responses).toHaveLength(0);
    expect(partial.responses).toHaveLength(0);
  });
});
