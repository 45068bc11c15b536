import { createLogger } from './index';

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
    expect(out.lines[0]).toMatchObject({ process: 'gateway g1', port: 7380, msg: 'listening' });
    expect(new Date(String(out.lines[0].time)).toISOString()).toBe(out.lines[0].time);
  });

  it('drops lines below its level', () => {
    const out = sink();
    const log = createLogger('c1', 'warn', out);
    log.info('not written');
    log.warn('written');
    expect(out.lines.map((l) => l.msg)).toEqual(['written']);
  });
});
