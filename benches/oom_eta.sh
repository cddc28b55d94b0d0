#!/usr/bin/env bash
# oom_eta against the `available` and `backlog` thresholds on the same paced UDP flood, and its
# false triggers over a benign run (page cache growth, 200 MB allocation bursts): see
# benches/oom_eta.py. The floor is MemAvailable - 1.5 GiB at the start of each run, so at most
# ~1.8 GiB of this machine is ever at stake. Needs root and python3; run it under the team's
# live lock, since other floods move MemAvailable too:
#
#   flock /work/team/live.lock benches/oom_eta.sh [RATES_MIB_S [BENIGN_S]]   (default 64,16 180)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 2; }
(cd "$ROOT" && cargo build --release --quiet --target x86_64-unknown-linux-musl)
exec python3 "$HERE/oom_eta.py" "$ROOT/target/x86_64-unknown-linux-musl/release/ghostwatch" "$@"
