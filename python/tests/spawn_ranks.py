# SPDX-License-Identifier: Apache-2.0
"""Start the ranks of one job as processes on this host and collect what each wrote, for the
GPU scripts whose ranks share the GPU under CUDA MPS (test_ops_gpu.py, bench_custom_ops.py).

    with mps_daemon() as line:                       # from test_binding_gpu
        job = run_ranks(script, world=4, args=[...], timeout=240)
    job.results[r]   # the JSON rank r wrote to its --out file, or None
    job.report()     # each failed rank's exit code and the end of its log

Every rank runs `python3 script --worker --out FILE ARGS` with RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR/MASTER_PORT (a free port, for torch.distributed's gloo rendezvous), a bounded
mixcomm kernel timeout, and LD_LIBRARY_PATH holding the NVSHMEM wheel's lib/ (what
scripts/lib-env.sh does for the shell scripts) so that emulated nodes find libnvshmem_host.so.3.
Workers still running at the deadline are killed (only the processes started here).
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))

from test_binding_gpu import gpu_skip_reason, mps_daemon  # noqa: E402,F401 - re-exported


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


def run_ranks(script, world: int, args, timeout: float, env_extra=None, tag="job") -> Job:
    tmp = Path(tempfile.mkdtemp(prefix=f"mixcomm-{tag}-"))
    port = free_port()
    nvshmem = nvshmem_lib_dir()
    procs, logs = [], []
    t0 = time.time()
    for r in range(world):
        env = dict(os.environ)
        env.update(RANK=str(r), WORLD_SIZE=str(world), LOCAL_RANK=str(r),
                   LOCAL_WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                   MIXCOMM_CACHE_DIR="", PYTHONUNBUFFERED="1",
                   MIXCOMM_TIMEOUT_MS=env.get("MIXCOMM_TIMEOUT_MS", "15000"))
        env.pop("MIXCOMM_PORT", None)
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")
        if nvshmem and nvshmem not in env.get("LD_LIBRARY_PATH", "").split(":"):
            env["LD_LIBRARY_PATH"] = nvshmem + (":" + env["LD_LIBRARY_PATH"]
                                                if env.get("LD_LIBRARY_PATH") else "")
        if env_extra:
            env.update(env_extra)
        cmd = [sys.executable, str(script), "--worker", "--out", str(tmp / f"rank{r}.json")]
        cmd += [str(a) for a in args]
        log = open(tmp / f"rank{r}.log", "w")
        logs.append(log)
        procs.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                      cwd=str(REPO)))
    deadline = t0 + timeout
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
                p.kill()  # only the workers started above
        for p in procs:
            p.wait()
    for log in logs:
        log.close()
    return Job(world, tmp, procs, time.time() - t0, timed_out, timeout)
