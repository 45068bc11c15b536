#!/usr/bin/env bash
# CPU µs per op per process (utime+stime ticks of the launcher's children) and throughput, private cluster (BENCH_BASE, default /tmp/peers-perf; BENCH_PORT, the port base, default 23000; BENCH_BUS=plain for an open bus), per variant.
# usage: tools/bench/scripts/ab-cpu.sh REPO OUT DURATION ROUNDS name=CONSENSUS_JSON[@GATEWAY_SECTION_JSON] ... (CLIENTS="1 16" and OP=set by default;
#   OP=get reads keys written by an unmeasured 2 s warm-up that every variant runs first); docs/benchmarks.md "Async storage writes", "Linearizable reads: the read beside the ReadIndex round"
set -u
REPO=$1; OUT=$2; DUR=$3; ROUNDS=$4; shift 4
. "$(dirname "${BASH_SOURCE[0]}")/cpu-ticks.sh" # before any cd: the path may be relative
mkdir -p $OUT; cd $REPO
C="node apps/cli/dist/main.js"; BASE=${BENCH_BASE:-/tmp/peers-perf}; PORT=${BENCH_PORT:-23000}; G=127.0.0.1:$((PORT + 7380))
for round in $(seq 1 $ROUNDS); do
for v in "$@"; do
  name=${v%%=*}; json=${v#*=}; gw='{}'
  case $json in *@*) gw=${json#*@}; json=${json%%@*} ;; esac
  rm -rf $BASE; mkdir -p $BASE
  node tools/bench/scripts/bench-config.js $BASE $PORT "$json" '{}' "$gw"
  node tools/cluster/dist/main.js --config $BASE/cairn.config.json > $OUT/$name.launcher.log 2>&1 &
  lpid=$!
  for i in $(seq 1 240); do $C -g $G ping --count 1 >/dev/null 2>&1 && break; sleep 0.5; done
  # Unmeasured: load the key space and warm the JIT, so no point carries start-up or loading CPU.
  $C -g $G bench --op ${OP:-set} --clients 16 --duration 2s --keyspace 2000 --value-size 256 --warmup-keys > /dev/null 2>&1
  for cl in ${CLIENTS:-1 16}; do
    cpu_ticks $lpid > $OUT/cpu.before
    op=${OP:-set}
    $C -g $G bench --op $op --clients $cl --duration $DUR --keyspace 2000 --value-size 256 --no-warmup-keys --json > $OUT/$name.json 2>/dev/null
    cpu_ticks $lpid > $OUT/cpu.after
    reqs=$(node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")); console.log(r.requests ?? 0)' $OUT/$name.json)
    line=$(node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")); console.log(JSON.stringify({opsPerSec:Math.round(r.opsPerSec??r.throughput), p50us:r.p50Us??r.latencyUs?.p50}))' $OUT/$name.json)
    cpu=$(awk -v r="${reqs:-0}" 'NR==FNR { b[$1]=$2; next } r > 0 { printf " %s=%d", $1, ($2 - b[$1]) * 10000 / r }' $OUT/cpu.before $OUT/cpu.after)
    echo "$name r$round $op c=$cl $line load $(cut -d' ' -f1 /proc/loadavg) cpu µs/op$cpu" | tee -a $OUT/summary.txt
  done
  kill -INT $lpid; wait $lpid
done
done
