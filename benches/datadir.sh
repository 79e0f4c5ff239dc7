#!/usr/bin/env bash
# Reading a Prometheus data dir directly against `promtool tsdb dump | prom2om convert -`: wall
# time and peak RSS (/usr/bin/time -v), shards checked equal by SHA-256, whole and with a selector
# keeping one metric family (promtool's own --match on its side). Two dirs:
#   blocks: the benchmark corpus (examples/gencorpus.rs) backfilled by promtool into 2 h blocks;
#   live:   a Prometheus 2.42 fed the corpus's series by remote write (examples/pushcorpus.rs)
#           and stopped: blocks plus hours of head (WAL segments, checkpoint, chunks_head).
#   benches/datadir.sh [SERIES] [HOURS] [LIVE_SERIES] [LIVE_HOURS]   (default 3000 24 2000 12)
# Both sides use --stale keep: a dump prints markers and real NaN alike, so only keeping every NaN
# gives the same shards from both. promtool writes into the dir it dumps: it gets a fresh copy
# each run (made outside the timing). Medians of RUNS (default 3) runs, page cache warm.
# With BENCH_DIR set, the two dirs are kept there and reused by the next run.
set -euo pipefail
cd "$(dirname "$0")/.."
SERIES=${1:-3000}
HOURS=${2:-24}
LSERIES=${3:-2000}
LHOURS=${4:-12}
RUNS=${RUNS:-3}
FAMILY=elasticsearch_os_load1
W=${BENCH_DIR:-$(mktemp -d /tmp/prom2om-datadir.XXXX)}
mkdir -p "$W"
PROM_PID=""
cleanup() {
  if [ -n "$PROM_PID" ]; then kill "$PROM_PID" 2>/dev/null || true; wait "$PROM_PID" 2>/dev/null || true; fi
  if [ -z "${BENCH_DIR:-}" ]; then rm -rf "$W"; else rm -rf "$W/out.dir" "$W/out.pipe" "$W/copy"; fi
}
trap cleanup EXIT
# The binary as the release tarball builds it: gzip level 1 by igzip (the igzip feature).
cargo build --quiet --release --features igzip --example gencorpus --example pushcorpus --bin prom2om
BIN=$PWD/target/release/prom2om
GEN=$PWD/target/release/examples/gencorpus
PUSH=$PWD/target/release/examples/pushcorpus
TIME=/usr/bin/time

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(promtool --version 2>&1 | head -1)"

# blocks: the corpus backfilled.
if [ ! -d "$W/blocks" ]; then
  $GEN --series "$SERIES" --hours "$HOURS" --interval-ms 30000 --format openmetrics > "$W/corpus.om"
  promtool tsdb create-blocks-from openmetrics -q "$W/corpus.om" "$W/blocks.tmp" > /dev/null
  mkdir -p "$W/blocks.tmp/wal"
  mv "$W/blocks.tmp" "$W/blocks"
  rm -f "$W/corpus.om"
fi

# live: a real server fed by remote write, then stopped with SIGTERM as an operator would.
if [ ! -d "$W/live" ]; then
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  printf 'global:\n  scrape_interval: 15s\nscrape_configs: []\n' > "$W/prometheus.yml"
  prometheus --config.file="$W/prometheus.yml" --storage.tsdb.path="$W/live.tmp" \
    --storage.tsdb.retention.time=100y --web.enable-remote-write-receiver \
    --web.listen-address="127.0.0.1:$PORT" > "$W/prometheus.log" 2>&1 &
  PROM_PID=$!
  for _ in $(seq 300); do
    curl -sf "http://127.0.0.1:$PORT/-/ready" > /dev/null && break
    sleep 0.2
  done
  $PUSH --url "http://127.0.0.1:$PORT" --series "$LSERIES" --hours "$LHOURS" --interval-ms 15000
  sleep 2  # let a compaction the last push triggered finish
  kill -TERM "$PROM_PID"; wait "$PROM_PID" || true; PROM_PID=""
  mv "$W/live.tmp" "$W/live"
fi

describe() {
  local d=$1
  local blocks segs cps heads
  blocks=$(find "$d" -maxdepth 2 -name meta.json | wc -l)
  segs=$(find "$d/wal" -maxdepth 1 -type f -name '0*' | wc -l)
  cps=$(find "$d/wal" -maxdepth 1 -type d -name 'checkpoint.*' | wc -l)
  heads=$(find "$d/chunks_head" -type f 2>/dev/null | wc -l)
  echo "$(du -sm "$d" | cut -f1) MB: $blocks blocks, $segs WAL segments, $cps checkpoint, $heads chunks_head files"
}

# Seconds since $1 (an $EPOCHREALTIME), to the millisecond: /usr/bin/time's %e has 10 ms steps.
secs() { local b=$EPOCHREALTIME; awk -v a="$1" -v b="$b" 'BEGIN { printf "%.3f\n", b - a }'; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
warm() { find "$1" -type f -exec cat {} + > /dev/null; }
shas() { (cd "$1" && sha256sum ./*.om.gz); }

# bench NAME DIR [SELECTOR]: prints the two contenders' medians and the speedup.
bench() {
  local name=$1 dir=$2 sel=${3:-}
  local dsel=() pm=""
  if [ -n "$sel" ]; then dsel=(-m "$sel"); pm="--match='$sel'"; fi
  : > "$W/t.dir"; : > "$W/t.pipe"; : > "$W/r.dir"; : > "$W/r.dump"; : > "$W/r.conv"
  for _ in $(seq "$RUNS"); do
    rm -rf "$W/out.dir" "$W/out.pipe" "$W/copy"
    warm "$dir"
    t0=$EPOCHREALTIME
    $TIME -f '%M' -o "$W/m" "$BIN" convert -q --stale keep "${dsel[@]}" "$dir" -o "$W/out.dir"
    secs "$t0" >> "$W/t.dir"; cat "$W/m" >> "$W/r.dir"
    cp -a "$dir" "$W/copy"
    warm "$W/copy"
    t0=$EPOCHREALTIME
    sh -c "$TIME -f %M -o '$W/m1' promtool tsdb dump $pm '$W/copy' | $TIME -f %M -o '$W/m2' '$BIN' convert -q --stale keep - -o '$W/out.pipe'"
    secs "$t0" >> "$W/t.pipe"; cat "$W/m1" >> "$W/r.dump"; cat "$W/m2" >> "$W/r.conv"
    rm -rf "$W/copy"
  done
  local same="SHARDS DIFFER"
  if cmp -s <(shas "$W/out.dir") <(shas "$W/out.pipe"); then same="same shards, SHA-256"; fi
  local td tp
  td=$(median < "$W/t.dir"); tp=$(median < "$W/t.pipe")
  printf '  %s:\n' "$name"
  printf '    prom2om convert DIR -o D:                     %7.3f s, peak RSS %4d MB\n' \
    "$td" "$(( $(median < "$W/r.dir") / 1024 ))"
  printf '    promtool tsdb dump%s | prom2om convert -:  %7.3f s, peak RSS %4d MB (promtool) + %d MB (prom2om)\n' \
    "$( [ -n "$sel" ] && echo ' --match' || echo '        ')" "$tp" \
    "$(( $(median < "$W/r.dump") / 1024 ))" "$(( $(median < "$W/r.conv") / 1024 ))"
  printf '    %s; %d shards; speedup %.1fx\n' "$same" "$(ls "$W/out.dir"/*.om.gz | wc -l)" \
    "$(awk -v a="$tp" -v b="$td" 'BEGIN{print a/(b>0?b:0.001)}')"
}

echo "blocks ($SERIES series x ${HOURS}h at 30 s, backfilled): $(describe "$W/blocks")"
bench "whole" "$W/blocks"
bench "one family ($FAMILY)" "$W/blocks" "$FAMILY"
echo "live ($LSERIES series x ${LHOURS}h at 15 s by remote write, server stopped): $(describe "$W/live")"
bench "whole" "$W/live"
bench "one family ($FAMILY)" "$W/live" "$FAMILY"
