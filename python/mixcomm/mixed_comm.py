# SPDX-License-Identifier: Apache-2.0
"""A drop-in for flashinfer.comm.mixed_comm on torch tensors: MixedCommHandler (FlashInfer's
constructor and methods), the enums MixedCommOp and MixedCommMode (FlashInfer's names and
values) and run_mixed_comm, all running libmixcomm through ctypes.

    handler = MixedCommHandler(rank, world, local_rank, local_size, node, nodes,
                               4, None, None, None, torch.bfloat16, torch.device("cuda", 0))
    y = run_mixed_comm(MixedCommOp.ALLREDUCE_ALLGATHER, handler, x)   # on the current stream
    handler.shutdown()                                                  # COLLECTIVE

Every rank must create its handler, call run_mixed_comm and shut down in the same order with
the same shapes (the calls are collective). Errors are exceptions: ValueError for bad
arguments, RuntimeError for failures, both carrying the library's message.

run_mixed_comm goes through the torch.library custom ops torch.ops.mixcomm.mixed_comm and
torch.ops.mixcomm.mixed_comm_out (mixcomm.ops), which refer to the handler by its integer
handler_id: the same code runs eagerly, under torch.compile and inside CUDA graphs.
"""
from __future__ import annotations

import ctypes
import enum
import importlib
import itertools
import math
import operator
import threading
import warnings
import weakref
from typing import TYPE_CHECKING, List, NamedTuple, Optional, Tuple

from . import _bootstrap, _lib

if TYPE_CHECKING:  # annotations only: importing mixcomm does not import torch
    import torch

__all__ = ["MixedCommOp", "MixedCommMode", "MixedCommHandler", "run_mixed_comm"]


class MixedCommOp(enum.IntEnum):
    """Operations (values of mixcomm_op_t, FlashInfer's)."""

    ALLREDUCE = 0
    ALLGATHER = 1
    REDUCESCATTER = 2
    ALLREDUCE_ALLGATHER = 3
    REDUCESCATTER_ALLREDUCE = 4


class MixedCommMode(enum.IntEnum):
    """Execution modes (values of mixcomm_mode_t, FlashInfer's). mode=None in run_mixed_comm is
    MIXCOMM_MODE_DEFAULT: AUTOTUNE if autotune is on, else the library's pick."""

    FUSED_OPT_WAITS_MC = 0
    FUSED_OPT_WAITS_UC = 1
    FUSED_OPT_BYTES1_MC = 2
    FUSED_OPT_BYTES1_UC = 3
    FUSED_OPT_BYTES2_MC = 4
    FUSED_OPT_BYTES2_UC = 5
    NCCL_ONE = 6
    NCCL_TP_DP = 7
    AUTOTUNE = 8


_GATHER_OPS = (MixedCommOp.ALLGATHER, MixedCommOp.ALLREDUCE_ALLGATHER)
_SCATTER_OPS = (MixedCommOp.REDUCESCATTER, MixedCommOp.REDUCESCATTER_ALLREDUCE)
# The same as plain ints: what the custom ops take (and what torch.compile sees as constants).
GATHER_OP_CODES = tuple(int(o) for o in _GATHER_OPS)
SCATTER_OP_CODES = tuple(int(o) for o in _SCATTER_OPS)
OP_NAMES = tuple(o.name for o in MixedCommOp)      # indexed by op code
MODE_NAMES = tuple(m.name for m in MixedCommMode)  # indexed by mode code


class CallInfo(NamedTuple):
    """What a call needs to know about its handler, in plain values (ints, tuples, a torch
    dtype and device) so that torch.compile can read it without a graph break and the custom
    ops' fake implementations can compute output shapes. Fixed for the handler's lifetime."""

    handler_id: int
    tp_size: int
    dp_size: int
    dtype: object                  # torch.dtype (the dtype's name when torch is absent)
    device: object                 # torch.device (the CUDA ordinal when torch is absent)
    valid_ops: Tuple[int, ...]     # op codes, enum order
    valid_modes: Tuple[int, ...]   # mode codes, enum order
    mode_reasons: Tuple[Tuple[int, str], ...]  # (mode code, why it is invalid) for the others
    dp_rank: int = 0               # this rank's DP rank (its block of uneven rows)


# handler_id -> live handler. Weak: a handler dropped without shutdown() is not kept alive by
# the registry (its __del__ warns). Ids are never reused within a process, so an id baked into
# a compiled graph can never reach a different handler.
_registry_lock = threading.RLock()  # re-entrant: a finalizer (_forget) may run inside it
_registry: "weakref.WeakValueDictionary[int, MixedCommHandler]" = weakref.WeakValueDictionary()
_next_handler_id = itertools.count(1)
# The CallInfo of every live handler, as plain module globals: torch.compile reads globals as
# constants, whereas ints read from an argument's attributes may become symbolic (mixcomm.ops).
live_handler_ids: Tuple[int, ...] = ()
live_call_infos: dict = {}


def _publish(info: "CallInfo", live: bool) -> None:
    """Add (or remove) a handler's CallInfo to the globals above; callers hold _registry_lock.
    The globals are replaced, never changed in place, so that compiled code guarding on them
    sees the change."""
    global live_handler_ids, live_call_infos
    infos = dict(live_call_infos)
    if live:
        infos[info.handler_id] = info
    else:
        infos.pop(info.handler_id, None)
    live_call_infos = infos
    live_handler_ids = tuple(infos)


def _forget(handler_id: int) -> None:
    """The handler is shut down or garbage-collected: its id names nothing any more."""
    with _registry_lock:
        _registry.pop(handler_id, None)
        info = live_call_infos.get(handler_id)
        if info is not None:
            _publish(info, False)


def handler_from_id(handler_id: int) -> "MixedCommHandler":
    """The live handler with this handler_id (what the custom ops' handler_id argument names);
    RuntimeError if it was shut down or never existed in this process."""
    h = _registry.get(handler_id)
    if h is None:
        raise _lib.MixcommRuntimeError(
            f"MixedCommHandler with handler_id={handler_id} is not live in this process (shut "
            f"down, garbage-collected, or never created): create the handler before running or "
            f"compiling code that uses it, and shut it down only after its last call and after "
            f"destroying any CUDA graph that contains its calls",
            _lib.ERR_INVALID_USAGE, "MIXCOMM_ERR_INVALID_USAGE")
    return h

_DTYPE_NAMES = {_lib.FLOAT16: "float16", _lib.BFLOAT16: "bfloat16", _lib.FLOAT32: "float32"}


def _value_error(msg: str) -> _lib.MixcommValueError:
    return _lib.MixcommValueError(msg, _lib.ERR_INVALID_ARGUMENT, "MIXCOMM_ERR_INVALID_ARGUMENT")


def _try_torch():
    try:
        import torch
        return torch
    except ImportError:
        return None


def _as_int(name: str, value, allow_none: bool = False) -> int:
    if value is None and allow_none:
        return 0
    try:
        return operator.index(value)
    except TypeError:
        kind = "an int or None" if allow_none else "an int"
        raise _value_error(f"{name} should be {kind}, got {value!r}") from None


def _dtype_code(dtype) -> int:
    """torch.float16 / torch.bfloat16 / torch.float32 (or their names) -> mixcomm_dtype_t."""
    torch = _try_torch()
    if torch is not None and isinstance(dtype, torch.dtype):
        table = {torch.float16: _lib.FLOAT16, torch.bfloat16: _lib.BFLOAT16,
                 torch.float32: _lib.FLOAT32}
        if dtype in table:
            return table[dtype]
    elif isinstance(dtype, str):
        name = dtype[len("torch."):] if dtype.startswith("torch.") else dtype
        try:
            return _lib.dtype_from_name(name)
        except _lib.MixcommValueError:
            pass
    raise _value_error(f"dtype should be torch.float16, torch.bfloat16 or torch.float32, "
                       f"got {dtype!r}")


def _torch_dtype(code: int):
    torch = _try_torch()
    if torch is None:
        return _DTYPE_NAMES[code]
    return {_lib.FLOAT16: torch.float16, _lib.BFLOAT16: torch.bfloat16,
            _lib.FLOAT32: torch.float32}[code]


def _device_index(device):
    """torch.device / "cuda:N" / N -> CUDA ordinal, or None for "cuda" without an index."""
    torch = _try_torch()
    if torch is not None and isinstance(device, torch.device):
        if device.type != "cuda":
            raise _value_error(f"device should be a CUDA device, got {device}")
        return device.index
    if isinstance(device, str):
        if torch is not None:
            try:
                return _device_index(torch.device(device))
            except RuntimeError:
                pass
        if device == "cuda":
            return None
        if device.startswith("cuda:") and device[5:].isdigit():
            return int(device[5:])
        raise _value_error(f"device should be a CUDA device, got {device!r}")
    if device is None or isinstance(device, bool):
        raise _value_error(f"device should be a torch.device or a CUDA ordinal, got {device!r}")
    try:
        idx = operator.index(device)
    except TypeError:
        raise _value_error(f"device should be a torch.device or a CUDA ordinal, "
                           f"got {device!r}") from None
    if idx < 0:
        raise _value_error(f"device should be a CUDA ordinal >= 0, got {idx}")
    return idx


def _as_op(op) -> MixedCommOp:
    if isinstance(op, MixedCommOp):
        return op
    try:
        return MixedCommOp(operator.index(op))
    except (TypeError, ValueError):
        raise _value_error(f"Invalid op: {op!r} (expected a MixedCommOp)") from None


def _as_mode(mode) -> MixedCommMode:
    if isinstance(mode, MixedCommMode):
        return mode
    try:
        return MixedCommMode(operator.index(mode))
    except (TypeError, ValueError):
        raise _value_error(f"Invalid mode: {mode!r} (expected a MixedCommMode or None)") from None


class MixedCommHandler:
    """Fused all-reduce + all-gather and reduce-scatter + all-reduce for mixed TP/DP groups.

    The constructor is COLLECTIVE: it checks the arguments (ValueError, before any GPU work),
    finds the other ranks (through torch.distributed when it is initialised, as FlashInfer's
    handler requires, else through mixcomm's TCP rendezvous at MIXCOMM_ADDR/MASTER_ADDR and
    MIXCOMM_PORT/MASTER_PORT), and then creates the handler: virtual memory, NVSHMEM when there
    are several nodes, NCCL where it can run, and autotune if use_autotune (results cached on
    disk, see MIXCOMM_CACHE_DIR). float16, bfloat16 and float32 are supported.

    Call shutdown() (COLLECTIVE) on every rank when done: the handler is not released by
    garbage collection, since that would need the other ranks at an unknown moment.
    """

    def __init__(self, world_rank: int, world_size: int, local_rank: int, local_size: int,
                 inter_rank: int, inter_size: int, local_tp_size: int | None,
                 local_dp_size: int | None, inter_tp_size: int | None,
                 inter_dp_size: int | None, dtype: torch.dtype, device: torch.device,
                 grid_size: int | None = None, max_block_size: int | None = None,
                 min_block_size: int = 256, min_num_steps: int = 4,
                 ib_enable_ibgda: bool = True, should_init_nvshmem: bool = True,
                 use_autotune: bool = True):
        self._h = None
        self._bs = None
        lib = _lib.load()

        # 1. Arguments, checked before anything touches a GPU or another rank.
        ints = {}
        for name, value, allow_none in (
                ("world_rank", world_rank, False), ("world_size", world_size, False),
                ("local_rank", local_rank, False), ("local_size", local_size, False),
                ("inter_rank", inter_rank, False), ("inter_size", inter_size, False),
                ("local_tp_size", local_tp_size, True), ("local_dp_size", local_dp_size, True),
                ("inter_tp_size", inter_tp_size, True), ("inter_dp_size", inter_dp_size, True),
                ("grid_size", grid_size, True), ("max_block_size", max_block_size, True),
                ("min_block_size", min_block_size, False),
                ("min_num_steps", min_num_steps, False)):
            ints[name] = _as_int(name, value, allow_none)
        dtype_code = _dtype_code(dtype)
        topo = _lib.resolve_topology(
            ints["world_rank"], ints["world_size"], ints["local_rank"], ints["local_size"],
            ints["inter_rank"], ints["inter_size"], ints["local_tp_size"],
            ints["local_dp_size"], ints["inter_tp_size"], ints["inter_dp_size"],
            what="MixedCommHandler")
        if ints["grid_size"] < 0:
            raise _value_error(f"grid_size={grid_size}: must be >= 1, or None for the number "
                               f"of SMs")
        if ints["min_num_steps"] < 1:
            raise _value_error(f"min_num_steps={min_num_steps}: must be >= 1")
        dev = _device_index(device)

        cfg = _lib.init_config()
        for name in ("world_rank", "world_size", "local_rank", "local_size", "inter_rank",
                     "inter_size", "local_tp_size", "local_dp_size", "inter_tp_size",
                     "inter_dp_size", "grid_size", "max_block_size", "min_block_size",
                     "min_num_steps"):
            setattr(cfg, name, ints[name])
        cfg.dtype = dtype_code
        cfg.device = -1 if dev is None else dev
        cfg.ib_enable_ibgda = 1 if ib_enable_ibgda else 0
        cfg.should_init_nvshmem = 1 if should_init_nvshmem else 0
        cfg.use_autotune = 1 if use_autotune else 0
        # Block sizes and grid: the library's own checks, on a plan that needs no GPU (one CTA
        # stands in for the SM count when grid_size is None).
        plan = _lib.WorkspacePlan()
        _lib.check(lib.mixcomm_workspace_plan(ctypes.byref(cfg), max(ints["grid_size"], 1),
                                              ctypes.byref(plan)), "MixedCommHandler")

        # 2. The device: "cuda" without an index means torch's current device.
        torch = _try_torch()
        if dev is None and torch is not None:
            try:
                dev = torch.cuda.current_device()
            except Exception as e:  # noqa: BLE001 - torch without CUDA, no GPU...
                raise _lib.MixcommRuntimeError(
                    f"MixedCommHandler: cannot find the current CUDA device: {e}",
                    _lib.ERR_CUDA, "MIXCOMM_ERR_CUDA") from e
            cfg.device = dev

        # 3. The other ranks.
        if _bootstrap.torch_distributed_initialized():
            import torch.distributed as dist
            if dist.get_world_size() != topo.world_size:
                raise _value_error(f"world_size={topo.world_size} but torch.distributed's "
                                   f"world size is {dist.get_world_size()}")
            if dist.get_rank() != topo.world_rank:
                raise _value_error(f"world_rank={topo.world_rank} but torch.distributed's "
                                   f"rank is {dist.get_rank()}: the world rank must be the "
                                   f"process group's rank")
            bs = _bootstrap.torch_bootstrap()
        else:
            bs = _bootstrap.TcpBootstrap(topo.world_rank, topo.world_size)

        # 4. The handler (COLLECTIVE).
        h = ctypes.c_void_p()
        bs.clear()
        st = lib.mixcomm_handler_create(ctypes.byref(cfg), bs.pointer, ctypes.byref(h))
        if st != _lib.SUCCESS:
            err = _lib.make_error(st, "MixedCommHandler", bs.failure_note())
            bs.destroy()
            raise err
        self._h = h
        self._bs = bs  # the C handler points at it: keep it alive until shutdown
        self._cfg = cfg
        self._dtype_code = dtype_code
        self._topo = _lib.Topology.from_buffer_copy(lib.mixcomm_handler_topology(h).contents)
        self._caps = _lib.Caps.from_buffer_copy(lib.mixcomm_handler_caps(h).contents)
        self._plan = _lib.WorkspacePlan.from_buffer_copy(lib.mixcomm_handler_plan(h).contents)
        self._device_index = dev
        self.dtype = _torch_dtype(dtype_code)
        self.device = torch.device("cuda", dev) if torch is not None and dev is not None else dev
        self.use_autotune = bool(use_autotune)
        self._valid_ops = frozenset(self.get_valid_op_list())
        self._valid_modes = frozenset(self.get_valid_mode_list())
        reasons = []
        for m in MixedCommMode:
            if m not in self._valid_modes:
                reasons.append((int(m), self.mode_invalid_reason(m) or ""))
        with _registry_lock:
            handler_id = next(_next_handler_id)
            self._call_info = CallInfo(
                handler_id=handler_id, tp_size=self._topo.tp_size, dp_size=self._topo.dp_size,
                dtype=self.dtype, device=self.device,
                valid_ops=tuple(sorted(int(o) for o in self._valid_ops)),
                valid_modes=tuple(sorted(int(m) for m in self._valid_modes)),
                mode_reasons=tuple(reasons), dp_rank=self._topo.dp_rank)
            self._handler_id = handler_id  # a plain int, for mixcomm.ops under torch.compile
            _registry[handler_id] = self
            _publish(self._call_info, True)
            weakref.finalize(self, _forget, handler_id)

    # -------------------------------------------------------------------------------------
    # Topology (resolved: the four tp/dp sizes are filled in)
    # -------------------------------------------------------------------------------------

    def _topo_field(name):  # noqa: N805 - a property factory used in the class body
        return property(lambda self: getattr(self._topo, name),
                        doc=f"{name} of the resolved topology")

    world_rank = _topo_field("world_rank")
    world_size = _topo_field("world_size")
    local_rank = _topo_field("local_rank")
    local_size = _topo_field("local_size")
    inter_rank = _topo_field("inter_rank")
    inter_size = _topo_field("inter_size")
    local_tp_size = _topo_field("local_tp_size")
    local_dp_size = _topo_field("local_dp_size")
    inter_tp_size = _topo_field("inter_tp_size")
    inter_dp_size = _topo_field("inter_dp_size")
    local_tp_rank = _topo_field("local_tp_rank")
    local_dp_rank = _topo_field("local_dp_rank")
    inter_tp_rank = _topo_field("inter_tp_rank")
    inter_dp_rank = _topo_field("inter_dp_rank")
    tp_rank = _topo_field("tp_rank")
    tp_size = _topo_field("tp_size")
    dp_rank = _topo_field("dp_rank")
    dp_size = _topo_field("dp_size")
    del _topo_field

    @property
    def topology(self) -> dict:
        """Every field of the resolved topology (mixcomm_topology_t)."""
        return self._topo.as_dict()

    @property
    def grid_size(self) -> int:
        """CTAs per GPU in use (the SM count when None was given)."""
        return self._plan.grid_size

    @property
    def workspace_bytes(self) -> int:
        """Node workspace per GPU (virtual memory), before granularity rounding."""
        return int(self._plan.vmm_bytes)

    @property
    def is_shut_down(self) -> bool:
        return self._h is None

    @property
    def handler_id(self) -> int:
        """This handler's integer id in the process (never reused): the handler_id argument of
        torch.ops.mixcomm.mixed_comm / mixed_comm_out. mixcomm.handler_from_id maps it back."""
        return self._call_info.handler_id

    # -------------------------------------------------------------------------------------
    # Internals
    # -------------------------------------------------------------------------------------

    def _live(self) -> ctypes.c_void_p:
        h = getattr(self, "_h", None)
        if h is None:
            raise _lib.MixcommRuntimeError("MixedCommHandler: used after shutdown()",
                                           _lib.ERR_INVALID_USAGE, "MIXCOMM_ERR_INVALID_USAGE")
        return h

    def _enqueue(self, op: int, mode: int, in_ptr: int, out_ptr: int, rows: int,
                 row_elems: int, stream: int) -> None:
        """mixcomm_run on raw pointers (the custom ops' real implementation ends here)."""
        self._call(f"run_mixed_comm({OP_NAMES[op]})", _lib.load().mixcomm_run, self._live(), op,
                   in_ptr, out_ptr, rows, row_elems, mode, stream)

    def _enqueue_epilogue(self, op: int, mode: int, in_ptr: int, out_ptr: int, rows: int,
                          row_elems: int, epilogue, stream: int) -> None:
        """mixcomm_run_epilogue on raw pointers (epilogue: an _lib.Epilogue)."""
        self._call(f"run_mixed_comm({OP_NAMES[op]}, with an epilogue)",
                   _lib.load().mixcomm_run_epilogue, self._live(), op, in_ptr, out_ptr, rows,
                   row_elems, ctypes.byref(epilogue), mode, stream)

    def _enqueue_v(self, op: int, mode: int, in_ptr: int, out_ptr: int, dp_rows, row_elems: int,
                   stream: int) -> None:
        """mixcomm_run_v on raw pointers (dp_rows: a sequence of dp_size ints)."""
        h = self._live()
        arr = (ctypes.c_int64 * len(dp_rows))(*dp_rows)
        self._call(f"run_mixed_comm({OP_NAMES[op]}, dp_rows)", _lib.load().mixcomm_run_v, h, op,
                   in_ptr, out_ptr, arr, row_elems, None, mode, stream)

    def _enqueue_v_device(self, op: int, mode: int, in_ptr: int, out_ptr: int, rows_ptr: int,
                          max_rows: int, row_elems: int, stream: int) -> None:
        """mixcomm_run_v_device on raw pointers (rows_ptr: dp_size int32 on the GPU)."""
        self._call(f"run_mixed_comm({OP_NAMES[op]}, dp_rows on the device)",
                   _lib.load().mixcomm_run_v_device, self._live(), op, in_ptr, out_ptr, rows_ptr,
                   max_rows, row_elems, None, mode, stream)

    def _call(self, what: str, fn, *args) -> None:
        """Run a (possibly collective) library call; raise with the bootstrap's story."""
        bs = self._bs
        bs.clear()
        st = fn(*args)
        if st != _lib.SUCCESS:
            raise _lib.make_error(st, what, bs.failure_note())

    # -------------------------------------------------------------------------------------
    # FlashInfer MixedCommHandler's methods
    # -------------------------------------------------------------------------------------

    def get_valid_op_list(self) -> List[MixedCommOp]:
        """The operations valid for this topology, in enum order."""
        h = self._live()
        arr = (ctypes.c_int * _lib.NUM_OPS)()
        n = ctypes.c_int(0)
        self._call("get_valid_op_list", _lib.load().mixcomm_get_valid_op_list, h, arr,
                   _lib.NUM_OPS, ctypes.byref(n))
        return [MixedCommOp(arr[i]) for i in range(min(n.value, _lib.NUM_OPS))]

    def get_valid_mode_list(self) -> List[MixedCommMode]:
        """The modes valid for this topology and machine, in enum order (multicast modes are
        never valid; NCCL modes need one GPU per rank; AUTOTUNE needs use_autotune)."""
        h = self._live()
        arr = (ctypes.c_int * _lib.NUM_MODES)()
        n = ctypes.c_int(0)
        self._call("get_valid_mode_list", _lib.load().mixcomm_get_valid_mode_list, h, arr,
                   _lib.NUM_MODES, ctypes.byref(n))
        return [MixedCommMode(arr[i]) for i in range(min(n.value, _lib.NUM_MODES))]

    def mode_invalid_reason(self, mode) -> Optional[str]:
        """None if mode is valid for this handler, else the library's reason."""
        mode = _as_mode(mode)
        r = _lib.load().mixcomm_mode_invalid_reason(self._live(), int(mode))
        return None if r is None else r.decode("utf-8", "replace")

    def init_virtual_memory(self) -> None:
        """COLLECTIVE, idempotent (the constructor already did it)."""
        self._call("init_virtual_memory", _lib.load().mixcomm_init_virtual_memory, self._live())

    def init_nvshmem(self) -> None:
        """COLLECTIVE, idempotent (the constructor already did it where there are several
        nodes; a no-op on one node)."""
        self._call("init_nvshmem", _lib.load().mixcomm_init_nvshmem, self._live())

    def run_autotune(self) -> None:
        """COLLECTIVE: measure every valid mode per op and size and agree on the fastest."""
        self._call("run_autotune", _lib.load().mixcomm_run_autotune, self._live())

    def select_autotune_mode(self, op, x_in) -> MixedCommMode:
        """The mode that mode=None / AUTOTUNE would run for op on a tensor shaped like x_in
        (the cost model's pick if autotune has not run)."""
        op = _as_op(op)
        shape = tuple(x_in.shape)
        if len(shape) < 2:
            raise _value_error("x_in.ndim should be at least 2")
        mode = ctypes.c_int(-1)
        self._call("select_autotune_mode", _lib.load().mixcomm_select_autotune_mode,
                   self._live(), int(op), shape[0], math.prod(shape[1:]), ctypes.byref(mode))
        return MixedCommMode(mode.value)

    def shutdown(self) -> None:
        """COLLECTIVE: wait for the handler's work and release everything. Idempotent."""
        h = getattr(self, "_h", None)
        if h is None:
            return
        self._h = None
        info = getattr(self, "_call_info", None)
        if info is not None:
            _forget(info.handler_id)
        bs = self._bs
        bs.clear()
        st = _lib.load().mixcomm_handler_shutdown(h)
        err = None if st == _lib.SUCCESS else _lib.make_error(st, "shutdown", bs.failure_note())
        bs.destroy()
        self._bs = None
        if err is not None:
            raise err

    # -------------------------------------------------------------------------------------
    # Beyond FlashInfer's MixedCommHandler
    # -------------------------------------------------------------------------------------

    def checkpoint_prepare(self) -> None:
        """COLLECTIVE: release the workspaces' physical memory, keeping their addresses (CUDA
        graphs captured before stay valid after checkpoint_restore). No run in between."""
        self._call("checkpoint_prepare", _lib.load().mixcomm_checkpoint_prepare, self._live())

    def checkpoint_restore(self) -> None:
        """COLLECTIVE: map the workspaces' memory again after checkpoint_prepare."""
        self._call("checkpoint_restore", _lib.load().mixcomm_checkpoint_restore, self._live())

    def abort(self) -> None:
        """Thread-safe: make outstanding and future kernels of this handler stop waiting;
        later runs fail. shutdown() is still required."""
        self._call("abort", _lib.load().mixcomm_handler_abort, self._live())

    def async_error(self):
        """None, or (exception, peer world rank or -1) for an error the kernels recorded."""
        peer = ctypes.c_int(-1)
        st = _lib.load().mixcomm_handler_async_error(self._live(), ctypes.byref(peer))
        if st == _lib.SUCCESS:
            return None
        name = _lib.status_name(st)
        return (_lib.error_class(st)(f"{_lib.status_string(st)} [{name}]", st, name),
                peer.value)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.shutdown()
        return False

    def __repr__(self) -> str:
        if getattr(self, "_topo", None) is None:
            return "MixedCommHandler(<not created>)"
        t = self._topo
        state = "shut down" if self._h is None else "live"
        return (f"MixedCommHandler(world_rank={t.world_rank}, world_size={t.world_size}, "
                f"local {t.local_tp_size}x{t.local_dp_size}, inter {t.inter_tp_size}x"
                f"{t.inter_dp_size}, tp_rank={t.tp_rank}/{t.tp_size}, "
                f"dp_rank={t.dp_rank}/{t.dp_size}, dtype={self.dtype}, device={self.device}, "
                f"{state})")

    def __del__(self):
        # No collective work here: the other ranks are not waiting for a garbage collector.
        try:
            if getattr(self, "_h", None) is not None:
                warnings.warn("MixedCommHandler was not shut down: call shutdown() on every "
                              "rank; its GPU memory stays allocated until the process exits",
                              ResourceWarning, stacklevel=2)
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


def output_rows(op, rows, dp_size):
    """Output rows of op for `rows` input rows: dp_size * rows for the gather ops (ALLGATHER,
    ALLREDUCE_ALLGATHER), rows / dp_size for the scatter ops (REDUCESCATTER,
    REDUCESCATTER_ALLREDUCE), rows otherwise. op is a MixedCommOp or its int code."""
    if op in GATHER_OP_CODES:
        return rows * dp_size
    if op in SCATTER_OP_CODES:
        return rows // dp_size
    return rows


def run_mixed_comm(op, handler: MixedCommHandler, x_in, x_out=None, mode=None,
                   skip_check: bool = False, *, residual_in=None, residual_out=None,
                   rms_gamma=None, rms_eps: float = 1e-6, norm_out=None, quant_out=None,
                   scale_factor=None, dp_rows=None, max_rows=None):
    """Run op on x_in (a contiguous tensor of >= 2 dimensions, dim 0 = rows) into x_out and
    return x_out, allocated when not given. COLLECTIVE and enqueue-only: the work goes on
    torch's current CUDA stream. Works eagerly, under torch.compile (no graph break; the
    out-of-place form, x_out=None, is the one to use with mode="reduce-overhead") and inside
    CUDA graph capture, through the custom ops torch.ops.mixcomm.mixed_comm (x_out None) and
    torch.ops.mixcomm.mixed_comm_out (x_out given).

    Output shape: [dp_size * rows, ...] for ALLGATHER and ALLREDUCE_ALLGATHER,
    [rows / dp_size, ...] for REDUCESCATTER and REDUCESCATTER_ALLREDUCE, else x_in's shape.
    mode=None lets the library choose (AUTOTUNE if on). Bad arguments raise ValueError before
    anything is enqueued. skip_check is accepted for compatibility: the checks cost a few
    microseconds and always run (in the custom op, so that eager and compiled calls fail the
    same way; the library checks again).

    Fused epilogue (keyword-only; the same call does the layer work after the collective, see
    mixcomm.h mixcomm_epilogue_t): P = result + residual_in, then RMSNorm(P) with rms_gamma
    (row_elems weights) and rms_eps, then FP8 (float8_e4m3fn) of norm / scale_factor (a float32
    CUDA tensor of one element). For ALLREDUCE and the REDUCESCATTER ops every tensor has the
    output's shape; for the gather ops residual_in and residual_out have x_in's shape (block d
    of P gets DP group d's residual; residual_out is this rank's block) and norm_out /
    quant_out the output's. Outputs that are asked for but not given are allocated:
    residual_out when residual_in is given, norm_out when rms_gamma is, quant_out when
    scale_factor is; residual_out=residual_in updates the residual in place (the usual engine
    call). x_out is written only when given. Returns norm_out when rms_gamma is given, else
    residual_out, else x_out. Through the custom op torch.ops.mixcomm.mixed_comm_epilogue.

    Uneven rows per DP rank (keyword-only dp_rows; mixcomm.h mixcomm_run_v), for the gather and
    scatter ops, blocks packed in dp order:
    - dp_rows a list (or tuple) of dp_size ints, the same on every rank: x_in holds
      dp_rows[dp_rank] rows (gather ops) or sum(dp_rows) rows (scatter ops); the output has
      sum(dp_rows) rows (gather ops) or dp_rows[dp_rank] rows (scatter ops). An all-equal list
      is the plain call. Through torch.ops.mixcomm.mixed_comm_v / mixed_comm_v_out (the list is
      part of the traced graph: a new list under torch.compile means a new graph).
    - dp_rows an int32 CUDA tensor of dp_size counts (the CUDA graph form: the counts are read
      by the kernel, so a captured graph replays with whatever the tensor holds): the buffers
      have room for max_rows rows per DP rank (default: x_in.shape[0] for the gather ops,
      x_in.shape[0] / dp_size for the scatter ops): x_in of max_rows (gather) or
      dp_size * max_rows (scatter) rows, and the output [dp_size * max_rows, ...] (gather) or
      [max_rows, ...] (scatter), whatever the counts, so that shapes never depend on tensor
      values; only its first sum(dp_rows) (gather) or dp_rows[dp_rank] (scatter) rows are
      written. A count above max_rows makes the kernel write nothing and fail the handler
      (MIXCOMM_ERR_INVALID_ARGUMENT); the NCCL modes need the list form. Through
      torch.ops.mixcomm.mixed_comm_v_device / mixed_comm_v_device_out.
    The epilogue's keyword arguments do not combine with dp_rows from Python yet (the C API
    mixcomm_run_v takes an epilogue).
    """
    if _ops is None:
        raise ImportError(f"run_mixed_comm needs PyTorch (import torch failed: {_ops_error})")
    if dp_rows is not None or max_rows is not None:
        if not (residual_in is None and residual_out is None and rms_gamma is None
                and norm_out is None and quant_out is None and scale_factor is None):
            raise _value_error("dp_rows with the epilogue's arguments is not supported from "
                               "Python yet: make two calls, or use the C API mixcomm_run_v")
        return _ops.run_v(op, handler, x_in, x_out, mode, dp_rows, max_rows)
    if (residual_in is None and residual_out is None and rms_gamma is None and norm_out is None
            and quant_out is None and scale_factor is None):
        return _ops.run(op, handler, x_in, x_out, mode)
    return _ops.run_epilogue(op, handler, x_in, x_out, mode, residual_in, residual_out,
                             rms_gamma, rms_eps, norm_out, quant_out, scale_factor)


# The custom ops (mixcomm.ops) need torch. Imported last: ops.py uses the names above. A torch
# that is absent or fails to import leaves the rest of the binding usable; an error inside
# ops.py itself is a real error and propagates.
try:
    importlib.import_module("torch")
except Exception as _e:  # noqa: BLE001 - ImportError, or OSError from a broken CUDA install
    _ops = None
    _ops_error = f"{type(_e).__name__}: {_e}"
else:
    from . import ops as _ops
    _ops_error = None
