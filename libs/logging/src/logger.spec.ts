import { createLogger, requestLogger } from './index';

/** A destination that keeps every line, JSON-parsed. */
function sink(): { write(line: string): void; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  return { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>), lines };
}

describe('createLogger', () => {
  it('writes one JSON object a line, naming the process, with an ISO time', () => {
    const out = sink();
    createLogger('gateway g1', 'info', out).info({ port: 7380 }, 'listening');
    expect(out.lines).toHaveLength(1);
    expect(out.lines[0]).toMatchObject({ level: 'info', process: 'gateway g1', port: 7380, msg: 'listening' });
    expect(new Date(String(out.lines[0].time)).toISOString()).toBe(out.lines[0].time);
  });

  it('drops lines below its level', () => {
    const out = sink();
    const log = createLogger('c1', 'warn', out);
    log.info('not written');
    log.warn('written');
    expect(out.lines.map((l) => l.msg)).toEqual(['written']);
  });

  it('names the level of every line', () => {
    const out = sink();
    const log = createLogger('c1', 'trace', out);
    log.trace('t');
    log.debug('d');
    log.info('i');
    log.warn('w');
    log.error('e');
    log.fatal('f');
    expect(out.lines.map((l) => l.level)).toEqual(['trace', 'debug', 'info', 'warn', 'error', 'fatal']);
  });

  it("carries a request's id on every line of its child logger, and not on the process's", () => {
    const out = sink();
    const log = createLogger('gateway g1', 'info', out);
    const req = requestLogger(log, 'g1-1a');
    req.info('accepted');
    req.warn({ status: 503 }, 'answered');
    log.info('unrelated');
    expect(out.lines.map((l) => [l.reqId, l.msg, l.level])).toEqual([
      ['g1-1a', 'accepted', 'info'],
      ['g1-1a', 'answered', 'warn'],
      [undefined, 'unrelated', 'info'],
    ]);
    expect(out.lines[1]).toMatchObject({ process: 'gateway g1', status: 503 });
  });
});
