#!/usr/bin/env bash
# Chooses the release profile of the customer-host binary by measurement: for each candidate
# profile (Cargo.toml: dist, dist-thin, dist-abort) builds the glibc-2.17 binary with cargo-zigbuild
# and prints its build time, stripped size, and `convert -o DIR` wall and CPU time on a corpus from
# examples/gencorpus.rs (median of RUNS). CPU time is the steadier figure on a shared machine.
#   benches/dist_profiles.sh [SERIES] [HOURS] [RUNS]     (default 600 series, 24 h, 5 runs)
#   CORPUS=FILE benches/dist_profiles.sh ... uses that dump instead of generating one
set -euo pipefail
cd "$(dirname "$0")/.."
SERIES=${1:-600}
HOURS=${2:-24}
RUNS=${3:-5}
TARGET=x86_64-unknown-linux-gnu
W=$(mktemp -d /tmp/prom2om-dist.XXXX)
trap 'rm -rf "$W"' EXIT
command -v cargo-zigbuild >/dev/null 2>&1 || python3 -m pip install -q cargo-zigbuild ziglang
if [ -n "${CORPUS:-}" ]; then
  ln -s "$(realpath "$CORPUS")" "$W/corpus.dump"   # a dump made earlier by gencorpus
else
  cargo build --quiet --release --example gencorpus
  target/release/examples/gencorpus --series "$SERIES" --hours "$HOURS" --interval-ms 30000 >"$W/corpus.dump"
fi
SIZE=$(stat -L -c %s "$W/corpus.dump")
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1 /proc/loadavg)"
echo "corpus: $SERIES series x ${HOURS}h at 30s, $((SIZE / 1000000)) MB"
median() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
for p in dist dist-thin dist-abort; do
  s=$(date +%s.%N)
  cargo zigbuild --quiet --locked --profile "$p" --target "$TARGET.2.17"
  build=$(awk -v a="$s" -v b="$(date +%s.%N)" 'BEGIN{printf "%.0f", b-a}')
  bin="target/$TARGET/$p/prom2om"
  walls=() cpus=()
  for _ in $(seq "$RUNS"); do
    rm -rf "$W/out"
    /usr/bin/time -f '%e %U %S' -o "$W/t" "$bin" convert -q "$W/corpus.dump" -o "$W/out"
    read -r e u sy <"$W/t"
    walls+=("$e")
    cpus+=("$(awk -v u="$u" -v s="$sy" 'BEGIN{print u+s}')")
  done
  wall=$(printf '%s\n' "${walls[@]}" | median)
  cpu=$(printf '%s\n' "${cpus[@]}" | median)
  printf '%-11s size %5.2f MB  build %4ss (incremental)  convert wall %5.2fs (%4.0f MB/s)  cpu %5.2fs\n' \
    "$p" "$(stat -c %s "$bin" | awk '{print $1/1e6}')" "$build" "$wall" \
    "$(awk -v n="$SIZE" -v t="$wall" 'BEGIN{print n/1e6/t}')" "$cpu"
done
