#!/usr/bin/env bash
# Memory after a bulk import (issue 14, "Bounded memory"): a fresh local cluster (launcher, bus with
# TLS + NKeys as npm start), `cairn import` of ROWS rows, then the RSS of every process.
# usage: tools/bench/scripts/import-rss.sh REPO OUTDIR [ROWS] [CONSENSUS_JSON] [IMPORT_ARGS]
#   ROWS (default 1000000): rows made from ../shared/data/npm-packages.tsv, round r's keys prefixed
#   "r/" (so every row is a distinct key; values are the real rows). CONSENSUS_JSON is merged into
#   the config's consensus section (e.g. '{"logCacheBytesMax":67108864}'). RSS is read from ps
#   right after the import, and again 10 s later. Needs a built tree. docs/benchmarks.md "Memory".
set -u
REPO=$1; OUT=$2; ROWS=${3:-1000000}; CONS=${4:-'{}'}; IMPORT_ARGS=${5:-}
mkdir -p "$OUT"; cd "$REPO"
C="node apps/cli/dist/main.js -g 127.0.0.1:28380"
BASE=${CAIRN_RSS_BASE:-/tmp/cairn-rss}
DATA=$(cd "$REPO" && ls ../shared/data/npm-packages.tsv 2>/dev/null || ls /work/shared/data/npm-packages.tsv)
ROWFILE=$BASE-rows.$ROWS.tsv
if [ ! -s "$ROWFILE" ]; then
  node -e '
    const fs = require("fs"); const [src, dst, n] = [process.argv[1], process.argv[2], Number(process.argv[3])];
    const lines = fs.readFileSync(src, "utf8").split("\n").slice(1).filter((l) => l.includes("\t"));
    const out = fs.createWriteStream(dst); let k = 0;
    (async () => { for (let r = 0; k < n; r++) for (const l of lines) { if (k++ >= n) break; if (!out.write(r + "/" + l + "\n")) await new Promise((f) => out.once("drain", f)); } out.end(); })();
  ' "$DATA" "$ROWFILE" "$ROWS"
fi
rm -rf $BASE; mkdir -p $BASE
node tools/bench/scripts/bench-config.js $BASE 21000 "$CONS"
# /metrics of every process (heap figures): replicas on 29101.., storage nodes on 29201.., the gateway on its HTTP port.
node -e '
  const f = process.argv[1]; const c = JSON.parse(require("fs").readFileSync(f, "utf8"));
  c.consensus.replicas.forEach((r, i) => (r.metricsPort = 29101 + i));
  c.storage.nodes.forEach((n, i) => (n.metricsPort = 29201 + i));
  require("fs").writeFileSync(f, JSON.stringify(c, null, 1));
' $BASE/cairn.config.json
node tools/cluster/dist/main.js --config $BASE/cairn.config.json > $OUT/launcher.log 2>&1 &
lpid=$!
for i in $(seq 1 120); do $C ping --count 1 >/dev/null 2>&1 && break; sleep 0.5; done
heap() { curl -s --max-time 5 http://127.0.0.1:$1/metrics | awk '/^nodejs_heap_size_used_bytes /{u=$2} /^nodejs_heap_size_total_bytes /{t=$2} /^nodejs_external_memory_bytes /{e=$2} END { printf "heap used %.0f MB of %.0f MB, external %.0f MB", u/1048576, t/1048576, e/1048576 }'; }
rss() {
  echo "-- $1"
  ps -o pid=,rss=,args= --ppid $lpid | awk '{ id="?"; for (i=3;i<=NF;i++) if ($i=="--id") id=$(i+1); if ($3 ~ /nats-server/) id="nats-server"; printf "%s %.0f MB\n", id, $2/1024 }' | sort
  for p in 29101 29102 29103 29201 29202 29380; do echo "  :$p $(heap $p)"; done
}
{ echo "== rows $ROWS consensus $CONS $(date -u +%FT%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"; rss "RSS after start"; } | tee -a $OUT/summary.txt
# One SET per row (one log entry each: the figure is memory after ROWS writes), unless IMPORT_ARGS says otherwise.
$C import $ROWFILE --rows-per-txn 1 $IMPORT_ARGS 2>$OUT/import.err | tee -a $OUT/summary.txt
rss "RSS right after the import" | tee -a $OUT/summary.txt
sleep 10
rss "RSS 10 s later" | tee -a $OUT/summary.txt
$C status >> $OUT/summary.txt 2>&1
du -sb $BASE/data/* | tee -a $OUT/summary.txt
kill -INT $lpid; wait $lpid
