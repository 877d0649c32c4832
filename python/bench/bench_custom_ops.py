#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""What the custom-op layer costs: the DP-attention layer's communication (ALLREDUCE_ALLGATHER
then REDUCESCATTER_ALLREDUCE on its output) at decode sizes, through run_mixed_comm compiled
and replayed as CUDA graphs, against the same library calls captured directly into a
torch.cuda.CUDAGraph. Ranks are processes sharing the GPU under CUDA MPS (started here when
none runs).

    python3 python/bench/bench_custom_ops.py                    # 4 ranks, TP 2 x DP 2
    python3 python/bench/bench_custom_ops.py --tokens 1,8,64 --hidden 4096 --markdown out.md

Per size (tokens per DP rank x hidden, bf16) every rank builds, with K pairs (AR+AG, RS+AR)
chained in one graph so that the GPU, not the host, sets the pace:
  direct            mixcomm_run called through ctypes into preallocated buffers, captured
                    into torch.cuda.CUDAGraph (the floor: no Python layer in the graph)
  reduce-overhead   run_mixed_comm in torch.compile(mode="reduce-overhead") (input marked
                    static, so no input copy)
  compiled+graph    run_mixed_comm in torch.compile(fullgraph=True), captured by hand
  eager+graph       run_mixed_comm eagerly, captured by hand
and, for the host cost of a call outside graphs, eager run_mixed_comm and eager ctypes
mixcomm_run. A sample is R back-to-back replays between two CUDA events, divided by R*K: the
time of one pair. The variants alternate within each repetition; the median of the samples is
taken per rank, and the slowest rank's median is reported. The criterion: reduce-overhead and
compiled+graph within 1.05x of direct at every size. Exit code 1 when it is not met.
"""
import argparse
import datetime
import json
import os
import socket
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE.parent))           # the package in this checkout
sys.path.insert(0, str(HERE.parent / "tests"))  # spawn_ranks

GRAPH_VARIANTS = ["direct", "reduce-overhead", "compiled+graph", "eager+graph"]
HOST_VARIANTS = ["eager run_mixed_comm", "eager ctypes"]
CRITERION = 1.05
CHECKED = ("reduce-overhead", "compiled+graph")


def worker_main(args):
    import torch
    import torch.distributed as dist

    from mixcomm import MixedCommHandler, MixedCommOp, _lib, run_mixed_comm
    from spawn_ranks import join_job

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    out = {"rank": rank, "sizes": [], "fatal": None}
    h = None
    try:
        device, fair_grid = join_job(rank, world)
        props = torch.cuda.get_device_properties(device)
        grid = args.grid or fair_grid
        h = MixedCommHandler(rank, world, rank, world, 0, 1, args.tp, None, None, None,
                             torch.bfloat16, device, grid_size=grid, use_autotune=False)
        out.update(device=props.name, torch=torch.__version__, grid=grid, handler=repr(h),
                   host=socket.gethostname())
        dp = h.dp_size
        lib = _lib.load()
        raw = h._h
        AG, RS = int(MixedCommOp.ALLREDUCE_ALLGATHER), int(MixedCommOp.REDUCESCATTER_ALLREDUCE)
        K, R = args.pairs, args.replays
        cfg = torch._dynamo.config
        for name in ("recompile_limit", "cache_size_limit", "accumulated_recompile_limit",
                     "accumulated_cache_size_limit"):
            if hasattr(cfg, name):
                setattr(cfg, name, 4096)

        def chain(x):
            for _ in range(K):
                x = run_mixed_comm(MixedCommOp.REDUCESCATTER_ALLREDUCE, h,
                                   run_mixed_comm(MixedCommOp.ALLREDUCE_ALLGATHER, h, x))
            return x

        def sync():
            torch.cuda.synchronize(device)

        for hidden in args.hidden:
            for tokens in args.tokens:
                t_size = time.time()
                g = torch.Generator().manual_seed(rank)
                x = (torch.randn((tokens, hidden), generator=g) * 2 ** -8).to(
                    torch.bfloat16).to(device)
                ys = [torch.empty((dp * tokens, hidden), dtype=torch.bfloat16, device=device)
                      for _ in range(K)]
                zs = [torch.empty((tokens, hidden), dtype=torch.bfloat16, device=device)
                      for _ in range(K)]

                def direct_calls():
                    stream = torch.cuda.current_stream(device).cuda_stream
                    cur = x
                    for k in range(K):
                        for op, src, dst, rows in ((AG, cur, ys[k], tokens),
                                                   (RS, ys[k], zs[k], dp * tokens)):
                            st = lib.mixcomm_run(raw, op, src.data_ptr(), dst.data_ptr(), rows,
                                                 hidden, -1, stream)
                            if st != _lib.SUCCESS:
                                raise _lib.make_error(st, "direct mixcomm_run")
                        cur = zs[k]
                    return cur

                def capture(fn):
                    side = torch.cuda.Stream(device)
                    side.wait_stream(torch.cuda.current_stream(device))
                    with torch.cuda.stream(side):
                        fn()  # warm-up outside the capture
                    torch.cuda.current_stream(device).wait_stream(side)
                    sync()
                    graph = torch.cuda.CUDAGraph()
                    with torch.cuda.graph(graph):
                        result = fn()
                    return graph, result

                g_direct, r_direct = capture(direct_calls)
                compiled = torch.compile(chain, fullgraph=True, dynamic=False)
                g_comp, r_comp = capture(lambda: compiled(x))
                g_eager, r_eager = capture(lambda: chain(x))
                torch._dynamo.mark_static_address(x)
                ro = torch.compile(chain, mode="reduce-overhead", fullgraph=True, dynamic=False)
                ro_out = None
                for _ in range(3):  # warm-up, record, replay
                    torch.compiler.cudagraph_mark_step_begin()
                    ro_out = ro(x)
                # The paths must compute the same thing (same calls, same modes): replay each
                # once (a captured graph's outputs hold nothing before its first replay).
                for graph in (g_direct, g_comp, g_eager):
                    graph.replay()
                sync()
                same = all(torch.equal(r_direct, r) for r in (r_comp, r_eager, ro_out))

                def run_ro():
                    torch.compiler.cudagraph_mark_step_begin()
                    ro(x)

                variants = {"direct": g_direct.replay, "reduce-overhead": run_ro,
                            "compiled+graph": g_comp.replay, "eager+graph": g_eager.replay,
                            "eager run_mixed_comm": lambda: chain(x),
                            "eager ctypes": direct_calls}
                samples = {v: [] for v in variants}
                start = torch.cuda.Event(enable_timing=True)
                stop = torch.cuda.Event(enable_timing=True)
                for rep in range(args.reps + 1):  # repetition 0 is a warm-up
                    for name, fn in variants.items():
                        sync()
                        dist.barrier()  # all ranks start the sample together
                        start.record()
                        for _ in range(R):
                            fn()
                        stop.record()
                        sync()
                        if rep:
                            samples[name].append(start.elapsed_time(stop) * 1e3 / (R * K))
                out["sizes"].append({"tokens": tokens, "hidden": hidden, "same": same,
                                     "median_us": {v: statistics.median(s)
                                                   for v, s in samples.items()},
                                     "seconds": round(time.time() - t_size, 1)})
                del g_direct, g_comp, g_eager, r_direct, r_comp, r_eager, ro_out
                sync()
                if rank == 0:
                    print(f"tokens {tokens} hidden {hidden}: {out['sizes'][-1]['median_us']} "
                          f"({time.time() - t_size:.1f} s)", flush=True)
    except BaseException as e:  # noqa: BLE001 - report
        import traceback
        out["fatal"] = "".join(traceback.format_exception(type(e), e, e.__traceback__))
        print(f"rank {rank}: FATAL {out['fatal']}", flush=True)
    finally:
        try:
            if h is not None:
                torch.cuda.synchronize()
                h.shutdown()
        except Exception as e:  # noqa: BLE001
            out["fatal"] = (out["fatal"] or "") + f"\nshutdown: {e}"
        Path(args.out).write_text(json.dumps(out))
    return 0 if out["fatal"] is None else 1


def _table(sizes, world, tp):
    """Markdown rows: the slowest rank's median per variant, and the ratios to direct."""
    head = ("| tokens / DP rank | hidden | direct (us) | reduce-overhead (us) | ratio | "
            "compiled+graph (us) | ratio | eager+graph (us) | eager run_mixed_comm (us) | "
            "eager ctypes (us) |")
    lines = [head, "|" + "---|" * 10]
    worst = 0.0
    failing = []
    for s in sizes:
        m = s["median_us"]
        d = m["direct"]
        ratios = {v: m[v] / d for v in CHECKED}
        worst = max([worst] + list(ratios.values()))
        if any(r > CRITERION for r in ratios.values()) or not s["same"]:
            failing.append(f"{s['tokens']}x{s['hidden']}")
        lines.append(f"| {s['tokens']} | {s['hidden']} | {d:.2f} | {m['reduce-overhead']:.2f} | "
                     f"{ratios['reduce-overhead']:.3f} | {m['compiled+graph']:.2f} | "
                     f"{ratios['compiled+graph']:.3f} | {m['eager+graph']:.2f} | "
                     f"{m['eager run_mixed_comm']:.2f} | {m['eager ctypes']:.2f} |")
    return lines, worst, failing


def merge(results):
    """Per size, the slowest rank's median of each variant."""
    sizes = []
    for i, s in enumerate(results[0]["sizes"]):
        per_rank = [r["sizes"][i] for r in results]
        sizes.append({"tokens": s["tokens"], "hidden": s["hidden"],
                      "same": all(p["same"] for p in per_rank),
                      "median_us": {v: max(p["median_us"][v] for p in per_rank)
                                    for v in s["median_us"]}})
    return sizes


def markdown(results, args, command, elapsed):
    r0 = results[0]
    sizes = merge(results)
    lines, worst, failing = _table(sizes, len(results), args.tp)
    world = len(results)
    date = datetime.date.today().isoformat()
    verdict = (f"**Criterion met**: reduce-overhead and compiled+graph within {CRITERION}x of "
               f"direct at every size (worst {worst:.3f}x)." if not failing else
               f"**Criterion not met** at {', '.join(failing)} (worst {worst:.3f}x"
               f"{'; or the paths disagreed' if any(not s['same'] for s in sizes) else ''}).")
    return "\n".join([
        f"## Results ({date}, {r0['device']})", "",
        f"- Command: `{command}` ({elapsed:.0f} s)",
        f"- {world} ranks, TP {args.tp} x DP {world // args.tp}, sharing one {r0['device']} "
        f"under MPS on {r0['host']}; grid {r0['grid']} CTAs per rank; bf16; mode DEFAULT "
        f"(the library's choice), autotune off; torch {r0['torch']}.",
        f"- {args.pairs} pairs (ALLREDUCE_ALLGATHER of [tokens, hidden] -> "
        f"REDUCESCATTER_ALLREDUCE of its [{world // args.tp} x tokens, hidden] output) per "
        f"graph, {args.replays} replays per sample, median of {args.reps} samples, slowest "
        f"rank; times are per pair.",
        "", *lines, "", verdict, ""]), not failing


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--ranks", type=int, default=4)
    ap.add_argument("--tp", type=int, default=2)
    ap.add_argument("--tokens", type=lambda s: [int(v) for v in s.split(",")],
                    default=[1, 2, 4, 8, 16, 32, 64], help="tokens per DP rank (default "
                    "1,2,4,8,16,32,64)")
    ap.add_argument("--hidden", type=lambda s: [int(v) for v in s.split(",")],
                    default=[4096, 7168], help="default 4096,7168")
    ap.add_argument("--pairs", type=int, default=10, help="AR+AG, RS+AR pairs per graph")
    ap.add_argument("--replays", type=int, default=20, help="replays per sample")
    ap.add_argument("--reps", type=int, default=15, help="samples per variant")
    ap.add_argument("--grid", type=int, default=0, help="CTAs per rank (default SMs / ranks "
                    "per GPU, at most 32)")
    ap.add_argument("--timeout", type=int, default=280, help="seconds in all")
    ap.add_argument("--markdown", help="also append the results section to this file "
                    "(docs/results/custom-ops.md)")
    args = ap.parse_args(argv)
    if args.worker:
        return worker_main(args)
    from spawn_ranks import mps_daemon, run_ranks, skipped_without_gpu
    if skipped_without_gpu("bench_custom_ops"):
        return 0
    if args.ranks % args.tp or args.ranks // args.tp < 2 or args.tp < 2:
        ap.error("--ranks must be a multiple of --tp, with tp >= 2 and dp >= 2")
    command = "python3 python/bench/bench_custom_ops.py" + "".join(
        f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    worker_args = ["--tp", args.tp, "--tokens", ",".join(map(str, args.tokens)),
                   "--hidden", ",".join(map(str, args.hidden)), "--pairs", args.pairs,
                   "--replays", args.replays, "--reps", args.reps, "--grid", args.grid]
    t0 = time.time()
    with mps_daemon() as line:
        print(f"bench_custom_ops: {args.ranks} ranks; {line}", flush=True)
        job = run_ranks(Path(__file__).resolve(), args.ranks, worker_args, args.timeout,
                        tag="bench-ops")
    elapsed = time.time() - t0
    bad = [r for r, res in enumerate(job.results) if res is None or res.get("fatal")]
    if bad:
        for r in bad:
            res = job.results[r]
            if res and res.get("fatal"):
                print(f"rank {r}: {res['fatal']}")
        print(job.report())
        print(f"bench_custom_ops: FAILED (ranks {bad} did not finish)")
        return 1
    text, met = markdown(job.results, args, command, elapsed)
    print("\n" + text)
    if args.markdown:
        with open(args.markdown, "a") as f:
            f.write("\n" + text)
        print(f"(appended to {args.markdown})")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
