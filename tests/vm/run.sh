#!/usr/bin/env bash
# Runs the router-in-a-box tests (tests/router_in_a_box.rs) for the given guest
# architectures, default x86_64. Builds and caches first (kernel download, static binaries,
# initramfs: tests/vm/prepare.sh, bounded at 15 min per arch), then runs the boots; the boots
# of all the given arches share one budget (GW_VM_TIMEOUT_S, default 600 s), and every boot
# has its own `timeout` too (tests/vm/boot.sh). Consoles are kept in target/vm-logs/.
#
#   tests/vm/run.sh [x86_64] [x86_64-5.10] [aarch64] [armv7] [mipsel]
#   GW_VM_RUNS=N tests/vm/run.sh     # scenario-B runs per arch (default 3)
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -gt 0 ] || set -- x86_64
for arch in "$@"; do
  t0=$(date +%s)
  timeout 900 tests/vm/prepare.sh "$arch" >/dev/null
  echo "vm: $arch prepared in $(($(date +%s) - t0)) s"
done
# The test names' prefix per guest (x86_64-5.10's test avoids "x86_64_" in its name).
filter() { case $1 in x86_64-5.10) echo linux510_ ;; *) echo "${1}_" ;; esac; }
budget=${GW_VM_TIMEOUT_S:-600}
deadline=$(($(date +%s) + budget))
# The mipsel guest boots beside the others when there are others: under TCG its guest mostly
# sleeps (one boot: ~72 s of wall time, ~9 s of host CPU), so on 2 cores it costs the chain
# little. Its output goes to target/vm-logs/run-mipsel.out and is printed at the end.
bg_pid="" bg_out=target/vm-logs/run-mipsel.out
if [ $# -gt 1 ]; then
  rest=()
  for arch in "$@"; do
    if [ "$arch" = mipsel ]; then
      mkdir -p target/vm-logs
      bg_t1=$(date +%s)
      timeout --kill-after=20 "$budget" \
        cargo test --quiet --test router_in_a_box -- --ignored --test-threads=1 --nocapture mipsel_ \
        >"$bg_out" 2>&1 &
      bg_pid=$!
      # A failing foreground guest ends this script: timeout passes the TERM on to cargo.
      trap 'kill "$bg_pid" 2>/dev/null || true' EXIT
    else
      rest+=("$arch")
    fi
  done
  set -- "${rest[@]}"
fi
for arch in "$@"; do
  t1=$(date +%s)
  left=$((deadline - t1))
  [ $left -gt 0 ] || { echo "vm: the ${budget} s budget is spent before $arch" >&2; exit 1; }
  timeout --kill-after=20 "$left" \
    cargo test --quiet --test router_in_a_box -- --ignored --test-threads=1 --nocapture "$(filter "$arch")"
  echo "vm: $arch tests took $(($(date +%s) - t1)) s"
done
if [ -n "$bg_pid" ]; then
  rc=0
  wait "$bg_pid" || rc=$?
  trap - EXIT
  cat "$bg_out"
  echo "vm: mipsel tests took $(($(date +%s) - bg_t1)) s (beside the others)"
  [ $rc = 0 ] || { echo "vm: mipsel failed (rc $rc)" >&2; exit 1; }
fi
