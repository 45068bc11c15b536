import fc from 'fast-check';
import { encodeArray, encodeBulk, encodeBulkArray, encodeError, encodeInteger, encodeSimpleString, encodeValue, NULL_ARRAY, NULL_BULK, type RespValue } from './encode';
import { ReplyDecoder, RespProtocolError } from './reply-decoder';

describe('RESP2 encoders', () => {
  it('encode each reply type as Redis does', () => {
    expect(encodeSimpleString('OK').toString()).toBe('+OK\r\n');
    expect(encodeError('ERR boom').toString()).toBe('-ERR boom\r\n');
    expect(encodeError('ERR a\r\nb').toString()).toBe('-ERR a  b\r\n');
    expect(encodeInteger(-7).toString()).toBe(':-7\r\n');
    expect(encodeBulk('world').toString()).toBe('$5\r\nworld\r\n');
    expect(encodeBulk(Buffer.alloc(0)).toString()).toBe('$0\r\n\r\n');
    expect(encodeBulk('é').toString()).toBe('$2\r\né\r\n');
    expect(encodeBulk(null)).toBe(NULL_BULK);
    expect(NULL_BULK.toString()).toBe('$-1\r\n');
    expect(encodeArray([encodeBulk('a'), encodeInteger(1)]).toString()).toBe('*2\r\n$1\r\na\r\n:1\r\n');
    expect(encodeArray([]).toString()).toBe('*0\r\n');
    expect(encodeArray(null)).toBe(NULL_ARRAY);
    expect(NULL_ARRAY.toString()).toBe('*-1\r\n');
  });

  it('encodeBulkArray writes the bytes of encodeArray over encodeBulk, in one buffer (fast-check)', () => {
    const item = fc.oneof(fc.constant(null), fc.string({ maxLength: 20 }), fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)));
    fc.assert(
      fc.property(fc.array(item, { maxLength: 20 }), (items) => {
        expect(encodeBulkArray(items).equals(encodeArray(items.map(encodeBulk)))).toBe(true);
      }),
    );
  });

  it('refuse what would break framing', () => {
    expect(() => encodeSimpleString('a\r\nb')).toThrow(/SimpleStringHasNoCrLf/);
    expect(() => encodeInteger(1.5)).toThrow(/IntegerIsSafe/);
    expect(() => encodeInteger(2 ** 53)).toThrow(/IntegerIsSafe/);
  });
});

const line = fc.string({ maxLength: 20 }).filter((s) => !/[\r\n]/.test(s));
const value: fc.Arbitrary<RespValue> = fc.letrec<{ v: RespValue }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    line.map((s) => ({ type: 'simple', value: s }) as RespValue),
    line.map((s) => ({ type: 'error', value: s }) as RespValue),
    fc.maxSafeInteger().map((n) => ({ type: 'integer', value: n }) as RespValue),
    fc.option(fc.uint8Array({ maxLength: 30 })).map((b) => ({ type: 'bulk', value: b === null ? null : Buffer.from(b) }) as RespValue),
    fc.option(fc.array(tie('v'), { maxLength: 4 })).map((a) => ({ type: 'array', value: a }) as RespValue),
  ),
})).v;

describe('ReplyDecoder', () => {
  it('fast-check: every encoded reply, cut anywhere, decodes to itself', () => {
    fc.assert(
      fc.property(fc.array(value, { minLength: 1, maxLength: 6 }), fc.array(fc.nat(), { maxLength: 8 }), (values, cuts) => {
        const input = Buffer.concat(values.map(encodeValue));
        const points = [...new Set(cuts.map((c) => c % (input.length + 1)))].sort((a, b) => a - b);
        const d = new ReplyDecoder();
        const out: RespValue[] = [];
        let from = 0;
        for (const at of [...points, input.length]) {
          out.push(...d.push(input.subarray(from, at)));
          from = at;
        }
        expect(out).toEqual(values);
      }),
    );
  });

  it('throws RespProtocolError on input that is not RESP2', () => {
    expect(() => new ReplyDecoder().push(Buffer.from('hello\r\n'))).toThrow(RespProtocolError);
    expect(() => new ReplyDecoder().push(Buffer.from('$3\r\nabcd\r\n'))).toThrow(/CRLF/);
    expect(() => new ReplyDecoder().push(Buffer.from(':1x\r\n'))).toThrow(/bad integer/);
  });
});
