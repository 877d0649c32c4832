#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Run examples/dp_attention_layer.py with its ranks sharing this machine's GPU(s) under CUDA MPS
# (started here unless one runs or MIXCOMM_NO_MPS=1, stopped again on exit), through torchrun:
#   bash examples/run_dp_attention_mps.sh [--nproc N] [--nodes M] [dp_attention_layer.py args]
# --nproc: ranks in all (default 4: TP 2 x DP 2); --nodes M: emulate M nodes on this host (one
# torchrun per node, nproc/M ranks each; DP across them, NVSHMEM between them). The library:
# $MIXCOMM_LIBRARY, else build/libmixcomm.so. Bounded by MIXCOMM_EXAMPLE_TIMEOUT (default 240 s).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib-env.sh
. "$here/scripts/lib-env.sh"
# shellcheck source=scripts/lib-mps.sh
. "$here/scripts/lib-mps.sh"

nproc=4
nodes=1
while [ $# -gt 0 ]; do
  case "$1" in
    --nproc) nproc=$2; shift 2 ;;
    --nodes) nodes=$2; shift 2 ;;
    *) break ;;
  esac
done
if [ $((nproc % nodes)) -ne 0 ]; then
  echo "run_dp_attention_mps: --nproc $nproc is not a multiple of --nodes $nodes" >&2
  exit 2
fi
if [ -z "${MIXCOMM_LIBRARY:-}" ] && [ -f "$here/build/libmixcomm.so" ]; then
  export MIXCOMM_LIBRARY=$here/build/libmixcomm.so
fi
export PYTHONPATH=$here/python${PYTHONPATH:+:$PYTHONPATH}
export MIXCOMM_TIMEOUT_MS=${MIXCOMM_TIMEOUT_MS:-15000}
mixcomm_nvshmem_env

trap mixcomm_mps_stop EXIT
mixcomm_mps_start dp-attention

limit=${MIXCOMM_EXAMPLE_TIMEOUT:-240}
port=$(python3 -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
per_node=$((nproc / nodes))
pids=()
for ((n = 0; n < nodes; n++)); do
  timeout "$limit" python3 -m torch.distributed.run --nnodes "$nodes" --node-rank "$n" \
    --nproc-per-node "$per_node" --master-addr 127.0.0.1 --master-port "$port" \
    "$here/examples/dp_attention_layer.py" "$@" &
  pids+=($!)
done
rc=0
for pid in "${pids[@]}"; do
  wait "$pid" || rc=$?
done
exit "$rc"
