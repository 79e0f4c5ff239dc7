#!/usr/bin/env bash
# `prom2om import --remote-write` of the shards of a 24 h corpus into a local VictoriaMetrics,
# against `vmctl prometheus` (VictoriaMetrics' own migration tool, Debian package
# `victoria-metrics`) moving the same data, as a TSDB built by promtool, into a fresh one.
# Both receivers are asked afterwards how many samples they hold.
#   benches/remote_write.sh [SERIES] [HOURS] [BATCH...]   (default 1000 series over 24 h at 30 s:
#                                                          2.9 M samples; batch 10000)
# Several BATCH values push once per value, each into a fresh VictoriaMetrics. Wall-clock times:
# on a shared machine run it more than once.
set -euo pipefail
cd "$(dirname "$0")/.."
SERIES=${1:-1000}
HOURS=${2:-24}
shift 2 2>/dev/null || shift $#
BATCHES=("${@:-10000}")
W=${BENCH_DIR:-$(mktemp -d /tmp/prom2om-rw-bench.XXXX)}
mkdir -p "$W"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$W"; }
trap cleanup EXIT
for t in promtool victoria-metrics vmctl script; do
  command -v $t >/dev/null || { echo "$t not found: install Debian's prometheus and victoria-metrics" >&2; exit 1; }
done
cargo build --quiet --release --example gencorpus --bin prom2om
BIN=target/release/prom2om
GEN=target/release/examples/gencorpus
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Starts a VictoriaMetrics on a free port with storage in $W/$1; sets PORT.
start_vm() {
  PORT=$(free_port)
  victoria-metrics -httpListenAddr=127.0.0.1:$PORT -storageDataPath="$W/$1" -retentionPeriod=100y \
    -search.disableCache >"$W/$1.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && return; sleep 0.1; done
  echo "victoria-metrics did not start" >&2; exit 1
}
# Samples VictoriaMetrics at $1 holds, once two counts a second apart agree.
samples_in() {
  local last=-1 n
  while true; do
    curl -s "http://127.0.0.1:$1/internal/force_flush" >/dev/null
    n=$(curl -s "http://127.0.0.1:$1/api/v1/export" -d 'match[]={__name__!=""}' -d start=0 \
      | python3 -c 'import sys,json; print(sum(len(json.loads(l.replace("NaN","0").replace("+Inf","0").replace("-Inf","0"))["values"]) for l in sys.stdin))')
    [ "$n" = "$last" ] && { echo "$n"; return; }
    last=$n; sleep 1
  done
}
measure() {
  /usr/bin/time -o "$W/time.txt" -f "%e %U %S" "$@" >"$W/out.txt" 2>"$W/stderr.txt" \
    || { cat "$W/out.txt" "$W/stderr.txt" >&2; exit 1; }
  read -r WALL u s < "$W/time.txt"
  CPU=$(awk -v u="$u" -v s="$s" 'BEGIN{printf "%.2f", u+s}')
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "victoria-metrics: $(dpkg-query -W -f '${Version}' victoria-metrics 2>/dev/null || echo unknown)"
$GEN --series "$SERIES" --hours "$HOURS" --interval-ms 30000 > "$W/corpus.dump"
$BIN convert -q "$W/corpus.dump" -o "$W/shards"
$BIN convert -q "$W/corpus.dump" -o - > "$W/single.om"
promtool tsdb create-blocks-from openmetrics -q "$W/single.om" "$W/source-tsdb" >/dev/null
N=$(ls "$W"/shards/*.om.gz | wc -l)
TOTAL=$(wc -l < "$W/corpus.dump")
NAN=$(grep -c " NaN " "$W/corpus.dump" || true)
echo "data: $SERIES series x ${HOURS}h at 30s: $TOTAL samples ($NAN NaN, which VictoriaMetrics does not keep); $N shards; source TSDB by promtool"

for B in "${BATCHES[@]}"; do
  start_vm "vm-prom2om-$B"
  rm -rf "$W/shards/.prom2om-remote-write"
  measure "$BIN" import "$W/shards" --remote-write "http://127.0.0.1:$PORT/api/v1/write" --batch-samples "$B"
  echo "prom2om import --remote-write --batch-samples $B: ${WALL} s (cpu ${CPU} s), VictoriaMetrics holds $(samples_in "$PORT") samples"
done
start_vm vm-vmctl
measure script -qec "vmctl prometheus -s --vm-disable-progress-bar --prom-snapshot=$W/source-tsdb --vm-addr=http://127.0.0.1:$PORT" /dev/null
echo "vmctl prometheus (defaults): ${WALL} s (cpu ${CPU} s), VictoriaMetrics holds $(samples_in "$PORT") samples"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
