#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""mixcomm under torchrun: the mixed TP/DP collective of this topology in one kernel, checked
against a reference made with torch.distributed, then captured into a CUDA graph and timed.

    torchrun --nproc-per-node 8 examples/torchrun_example.py                 # TP 4 x DP 2
    torchrun --nproc-per-node 8 examples/torchrun_example.py --local-tp-size 8   # pure TP
    torchrun --nproc-per-node 4 examples/torchrun_example.py --local-tp-size 1   # pure DP
    torchrun --nnodes 2 --node-rank N --master-addr HOST --nproc-per-node 8 \\
        examples/torchrun_example.py                                       # two nodes

One GPU per rank: the default process group is NCCL (mixcomm makes its own gloo group for its
setup). More ranks than GPUs: ranks share GPUs, which needs the CUDA MPS daemon
(`nvidia-cuda-mps-control -d`); the default group is then gloo and the grid is shrunk so that
every rank's kernel fits on the GPU at once.
"""
import argparse
import importlib.util
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist

if importlib.util.find_spec("mixcomm") is None:  # not installed: use this checkout's package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))
from mixcomm import MixedCommHandler, MixedCommOp, run_mixed_comm  # noqa: E402

GATHER = (MixedCommOp.ALLGATHER, MixedCommOp.ALLREDUCE_ALLGATHER)
SCATTER = (MixedCommOp.REDUCESCATTER, MixedCommOp.REDUCESCATTER_ALLREDUCE)


def dp_rank_of(r, h):
    """dp_rank of world rank r (TP varies fastest, node-major world numbering)."""
    local, inter = r % h.local_size, r // h.local_size
    return (local // h.local_tp_size) + (inter // h.inter_tp_size) * h.local_dp_size


def reference(op, inputs, h):
    """This rank's expected output from every rank's input (float64)."""
    if op in GATHER:  # block d = sum of the inputs of the ranks with dp_rank d
        return torch.cat([sum(x for r, x in enumerate(inputs) if dp_rank_of(r, h) == d)
                          for d in range(h.dp_size)])
    if op in SCATTER:  # sum over all ranks of their input block dp_rank
        n = inputs[0].shape[0] // h.dp_size
        return sum(x[h.dp_rank * n:(h.dp_rank + 1) * n] for x in inputs)
    return sum(inputs)  # ALLREDUCE


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--local-tp-size", type=int, default=None,
                    help="TP size inside a node (default: half the node when it has 4 or more "
                         "ranks, else the whole node)")
    ap.add_argument("--rows", type=int, default=16, help="rows (tokens) per rank")
    ap.add_argument("--hidden", type=int, default=4096)
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    ap.add_argument("--no-autotune", action="store_true", help="skip autotune at creation")
    ap.add_argument("--iters", type=int, default=50, help="graph replays to time")
    args = ap.parse_args()

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ["LOCAL_RANK"])
    local_size = int(os.environ["LOCAL_WORLD_SIZE"])
    node, nodes = rank // local_size, world // local_size
    ngpu = torch.cuda.device_count()
    device = torch.device("cuda", local_rank % ngpu)
    torch.cuda.set_device(device)
    share = -(-local_size // ngpu)  # ranks per GPU
    dist.init_process_group("nccl" if share == 1 else "gloo")
    grid = None
    if share > 1:
        sms = torch.cuda.get_device_properties(device).multi_processor_count
        grid = max(1, min(32, sms // share))
    tp = args.local_tp_size
    if tp is None:
        tp = local_size // 2 if local_size >= 4 and local_size % 2 == 0 else local_size
    dtype = getattr(torch, args.dtype)

    # FlashInfer MixedCommHandler's constructor; COLLECTIVE. The ranks meet through torch.distributed.
    handler = MixedCommHandler(rank, world, local_rank, local_size, node, nodes,
                               tp, None, None, None, dtype, device, grid_size=grid,
                               use_autotune=not args.no_autotune)
    op = handler.get_valid_op_list()[0]  # AR (pure TP), AG (pure DP) or AR+AG (mixed)
    rows = args.rows * handler.dp_size if op in SCATTER else args.rows

    # One call on the current stream; x_out is allocated and returned.
    x = torch.randn(rows, args.hidden, generator=torch.Generator().manual_seed(rank)).to(
        device=device, dtype=dtype)
    y = run_mixed_comm(op, handler, x)

    # Reference: every rank's input through torch.distributed, summed in float64.
    comm_dev = device if share == 1 else torch.device("cpu")
    inputs = [torch.empty_like(x, device=comm_dev) for _ in range(world)]
    dist.all_gather(inputs, x.to(comm_dev))
    ref = reference(op, [t.double().cpu() for t in inputs], handler)
    err = (y.double().cpu() - ref).abs().max().item() if ref.numel() else 0.0
    bound = 2.0 ** -6 * max(1.0, ref.abs().max().item()) if dtype != torch.float32 else 1e-4
    ok = err <= bound

    # The same call in a CUDA graph, replayed with new input and timed.
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        y_graph = run_mixed_comm(op, handler, x)
    x.copy_(torch.randn_like(x))
    graph.replay()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(args.iters):
        graph.replay()
    stop.record()
    torch.cuda.synchronize()
    us = start.elapsed_time(stop) * 1000.0 / max(1, args.iters)

    if rank == 0:
        print(f"{handler!r}\n{op.name} on {list(x.shape)} {args.dtype} -> {list(y_graph.shape)}: "
              f"mode {handler.select_autotune_mode(op, x).name}, max error {err:.3g} "
              f"({'OK' if ok else 'WRONG'}), {us:.1f} us per call in a CUDA graph", flush=True)
    del graph, y_graph
    handler.shutdown()  # COLLECTIVE: every rank
    dist.destroy_process_group()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
