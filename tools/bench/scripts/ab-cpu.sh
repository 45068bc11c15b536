#!/usr/bin/env bash
# CPU µs per put per process (utime+stime ticks of the launcher's children) and put throughput, private cluster (/tmp/peers-perf, port base 23000), per variant.
# usage: tools/bench/scripts/ab-cpu.sh REPO OUT DURATION ROUNDS name=CONSENSUS_JSON ... (CLIENTS="1 16" by default); docs/benchmarks.md "Async storage writes"
set -u
REPO=$1; OUT=$2; DUR=$3; ROUNDS=$4; shift 4
. "$(dirname "${BASH_SOURCE[0]}")/cpu-ticks.sh" # before any cd: the path may be relative
mkdir -p $OUT; cd $REPO
C="node apps/cli/dist/main.js"; BASE=/tmp/peers-perf; G=127.0.0.1:30380
for round in $(seq 1 $ROUNDS); do
for v in "$@"; do
  name=${v%%=*}; json=${v#*=}
  rm -rf $BASE; mkdir -p $BASE
  node tools/bench/scripts/bench-config.js $BASE 23000 "$json" '{}'
  node tools/cluster/dist/main.js --config $BASE/cairn.config.json > $OUT/$name.launcher.log 2>&1 &
  lpid=$!
  for i in $(seq 1 240); do $C -g $G ping --count 1 >/dev/null 2>&1 && break; sleep 0.5; done
  for cl in ${CLIENTS:-1 16}; do
    cpu_ticks $lpid > $OUT/cpu.before
    $C -g $G bench --op set --clients $cl --duration $DUR --keyspace 2000 --value-size 256 --no-warmup-keys --json > $OUT/$name.json 2>/dev/null
    cpu_ticks $lpid > $OUT/cpu.after
    reqs=$(node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")); console.log(r.requests ?? 0)' $OUT/$name.json)
    line=$(node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")); console.log(JSON.stringify({opsPerSec:Math.round(r.opsPerSec??r.throughput), p50us:r.p50Us??r.latencyUs?.p50}))' $OUT/$name.json)
    cpu=$(awk -v r="${reqs:-0}" 'NR==FNR { b[$1]=$2; next } r > 0 { printf " %s=%d", $1, ($2 - b[$1]) * 10000 / r }' $OUT/cpu.before $OUT/cpu.after)
    echo "$name r$round set c=$cl $line load $(cut -d' ' -f1 /proc/loadavg) cpu µs/op$cpu" | tee -a $OUT/summary.txt
  done
  kill -INT $lpid; wait $lpid
done
done
