import { seededRandom } from '../random';
import { SimDisk } from './disk';
import { SimScheduler } from './scheduler';

/** A simulated disk on a fresh scheduler, and `d`: its view from process `p`'s first incarnation. */
function setup() {
  const sched = new SimScheduler(1);
  const disk = new SimDisk(sched, seededRandom(7));
  return { sched, disk, d: disk.view(sched.incarnation('p')) };
}

describe('SimDisk', () => {
  it('keeps fsynced data and loses unsynced writes on a crash', async () => {
    const { disk, sched, d } = setup();
    await d.mkdir('/data/x', { recursive: true });
    const f = await d.open('/data/x/f', 'w');
    await f.write(Buffer.from('durable'));
    await f.sync();
    await f.write(Buffer.from('-lost'));
    expect(d.readFileSync('/data/x/f').toString()).toBe('durable-lost');
    disk.crash();
    const after = disk.view(sched.incarnation('p'));
    expect(after.readFileSync('/data/x/f').toString()).toBe('durable');
    expect(await after.readdir('/data/x')).toEqual(['f']);
    expect(disk.stats.lostWrites).toBe(1);
  });

  it('fails fsync with EIO and writes with ENOSPC when those faults are on', async () => {
    const { disk, d } = setup();
    const f = await d.open('/f', 'w');
    disk.faults.enospcRate = 1;
    await expect(f.write(Buffer.from('x'))).rejects.toMatchObject({ code: 'ENOSPC' });
    disk.faults.enospcRate = 0;
    disk.faults.fsyncErrorRate = 1;
    await f.write(Buffer.from('x'));
    await expect(f.sync()).rejects.toMatchObject({ code: 'EIO' });
  });

  it('completes async operations after their latency on virtual time, never after the incarnation died', async () => {
    const { disk, sched } = setup();
    disk.faults.latencyMsMin = disk.faults.latencyMsMax = 5;
    const inc = sched.incarnation('p');
    const d = disk.view(inc);
    let done = false;
    void d.mkdir('/a').then(() => (done = true));
    await Promise.resolve();
    expect(done).toBe(false);
    sched.step();
    await new Promise((r) => setImmediate(r));
    expect(done).toBe(true);
    let late = false;
    void d.mkdir('/b').then(() => (late = true));
    inc.kill();
    while (sched.step());
    await new Promise((r) => setImmediate(r));
    expect(late).toBe(false);
    expect(() => d.statSync('/a')).toThrow(/process crashed/);
  });

  it('keeps a file across rename and link, and renames directories with their files', async () => {
    const { d } = setup();
    await d.mkdir('/s/tmp', { recursive: true });
    const f = await d.open('/s/tmp/a', 'wx');
    await f.writeFile(Buffer.from('abc'));
    await f.sync();
    await d.link('/s/tmp/a', '/s/tmp/b');
    await d.rename('/s/tmp', '/s/final');
    expect(d.readFileSync('/s/final/b').toString()).toBe('abc');
    await expect(d.open('/s/final/a', 'wx')).rejects.toMatchObject({ code: 'EEXIST' });
    await expect(d.readFile('/s/tmp/a')).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
