#!/usr/bin/env bash
# Fetches a Debian 12 kernel for the router-in-a-box guest WITHOUT installing it: `apt-get
# download` the image package, `dpkg -x` it into a cache, and keep only what the guest needs
# (the kernel and the watchdog modules). Prints the cache directory on stdout.
#
#   tests/vm/fetch-kernel.sh x86_64|aarch64|armv7|mipsel [CACHE_DIR]
#   GW_VM_SUITE=bullseye tests/vm/fetch-kernel.sh x86_64   # Debian 11's 5.10 (OpenWrt 22.03's)
#
# A suite other than the host's (bookworm) is read through a private apt state under
# CACHE_DIR/apt-SUITE (its own sources list and package lists): the host's apt sources are
# not touched, and nothing is installed.
# CACHE_DIR defaults to target/vm-cache (CI can keep it between runs). The package version is
# part of the directory name, so a new Debian kernel lands beside the old one, never mixed.
# Needs: apt-get, dpkg; aarch64 (mipsel) needs the arm64 (mipsel) dpkg architecture (added here if missing).
set -euo pipefail
arch=${1:?usage: fetch-kernel.sh x86_64|aarch64|armv7|mipsel [CACHE_DIR]}
cache=${2:-$(cd "$(dirname "$0")/../.." && pwd)/target/vm-cache}
case $arch in
  x86_64) meta=linux-image-amd64 dpkg_arch=amd64 ;;
  aarch64) meta=linux-image-arm64 dpkg_arch=arm64 ;;
  armv7) meta=linux-image-armmp dpkg_arch=armhf ;;
  mipsel) meta=linux-image-4kc-malta dpkg_arch=mipsel ;;
  *) echo "fetch-kernel: unknown arch $arch" >&2; exit 2 ;;
esac
log() { echo "fetch-kernel: $*" >&2; }
suite=${GW_VM_SUITE:-}
apt_opts=()
if [ -n "$suite" ]; then
  st=$cache/apt-$suite
  mkdir -p "$st/lists/partial"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main" > "$st/sources.list"
  apt_opts=(-o "Dir::Etc::SourceList=$st/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$st/lists" -o "Dir::Cache::pkgcache=$st/pkgcache.bin"
    -o "Dir::Cache::srcpkgcache=$st/srcpkgcache.bin")
  if [ -z "$(ls "$st/lists" | grep Packages)" ]; then
    log "apt lists for $suite (private state in $st)"
    apt-get update -qq "${apt_opts[@]}" >&2
  fi
fi

if [ -z "$suite" ] && [ "$dpkg_arch" != "$(dpkg --print-architecture)" ] &&
  ! dpkg --print-foreign-architectures | grep -qx "$dpkg_arch"; then
  log "adding dpkg architecture $dpkg_arch (package lists only; nothing of it is installed)"
  dpkg --add-architecture "$dpkg_arch"
  apt-get update -qq -o DPkg::Lock::Timeout=600 >&2 || log "apt-get update reported errors (a mirror mid-sync?); going on with the lists it got"
fi
q=$meta
[ "$dpkg_arch" != "$(dpkg --print-architecture)" ] && q=$meta:$dpkg_arch
# The meta package depends on the versioned image package, e.g. linux-image-6.1.0-57-amd64.
pkg=$(apt-cache "${apt_opts[@]}" depends "$q" 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9][^:]*\).*/\1/p' | head -1)
if [ -z "$pkg" ]; then
  log "no $q in the package lists; running apt-get update"
  apt-get update -qq -o DPkg::Lock::Timeout=600 "${apt_opts[@]}" >&2 || log "apt-get update reported errors (a mirror mid-sync?); going on with the lists it got"
  pkg=$(apt-cache "${apt_opts[@]}" depends "$q" | sed -n 's/^ *Depends: \(linux-image-[0-9][^:]*\).*/\1/p' | head -1)
fi
[ -n "$pkg" ] || { log "cannot resolve $q"; exit 1; }
ver=$(apt-cache "${apt_opts[@]}" policy "$pkg:$dpkg_arch" | sed -n 's/^ *Candidate: //p')
dir=$cache/$arch/$pkg-$ver
# The modules the guest loads: the watchdog driver, and the sock_diag families a Debian box
# autoloads when `ss` or ghostwatch asks (the guest has no modprobe, so they are insmod'ed).
# x86_64 also gets the NIC drivers (virtio_pci + virtio_net, e1000): scenario D's packets come
# in through an emulated NIC, and the guest loads them only in that scenario.
want="i6300esb inet_diag tcp_diag udp_diag raw_diag unix_diag"
[ "$arch" = x86_64 ] && want="$want virtio_pci virtio_net e1000"
if [ -s "$dir/kernel" ] && [ -e "$dir/modules.order" ] && [ "$(cat "$dir/modules.want" 2>/dev/null)" = "$want" ]; then
  echo "$dir"
  exit 0
fi

rm -rf "$dir.tmp"
mkdir -p "$dir.tmp/deb"
log "downloading $pkg:$dpkg_arch $ver"
(cd "$dir.tmp/deb" && apt-get download -q -o APT::Sandbox::User=root "${apt_opts[@]}" "$pkg:$dpkg_arch" >&2)
dpkg -x "$dir.tmp"/deb/*.deb "$dir.tmp/x"
kver=$(ls "$dir.tmp/x/lib/modules")
vmlinuz=$dir.tmp/x/boot/vmlinuz-$kver
# MIPS kernels ship as an ELF vmlinux, which QEMU's malta loads directly.
[ -e "$vmlinuz" ] || vmlinuz=$dir.tmp/x/boot/vmlinux-$kver

# x86_64: the bzImage decompresses itself under TCG in 7-10 s; unpacking it once to the ELF
# vmlinux and booting that through PVH takes ~4 s. The payload is the XZ stream after the
# first XZ magic (the kernel's scripts/extract-vmlinux does the same).
if [ "$arch" = x86_64 ]; then
  off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$vmlinuz" | head -1 | cut -d: -f1)
  [ -n "$off" ] || { log "no XZ payload in $vmlinuz"; exit 1; }
  tail -c +$((off + 1)) "$vmlinuz" | xz -dc 2>/dev/null > "$dir.tmp/kernel" || true
  head -c 4 "$dir.tmp/kernel" | grep -q 'ELF' || { log "unpacked kernel is not ELF"; exit 1; }
else
  # arm64's vmlinuz is a gzipped Image and armmp's a zImage: QEMU loads both directly.
  cp "$vmlinuz" "$dir.tmp/kernel"
fi

# The wanted modules and what they depend on, in load order (the .deb ships no modules.dep,
# so resolve `depends=` from each module's own .modinfo). A missing one is not an error (built
# in, or absent as i6300esb is from armmp): the guest says what it has.
moddir=$dir.tmp/x/lib/modules/$kver
mkdir -p "$dir.tmp/modules"
: > "$dir.tmp/modules.order"
find_mod() { find "$moddir" -name "$1.ko" -o -name "$(echo "$1" | tr _ -).ko" | head -1; }
add_mod() {
  local name=$1 f dep
  grep -qx "$name.ko" "$dir.tmp/modules.order" && return 0
  f=$(find_mod "$name")
  [ -n "$f" ] || { log "module $name not in $pkg (built in or absent)"; return 0; }
  # depends= lives in the module's .modinfo section as a NUL-terminated string.
  for dep in $(tr '\0' '\n' < "$f" | sed -n 's/^depends=//p' | head -1 | tr , ' '); do
    add_mod "$dep"
  done
  cp "$f" "$dir.tmp/modules/$name.ko"
  echo "$name.ko" >> "$dir.tmp/modules.order"
}
for m in $want; do add_mod "$m"; done
echo "$want" > "$dir.tmp/modules.want"
echo "$kver" > "$dir.tmp/kernel.release"
rm -rf "$dir.tmp/deb" "$dir.tmp/x"
rm -rf "$dir"
mv "$dir.tmp" "$dir"
log "$dir: kernel $kver, modules: $(tr '\n' ' ' < "$dir/modules.order")"
echo "$dir"
