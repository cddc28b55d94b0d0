#!/usr/bin/env bash
# Fuzzes every parser of untrusted text with cargo-fuzz (libFuzzer, nightly) for SECONDS each,
# starting from real text: the kernel samples under tests/data/kernel, the /proc fixture trees
# under tests/fixtures, and the example and test configs. Prints the executions per target;
# exits 1 if any target found a crash (the input is kept under fuzz/artifacts/TARGET/).
#
# Targets: meminfo, net (all ten tables), sockstat, vmallocinfo, pid (status, stat), config.
# The first byte of a fuzz input picks the read chunking / buffer size (and, for net, the table
# format; for pid, status or stat), so the seeds below carry one.
#
# Usage: fuzz/run.sh SECONDS [TARGET...]    (CI: .ci/fuzz.sh runs it for 20 s per target)
set -euo pipefail

SECS=${1:?usage: fuzz/run.sh SECONDS [TARGET...]}
shift
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
ALL=(meminfo net sockstat vmallocinfo pid config)
if [ $# -gt 0 ]; then TARGETS=("$@"); else TARGETS=("${ALL[@]}"); fi

# seed TARGET PREFIX_BYTE FILE: FILE's bytes behind one selector byte (octal escape).
seed() {
    local dir="$HERE/corpus/$1"
    mkdir -p "$dir"
    { printf "\\$2"; cat "$3"; } >"$dir/seed-$(printf '%s' "$3" | md5sum | cut -c1-12)-$2"
}
protos=(tcp tcp6 udp udp6 raw raw6 udplite udplite6 netlink packet)
while IFS= read -r f; do
    name=$(basename "$f")
    case "$name" in
        meminfo) seed meminfo 020 "$f"; seed meminfo 200 "$f" ;;
        vmallocinfo) seed vmallocinfo 005 "$f" ;;
        sockstat) seed sockstat 003 "$f" ;;
        status) seed pid 040 "$f" ;;
        stat) seed pid 001 "$f" ;;
        *)
            for i in "${!protos[@]}"; do
                if [ "${protos[$i]}" = "$name" ]; then
                    seed net "$(printf '%03o' $((i + 16 * 3)))" "$f"
                fi
            done
            ;;
    esac
done < <(find "$ROOT/tests/data/kernel" "$ROOT/tests/fixtures" -type f \
         \( -name meminfo -o -name vmallocinfo -o -name sockstat -o -name status -o -name stat \
            -o -path '*/net/*' \) | sort)
for f in "$ROOT"/tests/data/config/*.json "$ROOT"/init/*.json; do
    [ -f "$f" ] || continue
    mkdir -p "$HERE/corpus/config"
    cp "$f" "$HERE/corpus/config/seed-$(basename "$f")"
done

cd "$ROOT"
cargo +nightly fuzz build -O 2>&1 | grep -v '^ *\(Compiling\|Finished\|Blocking\)' || true
failed=0
total=0
printf '%-12s %12s %8s %s\n' target executions exec/s result
for t in "${TARGETS[@]}"; do
    log="$HERE/target/run-$t.log"
    mkdir -p "$HERE/target" "$HERE/corpus/$t"
    if cargo +nightly fuzz run -O "$t" "$HERE/corpus/$t" -- \
        -max_total_time="$SECS" -print_final_stats=1 -rss_limit_mb=1024 >"$log" 2>&1; then
        result=ok
    else
        result="CRASH (see $log, fuzz/artifacts/$t/)"
        failed=1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    total=$((total + ${runs:-0}))
    printf '%-12s %12s %8s %s\n' "$t" "${runs:-?}" "${rate:-?}" "$result"
done
echo "total executions: $total in ${#TARGETS[@]} targets x ${SECS} s"
exit $failed
