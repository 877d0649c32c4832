#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Run the GPU test suite on a machine with a GPU, in one command:
#   bash scripts/gpu-suite.sh [mixcomm-gpu-tests arguments...]
# Builds (unless MIXCOMM_SKIP_BUILD=1 and build/ already holds the binaries), starts the CUDA MPS
# daemon when several ranks will share a GPU (so their kernels run concurrently), runs the
# suite, and stops MPS again, also on failure (scripts/lib-mps.sh; MIXCOMM_NO_MPS=1 skips MPS).
# The reliability programs and compute-sanitizer have their own scripts (reliability.sh,
# sanitize.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${MIXCOMM_BUILD_DIR:-$here/build}
# shellcheck source=scripts/lib-env.sh
. "$here/scripts/lib-env.sh"
# shellcheck source=scripts/lib-mps.sh
. "$here/scripts/lib-mps.sh"

if [ "${MIXCOMM_SKIP_BUILD:-0}" != 1 ] || [ ! -x "$build/mixcomm-gpu-tests" ]; then
  cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j"$(nproc)"
fi

# The NVSHMEM plugin must find libnvshmem_host.so.3 (scripts/lib-env.sh).
mixcomm_nvshmem_env

ngpu=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
if [ "${ngpu:-0}" -lt 1 ]; then
  echo "gpu-suite: no GPU visible (nvidia-smi -L lists none)" >&2
  exit 2
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader

# Stopped again on exit, also on failure (scripts/lib-mps.sh; MIXCOMM_NO_MPS=1 skips it).
trap mixcomm_mps_stop EXIT
mixcomm_mps_start gpu-suite

"$build/mixcomm-gpu-tests" "$@"
