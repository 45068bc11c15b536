// Test helper (not part of the build): a tiny in-process gateway built on the protocol codec.
import {
  DEFAULT_LIMITS,
  Opcode,
  RangeOptions,
  RequestDecoder,
  RequestFlags,
  ResponseFlags,
  Status,
  decodeRangeSpec,
  decodeRangeToken,
  encodeGetMeta,
  encodeRangePage,
  encodeRangeToken,
  encodeResponse,
  prefixEnd,
  type Request,
  type Response,
} from '@cairn/protocol';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { CairnClient, type ClientOptions } from '../client';

/** A server-side connection of the fake gateway: the requests it decoded and a way to answer them. */
export interface FakeConn {
  socket: Socket;
  reply(req: Request, res: Partial<Response>): void;
}

/**
 * `onRequest` decides what to do with each decoded request (answer at once, hold it, close...).
 * Answers are written as given, so tests can reorder them. `seen` lists every request decoded.
 */
export class FakeServer {
  server: Server;
  readonly conns: FakeConn[] = [];
  readonly seen: Request[] = [];
  onRequest: (req: Request, conn: FakeConn) => void = (req, conn) => conn.reply(req, {});
  private listenPort = 0;

  private constructor() {
    this.server = this.create();
  }

  static async start(port = 0): Promise<FakeServer> {
    const f = new FakeServer();
    await f.listen(port);
    return f;
  }

  get port(): number {
    return this.listenPort;
  }

  connect(opts: Partial<ClientOptions> = {}): Promise<CairnClient> {
    return CairnClient.connect({ host: '127.0.0.1', port: this.port, ...opts });
  }

  /** Closes the listener and every connection (a gateway that died). */
  async stop(): Promise<void> {
    for (const c of this.conns) c.socket.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  /** Listens again on the same port after `stop()` (a gateway that came back). */
  async restart(): Promise<void> {
    this.server = this.create();
    await this.listen(this.listenPort);
  }

  private async listen(port: number): Promise<void> {
    await new Promise<void>((r) => this.server.listen(port, '127.0.0.1', r));
    this.listenPort = (this.server.address() as AddressInfo).port;
  }

  private create(): Server {
    return createServer((socket) => {
      const decoder = new RequestDecoder(DEFAULT_LIMITS);
      const conn: FakeConn = {
        socket,
        reply: (req, res) => {
          if (!socket.destroyed) socket.write(encodeResponse({ status: Status.Ok, flags: 0, requestId: req.requestId, revision: 0, payload: Buffer.alloc(0), ...res }));
        },
      };
      this.conns.push(conn);
      socket.on('error', () => undefined);
      socket.on('data', (chunk: Buffer) => {
        for (const ev of decoder.push(chunk)) {
          if (ev.kind !== 'request') throw new Error(`client sent a bad frame: ${ev.message}`);
          this.seen.push(ev.request);
          this.onRequest(ev.request, conn);
        }
      });
    });
  }
}

/** A small KV store behind a fake server: revision = a global counter, like the Raft index; per-key metadata as etcd keeps it. */
export function kvHandler() {
  const data = new Map<string, { value: Buffer; revision: number; createRevision: number; version: number }>();
  let index = 0;
  const seen: Request[] = [];
  const handler = (req: Request, conn: FakeConn) => {
    seen.push(req);
    const key = req.key.toString('hex');
    switch (req.opcode) {
      case Opcode.Ping:
        return conn.reply(req, { payload: req.value });
      case Opcode.Get: {
        const got = data.get(key);
        if (got && req.flags & RequestFlags.Meta) return conn.reply(req, { revision: got.revision, flags: ResponseFlags.Meta, payload: encodeGetMeta(got, got.value) });
        return conn.reply(req, got ? { revision: got.revision, payload: got.value } : { status: Status.NotFound });
      }
      case Opcode.Set: {
        const revision = ++index;
        const cond = req.flags & (RequestFlags.IfAbsent | RequestFlags.IfPresent);
        if (cond && data.has(key) !== (cond === RequestFlags.IfPresent)) return conn.reply(req, { status: Status.ConditionFailed, revision });
        const prev = data.get(key);
        data.set(key, { value: Buffer.from(req.value), revision, createRevision: prev?.createRevision ?? revision, version: (prev?.version ?? 0) + 1 });
        return conn.reply(req, { revision });
      }
      case Opcode.Del:
        data.delete(key);
        return conn.reply(req, { revision: ++index });
      case Opcode.Status:
        return conn.reply(req, { payload: Buffer.from(JSON.stringify({ leaderId: 'c1', consensus: [] })) });
      case Opcode.Range: {
        // The gateway's semantics in miniature: [start, end) or a prefix, limit (0 = 3 here), token = 01 | last key.
        const spec = decodeRangeSpec(req.value);
        const start = req.key;
        const end = spec.options & RangeOptions.Prefix ? prefixEnd(start) : spec.end.length ? spec.end : null;
        const inRange = [...data.keys()].map((k) => Buffer.from(k, 'hex')).filter((k) => Buffer.compare(k, start) >= 0 && (end === null || Buffer.compare(k, end) < 0));
        inRange.sort(Buffer.compare);
        const reverse = (spec.options & RangeOptions.Reverse) !== 0;
        if (reverse) inRange.reverse();
        const after = spec.token.length ? decodeRangeToken(spec.token) : null;
        const rest = after ? inRange.filter((k) => (reverse ? Buffer.compare(k, after) < 0 : Buffer.compare(k, after) > 0)) : inRange;
        const page = rest.slice(0, spec.limit || 3);
        const more = rest.length > page.length && (spec.options & RangeOptions.CountOnly) === 0;
        const items = page.map((k) => {
          const e = data.get(k.toString('hex'))!;
          return { key: k, value: spec.options & RangeOptions.KeysOnly ? Buffer.alloc(0) : e.value, revision: e.revision, createRevision: e.createRevision, version: e.version };
        });
        const token = more ? encodeRangeToken(page[page.length - 1]) : Buffer.alloc(0);
        return conn.reply(req, { revision: index, payload: encodeRangePage({ count: inRange.length, more, token, items: spec.options & RangeOptions.CountOnly ? [] : items }) });
      }
    }
  };
  return { handler, seen };
}
