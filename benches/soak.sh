#!/usr/bin/env bash
# Soak: the static agent for POLLS polls at INTERVAL_MS against a churning population
# (benches/churn.py: ~30 processes at a time, each with 1-4 UDP sockets, one with an unread
# queue, some TCP pairs, living 0.1-2 s), inside network namespace "gwsoak" and a PID
# namespace of their own (a router-sized /proc: the owner walks see the churn, not the
# thousands of processes of a shared build machine). The network namespace gets router-sized
# socket hash tables of its own (net.ipv4.{tcp_child_ehash_entries,udp_child_hash_entries},
# Linux >= 6.1/6.2, set for the moment of `ip netns add` and restored): with this VM's global
# tables every read of /proc/net/tcp walks 262 144 empty buckets.
#
# The config makes the backlog trigger come and go (warn 128 KiB, act 180 000 bytes, below the
# default 208 KiB rcvbuf: one churn child in ten crosses it, then the agent reads every table
# and walks the owners), logs every incident, and runs a command (exec /bin/true, cooldown 2 s;
# at most 64 an hour, the config's cap, then audited as skipped) so the children table turns
# over too. Prints VmRSS, VmHWM, open fds and CPU of the agent after a
# warm-up (WARM polls) and at the end, from /proc/PID/{status,fd,stat}; "FLAT" when VmRSS grew
# by at most 64 kB and the fd count did not grow, else "GROWING" (exit 1).
# Needs root, python3, iproute2, the x86_64-unknown-linux-musl target. Cleans up everything.
#
# Usage: benches/soak.sh [POLLS [INTERVAL_MS [WARM]]]   (default 100000 10 2000)
set -euo pipefail

POLLS=${1:-100000}
INTERVAL_MS=${2:-10}
WARM=${3:-2000}
NS=gwsoak
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
TMP=$(mktemp -d /tmp/gwsoak.XXXXXX)
NS_PID=
AGENT_PID=

# The namespace's init is the `sh` under `unshare --kill-child`: when unshare goes (SIGKILL:
# with --fork it ignores TERM), init goes, and the kernel kills everything left in the PID
# namespace (churn and its children).
cleanup() {
    if [ -n "$AGENT_PID" ]; then
        kill -TERM "$AGENT_PID" 2>/dev/null || true
    fi
    if [ -n "$NS_PID" ]; then
        sleep 1
        kill -KILL "$NS_PID" 2>/dev/null || true
        wait "$NS_PID" 2>/dev/null || true
    fi
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" = 0 ] || { echo "needs root (network namespace)" >&2; exit 2; }

(cd "$ROOT" && cargo build --release --quiet --target x86_64-unknown-linux-musl)
BIN="$ROOT/target/x86_64-unknown-linux-musl/release/ghostwatch"

ip netns del "$NS" 2>/dev/null || true
OLD_TCP=$(sysctl -n net.ipv4.tcp_child_ehash_entries 2>/dev/null || true)
OLD_UDP=$(sysctl -n net.ipv4.udp_child_hash_entries 2>/dev/null || true)
[ -n "$OLD_TCP" ] && sysctl -qw net.ipv4.tcp_child_ehash_entries=1024
[ -n "$OLD_UDP" ] && sysctl -qw net.ipv4.udp_child_hash_entries=256
ip netns add "$NS"
[ -n "$OLD_TCP" ] && sysctl -qw net.ipv4.tcp_child_ehash_entries="$OLD_TCP"
[ -n "$OLD_UDP" ] && sysctl -qw net.ipv4.udp_child_hash_entries="$OLD_UDP"
[ -n "$OLD_TCP" ] || echo "note: no per-namespace hash tables on this kernel; polls read the global ones"
ip netns exec "$NS" ip link set lo up
STATUS="$TMP/status.json"
cat >"$TMP/cfg.json" <<EOF
{
  "interval_ms": $INTERVAL_MS,
  "syslog": "stderr",
  "status_file": "$STATUS",
  "oom_score_adj": 0,
  "ghost_warn_kb": 1048576,
  "ghost_act_kb": 2097152,
  "backlog_warn_bytes": 131072,
  "backlog_act_bytes": 180000,
  "cooldown_s": 2,
  "max_actions_per_hour": 64,
  "rules": [
    { "name": "note", "trigger": "backlog", "action": "log" },
    { "name": "probe", "trigger": "backlog", "action": "exec", "argv": ["/bin/true"], "timeout_s": 5 }
  ]
}
EOF
"$BIN" check -c "$TMP/cfg.json"
ip netns exec "$NS" unshare --pid --fork --mount-proc --kill-child \
    sh -c "python3 '$HERE/churn.py' 30 >'$TMP/churn.out' & '$BIN' run -c '$TMP/cfg.json' 2>'$TMP/agent.log'; wait" &
NS_PID=$!
# The agent's PID as this (outer) /proc numbers it: the one running this run's config.
for _ in $(seq 100); do
    AGENT_PID=$(pgrep -f "^$BIN run -c $TMP/cfg.json\$" || true)
    [ -n "$AGENT_PID" ] && break
    sleep 0.1
done
[ -n "$AGENT_PID" ] || { echo "agent did not start" >&2; exit 1; }
until grep -q ready "$TMP/churn.out" 2>/dev/null; do sleep 0.1; done

cycles() { sed -n 's/.*"cycles":\([0-9]*\).*/\1/p' "$STATUS" 2>/dev/null || true; }
wait_polls() {
    local want=$1 c
    while :; do
        c=$(cycles)
        [ -n "$c" ] && [ "$c" -ge "$want" ] && { echo "$c"; return; }
        kill -0 "$AGENT_PID" 2>/dev/null || { echo "agent died" >&2; tail -5 "$TMP/agent.log" >&2; exit 1; }
        sleep 1
    done
}
TCK=$(getconf CLK_TCK)
# utime+stime are fields 14 and 15, counted after the ')' that ends comm.
ticks() { sed 's/.*) //' "/proc/$AGENT_PID/stat" | awk '{print $12 + $13}'; }
# A poll holds a table or a status temp file open for a moment, and a command may be running:
# the smallest of 20 samples over 2 s is the agent's standing fd count (and VmRSS likewise).
snap() {
    local label=$1 polls=$2
    local rss=999999999 fds=999999 hwm r f i
    for i in $(seq 20); do
        r=$(awk '/^VmRSS/{print $2}' "/proc/$AGENT_PID/status")
        f=$(ls "/proc/$AGENT_PID/fd" | wc -l)
        [ "$r" -lt "$rss" ] && rss=$r
        [ "$f" -lt "$fds" ] && fds=$f
        sleep 0.1
    done
    hwm=$(awk '/^VmHWM/{print $2}' "/proc/$AGENT_PID/status")
    echo "$label: polls $polls, VmRSS $rss kB, VmHWM $hwm kB, fds $fds ($(ls -l "/proc/$AGENT_PID/fd" | awk 'NR>1{print $NF}' | tr '\n' ' '))" >&2
    echo "$rss $fds"
}

P0=$(wait_polls "$WARM")
read -r RSS0 FD0 < <(snap start "$P0")
T0=$(ticks); S0=$(date +%s.%N)
# CPU of the first and the last stretch of similar length: flat means no growth per poll.
sleep 30
T0b=$(ticks); S0b=$(date +%s.%N)
P1=$(wait_polls "$POLLS")
T1a=$(ticks); S1a=$(date +%s.%N)
sleep 30
T1=$(ticks); S1=$(date +%s.%N)
P1=$(cycles)
read -r RSS1 FD1 < <(snap end "$P1")
CHURN_PID=$(pgrep -f "$HERE/churn.py 30\$" | head -1 || true)
[ -n "$CHURN_PID" ] && kill -TERM "$CHURN_PID"
for _ in $(seq 50); do grep -q '^born' "$TMP/churn.out" && break; sleep 0.1; done
BORN=$(awk '/^born/{print $2}' "$TMP/churn.out")

python3 - "$TCK" "$T0" "$S0" "$T0b" "$S0b" "$T1a" "$S1a" "$T1" "$S1" "$P0" "$P1" <<'EOF'
import sys
tck, t0, s0, t0b, s0b, t1a, s1a, t1, s1, p0, p1 = map(float, sys.argv[1:])
cpu = lambda ta, sa, tb, sb: (tb - ta) / tck / (sb - sa) * 100
print(f"CPU: {cpu(t0, s0, t0b, s0b):.2f} % of a core in the first 30 s, "
      f"{cpu(t1a, s1a, t1, s1):.2f} % in the last 30 s, {cpu(t0, s0, t1, s1):.2f} % overall "
      f"({int(p1 - p0)} polls in {s1 - s0:.0f} s)")
EOF
echo "audit lines: $(wc -l <"$TMP/agent.log") ($(grep -c 'event=action rule=probe.* result=ok' "$TMP/agent.log" || true) commands run ok, $(grep -c 'event=action rule=probe.* result=skipped' "$TMP/agent.log" || true) skipped, $(grep -c 'event=error' "$TMP/agent.log" || true) errors)"
echo "churn: ${BORN:-?} processes born"
if [ $((RSS1 - RSS0)) -le 64 ] && [ "$FD1" -le "$FD0" ]; then
    echo "FLAT (VmRSS $RSS0 -> $RSS1 kB, fds $FD0 -> $FD1)"
else
    echo "GROWING (VmRSS $RSS0 -> $RSS1 kB, fds $FD0 -> $FD1)"
    exit 1
fi
