/**
 * CPU and rate of request/reply through Cairn's bus Transport (`natsTransport`, libs/messaging):
 * one process, a responder connection and a requester connection to one nats-server, N requests
 * of 300 bytes echoed back by `concurrency` loops. Prints JSON: CPU µs per request (both ends,
 * `process.cpuUsage`, robust to a busy box) and requests/s (wall: not robust to one).
 * docs/benchmarks.md "Coalesced publishes and own request/reply on the bus".
 *
 * Run (after `npx tsc -b tools/bench/tsconfig.build.json`; a nats-server listening, e.g.
 * `nats-server -p 14999 -a 127.0.0.1`):
 *   node tools/bench/dist/bus-bench.js [--server nats://127.0.0.1:14999] [--requests 20000] [--concurrency 64]
 */
import { connect } from 'nats';
import { natsTransport } from '@cairn/messaging';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
}

async function main(): Promise<void> {
  const server = arg('--server', 'nats://127.0.0.1:14999');
  const requests = Number(arg('--requests', '20000'));
  const concurrency = Number(arg('--concurrency', '64'));
  const responder = await connect({ servers: server, name: 'bus-bench-responder' });
  const requester = await connect({ servers: server, name: 'bus-bench-requester' });
  try {
    const rt = natsTransport(responder);
    const qt = natsTransport(requester);
    rt.subscribe('bus-bench.echo', (m) => m.respond(m.data));
    await responder.flush();
    const payload = new Uint8Array(300);
    for (let i = 0; i < 2000; i++) await qt.request('bus-bench.echo', payload, { timeoutMs: 5000 });
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next++ < requests) await qt.request('bus-bench.echo', payload, { timeoutMs: 5000 });
      }),
    );
    const cpu = process.cpuUsage(cpu0);
    const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
    process.stdout.write(`${JSON.stringify({ requests, concurrency, cpuUsPerRequest: +((cpu.user + cpu.system) / requests).toFixed(1), requestsPerSec: Math.round((requests / wallMs) * 1000) })}\n`);
  } finally {
    await responder.close();
    await requester.close();
  }
}

void main();
