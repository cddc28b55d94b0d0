#!/usr/bin/env bash
# CI step: the router-in-a-box guests (tests/vm/README.md). Installs QEMU, busybox and cpio,
# then runs tests/vm/run.sh; kernels and busybox builds are cached in target/vm-cache.
# GW_VM_ARCHES picks the guests (default: all five, mipsel beside the others; see tests/vm/README.md for their times).
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
pkgs=(qemu-system-x86 qemu-system-arm qemu-system-mips busybox-static cpio xz-utils gzip file)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "ci/vm: installing ${missing[*]}"
  apt-get update -qq || true
  apt-get install -y -qq -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
fi
rustup target add x86_64-unknown-linux-musl aarch64-unknown-linux-musl >/dev/null 2>&1 || true
start=$(date +%s)
# shellcheck disable=SC2086 # a list of arch names on purpose
tests/vm/run.sh ${GW_VM_ARCHES:-x86_64 x86_64-5.10 aarch64 armv7 mipsel}
echo "ci/vm: router-in-a-box took $(($(date +%s) - start)) s"
