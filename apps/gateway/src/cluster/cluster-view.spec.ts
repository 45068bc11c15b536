import { ClusterView, STATUS_STALE_MS } from './cluster-view';

const consensus = (id: string, role: 'leader' | 'follower', term: number) => ({
  kind: 'consensus' as const, id, role, term, leaderId: role === 'leader' ? id : null, commitIndex: 0, lastIndex: 0, appliedIndex: 0, logBytes: 0, atMs: 0,
});
const storage = (id: string, appliedIndex: number) => ({ kind: 'storage' as const, id, appliedIndex, knownCommitIndex: 0, keys: 0, dataBytes: 0, atMs: 0 });

describe('ClusterView', () => {
  it('follows the leader with the highest term and forgets a leader that stepped down', () => {
    const v = new ClusterView();
    v.onConsensusStatus(consensus('c1', 'leader', 2));
    expect(v.leaderId()).toBe('c1');
    v.onConsensusStatus(consensus('c2', 'leader', 1)); // stale term: ignored
    expect(v.leaderId()).toBe('c1');
    v.onConsensusStatus(consensus('c1', 'follower', 3));
    expect(v.leaderId()).toBeNull();
    v.hintLeader('c3');
    expect(v.leaderId()).toBe('c3');
    v.suspectLeader('c3');
    expect(v.leaderId()).toBeNull();
  });

  it('wakes writers waiting for a leader when one is learnt', async () => {
    const v = new ClusterView();
    const waiting = v.waitForLeader(60_000);
    v.onConsensusStatus(consensus('c2', 'leader', 4));
    await waiting;
    expect(v.leaderId()).toBe('c2');
  });

  it('lists live storage nodes, most advanced first, and drops stale ones', () => {
    let now = 1000;
    const v = new ClusterView(() => now);
    v.onStorageStatus(storage('s1', 5));
    v.onStorageStatus(storage('s2', 9));
    expect(v.liveStorageNodes().map((s) => s.id)).toEqual(['s2', 's1']);
    v.noteApplied('s1', 12);
    expect(v.liveStorageNodes().map((s) => s.id)).toEqual(['s1', 's2']);
    now += STATUS_STALE_MS + 1;
    v.onStorageStatus(storage('s2', 9));
    expect(v.liveStorageNodes().map((s) => s.id)).toEqual(['s2']);
    expect(v.snapshot().storage.map((s) => s.ageMs)).toEqual([STATUS_STALE_MS + 1, 0]);
  });

  it('a replica whose heartbeats stopped is down since its last one, never the leader, whatever its last role', () => {
    let now = 5000;
    const v = new ClusterView(() => now);
    v.onConsensusStatus(consensus('c1', 'leader', 1));
    v.onConsensusStatus(consensus('c2', 'follower', 1));
    expect(v.leaderId()).toBe('c1');
    now += STATUS_STALE_MS + 1; // c1 was SIGKILLed: only c2 keeps sending
    v.onConsensusStatus(consensus('c2', 'follower', 1));
    expect(v.leaderId()).toBeNull();
    const snap = v.snapshot();
    expect(snap.leaderId).toBeNull();
    expect(snap.consensus.map(({ id, role, live, lastSeenAtMs, downSinceMs }) => ({ id, role, live, lastSeenAtMs, downSinceMs }))).toEqual([
      { id: 'c1', role: 'down', live: false, lastSeenAtMs: 5000, downSinceMs: 5000 },
      { id: 'c2', role: 'follower', live: true, lastSeenAtMs: now, downSinceMs: null },
    ]);
    // Back (restarted, heartbeats again): its current role, live again.
    v.onConsensusStatus(consensus('c1', 'leader', 1));
    expect(v.leaderId()).toBe('c1');
    expect(v.snapshot().consensus[0]).toMatchObject({ role: 'leader', live: true, downSinceMs: null });
  });

  it('watchLeader fires on proof the leader is gone (new leader, other role, NOT_LEADER / no responders), not on a mere timeout', async () => {
    const v = new ClusterView();
    v.onConsensusStatus(consensus('c1', 'leader', 1));
    const fired: string[] = [];
    const watch = (id: string) => void v.watchLeader(id).moved.then((why) => fired.push(`${id}: ${why}`));
    watch('c1');
    v.suspectLeader('c1'); // a timeout: c1 may just be slow
    v.onConsensusStatus(consensus('c1', 'leader', 1)); // its heartbeat: still leading
    await new Promise((r) => setImmediate(r));
    expect(fired).toEqual([]);
    v.suspectLeader('c1', 'no responders');
    watch('c2');
    v.onConsensusStatus(consensus('c2', 'follower', 2));
    const cancelled = v.watchLeader('c3');
    cancelled.cancel();
    v.hintLeader('c9');
    await new Promise((r) => setImmediate(r));
    expect(fired).toEqual(['c1: no responders', 'c2: replica c2 reports role follower (term 2)']);
  });
});
