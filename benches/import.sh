#!/usr/bin/env bash
# `prom2om import` of the shards of a 24 h dump, three ways, interleaved over REPS rounds:
#   writer    prom2om import (the default: prom2om writes the blocks itself, no promtool)
#   promtool  prom2om import --promtool (one `create-blocks-from openmetrics` per shard)
#   single    one `promtool tsdb create-blocks-from openmetrics` of the same data as one file
#             (what a user would run without prom2om)
# Checks that the three data dirs hold the same number of samples. Prints wall clock, CPU and
# peak RSS (/usr/bin/time %M) of each run, then the medians and the speed-ups.
#   benches/import.sh [SERIES] [HOURS] [REPS]   (default 1000 series over 24 h at 30 s: 2.9 M
#                                                samples; 3 rounds)
# The corpus is reproducible (examples/gencorpus.rs prints dump text). On a shared machine the
# load average is printed before each run.
set -euo pipefail
cd "$(dirname "$0")/.."
SERIES=${1:-1000}
HOURS=${2:-24}
REPS=${3:-3}
W=${BENCH_DIR:-$(mktemp -d /tmp/prom2om-import-bench.XXXX)}
mkdir -p "$W"
trap 'rm -rf "$W"' EXIT
command -v promtool >/dev/null || { echo "promtool not found: install Debian's prometheus package" >&2; exit 1; }
# The binary as the release tarball builds it: gzip level 1 by igzip (the igzip feature).
cargo build --quiet --release --features igzip --example gencorpus --bin prom2om
BIN=$PWD/target/release/prom2om
GEN=target/release/examples/gencorpus
# Runs "$@" (stdout dropped); sets WALL, CPU (user + sys of it and its children, s), RSS (MB).
measure() {
  /usr/bin/time -o "$W/time.txt" -f "%e %U %S %M" "$@" >/dev/null 2>"$W/stderr.txt" \
    || { cat "$W/stderr.txt" >&2; exit 1; }
  read -r WALL u s k < "$W/time.txt"
  CPU=$(awk -v u="$u" -v s="$s" 'BEGIN{printf "%.2f", u+s}')
  RSS=$(( k / 1024 ))
}
samples_in() { cat "$1"/*/meta.json | awk -F: '/numSamples/{gsub(/[ ,]/,"",$2); n+=$2} END{print n+0}'; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END{print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
load() { cut -d' ' -f1 /proc/loadavg; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "promtool: $(promtool --version 2>&1 | head -1)"
$GEN --series "$SERIES" --hours "$HOURS" --interval-ms 30000 > "$W/corpus.dump"
$BIN convert -q "$W/corpus.dump" -o "$W/shards"
$BIN convert -q "$W/corpus.dump" -o - > "$W/single.om"
rm "$W/corpus.dump"
N=$(ls "$W"/shards/*.om.gz | wc -l)
echo "data: $SERIES series x ${HOURS}h at 30s; $N shards ($(du -sm "$W/shards" | cut -f1) MB gzip)," \
  "single file $(( $(stat -c %s "$W/single.om") / 1000000 )) MB"

declare -a t_w c_w r_w t_p c_p r_p t_s c_s r_s
for rep in $(seq "$REPS"); do
  rm -rf "$W"/data-*
  l=$(load); measure env PATH=/nonexistent "$BIN" import "$W/shards" --tsdb "$W/data-writer"
  t_w+=("$WALL"); c_w+=("$CPU"); r_w+=("$RSS")
  echo "round $rep: writer    ${WALL} s (cpu ${CPU} s, peak RSS ${RSS} MB), load before $l"
  l=$(load); measure "$BIN" import "$W/shards" --tsdb "$W/data-promtool" --promtool
  t_p+=("$WALL"); c_p+=("$CPU"); r_p+=("$RSS")
  echo "round $rep: promtool  ${WALL} s (cpu ${CPU} s, peak RSS ${RSS} MB), load before $l"
  l=$(load); measure promtool tsdb create-blocks-from openmetrics -q "$W/single.om" "$W/data-single"
  t_s+=("$WALL"); c_s+=("$CPU"); r_s+=("$RSS")
  echo "round $rep: single    ${WALL} s (cpu ${CPU} s, peak RSS ${RSS} MB), load before $l"
  n_w=$(samples_in "$W/data-writer"); n_p=$(samples_in "$W/data-promtool"); n_s=$(samples_in "$W/data-single")
  [ "$n_w" = "$n_p" ] && [ "$n_w" = "$n_s" ] || { echo "sample counts differ: $n_w $n_p $n_s" >&2; exit 1; }
done
echo "samples in each data dir: $n_w"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.1f", a/b}'; }
mt_w=$(median "${t_w[@]}"); mt_p=$(median "${t_p[@]}"); mt_s=$(median "${t_s[@]}")
echo "medians of $REPS rounds (wall s / cpu s / peak RSS MB):"
echo "  prom2om import (writer, --jobs $(nproc)):   $mt_w / $(median "${c_w[@]}") / $(median "${r_w[@]}")"
echo "  prom2om import --promtool (--jobs $(nproc)): $mt_p / $(median "${c_p[@]}") / $(median "${r_p[@]}")"
echo "  promtool create-blocks-from, one file:   $mt_s / $(median "${c_s[@]}") / $(median "${r_s[@]}")"
echo "speed-up of the writer: $(ratio "$mt_p" "$mt_w")x over import --promtool, $(ratio "$mt_s" "$mt_w")x over one create-blocks-from; load after: $(cut -d' ' -f1-3 /proc/loadavg)"
