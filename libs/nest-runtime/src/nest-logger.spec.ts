import { createLogger } from '@cairn/logging';
import { nestLogger } from './nest-logger';

function sink() {
  const lines: Record<string, unknown>[] = [];
  return { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>), lines };
}

describe('nestLogger', () => {
  it("writes Nest's lines as the process's JSON lines, with level names, its context and an error's stack", () => {
    const out = sink();
    const nest = nestLogger(createLogger('consensus:c1', 'debug', out));
    nest.log('Nest application successfully started', 'NestApplication');
    nest.warn('deprecated option', 'RouterExplorer');
    nest.error('Unhandled exception', 'Error: boom\n    at x', 'ExceptionsHandler');
    nest.error(new Error('thrown'));
    nest.verbose?.('not written at debug', 'InstanceLoader');
    expect(out.lines).toEqual([
      expect.objectContaining({ level: 'debug', process: 'consensus:c1', nest: 'NestApplication', msg: 'Nest application successfully started' }),
      expect.objectContaining({ level: 'warn', nest: 'RouterExplorer', msg: 'deprecated option' }),
      expect.objectContaining({ level: 'error', nest: 'ExceptionsHandler', stack: 'Error: boom\n    at x', msg: 'Unhandled exception' }),
      expect.objectContaining({ level: 'error', msg: 'thrown', err: expect.objectContaining({ message: 'thrown' }) }),
    ]);
  });

  it("keeps Nest's start-up chatter out of an info log", () => {
    const out = sink();
    const nest = nestLogger(createLogger('gateway:g1', 'info', out));
    nest.log('Mapped {/v1/kv/:key, GET} route', 'RouterExplorer');
    nest.error('failed');
    expect(out.lines.map((l) => [l.level, l.msg])).toEqual([['error', 'failed']]);
  });
});
