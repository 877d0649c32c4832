# SPDX-License-Identifier: Apache-2.0
"""GPU test of the Python binding: several ranks (processes) share the GPU(s) under CUDA MPS.

For each topology (default: tp2, dp2, tp2xdp2) the ranks create a MixedCommHandler per dtype
(bf16, fp16, fp32; use_autotune=False, grid_size = SMs // ranks per GPU, at most 32), run every
valid op in every valid mode and with mode=None on tensors [rows, 1024], [rows, 3, 40] and
[64, 16384] with rows in {0, 1, 7, 100}, with x_out given and not given, and compare with a
float64 reference computed on the host from every rank's input (each rank regenerates all
inputs from per-rank seeds). TP ranks must agree bitwise, and the same input must give the same
bits twice. Each handler also captures one call per op into a torch.cuda.CUDAGraph, replays it
with new inputs, checks the argument errors, and shuts down.

The ranks meet through torch.distributed (gloo default group for tp2, NCCL default group for
tp2xdp2, where the binding makes its own gloo group) or through mixcomm's TCP rendezvous (dp2).

    python3 -m pytest -q python/tests/test_binding_gpu.py           # skipped without torch/GPU
    python3 python/tests/test_binding_gpu.py [--topologies tp2,dp2,tp2xdp2,tp4,dp4,tp3]
                                             [--quick] [--autotune]

The MPS daemon is started (and stopped at the end) when none is running, unless
MIXCOMM_NO_MPS=1. The library: $MIXCOMM_LIBRARY, else the repository's build/libmixcomm.so.
"""
import argparse
import ctypes
import hashlib
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE.parent))  # the package in this checkout
sys.path.insert(0, str(HERE))

from spawn_ranks import (gpu_skip_reason, mps_daemon, print_failures, rank_env,  # noqa: E402
                         run_workers, skipped_without_gpu)

try:
    import pytest
except ImportError:  # script mode on a machine without pytest
    pytest = None

# name -> (local_tp, local_dp, bootstrap); bootstrap: torch-gloo | torch-nccl | tcp
DEFAULT_TOPOLOGIES = ["tp2", "dp2", "tp2xdp2"]
DEFAULT_BOOTSTRAP = {"tp2": "torch-gloo", "dp2": "tcp", "tp2xdp2": "torch-nccl"}
DTYPES = ["bfloat16", "float16", "float32"]
ROWS = [0, 1, 7, 100]
TAILS = [(1024,), (3, 40)]
LARGE = (64, (16384,))  # one larger message per (op, mode)
TOPOLOGY_TIMEOUT_S = 480


def parse_topology(name):
    m = re.fullmatch(r"(?:tp(\d+))?x?(?:dp(\d+))?(?::([\w-]+))?", name)
    if not m or not (m.group(1) or m.group(2)):
        raise ValueError(f"bad topology {name!r}: expected tpA, dpB or tpAxdpB[:bootstrap]")
    tp, dp = int(m.group(1) or 1), int(m.group(2) or 1)
    base = name.split(":")[0]
    bootstrap = m.group(3) or DEFAULT_BOOTSTRAP.get(base, "torch-gloo")
    if bootstrap not in ("torch-gloo", "torch-nccl", "tcp"):
        raise ValueError(f"bad bootstrap {bootstrap!r}: torch-gloo, torch-nccl or tcp")
    return tp, dp, bootstrap


# ------------------------------------------------------------------------------------------
# Worker (one rank)
# ------------------------------------------------------------------------------------------


def _tensor_bytes(t):
    t = t.detach().cpu().contiguous()
    return ctypes.string_at(t.data_ptr(), t.numel() * t.element_size()) if t.numel() else b""


def _reference(op_name, xs, me, tp, dp):
    """Expected output of world rank `me` from every rank's input (float64), single node."""
    import torch
    rows_in = xs[0].shape[0]
    if op_name == "ALLREDUCE":
        return sum(xs[1:], xs[0].clone())
    if op_name == "ALLGATHER":
        return torch.cat([xs[d] for d in range(dp)])  # tp == 1: dp_rank == world rank
    if op_name == "ALLREDUCE_ALLGATHER":
        return torch.cat([sum(xs[t + d * tp] for t in range(tp)) for d in range(dp)])
    # REDUCESCATTER, REDUCESCATTER_ALLREDUCE: the sum over all ranks of their block dp_rank
    r = rows_in // dp
    d = me // tp
    return sum(x[d * r:(d + 1) * r] for x in xs)


_UNIT_ROUNDOFF = {"bfloat16": 2.0 ** -8, "float16": 2.0 ** -11, "float32": 2.0 ** -24}
_ABS_FLOOR = {"bfloat16": 0.0, "float16": 2.0 ** -24, "float32": 0.0}


def _compare(op_name, y, xs, me, tp, dp, dtype_name):
    """None if y matches the float64 reference within rounding, else a description."""
    import torch
    world = len(xs)
    ref = _reference(op_name, xs, me, tp, dp)
    if tuple(y.shape) != tuple(ref.shape):
        return f"shape {tuple(y.shape)} != expected {tuple(ref.shape)}"
    got = y.detach().double().cpu()
    if op_name == "ALLGATHER":  # a pure copy: exact
        bad = ~(got == ref)
        tol = torch.zeros_like(ref)
    else:
        sum_abs = _reference(op_name, [x.abs() for x in xs], me, tp, dp)
        u = _UNIT_ROUNDOFF[dtype_name]
        # One rounding of the result to the dtype (2u |ref|), room for one rounding of a partial
        # sum (u * sum |x|), fp32 accumulation, and fp16's subnormal spacing.
        tol = (2 * u * ref.abs() + u * sum_abs + 2 * world * 2.0 ** -24 * sum_abs +
               _ABS_FLOOR[dtype_name])
        bad = ~((got - ref).abs() <= tol)  # NaN counts as bad
    n = int(bad.sum())
    if n == 0:
        return None
    idx = bad.flatten().nonzero()[0].item()
    return (f"{n} of {ref.numel()} elements wrong; first at flat index {idx}: got "
            f"{got.flatten()[idx].item()!r}, expected {ref.flatten()[idx].item()!r} "
            f"(tolerance {tol.flatten()[idx].item():.3g})")


def _inputs(seed, world, shape, dtype):
    """Every rank's input for one case: rank r's comes from generator seed (seed, r)."""
    import torch
    out = []
    for r in range(world):
        g = torch.Generator().manual_seed(seed * 1009 + r)
        out.append(torch.randn(shape, generator=g, dtype=torch.float32).to(dtype))
    return out


def worker_main(args):
    import torch
    import mixcomm
    from mixcomm import MixedCommHandler, MixedCommMode, MixedCommOp, run_mixed_comm

    rank = int(os.environ["RANK"])
    world = int(os.environ["WORLD_SIZE"])
    tp, dp = args.tp, args.dp
    ports = [int(p) for p in args.ports.split(",")]
    ndev = torch.cuda.device_count()
    dev = rank % ndev
    torch.cuda.set_device(dev)
    sharing = len([r for r in range(world) if r % ndev == dev])
    props = torch.cuda.get_device_properties(dev)
    grid = max(1, min(32, props.multi_processor_count // sharing))
    res = {"rank": rank, "world": world, "tp": tp, "dp": dp, "device": props.name,
           "torch": torch.__version__, "library": mixcomm.library_path(), "grid": grid,
           "sharing": sharing, "cases": [], "failures": [], "handlers": 0, "graph_replays": 0,
           "error_checks": 0, "modes": {}, "fatal": None}
    out_path = Path(args.out)

    def fail(what, detail):
        res["failures"].append({"case": what, "detail": detail})
        print(f"rank {rank}: FAIL {what}: {detail}", flush=True)

    if args.bootstrap.startswith("torch"):
        import datetime
        import torch.distributed as dist
        backend = "nccl" if args.bootstrap == "torch-nccl" else "gloo"
        dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{ports[0]}", rank=rank,
                                world_size=world, timeout=datetime.timedelta(seconds=120))
    ops_expected = ([MixedCommOp.ALLREDUCE] if dp == 1 else
                    [MixedCommOp.ALLGATHER, MixedCommOp.REDUCESCATTER] if tp == 1 else
                    [MixedCommOp.ALLREDUCE_ALLGATHER, MixedCommOp.REDUCESCATTER_ALLREDUCE])
    if world == 1:
        ops_expected = [MixedCommOp.ALLREDUCE, MixedCommOp.ALLGATHER, MixedCommOp.REDUCESCATTER]
    rows_list = [0, 7] if args.quick else ROWS
    tails = TAILS[:1] if args.quick else TAILS
    seed = 0
    try:
        handler_specs = [(d, False) for d in DTYPES]
        if args.autotune:
            handler_specs.append(("bfloat16", True))
        for hi, (dtype_name, autotune) in enumerate(handler_specs):
            dtype = getattr(torch, dtype_name)
            if args.bootstrap == "tcp":
                os.environ["MIXCOMM_PORT"] = str(ports[1 + hi])  # a fresh port per rendezvous
            t0 = time.time()
            h = MixedCommHandler(rank, world, rank, world, 0, 1, tp if tp > 1 else None,
                                 dp if dp > 1 else None, None, None, dtype,
                                 torch.device("cuda", dev), grid_size=grid,
                                 use_autotune=autotune)
            res["handlers"] += 1
            tag = f"{dtype_name}{'/autotune' if autotune else ''}"
            print(f"rank {rank}: handler {tag} created in {time.time() - t0:.2f} s: {h!r}",
                  flush=True)
            # The handler's view of the topology and of what it can do.
            if (h.tp_size, h.dp_size, h.world_rank) != (tp, dp, rank):
                fail(f"{tag}/topology", f"tp/dp/rank {h.tp_size}/{h.dp_size}/{h.world_rank}")
            ops = h.get_valid_op_list()
            modes = h.get_valid_mode_list()
            res["modes"][tag] = [m.name for m in modes]
            if ops != ops_expected:
                fail(f"{tag}/valid ops", f"{ops} != {ops_expected}")
            if MixedCommMode.FUSED_OPT_WAITS_UC not in modes and world > 1:
                fail(f"{tag}/valid modes", f"FUSED_OPT_WAITS_UC missing from {modes}")
            if any(m.name.endswith("_MC") for m in modes):
                fail(f"{tag}/valid modes", f"multicast mode in {modes}")
            if (MixedCommMode.AUTOTUNE in modes) != autotune:
                fail(f"{tag}/valid modes", f"AUTOTUNE presence wrong in {modes}")
            h.init_virtual_memory()  # idempotent, collective
            h.init_nvshmem()
            run_modes = [m for m in modes if m != MixedCommMode.AUTOTUNE or autotune] + [None]

            # Every op, mode, shape, row count, with and without x_out.
            for op in ops:
                scatter = op in (MixedCommOp.REDUCESCATTER, MixedCommOp.REDUCESCATTER_ALLREDUCE)
                shapes = [(rows, tail) for tail in tails for rows in rows_list]
                if not args.quick:
                    shapes.append(LARGE)
                for rows, tail in shapes:
                    seed += 1
                    in_shape = (rows * dp if scatter else rows,) + tail
                    xs = _inputs(seed, world, in_shape, dtype)
                    xs64 = [x.double() for x in xs]
                    x_in = xs[rank].to(f"cuda:{dev}")
                    for mode in run_modes:
                        digests = []
                        for given in (False, True):
                            case = (f"{tag}/{op.name}/{mode.name if mode else 'None'}/"
                                    f"{list(in_shape)}/x_out={'given' if given else 'new'}")
                            x_out = None
                            if given:
                                out_rows = (in_shape[0] // dp if scatter else
                                            in_shape[0] * dp if op in (
                                                MixedCommOp.ALLGATHER,
                                                MixedCommOp.ALLREDUCE_ALLGATHER)
                                            else in_shape[0])
                                x_out = torch.full((out_rows,) + tail, float("nan"),
                                                   dtype=dtype, device=x_in.device)
                            y = run_mixed_comm(op, h, x_in, x_out, mode)
                            torch.cuda.synchronize()
                            if given and y is not x_out:
                                fail(case, "the given x_out was not returned")
                            err = _compare(op.name, y, xs64, rank, tp, dp, dtype_name)
                            if err:
                                fail(case, err)
                            digest = hashlib.sha1(_tensor_bytes(y)).hexdigest()
                            digests.append(digest)
                            group = rank // tp if scatter else 0  # ranks that must agree
                            res["cases"].append({"case": case, "digest": digest,
                                                 "group": group})
                        if digests[0] != digests[1]:
                            fail(f"{tag}/{op.name}/{mode}/{list(in_shape)}",
                                 "same input gave different bits on two runs")
                    # The mode None would run, as the handler reports it.
                    chosen = h.select_autotune_mode(op, x_in)
                    if chosen not in modes or chosen == MixedCommMode.AUTOTUNE:
                        fail(f"{tag}/{op.name}/select_autotune_mode", f"{chosen!r}")

            # Argument errors: local checks before anything is enqueued (no rank is waiting).
            x_ok = torch.zeros((4, 1024), dtype=dtype, device=f"cuda:{dev}")
            op0 = ops[0]
            other = torch.float16 if dtype != torch.float16 else torch.bfloat16
            bad_op = next(o for o in MixedCommOp if o not in ops)
            checks = [
                (lambda: run_mixed_comm(op0, h, x_ok[0]), "x_in.ndim should be at least 2"),
                (lambda: run_mixed_comm(op0, h, x_ok.to(other)), "x_in.dtype should be"),
                (lambda: run_mixed_comm(op0, h, x_ok.cpu()), "x_in.device should be"),
                (lambda: run_mixed_comm(op0, h, x_ok.t()), "contiguous"),
                (lambda: run_mixed_comm(bad_op, h, x_ok), "Invalid op"),
                (lambda: run_mixed_comm(op0, h, x_ok, mode=MixedCommMode.FUSED_OPT_WAITS_MC),
                 "Invalid mode: FUSED_OPT_WAITS_MC"),
                (lambda: run_mixed_comm(op0, h, x_ok, x_ok[:, :512].contiguous()),
                 r"x_out.shape\[1:\] should be equal to x_in.shape\[1:\]"),
                (lambda: run_mixed_comm(op0, h, x_ok, torch.empty(
                    (3, 1024), dtype=dtype, device=x_ok.device)), r"x_out.shape\[0\]"),
                (lambda: run_mixed_comm(op0, h, x_ok, torch.empty(
                    (4 * dp if op0 in (MixedCommOp.ALLGATHER, MixedCommOp.ALLREDUCE_ALLGATHER)
                     else 4 // dp, 1024), dtype=other, device=x_ok.device)),
                 "x_out.dtype should be equal to x_in.dtype"),
                (lambda: run_mixed_comm(op0, h, torch.zeros((4 * dp, 3), dtype=dtype,
                                                            device=x_ok.device)),
                 "16-byte"),
            ]
            if dp > 1:
                scatter_op = next(o for o in ops if o in (MixedCommOp.REDUCESCATTER,
                                                          MixedCommOp.REDUCESCATTER_ALLREDUCE))
                checks.append((lambda: run_mixed_comm(scatter_op, h, torch.zeros(
                    (dp * 3 + 1, 1024), dtype=dtype, device=x_ok.device)),
                    "x_in.shape\\[0\\] should be divisible by dp_size"))
            for fn, pattern in checks:
                try:
                    fn()
                    fail(f"{tag}/error check {pattern!r}", "no exception")
                except ValueError as e:
                    if not re.search(pattern, str(e)):
                        fail(f"{tag}/error check {pattern!r}", f"message was {e}")
                res["error_checks"] += 1

            # CUDA graph: capture one call per op, replay with new inputs.
            for op in ops:
                scatter = op in (MixedCommOp.REDUCESCATTER, MixedCommOp.REDUCESCATTER_ALLREDUCE)
                shape = (7 * dp if scatter else 7, 512)
                seed += 1
                x_static = _inputs(seed, world, shape, dtype)[rank].to(f"cuda:{dev}")
                run_mixed_comm(op, h, x_static)  # warm-up outside the graph
                torch.cuda.synchronize()
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):
                    y_static = run_mixed_comm(op, h, x_static)
                for k in range(3):
                    seed += 1
                    xs = _inputs(seed, world, shape, dtype)
                    x_static.copy_(xs[rank].to(x_static.device))
                    graph.replay()
                    torch.cuda.synchronize()
                    res["graph_replays"] += 1
                    err = _compare(op.name, y_static, [x.double() for x in xs], rank, tp, dp,
                                   dtype_name)
                    if err:
                        fail(f"{tag}/{op.name}/graph replay {k}", err)
                del graph, y_static
            torch.cuda.synchronize()
            h.shutdown()
            h.shutdown()  # idempotent
            try:
                h.get_valid_op_list()
                fail(f"{tag}/after shutdown", "no exception")
            except RuntimeError:
                pass
            print(f"rank {rank}: handler {tag} done", flush=True)
    except BaseException as e:  # noqa: BLE001 - report, then stop this rank
        res["fatal"] = "".join(traceback.format_exception(type(e), e, e.__traceback__))
        print(f"rank {rank}: FATAL {res['fatal']}", flush=True)
    finally:
        out_path.write_text(json.dumps(res))
    if args.bootstrap.startswith("torch"):
        import torch.distributed as dist
        if dist.is_initialized():
            dist.destroy_process_group()
    return 0 if res["fatal"] is None and not res["failures"] else 1


# ------------------------------------------------------------------------------------------
# Launcher
# ------------------------------------------------------------------------------------------


def _free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def run_topology(name, quick=False, autotune=False, timeout=TOPOLOGY_TIMEOUT_S):
    """Run one topology's ranks; return (passed, summary dict, report text)."""
    tp, dp, bootstrap = parse_topology(name)
    world = tp * dp
    tmp = Path(tempfile.mkdtemp(prefix=f"mixcomm-pytest-{name.replace(':', '-')}-"))
    ports = _free_ports(6)
    commands = []
    t0 = time.time()
    for r in range(world):
        env = rank_env(r, world, ports[0])
        env["MIXCOMM_ADDR"] = "127.0.0.1"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--tp", str(tp),
               "--dp", str(dp), "--bootstrap", bootstrap, "--out", str(tmp / f"rank{r}.json"),
               "--ports", ",".join(map(str, ports))]
        if quick:
            cmd.append("--quick")
        if autotune:
            cmd.append("--autotune")
        commands.append((cmd, env))
    procs, timed_out = run_workers(commands, tmp, t0 + timeout)
    elapsed = time.time() - t0

    problems = []
    results = []
    for r in range(world):
        path = tmp / f"rank{r}.json"
        if not path.exists():
            problems.append(f"rank {r}: no result (exit code {procs[r].returncode})")
            results.append(None)
            continue
        res = json.loads(path.read_text())
        results.append(res)
        if res["fatal"]:
            problems.append(f"rank {r}: fatal error:\n{res['fatal']}")
        for f in res["failures"][:10]:
            problems.append(f"rank {r}: {f['case']}: {f['detail']}")
        if len(res["failures"]) > 10:
            problems.append(f"rank {r}: ... {len(res['failures']) - 10} more failures")
    if timed_out:
        problems.insert(0, f"timed out after {timeout} s (workers killed)")
    # Bitwise agreement: ranks of one group (TP ranks; all ranks for AR/AG-type ops).
    bitwise_checked = 0
    if all(r is not None for r in results):
        by_case = {}
        for r, res in enumerate(results):
            for c in res["cases"]:
                by_case.setdefault((c["case"], c["group"]), []).append((r, c["digest"]))
        for (case, group), entries in by_case.items():
            if len(entries) > 1:
                bitwise_checked += 1
                if len({d for _, d in entries}) != 1:
                    problems.append(f"{case}: ranks {[r for r, _ in entries]} (group {group}) "
                                    f"disagree bitwise")
        counts = {len(res["cases"]) for res in results}
        if len(counts) != 1:
            problems.append(f"ranks ran different numbers of cases: {sorted(counts)}")
    r0 = next((r for r in results if r is not None), None)
    summary = {
        "topology": name, "ranks": world, "bootstrap": bootstrap,
        "handlers": r0["handlers"] if r0 else 0,
        "runs": sum(len(r["cases"]) for r in results if r),
        "graph_replays": sum(r["graph_replays"] for r in results if r),
        "error_checks": sum(r["error_checks"] for r in results if r),
        "bitwise_groups": bitwise_checked, "seconds": elapsed,
        "device": r0["device"] if r0 else "?", "grid": r0["grid"] if r0 else 0,
        "torch": r0["torch"] if r0 else "?", "library": r0["library"] if r0 else "?",
        "modes": r0["modes"] if r0 else {}, "passed": not problems,
    }
    text = "\n".join(problems)
    if problems:
        tails = []
        for r in range(world):
            lines = (tmp / f"rank{r}.log").read_text(errors="replace").splitlines()
            tails.append(f"--- rank {r} log (last 25 lines, {tmp / f'rank{r}.log'}) ---\n" +
                         "\n".join(lines[-25:]))
        text += "\n" + "\n".join(tails)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return not problems, summary, text


def format_summary(s):
    modes = ", ".join(sorted({m for ms in s["modes"].values() for m in ms})) or "-"
    return (f"{s['topology']:<10} ranks={s['ranks']} bootstrap={s['bootstrap']:<10} "
            f"handlers={s['handlers']} runs={s['runs']} graph_replays={s['graph_replays']} "
            f"error_checks={s['error_checks']} bitwise_groups={s['bitwise_groups']} "
            f"grid={s['grid']} {s['seconds']:.1f}s  modes: {modes}  "
            f"{'PASS' if s['passed'] else 'FAIL'}")


# ------------------------------------------------------------------------------------------
# pytest
# ------------------------------------------------------------------------------------------

if pytest is not None:
    @pytest.fixture(scope="module")
    def _mps():
        reason = gpu_skip_reason()
        if reason:
            pytest.skip(reason)
        with mps_daemon() as line:
            yield line

    @pytest.mark.parametrize("topology", DEFAULT_TOPOLOGIES)
    def test_binding_gpu(topology, _mps):
        ok, summary, text = run_topology(topology,
                                         quick=os.environ.get("MIXCOMM_GPU_QUICK") == "1")
        print(_mps)
        print(format_summary(summary))
        assert ok, text


# ------------------------------------------------------------------------------------------
# Script
# ------------------------------------------------------------------------------------------


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--tp", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--dp", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--bootstrap", default="torch-gloo", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--ports", help=argparse.SUPPRESS)
    ap.add_argument("--topologies", default=",".join(DEFAULT_TOPOLOGIES),
                    help="comma-separated: tpA, dpB, tpAxdpB, optionally :torch-gloo, "
                         ":torch-nccl or :tcp (default %(default)s)")
    ap.add_argument("--quick", action="store_true", help="fewer shapes and row counts")
    ap.add_argument("--autotune", action="store_true",
                    help="also a bf16 handler with use_autotune=True (mode AUTOTUNE)")
    ap.add_argument("--timeout", type=int, default=TOPOLOGY_TIMEOUT_S,
                    help="seconds per topology (default %(default)s)")
    args = ap.parse_args(argv)
    if args.worker:
        return worker_main(args)

    names = [t for t in args.topologies.split(",") if t]
    for t in names:
        parse_topology(t)
    if skipped_without_gpu("mixcomm Python binding GPU test"):
        return 0
    print("mixcomm Python binding GPU test", flush=True)
    summaries, reports = [], []
    with mps_daemon() as line:
        print(line, flush=True)
        for t in names:
            ok, summary, text = run_topology(t, quick=args.quick, autotune=args.autotune,
                                             timeout=args.timeout)
            summaries.append(summary)
            print(format_summary(summary), flush=True)
            if not ok:
                reports.append(f"==== {t} ====\n{text}")
    first = summaries[0] if summaries else {}
    if print_failures(summaries, reports,
                      f"\ndevice: {first.get('device')}, torch {first.get('torch')}, library "
                      f"{first.get('library')}"):
        return 1
    total = sum(s["runs"] for s in summaries)
    print(f"\nALL PASSED: {len(summaries)} topologies, {total} runs, "
          f"{sum(s['graph_replays'] for s in summaries)} graph replays")
    return 0


if __name__ == "__main__":
    sys.exit(main())
