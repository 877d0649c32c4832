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
import argparse
import datetime
import hashlib
import json
import os
import sys
import time
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

    from mixcomm import MixedCommHandler, MixedCommMode, MixedCommOp, run_mixed_comm

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local, inter, ltp, itp = TOPOLOGIES[args.topology]
    res = {"rank": rank, "failures": [], "digests": [], "checked": 0, "fatal": None}
    h = None

    def fail(what, detail):
        res["failures"].append(f"{what}: {str(detail)[:1500]}")
        print(f"rank {rank}: FAIL {what}: {detail}", flush=True)

    try:
        dist.init_process_group("gloo", init_method="env://", rank=rank, world_size=world,
                                timeout=datetime.timedelta(seconds=120))
        ndev = torch.cuda.device_count()
        device = torch.device("cuda", rank % ndev)
        torch.cuda.set_device(device)
        sharing = -(-world // ndev)
        grid = max(1, min(32, torch.cuda.get_device_properties(device).multi_processor_count //
                          sharing))
        dtype = torch.bfloat16
        h = MixedCommHandler(rank, world, rank % local, local, rank // local, inter, ltp, None,
                             itp, None, dtype, device, grid_size=grid, use_autotune=False)
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
        if h is not None:
            try:
                h.shutdown()
            except Exception as e:  # noqa: BLE001
                fail("shutdown", e)
        Path(args.out).write_text(json.dumps(res))
    return 0 if not res["failures"] and not res["fatal"] else 1


def run_topology(name, timeout):
    from spawn_ranks import run_ranks
    local, inter, _, _ = TOPOLOGIES[name]
    world = local * inter
    threads = str(max(1, (os.cpu_count() or 1) // world))
    job = run_ranks(Path(__file__).resolve(), world, ["--topology", name], timeout,
                    tag=f"epilogue-{name}", env_extra={"TORCHINDUCTOR_COMPILE_THREADS": threads})
    problems = []
    for r, res in enumerate(job.results):
        if res is None:
            continue
        if res["fatal"]:
            problems.append(f"rank {r}: fatal:\n{res['fatal']}")
        problems += [f"rank {r}: {f}" for f in res["failures"][:8]]
    if job.report():
        problems.append(job.report())
    checked = sum(res["checked"] for res in job.results if res)
    if all(res is not None for res in job.results):
        groups = {}
        for r, res in enumerate(job.results):
            for d in res["digests"]:
                groups.setdefault((d["key"], "norm", d["group"]), set()).add(d["norm"])
                groups.setdefault((d["key"], "residual", d["own"]), set()).add(d["residual"])
        for key, digests in sorted(groups.items(), key=str):
            if len(digests) != 1:
                problems.append(f"{key}: ranks that share this output disagree bitwise")
    return not problems, checked, job.elapsed, "\n".join(problems)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--topology", help=argparse.SUPPRESS)
    ap.add_argument("--topologies", default=",".join(DEFAULT_TOPOLOGIES))
    args = ap.parse_args(argv)
    if args.worker:
        return worker_main(args)
    from spawn_ranks import gpu_skip_reason, mps_daemon
    reason = gpu_skip_reason()
    if reason:
        print(f"mixcomm epilogue GPU test: SKIPPED ({reason})")
        return 0
    names = [t for t in args.topologies.split(",") if t]
    failed = []
    t0 = time.time()
    with mps_daemon() as line:
        print(line, flush=True)
        for t in names:
            if t not in TOPOLOGIES:
                ap.error(f"unknown topology {t!r}")
            ok, checked, secs, text = run_topology(t, TIMEOUT_S)
            print(f"{t:<11} {'ok  ' if ok else 'FAIL'} {checked} outputs checked, {secs:.0f} s",
                  flush=True)
            if not ok:
                failed.append(t)
                print(text, flush=True)
    if failed:
        print(f"\nFAILED: {', '.join(failed)}")
        return 1
    print(f"\nALL PASSED: {len(names)} topologies, {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
