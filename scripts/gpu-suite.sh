#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Run the GPU test suite on a machine with a GPU, in one command:
#   bash scripts/gpu-suite.sh [mixcomm-gpu-tests arguments...]
# Builds (unless MIXCOMM_SKIP_BUILD=1 and build/ already holds the binaries), starts the CUDA MPS
# daemon when several ranks will share a GPU (so their kernels run concurrently), runs the
# suite, and stops MPS again, also on failure. Extra suites:
#   MIXCOMM_GPU_SUITE=sanitize  -> compute-sanitizer over the main cases (scripts/sanitize.sh)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${MIXCOMM_BUILD_DIR:-$here/build}

if [ "${MIXCOMM_SKIP_BUILD:-0}" != 1 ] || [ ! -x "$build/mixcomm-gpu-tests" ]; then
  cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j"$(nproc)"
fi

# The NVSHMEM plugin finds libnvshmem_host.so.3 through its run path (the wheel at build time) or
# here, from this machine's nvidia-nvshmem-cu13 wheel.
nvshmem_lib=$(python3 -c "import nvidia.nvshmem as m; print(list(m.__path__)[0] + '/lib')" 2>/dev/null || true)
if [ -n "$nvshmem_lib" ] && [ -d "$nvshmem_lib" ]; then
  export LD_LIBRARY_PATH="$nvshmem_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi

ngpu=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
if [ "${ngpu:-0}" -lt 1 ]; then
  echo "gpu-suite: no GPU visible (nvidia-smi -L lists none)" >&2
  exit 2
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader

started_mps=0
stop_mps() {
  if [ "$started_mps" = 1 ]; then
    echo quit | nvidia-cuda-mps-control >/dev/null 2>&1 || true
    started_mps=0
  fi
}
trap stop_mps EXIT
if [ "${MIXCOMM_NO_MPS:-0}" != 1 ]; then
  export CUDA_MPS_PIPE_DIRECTORY=${CUDA_MPS_PIPE_DIRECTORY:-/tmp/mixcomm-mps-pipe}
  export CUDA_MPS_LOG_DIRECTORY=${CUDA_MPS_LOG_DIRECTORY:-/tmp/mixcomm-mps-log}
  mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"
  if nvidia-cuda-mps-control -d; then
    started_mps=1
    echo "gpu-suite: MPS daemon started"
  else
    echo "gpu-suite: could not start MPS; ranks sharing a GPU will time-slice" >&2
  fi
fi

"$build/mixcomm-gpu-tests" "$@"
