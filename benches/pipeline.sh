#!/usr/bin/env bash
# Whole-pipeline figures for the README: convert throughput with gzip shards, filtered-out lines,
# the Python line-by-line baseline (+ gzip), and `promtool tsdb dump | prom2om convert` against
# `promtool tsdb dump` alone. Reproducible: the corpus comes from examples/gencorpus.rs.
#   benches/pipeline.sh [SERIES] [HOURS]      (default 3000 series over 24 h, 30 s interval)
set -euo pipefail
cd "$(dirname "$0")/.."
SERIES=${1:-3000}
HOURS=${2:-24}
W=${BENCH_DIR:-$(mktemp -d /tmp/prom2om-bench.XXXX)}
mkdir -p "$W"
trap 'rm -rf "$W"' EXIT
cargo build --quiet --release --example gencorpus --bin prom2om
BIN=target/release/prom2om
GEN=target/release/examples/gencorpus
secs() { local s=$(date +%s.%N); "$@" >/dev/null; awk -v a="$s" -v b="$(date +%s.%N)" 'BEGIN{print b-a}'; }
mbps() { awk -v n="$1" -v t="$2" 'BEGIN{printf "%d", n/1e6/t}'; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
$GEN --series "$SERIES" --hours "$HOURS" --interval-ms 30000 > "$W/corpus.dump"
SIZE=$(stat -c %s "$W/corpus.dump")
LINES=$(wc -l < "$W/corpus.dump")
echo "corpus: $SERIES series x ${HOURS}h at 30s: $LINES lines, $((SIZE / 1000000)) MB"
cat "$W/corpus.dump" > /dev/null  # warm the page cache for every contender alike

t=$(secs $BIN convert -q "$W/corpus.dump" -o "$W/shards")
echo "convert -o DIR (gzip level 1): $(printf %.2f "$t") s, $(mbps "$SIZE" "$t") MB/s, output $(du -sm "$W/shards" | cut -f1) MB"
t=$(secs $BIN convert -q "$W/corpus.dump" -o "$W/shards6" --compression-level 6)
echo "convert -o DIR (gzip level 6): $(printf %.2f "$t") s, $(mbps "$SIZE" "$t") MB/s, output $(du -sm "$W/shards6" | cut -f1) MB"
t=$(secs $BIN convert -q "$W/corpus.dump" -o - )
echo "convert -o - (one sorted stream): $(printf %.2f "$t") s, $(mbps "$SIZE" "$t") MB/s"
t=$(secs $BIN convert -q "$W/corpus.dump" -m 'no_such_metric' -o -)
echo "convert, every line filtered out: $(printf %.2f "$t") s, $(mbps "$SIZE" "$t") MB/s"
t=$(secs sh -c "python3 benches/baseline_convert.py < '$W/corpus.dump' | gzip -1 > '$W/py.om.gz'")
echo "python line-by-line + gzip -1: $(printf %.2f "$t") s, $(mbps "$SIZE" "$t") MB/s"

# The pipe from promtool: a TSDB of the same kind of data, smaller so backfill stays quick.
PS=$((SERIES / 3)); PH=$((HOURS / 4 > 0 ? HOURS / 4 : 1))
$GEN --series "$PS" --hours "$PH" --interval-ms 30000 --format openmetrics > "$W/tsdb.om"
promtool tsdb create-blocks-from openmetrics -q "$W/tsdb.om" "$W/tsdb" >/dev/null
mkdir -p "$W/tsdb/wal"; rm -f "$W/tsdb.om"
promtool tsdb dump "$W/tsdb" > /dev/null
t_dump=$(secs promtool tsdb dump "$W/tsdb")
DSIZE=$(promtool tsdb dump "$W/tsdb" | wc -c)
t_pipe=$(secs sh -c "promtool tsdb dump '$W/tsdb' | $BIN convert -q -o '$W/piped'")
echo "promtool tsdb dump alone ($PS series x ${PH}h, $((DSIZE / 1000000)) MB): $(printf %.2f "$t_dump") s, $(mbps "$DSIZE" "$t_dump") MB/s"
echo "promtool tsdb dump | prom2om convert -o DIR: $(printf %.2f "$t_pipe") s ($(awk -v p="$t_pipe" -v d="$t_dump" 'BEGIN{printf "%.1f", 100*(p-d)/d}')% over the dump alone)"
