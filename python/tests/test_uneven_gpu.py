# SPDX-License-Identifier: Apache-2.0
"""GPU test of run_mixed_comm(..., dp_rows=...): uneven rows per DP rank, eagerly in every valid
mode (the list form) and DEFAULT, the device-tensor form eagerly, under
torch.compile(fullgraph=True), and captured into a CUDA graph replayed with counts changed in
the tensor between replays. Ranks are processes sharing the GPU under CUDA MPS (started here
when none runs).

Checks: every output against a float64 reference from every rank's inputs (every rank makes all
inputs from seeds); the rows past the written ones keep their poison in the device form; the
list and tensor forms and every fused mode give the same bits; ranks sharing an output agree
bitwise.

    python3 python/tests/test_uneven_gpu.py                   # tp2xdp2, dp4, tp2xdp3
    python3 python/tests/test_uneven_gpu.py --topologies dp4
The library: $MIXCOMM_LIBRARY, else the repository's build/libmixcomm.so.
"""
import hashlib
import os
import sys
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

# name -> (local_size, inter_size, local_tp_size, inter_tp_size)
TOPOLOGIES = {"tp2xdp2": (4, 1, 2, 1), "dp4": (4, 1, 1, 1), "tp2xdp3": (6, 1, 2, 1),
              "dp2": (2, 1, 1, 1)}
DEFAULT_TOPOLOGIES = ["tp2xdp2", "dp4", "tp2xdp3"]
HIDDEN = 1024
LISTS = ([1, 64, 3, 17, 0, 9], [0, 5, 0, 2, 7, 1], [12, 12, 12, 12, 12, 12])
MAX_ROWS = 64
TIMEOUT_S = 240


def _input(torch, op_code, case, rank, rows, dtype):
    g = torch.Generator().manual_seed(100 + 1000 * case + 17 * op_code + rank)
    return torch.randn((rows, HIDDEN), generator=g).to(dtype)


def _reference(torch, xs, rows, infos, me, dp, gather):
    """float64 result of an uneven call on every rank's input xs (infos[r]: rank r's DP rank;
    rows: rows per DP rank; me: this rank's DP rank of dp): the gathered blocks in DP order, or
    this rank's block of the sum."""
    if gather:
        return torch.cat([sum(xs[r].double() for r in range(len(xs)) if infos[r] == d)
                          for d in range(dp)])
    lo = sum(rows[:me])
    return sum(v.double()[lo:lo + rows[me]] for v in xs)


def _bound(xs):
    """The error allowed against the reference: bf16 rounding of the largest sum."""
    return 2.0 ** -7 * (sum(v.double().abs().max().item() if v.numel() else 0.0
                            for v in xs) + 1.0)


def worker_main(args):
    import torch
    import torch.distributed as dist

    from mixcomm import MixedCommMode, MixedCommOp, run_mixed_comm
    from spawn_ranks import end_worker, join_job, topology_handler, worker_result

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    res, fail = worker_result(rank)
    h = None
    try:
        device, grid = join_job(rank, world)
        dtype = torch.bfloat16
        h = topology_handler(TOPOLOGIES[args.topology], rank, world, dtype, device, grid)
        infos = [None] * world
        dist.all_gather_object(infos, h.dp_rank)
        dp, me = h.dp_size, h.dp_rank
        stream = torch.cuda.Stream()
        modes = [m for m in h.get_valid_mode_list() if m != MixedCommMode.AUTOTUNE] + [None]
        for op in h.get_valid_op_list():
            gather = op in (MixedCommOp.ALLGATHER, MixedCommOp.ALLREDUCE_ALLGATHER)
            scatter = op in (MixedCommOp.REDUCESCATTER, MixedCommOp.REDUCESCATTER_ALLREDUCE)
            if not gather and not scatter:
                continue
            for case, full in enumerate(LISTS):
                rows = full[:dp]
                total = sum(rows)

                def rows_of(r):
                    return rows[infos[r]] if gather else total

                xs = [_input(torch, int(op), case, r, rows_of(r), dtype) for r in range(world)]
                x_d = xs[rank].to(device)
                # Made on the current stream; the calls run on `stream`.
                stream.wait_stream(torch.cuda.current_stream(device))
                want = _reference(torch, xs, rows, infos, me, dp, gather)
                bound = _bound(xs)
                outs = {}
                for mode in modes:
                    with torch.cuda.stream(stream):
                        y = run_mixed_comm(op, h, x_d, None, mode, dp_rows=rows)
                    stream.synchronize()
                    outs[f"list-{mode.name if mode else 'default'}"] = y.clone()
                # The device-tensor form: buffers of MAX_ROWS rows per DP rank, poisoned.
                counts = torch.tensor(rows, dtype=torch.int32, device=device)
                cap_in = MAX_ROWS if gather else dp * MAX_ROWS
                x_cap = torch.full((cap_in, HIDDEN), float("nan"), dtype=dtype, device=device)
                x_cap[:x_d.shape[0]] = x_d
                stream.wait_stream(torch.cuda.current_stream(device))
                with torch.cuda.stream(stream):
                    y_dev = run_mixed_comm(op, h, x_cap, None, MixedCommMode.FUSED_OPT_WAITS_UC,
                                           dp_rows=counts, max_rows=MAX_ROWS)
                stream.synchronize()
                n_out = want.shape[0]
                outs["tensor"] = y_dev[:n_out].clone()

                def step(xx, cc):
                    return run_mixed_comm(op, h, xx, None, None, dp_rows=cc, max_rows=MAX_ROWS)

                if case == 0:  # compiled once per op (compilation dominates the run time)
                    compiled = torch.compile(step, fullgraph=True)
                    with torch.cuda.stream(stream):
                        y_c = compiled(x_cap, counts)
                    stream.synchronize()
                    if tuple(y_c.shape) != ((dp * MAX_ROWS) if gather else MAX_ROWS, HIDDEN):
                        fail(f"{op.name} case {case} fullgraph", f"shape {tuple(y_c.shape)}")
                    outs["fullgraph"] = y_c[:n_out].clone()
                for way, y in outs.items():
                    got = y.double().cpu()
                    if tuple(got.shape) != tuple(want.shape):
                        fail(f"{op.name} case {case} {way}", f"shape {tuple(got.shape)}")
                        continue
                    bad = ~((got - want).abs() <= bound)
                    if bool(bad.any()):
                        i = int(bad.flatten().nonzero()[0])
                        fail(f"{op.name} case {case} {way}",
                             f"{int(bad.sum())} wrong, first [{i}] got {got.flatten()[i].item()} "
                             f"want {want.flatten()[i].item()}")
                    res["checked"] += 1
                fused = [k for k in outs if k != "list-NCCL_ONE" and k != "list-NCCL_TP_DP"]
                for k in fused:
                    if not torch.equal(outs[k], outs["tensor"]):
                        fail(f"{op.name} case {case} {k}", "differs bitwise from the tensor form")
                res["digests"].append({
                    "key": f"{op.name}-{case}", "group": me if scatter else "all",
                    "digest": hashlib.sha256(bytes(outs["tensor"].view(torch.uint8).flatten()
                                                   .cpu().tolist())).hexdigest()})
            # A CUDA graph of the tensor form, replayed with new counts and inputs.
            counts = torch.zeros(dp, dtype=torch.int32, device=device)
            cap_in = MAX_ROWS if gather else dp * MAX_ROWS
            x_cap = torch.zeros((cap_in, HIDDEN), dtype=dtype, device=device)
            graph = torch.cuda.CUDAGraph()
            stream.wait_stream(torch.cuda.current_stream(device))
            with torch.cuda.stream(stream):
                step(x_cap, counts)  # warm-up outside the capture
                stream.synchronize()
                with torch.cuda.graph(graph, stream=stream):
                    y_graph = run_mixed_comm(op, h, x_cap, None, None, dp_rows=counts,
                                             max_rows=MAX_ROWS)
            stream.synchronize()
            for rep in range(4):
                rows = [(rep * 5 + 3 * d) % (MAX_ROWS + 1) if (rep + d) % 3 else 0
                        for d in range(dp)]
                total = sum(rows)
                xs = [_input(torch, int(op), 50 + rep, r, rows[infos[r]] if gather else total,
                             dtype) for r in range(world)]
                with torch.cuda.stream(stream):
                    counts.copy_(torch.tensor(rows, dtype=torch.int32))
                    x_cap.zero_()
                    x_cap[:xs[rank].shape[0]] = xs[rank].to(device)
                    y_graph.fill_(float("nan"))
                    graph.replay()
                stream.synchronize()
                want = _reference(torch, xs, rows, infos, me, dp, gather)
                got = y_graph.double().cpu()
                n = want.shape[0]
                bound = _bound(xs)
                bad = ~((got[:n] - want).abs() <= bound)
                if bool(bad.any()):
                    fail(f"{op.name} graph replay {rep} rows={rows}", f"{int(bad.sum())} wrong")
                if not bool(torch.isnan(got[n:]).all()):
                    fail(f"{op.name} graph replay {rep} rows={rows}",
                         "rows past the written ones were overwritten")
                res["checked"] += 1
    except Exception:  # noqa: BLE001 - reported to the parent
        res["fatal"] = traceback.format_exc()[-3000:]
        print(res["fatal"], flush=True)
    finally:
        status = end_worker(h, res, args.out, fail)
    return status


def run_topology(name, timeout):
    from spawn_ranks import job_outcome, run_topology_job
    local, inter, _, _ = TOPOLOGIES[name]
    job = run_topology_job(Path(__file__).resolve(), name, local * inter, timeout, "uneven")
    return job_outcome(job, lambda d: [((d["key"], d["group"]), d["digest"])])


def main(argv=None):
    from spawn_ranks import topology_suite_main
    return topology_suite_main(argv, __doc__, "mixcomm uneven GPU test", TOPOLOGIES,
                               DEFAULT_TOPOLOGIES, worker_main, run_topology, TIMEOUT_S)


if __name__ == "__main__":
    sys.exit(main())
