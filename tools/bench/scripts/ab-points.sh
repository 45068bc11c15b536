#!/usr/bin/env bash
# A/B of consensus settings on a private cluster (BENCH_BASE, default /tmp/peers-perf; BENCH_PORT, the port base, default 23000; BENCH_BUS=plain for an open bus).
# usage: ab.sh REPO OUT DUR ROUNDS name=json ...
set -u
REPO=$1; OUT=$2; DUR=$3; ROUNDS=$4; shift 4
mkdir -p $OUT; cd $REPO
C="node apps/cli/dist/main.js"; BASE=${BENCH_BASE:-/tmp/peers-perf}; PORT=${BENCH_PORT:-23000}; G=127.0.0.1:$((PORT + 7380))
for round in $(seq 1 $ROUNDS); do
for v in "$@"; do
  name=${v%%=*}; json=${v#*=}
  rm -rf $BASE; mkdir -p $BASE
  node tools/bench/scripts/bench-config.js $BASE $PORT "$json" '{}'
  node tools/cluster/dist/main.js --config $BASE/cairn.config.json > $OUT/$name.$round.launcher.log 2>&1 &
  lpid=$!
  for i in $(seq 1 240); do $C -g $G ping --count 1 >/dev/null 2>&1 && break; sleep 0.5; done
  echo "== $name round $round $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a $OUT/summary.txt
  first=1
  for opcl in set:1 set:16 set:128 get:1 get:128; do
    op=${opcl%%:*}; cl=${opcl##*:}
    warm="--no-warmup-keys"; [ $op = get ] && [ $first = 1 ] && warm="--warmup-keys" && first=0
    $C -g $G bench --op $op --clients $cl --duration $DUR --keyspace 20000 --value-size 256 $warm --json > $OUT/$name.$round.$op.$cl.json 2>$OUT/$name.$round.$op.$cl.err
    node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")); console.log(process.argv[2], JSON.stringify({opsPerSec:r.opsPerSec??r.throughput, p50us:r.p50Us??r.latencyUs?.p50, p99us:r.p99Us??r.latencyUs?.p99, errors:r.errors}))' $OUT/$name.$round.$op.$cl.json "$name $op c=$cl" | tee -a $OUT/summary.txt 2>&1
  done
  kill -INT $lpid; wait $lpid
done
done
