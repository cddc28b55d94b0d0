#!/usr/bin/env bash
# One table: what reading every socket costs, ghostwatch (sock_diag and text) next to its peers,
# at several socket counts, plus the agent's CPU per poll with a standing incident and quiet.
#
# For each size (default 1 000, 10 000, 50 000 sockets over 500 processes, benches/holders.py)
# inside network namespace "gwscale", with 3 flooded UDP sockets (comm gw-flooded, ~6 MB
# queued each) so a backlog incident stands:
#   report-nl    ghostwatch report --json              (sock_diag, every namespace)
#   report-text  ghostwatch report --json --proc-root /proc/self/..   (the same /proc, but
#                not recognised as the live root, so the text tables are read)
#   cat          cat of the 11 /proc/net tables        (the text floor)
#   ss-an        ss -an                                (netlink, no owners)
#   fdwalk       find /proc/[0-9]*/fd -lname 'socket:*' (the owner-walk floor)
#   ss-anp       ss -anp
#   netstat-anp  netstat -anp
# (hyperfine medians, ms), then `ghostwatch run` (interval 1 s, from the host namespace) for
# AGENT_S seconds with the incident standing, and for QUIET_S seconds once the flooders are gone
# (quiet; long enough to include a periodic full scan: they are spaced by their cost, ~500 s
# apart at 50 000 sockets, so the quiet figure includes the startup scan and a periodic one):
# CPU ms per poll from utime+stime, and VmHWM.
# Last, the idle router: a fresh net+pid namespace (unshare) whose TCP/UDP hash tables are
# router-sized (net.ipv4.tcp_child_ehash_entries / udp_child_hash_entries, restored after),
# the agent alone in it, quiet, for AGENT_S seconds.
# Needs root, hyperfine, iproute2, net-tools, python3, util-linux, the x86_64-unknown-linux-musl
# target (the static build is measured: VmHWM includes no glibc pages). Cleans up everything.
#
# Usage: benches/sockets_scale.sh [SIZES [RUNS [AGENT_S [QUIET_S]]]]
#        (default "1000 10000 50000" 10 20 AGENT_S)
set -euo pipefail

SIZES=${1:-"1000 10000 50000"}
RUNS=${2:-10}
AGENT_S=${3:-20}
QUIET_S=${4:-$AGENT_S}
PROCS=500
NS=gwscale
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
TMP=$(mktemp -d /tmp/gwscale.XXXXXX)
HOLDER_PID= FLOOD_PID= AGENT_PID=
SYSCTL_SAVE=()

stop() { # pid-variable-name
    local p=${!1}
    if [ -n "$p" ]; then kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; fi
    eval "$1="
}
cleanup() {
    stop AGENT_PID; stop FLOOD_PID; stop HOLDER_PID
    ip netns del "$NS" 2>/dev/null || true
    for kv in "${SYSCTL_SAVE[@]}"; do sysctl -qw "$kv" >/dev/null 2>&1 || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 2; }
for t in hyperfine ip ss netstat python3 unshare; do
    command -v "$t" >/dev/null || { echo "missing tool: $t" >&2; exit 2; }
done
(cd "$ROOT" && cargo build --release --quiet --target x86_64-unknown-linux-musl)
BIN="$ROOT/target/x86_64-unknown-linux-musl/release/ghostwatch"  # the static build that ships
TCK=$(getconf CLK_TCK)
echo "kernel $(uname -r), $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"

TABLES=""
for t in tcp tcp6 udp udp6 raw raw6 udplite udplite6 netlink packet unix; do
    TABLES="$TABLES /proc/net/$t"
done

cat >"$TMP/incident.json" <<EOF
{ "interval_ms": 1000, "syslog": "stderr", "mlock": false,
  "ghost_warn_kb": 536870912, "ghost_act_kb": 1073741824,
  "backlog_warn_bytes": 1048576, "backlog_act_bytes": 1073741824,
  "rules": [ { "name": "log-backlog", "trigger": "backlog", "action": "log" } ] }
EOF
"$BIN" check -c "$TMP/incident.json" >/dev/null

# Runs the agent with PREFIX (e.g. "ip netns exec X") and measures SECONDS s: after 2 s of
# setup (namespace discovery, first owner walk), or with FROM_START=1 from its start, so the
# startup full scan counts too. Prints "ms_per_poll hwm_kb".
agent_cost() { # PREFIX SECONDS [FROM_START]
    local s_start
    s_start=$(date +%s.%N)
    $1 "$BIN" run -c "$TMP/incident.json" 2>"$TMP/agent.log" &
    AGENT_PID=$!
    sleep 2
    local pid=$AGENT_PID
    [ -r "/proc/$pid/stat" ] || pid=$(pgrep -n -f "$BIN run" || echo $AGENT_PID)
    ticks() { sed 's/.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}'; }
    local t0 s0 t1 s1 hwm
    t0=$(ticks); s0=$(date +%s.%N)
    if [ "${3:-0}" = 1 ]; then t0=0; s0=$s_start; fi
    sleep "$2"
    t1=$(ticks); s1=$(date +%s.%N)
    hwm=$(awk '/^VmHWM/{print $2}' "/proc/$pid/status")
    stop AGENT_PID
    python3 -c "print('%.2f %s' % (($t1 - $t0) * 1000 / $TCK / (($s1 - $s0) / 1.0), '$hwm'))"
}

ROWS="$TMP/rows"
: >"$ROWS"
for N in $SIZES; do
    PER=$(( (N + PROCS - 1) / PROCS ))
    ip netns del "$NS" 2>/dev/null || true
    ip netns add "$NS"
    ip netns exec "$NS" ip link set lo up
    ip netns exec "$NS" sysctl -qw net.ipv4.ip_local_port_range="1024 65000"
    rm -f "$TMP/ready" "$TMP/fready"; mkfifo "$TMP/ready" "$TMP/fready"
    ip netns exec "$NS" python3 "$HERE/holders.py" "$PROCS" "$PER" >"$TMP/ready" &
    HOLDER_PID=$!
    read -r _ NSOCK <"$TMP/ready"
    # Three unread UDP sockets, ~6 MB queued each: a standing backlog incident.
    ip netns exec "$NS" python3 - >"$TMP/fready" <<'EOF' &
import ctypes, socket, signal
ctypes.CDLL(None).prctl(15, b"gw-flooded", 0, 0, 0)
keep, tx = [], socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(3):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)  # SO_RCVBUFFORCE
    s.bind(("127.0.0.1", 0))
    for _ in range(100):
        tx.sendto(b"x" * 60000, s.getsockname())
    keep.append(s)
print("ready", flush=True)
signal.pause()
EOF
    FLOOD_PID=$!
    read -r _ <"$TMP/fready"
    echo "== $NSOCK sockets over $PROCS processes in $NS (+3 flooded); $(ls -d /proc/[0-9]* | wc -l) PIDs on the box"

    ip netns exec "$NS" hyperfine -N --style none --warmup 2 --runs "$RUNS" --export-json "$TMP/h.json" \
        -n report-nl "$BIN report --json" \
        -n report-text "$BIN report --json --proc-root /proc/self/.." \
        -n ss-an "ss -an" \
        -n ss-anp "ss -anp" \
        -n netstat-anp "netstat -anp" >/dev/null 2>&1
    # Shell-level floors (hyperfine -N cannot run globs or pipes).
    ip netns exec "$NS" hyperfine --style none --warmup 2 --runs "$RUNS" --export-json "$TMP/h2.json" \
        -n cat "cat $TABLES >/dev/null" \
        -n fdwalk "find /proc/[0-9]*/fd -lname 'socket:*' >/dev/null 2>&1; true" >/dev/null 2>&1
    # The source each report used, and that the flooded sockets lead both.
    NL_SRC=$(ip netns exec "$NS" "$BIN" report --json --top 3 | python3 -c '
import json, sys; r = json.load(sys.stdin)
print(r["socket_source"], sum(1 for s in r["sockets"] if s["rx_queue"] > 1 << 20))')
    TX_SRC=$(ip netns exec "$NS" "$BIN" report --json --top 3 --proc-root /proc/self/.. | python3 -c '
import json, sys; r = json.load(sys.stdin)
print(r["socket_source"], sum(1 for s in r["sockets"] if s["rx_queue"] > 1 << 20))')
    read -r INC INC_HWM <<<"$(agent_cost "" "$AGENT_S")"
    stop FLOOD_PID
    read -r QUIET QUIET_HWM <<<"$(agent_cost "" "$QUIET_S" 1)"
    python3 - "$TMP/h.json" "$TMP/h2.json" "$NSOCK" "$INC" "$INC_HWM" "$QUIET" "$QUIET_HWM" \
        "$NL_SRC" "$TX_SRC" >>"$ROWS" <<'EOF'
import json, sys
med = {}
for f in sys.argv[1:3]:
    for r in json.load(open(f))["results"]:
        med[r["command"]] = r["median"] * 1000
n, inc, inc_hwm, quiet, quiet_hwm, nl, tx = sys.argv[3:10]
cols = ["report-nl", "report-text", "cat", "ss-an", "fdwalk", "ss-anp", "netstat-anp"]
floor = med["ss-an"] + med["fdwalk"]
print("| " + " | ".join([n] + ["%.0f" % med[c] for c in cols] +
      ["%.2f" % (med["report-nl"] / floor), inc, quiet, f"{max(int(inc_hwm), int(quiet_hwm))}",
       f"{nl} / {tx}"]) + " |")
EOF
    tail -1 "$ROWS"
    stop HOLDER_PID
    ip netns del "$NS"
done

# The idle router: a fresh net+pid namespace with router-sized hash tables, the agent alone.
ROUTER="n/a (kernel without tcp_child_ehash_entries)"
if [ -e /proc/sys/net/ipv4/tcp_child_ehash_entries ]; then
    for k in net.ipv4.tcp_child_ehash_entries net.ipv4.udp_child_hash_entries; do
        [ -e "/proc/sys/${k//.//}" ] && SYSCTL_SAVE+=("$k=$(sysctl -n "$k")") && sysctl -qw "$k=256"
    done
    cat >"$TMP/router.sh" <<EOF
mount -t proc proc /proc 2>/dev/null || true
ip link set lo up
"$BIN" run -c "$TMP/incident.json" 2>/dev/null &
A=\$!
sleep 2
t() { sed 's/.*) //' /proc/\$A/stat | awk '{print \$12 + \$13}'; }
T0=\$(t); S0=\$(date +%s.%N); sleep $AGENT_S; T1=\$(t); S1=\$(date +%s.%N)
H=\$(awk '/^VmHWM/{print \$2}' /proc/\$A/status)
kill \$A; wait \$A 2>/dev/null
python3 -c "print('%.3f ms CPU per poll, VmHWM %s kB' % ((\$T1 - \$T0) * 1000 / $TCK / (\$S1 - \$S0), '\$H'))"
EOF
    ROUTER=$(unshare --net --pid --fork --mount-proc sh "$TMP/router.sh")
    for kv in "${SYSCTL_SAVE[@]}"; do sysctl -qw "$kv"; done
    SYSCTL_SAVE=()
fi

echo
echo "medians in ms (hyperfine, $RUNS runs); agent: CPU ms per 1 s poll, incident over ${AGENT_S} s after 2 s of setup, quiet over the first $((QUIET_S + 2)) s (startup scan included)"
echo
echo "| sockets | report --json (sock_diag) | report --json (text) | cat tables | ss -an | fd-walk floor | ss -anp | netstat -anp | report / (ss -an + fd-walk) | agent, incident | agent, quiet | agent VmHWM kB | source nl / text (+flooded found) |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
cat "$ROWS"
echo
echo "idle router (own net+pid namespace, hash tables of 256 buckets, agent alone): $ROUTER"
