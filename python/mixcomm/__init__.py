# SPDX-License-Identifier: Apache-2.0
"""mixcomm: fused GPU collectives for mixed tensor-parallel / data-parallel groups.

A drop-in for flashinfer.comm.mixed_comm on torch tensors, over libmixcomm (ctypes, no
compiled extension):

    from mixcomm import MixedCommHandler, MixedCommOp, MixedCommMode, run_mixed_comm

The library is found through $MIXCOMM_LIBRARY, else the copy installed inside this package, else
the repository's build/libmixcomm.so (see mixcomm._lib). It is loaded on first use.

With torch importable, importing mixcomm registers the custom ops torch.ops.mixcomm.mixed_comm
and torch.ops.mixcomm.mixed_comm_out (mixcomm.ops) that run_mixed_comm goes through, so it also
works under torch.compile and in CUDA graphs. mixcomm imports without torch (run_mixed_comm
then raises ImportError).

Code written against FlashInfer: `mixcomm.alias_flashinfer()` makes
`from flashinfer.comm import mixed_comm` give mixcomm's module.
"""
from ._flashinfer_alias import alias_flashinfer
from ._lib import (MixcommError, MixcommRuntimeError, MixcommValueError, find_library,
                   library_path, version_tuple)
from .mixed_comm import (MixedCommHandler, MixedCommMode, MixedCommOp, handler_from_id,
                         run_mixed_comm)

__version__ = "0.1.0"


def library_version() -> str:
    """Version of the loaded libmixcomm ("0.1.0")."""
    return "%d.%d.%d" % version_tuple()


__all__ = ["MixedCommHandler", "MixedCommMode", "MixedCommOp", "run_mixed_comm",
           "handler_from_id", "alias_flashinfer", "MixcommError", "MixcommValueError",
           "MixcommRuntimeError", "find_library", "library_path", "library_version",
           "__version__"]
