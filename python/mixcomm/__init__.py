# SPDX-License-Identifier: Apache-2.0
"""mixcomm: fused GPU collectives for mixed tensor-parallel / data-parallel groups.

A drop-in for flashinfer.comm.mixed_comm on torch tensors, over libmixcomm (ctypes, no
compiled extension):

    from mixcomm import MixedCommHandler, MixedCommOp, MixedCommMode, run_mixed_comm

The library is found through $MIXCOMM_LIBRARY, else the copy installed inside this package, else
the repository's build/libmixcomm.so (see mixcomm._lib). It is loaded on first use.
"""
from ._lib import (MixcommError, MixcommRuntimeError, MixcommValueError, find_library,
                   library_path, version_tuple)
from .mixed_comm import MixedCommHandler, MixedCommMode, MixedCommOp, run_mixed_comm

__version__ = "0.1.0"


def library_version() -> str:
    """Version of the loaded libmixcomm ("0.1.0")."""
    return "%d.%d.%d" % version_tuple()


__all__ = ["MixedCommHandler", "MixedCommMode", "MixedCommOp", "run_mixed_comm",
           "MixcommError", "MixcommValueError", "MixcommRuntimeError", "find_library",
           "library_path", "library_version", "__version__"]
