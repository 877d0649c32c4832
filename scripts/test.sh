#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Build (if needed) and run every test that needs no GPU: the C test runner (each test in its
# own process with a time limit) and the Python binding's tests when python3 is available.
#   bash scripts/test.sh [mixcomm-tests arguments, e.g. --filter bootstrap]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${MIXCOMM_BUILD_DIR:-$here/build}
cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Release ${MIXCOMM_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j"$(nproc)"
"$build/mixcomm-tests" -j "$(nproc)" "$@"
if [ $# -eq 0 ] && [ -d "$here/python/tests" ] && command -v python3 >/dev/null; then
  MIXCOMM_LIBRARY="$build/libmixcomm.so" PYTHONPATH="$here/python" \
    python3 -m pytest -q "$here/python/tests"
fi
