#!/usr/bin/env bash
# Runs the router-in-a-box tests (tests/router_in_a_box.rs) for the given guest
# architectures, default x86_64. Builds and caches first (kernel download, static binaries,
# initramfs: tests/vm/prepare.sh), then runs the boots under one overall `timeout`; every
# boot has its own `timeout` too (tests/vm/boot.sh). Consoles are kept in target/vm-logs/.
#
#   tests/vm/run.sh [x86_64] [aarch64] [armv7]
#   GW_VM_RUNS=N tests/vm/run.sh     # scenario-B runs per arch (default 3)
#   GW_VM_TIMEOUT_S=600               # bound on the boots of one arch (default 600)
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -gt 0 ] || set -- x86_64
for arch in "$@"; do
  t0=$(date +%s)
  tests/vm/prepare.sh "$arch" >/dev/null
  t1=$(date +%s)
  echo "vm: $arch prepared in $((t1 - t0)) s"
  timeout --kill-after=20 "${GW_VM_TIMEOUT_S:-600}" \
    cargo test --quiet --test router_in_a_box -- --ignored --test-threads=1 --nocapture "${arch}_"
  echo "vm: $arch tests took $(($(date +%s) - t1)) s"
done
