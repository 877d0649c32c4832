# SPDX-License-Identifier: Apache-2.0
"""mixcomm's PyTorch custom ops (torch.library), registered when mixcomm is imported with torch
importable. run_mixed_comm calls them; engines can call them directly:

    torch.ops.mixcomm.mixed_comm(Tensor x_in, int op, int comm_mode, int handler_id) -> Tensor
    torch.ops.mixcomm.mixed_comm_out(Tensor x_in, Tensor(a!) x_out, int op, int comm_mode,
                                     int handler_id) -> ()
    torch.ops.mixcomm.mixed_comm_epilogue(Tensor x_in, Tensor(a!)? x_out, Tensor? residual_in,
        Tensor(b!)? residual_out, bool residual_in_place, Tensor? rms_gamma, float rms_eps,
        Tensor(c!)? norm_out, Tensor(d!)? quant_out, Tensor? scale_factor, int op,
        int comm_mode, int handler_id) -> ()

op and comm_mode are the MixedCommOp / MixedCommMode values (-1: the library's choice; the
argument is not called "mode", a name torch.compile's functionalization reserves) and
handler_id is MixedCommHandler.handler_id: torch.compile cannot take a handler object as an op
argument, so the ops name it by an integer that mixcomm.handler_from_id maps back. The first op
returns a new tensor (out-of-place, the form to use under torch.compile's "reduce-overhead"
mode, which does not turn graphs that mutate their inputs into CUDA graphs); the second writes
x_out, declared as mutated. The third is the collective with its fused epilogue (residual add,
RMSNorm, FP8; run_mixed_comm's keyword arguments): every output it writes is an argument
declared as mutated (run_mixed_comm allocates those not given); residual_in_place says that
residual_out also holds residual_in (the residual updated in place: one tensor, passed once,
since a mutated argument must not alias another).

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
    "mixed_comm_epilogue": ("(Tensor x_in, Tensor(a!)? x_out, Tensor? residual_in, "
                            "Tensor(b!)? residual_out, bool residual_in_place, "
                            "Tensor? rms_gamma, float rms_eps, Tensor(c!)? norm_out, "
                            "Tensor(d!)? quant_out, Tensor? scale_factor, int op, int comm_mode, "
                            "int handler_id) -> ()"),
    "mixed_comm_v": "(Tensor x_in, int[] dp_rows, int op, int comm_mode, int handler_id) -> Tensor",
    "mixed_comm_v_out": ("(Tensor x_in, Tensor(a!) x_out, int[] dp_rows, int op, int comm_mode, "
                         "int handler_id) -> ()"),
    "mixed_comm_v_device": ("(Tensor x_in, Tensor dp_rows, int max_rows, int op, int comm_mode, "
                            "int handler_id) -> Tensor"),
    "mixed_comm_v_device_out": ("(Tensor x_in, Tensor(a!) x_out, Tensor dp_rows, int max_rows, "
                                "int op, int comm_mode, int handler_id) -> ()"),
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


def _check_op_mode_x_in(info, op: int, mode: int, x_in) -> None:
    """The first checks of every call: op and mode valid for the handler, x_in a tensor of at
    least two dimensions (rows, then the row's shape)."""
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


def _check_x_in_layout(info, x_in) -> None:
    """x_in has the handler's dtype and device and is contiguous."""
    if x_in.dtype != info.dtype:
        _reject(f"x_in.dtype should be {info.dtype}")
    if x_in.device != info.device:
        _reject(f"x_in.device should be {info.device}")
    if not x_in.is_contiguous():
        _reject("x_in should be contiguous")


def _product(dims) -> int:
    """The product of dims, written as a loop that torch.compile traces on shape symbols."""
    n = 1
    for d in dims:
        n = n * d
    return n


def _reject_row_bytes(info, row_elems: int, esize: int) -> None:
    """Rows the kernels cannot take: not whole 16-byte vectors."""
    _reject(f"x_in rows of {row_elems} {info.dtype} elements are {row_elems * esize} "
            f"bytes, not a multiple of the 16-byte vector: pad rows to a multiple of "
            f"{_VEC_BYTES // esize} elements")


def check_call(info, op: int, mode: int, x_in, x_out=None) -> tuple:
    """The output shape of op on x_in for the handler described by info (a CallInfo), after
    checking everything an eager call checks before enqueueing; ValueError otherwise. With
    x_out, also that x_out fits."""
    _check_op_mode_x_in(info, op, mode, x_in)
    _check_x_in_layout(info, x_in)
    rows = x_in.shape[0]
    rest = tuple(x_in.shape[1:])
    row_elems = _product(rest)
    if row_elems < 1:
        _reject(f"x_in.shape={tuple(x_in.shape)}: a row must hold at least one element")
    esize = _ELEMENT_BYTES[x_in.dtype]
    if (row_elems * esize) % _VEC_BYTES != 0:
        _reject_row_bytes(info, row_elems, esize)
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


def check_call_v(info, op: int, mode: int, x_in, x_out=None, dp_rows=None, rows_dev=None,
                 max_rows: int = 0) -> tuple:
    """The output shape of an uneven call (dp_rows: a list of ints, or rows_dev: the int32
    device tensor with max_rows), after the checks of check_call; ValueError otherwise."""
    _check_op_mode_x_in(info, op, mode, x_in)
    if op not in GATHER_OP_CODES and op not in SCATTER_OP_CODES:
        _reject(f"dp_rows: {OP_NAMES[op]} has no DP group (uneven rows take ALLGATHER, "
                f"ALLREDUCE_ALLGATHER, REDUCESCATTER and REDUCESCATTER_ALLREDUCE)")
    dp = info.dp_size
    gather = op in GATHER_OP_CODES
    if rows_dev is None:
        if len(dp_rows) != dp:
            _reject(f"dp_rows has {len(dp_rows)} entries, should have dp_size={dp}")
        for k, r in enumerate(dp_rows):
            if r < 0:
                _reject(f"dp_rows[{k}]={r} should be >= 0")
        total = 0
        for r in dp_rows:
            total = total + r
        own = dp_rows[info.dp_rank]
        in_rows, out_rows = (own, total) if gather else (total, own)
    else:
        if not isinstance(rows_dev, torch.Tensor):
            _reject(f"dp_rows should be a list of ints or a torch.Tensor, got "
                    f"{type(rows_dev).__name__}")
        if rows_dev.dtype != torch.int32:
            _reject("dp_rows (a tensor) should be int32")
        if rows_dev.device != info.device:
            _reject(f"dp_rows (a tensor) should be on {info.device}")
        if tuple(rows_dev.shape) != (dp,):
            _reject(f"dp_rows (a tensor) should have shape ({dp},)")
        if not rows_dev.is_contiguous():
            _reject("dp_rows (a tensor) should be contiguous")
        if max_rows < 0:
            _reject(f"max_rows={max_rows} should be >= 0")
        in_rows, out_rows = (max_rows, dp * max_rows) if gather else (dp * max_rows, max_rows)
    if x_in.shape[0] != in_rows:
        what = "dp_rows[dp_rank]" if gather and rows_dev is None else \
            "sum(dp_rows)" if rows_dev is None else \
            "max_rows" if gather else "dp_size * max_rows"
        _reject(f"x_in.shape[0]={x_in.shape[0]} should be {what}={in_rows}")
    rest = tuple(x_in.shape[1:])
    _check_x_in_layout(info, x_in)
    row_elems = _product(rest)
    esize = _ELEMENT_BYTES[x_in.dtype]
    if row_elems < 1 or (row_elems * esize) % _VEC_BYTES != 0:
        _reject_row_bytes(info, row_elems, esize)
    shape = (out_rows,) + rest
    if x_out is not None:
        _check_tensor("x_out", x_out, shape, x_in.dtype, x_in.device)
    return shape


def _check_tensor(name: str, t, shape: tuple, dtype, device) -> None:
    if not isinstance(t, torch.Tensor):
        _reject(f"{name} should be a torch.Tensor, got {type(t).__name__}")
    if t.dtype != dtype:
        _reject(f"{name}.dtype should be {dtype}")
    if t.device != device:
        _reject(f"{name}.device should be {device}")
    if tuple(t.shape) != shape:
        _reject(f"{name}.shape should be {shape}")
    if not t.is_contiguous():
        _reject(f"{name} should be contiguous")


def check_epilogue(info, op: int, mode: int, x_in, x_out, residual_in, residual_out,
                   residual_in_place: bool, rms_gamma, rms_eps: float, norm_out, quant_out,
                   scale_factor) -> None:
    """Everything check_call checks, plus the epilogue's tensors (shapes, dtypes, devices,
    which ones need which); ValueError otherwise."""
    out_shape = check_call(info, op, mode, x_in, x_out)
    res_shape = tuple(x_in.shape) if op in GATHER_OP_CODES else out_shape
    dtype, device = x_in.dtype, x_in.device
    residual = residual_in is not None or residual_in_place
    if residual_in_place and (residual_in is not None or residual_out is None):
        _reject("residual_in_place needs residual_out (holding the residual) and no residual_in")
    if residual_in is not None:
        _check_tensor("residual_in", residual_in, res_shape, dtype, device)
    if residual_out is not None:
        _check_tensor("residual_out", residual_out, res_shape, dtype, device)
    if norm_out is not None:
        _check_tensor("norm_out", norm_out, out_shape, dtype, device)
    if quant_out is not None:
        _check_tensor("quant_out", quant_out, out_shape, torch.float8_e4m3fn, device)
    if (norm_out is not None or quant_out is not None) and rms_gamma is None:
        _reject("norm_out and quant_out need rms_gamma")
    if rms_gamma is not None:
        if norm_out is None and quant_out is None:
            _reject("rms_gamma is given but neither norm_out nor quant_out")
        _check_tensor("rms_gamma", rms_gamma, tuple(x_in.shape[1:]), dtype, device)
    if (quant_out is None) != (scale_factor is None):
        _reject("quant_out and scale_factor go together (the FP8 output and its scale)")
    if scale_factor is not None:
        _check_tensor("scale_factor", scale_factor, tuple(scale_factor.shape), torch.float32,
                      device)
        if scale_factor.numel() != 1:
            _reject("scale_factor should hold one float32 (a per-tensor scale)")
    if residual and residual_out is None and norm_out is None and quant_out is None:
        _reject("residual_in is given but no output uses it")
    if x_out is None and residual_out is None and norm_out is None and quant_out is None:
        _reject("no output: give x_out, residual_out, norm_out or quant_out")
    if not rms_eps >= 0.0 or rms_eps == float("inf"):
        _reject(f"rms_eps={rms_eps} should be finite and >= 0")


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


def _call_prologue(op, handler, x_in, mode) -> tuple:
    """The first checks of run, run_epilogue and run_v, in the order their errors come: op,
    handler, mode, x_in a tensor. Returns (op_code, mode_code)."""
    op_code = _op_code(op)
    if not isinstance(handler, MixedCommHandler):
        _reject(f"handler should be a MixedCommHandler, got {type(handler).__name__}")
    mode_code = _mode_code(mode)
    if not isinstance(x_in, torch.Tensor):
        _reject(f"x_in should be a torch.Tensor, got {type(x_in).__name__}")
    return op_code, mode_code


def _info_of(handler):
    """The handler's CallInfo: the constant one while torch.compile traces, else its own."""
    if torch.compiler.is_compiling():
        return _constant_info(handler._handler_id)
    return handler._call_info


def run(op, handler, x_in, x_out=None, mode=None):
    """run_mixed_comm's body (see there). Traceable by torch.compile without a graph break."""
    op_code, mode_code = _call_prologue(op, handler, x_in, mode)
    if x_out is not None and not isinstance(x_out, torch.Tensor):
        _reject(f"x_out should be a torch.Tensor, got {type(x_out).__name__}")
    info = _info_of(handler)
    if torch.compiler.is_compiling():
        # Checked in the traced code: a bad call then raises ValueError from here (outside
        # fullgraph=True, where tracing stops at the raise) instead of a tracing error
        # wrapping the fake implementation's ValueError. Eagerly the op checks.
        check_call(info, op_code, mode_code, x_in, x_out)
    if x_out is None:
        return torch.ops.mixcomm.mixed_comm.default(x_in, op_code, mode_code, info.handler_id)
    torch.ops.mixcomm.mixed_comm_out.default(x_in, x_out, op_code, mode_code, info.handler_id)
    return x_out


def run_epilogue(op, handler, x_in, x_out, mode, residual_in, residual_out, rms_gamma, rms_eps,
                 norm_out, quant_out, scale_factor):
    """run_mixed_comm's body with an epilogue (see there): allocates the outputs that are implied
    but not given, calls torch.ops.mixcomm.mixed_comm_epilogue, returns norm_out when rms_gamma
    is given, else residual_out, else x_out."""
    op_code, mode_code = _call_prologue(op, handler, x_in, mode)
    info = _info_of(handler)
    out_shape = check_call(info, op_code, mode_code, x_in, x_out)
    res_shape = tuple(x_in.shape) if op_code in GATHER_OP_CODES else out_shape
    in_place = residual_in is not None and residual_out is residual_in
    if residual_in is not None and residual_out is None:
        residual_out = torch.empty(res_shape, dtype=x_in.dtype, device=x_in.device)
    if rms_gamma is not None and norm_out is None:
        norm_out = torch.empty(out_shape, dtype=x_in.dtype, device=x_in.device)
    if scale_factor is not None and quant_out is None:
        quant_out = torch.empty(out_shape, dtype=torch.float8_e4m3fn, device=x_in.device)
    rms_eps = float(rms_eps)
    if torch.compiler.is_compiling():
        check_epilogue(info, op_code, mode_code, x_in, x_out, None if in_place else residual_in,
                       residual_out, in_place, rms_gamma, rms_eps, norm_out, quant_out,
                       scale_factor)
    torch.ops.mixcomm.mixed_comm_epilogue.default(
        x_in, x_out, None if in_place else residual_in, residual_out, in_place, rms_gamma,
        rms_eps, norm_out, quant_out, scale_factor, op_code, mode_code, info.handler_id)
    if rms_gamma is not None:
        return norm_out
    if residual_out is not None:
        return residual_out
    return x_out


def run_v(op, handler, x_in, x_out, mode, dp_rows, max_rows):
    """run_mixed_comm's body with dp_rows (see there)."""
    op_code, mode_code = _call_prologue(op, handler, x_in, mode)
    info = _info_of(handler)
    if isinstance(dp_rows, torch.Tensor):
        if max_rows is None:
            max_rows = x_in.shape[0] if op_code in GATHER_OP_CODES else \
                x_in.shape[0] // info.dp_size
        max_rows = int(max_rows)
        if torch.compiler.is_compiling():
            check_call_v(info, op_code, mode_code, x_in, x_out, None, dp_rows, max_rows)
        if x_out is None:
            return torch.ops.mixcomm.mixed_comm_v_device.default(
                x_in, dp_rows, max_rows, op_code, mode_code, info.handler_id)
        torch.ops.mixcomm.mixed_comm_v_device_out.default(
            x_in, x_out, dp_rows, max_rows, op_code, mode_code, info.handler_id)
        return x_out
    if max_rows is not None:
        _reject("max_rows goes with dp_rows as a device tensor (the CUDA graph form)")
    if not isinstance(dp_rows, (list, tuple)):
        _reject(f"dp_rows should be a list of ints or an int32 CUDA tensor, got "
                f"{type(dp_rows).__name__}")
    rows = []
    for r in dp_rows:
        if isinstance(r, bool) or not isinstance(r, int):
            _reject(f"dp_rows should hold ints, got {type(r).__name__}")
        rows.append(r)
    if torch.compiler.is_compiling():
        check_call_v(info, op_code, mode_code, x_in, x_out, rows)
    if x_out is None:
        return torch.ops.mixcomm.mixed_comm_v.default(x_in, rows, op_code, mode_code,
                                                      info.handler_id)
    torch.ops.mixcomm.mixed_comm_v_out.default(x_in, x_out, rows, op_code, mode_code,
                                               info.handler_id)
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
    row_elems = _product(x_in.shape[1:])
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


def _ptr(t) -> int:
    return t.data_ptr() if t is not None else 0


def _mixed_comm_epilogue_impl(x_in, x_out, residual_in, residual_out, residual_in_place,
                              rms_gamma, rms_eps, norm_out, quant_out, scale_factor, op,
                              comm_mode, handler_id):
    handler = handler_from_id(handler_id)
    check_epilogue(handler._call_info, op, comm_mode, x_in, x_out, residual_in, residual_out,
                   residual_in_place, rms_gamma, rms_eps, norm_out, quant_out, scale_factor)
    e = _lib.Epilogue()
    _lib.load().mixcomm_epilogue_init(e)
    e.residual_in = _ptr(residual_out if residual_in_place else residual_in) or None
    e.residual_out = _ptr(residual_out) or None
    e.rms_gamma = _ptr(rms_gamma) or None
    e.rms_eps = rms_eps
    e.norm_out = _ptr(norm_out) or None
    e.quant_out = _ptr(quant_out) or None
    e.quant_scale = _ptr(scale_factor) or None
    rows = x_in.shape[0]
    row_elems = _product(x_in.shape[1:])
    handler._enqueue_epilogue(op, comm_mode, x_in.data_ptr(), _ptr(x_out), rows, row_elems, e,
                              current_stream_handle(x_in.device))


def _mixed_comm_epilogue_fake(x_in, x_out, residual_in, residual_out, residual_in_place,
                              rms_gamma, rms_eps, norm_out, quant_out, scale_factor, op,
                              comm_mode, handler_id):
    check_epilogue(handler_from_id(handler_id)._call_info, op, comm_mode, x_in, x_out,
                   residual_in, residual_out, residual_in_place, rms_gamma, rms_eps, norm_out,
                   quant_out, scale_factor)


def _launch_v(handler, op, mode, x_in, x_out, dp_rows) -> None:
    handler._enqueue_v(op, mode, x_in.data_ptr(), x_out.data_ptr(), list(dp_rows),
                       _product(x_in.shape[1:]), current_stream_handle(x_in.device))


def _launch_v_device(handler, op, mode, x_in, x_out, rows_dev, max_rows) -> None:
    handler._enqueue_v_device(op, mode, x_in.data_ptr(), x_out.data_ptr(), rows_dev.data_ptr(),
                              max_rows, _product(x_in.shape[1:]), current_stream_handle(x_in.device))


def _mixed_comm_v_impl(x_in, dp_rows, op, comm_mode, handler_id):
    handler = handler_from_id(handler_id)
    shape = check_call_v(handler._call_info, op, comm_mode, x_in, None, list(dp_rows))
    x_out = torch.empty(shape, dtype=x_in.dtype, device=x_in.device)
    _launch_v(handler, op, comm_mode, x_in, x_out, dp_rows)
    return x_out


def _mixed_comm_v_out_impl(x_in, x_out, dp_rows, op, comm_mode, handler_id):
    handler = handler_from_id(handler_id)
    check_call_v(handler._call_info, op, comm_mode, x_in, x_out, list(dp_rows))
    _launch_v(handler, op, comm_mode, x_in, x_out, dp_rows)


def _mixed_comm_v_fake(x_in, dp_rows, op, comm_mode, handler_id):
    shape = check_call_v(handler_from_id(handler_id)._call_info, op, comm_mode, x_in, None,
                         list(dp_rows))
    return x_in.new_empty(shape)


def _mixed_comm_v_out_fake(x_in, x_out, dp_rows, op, comm_mode, handler_id):
    check_call_v(handler_from_id(handler_id)._call_info, op, comm_mode, x_in, x_out,
                 list(dp_rows))


def _mixed_comm_v_device_impl(x_in, dp_rows, max_rows, op, comm_mode, handler_id):
    handler = handler_from_id(handler_id)
    shape = check_call_v(handler._call_info, op, comm_mode, x_in, None, None, dp_rows, max_rows)
    x_out = torch.empty(shape, dtype=x_in.dtype, device=x_in.device)
    _launch_v_device(handler, op, comm_mode, x_in, x_out, dp_rows, max_rows)
    return x_out


def _mixed_comm_v_device_out_impl(x_in, x_out, dp_rows, max_rows, op, comm_mode, handler_id):
    handler = handler_from_id(handler_id)
    check_call_v(handler._call_info, op, comm_mode, x_in, x_out, None, dp_rows, max_rows)
    _launch_v_device(handler, op, comm_mode, x_in, x_out, dp_rows, max_rows)


def _mixed_comm_v_device_fake(x_in, dp_rows, max_rows, op, comm_mode, handler_id):
    shape = check_call_v(handler_from_id(handler_id)._call_info, op, comm_mode, x_in, None, None,
                         dp_rows, max_rows)
    return x_in.new_empty(shape)


def _mixed_comm_v_device_out_fake(x_in, x_out, dp_rows, max_rows, op, comm_mode, handler_id):
    check_call_v(handler_from_id(handler_id)._call_info, op, comm_mode, x_in, x_out, None,
                 dp_rows, max_rows)


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
             "mixed_comm_out": (_mixed_comm_out_impl, _mixed_comm_out_fake),
             "mixed_comm_epilogue": (_mixed_comm_epilogue_impl, _mixed_comm_epilogue_fake),
             "mixed_comm_v": (_mixed_comm_v_impl, _mixed_comm_v_fake),
             "mixed_comm_v_out": (_mixed_comm_v_out_impl, _mixed_comm_v_out_fake),
             "mixed_comm_v_device": (_mixed_comm_v_device_impl, _mixed_comm_v_device_fake),
             "mixed_comm_v_device_out": (_mixed_comm_v_device_out_impl,
                                         _mixed_comm_v_device_out_fake)}
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
mixed_comm_epilogue = torch.ops.mixcomm.mixed_comm_epilogue
mixed_comm_v = torch.ops.mixcomm.mixed_comm_v
mixed_comm_v_out = torch.ops.mixcomm.mixed_comm_v_out
mixed_comm_v_device = torch.ops.mixcomm.mixed_comm_v_device
mixed_comm_v_device_out = torch.ops.mixcomm.mixed_comm_v_device_out

__all__ = ["SCHEMAS", "OP_QUALNAMES", "check_call", "check_call_v", "check_epilogue",
           "current_stream_handle", "mixed_comm", "mixed_comm_epilogue", "mixed_comm_out",
           "mixed_comm_v", "mixed_comm_v_device", "mixed_comm_v_device_out", "mixed_comm_v_out",
           "run", "run_epilogue", "run_v"]
