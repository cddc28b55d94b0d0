#!/usr/bin/env bash
# What one `ghostwatch report` costs next to its peers, on a box with 10 000 sockets.
#
# Builds the release binary, creates network namespace "gwbench" holding SOCKETS sockets over
# PROCS processes (benches/holders.py), then runs hyperfine inside the namespace on:
#   cat      the 10 /proc/net tables + every /proc/PID/status + `ls -l /proc/*/fd`
#            (the raw reads any owner lookup needs: the floor for a text-/proc tool)
#   report   ghostwatch report
#   ss       ss -anp
#   netstat  netstat -anp
# and prints the medians, the ratio report/cat, ghostwatch's max RSS, and the budget verdict
# (report <= 2x cat, report faster than ss -anp and netstat -anp). Exit 1 if over budget.
# Needs root, hyperfine, iproute2, net-tools, python3. Cleans up processes and the namespace.
#
# Usage: benches/report_vs_peers.sh [PROCS [SOCKS_PER_PROC [RUNS]]]   (default 500 20 20)
set -euo pipefail

PROCS=${1:-500}
PER=${2:-20}
RUNS=${3:-20}
NS=gwbench
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
TMP=$(mktemp -d /tmp/gwbench.XXXXXX)
HOLDER_PID=

cleanup() {
    if [ -n "$HOLDER_PID" ]; then
        kill -TERM "$HOLDER_PID" 2>/dev/null || true
        wait "$HOLDER_PID" 2>/dev/null || true
    fi
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" = 0 ] || { echo "needs root (network namespace, every process's fds)" >&2; exit 2; }
for t in hyperfine ip ss netstat python3; do
    command -v "$t" >/dev/null || { echo "missing tool: $t" >&2; exit 2; }
done

(cd "$ROOT" && cargo build --release --quiet)
BIN="$ROOT/target/release/ghostwatch"

ip netns del "$NS" 2>/dev/null || true
ip netns add "$NS"
ip netns exec "$NS" ip link set lo up

# The holder prints "ready N" once every child holds its sockets.
mkfifo "$TMP/ready"
ip netns exec "$NS" python3 "$HERE/holders.py" "$PROCS" "$PER" >"$TMP/ready" &
HOLDER_PID=$!
read -r _ NSOCK <"$TMP/ready"
echo "namespace $NS: $NSOCK sockets held by $PROCS processes (+ $(ls -d /proc/[0-9]* | wc -l) PIDs on the box)"
echo "kernel $(uname -r), $(nproc) cores, $(sed -n 's/model name\s*: //p' /proc/cpuinfo | head -1)"

TABLES="/proc/net/tcp /proc/net/tcp6 /proc/net/udp /proc/net/udp6 /proc/net/raw /proc/net/raw6"
TABLES="$TABLES /proc/net/udplite /proc/net/udplite6 /proc/net/netlink /proc/net/packet"
CAT="cat $TABLES /proc/[0-9]*/status >/dev/null 2>&1; ls -l /proc/[0-9]*/fd >/dev/null 2>&1; true"

ip netns exec "$NS" hyperfine --style basic --warmup 3 --runs "$RUNS" \
    --export-json "$TMP/h.json" \
    -n cat "$CAT" \
    -n report "$BIN report >/dev/null" \
    -n ss "ss -anp >/dev/null" \
    -n netstat "netstat -anp >/dev/null 2>&1" >"$TMP/hyperfine.txt"

# Max RSS of one report, inside the namespace.
if [ -x /usr/bin/time ]; then
    ip netns exec "$NS" /usr/bin/time -v "$BIN" report >/dev/null 2>"$TMP/time.txt"
    RSS=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$TMP/time.txt")
else
    RSS=$(ip netns exec "$NS" python3 -c '
import resource, subprocess, sys
subprocess.run([sys.argv[1], "report"], stdout=subprocess.DEVNULL, check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)' "$BIN")
fi
# The report must have seen the namespace's sockets (a fast run that read nothing is no win).
SEEN=$(ip netns exec "$NS" "$BIN" report --json --top 1 | python3 -c '
import json, sys; print(len(json.load(sys.stdin).get("sockets", [])))')

python3 - "$TMP/h.json" "$RSS" "$SEEN" <<'EOF'
import json, sys
res = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
med = {k: v["median"] * 1000 for k, v in res.items()}
for k in ("cat", "report", "ss", "netstat"):
    r = res[k]
    print(f"{k:8s} median {med[k]:8.1f} ms   mean {r['mean']*1000:8.1f} ms   "
          f"min {r['min']*1000:8.1f} ms   max {r['max']*1000:8.1f} ms")
ratio = med["report"] / med["cat"]
print(f"report/cat ratio {ratio:.2f} (budget <= 2.00)")
print(f"report max RSS {sys.argv[2]} kB; sockets listed with --top 1: {sys.argv[3]}")
ok = ratio <= 2.0 and med["report"] < med["ss"] and med["report"] < med["netstat"]
ok = ok and sys.argv[3] == "1"
print("BUDGET " + ("OK" if ok else "EXCEEDED"))
sys.exit(0 if ok else 1)
EOF
