#!/usr/bin/env bash
# Static armv7 (32-bit ARM, hard-float) binaries for the armv7 router-in-a-box guest:
# ghostwatch and the two guest helpers (examples/gw-testd.rs, examples/gw-vmguest.rs).
# rustup serves no armv7 musl std here, so this is nightly `-Z build-std` with Debian's
# armhf musl, the same recipe and target dir as targets/build.sh (shared ENVIRONMENT.md,
# "32-bit ARM and MIPS"), so the agent binary is the one that script builds and sizes.
# Output: target/build-std/armv7-unknown-linux-musleabihf/armv7-unknown-linux-musleabihf/release/
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
t=armv7-unknown-linux-musleabihf
time64=""
if [ -x targets/setup.sh ]; then
  # The targets recipe installs the cross toolchain, nightly rust-src and the unwinder, and
  # the code it lands with builds with the libc crate's 64-bit time_t on 32-bit musl.
  targets/setup.sh >&2
  time64="--cfg libc_unstable_musl_v1_2"
else
  export DEBIAN_FRONTEND=noninteractive
  if ! dpkg-query -W -f='${Status}' musl-dev:armhf 2>/dev/null | grep -q 'install ok installed' ||
    ! command -v arm-linux-gnueabihf-gcc >/dev/null; then
    dpkg --print-foreign-architectures | grep -qx armhf || dpkg --add-architecture armhf
    apt-get update -qq || true
    apt-get install -y -qq -o DPkg::Lock::Timeout=600 gcc-arm-linux-gnueabihf musl-dev:armhf >/dev/null
  fi
  rustup component add rust-src --toolchain nightly >/dev/null 2>&1 ||
    rustup toolchain install nightly --profile minimal --component rust-src
  # rustc names libunwind.a; the cross gcc's libgcc_eh.a provides the ARM EHABI unwinder.
  mkdir -p "target/cross/$t"
  [ -s "target/cross/$t/libunwind.a" ] ||
    cp "$(arm-linux-gnueabihf-gcc -print-file-name=libgcc_eh.a)" "target/cross/$t/libunwind.a"
fi
export CARGO_TARGET_ARMV7_UNKNOWN_LINUX_MUSLEABIHF_LINKER=arm-linux-musleabihf-gcc
export CARGO_TARGET_ARMV7_UNKNOWN_LINUX_MUSLEABIHF_RUSTFLAGS="-C link-self-contained=no -L native=$root/target/cross/$t $time64"
cargo +nightly build --quiet --release --target "$t" --target-dir "target/build-std/$t" \
  -Z build-std=std,panic_abort --bin ghostwatch --example gw-testd --example gw-vmguest
