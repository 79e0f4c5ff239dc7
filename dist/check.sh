#!/usr/bin/env bash
# Checks a release tarball as a customer host would meet it: checksum, glibc symbol versions at
# most 2.17, no shared library but glibc's own, size, and the README's first job done by the
# packaged binary. Usage: bash dist/check.sh target/dist/prom2om-VERSION-x86_64-linux.tar.gz
set -euo pipefail
cd "$(dirname "$0")/.."
tarball=$1
MAX_GLIBC=2.17
MAX_BYTES=$((25 * 1000 * 1000))

(cd "$(dirname "$tarball")" && sha256sum --quiet -c "$(basename "$tarball").sha256")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar -C "$work" -xzf "$tarball"
bin=$(echo "$work"/prom2om-*/prom2om)

newest=$(objdump -T "$bin" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
if [ "$(printf '%s\n%s\n' "$newest" "$MAX_GLIBC" | sort -V | tail -1)" != "$MAX_GLIBC" ]; then
  echo "dist: binary needs glibc $newest, more than $MAX_GLIBC" >&2
  exit 1
fi
# glibc's own libraries, and the kernel's vDSO; anything else would have to be installed.
others=$(ldd "$bin" | grep -v -E '^\s*(linux-vdso\.so|/lib64/ld-linux-x86-64\.so|(libc|libm|libdl|libpthread|librt|ld-linux-x86-64)\.so)' || true)
if [ -n "$others" ]; then
  echo "dist: binary needs libraries beyond glibc:" >&2
  echo "$others" >&2
  exit 1
fi
size=$(stat -c %s "$bin")
if [ "$size" -gt "$MAX_BYTES" ]; then
  echo "dist: binary is $size bytes, more than $MAX_BYTES" >&2
  exit 1
fi
if readelf -S "$bin" | grep -q '\.symtab'; then
  echo "dist: binary is not stripped" >&2
  exit 1
fi

# The README's first job, with the packaged binary.
version=$("$bin" --version)
echo "$version"
# The release binary compresses shards with igzip.
case $version in
  *"gzip level 1: igzip)"*) ;;
  *) echo "dist: binary built without the igzip feature" >&2; exit 1 ;;
esac
"$bin" convert testdata/sample.dump -m '{__name__=~"elasticsearch_.*"}' -o "$work/shards" --quiet
"$bin" verify "$work/shards"
echo "dist: OK $(basename "$tarball"): $size bytes, needs glibc $newest or newer, libraries: $(ldd "$bin" | awk '{print $1}' | tr '\n' ' ')"
