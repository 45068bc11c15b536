#!/usr/bin/env bash
# CPU µs per op per process (utime+stime ticks of the launcher's children) and throughput, private cluster (/tmp/peers-perf, port base 23000), per variant.
# usage: tools/bench/scripts/ab-cpu.sh REPO OUT DURATION ROUNDS name=CONSENSUS_JSON[@GATEWAY_SECTION_JSON] ... (CLIENTS="1 16" and OP=set by default;
#   OP=get reads keys the bench writes first); docs/benchmarks.md "Async storage writes", "Linearizable reads: the read beside the ReadIndex round"
set -u
REPO=$1; OUT=$2; DUR=$3; ROUNDS=$4; shift 4
. "$(dirname "${BASH_SOURCE[0]}")/cpu-ticks.sh" # before any cd: the path may be relative
mkdir -p $OUT; cd $REPO
C="node apps/cli/dist/main.js"; BASE=/tmp/peers-perf; G=127.0.0.1:30380
for round in $(seq 1 $ROUNDS); do
for v in "$@"; do
  name=${v%%=*}; json=${v#*=}; gw='{}'
  case $json in *@*) gw=${json#*@}; json=${json%%@*} ;; esac
  rm -rf $BASE; mkdir -p $BASE
  node tools/bench/scripts/bench-config.js $BASE 23000 "$json" '{}' "$gw"
  node tools/cluster/dist/main.js --config $BASE/cairn.config.json > $OUT/$name.launcher.log 2>&1 &
  lpid=$!
  for i in $(seq 1 240); do $C -g $G ping --count 1 >/dev/null 2>&1 && break; sleep 0.5; done
  for cl in ${CLIENTS:-1 16}; do
    cpu_ticks $lpid > $OUT/cpu.before
    op=${OP:-set}; warm="--no-warmup-keys"; [ $op = get ] && warm="--warmup-keys"
    $C -g $G bench --op $op --clients $cl --duration $DUR --keyspace 2000 --value-size 256 $warm --json > $OUT/$name.json 2>/dev/null
    cpu_ticks $lpid > $OUT/cpu.after
    reqs=$(node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")); console.log(r.requests ?? 0)' $OUT/$name.json)
    line=$(node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")); console.log(JSON.stringify({opsPerSec:Math.round(r.opsPerSec??r.throughput), p50us:r.p50Us??r.latencyUs?.p50}))' $OUT/$name.json)
    cpu=$(awk -v r="${reqs:-0}" 'NR==FNR { b[$1]=$2; next } r > 0 { printf " %s=%d", $1, ($2 - b[$1]) * 10000 / r }' $OUT/cpu.before $OUT/cpu.after)
    echo "$name r$round $op c=$cl $line load $(cut -d' ' -f1 /proc/loadavg) cpu µs/op$cpu" | tee -a $OUT/summary.txt
  done
  kill -INT $lpid; wait $lpid
done
done
