# SPDX-License-Identifier: Apache-2.0
"""Start the ranks of one job as processes on this host and collect what each wrote, for the
GPU scripts whose ranks share the GPU under CUDA MPS (test_*_gpu.py, bench_custom_ops.py), and
what those scripts share around it: whether there is a GPU, the MPS daemon, a job's problems.

    with mps_daemon() as line:
        job = run_ranks(script, world=4, args=[...], timeout=240)
    job.results[r]   # the JSON rank r wrote to its --out file, or None
    job.report()     # each failed rank's exit code and the end of its log

Every rank runs `python3 script --worker --out FILE ARGS` with RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR/MASTER_PORT (a free port, for torch.distributed's gloo rendezvous), a bounded
mixcomm kernel timeout, and LD_LIBRARY_PATH holding the NVSHMEM wheel's lib/ (what
scripts/lib-env.sh does for the shell scripts) so that emulated nodes find libnvshmem_host.so.3.
Workers still running at the deadline are killed (only the processes started here).
"""
import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def nvshmem_lib_dir():
    """lib/ of the nvidia-nvshmem-cu13 wheel, or None."""
    try:
        import nvidia.nvshmem as m
    except ImportError:
        return None
    for p in list(getattr(m, "__path__", [])):
        lib = Path(p) / "lib"
        if lib.is_dir():
            return str(lib)
    return None


class Job:
    def __init__(self, world, tmp, procs, elapsed, timed_out, timeout):
        self.world = world
        self.tmp = tmp
        self.elapsed = elapsed
        self.timed_out = timed_out
        self.timeout = timeout
        self.exit_codes = [p.returncode for p in procs]
        self.results = []
        for r in range(world):
            path = tmp / f"rank{r}.json"
            try:
                self.results.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                self.results.append(None)

    def log_tail(self, rank: int, lines: int = 30) -> str:
        try:
            text = (self.tmp / f"rank{rank}.log").read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(text[-lines:])

    def report(self) -> str:
        out = []
        if self.timed_out:
            out.append(f"timed out after {self.timeout} s (workers killed)")
        for r in range(self.world):
            if self.exit_codes[r] != 0 or self.results[r] is None:
                out.append(f"--- rank {r}: exit code {self.exit_codes[r]}, "
                           f"{'no result file' if self.results[r] is None else 'result written'}"
                           f", log {self.tmp / f'rank{r}.log'} (last lines) ---\n"
                           + self.log_tail(r))
        return "\n".join(out)


def wait_workers(procs, deadline: float) -> bool:
    """Wait for the worker processes until the deadline (time.time() value); kill those still
    running then (only these processes) and reap them. True if the deadline was reached."""
    timed_out = False
    for p in procs:
        try:
            p.wait(timeout=max(1.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            timed_out = True
            break
    if timed_out:
        for p in procs:
            if p.poll() is None:
                p.kill()
        for p in procs:
            p.wait()
    return timed_out


def rank_env(rank: int, world: int, master_port: int) -> dict:
    """The environment of rank `rank` of a job of `world` ranks on this host: torch.distributed's
    variables (the rendezvous on 127.0.0.1:master_port, over the loopback interface), no
    autotune cache, a bounded kernel timeout unless one is set, unbuffered output."""
    env = dict(os.environ)
    env.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
               LOCAL_WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(master_port),
               MIXCOMM_CACHE_DIR="", PYTHONUNBUFFERED="1",
               MIXCOMM_TIMEOUT_MS=env.get("MIXCOMM_TIMEOUT_MS", "15000"))
    env.pop("MIXCOMM_PORT", None)
    env.setdefault("GLOO_SOCKET_IFNAME", "lo")  # all ranks on this host
    return env


def run_workers(commands, tmp: Path, deadline: float):
    """Start one process per (cmd, env) of commands from the repository root, rank r writing
    its output to tmp/rank{r}.log, and wait for them (wait_workers). Returns (procs,
    timed_out)."""
    procs, logs = [], []
    for r, (cmd, env) in enumerate(commands):
        log = open(tmp / f"rank{r}.log", "w")
        logs.append(log)
        procs.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                      cwd=str(REPO)))
    timed_out = wait_workers(procs, deadline)
    for log in logs:
        log.close()
    return procs, timed_out


def run_ranks(script, world: int, args, timeout: float, env_extra=None, tag="job") -> Job:
    tmp = Path(tempfile.mkdtemp(prefix=f"mixcomm-{tag}-"))
    port = free_port()
    nvshmem = nvshmem_lib_dir()
    commands = []
    t0 = time.time()
    for r in range(world):
        env = rank_env(r, world, port)
        if nvshmem and nvshmem not in env.get("LD_LIBRARY_PATH", "").split(":"):
            env["LD_LIBRARY_PATH"] = nvshmem + (":" + env["LD_LIBRARY_PATH"]
                                                if env.get("LD_LIBRARY_PATH") else "")
        if env_extra:
            env.update(env_extra)
        cmd = [sys.executable, str(script), "--worker", "--out", str(tmp / f"rank{r}.json")]
        cmd += [str(a) for a in args]
        commands.append((cmd, env))
    procs, timed_out = run_workers(commands, tmp, t0 + timeout)
    return Job(world, tmp, procs, time.time() - t0, timed_out, timeout)


def _mps_running():
    pipe = os.environ.get("CUDA_MPS_PIPE_DIRECTORY", "/tmp/nvidia-mps")
    return os.path.exists(os.path.join(pipe, "control"))


@contextlib.contextmanager
def mps_daemon():
    """Yield a line describing MPS; start the daemon if none runs (and stop it afterwards)."""
    if os.environ.get("MIXCOMM_NO_MPS") == "1":
        yield "MPS: not used (MIXCOMM_NO_MPS=1)"
        return
    if _mps_running():
        yield "MPS: already running"
        return
    ctl = shutil.which("nvidia-cuda-mps-control")
    if ctl is None:
        yield "MPS: nvidia-cuda-mps-control not found; ranks sharing a GPU will time-slice"
        return
    saved = {k: os.environ.get(k) for k in ("CUDA_MPS_PIPE_DIRECTORY", "CUDA_MPS_LOG_DIRECTORY")}
    os.environ["CUDA_MPS_PIPE_DIRECTORY"] = "/tmp/mixcomm-mps-pipe"
    os.environ["CUDA_MPS_LOG_DIRECTORY"] = "/tmp/mixcomm-mps-log"
    for k in ("CUDA_MPS_PIPE_DIRECTORY", "CUDA_MPS_LOG_DIRECTORY"):
        os.makedirs(os.environ[k], exist_ok=True)
    started = subprocess.call([ctl, "-d"]) == 0
    try:
        yield "MPS: started for this test" if started else "MPS: could not be started"
    finally:
        if started:
            subprocess.run([ctl], input=b"quit\n", stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def gpu_skip_reason():
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    smi = shutil.which("nvidia-smi")
    if smi is not None:
        try:
            listing = subprocess.run([smi, "-L"], capture_output=True, text=True,
                                     timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            listing = ""
        if "GPU " not in listing:
            return "no GPU (nvidia-smi -L lists none)"
        return None
    return None if torch.cuda.is_available() else "no CUDA GPU visible to torch"


def join_job(rank: int, world: int):
    """A worker's start: the job's gloo process group (120 s for every rank to arrive), its GPU
    (ranks take the visible GPUs in turn) made current, and a fair share of the GPU's SMs as
    CTAs per rank (at most 32). Returns (device, grid)."""
    import datetime

    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method="env://", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=120))
    ndev = torch.cuda.device_count()
    device = torch.device("cuda", rank % ndev)
    torch.cuda.set_device(device)
    sharing = -(-world // ndev)
    grid = max(1, min(32, torch.cuda.get_device_properties(device).multi_processor_count //
                      sharing))
    return device, grid


def worker_result(rank: int):
    """A per-topology worker's result (what topology_suite_main's scripts write: failures,
    digests of outputs ranks share, outputs checked, a fatal error) and fail(what, detail),
    which records a failure and prints it."""
    res = {"rank": rank, "failures": [], "digests": [], "checked": 0, "fatal": None}

    def fail(what, detail):
        res["failures"].append(f"{what}: {str(detail)[:1500]}")
        print(f"rank {rank}: FAIL {what}: {detail}", flush=True)

    return res, fail


def topology_handler(topology, rank: int, world: int, dtype, device, grid: int):
    """Rank `rank`'s handler (no autotune) for a topology (local_size, inter_size,
    local_tp_size, inter_tp_size) of world ranks, node by node."""
    from mixcomm import MixedCommHandler

    local, inter, ltp, itp = topology
    return MixedCommHandler(rank, world, rank % local, local, rank // local, inter, ltp, None,
                            itp, None, dtype, device, grid_size=grid, use_autotune=False)


def end_worker(h, res: dict, out: str, fail) -> int:
    """A worker's end, whatever happened before: shut its handler h down (when made; a failure
    goes to fail(what, detail)), write res as JSON to out. Returns the worker's exit status."""
    if h is not None:
        try:
            h.shutdown()
        except Exception as e:  # noqa: BLE001
            fail("shutdown", e)
    Path(out).write_text(json.dumps(res))
    return 0 if not res["failures"] and not res["fatal"] else 1


def run_topology_job(script, name: str, world: int, timeout: float, tag: str) -> Job:
    """The job of one topology of a per-topology script (topology_suite_main): world ranks of
    `script --topology name`, sharing the host's cores between their compilers (Inductor starts
    one compile worker per core in every process)."""
    threads = str(max(1, (os.cpu_count() or 1) // world))
    return run_ranks(script, world, ["--topology", name], timeout, tag=f"{tag}-{name}",
                     env_extra={"TORCHINDUCTOR_COMPILE_THREADS": threads})


def job_outcome(job, shared):
    """(passed, outputs checked, seconds, failure text) of a per-topology job: its problems
    (job_problems), and outputs that ranks share but disagree on bitwise. shared(d) gives the
    (group, digest) pairs of one digest record d of a rank: every rank of a group must agree."""
    problems = job_problems(job)
    checked = sum(res["checked"] for res in job.results if res)
    if all(res is not None for res in job.results):
        groups = {}
        for res in job.results:
            for d in res["digests"]:
                for group, digest in shared(d):
                    groups.setdefault(group, set()).add(digest)
        for key, digests in sorted(groups.items(), key=str):
            if len(digests) != 1:
                problems.append(f"{key}: ranks that share this output disagree bitwise")
    return not problems, checked, job.elapsed, "\n".join(problems)


def skipped_without_gpu(what: str) -> bool:
    """When this machine cannot run a GPU script, print that `what` is skipped and why; True
    then."""
    reason = gpu_skip_reason()
    if reason:
        print(f"{what}: SKIPPED ({reason})")
        return True
    return False


def job_problems(job, limit: int = 8) -> list:
    """What went wrong in a job whose ranks write {"fatal", "failures", ...}: each rank's fatal
    error, its first `limit` failures (text, or {"case", "detail"}) and how many more there were,
    and the job's report of ranks that did not finish."""
    problems = []
    for r, res in enumerate(job.results):
        if res is None:
            continue
        if res["fatal"]:
            problems.append(f"rank {r}: fatal error:\n{res['fatal']}")
        for f in res["failures"][:limit]:
            text = f"{f['case']}: {f['detail']}" if isinstance(f, dict) else f
            problems.append(f"rank {r}: {text}")
        if len(res["failures"]) > limit:
            problems.append(f"rank {r}: ... {len(res['failures']) - limit} more failures")
    if job.report():
        problems.append(job.report())
    return problems


def topology_suite_main(argv, doc: str, title: str, topologies, default_topologies, worker_main,
                        run_topology, timeout: float) -> int:
    """The command line of a GPU script that runs one job per topology (test_epilogue_gpu.py,
    test_uneven_gpu.py): --worker runs worker_main(args); otherwise skip without a GPU, then
    under MPS run_topology(name, timeout) -> (ok, outputs checked, seconds, failure text) for
    each of --topologies, a line each and the text of those that failed. Returns the exit
    status."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--topology", help=argparse.SUPPRESS)
    ap.add_argument("--topologies", default=",".join(default_topologies))
    args = ap.parse_args(argv)
    if args.worker:
        return worker_main(args)
    if skipped_without_gpu(title):
        return 0
    names = [t for t in args.topologies.split(",") if t]
    failed = []
    t0 = time.time()
    with mps_daemon() as line:
        print(line, flush=True)
        for t in names:
            if t not in topologies:
                ap.error(f"unknown topology {t!r}")
            ok, checked, secs, text = run_topology(t, timeout)
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


def print_failures(summaries, reports, device_line: str) -> bool:
    """The end of a suite's output: device_line, the failure reports, and which topologies
    failed (summaries: dicts with "topology" and "passed"). True if any failed."""
    print(device_line)
    for r in reports:
        print(r)
    failed = [s["topology"] for s in summaries if not s["passed"]]
    if failed:
        print(f"\nFAILED: {', '.join(failed)} ({len(failed)} of {len(summaries)} topologies)")
    return bool(failed)
