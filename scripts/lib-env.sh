# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Environment shared by the GPU scripts (gpu-suite.sh, reliability.sh, sanitize.sh). Source it,
# then:
#   mixcomm_nvshmem_env       make libnvshmem_host.so.3 findable for the multi-node plugin
# The NVSHMEM plugin (libmixcomm_nvshmem.so) finds libnvshmem_host.so.3 through its run path (the
# nvidia-nvshmem-cu13 wheel seen at build time) or through LD_LIBRARY_PATH. On a machine where
# the build's wheel path does not exist, this puts the lib/ folder of the machine's own
# nvidia-nvshmem-cu13 wheel (if python3 can import nvidia.nvshmem) at the front of
# LD_LIBRARY_PATH, once; the processes the script starts inherit it. Without the wheel it
# changes nothing.

mixcomm_nvshmem_env() {
  local lib
  lib=$(python3 -c "import nvidia.nvshmem as m; print(list(m.__path__)[0] + '/lib')" \
    2>/dev/null || true)
  if [ -z "$lib" ] || [ ! -d "$lib" ]; then
    return 0
  fi
  case ":${LD_LIBRARY_PATH:-}:" in
    *":$lib:"*) ;;
    *) export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ;;
  esac
}
