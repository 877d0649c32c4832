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
# The kernels must be built for Hopper unless the caller chose other architectures (CUDAARCHS, or
# CMAKE_CUDA_ARCHITECTURES in MIXCOMM_CMAKE_ARGS): a build that silently fell back to nvcc's
# default (sm_75) runs on the H100 only through JIT compilation of its PTX.
archs=$(sed -n 's/^CMAKE_CUDA_ARCHITECTURES:[A-Z]*=//p' "$build/CMakeCache.txt")
case "${CUDAARCHS:-}|${MIXCOMM_CMAKE_ARGS:-}" in
  *CMAKE_CUDA_ARCHITECTURES*) ;;
  \|*)
    if ! grep -Eq '(^|;)90' <<<"$archs"; then
      echo "test.sh: $build builds the kernels for CUDA architectures '$archs', expected 90" \
        "(reconfigure, or set CUDAARCHS to choose others)" >&2
      exit 1
    fi
    ;;
esac
"$build/mixcomm-tests" -j "$(nproc)" "$@"
if [ $# -eq 0 ] && [ -d "$here/python/tests" ] && command -v python3 >/dev/null; then
  MIXCOMM_LIBRARY="$build/libmixcomm.so" PYTHONPATH="$here/python" \
    python3 -m pytest -q "$here/python/tests"
fi
