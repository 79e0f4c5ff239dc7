#!/usr/bin/env bash
# Builds the one-file release for customer hosts: target/dist/prom2om-VERSION-x86_64-linux.tar.gz
# and its .sha256, holding the stripped binary (glibc 2.17 or newer, no other library), shell
# completions, man pages, README and LICENSE; then checks what it built. Installs cargo-zigbuild
# and zig (PyPI packages) when missing. Usage: bash dist/build.sh
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=x86_64-unknown-linux-gnu
GLIBC=2.17   # CentOS 7: the oldest glibc still met on customer hosts

if ! command -v cargo-zigbuild >/dev/null 2>&1 || ! python3 -c 'import ziglang' 2>/dev/null; then
  echo "== installing cargo-zigbuild and ziglang from PyPI"
  python3 -m pip install -q --disable-pip-version-check cargo-zigbuild ziglang
fi
# pip puts cargo-zigbuild in Python's scripts dir, which a pyenv or --user Python may not have on
# PATH yet.
PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"
export PATH

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
name="prom2om-$version-x86_64-linux"
# ISA-L's configure (isal-sys, for the igzip feature) links its test programs with -static, which
# zig refuses for a glibc target; the library itself is static whatever that flag says. So C for
# the target goes through zig without it (cc-rs reads CC_<target> before what zigbuild sets).
zigcc=$(mktemp)
trap 'rm -f "$zigcc"' EXIT
cat >"$zigcc" <<ZIGCC
#!/bin/sh
for a in "\$@"; do shift; [ "\$a" = -static ] || set -- "\$@" "\$a"; done
exec cargo-zigbuild zig cc -- -g -fno-sanitize=all -target x86_64-linux-gnu.$GLIBC "\$@"
ZIGCC
chmod +x "$zigcc"
echo "== cargo zigbuild --profile dist --features igzip --target $TARGET.$GLIBC"
env "CC_$TARGET=$zigcc" cargo zigbuild --locked --profile dist --features igzip --target "$TARGET.$GLIBC"
bin="target/$TARGET/dist/prom2om"

stage=$(mktemp -d)
trap 'rm -rf "$stage" "$zigcc"' EXIT
root="$stage/$name"
mkdir -p "$root/completions" "$root/man"
cp "$bin" "$root/prom2om"
"$root/prom2om" completions bash >"$root/completions/prom2om.bash"
"$root/prom2om" completions zsh >"$root/completions/_prom2om"
"$root/prom2om" completions fish >"$root/completions/prom2om.fish"
cargo run --quiet --locked --example mangen -- "$root/man"
cp README.md LICENSE "$root/"

mkdir -p target/dist
tar -C "$stage" --owner=0 --group=0 -czf "target/dist/$name.tar.gz.tmp" "$name"
mv "target/dist/$name.tar.gz.tmp" "target/dist/$name.tar.gz"
(cd target/dist && sha256sum "$name.tar.gz" >"$name.tar.gz.sha256")

echo "== checking the packaged binary"
bash dist/check.sh "target/dist/$name.tar.gz"
