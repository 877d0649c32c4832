# SPDX-License-Identifier: Apache-2.0
"""ctypes view of libmixcomm: finding and loading the library, the structs of mixcomm.h mirrored
field by field, the signature (argtypes/restype) of every function the package calls, and the
mapping of a mixcomm_status_t to a Python exception carrying mixcomm_last_error().

Where the library is looked for, first found wins:
  1. $MIXCOMM_LIBRARY (a path to libmixcomm.so; an error if it does not exist),
  2. mixcomm/lib/libmixcomm.so inside this package (what `pip install` builds and ships, next to
     the NVSHMEM plugin libmixcomm_nvshmem.so),
  3. the repository's own build, build/libmixcomm.so, when the package is used from a checkout
     (PYTHONPATH=python),
  4. ctypes.util.find_library("mixcomm") (a libmixcomm.so.0 installed by `cmake --install`).
The library is loaded on first use, so `import mixcomm` works without it.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from ctypes import (CFUNCTYPE, POINTER, Structure, c_char, c_char_p, c_float, c_int, c_int64,
                    c_size_t, c_void_p)
from pathlib import Path

# ------------------------------------------------------------------------------------------
# Constants of mixcomm.h (the CPU tests check them against the header)
# ------------------------------------------------------------------------------------------

SUCCESS = 0
ERR_INVALID_ARGUMENT = 1
ERR_INVALID_USAGE = 2
ERR_UNSUPPORTED = 3
ERR_CUDA = 4
ERR_SYSTEM = 5
ERR_NCCL = 6
ERR_NVSHMEM = 7
ERR_BOOTSTRAP = 8
ERR_TIMEOUT = 9
ERR_MISMATCH = 10
ERR_ABORTED = 11
ERR_OUT_OF_MEMORY = 12
ERR_INTERNAL = 13
ERR_PEER_LOST = 14
NUM_STATUS = 15

MODE_DEFAULT = -1
NUM_OPS = 5
NUM_MODES = 9

FLOAT16 = 0
BFLOAT16 = 1
FLOAT32 = 2
NUM_DTYPES = 3

MAX_LOCAL_SIZE = 16

# ------------------------------------------------------------------------------------------
# Structs (same order, types and therefore layout as mixcomm.h)
# ------------------------------------------------------------------------------------------


class Topology(Structure):
    """mixcomm_topology_t"""

    _fields_ = [(name, c_int) for name in (
        "world_rank", "world_size", "local_rank", "local_size", "inter_rank", "inter_size",
        "local_tp_size", "local_dp_size", "inter_tp_size", "inter_dp_size",
        "local_tp_rank", "local_dp_rank", "inter_tp_rank", "inter_dp_rank",
        "tp_rank", "tp_size", "dp_rank", "dp_size")]

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name, _ in self._fields_}


class Caps(Structure):
    """mixcomm_caps_t"""

    _fields_ = [(name, c_int) for name in (
        "multicast", "nccl", "nvshmem", "autotune", "ranks_share_gpu")]


class WorkspacePlan(Structure):
    """mixcomm_workspace_plan_t"""

    _fields_ = [("grid_size", c_int), ("max_block_size", c_int), ("ring_slots", c_int),
                ("vmm_rows", c_int), ("nvshmem_rows", c_int),
                ("vmm_slot_bytes", c_size_t), ("vmm_bytes", c_size_t),
                ("nvshmem_slot_bytes", c_size_t), ("nvshmem_bytes", c_size_t),
                ("control_bytes", c_size_t)]


class Config(Structure):
    """mixcomm_config_t (fill with init_config(), never by hand: the library checks
    struct_size and version)."""

    _fields_ = ([("struct_size", c_size_t), ("version", c_int)] +
                [(name, c_int) for name in (
                    "world_rank", "world_size", "local_rank", "local_size", "inter_rank",
                    "inter_size", "local_tp_size", "local_dp_size", "inter_tp_size",
                    "inter_dp_size")] +
                [("dtype", c_int)] +  # mixcomm_dtype_t: a C enum, int-sized
                [(name, c_int) for name in (
                    "device", "grid_size", "max_block_size", "min_block_size", "min_num_steps",
                    "ib_enable_ibgda", "should_init_nvshmem", "use_autotune", "timeout_ms")] +
                [("autotune_cache_dir", c_char_p)])


ALLGATHER_FN = CFUNCTYPE(c_int, c_void_p, c_void_p, c_void_p, c_size_t)
BARRIER_FN = CFUNCTYPE(c_int, c_void_p)
DESTROY_FN = CFUNCTYPE(None, c_void_p)


class Bootstrap(Structure):
    """mixcomm_bootstrap_t"""

    _fields_ = [("ctx", c_void_p), ("allgather", ALLGATHER_FN), ("barrier", BARRIER_FN),
                ("destroy", DESTROY_FN), ("rank", c_int), ("size", c_int)]


class TcpOptions(Structure):
    """mixcomm_tcp_options_t"""

    _fields_ = [("addr", c_char * 256), ("port", c_int), ("token", c_char * 128),
                ("timeout_ms", c_int)]


class Epilogue(Structure):
    """mixcomm_epilogue_t (fill with init_epilogue(): the library checks struct_size)."""

    _fields_ = [("struct_size", c_size_t), ("residual_in", c_void_p),
                ("residual_out", c_void_p), ("rms_gamma", c_void_p), ("rms_eps", c_float),
                ("norm_out", c_void_p), ("quant_out", c_void_p), ("quant_scale", c_void_p)]


# ------------------------------------------------------------------------------------------
# Function signatures: every function of libmixcomm the package calls
# ------------------------------------------------------------------------------------------

_status = c_int   # mixcomm_status_t
_enum = c_int     # mixcomm_op_t, mixcomm_mode_t, mixcomm_dtype_t
_handle = c_void_p  # mixcomm_handler_t*

_SIGNATURES = {
    # name: (restype, argtypes)
    "mixcomm_status_string": (c_char_p, [_status]),
    "mixcomm_status_name": (c_char_p, [_status]),
    "mixcomm_last_error": (c_char_p, []),
    "mixcomm_version": (c_int, []),
    "mixcomm_op_name": (c_char_p, [_enum]),
    "mixcomm_mode_name": (c_char_p, [_enum]),
    "mixcomm_dtype_name": (c_char_p, [_enum]),
    "mixcomm_op_from_name": (_status, [c_char_p, POINTER(c_int)]),
    "mixcomm_mode_from_name": (_status, [c_char_p, POINTER(c_int)]),
    "mixcomm_dtype_from_name": (_status, [c_char_p, POINTER(c_int)]),
    "mixcomm_dtype_size": (c_size_t, [_enum]),
    "mixcomm_topology_resolve": (_status, [POINTER(Topology), POINTER(Topology)]),
    "mixcomm_topology_for_rank": (_status, [POINTER(Topology), c_int, POINTER(Topology)]),
    "mixcomm_topology_op_valid": (c_int, [POINTER(Topology), _enum]),
    "mixcomm_caps_default": (None, [POINTER(Caps)]),
    "mixcomm_topology_mode_valid": (c_int, [POINTER(Topology), POINTER(Caps), _enum,
                                            POINTER(c_char_p)]),
    "mixcomm_bootstrap_tcp_create": (_status, [POINTER(TcpOptions), c_int, c_int,
                                               POINTER(POINTER(Bootstrap))]),
    "mixcomm_bootstrap_destroy": (None, [POINTER(Bootstrap)]),
    "mixcomm_config_init": (None, [c_void_p]),  # a Config, or a raw buffer in the tests
    "mixcomm_workspace_plan": (_status, [POINTER(Config), c_int, POINTER(WorkspacePlan)]),
    "mixcomm_handler_create": (_status, [POINTER(Config), POINTER(Bootstrap),
                                         POINTER(_handle)]),
    "mixcomm_handler_shutdown": (_status, [_handle]),
    "mixcomm_handler_topology": (POINTER(Topology), [_handle]),
    "mixcomm_handler_caps": (POINTER(Caps), [_handle]),
    "mixcomm_handler_plan": (POINTER(WorkspacePlan), [_handle]),
    "mixcomm_get_valid_op_list": (_status, [_handle, POINTER(c_int), c_int, POINTER(c_int)]),
    "mixcomm_get_valid_mode_list": (_status, [_handle, POINTER(c_int), c_int, POINTER(c_int)]),
    "mixcomm_mode_invalid_reason": (c_char_p, [_handle, _enum]),
    "mixcomm_init_virtual_memory": (_status, [_handle]),
    "mixcomm_init_nvshmem": (_status, [_handle]),
    "mixcomm_run_autotune": (_status, [_handle]),
    "mixcomm_select_autotune_mode": (_status, [_handle, _enum, c_int64, c_int64,
                                               POINTER(c_int)]),
    "mixcomm_run": (_status, [_handle, _enum, c_void_p, c_void_p, c_int64, c_int64, _enum,
                              c_void_p]),
    "mixcomm_epilogue_init": (None, [POINTER(Epilogue)]),
    "mixcomm_run_epilogue": (_status, [_handle, _enum, c_void_p, c_void_p, c_int64, c_int64,
                                       POINTER(Epilogue), _enum, c_void_p]),
    "mixcomm_run_v": (_status, [_handle, _enum, c_void_p, c_void_p, POINTER(c_int64), c_int64,
                                POINTER(Epilogue), _enum, c_void_p]),
    "mixcomm_run_v_device": (_status, [_handle, _enum, c_void_p, c_void_p, c_void_p, c_int64,
                                       c_int64, POINTER(Epilogue), _enum, c_void_p]),
    "mixcomm_output_rows": (c_int64, [_handle, _enum, c_int64]),
    "mixcomm_handler_async_error": (_status, [_handle, POINTER(c_int)]),
    "mixcomm_handler_abort": (_status, [_handle]),
    "mixcomm_checkpoint_prepare": (_status, [_handle]),
    "mixcomm_checkpoint_restore": (_status, [_handle]),
}

# ------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------


class MixcommError(Exception):
    """Base of every error raised for a failed libmixcomm call. `status` is the
    mixcomm_status_t value and `status_name` its enum name ("MIXCOMM_ERR_TIMEOUT")."""

    def __init__(self, message: str, status: int = ERR_INTERNAL, status_name: str = ""):
        super().__init__(message)
        self.status = status
        self.status_name = status_name


class MixcommValueError(MixcommError, ValueError):
    """A bad argument (MIXCOMM_ERR_INVALID_ARGUMENT, or a check made in Python)."""


class MixcommRuntimeError(MixcommError, RuntimeError):
    """Any other failure: CUDA, bootstrap, timeout, mismatch, wrong state..."""


def error_class(status: int) -> type:
    return MixcommValueError if status == ERR_INVALID_ARGUMENT else MixcommRuntimeError


# ------------------------------------------------------------------------------------------
# Loading
# ------------------------------------------------------------------------------------------

_PACKAGE_DIR = Path(__file__).resolve().parent
_lock = threading.Lock()
_lib = None
_lib_path = None


def _candidates() -> list:
    """(description, path) pairs in search order (the env variable is handled apart)."""
    out = [("inside the package", _PACKAGE_DIR / "lib" / "libmixcomm.so")]
    repo = _PACKAGE_DIR.parent.parent  # python/mixcomm -> repository root
    if (repo / "include" / "mixcomm.h").is_file():
        out.append(("the repository's build", repo / "build" / "libmixcomm.so"))
    return out


def find_library() -> str:
    """The path of the libmixcomm.so that load() will use (see the module docstring)."""
    env = os.environ.get("MIXCOMM_LIBRARY", "").strip()
    if env:
        p = Path(env).expanduser()
        if not p.is_file():
            raise OSError(f"MIXCOMM_LIBRARY={env!r} is not a file: point it at libmixcomm.so "
                          f"(built by `cmake --build build`), or unset it")
        return str(p.resolve())
    tried = []
    for _, path in _candidates():
        if path.is_file():
            return str(path)
        tried.append(str(path))
    found = ctypes.util.find_library("mixcomm")
    if found:
        return found
    raise OSError("libmixcomm.so not found (tried " + ", ".join(tried) + " and the system "
                  "library path): build it with `cmake -S . -B build && cmake --build build` "
                  "and set MIXCOMM_LIBRARY=/path/to/build/libmixcomm.so, or install the "
                  "package with the library inside: `pip install .` from the repository")


def _declare(lib) -> None:
    for name, (restype, argtypes) in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes


def load():
    """The loaded library (ctypes.CDLL), loading it on first use."""
    global _lib, _lib_path
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is None:
            path = find_library()
            try:
                lib = ctypes.CDLL(path)
            except OSError as e:
                raise OSError(f"cannot load libmixcomm from {path}: {e}") from e
            try:
                _declare(lib)
            except AttributeError as e:
                raise OSError(f"{path} lacks a libmixcomm function ({e}): it is not a "
                              f"libmixcomm.so of this version") from e
            _lib_path = path
            _lib = lib
    return _lib


def library_path() -> str:
    load()
    return _lib_path


# ------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------


def _text(b) -> str:
    return b.decode("utf-8", "replace") if b is not None else ""


def last_error() -> str:
    return _text(load().mixcomm_last_error())


def status_name(status: int) -> str:
    return _text(load().mixcomm_status_name(status))


def status_string(status: int) -> str:
    return _text(load().mixcomm_status_string(status))


def make_error(status: int, what: str = "", extra: str = "") -> MixcommError:
    """The exception for a failed call: the library's last error of this thread (or the
    status's fixed text when there is none), prefixed with `what`."""
    msg = last_error() or status_string(status)
    name = status_name(status)
    text = f"{what}: {msg}" if what else msg
    text = f"{text} [{name}]"
    if extra:
        text = f"{text} ({extra})"
    return error_class(status)(text, status, name)


def check(status: int, what: str = "", extra: str = "") -> None:
    """Raise the exception for `status` unless it is MIXCOMM_SUCCESS."""
    if status != SUCCESS:
        raise make_error(status, what, extra)


def version() -> int:
    """MIXCOMM_VERSION_CODE of the loaded library (major * 10000 + minor * 100 + patch)."""
    return int(load().mixcomm_version())


def version_tuple() -> tuple:
    v = version()
    return (v // 10000, v // 100 % 100, v % 100)


def init_config() -> Config:
    cfg = Config()
    load().mixcomm_config_init(ctypes.byref(cfg))
    return cfg


def op_name(op: int):
    return _text(load().mixcomm_op_name(op)) or None


def mode_name(mode: int):
    return _text(load().mixcomm_mode_name(mode)) or None


def dtype_name(dtype: int):
    return _text(load().mixcomm_dtype_name(dtype)) or None


def dtype_from_name(name: str) -> int:
    out = c_int(-1)
    check(load().mixcomm_dtype_from_name(name.encode(), ctypes.byref(out)))
    return out.value


def resolve_topology(world_rank, world_size, local_rank, local_size, inter_rank, inter_size,
                     local_tp_size=0, local_dp_size=0, inter_tp_size=0,
                     inter_dp_size=0, what: str = "") -> Topology:
    """mixcomm_topology_resolve: every derived field, or MixcommValueError with the
    library's message naming the values."""
    t = Topology(world_rank=world_rank, world_size=world_size, local_rank=local_rank,
                 local_size=local_size, inter_rank=inter_rank, inter_size=inter_size,
                 local_tp_size=local_tp_size, local_dp_size=local_dp_size,
                 inter_tp_size=inter_tp_size, inter_dp_size=inter_dp_size)
    out = Topology()
    check(load().mixcomm_topology_resolve(ctypes.byref(t), ctypes.byref(out)), what)
    return out
