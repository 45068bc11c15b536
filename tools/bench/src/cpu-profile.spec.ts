import { ownerOf, summarize, type CpuProfile } from './cpu-profile';

describe('CPU profile summaries', () => {
  it('names the owner of a frame: GC, idle, Node, npm packages, Cairn libs and apps', () => {
    expect(ownerOf('(garbage collector)', '')).toBe('gc');
    expect(ownerOf('(idle)', '')).toBe('idle');
    expect(ownerOf('writeUtf8String', 'node:internal/stream_base_commons')).toBe('node');
    expect(ownerOf('publish', 'file:///w/node_modules/nats/lib/nats-base-client/protocol.js')).toBe('npm:nats');
    expect(ownerOf('Reflector', 'file:///w/node_modules/@nestjs/core/x.js')).toBe('npm:@nestjs/core');
    expect(ownerOf('encode', 'file:///w/node_modules/@cairn/protocol/dist/frames.js')).toBe('cairn:protocol');
    expect(ownerOf('loop', 'file:///w/apps/consensus/dist/replica/replica.js')).toBe('cairn:consensus');
    expect(ownerOf('x', '')).toBe('native');
  });

  it('counts each sample with the delta of the next one, leaves idle out, and sorts by self time', () => {
    const p: CpuProfile = {
      nodes: [
        { id: 1, callFrame: { functionName: '(idle)', url: '', lineNumber: -1 } },
        { id: 2, callFrame: { functionName: 'loop', url: 'file:///w/apps/consensus/dist/replica/replica.js', lineNumber: 9 } },
        { id: 3, callFrame: { functionName: '(garbage collector)', url: '', lineNumber: -1 } },
      ],
      startTime: 0,
      endTime: 1000,
      samples: [2, 2, 1, 3, 2],
      timeDeltas: [0, 100, 200, 300, 50],
    };
    // Sample 0 (loop) lasts 100, sample 1 (loop) 200, sample 2 (idle) 300, sample 3 (gc) 50, the last one has no successor.
    expect(summarize(p)).toEqual({
      wallUs: 1000,
      busyUs: 350,
      owners: [
        { name: 'cairn:consensus', selfUs: 300 },
        { name: 'gc', selfUs: 50 },
      ],
      functions: [
        { name: 'loop apps/consensus/dist/replica/replica.js:10', selfUs: 300 },
        { name: '(garbage collector)', selfUs: 50 },
      ],
    });
  });

  it('counts only the last lastUs µs when asked: the measured window without start-up', () => {
    const loop = { functionName: 'loop', url: 'file:///w/apps/consensus/dist/replica/replica.js', lineNumber: 9 };
    const load = { functionName: 'wrapSafe', url: 'node:internal/modules/cjs/loader', lineNumber: 1 };
    const p: CpuProfile = {
      nodes: [
        { id: 1, callFrame: load },
        { id: 2, callFrame: loop },
      ],
      startTime: 1000,
      endTime: 2000,
      samples: [1, 1, 2, 2, 2],
      timeDeltas: [0, 400, 200, 100, 100],
    };
    // Samples at 1000 (load, 400), 1400 (load, 200), 1600 (loop, 100), 1700 (loop, 100), 1800 (last, no successor).
    expect(summarize(p, 20, 500)).toEqual({
      wallUs: 500,
      busyUs: 200,
      owners: [{ name: 'cairn:consensus', selfUs: 200 }],
      functions: [{ name: 'loop apps/consensus/dist/replica/replica.js:10', selfUs: 200 }],
    });
    expect(summarize(p).busyUs).toBe(800);
  });

  it('refuses what is not a CPU profile', () => {
    expect(() => summarize({ nodes: [], startTime: 0, endTime: 0, samples: [1], timeDeltas: [] })).toThrow(TypeError);
  });
});
