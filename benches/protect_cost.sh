#!/usr/bin/env bash
# What `protect` adds to a poll, from the agent's own `last_cycle_us` (status file).
#
# Three runs of DURATION seconds each, interval 100 ms, syslog "stderr", live /proc:
#   off     no protect list
#   idle    protect ["gw-none-such"] (probes only the PIDs handed out since two polls back;
#           a full /proc walk every 60th poll)
#   forks   the same, while a shell starts ~FORKS_PER_S short processes per second
# Prints, per run: samples, median / p90 / max last_cycle_us, and the process count.
# Host noise (other builds) moves these figures; compare runs taken together.
#
# Usage: benches/protect_cost.sh [DURATION_S [FORKS_PER_S]]   (default 20 200)
set -euo pipefail
DURATION=${1:-20}
FORKS=${2:-200}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d /tmp/gwprotect.XXXXXX)
AGENT=
FORKER=
cleanup() {
    [ -n "$AGENT" ] && kill -TERM "$AGENT" 2>/dev/null && wait "$AGENT" 2>/dev/null || true
    [ -n "$FORKER" ] && kill -TERM "$FORKER" 2>/dev/null && wait "$FORKER" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT
cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
BIN=$ROOT/target/release/ghostwatch

run() { # name protect-json
    local name=$1 protect=$2
    cat >"$TMP/c.json" <<JSON
{ "interval_ms": 100, "syslog": "stderr", "mlock": false,
  "ghost_warn_kb": 1073741824, "ghost_act_kb": 1073741824,
  "status_file": "$TMP/status.json", "protect": $protect }
JSON
    chmod 644 "$TMP/c.json"
    "$BIN" run -c "$TMP/c.json" 2>/dev/null &
    AGENT=$!
    sleep 1
    : >"$TMP/samples"
    local end=$((SECONDS + DURATION))
    while [ $SECONDS -lt $end ]; do
        sed -n 's/.*"last_cycle_us":\([0-9]*\).*/\1/p' "$TMP/status.json" >>"$TMP/samples" 2>/dev/null || true
        sleep 0.1
    done
    kill -TERM "$AGENT"; wait "$AGENT" 2>/dev/null || true; AGENT=
    sort -n "$TMP/samples" | awk -v name="$name" -v procs="$(ls /proc | grep -c '^[0-9]')" '
        { v[NR] = $1 } END {
            printf "%-6s samples %4d  median %6d us  p90 %6d us  max %6d us  (%d processes)\n",
                name, NR, v[int((NR + 1) / 2)], v[int(NR * 0.9)], v[NR], procs }'
}

run off '[]'
run idle '["gw-none-such"]'
( while :; do for _ in $(seq "$FORKS"); do /bin/true; done; sleep 1; done ) &
FORKER=$!
run forks '["gw-none-such"]'
