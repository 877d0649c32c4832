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
                if gather:
                    want = torch.cat([sum(xs[r].double() for r in range(world) if infos[r] == d)
                                      for d in range(dp)])
                else:
                    lo = sum(rows[:me])
                    want = sum(v.double()[lo:lo + rows[me]] for v in xs)
                bound = 2.0 ** -7 * (sum(v.double().abs().max().item() if v.numel() else 0.0
                                         for v in xs) + 1.0)
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
                if gather:
                    want = torch.cat([sum(xs[r].double() for r in range(world) if infos[r] == d)
                                      for d in range(dp)])
                else:
                    lo = sum(rows[:me])
                    want = sum(v.double()[lo:lo + rows[me]] for v in xs)
                got = y_graph.double().cpu()
                n = want.shape[0]
                bound = 2.0 ** -7 * (sum(v.double().abs().max().item() if v.numel() else 0.0
                                         for v in xs) + 1.0)
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
                    tag=f"uneven-{name}", env_extra={"TORCHINDUCTOR_COMPILE_THREADS": threads})
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
        for res in job.results:
            for d in res["digests"]:
                groups.setdefault((d["key"], d["group"]), set()).add(d["digest"])
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
        print(f"mixcomm uneven GPU test: SKIPPED ({reason})")
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
