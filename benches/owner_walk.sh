#!/usr/bin/env bash
# The owner walk's budget on a box with ~200 000 open fds: the longest poll, the longest slice
# of owner walk, and how long until the owner of a new suspect is found, before and after the
# walk became resumable inside a process.
#
# LAYOUTS (benches/fd_hog.py: PROCSxFDS unbound UDP sockets, comm gw-fdhog): "none" (the box
# as it is), "10x19900" (199 000 fds in tables as large as these VMs allow one process: root
# lacks CAP_SYS_RESOURCE here, so RLIMIT_NOFILE stays at its hard 20 000) and "200x1000" (the
# same fds spread). Where a process may hold more, "1x200000" works too.
# For each layout and binary, TRIALS times: a fresh `ghostwatch run` (interval 1 s, status file,
# an exec rule for comm gw-walkprobe that touches a file) polls a few times, then an unread UDP
# socket on 127.0.0.1 (owner comm gw-walkprobe, benches/latency_probe.py) is flooded past
# backlog_act_bytes, so the agent has a suspect whose owner must be walked. Read from the
# agent's status file once it acted: max_cycle_us (longest poll), max_walk_slice_us (longest
# slice of owner walk, in a poll or between polls) and last_walk_us (first slice to last: the
# walk that found the owner); and flood end -> the exec rule's file (includes the wait for the
# next poll). The table shows medians over the trials and the worst slice.
#
# BEFORE_REVS (space-separated) are earlier commits, each built from `git archive` into
# target/owner-walk-REV and labelled by its name: by default c618cbb (the walk is cut only
# between processes, and the loop walks one slice per poll; it already writes the status
# fields read here), 48776ec (cut inside a process too, still one slice per poll) and 79f989e
# (slices back to back between polls; its owners wait for the next regular poll). "after" is
# the working tree. Pass "-" to measure the working tree alone.
# Needs root, python3, the x86_64-unknown-linux-musl target. Raises fs.nr_open only if it is
# below the largest table (restored after); cleans up every process it started.
#
# Usage: benches/owner_walk.sh [BEFORE_REVS [TRIALS [LAYOUTS]]]
#        (default "c618cbb 48776ec 79f989e" 3 "none 10x19900 200x1000")
set -euo pipefail

BEFORE_REVS=${1:-"c618cbb 48776ec 79f989e"}
TRIALS=${2:-3}
LAYOUTS=${3:-"none 10x19900 200x1000"}
PROBE_COMM=gw-walkprobe
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
TMP=$(mktemp -d /tmp/gwwalk.XXXXXX)
HOG_PID= AGENT_PID=
SYSCTL_SAVE=()

stop() { # pid-variable-name
    local p=${!1}
    if [ -n "$p" ]; then kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; fi
    eval "$1="
}
cleanup() {
    stop AGENT_PID; stop HOG_PID
    for kv in "${SYSCTL_SAVE[@]}"; do sysctl -qw "$kv" >/dev/null 2>&1 || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" = 0 ] || { echo "needs root (fd limits, the agent's walk of every process)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "missing tool: python3" >&2; exit 2; }

TARGET=x86_64-unknown-linux-musl
(cd "$ROOT" && cargo build --release --quiet --target "$TARGET")
BINS=()
for rev in $BEFORE_REVS; do
    [ "$rev" != "-" ] || continue
    mkdir "$TMP/src-$rev"
    git -C "$ROOT" archive "$rev" | tar -x -C "$TMP/src-$rev"
    CARGO_TARGET_DIR="$ROOT/target/owner-walk-$rev" \
        cargo build --release --quiet --target "$TARGET" --manifest-path "$TMP/src-$rev/Cargo.toml"
    cp "$ROOT/target/owner-walk-$rev/$TARGET/release/ghostwatch" "$TMP/ghostwatch-$rev"
    BINS+=("$rev=$TMP/ghostwatch-$rev")
done
BINS+=("after=$ROOT/target/$TARGET/release/ghostwatch")

BIGGEST=0
for layout in $LAYOUTS; do
    [ "$layout" = none ] || [ "${layout#*x}" -le "$BIGGEST" ] || BIGGEST=${layout#*x}
done
NR_OPEN=$(cat /proc/sys/fs/nr_open)
if [ "$NR_OPEN" -lt $((BIGGEST + 16)) ]; then
    SYSCTL_SAVE+=("fs.nr_open=$NR_OPEN")
    sysctl -qw fs.nr_open=$((BIGGEST + 16))
fi
echo "kernel $(uname -r), $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg); before: ${BEFORE_REVS}; after: $(git -C "$ROOT" describe --always --dirty)"

FIRED="$TMP/fired"
STATUS="$TMP/status.json"
cat >"$TMP/cfg.json" <<EOF
{
  "interval_ms": 1000,
  "syslog": "stderr",
  "status_file": "$STATUS",
  "ghost_warn_kb": 1048576,
  "ghost_act_kb": 2097152,
  "backlog_warn_bytes": 524288,
  "backlog_act_bytes": 1048576,
  "cooldown_s": 60,
  "rules": [
    { "name": "touch-on-backlog", "trigger": "backlog", "comm": "$PROBE_COMM",
      "action": "exec", "argv": ["/usr/bin/touch", "$FIRED"], "timeout_s": 5 }
  ]
}
EOF

status_field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$STATUS" "$1"; }

# One trial: prints "file_handles max_cycle_us max_walk_slice_us last_walk_us action_ms"
# (action_ms "timeout"; file handles on the box at the flood: others' work on a shared box shows).
trial() { # binary
    rm -f "$FIRED" "$STATUS"
    "$1" run -c "$TMP/cfg.json" 2>>"$TMP/agent.log" &
    AGENT_PID=$!
    local i
    for i in $(seq 100); do
        [ -r "$STATUS" ] && [ "$(status_field cycles)" -ge 2 ] && break
        sleep 0.05
    done
    # 40 x 60 000 bytes: ~2.5 MB of truesize, past backlog_act_bytes (1 MiB).
    local out handles
    handles=$(cut -f1 /proc/sys/fs/file-nr)
    out=$(python3 "$HERE/latency_probe.py" "$FIRED" 40 60000 20 "$PROBE_COMM" || true)
    sleep 1.2 # one more poll: the status file shows the poll that acted
    local action=timeout
    case "$out" in latency_ms*) action=$(echo "$out" | awk '{print $2}') ;; esac
    echo "$handles $(status_field max_cycle_us) $(status_field max_walk_slice_us) $(status_field last_walk_us) $action"
    stop AGENT_PID
}

ROWS="$TMP/rows"
: >"$ROWS"
for layout in $LAYOUTS; do
    if [ "$layout" != none ]; then
        rm -f "$TMP/ready"; mkfifo "$TMP/ready"
        python3 "$HERE/fd_hog.py" "${layout%x*}" "${layout#*x}" >"$TMP/ready" &
        HOG_PID=$!
        read -r state held <"$TMP/ready"
        [ "$state" = ready ] || { echo "fd_hog.py: $state $held" >&2; exit 1; }
    fi
    echo "== $layout: $(cut -f1 /proc/sys/fs/file-nr) file handles on the box, $(ls -d /proc/[0-9]* | wc -l) PIDs"
    for t in $(seq "$TRIALS"); do
        for b in "${BINS[@]}"; do
            r=$(trial "${b#*=}")
            echo "  ${b%%=*} trial $t: file_handles max_cycle_us max_walk_slice_us last_walk_us action_ms = $r"
            echo "$layout ${b%%=*} $r" >>"$ROWS"
        done
    done
    stop HOG_PID
done

python3 - "$ROWS" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    layout, binary, handles, cyc, sl, walk, act = line.split()
    rows.setdefault((layout, binary), []).append((int(cyc), int(sl), int(walk), act, int(handles)))
print()
print("| fds (processes x fds) | file handles on the box (median) | binary | longest poll, ms (median) | longest walk slice, ms (median / worst) | walk until owner found, ms (median) | flood end -> action, ms (median) | trials |")
print("|---|---:|---|---:|---:|---:|---:|---:|")
for (layout, binary), rs in rows.items():
    med = lambda k: statistics.median(r[k] for r in rs) / 1000
    done = [r for r in rs if r[3] != "timeout"]
    missed = f" ({len(rs) - len(done)} timed out)" if len(done) < len(rs) else ""
    # A trial that timed out has no walk of its own to show (last_walk_us is 0 or older).
    walk = "%.0f" % (statistics.median(r[2] for r in done) / 1000) if done else "> 20 000"
    act = "%.0f" % statistics.median(float(r[3]) for r in done) if done else "> 20 000"
    handles = statistics.median(r[4] for r in rs)
    print(f"| {layout} | {handles:.0f} | {binary} | {med(0):.1f} | {med(1):.1f} / {max(r[1] for r in rs) / 1000:.1f} "
          f"| {walk} | {act}{missed} | {len(rs)} |")
EOF
