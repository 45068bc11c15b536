import { Subjects } from './subjects';
import { hopTrace, subjectKind } from './hop-trace';

describe('hop trace', () => {
  it('names a subject by its kind, without the cluster prefix and the member id', () => {
    const s = new Subjects('local');
    expect(subjectKind(s.propose('c1'))).toBe('propose');
    expect(subjectKind(s.readIndex('c2'))).toBe('readindex');
    expect(subjectKind(s.ship())).toBe('ship');
    expect(subjectKind(s.fetch('c1'))).toBe('log.fetch');
    expect(subjectKind(s.read('s1'))).toBe('read');
    expect(subjectKind(`${s.inboxPrefix('gateway')}.abc.1`)).toBe('inbox');
  });

  it('is off without CAIRN_HOP_TRACE_DIR: marks are dropped without a buffer', () => {
    expect(process.env['CAIRN_HOP_TRACE_DIR']).toBeUndefined();
    expect(hopTrace.enabled).toBe(false);
    hopTrace.start('gateway', 'g1');
    expect(() => hopTrace.mark('tlv.data')).not.toThrow();
  });
});
