#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The bounded fuzzing step of CI: build the libFuzzer targets (clang, AddressSanitizer,
# UndefinedBehaviorSanitizer), replay the corpus in tests/fuzz/corpus, then fuzz each target
# for MIXCOMM_FUZZ_CI_SECONDS seconds (default 20; six targets, about two minutes in all).
# Installs clang from Debian if it is missing. Longer runs: scripts/fuzz.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
secs=${MIXCOMM_FUZZ_CI_SECONDS:-20}
probe='#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t* d, size_t n) { (void)d; (void)n; return 0; }'
if ! command -v clang >/dev/null 2>&1 ||
   ! printf '%s\n' "$probe" |
     clang -x c -fsanitize=fuzzer,address,undefined -o /dev/null - >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq clang libclang-rt-dev >/dev/null
fi
start=$(date +%s)
bash "$here/scripts/fuzz.sh" --replay
bash "$here/scripts/fuzz.sh" --time "$secs" --runs 100000000
echo "fuzz-ci: replay and ${secs} s per target took $(($(date +%s) - start)) s"
