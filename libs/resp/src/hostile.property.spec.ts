import fc from 'fast-check';
import { encodeCommand, encodeValue, type RespValue } from './encode';
import { RespParser, type RespEvent, type RespParserLimits } from './parser';
import { ReplyDecoder, RespProtocolError } from './reply-decoder';

/**
 * Hostile input for both RESP decoders (issue 9): random bytes drawn from RESP's own alphabet (so
 * headers, lengths and quotes are hit often), and valid streams with bytes overwritten, inserted or
 * cut. The request parser never throws (a protocol error is an event, always the last one); the
 * reply decoder throws only RespProtocolError; both give the same result however the stream is cut.
 */

const LIMITS = { bulkBytesMax: 64, arrayLengthMax: 8, inlineBytesMax: 48, commandBytesMax: 128 } satisfies RespParserLimits;

/** Tokens that make up RESP, plus arbitrary bytes. */
const token = fc.oneof(
  fc.constantFrom('*', '$', ':', '+', '-', '\r\n', '\r', '\n', '0', '1', '2', '3', '9', '-1', '"', "'", '\\', '\\x4', ' ', '\t', '\0', 'GET', 'SET', 'k', '99999999999999999999'),
  fc.uint8Array({ minLength: 1, maxLength: 4 }).map((b) => Buffer.from(b).toString('latin1')),
);
const respNoise = fc.array(token, { maxLength: 60 }).map((ts) => Buffer.from(ts.join(''), 'latin1'));

type Mutation = { kind: 'set'; at: number; value: number } | { kind: 'insert'; at: number; text: string } | { kind: 'cut'; at: number };
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.nat({ max: 255 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), text: token }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
);

function mutate(b: Buffer, ms: Mutation[]): Buffer {
  let out = Buffer.from(b);
  for (const m of ms) {
    const at = m.at % (out.length + 1);
    if (m.kind === 'set' && out.length > 0) out[at % out.length] = m.value;
    else if (m.kind === 'insert') out = Buffer.concat([out.subarray(0, at), Buffer.from(m.text, 'latin1'), out.subarray(at)]);
    else if (m.kind === 'cut') out = out.subarray(0, at);
  }
  return out;
}

/** Cuts `b` into consecutive pieces at the given fractions. */
function split(b: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => Math.floor(c * b.length)))].sort((x, y) => x - y);
  const out: Buffer[] = [];
  let prev = 0;
  for (const a of at) {
    out.push(b.subarray(prev, a));
    prev = a;
  }
  out.push(b.subarray(prev));
  return out;
}
const cuts = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 10 });

// ---- Request parser (the RESP door) ----------------------------------------------------------------

const arg = fc.uint8Array({ maxLength: 12 }).map((a) => Buffer.from(a));
const commands = fc.array(fc.array(arg, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 5 }).map((cs) => Buffer.concat(cs.map((c) => encodeCommand(c))));

function show(events: RespEvent[]): string[] {
  return events.map((e) => (e.kind === 'command' ? e.args.map((a) => a.toString('hex')).join('|') : `ERR ${e.message}`));
}

/** Feeds the pieces to one parser; it must never throw, and nothing may follow an error. */
function parsePieces(pieces: Buffer[]): string[] {
  const p = new RespParser(LIMITS);
  const events: RespEvent[] = [];
  for (const piece of pieces) {
    const got = p.push(piece);
    if (p.hasFailed()) expect(got.length === 0 || got[got.length - 1].kind === 'error').toBe(true);
    events.push(...got);
  }
  const errorAt = events.findIndex((e) => e.kind === 'error');
  if (errorAt >= 0) expect(errorAt).toBe(events.length - 1);
  for (const e of events) {
    if (e.kind !== 'command') continue;
    // Every argument that came out is within the limits.
    expect(e.args.length).toBeLessThanOrEqual(Math.max(LIMITS.arrayLengthMax, LIMITS.inlineBytesMax));
    expect(e.args.reduce((n, a) => n + a.length, 0)).toBeLessThanOrEqual(LIMITS.commandBytesMax);
  }
  return show(events);
}

describe('RespParser on hostile streams (fast-check)', () => {
  it('RESP-alphabet noise never throws and gives the same events however it is cut', () => {
    fc.assert(
      fc.property(respNoise, cuts, (stream, c) => {
        expect(parsePieces(split(stream, c))).toEqual(parsePieces([stream]));
      }),
      { numRuns: 500 },
    );
  });

  it('random bytes never throw and give the same events however they are cut', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
        cuts,
        (stream, c) => {
          expect(parsePieces(split(stream, c))).toEqual(parsePieces([stream]));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('mutated command streams never throw and give the same events however they are cut', () => {
    fc.assert(
      fc.property(commands, fc.array(mutation, { minLength: 1, maxLength: 4 }), cuts, (stream, ms, c) => {
        const bad = mutate(stream, ms);
        expect(parsePieces(split(bad, c))).toEqual(parsePieces([bad]));
      }),
      { numRuns: 500 },
    );
  });

  it('a line that never ends is refused once it passes inlineBytesMax, however it is fed', () => {
    fc.assert(
      fc.property(fc.constantFrom('*', '$', 'G', '"'), fc.integer({ min: 1, max: 16 }), (first, chunkBytes) => {
        const p = new RespParser(LIMITS);
        const line = Buffer.from(first + 'x'.repeat(LIMITS.inlineBytesMax * 4), 'latin1');
        let events: RespEvent[] = [];
        for (let i = 0; i < line.length && !p.hasFailed(); i += chunkBytes) events = events.concat(p.push(line.subarray(i, i + chunkBytes)));
        expect(events).toHaveLength(1);
        expect(events[0].kind).toBe('error');
      }),
      { numRuns: 50 },
    );
  });
});

// ---- Reply decoder (the client side) ---------------------------------------------------------------

const replyValue: fc.Arbitrary<RespValue> = fc.letrec<{ v: RespValue }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.record({ type: fc.constant('simple' as const), value: fc.stringMatching(/^[^\r\n]{0,10}$/) }),
    fc.record({ type: fc.constant('error' as const), value: fc.stringMatching(/^[^\r\n]{0,10}$/) }),
    fc.record({ type: fc.constant('integer' as const), value: fc.integer() }),
    fc.record({ type: fc.constant('bulk' as const), value: fc.option(arg, { nil: null }) }),
    fc.record({ type: fc.constant('array' as const), value: fc.option(fc.array(tie('v'), { maxLength: 3 }), { nil: null }) }),
  ),
})).v;
const replyValues = fc.array(replyValue, { minLength: 1, maxLength: 5 });
const replies = replyValues.map((vs) => Buffer.concat(vs.map(encodeValue)));

/** A comparable form of a reply (Buffers as hex). */
function showValue(v: RespValue): unknown {
  if (v.type === 'bulk') return { bulk: v.value?.toString('hex') ?? null };
  if (v.type === 'array') return { array: v.value?.map(showValue) ?? null };
  return v;
}

/** Feeds the pieces; returns the replies and whether it threw RespProtocolError. */
function decodePieces(pieces: Buffer[]): { replies: unknown[]; failed: boolean } {
  const d = new ReplyDecoder(64);
  const out: unknown[] = [];
  for (const piece of pieces) {
    try {
      out.push(...d.push(piece).map(showValue));
    } catch (e) {
      if (!(e instanceof RespProtocolError)) throw e;
      return { replies: out, failed: true };
    }
  }
  return { replies: out, failed: false };
}

describe('ReplyDecoder on hostile streams (fast-check)', () => {
  it('valid replies decode to themselves however they are cut', () => {
    fc.assert(
      fc.property(replyValues, cuts, (values, c) => {
        const stream = Buffer.concat(values.map(encodeValue));
        const whole = decodePieces([stream]);
        expect(whole.failed).toBe(false);
        expect(whole.replies).toEqual(values.map(showValue));
        expect(decodePieces(split(stream, c))).toEqual(whole);
      }),
      { numRuns: 300 },
    );
  });

  it('noise, random bytes and mutated replies throw only RespProtocolError', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          respNoise,
          fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
          fc.tuple(replies, fc.array(mutation, { minLength: 1, maxLength: 4 })).map(([s, ms]) => mutate(s, ms)),
        ),
        cuts,
        (stream, c) => {
          const whole = decodePieces([stream]);
          const pieces = decodePieces(split(stream, c));
          // Cut differently, a stream may fail at a piece that the whole stream decodes past only
          // once complete; what was decoded before either failure agrees.
          const n = Math.min(whole.replies.length, pieces.replies.length);
          expect(pieces.replies.slice(0, n)).toEqual(whole.replies.slice(0, n));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('arrays nested past arrayDepthMax throw RespProtocolError, not a stack overflow', () => {
    const deep = Buffer.from('*1\r\n'.repeat(100_000) + ':1\r\n');
    expect(() => new ReplyDecoder().push(deep)).toThrow(RespProtocolError);
    expect(new ReplyDecoder().push(Buffer.from('*1\r\n'.repeat(64) + ':1\r\n'))).toHaveLength(1);
    expect(() => new ReplyDecoder().push(Buffer.from('*1\r\n'.repeat(65) + ':1\r\n'))).toThrow(/arrayDepthMax 64/);
  });
});
