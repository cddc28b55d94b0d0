#!/usr/bin/env bash
# Static mipsel (MIPS32 little-endian, soft-float: the 24Kc of most MIPS routers) binaries for
# the mipsel router-in-a-box guest: ghostwatch and the two guest helpers (examples/gw-testd.rs,
# examples/gw-vmguest.rs). The recipe and target dir of targets/build.sh's stable-profile
# mipsel build (nightly `-Z build-std`, rust-lld, the soft-float musl targets/setup.sh builds
# into target/cross/), so the agent binary is the one that script builds, tests and sizes.
# Output: target/build-std/mipsel-unknown-linux-musl/mipsel-unknown-linux-musl/release/
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
t=mipsel-unknown-linux-musl
targets/setup.sh >&2
export CARGO_TARGET_MIPSEL_UNKNOWN_LINUX_MUSL_LINKER=rust-lld
export CARGO_TARGET_MIPSEL_UNKNOWN_LINUX_MUSL_RUSTFLAGS="-C target-feature=+crt-static -L native=$root/target/cross/$t --cfg libc_unstable_musl_v1_2"
cargo +nightly build --quiet --release --target "$t" --target-dir "target/build-std/$t" \
  -Z build-std=std,panic_abort --bin ghostwatch --example gw-testd --example gw-vmguest
