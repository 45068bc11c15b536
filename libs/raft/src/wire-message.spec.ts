import { decodeRaftMessages, encodeRaftMessages, type WireRaftMessage } from '@cairn/protocol';
import { Simulator } from './testing/simulator';
import { EntryType, isRaftMessage, MessageType, type Message } from './types';

describe('one definition of the wire message', () => {
  it('every message a cluster sends survives the internal codec and is a Raft message again', () => {
    const sim = new Simulator({ seed: 3 });
    sim.recordSent = true;
    expect(sim.elect('n1')).toBe(true);
    sim.propose('n1', 'a', 'b');
    sim.readIndex('n1', 7);
    sim.stabilize();
    const sent: Message[] = sim.sent;
    expect(new Set(sent.map((m) => m.type)).size).toBeGreaterThanOrEqual(5);
    // Message is a WireRaftMessage: no conversion on the way out.
    const decoded = decodeRaftMessages(encodeRaftMessages(sent));
    expect(decoded).toEqual(sent);
    expect(decoded.every(isRaftMessage)).toBe(true);
  });

  it('a message or entry type this version does not know is not a Raft message', () => {
    const base: WireRaftMessage = { type: MessageType.Append, from: 'n1', to: 'n2', term: 1, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0, context: 0 };
    expect(isRaftMessage(base)).toBe(true);
    expect(isRaftMessage({ ...base, type: 0 })).toBe(false);
    expect(isRaftMessage({ ...base, type: 200 })).toBe(false);
    const entry = { index: 1, term: 1, type: EntryType.Normal, data: new Uint8Array(0) };
    expect(isRaftMessage({ ...base, entries: [entry] })).toBe(true);
    expect(isRaftMessage({ ...base, entries: [entry, { ...entry, index: 2, type: 9 }] })).toBe(false);
  });
});
