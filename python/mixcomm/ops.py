# SPDX-License-Identifier: Apache-2.0
"""mixcomm's PyTorch custom ops (torch.library), registered when mixcomm is imported with torch
importable. run_mixed_comm calls them; engines can call them directly:

    torch.ops.mixcomm.mixed_comm(Tensor x_in, int op, int comm_mode, int handler_id) -> Tensor
    torch.ops.mixcomm.mixed_comm_out(Tensor x_in, Tensor(a!) x_out, int op, int comm_mode,
                                     int handler_id) -> ()

op and comm_mode are the MixedCommOp / MixedCommMode values (-1: the library's choice; the
argument is not called "mode", a name torch.compile's functionalization reserves) and
handler_id is MixedCommHandler.handler_id: torch.compile cannot take a handler object as an op
argument, so the ops name it by an integer that mixcomm.handler_from_id maps back. The first op
returns a new tensor (out-of-place, the form to use under torch.compile's "reduce-overhead"
mode, which does not turn graphs that mutate their inputs into CUDA graphs); the second writes
x_out, declared as mutated.

Both run on torch's current CUDA stream: eagerly, from compiled code, and during CUDA graph
capture (torch.cuda.graph or torch.compile's CUDA graphs), where the kernel is captured and
runs on every replay. Their fake (meta) implementations give the exact output shape, dtype and
device (dp_size * rows for the gather ops, rows / dp_size for the scatter ops) and raise the
same ValueError as an eager call for bad arguments, so shape errors surface when the code is
traced. The handler must be live when the code is traced and whenever it runs.

Extending: the two schemas are fixed. A feature that keeps the single output (say a scaling
factor) can append keyword-only arguments with defaults ("..., int handler_id, *, Tensor?
extra=None) -> Tensor"), which leaves every existing caller and traced graph valid; a feature
with other outputs (a fused residual add + RMSNorm returning the new residual too) gets an op of
its own next to these, sharing check_call() and _launch().
"""
from __future__ import annotations

import torch

from . import _lib
from . import mixed_comm as _mc
from .mixed_comm import (GATHER_OP_CODES, MODE_NAMES, OP_NAMES, SCATTER_OP_CODES,
                         MixedCommHandler, MixedCommMode, MixedCommOp, handler_from_id,
                         output_rows)

NAMESPACE = "mixcomm"
SCHEMAS = {
    "mixed_comm": "(Tensor x_in, int op, int comm_mode, int handler_id) -> Tensor",
    "mixed_comm_out": ("(Tensor x_in, Tensor(a!) x_out, int op, int comm_mode, int handler_id)"
                       " -> ()"),
}
OP_QUALNAMES = tuple(f"{NAMESPACE}::{name}" for name in SCHEMAS)

_VEC_BYTES = 16  # the kernels move 16-byte vectors: a row must be a whole number of them
_ELEMENT_BYTES = {torch.float16: 2, torch.bfloat16: 2, torch.float32: 4}
_NUM_OPS = len(MixedCommOp)
_NUM_MODES = len(MixedCommMode)
_OP_CODES = tuple(range(_NUM_OPS))
_MODE_CODES = tuple(range(_lib.MODE_DEFAULT, _NUM_MODES))  # -1 (the library's choice) first


def _reject(msg: str):
    """Raise the ValueError (MixcommValueError) of a bad call. Not traced by torch.compile: a
    bad call stops tracing here and raises this very exception from eager code (under
    fullgraph=True, tracing fails at this call instead, showing the line with the message)."""
    raise _lib.MixcommValueError(msg, _lib.ERR_INVALID_ARGUMENT, "MIXCOMM_ERR_INVALID_ARGUMENT")


_REJECT_REASON = ("a bad mixcomm call (its message is on the line shown below; run the code "
                  "without torch.compile to get the ValueError)")
try:
    _reject = torch.compiler.disable(_reject, reason=_REJECT_REASON)
except TypeError:  # a torch whose disable() takes no reason
    _reject = torch.compiler.disable(_reject)


# ------------------------------------------------------------------------------------------
# Checks shared by run_mixed_comm (when traced), the real and the fake implementations.
# Written with what torch.compile traces without a graph break: ints, tuples, tensor metadata.
# ------------------------------------------------------------------------------------------


def check_call(info, op: int, mode: int, x_in, x_out=None) -> tuple:
    """The output shape of op on x_in for the handler described by info (a CallInfo), after
    checking everything an eager call checks before enqueueing; ValueError otherwise. With
    x_out, also that x_out fits."""
    if op not in info.valid_ops:
        valid = ", ".join(OP_NAMES[o] for o in info.valid_ops)
        _reject(f"Invalid op: {OP_NAMES[op]} (valid for tp_size={info.tp_size}, "
                f"dp_size={info.dp_size}: {valid})")
    if mode != _lib.MODE_DEFAULT and mode not in info.valid_modes:
        reason = dict(info.mode_reasons).get(mode, "")
        _reject(f"Invalid mode: {MODE_NAMES[mode]}" + (f" ({reason})" if reason else ""))
    if not isinstance(x_in, torch.Tensor):
        _reject(f"x_in should be a torch.Tensor, got {type(x_in).__name__}")
    if x_in.ndim < 2:
        _reject("x_in.ndim should be at least 2")
    if x_in.dtype != info.dtype:
        _reject(f"x_in.dtype should be {info.dtype}")
    if x_in.device != info.device:
        _reject(f"x_in.device should be {info.device}")
    if not x_in.is_contiguous():
        _reject("x_in should be contiguous")
    rows = x_in.shape[0]
    rest = tuple(x_in.shape[1:])
    row_elems = 1
    for d in rest:
        row_elems = row_elems * d
    if row_elems < 1:
        _reject(f"x_in.shape={tuple(x_in.shape)}: a row must hold at least one element")
    esize = _ELEMENT_BYTES[x_in.dtype]
    if (row_elems * esize) % _VEC_BYTES != 0:
        _reject(f"x_in rows of {row_elems} {info.dtype} elements are {row_elems * esize} "
                f"bytes, not a multiple of the 16-byte vector: pad rows to a multiple of "
                f"{_VEC_BYTES // esize} elements")
    dp = info.dp_size
    if op in SCATTER_OP_CODES and rows % dp != 0:
        _reject("x_in.shape[0] should be divisible by dp_size")
    out_rows = output_rows(op, rows, dp)
    if x_out is not None:
        if not isinstance(x_out, torch.Tensor):
            _reject(f"x_out should be a torch.Tensor, got {type(x_out).__name__}")
        if x_out.ndim != x_in.ndim:
            _reject("x_out.ndim should be equal to x_in.ndim")
        if x_out.dtype != x_in.dtype:
            _reject("x_out.dtype should be equal to x_in.dtype")
        if x_out.device != x_in.device:
            _reject("x_out.device should be equal to x_in.device")
        if tuple(x_out.shape[1:]) != rest:
            _reject("x_out.shape[1:] should be equal to x_in.shape[1:]")
        if x_out.shape[0] != out_rows:
            if op in SCATTER_OP_CODES:
                _reject("x_out.shape[0] * dp_size should be equal to x_in.shape[0]")
            if op in GATHER_OP_CODES:
                _reject("x_out.shape[0] should be equal to x_in.shape[0] * dp_size")
            _reject("x_out.shape[0] should be equal to x_in.shape[0]")
        if not x_out.is_contiguous():
            _reject("x_out should be contiguous")
    return (out_rows,) + rest


def _as_constant(value: int, codes: tuple) -> int:
    """value, as the equal element of codes. A compiled function that takes the op or mode as
    an int argument gets it as a symbolic int after a recompile; comparing against each code
    makes torch.compile specialize on (and guard) the value, so that the ops get a constant."""
    for c in codes:
        if value == c:
            return c
    return value


def _op_code(op) -> int:
    if isinstance(op, MixedCommOp):
        return op.value
    if type(op) is int and 0 <= op < _NUM_OPS:
        return _as_constant(op, _OP_CODES)
    try:
        return MixedCommOp(int(op.__index__())).value
    except (AttributeError, TypeError, ValueError):
        pass
    _reject(f"Invalid op: {op!r} (expected a MixedCommOp)")


def _mode_code(mode) -> int:
    if mode is None:
        return _lib.MODE_DEFAULT
    if isinstance(mode, MixedCommMode):
        return mode.value
    if type(mode) is int and -1 <= mode < _NUM_MODES:
        return _as_constant(mode, _MODE_CODES)
    try:
        return MixedCommMode(int(mode.__index__())).value
    except (AttributeError, TypeError, ValueError):
        pass
    _reject(f"Invalid mode: {mode!r} (expected a MixedCommMode or None)")


def _constant_info(handler_id):
    """The handler's CallInfo with constant fields, while torch.compile traces. Read through
    an argument (a compiled function that takes the handler as a parameter and has seen two
    handlers), the handler's ints are symbolic; matching its id against the live handlers' ids
    (module globals: constants to torch.compile) makes it guard on the id and read the
    CallInfo from the globals. (Only the plain int _handler_id is read from the handler: its
    CallInfo object, once read through the argument, would stay symbolic.)"""
    for hid in _mc.live_handler_ids:
        if handler_id == hid:
            return _mc.live_call_infos[hid]
    _not_live(handler_id)


@torch.compiler.disable
def _not_live(handler_id):
    handler_from_id(handler_id)  # raises: the handler is shut down


def run(op, handler, x_in, x_out=None, mode=None):
    """run_mixed_comm's body (see there). Traceable by torch.compile without a graph break."""
    op_code = _op_code(op)
    if not isinstance(handler, MixedCommHandler):
        _reject(f"handler should be a MixedCommHandler, got {type(handler).__name__}")
    mode_code = _mode_code(mode)
    if not isinstance(x_in, torch.Tensor):
        _reject(f"x_in should be a torch.Tensor, got {type(x_in).__name__}")
    if x_out is not None and not isinstance(x_out, torch.Tensor):
        _reject(f"x_out should be a torch.Tensor, got {type(x_out).__name__}")
    if torch.compiler.is_compiling():
        info = _constant_info(handler._handler_id)
        # Checked in the traced code: a bad call then raises ValueError from here (outside
        # fullgraph=True, where tracing stops at the raise) instead of a tracing error
        # wrapping the fake implementation's ValueError. Eagerly the op checks.
        check_call(info, op_code, mode_code, x_in, x_out)
    else:
        info = handler._call_info
    if x_out is None:
        return torch.ops.mixcomm.mixed_comm.default(x_in, op_code, mode_code, info.handler_id)
    torch.ops.mixcomm.mixed_comm_out.default(x_in, x_out, op_code, mode_code, info.handler_id)
    return x_out


# ------------------------------------------------------------------------------------------
# Implementations
# ------------------------------------------------------------------------------------------

_raw_stream = getattr(torch._C, "_cuda_getCurrentRawStream", None)


def current_stream_handle(device: torch.device) -> int:
    """torch's current stream on device as a cudaStream_t value (0 for a CPU device)."""
    if device.type != "cuda":
        return 0
    if _raw_stream is not None:
        return int(_raw_stream(device.index))
    return int(torch.cuda.current_stream(device).cuda_stream)


def _launch(handler, op: int, mode: int, x_in: torch.Tensor, x_out: torch.Tensor) -> None:
    rows = x_in.shape[0]
    row_elems = 1
    for d in x_in.shape[1:]:
        row_elems *= d
    handler._enqueue(op, mode, x_in.data_ptr(), x_out.data_ptr(), rows, row_elems,
                     current_stream_handle(x_in.device))


def _mixed_comm_impl(x_in, op, comm_mode, handler_id):
    handler = handler_from_id(handler_id)
    shape = check_call(handler._call_info, op, comm_mode, x_in)
    x_out = torch.empty(shape, dtype=x_in.dtype, device=x_in.device)
    _launch(handler, op, comm_mode, x_in, x_out)
    return x_out


def _mixed_comm_out_impl(x_in, x_out, op, comm_mode, handler_id):
    handler = handler_from_id(handler_id)
    check_call(handler._call_info, op, comm_mode, x_in, x_out)
    _launch(handler, op, comm_mode, x_in, x_out)


def _mixed_comm_fake(x_in, op, comm_mode, handler_id):
    shape = check_call(handler_from_id(handler_id)._call_info, op, comm_mode, x_in)
    return x_in.new_empty(shape)


def _mixed_comm_out_fake(x_in, x_out, op, comm_mode, handler_id):
    check_call(handler_from_id(handler_id)._call_info, op, comm_mode, x_in, x_out)


def _already_registered() -> bool:
    try:
        torch.ops.mixcomm.mixed_comm.default  # noqa: B018
        return True
    except (AttributeError, RuntimeError):
        return False


def _register() -> torch.library.Library:
    if _already_registered():
        raise ImportError("torch.ops.mixcomm is already registered in this process (mixcomm.ops "
                          "was imported twice, e.g. reloaded, or by two copies of the package): "
                          "import mixcomm once per process")
    lib = torch.library.Library(NAMESPACE, "DEF")
    # The kernels need contiguous inputs: tell Inductor so that it never hands the op a tensor
    # with another layout (it copies instead).
    tag = (getattr(torch.Tag, "needs_contiguous_strides", None) or
           getattr(torch.Tag, "needs_fixed_stride_order", None))
    tags = (tag,) if tag is not None else ()
    impls = {"mixed_comm": (_mixed_comm_impl, _mixed_comm_fake),
             "mixed_comm_out": (_mixed_comm_out_impl, _mixed_comm_out_fake)}
    for name, schema in SCHEMAS.items():
        lib.define(name + schema, tags=tags)
        real, fake = impls[name]
        # CUDA is what the library runs on; the CPU registration lets a library stand-in that
        # works on host memory exercise the same path in tests (a CPU tensor never reaches the
        # real library: a handler's device is a GPU, and check_call compares devices).
        lib.impl(name, real, "CUDA")
        lib.impl(name, real, "CPU")
        torch.library.register_fake(f"{NAMESPACE}::{name}", fake, lib=lib)
    return lib


_library = _register()  # kept alive: dropping the Library object would unregister the ops

mixed_comm = torch.ops.mixcomm.mixed_comm
mixed_comm_out = torch.ops.mixcomm.mixed_comm_out

__all__ = ["SCHEMAS", "OP_QUALNAMES", "check_call", "current_stream_handle", "mixed_comm",
           "mixed_comm_out", "run"]
