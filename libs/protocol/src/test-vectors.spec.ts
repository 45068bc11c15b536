import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  DEFAULT_LIMITS,
  Opcode,
  ProtocolError,
  RequestDecoder,
  ResponseDecoder,
  Status,
  encodeRequest,
  encodeResponse,
  opcodeName,
  statusName,
  type DecodeEvent,
  type FrameLimits,
  type Response,
} from './index';

type Expected =
  | { kind: 'request'; opcode: string; flags: number; requestId: number; keyHex: string; valueHex: string }
  | { kind: 'reject' | 'fatal'; requestId: number; status: string; messageContains: string }
  | { kind: 'response'; status: string; flags: number; requestId: number; revision: number; payloadHex: string }
  | { kind: 'error'; code: string; messageContains: string };

interface Vector {
  name: string;
  direction: 'request' | 'response';
  description: string;
  hex: string;
  limits?: FrameLimits;
  expect: Expected[];
}

const vectors = JSON.parse(readFileSync(join(__dirname, '..', 'test-vectors', 'client-v1.json'), 'utf8')) as Vector[];

const opcodeByName = new Map(Object.values(Opcode).filter((v): v is Opcode => typeof v === 'number').map((o) => [opcodeName(o), o]));
const statusByName = new Map(Object.values(Status).filter((v): v is Status => typeof v === 'number').map((s) => [statusName(s), s]));

/** Events as the JSON spells them, for a single toEqual against `expect`. */
function describeEvent(ev: DecodeEvent, like: Expected | undefined): unknown {
  if (ev.kind === 'request') {
    const r = ev.request;
    return { kind: 'request', opcode: opcodeName(r.opcode), flags: r.flags, requestId: r.requestId, keyHex: r.key.toString('hex'), valueHex: r.value.toString('hex') };
  }
  const contains = like && 'messageContains' in like ? like.messageContains : '';
  return { kind: ev.kind, requestId: ev.requestId, status: statusName(ev.status), messageContains: ev.message.includes(contains) ? contains : ev.message };
}

function describeResponse(r: Response): unknown {
  return { kind: 'response', status: statusName(r.status), flags: r.flags, requestId: r.requestId, revision: r.revision, payloadHex: r.payload.toString('hex') };
}

function decodeRequests(v: Vector, chunkBytes: number): unknown[] {
  const dec = new RequestDecoder(v.limits ?? DEFAULT_LIMITS);
  const bytes = Buffer.from(v.hex, 'hex');
  const events: DecodeEvent[] = [];
  for (let i = 0; i < bytes.length; i += chunkBytes) events.push(...dec.push(bytes.subarray(i, i + chunkBytes)));
  return events.map((ev, i) => describeEvent(ev, v.expect[i]));
}

function decodeResponses(v: Vector, chunkBytes: number): unknown[] {
  const dec = new ResponseDecoder();
  const bytes = Buffer.from(v.hex, 'hex');
  const out: unknown[] = [];
  try {
    for (let i = 0; i < bytes.length; i += chunkBytes) out.push(...dec.push(bytes.subarray(i, i + chunkBytes)).map(describeResponse));
  } catch (e) {
    if (!(e instanceof ProtocolError)) throw e;
    const like = v.expect[out.length];
    const contains = like && 'messageContains' in like ? like.messageContains : '';
    out.push({ kind: 'error', code: e.code, messageContains: e.message.includes(contains) ? contains : e.message });
  }
  return out;
}

describe('client protocol v1 test vectors (test-vectors/client-v1.json)', () => {
  it('covers every opcode, status and bad-header class', () => {
    const kinds = new Set(vectors.flatMap((v) => v.expect.map((e) => e.kind)));
    expect([...kinds].sort()).toEqual(['error', 'fatal', 'reject', 'request', 'response']);
    const statuses = new Set(vectors.flatMap((v) => v.expect.flatMap((e) => ('status' in e && e.kind === 'response' ? [e.status] : []))));
    expect(statuses.size).toBe(statusByName.size);
    const ops = new Set(vectors.flatMap((v) => v.expect.flatMap((e) => (e.kind === 'request' ? [e.opcode] : []))));
    expect(ops.size).toBe(opcodeByName.size);
    expect(new Set(vectors.map((v) => v.name)).size).toBe(vectors.length);
  });

  describe.each(vectors.map((v) => [v.name, v] as const))('%s', (_name, v) => {
    if (v.direction === 'request') {
      it('decodes in one chunk and byte by byte', () => {
        expect(decodeRequests(v, Number.MAX_SAFE_INTEGER)).toEqual(v.expect);
        expect(decodeRequests(v, 1)).toEqual(v.expect);
      });
      if (v.expect.length === 1 && v.expect[0].kind === 'request') {
        const e = v.expect[0];
        it('encodes to the same bytes', () => {
          const encoded = encodeRequest({ opcode: opcodeByName.get(e.opcode)!, flags: e.flags, requestId: e.requestId, key: Buffer.from(e.keyHex, 'hex'), value: Buffer.from(e.valueHex, 'hex') });
          expect(encoded.toString('hex')).toBe(v.hex);
        });
      }
    } else {
      it('decodes in one chunk and byte by byte', () => {
        expect(decodeResponses(v, Number.MAX_SAFE_INTEGER)).toEqual(v.expect);
        expect(decodeResponses(v, 1)).toEqual(v.expect);
      });
      if (v.expect.every((e) => e.kind === 'response')) {
        it('encodes to the same bytes', () => {
          const hex = v.expect
            .map((e) => {
              if (e.kind !== 'response') throw new Error('unreachable');
              return encodeResponse({ status: statusByName.get(e.status)!, flags: e.flags, requestId: e.requestId, revision: e.revision, payload: Buffer.from(e.payloadHex, 'hex') }).toString('hex');
            })
            .join('');
          expect(hex).toBe(v.hex);
        });
      }
    }
  });
});
