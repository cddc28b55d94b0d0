#!/usr/bin/env bash
# CI step: a short cargo-fuzz run of every parser target (fuzz/run.sh: 6 targets x 20 s),
# installing what it needs first (nightly, cargo-fuzz). Measured on the dev VM (2 shared
# cores): cargo-fuzz install 46 s, first build of the targets 1-5 min, runs 2 min.
# FUZZ_SECONDS overrides the per-target time.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
fuzz/run.sh "${FUZZ_SECONDS:-20}"
echo "ci: fuzz step took $(($(date +%s) - start)) s"
