#!/usr/bin/env bash
# Boots the router-in-a-box guest once under `timeout` and copies its serial console (and
# QEMU's own messages, e.g. "watchdog: timer fired", in the order they happened) to LOG.
#
#   tests/vm/boot.sh ARCH KERNEL INITRD SCENARIO LOG [TIMEOUT_S] [EXTRA_APPEND]
#
# TCG only: /dev/kvm on these machines is a software scheme that aborts or hangs QEMU
# (see shared ENVIRONMENT.md). The i6300esb watchdog's action is "debug": a firing is
# reported on QEMU's stderr instead of resetting the guest, so the test can see it.
#
# GW_VM_DGRAM=DIR (x86_64, scenario D): instead of no NIC, a virtio-net-pci NIC (MAC
# 52:54:00:12:34:56) whose wire is a pair of unix datagram sockets, QEMU's `-netdev dgram`:
# every datagram sent to DIR/qemu.sock (QEMU binds it) reaches the guest as one Ethernet
# frame, and the guest's frames go to DIR/host.sock (the host test binds it). Unprivileged:
# no tap, no bridge, no host network traffic. GW_VM_NIC=e1000 emulates an Intel 82540EM
# instead (its driver carves receive buffers differently).
set -euo pipefail
arch=$1 kernel=$2 initrd=$3 scenario=$4 log=$5 tmo=${6:-300} extra=${7:-}
append="quiet panic=-1 gwvm.scenario=$scenario $extra"
nic=(-nic none)
if [ -n "${GW_VM_DGRAM:-}" ]; then
  [ "$arch" = x86_64 ] || { echo "boot: GW_VM_DGRAM is for the x86_64 guest" >&2; exit 2; }
  rm -f "$GW_VM_DGRAM/qemu.sock"
  nic=(-netdev "dgram,id=n0,local.type=unix,local.path=$GW_VM_DGRAM/qemu.sock,remote.type=unix,remote.path=$GW_VM_DGRAM/host.sock"
    -device "${GW_VM_NIC:-virtio-net-pci},netdev=n0,mac=52:54:00:12:34:56")
fi
common=(-accel tcg -m 256M -smp 1 "${nic[@]}" -no-reboot -display none -monitor none
  -serial stdio -kernel "$kernel" -initrd "$initrd")
case $arch in
  x86_64)
    cmd=(qemu-system-x86_64 -M pc "${common[@]}" -device i6300esb -action watchdog=debug
      -append "console=ttyS0 $append") ;;
  aarch64)
    cmd=(qemu-system-aarch64 -M virt -cpu cortex-a53 "${common[@]}" -device i6300esb
      -action watchdog=debug -append "console=ttyAMA0 $append") ;;
  armv7)
    # armmp is not an LPAE kernel: keep all RAM and devices below 4 GiB. Its config has no
    # i6300esb driver, so this guest runs without a hardware watchdog.
    cmd=(qemu-system-arm -M virt,highmem=off -cpu cortex-a15 "${common[@]}"
      -append "console=ttyAMA0 $append") ;;
  mipsel)
    # MIPS Malta with the 24Kc, the core of most MIPS routers (ramips mt7621/mt76x8, ath79):
    # Debian's 4kc-malta kernel runs on it (GW_VM_MIPS_CPU overrides, e.g. 4Kc). No PCI
    # watchdog driver in that kernel, so no hardware watchdog here either.
    cmd=(qemu-system-mipsel -M malta -cpu "${GW_VM_MIPS_CPU:-24Kc}" "${common[@]}"
      -append "console=ttyS0 $append") ;;
  *) echo "boot: unknown arch $arch" >&2; exit 2 ;;
esac
mkdir -p "$(dirname "$log")"
start=$(date +%s.%N)
rc=0
timeout --kill-after=10 "$tmo" "${cmd[@]}" </dev/null >"$log" 2>&1 || rc=$?
end=$(date +%s.%N)
echo "GWHOST boot_s=$(awk "BEGIN { printf \"%.1f\", $end - $start }") rc=$rc" >> "$log"
exit $rc
