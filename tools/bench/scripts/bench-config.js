// A copy of cairn.config.json for a benchmark cluster under BASE (the scripts next to this file):
// its own data directory, NATS port and gateway ports, warn-level logs, the launcher's TLS + NKey
// bus, CONSENSUS_JSON merged into the consensus section, GATEWAY_JSON into gateway g1 and
// GATEWAY_SECTION_JSON into the gateway section (e.g. '{"readAlongsideReadIndex":false}').
// usage: [BENCH_BUS=plain] node tools/bench/scripts/bench-config.js BASE PORT_BASE [CONSENSUS_JSON] [GATEWAY_JSON] [GATEWAY_SECTION_JSON]
//   NATS on PORT_BASE+4322, the gateway on PORT_BASE+7380 (HTTP +8380, RESP +6380); run from the repo root.
const [base, portBase, consensus = '{}', gateway = '{}', gatewaySection = '{}'] = process.argv.slice(2);
const p = Number(portBase);
const c = require(process.cwd() + '/cairn.config.json');
c.dataDir = base + '/data';
c.logLevel = 'warn';
c.nats.servers = [`nats://127.0.0.1:${p + 4322}`];
for (const k of Object.keys(c.nats.credentials)) c.nats.credentials[k].seedFile = `${c.dataDir}/bus/${k}.nk`;
c.nats.tls = { caFile: `${c.dataDir}/bus/ca.crt`, certFile: `${c.dataDir}/bus/client.crt`, keyFile: `${c.dataDir}/bus/client.key` };
// BENCH_BUS=plain: an open bus without TLS or NKeys, to measure what the bus's security costs.
if (process.env.BENCH_BUS === 'plain') { delete c.nats.tls; delete c.nats.credentials; }
Object.assign(c.consensus, JSON.parse(consensus));
Object.assign(c.gateway, JSON.parse(gatewaySection));
c.gateway.gateways = [Object.assign({ id: 'g1', host: '127.0.0.1', port: p + 7380, httpPort: p + 8380, respPort: p + 6380 }, JSON.parse(gateway))];
require('fs').writeFileSync(base + '/cairn.config.json', JSON.stringify(c, null, 1));
