#!/usr/bin/env bash
# Builds the static release binary for every supported target, checks each is static, runs it
# on the seed fixture (under qemu-user where foreign) and checks the report JSON is the same
# byte for byte on every target, then prints a table of stripped sizes.
#
#   targets/build.sh [--test] [--small] [--jobs N] [TARGET...]
#     --test     also run the library unit tests and the integration tests that need neither
#                root nor binfmt_misc on each target (foreign ones under qemu-user)
#     --small    also build the `small` variant (nightly build-std, immediate abort,
#                size-optimised std) and add its sizes to the table
#     --dist     also write the shipped artifacts (implies --small): dist/ghostwatch-VERSION-TRIPLE,
#                the stripped small binary of every target built, and dist/SHA256SUMS
#     --symbols  only build the small variant unstripped (target/small-syms/) and print where
#                its bytes are: per crate and the largest symbols (llvm-nm -S); for size work
#     --jobs N   targets built at once (default 2; each cargo also uses every core)
#     TARGET...  a subset (default: all six)
#
# targets/setup.sh installs and caches what this needs; it is run first (a second when cached).
# Binaries: target/<triple>/release/ghostwatch (stable targets) and
# target/build-std/<triple>/<triple>/release/ghostwatch (nightly build-std targets);
# the small variant under target/small/<triple>/<triple>/release/ghostwatch.
# Size budgets, printed with the table: the stable aarch64 binary <= 640 KiB (a regression guard:
# that build is not shipped), the small aarch64/armv7 <= 256 KiB and mipsel <= 400 KiB (what
# firmware ships). GW_SIZE_GUARD=1 makes every one of them fail the run when exceeded (.ci/run
# sets it; targets/README.md "Size" says where the bytes go).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
cache="$root/target/cross"

all_targets=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl
  armv7-unknown-linux-musleabihf arm-unknown-linux-musleabi
  mipsel-unknown-linux-musl mips-unknown-linux-musl)
run_tests=0 small=0 dist=0 symbols=0 jobs=2 targets=()
while [ $# -gt 0 ]; do
  case $1 in
    --test) run_tests=1 ;;
    --small) small=1 ;;
    --jobs) jobs=$2; shift ;;
    --dist) dist=1 small=1 ;;
    --symbols) symbols=1 ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1") ;;
  esac
  shift
done
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")

targets/setup.sh

# Integration tests that run on a foreign target: they need no root, no binfmt_misc (they do
# not exec the ghostwatch binary) and no programs beyond the test binary itself.
portable_tests=(parsers_seed parsers_fixtures parsers_fuzz config_fuzz config_noalloc
  policy_noalloc reader_noalloc agent_noalloc)

# Unit tests whose subject is the host's view of this process, which qemu-user changes: the
# kernel resolves /proc/self/exe of an emulated process to the qemu binary itself. They run
# natively on x86_64 (`cargo test` and the x86_64 row here).
qemu_skip=(identity::tests::own_exe_and_uid)

# Per-target cargo settings, exported as CARGO_TARGET_<T>_* so each target's build is
# independent of the others (they run in parallel with separate target dirs).
#   $toolchain: stable or nightly (build-std)   $runner: how to run a binary of the target
setup_target() {
  local t=$1 up
  up=$(tr 'a-z-' 'A-Z_' <<<"$t")
  toolchain=nightly
  build_std=(-Z build-std=std,panic_abort)
  local flags=() linker
  case $t in
    x86_64-unknown-linux-musl)
      toolchain=stable build_std=() runner=() ;;
    aarch64-unknown-linux-musl)
      toolchain=stable build_std=() runner=(qemu-aarch64) linker=rust-lld ;;
    armv7-unknown-linux-musleabihf)
      linker=arm-linux-musleabihf-gcc runner=(qemu-arm -cpu cortex-a7)
      flags=(-C link-self-contained=no -L "native=$cache/$t") ;;
    arm-unknown-linux-musleabi)
      linker=arm-linux-musleabi-gcc runner=(qemu-arm -cpu arm1176)
      flags=(-C link-self-contained=no -L "native=$cache/$t") ;;
    mipsel-unknown-linux-musl)
      linker=rust-lld runner=(qemu-mipsel -cpu 24Kc)
      flags=(-C target-feature=+crt-static -L "native=$cache/$t") ;;
    mips-unknown-linux-musl)
      linker=rust-lld runner=(qemu-mips -cpu 24Kc)
      flags=(-C target-feature=+crt-static -L "native=$cache/$t") ;;
    *) echo "unknown target $t" >&2; exit 2 ;;
  esac
  # 32-bit musl: the libc crate's 64-bit time_t (musl >= 1.2 symbols), so wall-clock
  # timestamps survive 2038. Applies to std too, as build-std compiles it with these flags.
  case $t in arm*|mips*) flags+=(--cfg libc_unstable_musl_v1_2) ;; esac
  [ -n "${linker:-}" ] && export "CARGO_TARGET_${up}_LINKER=$linker"
  # For the callers (linker is local here): whether rust-lld links, for --icf=all.
  lld=0; [ "${linker:-}" = rust-lld ] && lld=1
  export "CARGO_TARGET_${up}_RUSTFLAGS=${flags[*]:-}"
  if [ ${#runner[@]} -gt 0 ]; then export "CARGO_TARGET_${up}_RUNNER=${runner[*]}"; fi
  if [ $toolchain = stable ]; then tdir=target; else tdir=target/build-std/$t; fi
}

# rustc's strip leaves MIPS's .pdr (procedure descriptors, ~13 % of the file) and
# .gnu.attributes: neither is loaded at run time; the cross binutils remove them.
strip_extra() { # triple binary
  case $1 in
    mipsel-*) mipsel-linux-gnu-strip -R .pdr -R .gnu.attributes -R .comment "$2" ;;
    mips-*) mips-linux-gnu-strip -R .pdr -R .gnu.attributes -R .comment "$2" ;;
  esac
}

# Builds (and tests) one target; its output goes to target/targets-log/<triple>.log.
build_one() {
  local t=$1
  setup_target "$t"
  local cargo=(cargo "+$toolchain")
  # The shipped binary of aarch64 uses the tiny code model: each address is one `adr` (±1 MiB)
  # instead of `adrp` + `add`, -13 KiB; the binary is far below 1 MiB, and if it ever outgrew
  # that the link would fail (out-of-range relocation), never run wrong. Not for the test
  # binaries, which are larger.
  # Identical-code folding where rust-lld links, as in the small variant (-3 KiB aarch64).
  local v="CARGO_TARGET_$(tr 'a-z-' 'A-Z_' <<<"$t")_RUSTFLAGS" tiny=()
  case $t in aarch64-*) tiny=(-Ccode-model=tiny) ;; esac
  [ $lld = 1 ] && tiny+=(-Clink-arg=--icf=all)
  env "$v=${!v} ${tiny[*]:-}" "${cargo[@]}" build --quiet --release --locked --target "$t" \
    --target-dir "$tdir" "${build_std[@]}"
  strip_extra "$t" "$tdir/$t/release/ghostwatch"
  if [ $run_tests = 1 ]; then
    local tests=(--lib)
    local x
    for x in "${portable_tests[@]}"; do [ -e "tests/$x.rs" ] && tests+=(--test "$x"); done
    local skip=()
    if [ ${#runner[@]} -gt 0 ]; then for x in "${qemu_skip[@]}"; do skip+=(--skip "$x"); done; fi
    "${cargo[@]}" test --quiet --profile qemu-test --locked --target "$t" --target-dir "$tdir" \
      "${build_std[@]/panic_abort/panic_unwind}" "${tests[@]}" -- "${skip[@]}"
  fi
  if [ $small = 1 ]; then build_small "$t"; fi
}

# The `small` variant: std rebuilt for size; panics abort at once, without a message, so no
# unwind tables and no panic locations are kept either. Per CPU: inline atomics on aarch64,
# Thumb-2 on ARMv7 (~25 % smaller than A32), non-PIC code on MIPS (a static binary needs no
# GOT-relative calls), and identical-code folding where rust-lld links.
build_small() {
  local t=$1 up
  setup_target "$t"
  up=$(tr 'a-z-' 'A-Z_' <<<"$t")
  local v="CARGO_TARGET_${up}_RUSTFLAGS"
  # -Zmir-opt-level=1 (what debug builds use): the release level's MIR inlining duplicates
  # code that LLVM at opt-level z then keeps (-1.7 KiB aarch64, -4 KiB armv7, -8 KiB mipsel).
  local extra=(-Zunstable-options -Cpanic=immediate-abort -Cforce-unwind-tables=no
    -Zlocation-detail=none -Zmir-opt-level=1)
  # The stable targets' musl crt objects, libc.a and libunwind.a come with rustup's std for
  # them; build-std leaves them out of its sysroot, so point rustc at stable's copy.
  [ $toolchain = stable ] &&
    extra+=(-L "native=$(rustc +stable --print sysroot)/lib/rustlib/$t/lib/self-contained")
  # aarch64: atomics inline (LL/SC, as on every ARMv8.0 core) instead of outline-atomics
  # helpers, which bring std's startup LSE probe and CPU-feature detection (~2 KiB); ghostwatch
  # has one thread, so LSE's gain under contention does not apply. And the tiny code model
  # (see build_one): -6 KiB here, std included.
  case $t in
    aarch64-*) extra+=(-Ctarget-feature=-outline-atomics -Ccode-model=tiny) ;;
    armv7-*) extra+=(-Ctarget-feature=+thumb-mode)
      # Linked by rust-lld under the gcc wrapper (which still adds musl's crt objects and
      # libgcc), for --icf=all; bfd cannot fold. No PT_INTERP: the musl specs name a dynamic
      # loader that lld, unlike bfd, would record in a static binary. -2.3 KiB.
      extra+=(-Clink-arg=-fuse-ld=lld "-Clink-arg=-B$(rustc +nightly --print sysroot)/lib/rustlib/$(rustc +nightly -vV | sed -n 's/^host: //p')/bin/gcc-ld"
        -Clink-arg=-Wl,--icf=all -Clink-arg=-Wl,--no-dynamic-linker
        # LLVM's machine outliner (repeated instruction sequences become one function; on by
        # default at opt-level z for aarch64 only): -5.2 KiB.
        -Cllvm-args=-enable-machine-outliner=always) ;;
    mips*) extra+=(-Crelocation-model=static) ;;
  esac
  [ $lld = 1 ] && extra+=(-Clink-arg=--icf=all)
  # GW_SMALL_RUSTFLAGS: more flags for an experiment (with --symbols), never set by CI.
  export "$v=${!v} ${extra[*]} ${GW_SMALL_RUSTFLAGS:-}"
  cargo +nightly build --quiet --release --locked --target "$t" --target-dir "${small_dir:-target/small}/$t" \
    -Z build-std=std,panic_abort -Z build-std-features=optimize_for_size
  # (--symbols keeps them: it strips a copy itself.)
  [ "${CARGO_PROFILE_RELEASE_STRIP:-}" = false ] ||
    strip_extra "$t" "${small_dir:-target/small}/$t/$t/release/ghostwatch"
}

# --symbols: the small variant with its symbols, and where its bytes are. A symbol's crate is
# the first path segment of its demangled name (`<a::B as c::D>::f` counts for a); C names
# (musl, libgcc) have none; OUTLINED_FUNCTION_* are LLVM's outlined sequences. Each address
# is counted once (identical-code folding gives one body several names).
symbols_of() {
  local t=$1 bin
  # Relinked every time (cheap): cargo would not notice a binary an earlier strip changed.
  rm -f target/small-syms/$t/$t/release/deps/ghostwatch-*
  small_dir=target/small-syms CARGO_PROFILE_RELEASE_STRIP=false build_small "$t"
  bin=target/small-syms/$t/$t/release/ghostwatch
  llvm-strip -o "$bin.stripped" "$bin"
  case $t in mips*) strip_extra "$t" "$bin.stripped" ;; esac
  echo "$t small: $(stat -c %s "$bin.stripped") bytes stripped ($bin.stripped)"
  llvm-size -A "$bin" | awk '$1 ~ /^\.(text|rodata|data|data\.rel\.ro|bss)$/ {printf "  %-14s %8d\n", $1, $2}'
  llvm-nm -S --size-sort --demangle "$bin" | python3 -c '
import sys, collections
seen, crates, syms = set(), collections.Counter(), []
for line in sys.stdin:
    parts = line.rstrip("\n").split(" ", 3)
    if len(parts) < 4 or parts[2] in "UwvWV": continue
    addr, size, name = parts[0], int(parts[1], 16), parts[3]
    if addr in seen or size == 0: continue
    seen.add(addr)
    n = name.lstrip("<&*")
    if n.startswith("mut "): n = n[4:]
    if n.startswith("OUTLINED_FUNCTION"): c = "LLVM-outlined"
    elif "::" in n: c = n.split("::")[0].split("<")[0]
    else: c = "C (musl, libgcc)"
    crates[c] += size
    syms.append((size, name))
print("  bytes per crate (symbols):")
for c, b in crates.most_common(): print("    %8d  %s" % (b, c))
print("  largest symbols:")
for b, n in sorted(syms, reverse=True)[:int(sys.argv[1])]: print("    %8d  %s" % (b, n[:150]))
' "${GW_SYMBOLS_TOP:-40}"
}

# Flash budgets of the small variant (issue 10; enforced where small_budget_enforced says), and
# of the stable build where one guards against regressions (issue 16). Over an enforced one
# fails the run with GW_SIZE_GUARD=1, as in CI.
# Every small budget holds since issue 16 and is enforced like the stable guard (a target
# whose budget is not yet met could be listed here as printed-only again).
small_budget_enforced() {
  case $1 in aarch64-*|armv7-*|mipsel-*) return 0 ;; *) return 1 ;; esac
}
small_budget_kib() {
  case $1 in
    aarch64-*|armv7-*) echo 256 ;;
    mipsel-*) echo 400 ;;
  esac
}
stable_budget_kib() {
  case $1 in
    aarch64-*) echo 640 ;;
  esac
}

bin_of() { setup_target "$1"; echo "$tdir/$1/release/ghostwatch"; }

if [ $symbols = 1 ]; then
  for t in "${targets[@]}"; do symbols_of "$t"; done
  exit 0
fi

mkdir -p target/targets-log
start=$(date +%s)
pids=() names=()
failed=0
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  ( s=$(date +%s); build_one "$t" >"target/targets-log/$t.log" 2>&1; rc=$?
    echo "$t: $([ $rc = 0 ] && echo ok || echo FAILED) in $(( $(date +%s) - s )) s" >&2; exit $rc ) &
  pids+=($!) names+=("$t")
done
for i in "${!pids[@]}"; do
  if ! wait "${pids[$i]}"; then
    failed=1
    echo "FAIL: ${names[$i]} (last lines of target/targets-log/${names[$i]}.log):" >&2
    tail -n 30 "target/targets-log/${names[$i]}.log" >&2
  fi
done
[ $failed = 0 ] || exit 1

# Check and smoke-run every binary; the seed report's JSON must be identical everywhere.
ref_json="" ref_t=""
rows=() notes=() over=0
for t in "${targets[@]}"; do
  setup_target "$t"
  bin=$(bin_of "$t")
  if ! file "$bin" | grep -Eq "statically linked|static-pie linked"; then
    echo "FAIL: $bin is not statically linked: $(file -b "$bin")" >&2; exit 1
  fi
  ver=$("${runner[@]}" "$bin" --version)
  # Fixtures hold little-endian kernel text; a big-endian kernel prints addresses the other
  # way round, so big-endian targets read a derived big-endian copy of the seed tree.
  seed=tests/fixtures/seed
  if [ "$(rustc +"$toolchain" --print cfg --target "$t" | grep target_endian)" = 'target_endian="big"' ]; then
    seed=target/fixtures-be/seed
    python3 tests/fixtures/make_big_endian.py tests/fixtures/seed $seed
  fi
  json=$("${runner[@]}" "$bin" report --proc-root "$seed" --json)
  if [ -z "$ref_json" ]; then ref_json=$json ref_t=$t
  elif [ "$json" != "$ref_json" ]; then
    echo "FAIL: seed report JSON on $t differs from $ref_t:" >&2
    diff <(echo "$ref_json") <(echo "$json") >&2 || true
    exit 1
  fi
  size=$(stat -c %s "$bin")
  small_size="-"
  sbin="target/small/$t/$t/release/ghostwatch"
  if [ $small = 1 ]; then
    "${runner[@]}" "$sbin" report --proc-root "$seed" --json | cmp -s - <(echo "$ref_json") ||
      { echo "FAIL: small $t seed report differs" >&2; exit 1; }
    small_size=$(stat -c %s "$sbin")
    budget_kib=$(small_budget_kib "$t")
    small_size="$small_size [$((small_size / 1024)) KiB]"
    if [ -n "$budget_kib" ]; then
      if [ $(( $(stat -c %s "$sbin") )) -le $((budget_kib * 1024)) ]; then
        notes+=("small $t: within its ${budget_kib} KiB budget")
      else
        notes+=("small $t: OVER its ${budget_kib} KiB budget by $(( $(stat -c %s "$sbin") - budget_kib * 1024 )) bytes$(small_budget_enforced "$t" || echo ' (not enforced yet)')")
        if small_budget_enforced "$t"; then over=1; fi
      fi
    fi
  fi
  budget_kib=$(stable_budget_kib "$t")
  if [ -n "$budget_kib" ]; then
    if [ "$size" -le $((budget_kib * 1024)) ]; then
      notes+=("$toolchain $t: within its ${budget_kib} KiB guard")
    else
      notes+=("$toolchain $t: OVER its ${budget_kib} KiB guard by $((size - budget_kib * 1024)) bytes")
      over=1
    fi
  fi
  kib=$((size / 1024))
  printf -v row '| %-32s | %-9s | %9d (%d KiB) | %-20s | %s |' "$t" "$toolchain" "$size" "$kib" "$small_size" "$ver"
  rows+=("$row")
done
echo
echo "| target                           | toolchain | stripped static     | small (build-std)    | --version |"
echo "|----------------------------------|-----------|---------------------|----------------------|-----------|"
printf '%s\n' "${rows[@]}"
echo
[ ${#notes[@]} -eq 0 ] || printf '%s\n' "${notes[@]}"
echo "seed report JSON identical on ${#targets[@]} targets ($(echo "$ref_json" | wc -c) bytes)"
if [ $dist = 1 ]; then
  # The shipped artifacts: what a firmware image takes, named so two versions never collide.
  version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
  rm -rf dist && mkdir -p dist
  for t in "${targets[@]}"; do
    cp "target/small/$t/$t/release/ghostwatch" "dist/ghostwatch-$version-$t"
  done
  (cd dist && sha256sum ghostwatch-* >SHA256SUMS)
  echo
  echo "dist/ (version $version):"
  (cd dist && for f in ghostwatch-*; do printf '  %-50s %8d bytes\n' "$f" "$(stat -c %s "$f")"; done)
  (cd dist && sha256sum -c --quiet SHA256SUMS) && echo "  SHA256SUMS: $(wc -l <dist/SHA256SUMS) entries, verified"
fi
if [ $over = 1 ]; then
  if [ "${GW_SIZE_GUARD:-0}" = 1 ]; then
    echo "FAIL: a build is over its enforced size guard or budget (see above)" >&2; exit 1
  fi
  echo "WARNING: a build is over its enforced size guard or budget (see above; GW_SIZE_GUARD=1 fails on it)"
fi
echo "targets/build.sh: $(( $(date +%s) - start )) s"
