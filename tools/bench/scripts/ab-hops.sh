#!/usr/bin/env bash
# Hop traces of put/get at 1 client on a private cluster (BENCH_BASE, default /tmp/peers-perf; BENCH_PORT, the port base, default 23000; BENCH_BUS=plain for an open bus), per variant.
# usage: tools/bench/scripts/ab-hops.sh REPO OUT DURATION name=CONSENSUS_JSON[@GATEWAY_SECTION_JSON] ...; docs/benchmarks.md "Async storage writes"
set -u
REPO=$1; OUT=$2; DUR=$3; shift 3
mkdir -p $OUT; cd $REPO
C="node apps/cli/dist/main.js"; BASE=${BENCH_BASE:-/tmp/peers-perf}; PORT=${BENCH_PORT:-23000}; G=127.0.0.1:$((PORT + 7380))
for v in "$@"; do
  name=${v%%=*}; json=${v#*=}; gw='{}'
  case $json in *@*) gw=${json#*@}; json=${json%%@*} ;; esac
  rm -rf $BASE $OUT/$name.hops; mkdir -p $BASE
  node tools/bench/scripts/bench-config.js $BASE $PORT "$json" '{}' "$gw"
  CAIRN_HOP_TRACE_DIR=$OUT/$name.hops node tools/cluster/dist/main.js --config $BASE/cairn.config.json > $OUT/$name.launcher.log 2>&1 &
  lpid=$!
  for i in $(seq 1 240); do $C -g $G ping --count 1 >/dev/null 2>&1 && break; sleep 0.5; done
  echo "== $name $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a $OUT/summary.txt
  for op in set get; do
    warm="--no-warmup-keys"; [ $op = get ] && warm="--warmup-keys"
    $C -g $G bench --op $op --clients 1 --duration $DUR --keyspace 2000 --value-size 256 $warm --json > $OUT/$name.$op.json 2>/dev/null
    node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")); console.log(process.argv[2], JSON.stringify({opsPerSec:r.opsPerSec??r.throughput, p50us:r.p50Us??r.latencyUs?.p50, p99us:r.p99Us??r.latencyUs?.p99, errors:r.errors}))' $OUT/$name.$op.json "$name $op c=1" | tee -a $OUT/summary.txt
  done
  kill -INT $lpid; wait $lpid
  node tools/bench/dist/hop-breakdown-summary.js $OUT/$name.hops > $OUT/$name.hops.txt 2>&1
done
