# SPDX-License-Identifier: Apache-2.0
"""What importing mixcomm does, each case in a fresh interpreter: importing it without torch
(hidden even where it is installed), and the FlashInfer alias (mixcomm.alias_flashinfer) with
and without a FlashInfer package on the path. No GPU, no torch needed.
"""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent
PYTHON_DIR = HERE.parent

# Makes `import torch` fail as it does where torch is not installed.
_HIDE_TORCH = textwrap.dedent("""
    import sys
    class _NoTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ModuleNotFoundError("No module named 'torch' (hidden by the test)")
            return None
    sys.meta_path.insert(0, _NoTorch())
""")


def _run(code: str, extra_path=(), hide_torch=False) -> dict:
    """Run code in a fresh python3; it prints one JSON line last."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(PYTHON_DIR)] + [str(p) for p in extra_path] +
                                        ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    prog = (_HIDE_TORCH if hide_torch else "") + textwrap.dedent(code)
    proc = subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True,
                          timeout=120, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_import_without_torch():
    res = _run("""
        import json, sys
        import mixcomm
        from mixcomm import MixedCommHandler, MixedCommOp, run_mixed_comm
        out = {"torch_imported": "torch" in sys.modules, "version": mixcomm.__version__}
        try:
            import mixcomm.ops
            out["ops"] = "imported"
        except ImportError as e:
            out["ops"] = "ImportError: " + str(e)
        try:
            run_mixed_comm(MixedCommOp.ALLREDUCE, None, None)
        except ImportError as e:
            out["run"] = str(e)
        try:  # argument checks need no torch
            MixedCommHandler(5, 2, 0, 2, 0, 1, None, None, None, None, "bfloat16", 0)
        except ValueError as e:
            out["handler"] = str(e)
        print(json.dumps(out))
    """, hide_torch=True)
    assert res["torch_imported"] is False
    assert res["ops"].startswith("ImportError") and "torch" in res["ops"]
    assert res["run"].startswith("run_mixed_comm needs PyTorch (import torch failed: "
                                 "ModuleNotFoundError")
    assert "world_rank=5 is outside" in res["handler"]


_ALIAS_CHECK = """
    import json, sys
    import mixcomm
    before = "flashinfer" in sys.modules
    m = mixcomm.alias_flashinfer()
    import flashinfer.comm.mixed_comm as a
    from flashinfer.comm import mixed_comm as b
    from flashinfer.comm.mixed_comm import (MixedCommHandler, MixedCommMode, MixedCommOp,
                                            run_mixed_comm)
    import flashinfer
    same = (m is mixcomm.mixed_comm and a is m and b is m and flashinfer.comm.mixed_comm is m
            and MixedCommHandler is mixcomm.MixedCommHandler
            and run_mixed_comm is mixcomm.run_mixed_comm and MixedCommOp is mixcomm.MixedCommOp
            and MixedCommMode is mixcomm.MixedCommMode)
    again = mixcomm.alias_flashinfer() is m and sys.modules["flashinfer.comm.mixed_comm"] is m
    out = {"before": before, "same": same, "again": again,
           "placeholder": getattr(flashinfer, "__mixcomm_alias__", False),
           "torch_imported": "torch" in sys.modules}
    try:
        flashinfer.comm.allreduce_fusion
        out["other_attr"] = "no error"
    except AttributeError as e:
        out["other_attr"] = str(e)
    try:
        import flashinfer.norm
        out["other_module"] = "imported"
    except ImportError as e:
        out["other_module"] = type(e).__name__
    EXTRA
    print(json.dumps(out))
"""


def test_flashinfer_alias_without_flashinfer():
    res = _run(_ALIAS_CHECK.replace("EXTRA", ""), hide_torch=True)
    assert res == {"before": False, "same": True, "again": True, "placeholder": True,
                   "torch_imported": False,
                   "other_attr": res["other_attr"], "other_module": "ModuleNotFoundError"}
    assert "FlashInfer is not installed" in res["other_attr"]
    assert "flashinfer.comm.mixed_comm" in res["other_attr"]


def _fake_flashinfer(root: Path, own_mixed_comm_raises: bool) -> None:
    """A stand-in FlashInfer package: flashinfer.comm imports from .mixed_comm (as FlashInfer
    does) and has another module of its own."""
    comm = root / "flashinfer" / "comm"
    comm.mkdir(parents=True)
    (root / "flashinfer" / "__init__.py").write_text("from . import comm\nVERSION = 'test'\n")
    (comm / "__init__.py").write_text(
        "from .mixed_comm import MixedCommHandler as MixedCommHandler\n"
        "from .allreduce import allreduce_fusion\n")
    (comm / "allreduce.py").write_text("def allreduce_fusion():\n    return 'flashinfer'\n")
    (comm / "mixed_comm.py").write_text(
        "raise ImportError('FlashInfer\\'s own mixed_comm was imported')\n"
        if own_mixed_comm_raises else "class MixedCommHandler:\n    pass\n")


def test_flashinfer_alias_with_flashinfer_installed(tmp_path):
    _fake_flashinfer(tmp_path, own_mixed_comm_raises=True)
    res = _run(_ALIAS_CHECK.replace("EXTRA", """
    out["flashinfer_version"] = flashinfer.VERSION
    out["other_attr"] = flashinfer.comm.allreduce_fusion()
    out["package_import_sees_alias"] = flashinfer.comm.MixedCommHandler is mixcomm.MixedCommHandler
    """), extra_path=[tmp_path])
    assert res["same"] and res["again"] and not res["before"]
    assert res["placeholder"] is False  # FlashInfer's own package
    assert res["flashinfer_version"] == "test"
    assert res["other_attr"] == "flashinfer"  # everything else stays FlashInfer's
    assert res["package_import_sees_alias"] is True
    assert res["other_module"] == "ModuleNotFoundError"


def test_flashinfer_alias_replaces_an_already_imported_module(tmp_path):
    _fake_flashinfer(tmp_path, own_mixed_comm_raises=False)
    res = _run("""
        import json, sys
        import flashinfer.comm.mixed_comm as theirs
        import mixcomm
        m = mixcomm.alias_flashinfer()
        import flashinfer.comm.mixed_comm as now
        from flashinfer.comm import mixed_comm
        print(json.dumps({"replaced": now is m and mixed_comm is m and theirs is not m}))
    """, extra_path=[tmp_path])
    assert res["replaced"]
