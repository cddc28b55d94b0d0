#!/usr/bin/env bash
# CI step (issue 9, firmware): what the init-script tests need beyond .ci/run's base list.
# systemd-analyze (package systemd) verifies init/ghostwatch.service without a running
# systemd; busybox runs init/ghostwatch.initd and the procd harness; make runs the OpenWrt
# package recipes (tests/openwrt_package.rs).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
missing=()
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v busybox >/dev/null || missing+=(busybox-static)
command -v make >/dev/null || missing+=(make)
if [ ${#missing[@]} -gt 0 ]; then
  echo "ci: firmware: installing ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
fi
