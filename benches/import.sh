#!/usr/bin/env bash
# `prom2om import` of the shards of a 24 h dump against one `promtool tsdb create-blocks-from
# openmetrics` of the same data as a single file (what a user would run without prom2om), both
# with the real promtool. Checks that both data dirs hold the same number of samples.
#   benches/import.sh [SERIES] [HOURS]     (default 1000 series over 24 h at 30 s: 2.9 M samples)
# The corpus is reproducible (examples/gencorpus.rs prints dump text). Wall-clock times: on a
# shared machine run it more than once.
set -euo pipefail
cd "$(dirname "$0")/.."
SERIES=${1:-1000}
HOURS=${2:-24}
W=${BENCH_DIR:-$(mktemp -d /tmp/prom2om-import-bench.XXXX)}
mkdir -p "$W"
trap 'rm -rf "$W"' EXIT
command -v promtool >/dev/null || { echo "promtool not found: install Debian's prometheus package" >&2; exit 1; }
cargo build --quiet --release --example gencorpus --bin prom2om
BIN=target/release/prom2om
GEN=target/release/examples/gencorpus
# Runs "$@" (stdout dropped), sets WALL and CPU (user + sys of it and its children) in seconds.
measure() {
  /usr/bin/time -o "$W/time.txt" -f "%e %U %S" "$@" >/dev/null 2>"$W/stderr.txt" \
    || { cat "$W/stderr.txt" >&2; exit 1; }
  read -r WALL u s < "$W/time.txt"
  CPU=$(awk -v u="$u" -v s="$s" 'BEGIN{printf "%.2f", u+s}')
}
samples_in() { cat "$1"/*/meta.json | awk -F: '/numSamples/{gsub(/[ ,]/,"",$2); n+=$2} END{print n+0}'; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "promtool: $(promtool --version 2>&1 | head -1)"
$GEN --series "$SERIES" --hours "$HOURS" --interval-ms 30000 > "$W/corpus.dump"
$BIN convert -q "$W/corpus.dump" -o "$W/shards"
$BIN convert -q "$W/corpus.dump" -o - > "$W/single.om"
N=$(ls "$W"/shards/*.om.gz | wc -l)
echo "data: $SERIES series x ${HOURS}h at 30s: $(wc -l < "$W/corpus.dump") dump lines;" \
  "$N shards ($(du -sm "$W/shards" | cut -f1) MB gzip), single file $(( $(stat -c %s "$W/single.om") / 1000000 )) MB"

measure promtool tsdb create-blocks-from openmetrics -q "$W/single.om" "$W/data-single"
t_single=$WALL; c_single=$CPU
echo "promtool create-blocks-from openmetrics, one file: ${t_single} s (cpu ${c_single} s), $(samples_in "$W/data-single") samples"

measure "$BIN" import "$W/shards" --tsdb "$W/data-import"
t_import=$WALL; c_import=$CPU
echo "prom2om import --jobs $(nproc) (verify, checksums, counts): ${t_import} s (cpu ${c_import} s), $(samples_in "$W/data-import") samples"
[ "$(samples_in "$W/data-single")" = "$(samples_in "$W/data-import")" ] || { echo "sample counts differ" >&2; exit 1; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.1f", a/b}'; }
echo "speed-up: $(ratio "$t_single" "$t_import")x wall clock, $(ratio "$c_single" "$c_import")x less cpu; load after: $(cut -d' ' -f1-3 /proc/loadavg)"
