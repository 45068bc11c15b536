#!/usr/bin/env bash
# Quiet-box measurement (issues 14 and 13): the local cluster in several configurations, cairn bench points.
# usage: tools/bench/scripts/variants.sh REPO OUTDIR DURATION [variants...]
#   variants: default serial (consensus.leaderAppendsInParallel false) lease (consensus.readLeaseMs 100)
#             tls (TLS on every door) auth (auth enabled) tlsauth (both) prof (--cpu-prof, 16 clients)
#             hops (CAIRN_HOP_TRACE_DIR: set and get at 1 client, then the hop-by-hop breakdown)
# Each variant: a fresh local cluster (launcher, bus with TLS + NKeys as npm start), cairn ping, then
# cairn bench set/get at 1, 16, 128 clients (256-byte values, 20,000 keys); OUTDIR/summary.txt.
# Every bench point also records the CPU each process used (utime + stime from /proc, 10 ms ticks)
# as µs per operation: "cpu µs/op c1=… c2=… g1=… s1=… nats=…" (the leader is the busiest c*).
# Needs a built tree (npx nx run-many -t build). docs/benchmarks.md "Write path, reads, TLS and auth".
set -u
REPO=$1; OUT=$2; DUR=${3:-10s}; shift 3
VARIANTS=${*:-default serial lease tlsauth prof}
. "$(dirname "${BASH_SOURCE[0]}")/cpu-ticks.sh" # before any cd: the path may be relative
mkdir -p "$OUT"
cd "$REPO"
C="node apps/cli/dist/main.js"
BASE=/tmp/cairn-perf
run_variant() {
  local name=$1 consensus_extra=$2 gateway_extra=$3 cli_extra=$4 launcher_extra=$5
  rm -rf $BASE; mkdir -p $BASE
  node tools/bench/scripts/bench-config.js $BASE 10000 "$consensus_extra" "$gateway_extra"
  local trace=""; [ "$name" = hops ] && rm -rf $OUT/hops && trace="CAIRN_HOP_TRACE_DIR=$OUT/hops"
  env $trace CAIRN_ROOT_PASSWORD=benchroot node tools/cluster/dist/main.js --config $BASE/cairn.config.json $launcher_extra > $OUT/$name.launcher.log 2>&1 &
  local lpid=$!
  for i in $(seq 1 120); do grep -q "gateway\|ready" $OUT/$name.launcher.log 2>/dev/null && $C -g 127.0.0.1:17380 $cli_extra ping --count 1 >/dev/null 2>&1 && break; sleep 0.5; done
  case $name in tlsauth|auth) $C -g 127.0.0.1:17380 $cli_extra auth enable --http 127.0.0.1:18380 >> $OUT/$name.launcher.log 2>&1; echo "auth enable: rc=$?" >> $OUT/summary.txt; $C -g 127.0.0.1:17380 $cli_extra auth status --http 127.0.0.1:18380 >> $OUT/summary.txt 2>&1; $C -g 127.0.0.1:17380 ${cli_extra/--user root:benchroot/} get nokey >> $OUT/summary.txt 2>&1; echo "anonymous get rc=$? (7 = refused, as it must be)" >> $OUT/summary.txt ;; esac
  echo "== $name $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a $OUT/summary.txt
  $C -g 127.0.0.1:17380 $cli_extra ping --count 1000 > $OUT/$name.ping.txt 2>&1
  grep -i "p50\|avg" $OUT/$name.ping.txt | head -2 >> $OUT/summary.txt
  local first=1
  for op in set get; do
    for cl in 1 16 128; do
      [ "$name" = prof ] && [ $cl != 16 ] && continue
      [ "$name" = hops ] && [ $cl != 1 ] && continue
      local warm="--no-warmup-keys"; [ $op = get ] && [ $first = 1 ] && warm="--warmup-keys" && first=0
      cpu_ticks $lpid > $OUT/cpu.before
      $C -g 127.0.0.1:17380 $cli_extra bench --op $op --clients $cl --duration $DUR --keyspace 20000 --value-size 256 $warm --json > $OUT/$name.$op.$cl.json 2>$OUT/$name.$op.$cl.err
      node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")); const p=(x)=>x===undefined?"?":x; console.log(process.argv[2], JSON.stringify({opsPerSec:r.opsPerSec??r.throughput, p50us:r.p50Us??r.latencyUs?.p50, p99us:r.p99Us??r.latencyUs?.p99, errors:r.errors, requests:r.requests}))' $OUT/$name.$op.$cl.json "$op c=$cl" >> $OUT/summary.txt 2>&1 || cat $OUT/$name.$op.$cl.json | head -c 400 >> $OUT/summary.txt
      cpu_ticks $lpid > $OUT/cpu.after
      local reqs; reqs=$(node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")); console.log(r.requests ?? 0)' $OUT/$name.$op.$cl.json 2>/dev/null || echo 0)
      awk -v r="${reqs:-0}" 'NR==FNR { b[$1]=$2; next } r > 0 { printf " %s=%d", $1, ($2 - b[$1]) * 10000 / r }' $OUT/cpu.before $OUT/cpu.after | sed "s/^/  cpu µs\/op/" >> $OUT/summary.txt; echo >> $OUT/summary.txt
    done
  done
  kill -INT $lpid; wait $lpid
  [ "$name" = hops ] && node tools/bench/dist/hop-breakdown-summary.js $OUT/hops | tee -a $OUT/summary.txt
  cp -r $BASE/data/logs $OUT/$name.logs 2>/dev/null
}
for v in $VARIANTS; do
  case $v in
    default) run_variant default '{}' '{}' '' '' ;;
    serial)  run_variant serial '{"leaderAppendsInParallel":false}' '{}' '' '' ;;
    lease)   run_variant lease '{"readLeaseMs":100}' '{}' '' '' ;;
    tlsauth) run_variant tlsauth '{}' "{\"tls\":{\"mode\":\"tls\",\"certFile\":\"$BASE/data/bus/nats-server.crt\",\"keyFile\":\"$BASE/data/bus/nats-server.key\"}}" "--tls --cacert $BASE/data/bus/ca.crt --user root:benchroot" '' ;;
    tls)     run_variant tls '{}' "{\"tls\":{\"mode\":\"tls\",\"certFile\":\"$BASE/data/bus/nats-server.crt\",\"keyFile\":\"$BASE/data/bus/nats-server.key\"}}" "--tls --cacert $BASE/data/bus/ca.crt" '' ;;
    auth)    run_variant auth '{}' '{}' "--user root:benchroot" '' ;;
    hops)    run_variant hops '{}' '{}' '' '' ;;
    prof)    rm -rf $OUT/prof; run_variant prof '{}' '{}' '' "--cpu-prof $OUT/prof" ;;
  esac
done
