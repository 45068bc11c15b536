#!/usr/bin/env bash
# `cairn import` of a TSV file on a private cluster (BENCH_BASE, default /tmp/peers-import; BENCH_PORT, the port base,
# default 24000; BENCH_BUS=plain for an open bus): rows/s and
# each process's CPU µs per row (utime+stime from /proc: the launcher's children and the CLI), per
# variant, variants alternated per round. A variant is a built tree (its cluster and its CLI) and
# settings merged into the config's gateway section: name=TREE[@GATEWAY_SECTION_JSON].
# usage: tools/bench/scripts/ab-import.sh FILE OUT ROUNDS name=TREE[@GATEWAY_SECTION_JSON] ...
#   PROF=1: every process (CLI included) also writes a --cpu-prof profile to OUT/NAME.rROUND.prof
#   (summarize with node tools/bench/dist/cpu-profile-summary.js); INFLIGHT: the CLI's --inflight; IMPORT_ARGS: more import options; VERIFY=1: then
#   `cairn verify` of the same file (its rc and counts on the summary line).
# docs/benchmarks.md "cairn import".
set -u
FILE=$(realpath "$1"); OUT=$(realpath -m "$2"); ROUNDS=$3; shift 3
. "$(dirname "${BASH_SOURCE[0]}")/cpu-ticks.sh"
SCRIPTS=$(realpath "$(dirname "${BASH_SOURCE[0]}")")
mkdir -p "$OUT"
BASE=${BENCH_BASE:-/tmp/peers-import}; PORT=${BENCH_PORT:-24000}; G=127.0.0.1:$((PORT + 7380))
rows=$(($(wc -l < "$FILE") - 1))
for round in $(seq 1 "$ROUNDS"); do
for v in "$@"; do
  name=${v%%=*}; tree=${v#*=}; gw='{}'
  case $tree in *@*) gw=${tree#*@}; tree=${tree%%@*} ;; esac
  rm -rf $BASE; mkdir -p $BASE
  (cd "$tree" && node "$SCRIPTS/bench-config.js" $BASE $PORT '{}' '{}' "$gw")
  prof=""; cliprof=""
  if [ "${PROF:-0}" = 1 ]; then
    prof="--cpu-prof $OUT/$name.r$round.prof"; mkdir -p "$OUT/$name.r$round.prof"
    cliprof="--cpu-prof --cpu-prof-dir $OUT/$name.r$round.prof --cpu-prof-name cli.cpuprofile"
  fi
  (cd "$tree" && exec node tools/cluster/dist/main.js --config $BASE/cairn.config.json $prof) > "$OUT/$name.launcher.log" 2>&1 &
  lpid=$!
  for i in $(seq 1 240); do node "$tree/apps/cli/dist/main.js" -g $G ping --count 1 >/dev/null 2>&1 && break; sleep 0.5; done
  cpu_ticks $lpid > "$OUT/cpu.before"
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  node $cliprof "$tree/apps/cli/dist/main.js" -g $G --json import "$FILE" ${INFLIGHT:+--inflight $INFLIGHT} ${IMPORT_ARGS:-} > "$OUT/$name.r$round.json" 2> "$OUT/$name.r$round.err" &
  cpid=$!
  cli=0
  # The CLI's own CPU, read from /proc just before it exits (polled; its last < 0.2 s is missed).
  while kill -0 $cpid 2>/dev/null; do
    t=$(awk '{ print $14 + $15 }' /proc/$cpid/stat 2>/dev/null) && [ -n "$t" ] && cli=$t
    sleep 0.2
  done
  wait $cpid; rc=$?
  cpu_ticks $lpid > "$OUT/cpu.after"
  echo "cli $cli" >> "$OUT/cpu.after"; echo "cli 0" >> "$OUT/cpu.before"
  line=$(node -e 'try { const r=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")); console.log(JSON.stringify({rows:r.rows, seconds:r.seconds, rowsPerSecond:r.rowsPerSecond})) } catch { console.log("no result") }' "$OUT/$name.r$round.json")
  cpu=$(awk -v r="$rows" 'NR==FNR { b[$1]=$2; next } { printf " %s=%.1f", $1, ($2 - b[$1]) * 10000 / r }' "$OUT/cpu.before" "$OUT/cpu.after")
  ver=""
  if [ "${VERIFY:-0}" = 1 ]; then node "$tree/apps/cli/dist/main.js" -g $G --json verify "$FILE" > "$OUT/$name.r$round.verify.json" 2>&1; ver=" verify rc=$? $(head -c 200 "$OUT/$name.r$round.verify.json")"; fi
  echo "$name r$round rc=$rc $line load $load cpu µs/row$cpu$ver" | tee -a "$OUT/summary.txt"
  kill -INT $lpid; wait $lpid
done
done
