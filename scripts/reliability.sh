#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The reliability programs on a machine with a GPU, one command each (docs/reliability.md):
#   bash scripts/reliability.sh faults [mixcomm-fault-tests arguments]   default: --ranks 4,2
#   bash scripts/reliability.sh soak [mixcomm-soak arguments]            default: --ranks 4
# Builds (unless MIXCOMM_SKIP_BUILD=1 and the binary exists), starts the CUDA MPS daemon (the
# ranks share the GPU; scripts/lib-mps.sh, MIXCOMM_NO_MPS=1 to skip), runs the program, and
# stops MPS again, also on failure. The exit status is the program's.
# If CMakeLists.txt does not include tests/gpu/faults.cmake yet, the two programs are compiled
# by hand against the static library that the build made.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${MIXCOMM_BUILD_DIR:-$here/build}
# shellcheck source=scripts/lib-mps.sh
. "$here/scripts/lib-mps.sh"

what=${1:-}
case $what in
  faults)
    prog=mixcomm-fault-tests
    src=tests/gpu/faults.c
    ;;
  soak)
    prog=mixcomm-soak
    src=tests/gpu/soak.c
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
  if grep -q 'tests/gpu/faults.cmake' "$here/CMakeLists.txt"; then
    cmake --build "$build" -j"$(nproc)" --target "$prog"
  else
    cmake --build "$build" -j"$(nproc)" --target mixcomm_static
    cuda=${CUDA_HOME:-/usr/local/cuda}
    flags=(-std=gnu11 -O2 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter
      -I"$here/include" -I"$here/src" -I"$here/tools" -I"$here/tests" -I"$build/generated"
      -I"$cuda/include")
    objs=()
    for s in "$src" tools/common/refdata.c tools/common/spawn.c; do
      o="$build/$(basename "$s" .c).reliability.o"
      gcc "${flags[@]}" -c "$here/$s" -o "$o"
      objs+=("$o")
    done
    g++ "${objs[@]}" "$build/libmixcomm.a" -L"$cuda/lib64" -L"$cuda/targets/x86_64-linux/lib" \
      -lcudadevrt -lcudart_static -lrt -lpthread -ldl -lm -o "$build/$prog"
    echo "reliability: built $build/$prog by hand (faults.cmake is not included yet)"
  fi
fi

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
