#!/usr/bin/env bash
# Idle CPU of every process of a fresh private cluster (no client at all): ms of CPU (utime+stime) per
# second of wall time, and the main thread's wake-ups (voluntary context switches) per second, over WINDOW seconds, sampled from /proc after `cairn ping` answers and SETTLE more
# seconds (start-up, elections, the first compaction checks are left out). BENCH_BASE / BENCH_PORT /
# BENCH_BUS as for ab-cpu.sh; docs/benchmarks.md "Consensus replicas' CPU".
# usage: tools/bench/scripts/idle-cpu.sh REPO OUT WINDOW_S ROUNDS name=CONSENSUS_JSON ...
set -u
REPO=$1; OUT=$2; WIN=$3; ROUNDS=$4; shift 4
. "$(dirname "${BASH_SOURCE[0]}")/cpu-ticks.sh" # before any cd: the path may be relative
mkdir -p $OUT; cd $REPO
C="node apps/cli/dist/main.js"; BASE=${BENCH_BASE:-/tmp/peers-perf}; PORT=${BENCH_PORT:-23000}; G=127.0.0.1:$((PORT + 7380))
HZ=$(getconf CLK_TCK)
for round in $(seq 1 $ROUNDS); do
for v in "$@"; do
  name=${v%%=*}; json=${v#*=}
  rm -rf $BASE; mkdir -p $BASE
  node tools/bench/scripts/bench-config.js $BASE $PORT "$json"
  node tools/cluster/dist/main.js --config $BASE/cairn.config.json > $OUT/$name.launcher.log 2>&1 &
  lpid=$!
  for i in $(seq 1 240); do $C -g $G ping --count 1 >/dev/null 2>&1 && break; sleep 0.5; done
  sleep ${SETTLE:-3}
  cpu_ticks $lpid > $OUT/cpu.before; wakeups $lpid > $OUT/wake.before; t0=$(date +%s.%N)
  sleep $WIN
  cpu_ticks $lpid > $OUT/cpu.after; wakeups $lpid > $OUT/wake.after; t1=$(date +%s.%N)
  cpu=$(awk -v hz=$HZ -v s=$(echo "$t1 - $t0" | bc) 'NR==FNR { b[$1]=$2; next } { printf " %s=%.0f", $1, ($2 - b[$1]) * 1000 / hz / s }' $OUT/cpu.before $OUT/cpu.after)
  wake=$(awk -v s=$(echo "$t1 - $t0" | bc) 'NR==FNR { b[$1]=$2; next } { printf " %s=%.0f", $1, ($2 - b[$1]) / s }' $OUT/wake.before $OUT/wake.after)
  echo "$name r$round idle ${WIN}s load $(cut -d' ' -f1 /proc/loadavg) cpu ms/s$cpu wake-ups/s$wake" | tee -a $OUT/summary.txt
  kill -INT $lpid; wait $lpid
done
done
