// Gateway memory with clients that never read (docs/protocol.md, "Connection limits and backpressure").
// Usage, against a running cluster (npm start):
//   node apps/gateway/bench/never-read.js tlv|resp [seconds=60] [valueBytes=1024] [connections=1]
// Env: CAIRN_GATEWAY_PID (default: the first `apps/gateway/dist/main.js` process), CAIRN_TLV_PORT
// (7380), CAIRN_RESP_PORT (6380), CAIRN_MGET_KEYS (resp: MGET of that many copies of `k` instead of GET). SETs key `k` to valueBytes bytes, then each connection pipelines
// GETs of it without ever reading; prints the gateway's RSS while it does and after it closes.
const net = require('node:net');
const { execSync } = require('node:child_process');
const { encodeRequest, Opcode } = require('../../../libs/protocol/dist/index.js');

const [door = 'tlv', seconds = '60', valueBytes = '1024', connections = '1'] = process.argv.slice(2);
const tlvPort = Number(process.env.CAIRN_TLV_PORT ?? 7380);
const port = door === 'tlv' ? tlvPort : Number(process.env.CAIRN_RESP_PORT ?? 6380);
const pid = process.env.CAIRN_GATEWAY_PID ?? execSync("pgrep -f 'apps/gateway/dist/main.js' | head -1").toString().trim();
const rssMb = () => Math.round(Number(execSync(`ps -o rss= -p ${pid}`).toString().trim()) / 1024);
const tick = () => new Promise((r) => setTimeout(r, 1000));

async function main() {
  await new Promise((resolve) => {
    const s = net.connect(tlvPort, '127.0.0.1', () => s.write(encodeRequest({ opcode: Opcode.Set, requestId: 1, flags: 0, key: Buffer.from('k'), value: Buffer.alloc(Number(valueBytes), 97) })));
    s.once('data', () => resolve(s.destroy()));
  });
  console.log(`gateway pid ${pid}, baseline RSS ${rssMb()} MB`);
  const mgetKeys = Number(process.env.CAIRN_MGET_KEYS ?? 0);
  const resp = mgetKeys > 0 ? `*${mgetKeys + 1}\r\n$4\r\nMGET\r\n${'$1\r\nk\r\n'.repeat(mgetKeys)}` : '*2\r\n$3\r\nGET\r\n$1\r\nk\r\n';
  const get = door === 'tlv' ? encodeRequest({ opcode: Opcode.Get, requestId: 7, flags: 0, key: Buffer.from('k'), value: Buffer.alloc(0) }) : Buffer.from(resp);
  const batch = Buffer.concat(Array(1000).fill(get));
  let sent = 0;
  const sockets = [];
  for (let i = 0; i < Number(connections); i++) {
    const s = net.connect(port, '127.0.0.1');
    sockets.push(s);
    s.on('error', () => undefined);
    s.pause(); // never reads
    const more = () => {
      while (s.write(batch)) sent += 1000;
      sent += 1000;
    };
    s.on('connect', more);
    s.on('drain', more);
  }
  let peak = 0;
  for (let t = 1; t <= Number(seconds); t++) {
    await tick();
    peak = Math.max(peak, rssMb());
    if (t % 10 === 0) console.log(`t=${t}s GETs written by the client ${sent}, gateway RSS ${rssMb()} MB`);
  }
  console.log(`peak RSS ${peak} MB while the client never read`);
  for (const s of sockets) s.destroy();
  for (let t = 1; t <= 20; t++) {
    await tick();
    if (t % 10 === 0) console.log(`${t}s after close: gateway RSS ${rssMb()} MB`);
  }
}
main();
