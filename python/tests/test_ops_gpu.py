# SPDX-License-Identifier: Apache-2.0
"""GPU test of mixcomm's custom ops inside torch.compile and CUDA graphs. Ranks are processes
sharing the GPU under CUDA MPS (started here when none runs); "n2-..." topologies emulate two
nodes on it (NVSHMEM plugin).

For each topology every rank builds one step function that runs every valid op in every valid
mode (and mode=None), once out-of-place and once into a given output (torch.full of NaN, so a
missed write shows), on inputs doubled inside the step, and adds 1 to each output after the
call. The step runs:
  eager              run_mixed_comm as it is, on a side stream
  compile            torch.compile (default), twice with other row counts (recompiles dynamic)
  fullgraph          torch.compile(fullgraph=True)
  reduce-overhead    torch.compile(mode="reduce-overhead"): torch.compile's own CUDA graphs
  cudagraph          the eager step captured by hand into torch.cuda.CUDAGraph
  compile+cudagraph  the fullgraph-compiled step captured by hand (what vLLM does)
  opcheck            torch.library.opcheck of both ops, every valid op, on the real library
Checks: each output against a float64 reference from every rank's input (every rank makes all
inputs from seeds); the "+1" outputs against the op's output; the same input gives the same
bits in every way; the ranks of a TP group give the same bits; no graph break (torch._dynamo
counters); no CUDA-graph skip; every library call was made on torch's current stream (the side
stream, or the capture stream), inside capture when capturing, and never during a replay (a
replay that works with no host call proves the graph holds the collective).

    python3 python/tests/test_ops_gpu.py                        # tp2, dp2, tp2xdp2, n2-tp2xdp2
                                                                # (bounded: --budget 290 s)
    python3 python/tests/test_ops_gpu.py --topologies tp2 --ways eager,fullgraph
    python3 python/tests/test_ops_gpu.py --simulate             # no GPU: see below

--simulate runs the same workers on the CPU with tests/fakelib.py standing in for the library
(collectives over gloo), ways that need CUDA skipped and the aot_eager backend: it checks this
script's own logic, and is part of the CPU tests.
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
sys.path.insert(0, str(HERE.parent))  # the package in this checkout
sys.path.insert(0, str(HERE))

try:
    import pytest
except ImportError:
    pytest = None

# name -> (local_size, inter_size, local_tp_size, inter_tp_size)
TOPOLOGIES = {
    "tp2": (2, 1, 2, 1),
    "dp2": (2, 1, 1, 1),
    "tp2xdp2": (4, 1, 2, 1),
    "n2-tp2xdp2": (2, 2, 2, 1),   # TP 2 inside each node, DP 2 across the two nodes
    "n2-tp2": (1, 2, 1, 2),       # TP across nodes
    "n2-dp2": (1, 2, 1, 1),       # DP across nodes
}
DEFAULT_TOPOLOGIES = ["tp2", "dp2", "tp2xdp2", "n2-tp2xdp2"]
WAYS = ["eager", "compile", "fullgraph", "reduce-overhead", "cudagraph", "compile+cudagraph",
        "opcheck"]
CUDA_ONLY = ("reduce-overhead", "cudagraph", "compile+cudagraph")
ROWS, ROWS2, HIDDEN = 5, 3, 1024
TOPOLOGY_TIMEOUT_S = 200
BUDGET_S = 290  # the whole default run takes about 3 minutes on an H200
_UNIT_ROUNDOFF = {"bfloat16": 2.0 ** -8, "float16": 2.0 ** -11, "float32": 2.0 ** -24}


# ------------------------------------------------------------------------------------------
# Worker (one rank)
# ------------------------------------------------------------------------------------------


class Recorder:
    """The loaded library with mixcomm_run recorded (op, mode, rows, stream, capturing)."""

    def __init__(self, lib, cuda: bool):
        self._lib = lib
        self._cuda = cuda
        self.calls = []

    def __getattr__(self, name):
        return getattr(self._lib, name)

    def mixcomm_run(self, h, op, in_ptr, out_ptr, rows, row_elems, mode, stream):
        import torch
        capturing = bool(self._cuda and torch.cuda.is_current_stream_capturing())
        self.calls.append((int(op), int(mode), int(rows), int(stream or 0), capturing))
        return self._lib.mixcomm_run(h, op, in_ptr, out_ptr, rows, row_elems, mode, stream)


def _dp_ranks(world, local, inter, ltp, itp):
    """dp_rank of every world rank, from the library's topology rules."""
    from mixcomm import _lib
    return [_lib.resolve_topology(r, world, r % local, local, r // local, inter, ltp, 0, itp,
                                  0).dp_rank for r in range(world)]


def _reference(op, xs, me, dp_of, dp):
    """Rank me's expected output of op from every rank's input (float64 tensors)."""
    from mixcomm import MixedCommOp as O
    import torch
    if op == O.ALLREDUCE:
        return sum(xs[1:], xs[0].clone())
    if op == O.ALLGATHER:  # tp_size 1: one rank per DP rank
        return torch.cat([xs[dp_of.index(d)] for d in range(dp)])
    if op == O.ALLREDUCE_ALLGATHER:
        return torch.cat([sum(x for r, x in enumerate(xs) if dp_of[r] == d) for d in range(dp)])
    b = xs[0].shape[0] // dp  # REDUCESCATTER, REDUCESCATTER_ALLREDUCE
    d = dp_of[me]
    return sum(x[d * b:(d + 1) * b] for x in xs)


def _compare(op, got, xs, me, dp_of, dp, dtype_name):
    """None if got matches the float64 reference within rounding, else a description."""
    from mixcomm import MixedCommOp as O
    import torch
    ref = _reference(op, xs, me, dp_of, dp)
    if tuple(got.shape) != tuple(ref.shape):
        return f"shape {tuple(got.shape)} != expected {tuple(ref.shape)}"
    g = got.detach().double().cpu()
    if op == O.ALLGATHER:
        tol = torch.zeros_like(ref)
    else:
        u = _UNIT_ROUNDOFF[dtype_name]
        sum_abs = _reference(op, [x.abs() for x in xs], me, dp_of, dp)
        tol = 2 * u * ref.abs() + u * sum_abs + 2 * len(xs) * 2.0 ** -24 * sum_abs
    bad = ~((g - ref).abs() <= tol)
    n = int(bad.sum())
    if n == 0:
        return None
    i = bad.flatten().nonzero()[0].item()
    return (f"{n} of {ref.numel()} wrong; first at {i}: got {g.flatten()[i].item()!r}, expected "
            f"{ref.flatten()[i].item()!r} (tolerance {tol.flatten()[i].item():.3g})")


def _digest(t) -> str:
    import ctypes
    t = t.detach().contiguous().cpu()
    n = t.numel() * t.element_size()
    return hashlib.sha1(ctypes.string_at(t.data_ptr(), n) if n else b"").hexdigest()


def worker_main(args):
    import torch
    import torch.distributed as dist

    import mixcomm
    from mixcomm import MixedCommHandler, MixedCommMode, MixedCommOp, _lib, run_mixed_comm

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local, inter, ltp, itp = TOPOLOGIES[args.topology]
    ways = [w for w in args.ways.split(",") if w]
    res = {"rank": rank, "failures": [], "digests": [], "ways": {}, "fatal": None,
           "device": "cpu (simulated library)" if args.simulate else None,
           "torch": torch.__version__, "library": None, "grid": 0}
    out_path = Path(args.out)
    h = None
    counters = torch._dynamo.utils.counters

    def fail(what, detail):
        res["failures"].append({"case": what, "detail": str(detail)[:2000]})
        print(f"rank {rank}: FAIL {what}: {detail}", flush=True)

    try:
        dist.init_process_group("gloo", init_method="env://", rank=rank, world_size=world,
                                timeout=datetime.timedelta(seconds=120))
        cuda = not args.simulate
        if cuda:
            ndev = torch.cuda.device_count()
            device = torch.device("cuda", rank % ndev)
            torch.cuda.set_device(device)
            props = torch.cuda.get_device_properties(device)
            sharing = -(-world // ndev)
            grid = max(1, min(32, props.multi_processor_count // sharing))
            res["device"] = props.name
            res["library"] = mixcomm.library_path()
        else:
            import fakelib
            _lib._lib = fakelib.FakeLibrary(_lib.load(), exchange=fakelib.gloo_exchange())
            device, grid = torch.device("cpu"), 8
        res["grid"] = grid
        recorder = Recorder(_lib.load(), cuda)
        _lib._lib = recorder
        dtype = torch.bfloat16
        h = MixedCommHandler(rank, world, rank % local, local, rank // local, inter, ltp, None,
                             itp, None, dtype, device if cuda else 0, grid_size=grid,
                             use_autotune=False)
        if not cuda:
            fakelib.on_cpu(h)
        dp = h.dp_size
        dp_of = _dp_ranks(world, local, inter, ltp, itp)
        if dp_of[rank] != h.dp_rank:
            fail("topology", f"dp_rank {h.dp_rank} != {dp_of[rank]}")
        ops = h.get_valid_op_list()
        modes = [m for m in h.get_valid_mode_list() if m != MixedCommMode.AUTOTUNE] + [None]
        plan = [(op, mode, given) for op in ops for mode in modes for given in (False, True)]
        gather = (MixedCommOp.ALLGATHER, MixedCommOp.ALLREDUCE_ALLGATHER)
        scatter = (MixedCommOp.REDUCESCATTER, MixedCommOp.REDUCESCATTER_ALLREDUCE)
        print(f"rank {rank}: {h!r}; {len(plan)} calls per step; ways {ways}", flush=True)

        def step(*xs):
            outs = []
            for (op, mode, given), x in zip(plan, xs):
                x2 = x * 2
                if given:
                    rows = x.shape[0]
                    out_rows = rows * dp if op in gather else rows // dp if op in scatter else rows
                    buf = torch.full((out_rows, x.shape[1]), float("nan"), dtype=x.dtype,
                                     device=x.device)
                    y = run_mixed_comm(op, h, x2, buf, mode)
                else:
                    y = run_mixed_comm(op, h, x2, None, mode)
                outs.append(y)
                outs.append(y + 1)
            return outs

        def inputs(seed, rows):
            """All ranks' inputs of every call of the step (float32 -> dtype), and ours."""
            everyone = []
            for k, (op, _, _) in enumerate(plan):
                r_in = rows * dp if op in scatter else rows
                per_rank = []
                for r in range(world):
                    g = torch.Generator().manual_seed(seed * 100003 + k * 1009 + r)
                    per_rank.append(torch.randn((r_in, HIDDEN), generator=g).to(dtype))
                everyone.append(per_rank)
            mine = [xs[rank].to(device) for xs in everyone]
            return everyone, mine

        def check(way, it, outs, everyone):
            if len(outs) != 2 * len(plan):
                fail(f"{way}/{it}", f"{len(outs)} outputs for {len(plan)} calls")
                return
            for k, (op, mode, given) in enumerate(plan):
                case = f"{way}/it{it}/{op.name}/{mode.name if mode else 'None'}/" \
                       f"{'out' if given else 'new'}"
                y, y1 = outs[2 * k], outs[2 * k + 1]
                xs64 = [2 * x.double() for x in everyone[k]]
                err = _compare(op, y, xs64, rank, dp_of, dp, "bfloat16")
                if err:
                    fail(case, err)
                want1 = (y.detach().float().cpu() + 1).to(dtype).float()
                got1 = y1.detach().float().cpu()
                if not torch.allclose(got1, want1, rtol=2.0 ** -7, atol=0.0, equal_nan=False):
                    fail(case, "the +1 output does not follow the op's output")
                # Ranks that must hold the same bits: a TP group (same dp_rank) always; for the
                # gather ops and ALLREDUCE on one node, every rank (each sums the same values
                # in the same order).
                same_everywhere = op not in scatter and inter == 1
                group = "all" if same_everywhere else f"dp{dp_of[rank]}"
                res["digests"].append({"key": f"{way}/it{it}/{k}", "group": group,
                                       "digest": _digest(y), "seed_key": f"it{it}/{k}"})

        def expect_calls(way, what, calls, n, stream=None, capturing=False):
            if len(calls) != n:
                fail(f"{way}/{what}", f"{len(calls)} library calls, expected {n}")
            for c in calls:
                if cuda and stream is not None and c[3] != stream:
                    fail(f"{way}/{what}", f"called on stream {c[3]:#x}, expected torch's "
                                          f"current stream {stream:#x}")
                    break
                if c[4] != capturing:
                    fail(f"{way}/{what}", f"capturing={c[4]}, expected {capturing}")
                    break

        side = torch.cuda.Stream(device) if cuda else None

        def on_side(fn, *a):
            if not cuda:
                return fn(*a)
            side.wait_stream(torch.cuda.current_stream(device))
            with torch.cuda.stream(side):
                out = fn(*a)
            torch.cuda.current_stream(device).wait_stream(side)
            torch.cuda.synchronize(device)
            return out

        def sync():
            if cuda:
                torch.cuda.synchronize(device)

        fullgraph_fn = None
        for way in ways:
            t0 = time.time()
            nfail = len(res["failures"])
            if way in CUDA_ONLY and not cuda:
                res["ways"][way] = {"status": "skipped (needs CUDA)", "seconds": 0.0}
                continue
            counters.clear()
            side_stream = side.cuda_stream if cuda else 0
            if way == "eager":
                for it, (seed, rows) in enumerate([(1, ROWS), (2, ROWS2), (3, 0)]):
                    everyone, mine = inputs(seed, rows)
                    recorder.calls.clear()
                    outs = on_side(step, *mine)
                    expect_calls(way, f"it{it}", recorder.calls, len(plan), side_stream)
                    check(way, it, outs, everyone)
            elif way in ("compile", "fullgraph"):
                fn = torch.compile(step, fullgraph=(way == "fullgraph"), backend=args.backend)
                specs = [(1, ROWS), (2, ROWS2), (4, ROWS + 2)] if way == "compile" else \
                    [(1, ROWS), (5, ROWS)]
                for it, (seed, rows) in enumerate(specs):
                    everyone, mine = inputs(seed, rows)
                    recorder.calls.clear()
                    outs = on_side(fn, *mine)
                    expect_calls(way, f"it{it}", recorder.calls, len(plan), side_stream)
                    check(way, it, outs, everyone)
                breaks = sum(counters["graph_break"].values())
                if breaks:
                    fail(way, f"{breaks} graph breaks: {dict(counters['graph_break'])}")
                if way == "fullgraph":
                    fullgraph_fn = fn
            elif way == "reduce-overhead":
                fn = torch.compile(step, mode="reduce-overhead", fullgraph=True)
                captured = replayed = 0
                for it, seed in enumerate([1, 6, 7, 8, 9]):
                    everyone, mine = inputs(seed, ROWS)
                    recorder.calls.clear()
                    torch.compiler.cudagraph_mark_step_begin()
                    outs = fn(*mine)
                    sync()
                    calls = list(recorder.calls)
                    check(way, it, outs, everyone)
                    del outs
                    if any(c[4] for c in calls):
                        captured += 1
                        expect_calls(way, f"it{it} (capture)", calls, len(plan), None, True)
                    elif not calls:
                        replayed += 1
                if not captured:
                    fail(way, "no call was captured into a CUDA graph")
                if replayed < 2:
                    fail(way, f"{replayed} of 5 calls replayed a CUDA graph without host calls, "
                              f"expected the last ones to")
                skips = counters["inductor"]["cudagraph_skips"]
                if skips:
                    fail(way, f"torch.compile skipped CUDA graphs {skips} time(s)")
                breaks = sum(counters["graph_break"].values())
                if breaks:
                    fail(way, f"{breaks} graph breaks: {dict(counters['graph_break'])}")
            elif way in ("cudagraph", "compile+cudagraph"):
                if way == "cudagraph":
                    fn = step
                else:
                    fn = fullgraph_fn or torch.compile(step, fullgraph=True, backend=args.backend)
                everyone, static = inputs(10, ROWS)
                on_side(fn, *static)  # warm-up outside the capture (a collective, like any call)
                graph = torch.cuda.CUDAGraph()
                cap = torch.cuda.Stream(device)
                recorder.calls.clear()
                with torch.cuda.graph(graph, stream=cap):
                    outs = fn(*static)
                expect_calls(way, "capture", recorder.calls, len(plan), cap.cuda_stream, True)
                for it, seed in enumerate([1, 11, 12]):
                    everyone, mine = inputs(seed, ROWS)
                    for s, m in zip(static, mine):
                        s.copy_(m)
                    recorder.calls.clear()
                    graph.replay()
                    sync()
                    expect_calls(way, f"replay {it}", recorder.calls, 0)
                    check(way, it, outs, everyone)
                del graph, outs
                sync()
            elif way == "opcheck":
                for op in ops:
                    r_in = ROWS * dp if op in scatter else ROWS
                    x = torch.randn((r_in, HIDDEN), generator=torch.Generator().manual_seed(
                        rank), dtype=torch.float32).to(dtype).to(device)
                    out_rows = r_in * dp if op in gather else r_in // dp if op in scatter \
                        else r_in
                    buf = torch.zeros((out_rows, HIDDEN), dtype=dtype, device=device)
                    for target, a in ((torch.ops.mixcomm.mixed_comm.default,
                                       (x, int(op), -1, h.handler_id)),
                                      (torch.ops.mixcomm.mixed_comm_out.default,
                                       (x, buf, int(op), -1, h.handler_id))):
                        try:
                            result = torch.library.opcheck(target, a)
                            bad = {k: v for k, v in result.items() if v != "SUCCESS"}
                            if bad:
                                fail(f"opcheck/{target}/{op.name}", bad)
                        except Exception as e:  # noqa: BLE001 - recorded
                            fail(f"opcheck/{target}/{op.name}", f"{type(e).__name__}: {e}")
                    sync()
            else:
                fail(way, "unknown way")
            res["ways"][way] = {"status": "ok" if len(res["failures"]) == nfail else "FAIL",
                                "seconds": round(time.time() - t0, 1)}
            print(f"rank {rank}: {way} done in {time.time() - t0:.1f} s "
                  f"({res['ways'][way]['status']})", flush=True)

        # The same input must give the same bits in every way (iteration 0 of every way uses
        # seed 1 and ROWS rows).
        by_seed = {}
        for d in res["digests"]:
            if d["seed_key"].startswith("it0/"):
                by_seed.setdefault(d["seed_key"], set()).add(d["digest"])
        for key, digests in sorted(by_seed.items()):
            if len(digests) != 1:
                fail(f"across ways/{key}", f"{len(digests)} different results for one input")
    except BaseException as e:  # noqa: BLE001 - report, then stop this rank
        res["fatal"] = "".join(traceback.format_exception(type(e), e, e.__traceback__))
        print(f"rank {rank}: FATAL {res['fatal']}", flush=True)
    finally:
        try:
            if h is not None:
                h.shutdown()
        except Exception as e:  # noqa: BLE001
            fail("shutdown", e)
        out_path.write_text(json.dumps(res))
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0 if res["fatal"] is None and not res["failures"] else 1


# ------------------------------------------------------------------------------------------
# Launcher
# ------------------------------------------------------------------------------------------


def run_topology(name, ways, simulate=False, backend=None, timeout=TOPOLOGY_TIMEOUT_S):
    """Run one topology's ranks; (passed, summary dict, report text)."""
    from spawn_ranks import job_problems, run_ranks
    local, inter, _, _ = TOPOLOGIES[name]
    world = local * inter
    backend = backend or ("aot_eager" if simulate else "inductor")
    args = ["--topology", name, "--ways", ",".join(ways), "--backend", backend]
    if simulate:
        args.append("--simulate")
    # Every rank compiles: share the host's cores between them (Inductor's default is one
    # compile worker per core in every process).
    threads = os.environ.get("TORCHINDUCTOR_COMPILE_THREADS") or str(max(1, (os.cpu_count() or
                                                                          1) // world))
    job = run_ranks(Path(__file__).resolve(), world, args, timeout, tag=f"ops-{name}",
                    env_extra={"TORCHINDUCTOR_COMPILE_THREADS": threads})
    problems = job_problems(job, limit=10)
    groups_checked = 0
    if all(res is not None for res in job.results):
        by_key = {}
        for r, res in enumerate(job.results):
            for d in res["digests"]:
                by_key.setdefault((d["key"], d["group"]), []).append((r, d["digest"]))
        for (key, group), entries in sorted(by_key.items()):
            if len(entries) > 1:
                groups_checked += 1
                if len({d for _, d in entries}) != 1:
                    problems.append(f"{key}: ranks {[r for r, _ in entries]} (group {group}) "
                                    f"disagree bitwise")
        if len({len(res["digests"]) for res in job.results}) != 1:
            problems.append("ranks checked different numbers of outputs")
    r0 = next((res for res in job.results if res is not None), None) or {}
    way_status = {}
    for w in ways:
        states = {res["ways"].get(w, {}).get("status", "not reached")
                  for res in job.results if res is not None} or {"not reached"}
        way_status[w] = states.pop() if len(states) == 1 else "FAIL"
    summary = {"topology": name, "ranks": world, "ways": way_status,
               "outputs": sum(len(res["digests"]) for res in job.results if res),
               "bitwise_groups": groups_checked, "seconds": round(job.elapsed, 1),
               "device": r0.get("device"), "torch": r0.get("torch"),
               "library": r0.get("library"), "grid": r0.get("grid"), "passed": not problems}
    return not problems, summary, "\n".join(problems)


def format_summary(s):
    ways = "  ".join(f"{w}:{'ok' if st == 'ok' else st}" for w, st in s["ways"].items())
    return (f"{s['topology']:<11} ranks={s['ranks']} outputs={s['outputs']} "
            f"bitwise_groups={s['bitwise_groups']} {s['seconds']:6.1f}s  {ways}  "
            f"{'PASS' if s['passed'] else 'FAIL'}")


if pytest is not None:
    def test_ops_simulated_on_cpu():
        """The worker logic on the CPU, with the stand-in library (no GPU needed)."""
        pytest.importorskip("torch")
        for name in ("tp2", "dp2", "n2-tp2xdp2"):
            ok, summary, text = run_topology(name, ["eager", "fullgraph", "opcheck"],
                                             simulate=True, timeout=240)
            print(format_summary(summary))
            assert ok, text
            assert summary["outputs"] > 0 and summary["bitwise_groups"] > 0, summary


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--topology", help=argparse.SUPPRESS)
    ap.add_argument("--topologies", default=",".join(DEFAULT_TOPOLOGIES),
                    help=f"comma-separated, of {', '.join(TOPOLOGIES)} (default %(default)s)")
    ap.add_argument("--ways", default=",".join(WAYS),
                    help="comma-separated (default %(default)s)")
    ap.add_argument("--simulate", action="store_true",
                    help="CPU only, with the stand-in library (tests/fakelib.py)")
    ap.add_argument("--backend", default=None,
                    help="torch.compile backend (default inductor; aot_eager with --simulate)")
    ap.add_argument("--timeout", type=int, default=TOPOLOGY_TIMEOUT_S,
                    help="seconds per topology at most (default %(default)s)")
    ap.add_argument("--budget", type=int, default=BUDGET_S,
                    help="seconds for the whole run (default %(default)s): a topology gets "
                         "what is left, and is not started when nothing is")
    args = ap.parse_args(argv)
    if args.worker:
        return worker_main(args)
    names = [t for t in args.topologies.split(",") if t]
    ways = [w for w in args.ways.split(",") if w]
    for t in names:
        if t not in TOPOLOGIES:
            ap.error(f"unknown topology {t!r}")
    for w in ways:
        if w not in WAYS:
            ap.error(f"unknown way {w!r}")
    from spawn_ranks import mps_daemon, print_failures, skipped_without_gpu
    if not args.simulate and skipped_without_gpu("mixcomm custom-op GPU test"):
        return 0
    t0 = time.time()
    print(f"mixcomm custom-op test ({'simulated on the CPU' if args.simulate else 'GPU'}): "
          f"topologies {', '.join(names)}; ways {', '.join(ways)}", flush=True)
    summaries, reports = [], []
    ctx = mps_daemon() if not args.simulate else _nullcontext("MPS: not needed (simulated)")
    with ctx as line:
        print(line, flush=True)
        for t in names:
            left = args.budget - (time.time() - t0)
            if left < 30:
                summaries.append({"topology": t, "ranks": 0, "ways": {}, "outputs": 0,
                                  "bitwise_groups": 0, "seconds": 0.0, "passed": False})
                print(f"{t:<11} not run: the {args.budget} s budget is spent", flush=True)
                reports.append(f"==== {t} ====\nnot run (time budget)")
                continue
            ok, summary, text = run_topology(t, ways, args.simulate, args.backend,
                                             min(args.timeout, left))
            summaries.append(summary)
            print(format_summary(summary), flush=True)
            if not ok:
                reports.append(f"==== {t} ====\n{text}")
    first = summaries[0] if summaries else {}
    if print_failures(summaries, reports,
                      f"\ndevice: {first.get('device')}, torch {first.get('torch')}, grid "
                      f"{first.get('grid')}, library {first.get('library')}, "
                      f"{time.time() - t0:.0f} s"):
        return 1
    print(f"\nALL PASSED: {len(summaries)} topologies x {len(ways)} ways, "
          f"{sum(s['outputs'] for s in summaries)} outputs checked")
    return 0


class _nullcontext:
    def __init__(self, value):
        self.value = value

    def __enter__(self):
        return self.value

    def __exit__(self, *exc):
        return False


if __name__ == "__main__":
    sys.exit(main())
