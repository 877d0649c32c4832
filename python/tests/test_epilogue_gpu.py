# SPDX-License-Identifier: Apache-2.0
"""GPU test of run_mixed_comm's fused epilogue (residual_in / residual_out / rms_gamma /
norm_out / quant_out / scale_factor) through the custom op mixcomm::mixed_comm_epilogue:
eagerly in every valid fused mode, under torch.compile(fullgraph=True) and captured by hand
into a CUDA graph (mode=None), for every valid op. Ranks are processes sharing the GPU under
CUDA MPS (started here when none runs); "n2-..." topologies emulate two nodes.

Checks: residual_out (updated in place), norm_out and the FP8 quant_out against a float64
reference from every rank's inputs (every rank makes all inputs from seeds; the residual is the
same on a TP group, as in engines); the compiled and the graph-replayed step give the same bits
as the eager one; the ranks that share an output give the same bits.

    python3 python/tests/test_epilogue_gpu.py                  # tp2, tp2xdp2, n2-tp2xdp2
    python3 python/tests/test_epilogue_gpu.py --topologies tp2
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
TOPOLOGIES = {"tp2": (2, 1, 2, 1), "tp2xdp2": (4, 1, 2, 1), "dp2": (2, 1, 1, 1),
              "n2-tp2xdp2": (2, 2, 2, 1), "n2-tp2": (1, 2, 1, 2)}
DEFAULT_TOPOLOGIES = ["tp2", "tp2xdp2", "n2-tp2xdp2"]
ROWS, HIDDEN, EPS, SCALE = 5, 1024, 1e-5, 0.01
TIMEOUT_S = 200


def _inputs(torch, op_code, rank, dp_rank, shapes, dtype):
    g = torch.Generator().manual_seed(1000 + 17 * op_code + rank)
    x = torch.randn(shapes["x"], generator=g).to(dtype)
    gr = torch.Generator().manual_seed(5000 + 17 * op_code + dp_rank)
    residual = torch.randn(shapes["res"], generator=gr).to(dtype)
    gamma = torch.randn(shapes["x"][1:], generator=torch.Generator().manual_seed(7)).to(dtype)
    return x, residual, gamma


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
        dist.all_gather_object(infos, (h.tp_rank, h.dp_rank))
        dp, me = h.dp_size, h.dp_rank
        scale = torch.tensor([SCALE], device=device)
        stream = torch.cuda.Stream()
        for op in h.get_valid_op_list():
            gather = op in (MixedCommOp.ALLGATHER, MixedCommOp.ALLREDUCE_ALLGATHER)
            scatter = op in (MixedCommOp.REDUCESCATTER, MixedCommOp.REDUCESCATTER_ALLREDUCE)
            shapes = {"x": (ROWS * dp if scatter else ROWS, HIDDEN),
                      "out": (ROWS * dp if gather else ROWS, HIDDEN)}
            shapes["res"] = shapes["x"] if gather else shapes["out"]
            x, residual, gamma = _inputs(torch, int(op), rank, me, shapes, dtype)
            # float64 reference from every rank's inputs.
            xs = [_inputs(torch, int(op), r, infos[r][1], shapes, dtype)[0].double()
                  for r in range(world)]
            if gather:
                s = torch.cat([sum(xs[r] for r in range(world) if infos[r][1] == d)
                               for d in range(dp)])
                res_all = torch.cat([_inputs(torch, int(op), 0, d, shapes, dtype)[1].double()
                                     for d in range(dp)])
                p = s + res_all
                p_own = p[me * ROWS:(me + 1) * ROWS]
            else:
                b = shapes["out"][0]
                lo = me * b if scatter else 0
                s = sum(v[lo:lo + b] for v in xs)
                p = s + residual.double()
                p_own = p
            norm = p / torch.sqrt((p * p).mean(dim=1, keepdim=True) + EPS) * gamma.double()
            quant = (norm / SCALE).clamp(-448, 448)
            scale_abs = sum(v.abs() for v in xs).max().item() + 4.0

            def step(xx, rr, mode=None):
                n = run_mixed_comm(op, h, xx, None, mode, residual_in=rr, residual_out=rr,
                                   rms_gamma=gamma_d, rms_eps=EPS, quant_out=q_buf,
                                   scale_factor=scale)
                return n

            x_d, gamma_d = x.to(device), gamma.to(device)
            q_buf = torch.empty(shapes["out"], dtype=torch.float8_e4m3fn, device=device)
            modes = [m for m in h.get_valid_mode_list()
                     if m not in (MixedCommMode.AUTOTUNE, MixedCommMode.NCCL_ONE,
                                  MixedCommMode.NCCL_TP_DP)] + [None]
            outs = {}
            for mode in modes:
                r_d = residual.to(device)
                with torch.cuda.stream(stream):
                    n = step(x_d, r_d, mode)
                stream.synchronize()
                outs[f"eager-{mode.name if mode else 'default'}"] = (n.clone(), r_d.clone(),
                                                                    q_buf.clone())
            # torch.compile(fullgraph=True) and a hand-captured CUDA graph of the step.
            compiled = torch.compile(step, fullgraph=True)
            r_d = residual.to(device)
            with torch.cuda.stream(stream):
                n = compiled(x_d, r_d)
            stream.synchronize()
            outs["fullgraph"] = (n.clone(), r_d.clone(), q_buf.clone())
            r_d = residual.to(device)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.stream(stream):
                for _ in range(2):  # warm-up (allocations) outside the capture
                    r_d.copy_(residual.to(device))
                    step(x_d, r_d)
                stream.synchronize()
                with torch.cuda.graph(graph, stream=stream):
                    n_graph = step(x_d, r_d)
                for _ in range(3):  # replays from the same starting residual
                    r_d.copy_(residual.to(device))
                    graph.replay()
            stream.synchronize()
            outs["cudagraph"] = (n_graph.clone(), r_d.clone(), q_buf.clone())
            tol = 2.0 ** -7
            for way, (n, r_out, q) in outs.items():
                what = f"{op.name} {way}"
                # bf16 roundings of P (tol), then one e4m3 step (1/8 relative) for FP8.
                checks = (("residual_out", r_out.double().cpu(), p_own, tol * scale_abs),
                          ("norm_out", n.double().cpu(), norm, 4 * tol * (norm.abs() + 1)),
                          ("quant_out", q.double().cpu(), quant,
                           quant.abs() / 8 + 4 * tol * (norm.abs() + 1) / SCALE))
                for name, got, want, bound in checks:
                    bad = ~((got - want).abs() <= bound)
                    if bool(bad.any()):
                        i = int(bad.flatten().nonzero()[0])
                        fail(what, f"{name}: {int(bad.sum())} wrong, first [{i}] got "
                                   f"{got.flatten()[i].item()} want {want.flatten()[i].item()}")
                res["checked"] += 1
            base = outs["eager-default"]
            for way in ("fullgraph", "cudagraph"):
                for a, b, name in zip(outs[way], base, ("norm", "residual", "quant")):
                    if not torch.equal(a.view(torch.uint8) if a.dtype == torch.float8_e4m3fn
                                       else a, b.view(torch.uint8) if b.dtype ==
                                       torch.float8_e4m3fn else b):
                        fail(f"{op.name} {way}", f"{name} differs bitwise from the eager call")
            def digest(t):
                return hashlib.sha256(bytes(t.view(torch.uint8).flatten().cpu().tolist())).hexdigest()

            # norm_out: shared by every rank (gather, ALLREDUCE) or by the TP group (scatter);
            # residual_out: by the TP group (same dp rank) in every case.
            res["digests"].append({"key": op.name, "group": me if scatter else "all", "own": me,
                                   "norm": digest(base[0]), "residual": digest(base[1])})
    except Exception:  # noqa: BLE001 - reported to the parent
        res["fatal"] = traceback.format_exc()[-3000:]
        print(res["fatal"], flush=True)
    finally:
        status = end_worker(h, res, args.out, fail)
    return status


def run_topology(name, timeout):
    from spawn_ranks import job_outcome, run_topology_job
    local, inter, _, _ = TOPOLOGIES[name]
    job = run_topology_job(Path(__file__).resolve(), name, local * inter, timeout, "epilogue")
    return job_outcome(job, lambda d: [((d["key"], "norm", d["group"]), d["norm"]),
                                       ((d["key"], "residual", d["own"]), d["residual"])])


def main(argv=None):
    from spawn_ranks import topology_suite_main
    return topology_suite_main(argv, __doc__, "mixcomm epilogue GPU test", TOPOLOGIES,
                               DEFAULT_TOPOLOGIES, worker_main, run_topology, TIMEOUT_S)


if __name__ == "__main__":
    sys.exit(main())
