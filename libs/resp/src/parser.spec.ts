import fc from 'fast-check';
import { encodeCommand } from './encode';
import { ProtocolErrors, RespParser, parseRespInteger, type RespEvent, type RespParserLimits } from './parser';

const LIMITS: RespParserLimits = { bulkBytesMax: 1024, arrayLengthMax: 64, commandBytesMax: 4096 };

/** Events as strings, for readable comparisons. */
function show(events: RespEvent[]): string[] {
  return events.map((e) => (e.kind === 'command' ? e.args.map((a) => a.toString('latin1')).join('|') : `ERR ${e.message}`));
}

/** Feeds `input` cut into chunks of `size` bytes (0: all at once). */
function parse(input: Buffer | string, size = 0, limits: Partial<RespParserLimits> = {}): string[] {
  const p = new RespParser({ ...LIMITS, ...limits });
  const buf = Buffer.isBuffer(input) ? input : Buffer.from(input, 'latin1');
  const events: RespEvent[] = [];
  if (size === 0) events.push(...p.push(buf));
  else for (let i = 0; i < buf.length; i += size) events.push(...p.push(buf.subarray(i, i + size)));
  return show(events);
}

/** The same events whether the input arrives whole, byte by byte, or in 7-byte chunks. */
function parseAllWays(input: Buffer | string, limits: Partial<RespParserLimits> = {}): string[] {
  const whole = parse(input, 0, limits);
  expect(parse(input, 1, limits)).toEqual(whole);
  expect(parse(input, 7, limits)).toEqual(whole);
  return whole;
}

describe('RespParser: multibulk', () => {
  it('parses commands as clients send them, fragmented (1-byte chunks) or coalesced (many per chunk)', () => {
    const input = Buffer.concat([encodeCommand(['SET', 'k', 'v']), encodeCommand(['GET', 'k']), encodeCommand(['SET', 'bin', Buffer.from([0, 13, 10, 255])])]);
    expect(parseAllWays(input)).toEqual(['SET|k|v', 'GET|k', 'SET|bin|\x00\r\n\xff']);
  });

  it('takes bulk arguments that arrive within one chunk as views, without copying', () => {
    const chunk = encodeCommand(['SET', 'key', 'value']);
    const [ev] = new RespParser(LIMITS).push(chunk);
    expect(ev.kind === 'command' && ev.args[2].buffer).toBe(chunk.buffer);
  });

  it('ignores empty commands (*0, *-1) and keeps going', () => {
    expect(parseAllWays('*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n')).toEqual(['PING']);
  });

  it('accepts a bulk of exactly bulkBytesMax and arrays of exactly arrayLengthMax', () => {
    const big = 'x'.repeat(LIMITS.bulkBytesMax);
    expect(parseAllWays(encodeCommand(['SET', 'k', big]))).toEqual([`SET|k|${big}`]);
    const many = Array.from({ length: LIMITS.arrayLengthMax }, (_, i) => `${i}`);
    expect(parseAllWays(encodeCommand(many))).toEqual([many.join('|')]);
  });

  it('fast-check: any commands, cut anywhere, come out as sent', () => {
    const arg = fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a));
    fc.assert(
      fc.property(fc.array(fc.array(arg, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 8 }), fc.array(fc.nat(), { maxLength: 10 }), (commands, cuts) => {
        const input = Buffer.concat(commands.map((c) => encodeCommand(c)));
        const points = [...new Set(cuts.map((c) => c % (input.length + 1)))].sort((a, b) => a - b);
        const p = new RespParser(LIMITS);
        const events: RespEvent[] = [];
        let from = 0;
        for (const at of [...points, input.length]) {
          events.push(...p.push(input.subarray(from, at)));
          from = at;
        }
        expect(events).toEqual(commands.map((args) => ({ kind: 'command', args })));
      }),
    );
  });
});

describe('RespParser: inline commands', () => {
  it('parses inline commands as `nc` users type them, CRLF or bare LF, skipping blank lines', () => {
    expect(parseAllWays('SET hello world\r\nGET hello\n\r\n\n   \t\r\nPING\r\n')).toEqual(['SET|hello|world', 'GET|hello', 'PING']);
  });

  it('mixes inline and multibulk commands on one connection', () => {
    expect(parseAllWays(Buffer.concat([Buffer.from('PING\r\n'), encodeCommand(['GET', 'a b']), Buffer.from('ECHO x\r\n')]))).toEqual(['PING', 'GET|a b', 'ECHO|x']);
  });

  it('follows Redis quoting rules (sdssplitargs)', () => {
    expect(parseAllWays(`SET "a b" "x\\x41\\n\\t\\"\\\\\\q"\r\n`)).toEqual(['SET|a b|xA\n\t"\\q']);
    expect(parseAllWays(`SET 'it\\'s' '\\n'\r\n`)).toEqual(["SET|it's|\\n"]);
    expect(parseAllWays(`SET k ""\r\n`)).toEqual(['SET|k|']);
    expect(parseAllWays(`SET k\tv  \r\n`)).toEqual(['SET|k|v']);
    expect(parseAllWays(`SET a"b c"\r\n`)).toEqual(['SET|ab c']); // a quote inside a word opens a quoted part, as in Redis
  });

  it('a NUL byte ends an inline line, as in Redis (sds strings are C strings there)', () => {
    expect(parseAllWays('ECHO a\x00b c\r\n')).toEqual(['ECHO|a']);
  });
});

describe('RespParser: malformed input (one error with Redis text, then nothing)', () => {
  const cases: [string, string | Buffer, Partial<RespParserLimits>, string][] = [
    ['expected $', '*1\r\nx4\r\nPING\r\n', {}, "Protocol error: expected '$', got 'x'"],
    ['multibulk count not a number', '*abc\r\n', {}, ProtocolErrors.invalidMultibulkLength],
    ['multibulk count with a leading zero', '*01\r\n', {}, ProtocolErrors.invalidMultibulkLength],
    ['multibulk count over arrayLengthMax', '*65\r\n', {}, ProtocolErrors.invalidMultibulkLength],
    ['multibulk header without CR', '*1\n$4\r\nPING\r\n', {}, ProtocolErrors.invalidMultibulkLength],
    ['negative bulk length', '*1\r\n$-1\r\n', {}, ProtocolErrors.invalidBulkLength],
    ['bulk length not a number', '*1\r\n$4x\r\n', {}, ProtocolErrors.invalidBulkLength],
    ['bulk over bulkBytesMax', '*1\r\n$1025\r\n', {}, ProtocolErrors.invalidBulkLength],
    ['bulk not followed by CRLF', '*1\r\n$4\r\nPINGxx', {}, ProtocolErrors.expectedCrlf],
    ['command over commandBytesMax', encodeCommand(['SET', 'k', 'x'.repeat(1000), 'y'.repeat(1000)]), { commandBytesMax: 1500 }, ProtocolErrors.tooBigCommand(1500)],
    ['inline line over 64 KiB', 'A'.repeat(64 * 1024 + 1), {}, ProtocolErrors.tooBigInline],
    ['inline line over 64 KiB, newline-terminated', 'A'.repeat(64 * 1024 + 1) + '\r\n', {}, ProtocolErrors.tooBigInline],
    ['multibulk count line over 64 KiB', '*' + '1'.repeat(64 * 1024), {}, ProtocolErrors.tooBigMbulkCount],
    ['bulk count line over 64 KiB', '*1\r\n$' + '1'.repeat(64 * 1024), {}, ProtocolErrors.tooBigBulkCount],
    ['unbalanced double quote', 'SET "abc\r\n', {}, ProtocolErrors.unbalancedQuotes],
    ['unbalanced single quote', "SET 'abc\r\n", {}, ProtocolErrors.unbalancedQuotes],
    ['closing quote followed by a non-space', 'SET "a"b\r\n', {}, ProtocolErrors.unbalancedQuotes],
  ];
  it.each(cases)('%s', (_name, bad, limits, message) => {
    const good = encodeCommand(['PING']);
    const input = Buffer.concat([good, Buffer.isBuffer(bad) ? bad : Buffer.from(bad, 'latin1'), good]);
    const events = parseAllWays(input, limits);
    // The command before the bad input is delivered, then the error, then nothing at all.
    expect(events).toEqual(['PING', `ERR ${message}`]);
  });

  it('reports the error once and ignores later input', () => {
    const p = new RespParser(LIMITS);
    expect(show(p.push(Buffer.from('*x\r\n')))).toEqual([`ERR ${ProtocolErrors.invalidMultibulkLength}`]);
    expect(p.hasFailed()).toBe(true);
    expect(p.push(encodeCommand(['PING']))).toEqual([]);
  });

  it('refuses inconsistent limits', () => {
    expect(() => new RespParser({ bulkBytesMax: 10, arrayLengthMax: 1, commandBytesMax: 5 })).toThrow(/RespParserLimitsInvalid/);
  });
});

describe('parseRespInteger (Redis string2ll)', () => {
  it.each([
    ['0', 0],
    ['42', 42],
    ['-1', -1],
    ['-0', null],
    ['007', null],
    ['', null],
    ['-', null],
    ['+1', null],
    [' 1', null],
    ['1e3', null],
    ['99999999999999999999', null],
  ])('%j → %j', (s, v) => {
    expect(parseRespInteger(Buffer.from(s), 0, s.length)).toBe(v);
  });
});
