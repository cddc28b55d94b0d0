#!/usr/bin/env bash
# Packs the router-in-a-box guest's initramfs (a newc cpio, gzip) for one architecture.
#
#   tests/vm/build-initramfs.sh ARCH KERNEL_DIR BIN_DIR OUT
#
# ARCH: x86_64|aarch64|armv7|mipsel. KERNEL_DIR: from fetch-kernel.sh (its modules/ go in).
# BIN_DIR: static binaries for ARCH: ghostwatch, gw-testd, gw-vmguest (see prepare.sh).
# The busybox is Debian's busybox-static for ARCH (the host's for x86_64; downloaded with
# apt-get and unpacked, not installed, for the others), cached beside the kernel.
set -euo pipefail
arch=$1 kdir=$2 bindir=$3 out=$4
root=$(cd "$(dirname "$0")/../.." && pwd)
cache=$(dirname "$(dirname "$kdir")")
log() { echo "build-initramfs: $*" >&2; }

case $arch in
  x86_64) dpkg_arch=amd64 ;;
  aarch64) dpkg_arch=arm64 ;;
  armv7) dpkg_arch=armhf ;;
  mipsel) dpkg_arch=mipsel ;;
  *) log "unknown arch $arch"; exit 2 ;;
esac
if [ "$dpkg_arch" = "$(dpkg --print-architecture)" ] && [ -x /bin/busybox ] &&
  file -L /bin/busybox | grep -q 'statically linked'; then
  busybox=/bin/busybox
else
  bbdir=$cache/busybox-$dpkg_arch
  if [ ! -x "$bbdir/bin/busybox" ]; then
    rm -rf "$bbdir.tmp" && mkdir -p "$bbdir.tmp"
    (cd "$bbdir.tmp" && apt-get download -q -o APT::Sandbox::User=root "busybox-static:$dpkg_arch" >&2)
    dpkg -x "$bbdir.tmp"/*.deb "$bbdir.tmp/x"
    mkdir -p "$bbdir/bin" && cp "$bbdir.tmp/x/bin/busybox" "$bbdir/bin/" && rm -rf "$bbdir.tmp"
  fi
  busybox=$bbdir/bin/busybox
fi

initd=${GW_INITD:-$root/init/ghostwatch.initd}
stage=$(mktemp -d "${TMPDIR:-/tmp}/gw-initramfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,etc/init.d,etc/gwvm,lib/modules,proc,sys,dev,tmp,var/log,var/run,root}
install -m 755 "$busybox" "$stage/bin/busybox"
ln -s busybox "$stage/bin/sh"   # /init needs its interpreter before --install runs
install -m 755 "$root/tests/vm/guest/init" "$stage/init"
install -m 755 "$root/tests/vm/guest/gw-testd.initd" "$stage/etc/init.d/gw-testd"
install -m 755 "$bindir/ghostwatch" "$stage/usr/sbin/ghostwatch"
install -m 755 "$bindir/gw-testd" "$stage/usr/sbin/gw-testd"
install -m 755 "$bindir/gw-vmguest" "$stage/usr/bin/gw-vmguest"
if [ -f "$initd" ]; then
  install -m 755 "$initd" "$stage/etc/init.d/ghostwatch"
else
  log "no $initd: scenarios B and C cannot start the agent"
fi
for c in "$root"/tests/vm/guest/ghostwatch-*.json; do
  install -m 600 "$c" "$stage/etc/gwvm/$(basename "$c")"
done
cp "$kdir"/modules/*.ko "$stage/lib/modules/" 2>/dev/null || true
cp "$kdir/modules.order" "$stage/lib/modules/order"
echo "root:x:0:0:root:/root:/bin/sh" > "$stage/etc/passwd"
echo "root:x:0:" > "$stage/etc/group"
(cd "$stage" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -6 > "$out.tmp"
mv "$out.tmp" "$out"
log "$out: $(stat -c %s "$out") bytes"
