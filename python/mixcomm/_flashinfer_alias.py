# SPDX-License-Identifier: Apache-2.0
"""mixcomm.alias_flashinfer(): make FlashInfer's module path for the mixed TP/DP collectives
resolve to mixcomm, so that engine code written against FlashInfer runs unchanged:

    import mixcomm; mixcomm.alias_flashinfer()     # once, before the engine imports FlashInfer
    from flashinfer.comm import mixed_comm          # -> mixcomm.mixed_comm
    import flashinfer.comm.mixed_comm as mc         # -> mixcomm.mixed_comm

Without FlashInfer installed, "flashinfer" and "flashinfer.comm" become two small placeholder
packages that hold only mixed_comm; any other name in them raises an AttributeError saying so.
With FlashInfer installed, its packages are imported as they are and only
flashinfer.comm.mixed_comm is replaced (also for FlashInfer's own imports of it).
Needs no torch.
"""
from __future__ import annotations

import importlib.util
import sys
import types

TARGET = "flashinfer.comm.mixed_comm"
_MARK = "__mixcomm_alias__"  # set on the placeholder packages


def _placeholder(name: str, doc: str) -> types.ModuleType:
    mod = types.ModuleType(name, doc)
    mod.__path__ = []  # a package: submodule imports look it up, and find nothing else
    mod.__package__ = name
    setattr(mod, _MARK, True)

    def __getattr__(attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise AttributeError(f"module {name!r} has no attribute {attr!r}: FlashInfer is not "
                             f"installed, and mixcomm.alias_flashinfer() provides only {TARGET}")

    mod.__getattr__ = __getattr__
    return mod


def _real_flashinfer_installed() -> bool:
    existing = sys.modules.get("flashinfer")
    if existing is not None:
        return not getattr(existing, _MARK, False)
    try:
        return importlib.util.find_spec("flashinfer") is not None
    except (ImportError, ValueError):
        return False


def alias_flashinfer():
    """Make `import flashinfer.comm.mixed_comm` and `from flashinfer.comm import mixed_comm`
    give mixcomm.mixed_comm (MixedCommHandler, MixedCommOp, MixedCommMode, run_mixed_comm).
    Idempotent; returns the module."""
    from . import mixed_comm

    # Registered first, so that FlashInfer's own `from .mixed_comm import ...` gets it too.
    sys.modules[TARGET] = mixed_comm
    if _real_flashinfer_installed():
        import flashinfer.comm as comm  # FlashInfer's: everything else stays FlashInfer's
    else:
        top = sys.modules.get("flashinfer")
        if top is None:
            top = _placeholder("flashinfer", "Placeholder made by mixcomm.alias_flashinfer(): "
                               "FlashInfer is not installed; only flashinfer.comm.mixed_comm "
                               "exists (it is mixcomm.mixed_comm).")
            sys.modules["flashinfer"] = top
        comm = sys.modules.get("flashinfer.comm")
        if comm is None:
            comm = _placeholder("flashinfer.comm", "Placeholder made by "
                                "mixcomm.alias_flashinfer(): holds only mixed_comm.")
            sys.modules["flashinfer.comm"] = comm
        top.comm = comm
    comm.mixed_comm = mixed_comm
    return mixed_comm
