# SPDX-License-Identifier: Apache-2.0
"""The DP-attention example (examples/dp_attention_layer.py) on the CPU: 4 ranks (TP 2 x DP 2)
as processes meeting over gloo, tests/fakelib.py standing in for the library, eager and
torch.compile (aot_eager) modes; and the same with a library that returns wrong sums, which the
example must report. The CUDA-graph modes need a GPU (the lead runs them there).
"""
import importlib.util
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

try:
    import pytest
except ImportError:
    pytest = None


def _example():
    spec = importlib.util.spec_from_file_location("dp_attention_layer",
                                                  REPO / "examples" / "dp_attention_layer.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def worker_main(out_path: str, skew: float) -> int:
    import datetime

    import torch
    import torch.distributed as dist

    import fakelib
    from mixcomm import MixedCommHandler, _lib

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    dist.init_process_group("gloo", init_method="env://", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=120))
    fake = fakelib.FakeLibrary(_lib.load(), exchange=fakelib.gloo_exchange())
    fake.skew = skew
    _lib._lib = fake
    h = MixedCommHandler(rank, world, rank, world, 0, 1, 2, None, 1, None, torch.bfloat16, 0,
                         use_autotune=False)
    fakelib.on_cpu(h)
    ex = _example()
    cfg = ex.Config(tokens=3, hidden=256, heads=4, head_dim=64, intermediate=512, kv_len=16)
    lines = []
    ok = ex.run(cfg, h, rank, world, torch.bfloat16, torch.device("cpu"), ["eager", "compile"],
                steps=2, backend="aot_eager", log=lines.append)
    h.shutdown()
    Path(out_path).write_text(json.dumps({"ok": ok, "lines": lines,
                                          "calls": len(fake.calls)}))
    dist.destroy_process_group()
    return 0


def _run(skew: float):
    from spawn_ranks import run_ranks
    job = run_ranks(Path(__file__).resolve(), 4, ["--skew", skew], timeout=240, tag="example")
    assert all(r is not None for r in job.results), job.report()
    return job.results


if pytest is not None:
    def test_example_layer_on_cpu():
        pytest.importorskip("torch")
        results = _run(0.0)
        assert all(r["ok"] for r in results), results[0]["lines"]
        lines = results[0]["lines"]
        assert len(lines) == 2 and all(line.split()[-1] == "OK" for line in lines), lines
        # 2 collectives per step, 2 steps per mode, and the eager warm-up of nothing else.
        assert all(r["calls"] >= 8 for r in results)

    def test_example_notices_a_wrong_library():
        pytest.importorskip("torch")
        results = _run(0.5)
        assert not any(r["ok"] for r in results)
        assert "FAILED" in results[0]["lines"][0] and "max error" in results[0]["lines"][1]


if __name__ == "__main__" and "--worker" in sys.argv:
    args = sys.argv[1:]
    sys.exit(worker_main(args[args.index("--out") + 1], float(args[args.index("--skew") + 1])))
