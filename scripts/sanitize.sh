#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# compute-sanitizer over the GPU suite's main cases with 2 ranks, in one command:
#   bash scripts/sanitize.sh [TOOL...]     TOOLs: memcheck racecheck synccheck initcheck
#                                          (default: all four, in that order)
# For each tool and case it starts two ranks, each as
#   RANK=r WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=p compute-sanitizer --tool TOOL \
#     build/mixcomm-gpu-tests --sizes 2 --quick --dtypes bf16 --only CASE --timeout-ms 60000
# so every rank runs under the tool (both topologies of 2 ranks: tp 1 x dp 2 and tp 2 x dp 1). Then it prints one line per run and one per tool, e.g.
#   memcheck matrix: 0 errors (3 processes; suite: 2 passed, 0 failed; 41 s)
#   memcheck: 0 errors
# parsed from the "ERROR SUMMARY: N errors" line every instrumented process prints (racecheck
# also reports "RACECHECK SUMMARY: ... (E errors, W warnings)"; its errors are counted too), and
# exits non-zero if any tool found an error, a run printed no summary (the tool did not attach),
# a run timed out, or the suite itself failed.
#
# What the tools can see. memcheck checks every global, shared and local access of the kernels
# (out of bounds, misaligned, to freed memory) and the CUDA API calls; initcheck flags reads of
# device memory this process never wrote. racecheck and synccheck only analyse SHARED memory and
# block-level barriers (__syncthreads and friends): the kernels' real synchronisation, between
# ranks, goes through global memory of other processes (poisoned workspace rows, tags, fences,
# bounded polling), which no sanitizer tool models; the fault tests and the soak
# (scripts/reliability.sh) cover that.
#
# Environment:
#   MIXCOMM_SANITIZE_CASES      suite tests to run (default "matrix graph")
#   MIXCOMM_SANITIZE_ARGS       extra mixcomm-gpu-tests arguments
#   MIXCOMM_SANITIZE_TIMEOUT_S  limit of one run (default 280: two runs of one tool fit a 10-minute
#                               command; the sanitizer slows kernels a lot, so pass one TOOL per
#                               command on a machine with such a limit)
#   MIXCOMM_NO_MPS=1            do not start MPS (if a run under MPS prints no summary at all, the
#                               script retries that run once without MPS by itself)
#   COMPUTE_SANITIZER           path of compute-sanitizer
#   MIXCOMM_BUILD_DIR, MIXCOMM_SKIP_BUILD=1   as in scripts/gpu-suite.sh
# Logs: $MIXCOMM_SANITIZE_LOGS (default /tmp/mixcomm-sanitize), one file per run.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${MIXCOMM_BUILD_DIR:-$here/build}
# shellcheck source=scripts/lib-env.sh
. "$here/scripts/lib-env.sh"
# shellcheck source=scripts/lib-mps.sh
. "$here/scripts/lib-mps.sh"

tools=("$@")
if [ ${#tools[@]} -eq 0 ]; then
  tools=(memcheck racecheck synccheck initcheck)
fi
for t in "${tools[@]}"; do
  case $t in
    memcheck | racecheck | synccheck | initcheck) ;;
    *)
      echo "sanitize: unknown tool '$t' (memcheck, racecheck, synccheck, initcheck)" >&2
      exit 2
      ;;
  esac
done
read -r -a cases <<<"${MIXCOMM_SANITIZE_CASES:-matrix graph}"
read -r -a extra <<<"${MIXCOMM_SANITIZE_ARGS:-}"
limit=${MIXCOMM_SANITIZE_TIMEOUT_S:-280}
logs=${MIXCOMM_SANITIZE_LOGS:-/tmp/mixcomm-sanitize}
mkdir -p "$logs"

cs=${COMPUTE_SANITIZER:-}
if [ -z "$cs" ]; then
  for c in "$(command -v compute-sanitizer 2>/dev/null)" "${CUDA_HOME:-/usr/local/cuda}/bin/compute-sanitizer" \
    /usr/local/cuda/compute-sanitizer/compute-sanitizer; do
    if [ -n "$c" ] && [ -x "$c" ]; then
      cs=$c
      break
    fi
  done
fi
if [ -z "$cs" ]; then
  echo "sanitize: compute-sanitizer not found (set COMPUTE_SANITIZER)" >&2
  exit 2
fi

if [ "${MIXCOMM_SKIP_BUILD:-0}" != 1 ] || [ ! -x "$build/mixcomm-gpu-tests" ]; then
  cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null || exit 2
  cmake --build "$build" -j"$(nproc)" --target mixcomm-gpu-tests || exit 2
fi
# The NVSHMEM plugin must find libnvshmem_host.so.3 (scripts/lib-env.sh).
mixcomm_nvshmem_env
if ! nvidia-smi -L >/dev/null 2>&1; then
  echo "sanitize: no GPU visible (nvidia-smi -L failed)" >&2
  exit 2
fi
"$cs" --version | tail -1

trap mixcomm_mps_stop EXIT
mixcomm_mps_start sanitize

# One run: prints "errors processes suite-line rc seconds" on stdout, the log in $logs.
# The two ranks are started here as two processes (the launcher mode of mixcomm-gpu-tests:
# RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT), each under the tool: forked children that do
# not exec are not followed by compute-sanitizer, so the suite's own forking would leave the
# kernels unchecked.
run_one() {
  local tool=$1 case=$2 log=$3
  local port start=$SECONDS rc=0 pids=() r
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  for r in 0 1; do
    RANK=$r WORLD_SIZE=2 LOCAL_RANK=$r LOCAL_WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
      timeout -k 10 "$limit" "$cs" --tool "$tool" "$build/mixcomm-gpu-tests" --sizes 2 --quick \
      --dtypes bf16 --only "$case" --timeout-ms 60000 "${extra[@]}" >"$log.rank$r" 2>&1 &
    pids+=($!)
  done
  for r in "${pids[@]}"; do
    wait "$r" || rc=$?
  done
  cat "$log.rank0" "$log.rank1" >"$log"
  local secs=$((SECONDS - start))
  local errors processes race_errors race_processes
  errors=$(grep -Eo 'ERROR SUMMARY: [0-9]+ error' "$log" | awk '{s += $3} END {print s + 0}')
  processes=$(grep -Ec 'ERROR SUMMARY: [0-9]+ error' "$log")
  race_errors=$(grep -Eo 'RACECHECK SUMMARY: .*\(([0-9]+) error' "$log" |
    grep -Eo '\(([0-9]+) error' | tr -dc '0-9\n' | awk '{s += $1} END {print s + 0}')
  race_processes=$(grep -Ec 'RACECHECK SUMMARY:' "$log")
  if [ "$race_errors" -gt "$errors" ]; then
    errors=$race_errors
  fi
  if [ "$race_processes" -gt "$processes" ]; then
    processes=$race_processes
  fi
  # Both ranks must report a clean suite.
  local suite clean
  clean=$(grep -Ec '^[0-9]+ passed, 0 failed' "$log")
  suite=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1 | sed -E 's/ \(.*//')
  if [ "$clean" -ne 2 ]; then
    suite="${suite:-no-suite-summary} (not clean on both ranks)"
  fi
  echo "$errors $processes ${rc} ${secs} ${suite:-no-suite-summary}"
}

status=0
for tool in "${tools[@]}"; do
  tool_errors=0
  tool_bad=0
  for case in "${cases[@]}"; do
    log="$logs/$tool-$case.log"
    read -r errors processes rc secs suite < <(run_one "$tool" "$case" "$log")
    if [ "$processes" -eq 0 ] && [ "${MIXCOMM_MPS_STARTED:-0}" = 1 ]; then
      echo "sanitize: $tool $case printed no ERROR SUMMARY under MPS; stopping MPS and retrying" \
        "without it (see $log)"
      mixcomm_mps_stop
      export MIXCOMM_NO_MPS=1
      read -r errors processes rc secs suite < <(run_one "$tool" "$case" "$log")
    fi
    note=""
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
      note="; TIMED OUT after ${limit} s"
      tool_bad=1
    fi
    if [ "$processes" -eq 0 ]; then
      note="$note; no ERROR SUMMARY: the tool did not run"
      tool_bad=1
    fi
    case $suite in
      *" passed, 0 failed") ;;
      *)
        note="$note; the suite failed"
        tool_bad=1
        ;;
    esac
    echo "$tool $case: $errors errors ($processes processes; suite: ${suite//-/ }; ${secs} s$note)"
    if [ "$errors" -gt 0 ] || [ -n "$note" ]; then
      grep -E '^========= (Invalid|Race|Barrier|Uninitialized|Program hit|Error|ERROR)|^=========     at ' \
        "$log" | head -20 | sed 's/^/    /'
      echo "    log: $log"
    fi
    tool_errors=$((tool_errors + errors))
  done
  echo "$tool: $tool_errors errors$([ "$tool_bad" = 1 ] && echo ' (and a run failed: see above)')"
  if [ "$tool_errors" -gt 0 ] || [ "$tool_bad" = 1 ]; then
    status=1
  fi
done
exit $status
