# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Start and stop the CUDA MPS daemon for scripts whose ranks share a GPU (without MPS their
# kernels time-slice instead of running concurrently, and the fused kernels, which spin on their
# peers, crawl). Source it, then:
#   mixcomm_mps_start TAG     start the daemon unless MIXCOMM_NO_MPS=1 (TAG prefixes messages)
#   mixcomm_mps_stop          stop it again if mixcomm_mps_start started it
#   trap mixcomm_mps_stop EXIT
# The pipe and log directories default to /tmp/mixcomm-mps-pipe and /tmp/mixcomm-mps-log
# (CUDA_MPS_PIPE_DIRECTORY / CUDA_MPS_LOG_DIRECTORY override them; they are exported, so the
# processes started afterwards connect to this daemon). A daemon already running on the same
# pipe directory is used as it is and left running.

MIXCOMM_MPS_STARTED=0

mixcomm_mps_start() {
  local tag=${1:-mps}
  if [ "${MIXCOMM_NO_MPS:-0}" = 1 ]; then
    echo "$tag: MIXCOMM_NO_MPS=1: not starting MPS; ranks sharing a GPU will time-slice"
    return 0
  fi
  if ! command -v nvidia-cuda-mps-control >/dev/null 2>&1; then
    echo "$tag: nvidia-cuda-mps-control not found; ranks sharing a GPU will time-slice" >&2
    return 0
  fi
  export CUDA_MPS_PIPE_DIRECTORY=${CUDA_MPS_PIPE_DIRECTORY:-/tmp/mixcomm-mps-pipe}
  export CUDA_MPS_LOG_DIRECTORY=${CUDA_MPS_LOG_DIRECTORY:-/tmp/mixcomm-mps-log}
  mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"
  if nvidia-cuda-mps-control -d; then
    MIXCOMM_MPS_STARTED=1
    echo "$tag: MPS daemon started"
  else
    echo "$tag: could not start MPS (already running?); ranks sharing a GPU may time-slice" >&2
  fi
}

mixcomm_mps_stop() {
  if [ "${MIXCOMM_MPS_STARTED:-0}" = 1 ]; then
    echo quit | nvidia-cuda-mps-control >/dev/null 2>&1 || true
    MIXCOMM_MPS_STARTED=0
  fi
}
