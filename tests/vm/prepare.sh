#!/usr/bin/env bash
# Everything a router-in-a-box boot needs for one architecture, cached under target/:
# the Debian kernel (fetch-kernel.sh), static binaries (ghostwatch, gw-testd, gw-vmguest),
# and the initramfs (build-initramfs.sh). Prints two lines: KERNEL=path and INITRD=path.
#
#   tests/vm/prepare.sh x86_64|x86_64-5.10|aarch64|armv7|mipsel
#
# x86_64-5.10 is the field-kernel guest: x86_64 with Debian 11's kernel (Linux 5.10, the
# kernel of OpenWrt 22.03) from the bullseye archive; the binaries are x86_64's.
set -euo pipefail
guest=${1:?usage: prepare.sh x86_64|x86_64-5.10|aarch64|armv7|mipsel}
arch=$guest
case $guest in x86_64-5.10) arch=x86_64; export GW_VM_SUITE=bullseye ;; esac
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
cache=${GW_VM_CACHE:-$root/target/vm-cache}
log() { echo "prepare: $*" >&2; }

kdir=$(tests/vm/fetch-kernel.sh "$arch" "$cache")
case $arch in
  x86_64) triple=x86_64-unknown-linux-musl ;;
  aarch64) triple=aarch64-unknown-linux-musl ;;
  armv7) triple=armv7-unknown-linux-musleabihf ;;
  mipsel) triple=mipsel-unknown-linux-musl ;;
  *) log "unknown arch $arch"; exit 2 ;;
esac
if [ "$arch" = armv7 ]; then
  tests/vm/build-armv7.sh >&2
elif [ "$arch" = mipsel ]; then
  tests/vm/build-mipsel.sh >&2
else
  cargo build --quiet --release --target "$triple" --bin ghostwatch \
    --example gw-testd --example gw-vmguest >&2
fi
rel=$root/target/$triple/release
case $arch in armv7|mipsel) rel=$root/target/build-std/$triple/$triple/release ;; esac
bindir=$root/target/vm/$guest/bin
mkdir -p "$bindir"
for b in ghostwatch examples/gw-testd examples/gw-vmguest; do
  if file "$rel/$b" | grep -q 'dynamically linked'; then
    log "$rel/$b is dynamically linked; the guest has no libc"
    exit 1
  fi
  cp "$rel/$b" "$bindir/"
done
initrd=$root/target/vm/$guest/initramfs.cpio.gz
tests/vm/build-initramfs.sh "$arch" "$kdir" "$bindir" "$initrd"
echo "KERNEL=$kdir/kernel"
echo "INITRD=$initrd"
