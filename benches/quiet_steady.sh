#!/usr/bin/env bash
# The quiet agent's steady state: SOCKS sockets over 500 processes (benches/holders.py) in
# network namespace "gwquiet", nothing queued; a fresh `ghostwatch run` (interval 1 s, host
# namespace, static musl build) is measured from 5 s after its start (so its startup full scan
# is left out) for SECONDS s, periodic full scans included. Prints CPU ms per poll and VmHWM.
# Needs root, python3, iproute2, the x86_64-unknown-linux-musl target. Cleans up everything.
#
# Usage: benches/quiet_steady.sh [SOCKS [SECONDS]]   (default 50000 300)
set -euo pipefail
SOCKS=${1:-50000}
SECONDS_=${2:-300}
NS=gwquiet
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
TMP=$(mktemp -d /tmp/gwquiet.XXXXXX)
H= A=
cleanup() {
    for p in $A $H; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 2; }
(cd "$ROOT" && cargo build --release --quiet --target x86_64-unknown-linux-musl)
BIN="$ROOT/target/x86_64-unknown-linux-musl/release/ghostwatch"
TCK=$(getconf CLK_TCK)
ip netns del "$NS" 2>/dev/null || true
ip netns add "$NS"
ip netns exec "$NS" ip link set lo up
ip netns exec "$NS" sysctl -qw net.ipv4.ip_local_port_range="1024 65000"
mkfifo "$TMP/ready"
ip netns exec "$NS" python3 "$HERE/holders.py" 500 $(( (SOCKS + 499) / 500 )) >"$TMP/ready" &
H=$!
read -r _ N <"$TMP/ready"
cat >"$TMP/c.json" <<EOC
{ "interval_ms": 1000, "syslog": "stderr", "mlock": false,
  "ghost_warn_kb": 536870912, "ghost_act_kb": 1073741824,
  "backlog_warn_bytes": 1048576, "backlog_act_bytes": 1073741824,
  "rules": [ { "name": "log-backlog", "trigger": "backlog", "action": "log" } ] }
EOC
"$BIN" run -c "$TMP/c.json" 2>"$TMP/agent.log" &
A=$!
ticks() { sed 's/.*) //' "/proc/$A/stat" | awk '{print $12 + $13}'; }
sleep 5
T0=$(ticks); S0=$(date +%s.%N)
sleep "$SECONDS_"
T1=$(ticks); S1=$(date +%s.%N)
HWM=$(awk '/^VmHWM/{print $2}' "/proc/$A/status")
echo "$N sockets in $NS; kernel $(uname -r), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
python3 -c "print('startup (first 5 s): %d ticks; steady state: %d ticks in %.0f s = %.3f ms CPU per 1 s poll; VmHWM %s kB' % ($T0, $T1 - $T0, $S1 - $S0, ($T1 - $T0) * 1000 / $TCK / ($S1 - $S0), '$HWM'))"
