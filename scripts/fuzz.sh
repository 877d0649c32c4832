#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Build the libFuzzer targets (tests/fuzz, clang with AddressSanitizer and
# UndefinedBehaviorSanitizer) and run them, one after the other, each until it has tried RUNS
# inputs or SECONDS seconds have passed, whichever comes first.
#
#   bash scripts/fuzz.sh [options] [target ...]       (default: every target)
#     --runs N        inputs per target (default 10000000)
#     --time S        seconds per target at most (default 3600)
#     --jobs N        fuzzing processes per target (default 1; libFuzzer -fork=N when > 1)
#     --merge         afterwards, add to tests/fuzz/corpus/<target> the inputs of the run that
#                     reach code the corpus does not reach yet
#     --replay        only replay tests/fuzz/corpus (no fuzzing)
#
# The working corpus of a run is build-fuzz/work/<target> (kept between runs, not committed);
# a failing input is saved as build-fuzz/findings/<target>/crash-* and the script fails.
# Per target it prints the inputs tried, the time and the speed (also in
# build-fuzz/fuzz-summary.txt). Environment: MIXCOMM_FUZZ_BUILD_DIR (default build-fuzz),
# CC (default clang).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${MIXCOMM_FUZZ_BUILD_DIR:-$here/build-fuzz}
all_targets="tcp_hello tcp_messages fd_exchange cache tool_args env"
runs=10000000
secs=3600
jobs=1
merge=0
replay=0
targets=""
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --time) secs=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --merge) merge=1; shift ;;
    --replay) replay=1; shift ;;
    -h|--help) sed -n '3,19p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) targets="$targets $1"; shift ;;
  esac
done
targets=${targets:-$all_targets}
for t in $targets; do
  case " $all_targets " in *" $t "*) ;; *) echo "fuzz.sh: no target '$t' ($all_targets)" >&2; exit 2 ;; esac
done

cc=${CC:-clang}
if ! command -v "$cc" >/dev/null; then
  echo "fuzz.sh: $cc not found; install clang (apt-get install clang libclang-rt-dev)" >&2
  exit 2
fi
export PATH=/usr/local/cuda/bin:$PATH
cmake -S "$here" -B "$build" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DMIXCOMM_BUILD_FUZZERS=ON -DMIXCOMM_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target $(printf 'fuzz_%s ' $targets)

summary=$build/fuzz-summary.txt
: >"$summary"
failed=0
for t in $targets; do
  bin=$build/fuzz_$t
  seeds=$here/tests/fuzz/corpus/$t
  work=$build/work/$t
  findings=$build/findings/$t
  mkdir -p "$work" "$findings" "$seeds"
  log=$build/fuzz-$t.log
  start=$(date +%s.%N)
  if [ "$replay" = 1 ]; then
    set +e
    "$bin" -runs=0 "$seeds" >"$log" 2>&1
    rc=$?
    set -e
  else
    # -use_value_profile helps through comparisons with constants; -timeout: a single input
    # taking over 10 s is a hang.
    args=(-runs="$runs" -max_total_time="$secs" -timeout=10 -rss_limit_mb=4096
          -use_value_profile=1 -print_final_stats=1 -artifact_prefix="$findings/")
    if [ "$jobs" -gt 1 ]; then
      args+=(-fork="$jobs" -ignore_crashes=0)
    fi
    set +e
    "$bin" "${args[@]}" "$work" "$seeds" >"$log" 2>&1
    rc=$?
    set -e
  fi
  end=$(date +%s.%N)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  if [ -z "$execs" ]; then # replay, or a fork run: "Done N runs" / "#N DONE"
    execs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p; s/^#\([0-9]*\)[[:space:]]*DONE.*/\1/p' "$log" |
      tail -1)
  fi
  line=$(awk -v t="$t" -v n="${execs:-?}" -v a="$start" -v b="$end" -v rc="$rc" 'BEGIN {
    s = b - a; printf "%-13s %12s inputs %9.1f s %10.0f inputs/s  %s", t, n, s,
    (n ~ /^[0-9]+$/ && s > 0) ? n / s : 0, rc == 0 ? "clean" : "FAILED (rc " rc ")" }')
  echo "$line" | tee -a "$summary"
  if [ "$rc" != 0 ]; then
    failed=1
    grep -E "property failed|ERROR: |SUMMARY|runtime error" "$log" | head -5 >&2 || true
    echo "  log: $log; inputs: $findings" >&2
  elif [ "$merge" = 1 ]; then
    # Adds to the corpus only the inputs of the run that reach code the corpus does not.
    "$bin" -merge=1 "$seeds" "$work" >"$build/merge-$t.log" 2>&1
    echo "  corpus/$t: $(ls "$seeds" | wc -l) inputs, $(du -sb "$seeds" | cut -f1) bytes"
  fi
done
exit $failed
