#!/usr/bin/env bash
# Big exports: convert of data dirs of 2 M, 27 M and 100 M samples against
# `promtool tsdb dump | prom2om convert -`, at the default shard count, --shards 4 and --shards 1;
# wall, CPU (user+sys) and peak RSS by /usr/bin/time -v; import --tsdb of the result; the
# --dry-run estimate first. Data dirs are built once and cached under target/scale/:
#   d2   700 series x 24 h at 30 s (2.0 M samples), backfilled by promtool
#   d27  9,490 series x 24 h at 30 s (27.3 M samples), backfilled by promtool
#   d100 9,490 series x 88 h at 30 s (100.2 M samples), written by prom2om's block writer,
#        one block per 2 h window
#        (`prom2om import --tsdb` of shards converted from the generated dump)
#   benches/scale.sh [d2 d27 d100]      (default: all three)
# Then the samples/s of the smallest and the largest set, alternating RUNS times (default 3,
# medians): on a shared machine the load changes within minutes. RATES=only skips the rest.
# Both sides use --stale keep (a dump prints markers and real NaN alike). The pipe gets a copy of
# the dir (promtool writes into what it dumps). PIPE=0 skips the pipe for d100 (about 7 minutes
# alone). Outputs are deleted after each measurement; samples/s of d2 and d100 are compared at
# the end, from this one run.
set -euo pipefail
cd "$(dirname "$0")/.."
W=$PWD/target/scale
mkdir -p "$W"
cargo build --quiet --release --features igzip --example gencorpus --bin prom2om
BIN=$PWD/target/release/prom2om
GEN=$PWD/target/release/examples/gencorpus
TIME=/usr/bin/time
SETS=("$@")
[ ${#SETS[@]} -eq 0 ] && SETS=(d2 d27 d100)
cleanup() { rm -rf "$W/out" "$W/pipe" "$W/copy" "$W/home" "$W/shards.tmp" "$W"/*.tmp; }
trap cleanup EXIT

# backfill NAME SERIES HOURS: a corpus backfilled by promtool into 2 h blocks.
backfill() {
  [ -d "$W/$1" ] && return
  $GEN --series "$2" --hours "$3" --interval-ms 30000 --format openmetrics > "$W/corpus.om"
  promtool tsdb create-blocks-from openmetrics -q "$W/corpus.om" "$W/$1.tmp" > /dev/null
  rm -f "$W/corpus.om"
  mkdir -p "$W/$1.tmp/wal"
  mv "$W/$1.tmp" "$W/$1"
}

# blockwrite NAME SERIES HOURS: the same written by prom2om's own block writer, one shard and so
# one block per 2 h window, as Prometheus's compaction leaves a data dir (blocks that overlap are
# read in one pass, see datadir/split.rs).
blockwrite() {
  [ -d "$W/$1" ] && return
  $GEN --series "$2" --hours "$3" --interval-ms 30000 --format dump \
    | "$BIN" convert -q --stale keep --shards 1 - -o "$W/shards.tmp"
  "$BIN" import "$W/shards.tmp" --tsdb "$W/$1.tmp" > /dev/null 2>&1
  rm -rf "$W/shards.tmp"
  mkdir -p "$W/$1.tmp/wal"
  mv "$W/$1.tmp" "$W/$1"
}

# One line of /usr/bin/time -v's report, by its label.
field() { grep -F "$1" "$2" | head -1 | awk -F': ' '{print $2}'; }
# Wall seconds from h:mm:ss or m:ss.
wall() { field "Elapsed (wall clock)" "$1" | awk -F: '{s=0; for(i=1;i<=NF;i++) s=s*60+$i; print s}'; }
cpu() { awk -v u="$(field "User time" "$1")" -v s="$(field "System time" "$1")" 'BEGIN{print u+s}'; }
rss() { echo $(( $(field "Maximum resident set size" "$1") / 1024 )); }
warm() { find "$1" -type f -exec cat {} + > /dev/null; }
shas() { (cd "$1" && sha256sum ./*.om.gz) | sha256sum | cut -c1-16; }
line() { printf '    %-44s %8.2f s wall %8.2f s CPU %6d MB peak RSS%s\n' "$1" "$(wall "$2")" "$(cpu "$2")" "$(rss "$2")" "${3:-}"; }

# run NAME DIR: every measurement of one data dir.
run() {
  local name=$1 dir=$2 samples
  warm "$dir"
  echo "$name: $(du -sm "$dir" | cut -f1) MB, $(find "$dir" -maxdepth 2 -name meta.json | wc -l) blocks; load: $(cut -d' ' -f1-3 /proc/loadavg)"
  $TIME -v -o "$W/t" "$BIN" convert --dry-run "$dir" -o "$W/out" | sed 's/^/    | /'
  line "convert --dry-run" "$W/t"
  for shards in default 4 1; do
    rm -rf "$W/out"
    local arg=()
    [ "$shards" != default ] && arg=(--shards "$shards")
    $TIME -v -o "$W/t" "$BIN" convert -q --stale keep "${arg[@]}" "$dir" -o "$W/out"
    local n sha
    n=$(ls "$W/out"/*.om.gz | wc -l)
    samples=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["totals"]["samples"])' "$W/out/manifest.json")
    line "convert DIR -o out ($shards shards)" "$W/t" \
      "; $n shards, $(awk -v s="$samples" -v t="$(wall "$W/t")" 'BEGIN{printf "%.2f", s/t/1e6}') M samples/s"
    if [ "$shards" = default ]; then
      echo "$name $samples $(wall "$W/t")" >> "$W/rates"
      sha=$(shas "$W/out")
      rm -rf "$W/home"
      $TIME -v -o "$W/t" "$BIN" import "$W/out" --tsdb "$W/home" > /dev/null 2>&1
      line "import out --tsdb home" "$W/t"
      rm -rf "$W/home"
      if [ "$name" != d100 ] || [ "${PIPE:-1}" = 1 ]; then
        rm -rf "$W/pipe" "$W/copy"
        cp -a "$dir" "$W/copy"
        warm "$W/copy"
        $TIME -v -o "$W/t" sh -c "promtool tsdb dump '$W/copy' | '$BIN' convert -q --stale keep - -o '$W/pipe'"
        local same="SHARDS DIFFER"
        [ "$(shas "$W/pipe")" = "$sha" ] && same="same shards (SHA-256)"
        line "promtool tsdb dump | prom2om convert -" "$W/t" "; $same"
        rm -rf "$W/pipe" "$W/copy"
      fi
    fi
  done
  rm -rf "$W/out"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(( $(grep MemTotal /proc/meminfo | awk '{print $2}') / 1048576 )) GiB; $(promtool --version 2>&1 | head -1)"
rm -f "$W/rates"
for s in "${SETS[@]}"; do
  case $s in
    d2) backfill d2 700 24 ;;
    d27) backfill d27 9490 24 ;;
    d100) blockwrite d100 9490 88 ;;
    *) echo "unknown set $s (d2, d27, d100)" >&2; exit 2 ;;
  esac
  [ "${RATES:-}" = only ] || run "$s" "$W/$s"
done
# rate NAME: one default convert of set NAME, appended to $W/rate.NAME as samples/s and CPU s.
rate() {
  rm -rf "$W/out"
  $TIME -v -o "$W/t" "$BIN" convert -q --stale keep "$W/$1" -o "$W/out"
  local samples
  samples=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["totals"]["samples"])' "$W/out/manifest.json")
  echo "$(awk -v s="$samples" -v t="$(wall "$W/t")" 'BEGIN{print s/t}') $(awk -v s="$samples" -v c="$(cpu "$W/t")" 'BEGIN{print s/c}')" >> "$W/rate.$1"
  rm -rf "$W/out"
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
small=${SETS[0]}; large=${SETS[${#SETS[@]}-1]}
if [ "$small" != "$large" ]; then
  rm -f "$W/rate.$small" "$W/rate.$large"
  for _ in $(seq "${RUNS:-3}"); do rate "$small"; rate "$large"; done
  rs=$(cut -d' ' -f1 "$W/rate.$small" | median); rl=$(cut -d' ' -f1 "$W/rate.$large" | median)
  cs=$(cut -d' ' -f2 "$W/rate.$small" | median); cl=$(cut -d' ' -f2 "$W/rate.$large" | median)
  awk -v s="$small" -v l="$large" -v rs="$rs" -v rl="$rl" -v cs="$cs" -v cl="$cl" -v load="$(cut -d' ' -f1-3 /proc/loadavg)" 'BEGIN {
    printf "samples/s, medians of alternating runs (load now %s):\n", load
    printf "  %s: %.2f M/s wall, %.2f M/s of CPU\n", s, rs/1e6, cs/1e6
    printf "  %s: %.2f M/s wall, %.2f M/s of CPU (%.2fx and %.2fx of %s)\n", l, rl/1e6, cl/1e6, rl/rs, cl/cs, s }'
fi
