#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The reliability programs on a machine with a GPU, one command each (docs/reliability.md):
#   bash scripts/reliability.sh faults [mixcomm-fault-tests arguments]   default: --ranks 4,2
#   bash scripts/reliability.sh soak [mixcomm-soak arguments]            default: --ranks 4
# Builds (unless MIXCOMM_SKIP_BUILD=1 and the binary exists), starts the CUDA MPS daemon (the
# ranks share the GPU; scripts/lib-mps.sh, MIXCOMM_NO_MPS=1 to skip), runs the program, and
# stops MPS again, also on failure. The exit status is the program's. Both programs are CMake
# targets (tests/gpu/faults.cmake, included by CMakeLists.txt).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${MIXCOMM_BUILD_DIR:-$here/build}
# shellcheck source=scripts/lib-env.sh
. "$here/scripts/lib-env.sh"
# shellcheck source=scripts/lib-mps.sh
. "$here/scripts/lib-mps.sh"

what=${1:-}
case $what in
  faults)
    prog=mixcomm-fault-tests
    ;;
  soak)
    prog=mixcomm-soak
    ;;
  *)
    echo "usage: bash scripts/reliability.sh faults|soak [program arguments]" >&2
    exit 2
    ;;
esac
shift
args=("$@")
if [ ${#args[@]} -eq 0 ]; then
  if [ "$what" = faults ]; then args=(--ranks "4,2"); else args=(--ranks 4); fi
fi

if [ "${MIXCOMM_SKIP_BUILD:-0}" != 1 ] || [ ! -x "$build/$prog" ]; then
  cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j"$(nproc)" --target "$prog"
fi

# The NVSHMEM plugin must find libnvshmem_host.so.3 (scripts/lib-env.sh).
mixcomm_nvshmem_env

if ! nvidia-smi -L >/dev/null 2>&1; then
  echo "reliability: no GPU visible (nvidia-smi -L failed)" >&2
  exit 2
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
trap mixcomm_mps_stop EXIT
mixcomm_mps_start reliability
rc=0
"$build/$prog" "${args[@]}" || rc=$?
exit $rc
