# SPDX-License-Identifier: Apache-2.0
"""How the ranks of a handler find each other.

- torch.distributed initialised (what FlashInfer's MixedCommHandler requires): a mixcomm_bootstrap_t whose allgather
  and barrier callbacks run collectives of torch.distributed on CPU tensors. The default process
  group may be NCCL-only (and NCCL refuses ranks that share a GPU), so unless it is plain gloo
  the callbacks use a gloo group made once per default group with new_group(backend="gloo").
- otherwise: the library's TCP rendezvous (mixcomm_bootstrap_tcp_create), configured from the
  environment: MIXCOMM_ADDR / MASTER_ADDR, MIXCOMM_PORT / MASTER_PORT, MIXCOMM_JOB_TOKEN,
  MIXCOMM_BOOTSTRAP_TIMEOUT_MS.

A callback never lets a Python exception cross into C: it records it and returns non-zero, the
library then fails with MIXCOMM_ERR_BOOTSTRAP, and the handler adds the recorded exception to
the message it raises.
"""
from __future__ import annotations

import ctypes
import datetime
import os
import threading

from . import _lib

_DEFAULT_TIMEOUT_MS = 60000  # the TCP bootstrap's default bound on every wait


def _timeout_ms() -> int:
    try:
        v = int(os.environ.get("MIXCOMM_BOOTSTRAP_TIMEOUT_MS", "0"))
    except ValueError:
        v = 0
    return v if v > 0 else _DEFAULT_TIMEOUT_MS


class CallbackBootstrap:
    """A mixcomm_bootstrap_t filled with Python callbacks.

    allgather_fn(data: bytes) -> sequence of `size` bytes objects of len(data) each (rank
    order); barrier_fn() -> None. Both raise on failure. The C struct, the ctypes callback
    objects and this object must outlive every handler created with it: the handler keeps a
    reference to this object.
    """

    def __init__(self, rank: int, size: int, allgather_fn, barrier_fn, description: str = ""):
        self.rank = rank
        self.size = size
        self.description = description or "Python callbacks"
        self._allgather_fn = allgather_fn
        self._barrier_fn = barrier_fn
        self.last_exception = None
        # The ctypes function objects must stay alive as long as C may call them.
        self._c_allgather = _lib.ALLGATHER_FN(self._allgather)
        self._c_barrier = _lib.BARRIER_FN(self._barrier)
        self.struct = _lib.Bootstrap()
        self.struct.ctx = None
        self.struct.allgather = self._c_allgather
        self.struct.barrier = self._c_barrier
        self.struct.destroy = _lib.DESTROY_FN()  # NULL: nothing to release on the C side
        self.struct.rank = rank
        self.struct.size = size

    @property
    def pointer(self):
        return ctypes.pointer(self.struct)

    def _record(self, exc: BaseException) -> int:
        self.last_exception = exc
        return _lib.ERR_BOOTSTRAP

    def _allgather(self, ctx, send, recv, nbytes):
        try:
            data = ctypes.string_at(send, nbytes) if nbytes else b""
            parts = self._allgather_fn(data)
            if len(parts) != self.size:
                raise RuntimeError(f"allgather returned {len(parts)} pieces for {self.size} "
                                   f"ranks")
            if nbytes:
                for r, part in enumerate(parts):
                    part = bytes(part)
                    if len(part) != nbytes:
                        raise RuntimeError(f"allgather: rank {r} contributed {len(part)} bytes "
                                           f"instead of {nbytes}")
                    ctypes.memmove(recv + r * nbytes, part, nbytes)
            return 0
        except BaseException as e:  # noqa: BLE001 - nothing may propagate into C
            return self._record(e)

    def _barrier(self, ctx):
        try:
            self._barrier_fn()
            return 0
        except BaseException as e:  # noqa: BLE001
            return self._record(e)

    def failure_note(self) -> str:
        e = self.last_exception
        if e is None:
            return ""
        return f"{self.description} failed: {type(e).__name__}: {e}"

    def clear(self) -> None:
        self.last_exception = None

    def destroy(self) -> None:
        """Nothing to release (the process group belongs to torch.distributed)."""


class TcpBootstrap:
    """The library's built-in TCP rendezvous (COLLECTIVE: every rank creates it)."""

    description = "the TCP rendezvous"

    def __init__(self, rank: int, size: int):
        self.rank = rank
        self.size = size
        lib = _lib.load()
        opts = _lib.TcpOptions()  # zeroed: every field comes from the environment
        out = ctypes.POINTER(_lib.Bootstrap)()
        _lib.check(lib.mixcomm_bootstrap_tcp_create(ctypes.byref(opts), rank, size,
                                                    ctypes.byref(out)),
                   "MixedCommHandler: TCP rendezvous (torch.distributed is not initialised)")
        self._ptr = out

    @property
    def pointer(self):
        return self._ptr

    def failure_note(self) -> str:
        return ""

    def clear(self) -> None:
        pass

    def destroy(self) -> None:
        if self._ptr:
            _lib.load().mixcomm_bootstrap_destroy(self._ptr)
            self._ptr = ctypes.POINTER(_lib.Bootstrap)()


# ------------------------------------------------------------------------------------------
# torch.distributed
# ------------------------------------------------------------------------------------------

_group_lock = threading.Lock()
_group_cache = {"world": None, "group": None}


def _gloo_group(dist):
    """A gloo group over the whole default group: the default group itself if its backend is
    gloo, else one made by new_group (COLLECTIVE, once per default group)."""
    try:
        backend = str(dist.get_backend()).lower()
    except Exception:  # noqa: BLE001
        backend = ""
    if backend == "gloo":
        return None  # the default group
    world = dist.group.WORLD
    with _group_lock:
        if _group_cache["world"] is world and _group_cache["group"] is not None:
            return _group_cache["group"]
        group = dist.new_group(backend="gloo",
                               timeout=datetime.timedelta(milliseconds=_timeout_ms()))
        _group_cache["world"] = world
        _group_cache["group"] = group
        return group


def torch_distributed_initialized() -> bool:
    try:
        import torch.distributed as dist
    except ImportError:
        return False
    try:
        return bool(dist.is_available() and dist.is_initialized())
    except Exception:  # noqa: BLE001
        return False


def torch_bootstrap() -> CallbackBootstrap:
    """A callback bootstrap over torch.distributed's default group (COLLECTIVE)."""
    import torch
    import torch.distributed as dist

    rank = dist.get_rank()
    size = dist.get_world_size()
    group = _gloo_group(dist)

    def allgather(data: bytes):
        n = len(data)
        if n == 0:
            dist.barrier(group=group)
            return [b""] * size
        send = torch.frombuffer(bytearray(data), dtype=torch.uint8)
        recv = [torch.empty(n, dtype=torch.uint8) for _ in range(size)]
        dist.all_gather(recv, send, group=group)
        return [ctypes.string_at(t.data_ptr(), n) for t in recv]

    def barrier():
        dist.barrier(group=group)

    what = "the default gloo group" if group is None else "a gloo group made for mixcomm"
    return CallbackBootstrap(rank, size, allgather, barrier,
                             description=f"torch.distributed ({what})")
