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
# The binary as the release tarball builds it: gzip level 1 by igzip (the igzip feature).
cargo build --quiet --release --features igzip --example gencorpus --bin prom2om
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
$GEN --series "$SERIES" --hours "$HOURS" --interval-ms 30000 --order head > "$W/head.dump"
cat "$W/head.dump" > /dev/null
t=$(secs $BIN convert -q "$W/head.dump" -o "$W/shards-head")
same=$(cmp -s <(cd "$W/shards" && sha256sum ./*.om.gz) <(cd "$W/shards-head" && sha256sum ./*.om.gz) && echo "same shards" || echo "SHARDS DIFFER")
echo "convert -o DIR, series in head order (sorted, not streamed): $(printf %.2f "$t") s, $(mbps "$SIZE" "$t") MB/s ($same)"
rm -f "$W/head.dump"
t=$(secs $BIN convert -q "$W/corpus.dump" -o "$W/shards6" --compression-level 6)
echo "convert -o DIR (gzip level 6): $(printf %.2f "$t") s, $(mbps "$SIZE" "$t") MB/s, output $(du -sm "$W/shards6" | cut -f1) MB"
t=$(secs $BIN convert -q "$W/corpus.dump" -o - )
echo "convert -o - (one sorted stream): $(printf %.2f "$t") s, $(mbps "$SIZE" "$t") MB/s"
t=$(secs $BIN convert -q "$W/corpus.dump" -m 'no_such_metric' --allow-empty -o -)
echo "convert, every line filtered out: $(printf %.2f "$t") s, $(mbps "$SIZE" "$t") MB/s"
t=$(secs sh -c "python3 benches/baseline_convert.py < '$W/corpus.dump' | gzip -1 > '$W/py.om.gz'")
echo "python line-by-line + gzip -1: $(printf %.2f "$t") s, $(mbps "$SIZE" "$t") MB/s"

# The pipe from promtool: a TSDB of the same kind of data, smaller so backfill stays quick.
# promtool writes each line with its own write(2), so where its output goes matters: /dev/null is
# free, a file or a pipe is not. Runs alternate and medians are reported: one run of each is too
# noisy on a shared machine. "prom2om reading only" reads and drops every line: what any reader
# of the pipe costs promtool.
PS=$((SERIES / 3)); PH=$((HOURS / 2 > 0 ? HOURS / 2 : 1)); RUNS=${RUNS:-7}
$GEN --series "$PS" --hours "$PH" --interval-ms 30000 --format openmetrics > "$W/tsdb.om"
promtool tsdb create-blocks-from openmetrics -q "$W/tsdb.om" "$W/tsdb" >/dev/null
mkdir -p "$W/tsdb/wal"; rm -f "$W/tsdb.om" "$W/corpus.dump"
DSIZE=$(promtool tsdb dump "$W/tsdb" | wc -c)
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
: > "$W/null"; : > "$W/file"; : > "$W/read"; : > "$W/pipe"
for _ in $(seq "$RUNS"); do
  secs promtool tsdb dump "$W/tsdb" >> "$W/null"
  secs sh -c "promtool tsdb dump '$W/tsdb' > '$W/dump.txt'" >> "$W/file"
  rm -f "$W/dump.txt"
  secs sh -c "promtool tsdb dump '$W/tsdb' | $BIN convert -q -m no_such_metric --allow-empty -o -" >> "$W/read"
  secs sh -c "promtool tsdb dump '$W/tsdb' | $BIN convert -q -o '$W/piped' --force" >> "$W/pipe"
done
t_null=$(median < "$W/null"); t_file=$(median < "$W/file")
t_read=$(median < "$W/read"); t_pipe=$(median < "$W/pipe")
vs() { awk -v p="$1" -v d="$2" 'BEGIN{printf "%+.1f%%", 100*(p-d)/d}'; }
echo "promtool tsdb dump ($PS series x ${PH}h, $((DSIZE / 1000000)) MB), medians of $RUNS:"
echo "  > /dev/null:                     $(printf %.2f "$t_null") s, $(mbps "$DSIZE" "$t_null") MB/s"
echo "  > file:                          $(printf %.2f "$t_file") s ($(vs "$t_file" "$t_null") vs /dev/null)"
echo "  | prom2om reading only:          $(printf %.2f "$t_read") s ($(vs "$t_read" "$t_null") vs /dev/null)"
echo "  | prom2om convert -o DIR:        $(printf %.2f "$t_pipe") s ($(vs "$t_pipe" "$t_null") vs /dev/null, $(vs "$t_pipe" "$t_file") vs a file)"
