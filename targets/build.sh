#!/usr/bin/env bash
# Builds the static release binaries for every supported target, checks they are static,
# prints their sizes, and smoke-tests each (aarch64 under qemu-user).
#
#   targets/build.sh            # build + check all targets
#   targets/build.sh --test     # also run the library unit tests on each target
#
# Needs: rustup targets (x86_64/aarch64-unknown-linux-musl), qemu-user for aarch64.
set -euo pipefail
cd "$(dirname "$0")/.."
run_tests=0
[ "${1:-}" = "--test" ] && run_tests=1
targets=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl)
for t in "${targets[@]}"; do
  cargo build --quiet --release --target "$t"
  bin="target/$t/release/ghostwatch"
  if file "$bin" | grep -q 'dynamically linked'; then
    echo "FAIL: $bin is dynamically linked" >&2
    exit 1
  fi
  size=$(stat -c %s "$bin")
  runner=()
  [ "$t" = aarch64-unknown-linux-musl ] && runner=(qemu-aarch64)
  ver=$("${runner[@]}" "$bin" --version)
  "${runner[@]}" "$bin" report --proc-root tests/fixtures/seed --json >/dev/null
  printf '%-30s %8d bytes (%d KiB) static  %s\n' "$t" "$size" $((size / 1024)) "$ver"
  if [ $run_tests = 1 ]; then
    cargo test --quiet --release --target "$t" --lib
  fi
done
