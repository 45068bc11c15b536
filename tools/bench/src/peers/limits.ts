import { build, type Histogram } from 'hdr-histogram-js';
import { spawn } from 'node:child_process';
import { closeSync, fdatasyncSync, openSync, rmSync, writeSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';

/** What the machine allows, measured in the same run as the stores (issue 14's "Limits"). */
export interface LimitResult {
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
}

/** Bytes of one append of the disk probe (a small Raft entry batch). */
export const FSYNC_PROBE_BYTES = 4096;
/** Bytes of one TCP ping. */
export const PING_BYTES = 64;

function histogram(): Histogram {
  return build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
}

/** Runs `step` one at a time for `durationMs`; its rate and latency percentiles. */
async function timed(durationMs: number, step: () => void | Promise<void>): Promise<LimitResult> {
  const h = histogram();
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < durationMs) {
    const t0 = performance.now();
    await step();
    h.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1000)));
    n++;
  }
  const seconds = (performance.now() - start) / 1000;
  const at = (p: number) => (h.totalCount === 0 ? 0 : Math.min(h.getValueAtPercentile(p), h.maxValue) / 1000);
  const r = { opsPerSec: n / seconds, p50Ms: at(50), p99Ms: at(99) };
  h.destroy();
  return r;
}

/**
 * 4 KiB appends to a file in `dir`, each followed by fdatasync, one at a time for `durationMs`:
 * the rate of durable writes one disk queue gives (every store here waits for at least one per
 * acknowledged write, except NATS with its default settings). Synchronous calls on purpose: no
 * thread-pool hop in the figure. @throws the file system's error
 */
export async function fsyncLimit(dir: string, durationMs: number): Promise<LimitResult> {
  const path = join(dir, 'fsync-probe');
  const fd = openSync(path, 'a');
  const buf = Buffer.alloc(FSYNC_PROBE_BYTES, 1);
  try {
    return await timed(durationMs, () => {
      writeSync(fd, buf);
      fdatasyncSync(fd);
    });
  } finally {
    closeSync(fd);
    rmSync(path, { force: true });
  }
}

/** An echo server in its own Node process on a free loopback port; the caller kills it. */
async function echoServer(register: (stop: () => Promise<void>) => void): Promise<number> {
  const code = "require('net').createServer((s) => s.pipe(s)).listen(0, '127.0.0.1', function () { console.log(this.address().port); })";
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  register(async () => {
    child.kill('SIGKILL');
    await exited;
  });
  const rl = createInterface({ input: child.stdout });
  for await (const line of rl) return Number(line);
  throw new Error('echo server exited before listening');
}

function pingOnce(sock: Socket, ping: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    let got = 0;
    const onData = (d: Buffer) => {
      got += d.length;
      if (got < ping.length) return;
      sock.off('data', onData).off('error', reject);
      resolve();
    };
    sock.on('data', onData).once('error', reject);
    sock.write(ping);
  });
}

/**
 * 64-byte ping-pongs over one loopback TCP connection to an echo server in another Node process,
 * one at a time for `durationMs`: the floor of any request/reply between two processes here.
 * `register` gets the server's stop (the caller's Ctrl-C path). @throws a socket error
 */
export async function pingPongLimit(durationMs: number, register: (stop: () => Promise<void>) => void): Promise<LimitResult> {
  const port = await echoServer(register);
  const sock = connect({ host: '127.0.0.1', port, noDelay: true });
  await new Promise<void>((resolve, reject) => sock.once('connect', resolve).once('error', reject));
  const ping = Buffer.alloc(PING_BYTES, 2);
  try {
    return await timed(durationMs, () => pingOnce(sock, ping));
  } finally {
    sock.destroy();
  }
}
