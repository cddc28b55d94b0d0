#!/usr/bin/env bash
# Installs everything the six static musl targets need and builds what Debian does not ship,
# caching the results under target/cross/ so a re-run takes a second.
#
#   targets/setup.sh            # all targets
#   targets/setup.sh --check    # only say what is missing (exit 1 if anything is)
#
# What and why (details in targets/README.md):
# - rustup: stable x86_64/aarch64 musl std; nightly + rust-src for -Z build-std (rustup serves
#   no std for the 32-bit ARM and MIPS musl targets here).
# - apt: qemu-user (runs foreign binaries and tests), cross gcc for arm/armhf/mips/mipsel,
#   musl-dev:armhf and musl-dev:armel (Debian's ARM musl, with arm-linux-musleabi{,hf}-gcc),
#   dpkg-dev (for `apt-get source musl`).
# - ARM: the unwinder is the cross gcc's libgcc_eh.a, copied in as libunwind.a.
# - MIPS: Debian's mipsel musl is hard-float and it has no big-endian mips musl, while Rust's
#   mips*-musl targets are soft-float (OpenWrt's 24Kc has no FPU). So musl is built from
#   Debian's source package with -msoft-float, and LLVM's libunwind from nightly's rust-src.
#   rustc also names crtbegin.o/crtend.o (gcc's), which musl does not need: empty objects.
# Runs as root (apt); everything it writes outside target/ is in system package dirs, plus one
# deb-src entry in /etc/apt/sources.list.d/ when musl's source is needed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
cache="$root/target/cross"
check_only=0
[ "${1:-}" = "--check" ] && check_only=1
export DEBIAN_FRONTEND=noninteractive

log() { echo "setup: $*" >&2; }

# --- apt -------------------------------------------------------------------------------------
apt_pkgs=(qemu-user file dpkg-dev python3
  gcc-arm-linux-gnueabihf gcc-arm-linux-gnueabi
  gcc-mips-linux-gnu gcc-mipsel-linux-gnu g++-mips-linux-gnu g++-mipsel-linux-gnu
  musl-dev:armhf musl-dev:armel)

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

missing=()
for p in "${apt_pkgs[@]}"; do installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ $check_only = 1 ]; then log "missing apt packages: ${missing[*]}"; exit 1; fi
  foreign=$(dpkg --print-foreign-architectures)
  added=0
  for a in armhf armel; do
    grep -qx "$a" <<<"$foreign" || { dpkg --add-architecture "$a"; added=1; }
  done
  if [ $added = 1 ] || [ ! -e "$cache/.apt-updated" ]; then
    apt-get update -qq -o DPkg::Lock::Timeout=600
    mkdir -p "$cache" && touch "$cache/.apt-updated"
  fi
  log "installing ${missing[*]}"
  # One transaction is fastest, but apt's resolver has been seen to give up on a mix of
  # foreign-arch and cross packages ("pkgProblemResolver generated breaks") that it installs
  # fine one at a time: fall back to that.
  if ! apt-get install -y -qq -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null; then
    log "one transaction failed; installing one package at a time"
    for p in "${missing[@]}"; do
      installed "$p" || apt-get install -y -qq -o DPkg::Lock::Timeout=600 "$p" >/dev/null
    done
  fi
fi

# --- rustup ----------------------------------------------------------------------------------
if [ $check_only = 0 ]; then
  rustup target add x86_64-unknown-linux-musl aarch64-unknown-linux-musl >/dev/null 2>&1 ||
    rustup target add x86_64-unknown-linux-musl aarch64-unknown-linux-musl
  rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
  rustup component add rust-src --toolchain nightly >/dev/null 2>&1 ||
    rustup component add rust-src --toolchain nightly
fi
rust_src="$(rustc +nightly --print sysroot)/lib/rustlib/src/rust"
[ -d "$rust_src/library/std" ] || { log "nightly rust-src missing"; exit 1; }

# --- ARM: libgcc_eh as the unwinder ----------------------------------------------------------
arm_unwinder() { # triple gcc-triple
  local dir="$cache/$1"
  [ -s "$dir/libunwind.a" ] && return 0
  [ $check_only = 1 ] && { log "missing $dir/libunwind.a"; exit 1; }
  mkdir -p "$dir"
  cp "$("$2-gcc" -print-file-name=libgcc_eh.a)" "$dir/libunwind.a"
}
arm_unwinder armv7-unknown-linux-musleabihf arm-linux-gnueabihf
arm_unwinder arm-unknown-linux-musleabi arm-linux-gnueabi

# --- MIPS: soft-float musl and LLVM libunwind ------------------------------------------------
musl_src() {
  local dir="$cache/src"
  local found
  found=$(find "$dir" -maxdepth 1 -type d -name 'musl-1.*' 2>/dev/null | head -n1)
  if [ -n "$found" ]; then echo "$found"; return; fi
  [ $check_only = 1 ] && { log "missing musl source in $dir"; exit 1; }
  if ! grep -rqs '^Types:.*deb-src\|^deb-src ' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    log "adding a deb-src entry for Debian bookworm (for apt-get source musl)"
    cat >/etc/apt/sources.list.d/ghostwatch-deb-src.sources <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    apt-get update -qq -o DPkg::Lock::Timeout=600
  fi
  mkdir -p "$dir"
  (cd "$dir" && apt-get source -qq musl >/dev/null 2>&1) ||
    { apt-get update -qq -o DPkg::Lock::Timeout=600; (cd "$dir" && apt-get source -qq musl >/dev/null); }
  find "$dir" -maxdepth 1 -type d -name 'musl-1.*' | head -n1
}

mips_sysroot() { # triple gcc-triple
  local t=$1 cc=$2-gcc cxx=$2-g++ dir="$cache/$1"
  if [ ! -s "$dir/libc.a" ]; then
    [ $check_only = 1 ] && { log "missing $dir/libc.a"; exit 1; }
    local src build
    src=$(musl_src)
    build="$cache/build/musl-$t"
    rm -rf "$build" && mkdir -p "$build" "$dir"
    log "building soft-float musl for $t (~1 min)"
    (cd "$build" && CC=$cc CFLAGS="-msoft-float -Os -pipe" "$src/configure" \
      --target="$2" --disable-shared --prefix="$build/install" >/dev/null &&
      make -s -j"$(nproc)" >/dev/null 2>&1 && make -s install >/dev/null 2>&1)
    cp "$build"/install/lib/{libc.a,crt1.o,crti.o,crtn.o,rcrt1.o,Scrt1.o} "$dir/"
    rm -rf "$dir/include" && cp -r "$build/install/include" "$dir/include"
    rm -rf "$build"
  fi
  [ -e "$dir/crtbegin.o" ] || { : | "$cc" -msoft-float -x c -c -o "$dir/crtbegin.o" -; }
  [ -e "$dir/crtend.o" ] || cp "$dir/crtbegin.o" "$dir/crtend.o"
  if [ ! -s "$dir/libunwind.a" ]; then
    [ $check_only = 1 ] && { log "missing $dir/libunwind.a"; exit 1; }
    log "building LLVM libunwind for $t from rust-src"
    local uw="$rust_src/src/llvm-project/libunwind" obj="$cache/build/unwind-$t"
    rm -rf "$obj" && mkdir -p "$obj"
    # The flags of Rust's own bootstrap build of libunwind (src/bootstrap, llvm.rs).
    # Against musl's headers (the cross gcc's default ones are glibc's, hard-float).
    local common=(-nostdinc -isystem "$dir/include" -isystem "$("$cc" -print-file-name=include)"
      -msoft-float -Os -fPIC -fstrict-aliasing -funwind-tables -fvisibility=hidden
      -D_LIBUNWIND_DISABLE_VISIBILITY_ANNOTATIONS -D_LIBUNWIND_IS_NATIVE_ONLY -DNDEBUG
      -I "$uw/include")
    local f
    for f in UnwindLevel1.c UnwindLevel1-gcc-ext.c Unwind-sjlj.c; do
      "$cc" "${common[@]}" -std=c99 -c "$uw/src/$f" -o "$obj/${f%.*}.o"
    done
    for f in UnwindRegistersSave.S UnwindRegistersRestore.S; do
      "$cc" "${common[@]}" -c "$uw/src/$f" -o "$obj/${f%.*}.o"
    done
    "$cxx" "${common[@]}" -std=c++17 -nostdinc++ -fno-exceptions -fno-rtti \
      -c "$uw/src/libunwind.cpp" -o "$obj/libunwind.o"
    "$2-ar" rcs "$dir/libunwind.a" "$obj"/*.o
    rm -rf "$obj"
  fi
}
mips_sysroot mipsel-unknown-linux-musl mipsel-linux-gnu
mips_sysroot mips-unknown-linux-musl mips-linux-gnu
rm -rf "$cache/build"
log "ready (cache: target/cross/)"
