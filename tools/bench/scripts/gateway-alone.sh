#!/usr/bin/env bash
# One gateway alone (issue 14; docs/benchmarks.md "The gateway's CPU per request"): REPO's gateway on a stand-in
# cluster (fake-cluster.js: instant leader and storage node) over a private plain nats-server, so the gateway is the
# only real process on the path; its CPU µs per request from /proc ticks, per point, and the point's ops/s.
# usage: tools/bench/scripts/gateway-alone.sh REPO OUT [POINTS...]   (run from any directory; REPO built)
#   a point: tlv:set|tlv:get (`cairn bench`, CLIENTS=128 closed loop, DUR=5s, 2,000 keys, 256-byte values) or
#   rb:set|rb:get (redis-benchmark on the RESP door: -c CLIENTS_RB=50 -P PIPE=16, NREQ=100000 requests, 256-byte values);
#   default: rb:set rb:get tlv:set tlv:get. BENCH_BASE (default /tmp/gateway-alone), BENCH_PORT (default 26000).
set -u
REPO=$1; OUT=$2; shift 2
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd); SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd); cd "$REPO"
BASE=${BENCH_BASE:-/tmp/gateway-alone}; PORT=${BENCH_PORT:-26000}; NP=$((PORT + 4322)); G=127.0.0.1:$((PORT + 7380))
rm -rf "$BASE"; mkdir -p "$BASE/data"
printf 'host: 127.0.0.1\nport: %s\nmax_payload: 8388608\nmax_pending: 268435456\n' $NP > "$BASE/nats.conf"
nats-server -c "$BASE/nats.conf" > "$OUT/nats.log" 2>&1 & npid=$!
node -e '
const c = require(process.cwd() + "/cairn.config.json"); const p = Number(process.argv[1]); const base = process.argv[2];
Object.assign(c, { clusterName: "alone", dataDir: base + "/data", logLevel: "warn", nats: { servers: ["nats://127.0.0.1:" + (p + 4322)] } });
c.consensus.replicas = [{ id: "c1" }]; c.storage.nodes = [{ id: "s1" }];
c.gateway.gateways = [{ id: "g1", host: "127.0.0.1", port: p + 7380, httpPort: p + 8380, respPort: p + 6380 }];
require("fs").writeFileSync(base + "/cairn.config.json", JSON.stringify(c, null, 1));' $PORT "$BASE"
for i in $(seq 1 50); do (echo > /dev/tcp/127.0.0.1/$NP) 2>/dev/null && break; sleep 0.1; done
node "$SCRIPTS/fake-cluster.js" $NP alone > "$OUT/fake.log" 2>&1 & fpid=$!
node apps/gateway/dist/main.js --config "$BASE/cairn.config.json" --id g1 > "$OUT/gateway.log" 2>&1 & gpid=$!
C="node apps/cli/dist/main.js -g $G"
for i in $(seq 1 100); do $C ping --count 1 >/dev/null 2>&1 && break; sleep 0.3; done
# Unmeasured: the key space and the JIT warmed on both doors.
$C bench --op set --clients 16 --duration 2s --keyspace 2000 --value-size 256 --warmup-keys > /dev/null 2>&1
redis-benchmark -p $((PORT + 6380)) -t set,get -n 20000 -c 50 -d 256 -r 2000 -P 16 -q > /dev/null 2>&1
ticks() { awk '{ print $14 + $15 }' /proc/$1/stat; }
for p in ${@:-rb:set rb:get tlv:set tlv:get}; do
  g0=$(ticks $gpid)
  if [ "${p%%:*}" = rb ]; then
    line=$(redis-benchmark -p $((PORT + 6380)) -t ${p#*:} -n ${NREQ:-100000} -c ${CLIENTS_RB:-50} -d 256 -r 2000 -P ${PIPE:-16} -q 2>/dev/null | tr '\r' '\n' | grep 'requests per second' | tail -1)
    reqs=${NREQ:-100000}; what="redis-benchmark -P ${PIPE:-16} -c ${CLIENTS_RB:-50} ${p#*:}: $line"
  else
    $C bench --op ${p#*:} --clients ${CLIENTS:-128} --duration ${DUR:-5s} --keyspace 2000 --value-size 256 --no-warmup-keys --json > "$OUT/point.json" 2>/dev/null
    reqs=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).requests)' "$OUT/point.json")
    what="cairn bench ${p#*:} ${CLIENTS:-128} clients: $(node -e 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); console.log(Math.round(r.opsPerSec), "ops/s, p50", (r.latencyUs.p50 / 1000).toFixed(2), "ms")' "$OUT/point.json")"
  fi
  g1=$(ticks $gpid)
  echo "$what; load $(cut -d' ' -f1 /proc/loadavg); gateway CPU $(( (g1 - g0) * 10000 / reqs )) µs/request" | tee -a "$OUT/summary.txt"
done
kill -INT $gpid; wait $gpid; kill $fpid; wait $fpid; kill $npid; wait $npid
