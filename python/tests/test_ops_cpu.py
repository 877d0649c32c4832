# SPDX-License-Identifier: Apache-2.0
"""Tests of the custom ops that need torch but no GPU: registration and schemas, the fake (meta)
implementations, torch.library.opcheck, and the real implementation's whole path down to
mixcomm_run, eagerly and under torch.compile, with tests/fakelib.py standing in for the
library's GPU side (it computes the collectives on host memory from made-up peer inputs).

    MIXCOMM_LIBRARY=build/libmixcomm.so PYTHONPATH=python python3 -m pytest -q python/tests
"""
import gc
import warnings

import pytest

torch = pytest.importorskip("torch")

from cpu_op_helpers import GATHER, SCATTER, O, fake, new_handler  # noqa: E402,F401
import fakelib  # noqa: E402
import mixcomm  # noqa: E402
from mixcomm import (MixcommRuntimeError, MixcommValueError, MixedCommMode,  # noqa: E402
                     _lib, handler_from_id, ops, run_mixed_comm)
from torch._subclasses.fake_tensor import FakeTensorMode  # noqa: E402

# name -> (world_size, local_tp_size); one node
TOPOLOGIES = {"tp2": (2, 2), "dp2": (2, 1), "tp2xdp2": (4, 2), "dp4": (4, 1), "tp4": (4, 4)}


def _handler(fake, topology="tp2xdp2", rank=0, dtype=torch.bfloat16, cpu=True):
    world, tp = TOPOLOGIES[topology]
    return new_handler(fake, world, tp, rank, dtype, cpu)


def _rows_in(op, rows, dp):
    return rows * dp if op in SCATTER else rows


def _expected_rows(op, rows_in, dp):
    return rows_in * dp if op in GATHER else rows_in // dp if op in SCATTER else rows_in


def _reference(op, x, rank, world, tp):
    """float64 result of op for `rank`, whose peers' inputs are fakelib.peer_input(x, r)."""
    xs = [fakelib.peer_input(x, r).double() for r in range(world)]
    dp = world // tp
    if op == O.ALLREDUCE:
        return sum(xs)
    if op == O.ALLGATHER:
        return torch.cat(xs)
    if op == O.ALLREDUCE_ALLGATHER:
        return torch.cat([sum(xs[d * tp:(d + 1) * tp]) for d in range(dp)])
    b = x.shape[0] // dp
    d = rank // tp
    return sum(v[d * b:(d + 1) * b] for v in xs)


def _close(got, ref):
    """Within one bf16 rounding of the float64 result (plus float32 accumulation)."""
    return bool(((got.double() - ref).abs() <= 2.0 ** -7 * ref.abs() + 1e-5).all())


# ------------------------------------------------------------------------------------------
# Registration and schemas
# ------------------------------------------------------------------------------------------


def test_ops_are_registered_with_their_schemas():
    assert ops.OP_QUALNAMES == ("mixcomm::mixed_comm", "mixcomm::mixed_comm_out",
                                "mixcomm::mixed_comm_epilogue", "mixcomm::mixed_comm_v",
                                "mixcomm::mixed_comm_v_out", "mixcomm::mixed_comm_v_device",
                                "mixcomm::mixed_comm_v_device_out")
    expected = {
        "mixed_comm": "mixcomm::mixed_comm(Tensor x_in, int op, int comm_mode, int handler_id)"
                      " -> Tensor",
        "mixed_comm_out": "mixcomm::mixed_comm_out(Tensor x_in, Tensor(a!) x_out, int op, "
                          "int comm_mode, int handler_id) -> ()",
    }
    for name, text in expected.items():
        overload = getattr(torch.ops.mixcomm, name).default
        assert str(overload._schema) == text
        assert ops.SCHEMAS[name] == text[len(f"mixcomm::{name}"):]
        for key in ("CPU", "CUDA", "Meta"):
            assert torch._C._dispatch_has_kernel_for_dispatch_key(f"mixcomm::{name}", key), key
        assert torch.Tag.needs_contiguous_strides in overload.tags
        assert torch.Tag.cudagraph_unsafe not in overload.tags
    assert ops.mixed_comm is torch.ops.mixcomm.mixed_comm
    assert ops.mixed_comm_out is torch.ops.mixcomm.mixed_comm_out


def test_only_x_out_is_mutated():
    for name, mutated in (("mixed_comm", []), ("mixed_comm_out", ["x_out"])):
        schema = getattr(torch.ops.mixcomm, name).default._schema
        writes = [a.name for a in schema.arguments
                  if a.alias_info is not None and a.alias_info.is_write]
        assert writes == mutated
        assert not schema.is_mutable or name == "mixed_comm_out"
    out = torch.ops.mixcomm.mixed_comm.default._schema.returns
    assert len(out) == 1 and out[0].alias_info is None  # a new tensor, never a view of x_in
    assert torch.ops.mixcomm.mixed_comm_out.default._schema.returns == []


def test_ops_module_reimport_is_refused():
    import importlib.util
    spec = importlib.util.spec_from_file_location("mixcomm_ops_again", ops.__file__,
                                                  submodule_search_locations=None)
    mod = importlib.util.module_from_spec(spec)
    mod.__package__ = "mixcomm"
    with pytest.raises(ImportError, match="already registered"):
        spec.loader.exec_module(mod)


# ------------------------------------------------------------------------------------------
# Fake implementations: exact output metadata, the eager path's errors
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("topology", list(TOPOLOGIES))
def test_fake_output_shapes_on_a_cuda_device(fake, topology):
    h = _handler(fake, topology, cpu=False)  # device cuda:0: fake tensors need no GPU
    dp = h.dp_size
    for op in h.get_valid_op_list():
        for rows in (0, 1, 6):
            for tail in ((64,), (3, 48)):
                r_in = _rows_in(op, rows, dp)
                with FakeTensorMode():
                    x = torch.empty((r_in,) + tail, dtype=torch.bfloat16, device="cuda:0")
                    y = torch.ops.mixcomm.mixed_comm(x, int(op), -1, h.handler_id)
                    out = torch.empty((_expected_rows(op, r_in, dp),) + tail,
                                      dtype=torch.bfloat16, device="cuda:0")
                    none = torch.ops.mixcomm.mixed_comm_out(x, out, int(op), -1, h.handler_id)
                    z = run_mixed_comm(op, h, x)
                assert tuple(y.shape) == (_expected_rows(op, r_in, dp),) + tail
                assert tuple(z.shape) == tuple(y.shape)
                assert y.dtype == torch.bfloat16 and y.device == torch.device("cuda", 0)
                assert y.is_contiguous() and none is None
    assert fake.calls == []  # nothing reached the library


def test_fake_output_on_meta_tensors(fake):
    h = _handler(fake, "tp2xdp2", cpu=False)
    fakelib.on_device(h, torch.device("meta"))
    x = torch.empty((5, 128), dtype=torch.bfloat16, device="meta")
    y = torch.ops.mixcomm.mixed_comm(x, int(O.ALLREDUCE_ALLGATHER), -1, h.handler_id)
    assert y.device.type == "meta" and tuple(y.shape) == (10, 128)
    x = torch.empty((6, 2, 64), dtype=torch.bfloat16, device="meta")
    y = torch.ops.mixcomm.mixed_comm(x, int(O.REDUCESCATTER_ALLREDUCE), 1, h.handler_id)
    assert tuple(y.shape) == (3, 2, 64)
    assert fake.calls == []


def _bad_cases(h):
    """(description, run_mixed_comm arguments, expected message pattern)."""
    bf = torch.bfloat16
    x = torch.randn(4, 64).to(bf)
    ag, rs = O.ALLREDUCE_ALLGATHER, O.REDUCESCATTER_ALLREDUCE
    return [
        ("1-D input", (ag, h, x[0]), r"^x_in.ndim should be at least 2$"),
        ("wrong dtype", (ag, h, x.float()), r"^x_in.dtype should be torch.bfloat16$"),
        ("non-contiguous", (ag, h, torch.randn(64, 8).to(bf).t()), r"^x_in should be contiguous$"),
        ("row of 6 bytes", (ag, h, torch.randn(4, 3).to(bf)), r"not a multiple of the 16-byte"),
        ("empty rows", (ag, h, torch.randn(4, 0).to(bf)), r"at least one element"),
        ("scatter rows", (rs, h, torch.randn(3, 64).to(bf)),
         r"^x_in.shape\[0\] should be divisible by dp_size$"),
        ("invalid op", (O.ALLREDUCE, h, x), r"^Invalid op: ALLREDUCE \(valid for tp_size=2"),
        ("multicast mode", (ag, h, x, None, MixedCommMode.FUSED_OPT_WAITS_MC),
         r"^Invalid mode: FUSED_OPT_WAITS_MC \(NVLink multicast"),
        ("NCCL mode", (ag, h, x, None, MixedCommMode.NCCL_TP_DP), r"^Invalid mode: NCCL_TP_DP"),
        ("out rows (gather)", (ag, h, x, torch.empty(4, 64, dtype=bf)),
         r"^x_out.shape\[0\] should be equal to x_in.shape\[0\] \* dp_size$"),
        ("out rows (scatter)", (rs, h, x, torch.empty(4, 64, dtype=bf)),
         r"^x_out.shape\[0\] \* dp_size should be equal to x_in.shape\[0\]$"),
        ("out tail", (ag, h, x, torch.empty(8, 32, dtype=bf)),
         r"^x_out.shape\[1:\] should be equal to x_in.shape\[1:\]$"),
        ("out ndim", (ag, h, x, torch.empty(8, 64, 1, dtype=bf)),
         r"^x_out.ndim should be equal to x_in.ndim$"),
        ("out dtype", (ag, h, x, torch.empty(8, 64)), r"^x_out.dtype should be equal to"),
        ("out non-contiguous", (ag, h, x, torch.empty(64, 8, dtype=bf).t()),
         r"^x_out should be contiguous$"),
    ]


def _op_args(args):
    """run_mixed_comm arguments -> (op overload, its arguments)."""
    op, h, x = args[:3]
    out = args[3] if len(args) > 3 else None
    mode = args[4] if len(args) > 4 else None
    code = -1 if mode is None else int(mode)
    if out is None:
        return torch.ops.mixcomm.mixed_comm.default, (x, int(op), code, h.handler_id)
    return torch.ops.mixcomm.mixed_comm_out.default, (x, out, int(op), code, h.handler_id)


def test_bad_calls_raise_the_same_value_error_eager_fake_and_compiled(fake):
    h = _handler(fake)
    for what, args, pattern in _bad_cases(h):
        with pytest.raises(ValueError, match=pattern) as eager:
            run_mixed_comm(*args)
        assert isinstance(eager.value, MixcommValueError), what
        assert eager.value.status_name == "MIXCOMM_ERR_INVALID_ARGUMENT"
        target, op_args = _op_args(args)
        with pytest.raises(ValueError) as direct:  # the real implementation, eagerly
            target(*op_args)
        assert str(direct.value) == str(eager.value), what
        mode = FakeTensorMode(allow_non_fake_inputs=False)
        fake_args = tuple(mode.from_tensor(a) if isinstance(a, torch.Tensor) else a
                          for a in op_args)
        with mode, pytest.raises(ValueError) as faked:  # the fake implementation
            target(*fake_args)
        assert str(faked.value) == str(eager.value), what
        torch._dynamo.reset()
        compiled = torch.compile(lambda *a: run_mixed_comm(*a), backend="aot_eager")
        with pytest.raises(ValueError) as comp:
            compiled(*args)
        assert isinstance(comp.value, MixcommValueError), what
        assert str(comp.value) == str(eager.value), what
    assert fake.calls == []  # every check comes before the library


def test_wrapper_argument_errors(fake):
    h = _handler(fake)
    x = torch.randn(4, 64).to(torch.bfloat16)
    with pytest.raises(ValueError, match=r"Invalid op: 17 \(expected a MixedCommOp\)"):
        run_mixed_comm(17, h, x)
    with pytest.raises(ValueError, match="Invalid op: 'AR'"):
        run_mixed_comm("AR", h, x)
    with pytest.raises(ValueError, match=r"Invalid mode: 9 \(expected a MixedCommMode or None\)"):
        run_mixed_comm(O.ALLREDUCE_ALLGATHER, h, x, None, 9)
    with pytest.raises(ValueError, match="handler should be a MixedCommHandler, got int"):
        run_mixed_comm(O.ALLREDUCE_ALLGATHER, h.handler_id, x)
    with pytest.raises(ValueError, match="x_in should be a torch.Tensor, got list"):
        run_mixed_comm(O.ALLREDUCE_ALLGATHER, h, [[1.0]])
    with pytest.raises(ValueError, match="x_out should be a torch.Tensor, got str"):
        run_mixed_comm(O.ALLREDUCE_ALLGATHER, h, x, "out")
    assert fake.calls == []


# ------------------------------------------------------------------------------------------
# opcheck: schema, fake vs real, autograd registration, AOT dispatch with dynamic shapes
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("topology", ["tp2", "dp2", "tp2xdp2"])
def test_opcheck(fake, topology):
    h = _handler(fake, topology)
    dp = h.dp_size
    for op in h.get_valid_op_list():
        for mode in (-1, int(MixedCommMode.FUSED_OPT_WAITS_UC)):
            x = torch.randn(_rows_in(op, 3, dp), 64).to(torch.bfloat16)
            out = torch.empty(_expected_rows(op, x.shape[0], dp), 64, dtype=torch.bfloat16)
            for target, args in ((torch.ops.mixcomm.mixed_comm.default,
                                  (x, int(op), mode, h.handler_id)),
                                 (torch.ops.mixcomm.mixed_comm_out.default,
                                  (x, out, int(op), mode, h.handler_id))):
                n = len(fake.calls)
                result = torch.library.opcheck(target, args)
                assert set(result.values()) == {"SUCCESS"}, result
                assert len(fake.calls) > n  # the real implementation ran


# ------------------------------------------------------------------------------------------
# The real implementation's path down to mixcomm_run
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("topology", list(TOPOLOGIES))
def test_eager_call_reaches_the_library_with_the_right_arguments(fake, topology):
    world, tp = TOPOLOGIES[topology]
    for rank in (0, world - 1):
        h = _handler(fake, topology, rank=rank)
        dp = h.dp_size
        for op in h.get_valid_op_list():
            for tail in ((64,), (3, 16)):
                x = torch.randn((_rows_in(op, 5, dp),) + tail).to(torch.bfloat16)
                x_before = x.clone()
                y = run_mixed_comm(op, h, x)
                call = fake.calls[-1]
                assert call == dict(handle=h._h.value, op=int(op), mode=-1,
                                    in_ptr=x.data_ptr(), out_ptr=y.data_ptr(),
                                    rows=x.shape[0], row_elems=x[0].numel(), stream=0)
                assert tuple(y.shape) == (_expected_rows(op, x.shape[0], dp),) + tail
                assert _close(y, _reference(op, x, rank, world, tp))
                assert torch.equal(x, x_before)
                # Into a given (poisoned) output, with an explicit mode.
                out = torch.full_like(y, float("nan"))
                got = run_mixed_comm(op, h, x, out, MixedCommMode.FUSED_OPT_WAITS_UC)
                assert got is out
                assert fake.calls[-1]["out_ptr"] == out.data_ptr()
                assert fake.calls[-1]["mode"] == int(MixedCommMode.FUSED_OPT_WAITS_UC)
                assert torch.equal(out, y)
        h.shutdown()


def test_zero_rows_and_integer_op_codes(fake):
    h = _handler(fake, "tp2xdp2")
    x = torch.empty(0, 64, dtype=torch.bfloat16)
    y = run_mixed_comm(int(O.ALLREDUCE_ALLGATHER), h, x, mode=int(MixedCommMode.FUSED_OPT_WAITS_UC))
    assert tuple(y.shape) == (0, 64)
    assert fake.calls[-1]["rows"] == 0 and fake.calls[-1]["op"] == 3
    assert fake.calls[-1]["mode"] == 1


def test_library_failure_raises_runtime_error_eager_and_compiled(fake):
    h = _handler(fake)
    x = torch.randn(4, 64).to(torch.bfloat16)
    fake.fail_next = (_lib.ERR_TIMEOUT, "rank 3 did not arrive within 15000 ms")
    with pytest.raises(RuntimeError) as ei:
        run_mixed_comm(O.ALLREDUCE_ALLGATHER, h, x)
    e = ei.value
    assert isinstance(e, MixcommRuntimeError) and e.status == _lib.ERR_TIMEOUT
    assert str(e).startswith("run_mixed_comm(ALLREDUCE_ALLGATHER): rank 3 did not arrive")
    assert "[MIXCOMM_ERR_TIMEOUT]" in str(e)
    f = torch.compile(lambda t: run_mixed_comm(O.ALLREDUCE_ALLGATHER, h, t * 2) + 1,
                      fullgraph=True, backend="aot_eager")
    f(x)  # compiled, and a good call
    fake.fail_next = (_lib.ERR_MISMATCH, "rank 1 made another call")
    with pytest.raises(MixcommRuntimeError, match="rank 1 made another call"):
        f(x)


def test_compiled_calls_match_eager_with_no_graph_break(fake):
    h = _handler(fake, "tp2xdp2", rank=1)

    def layer(x):
        full = run_mixed_comm(O.ALLREDUCE_ALLGATHER, h, x * 2)                  # out-of-place
        out = torch.empty((full.shape[0] // 2, full.shape[1]), dtype=full.dtype)
        run_mixed_comm(O.REDUCESCATTER_ALLREDUCE, h, full + 1, out,            # given output
                       MixedCommMode.FUSED_OPT_WAITS_UC)
        return full, out * 3

    x = torch.randn(5, 64).to(torch.bfloat16)
    explanation = torch._dynamo.explain(layer)(x)
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1
    want = layer(x)
    torch._dynamo.reset()
    compiled = torch.compile(layer, fullgraph=True, backend="aot_eager")
    for rows in (5, 5, 2, 7):  # a recompile for dynamic rows, then reuse
        x = torch.randn(rows, 64).to(torch.bfloat16)
        want = layer(x)
        n = len(fake.calls)
        got = compiled(x)
        assert len(fake.calls) == n + 2  # one library call per collective
        assert [c["op"] for c in fake.calls[n:]] == [3, 4]
        assert [c["rows"] for c in fake.calls[n:]] == [rows, 2 * rows]
        assert all(torch.equal(a, b) for a, b in zip(got, want))


def test_compiled_function_taking_handler_op_and_mode_as_arguments(fake):
    """Ints that change between calls of a compiled function become symbolic: the handler's
    id, op and mode must still reach the ops as the right constants."""
    a, b = _handler(fake, "tp2xdp2"), _handler(fake, "tp2")

    def f(x, handler, op, mode):
        return run_mixed_comm(op, handler, x, mode=mode) * 2

    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    for handler, op, mode in ((a, O.ALLREDUCE_ALLGATHER, None), (b, O.ALLREDUCE, None),
                              (a, 4, 1), (b, 0, -1), (a, 3, 3),
                              (b, O.ALLREDUCE, MixedCommMode.FUSED_OPT_BYTES1_UC),
                              (a, O.REDUCESCATTER_ALLREDUCE, None)):
        x = torch.randn(4, 64).to(torch.bfloat16)
        want = f(x, handler, op, mode)
        got = compiled(x, handler, op, mode)
        call = fake.calls[-1]
        assert (call["handle"], call["op"], call["mode"]) == (
            handler._h.value, int(op), -1 if mode is None else int(mode))
        assert torch.equal(got, want)
    bad = (torch.randn(4, 64).to(torch.bfloat16), b, 3, None)  # AR+AG on a pure-TP handler
    with pytest.raises(torch._dynamo.exc.Unsupported, match="a bad mixcomm call"):
        compiled(*bad)  # fullgraph=True: tracing stops at the bad call
    with pytest.raises(ValueError, match="Invalid op: ALLREDUCE_ALLGATHER"):
        torch.compile(f, backend="aot_eager")(*bad)


def test_compiled_with_inductor_on_cpu(fake):
    """The production backend (it fuses around the ops and re-inplaces the out variant):
    results equal eager ones."""
    h = _handler(fake, "tp2xdp2")

    def layer(x):
        a = run_mixed_comm(O.ALLREDUCE_ALLGATHER, h, x * 2)
        b = torch.empty((a.shape[0] // 2, a.shape[1]), dtype=a.dtype)
        run_mixed_comm(O.REDUCESCATTER_ALLREDUCE, h, a - 1, b)
        return a + 1, b

    x = torch.randn(6, 64).to(torch.bfloat16)
    want = layer(x)
    got = torch.compile(layer, fullgraph=True)(x)
    assert all(torch.equal(a, b) for a, b in zip(got, want))


def test_current_stream_handle_is_zero_on_cpu():
    assert ops.current_stream_handle(torch.device("cpu")) == 0


# ------------------------------------------------------------------------------------------
# Handler ids
# ------------------------------------------------------------------------------------------


def test_handler_ids_are_unique_and_map_back(fake):
    a, b = _handler(fake), _handler(fake, "tp2")
    assert a.handler_id != b.handler_id
    assert handler_from_id(a.handler_id) is a and mixcomm.handler_from_id(b.handler_id) is b
    with pytest.raises(RuntimeError, match="handler_id=999999 is not live"):
        handler_from_id(999999)


def test_shut_down_handler_is_refused_by_the_ops(fake):
    h = _handler(fake)
    hid = h.handler_id
    x = torch.randn(4, 64).to(torch.bfloat16)
    run_mixed_comm(O.ALLREDUCE_ALLGATHER, h, x)
    h.shutdown()
    n = len(fake.calls)
    for call in (lambda: run_mixed_comm(O.ALLREDUCE_ALLGATHER, h, x),
                 lambda: torch.ops.mixcomm.mixed_comm(x, 3, -1, hid),
                 lambda: handler_from_id(hid)):
        with pytest.raises(MixcommRuntimeError, match=f"handler_id={hid} is not live"):
            call()
    with FakeTensorMode() as mode, pytest.raises(RuntimeError, match="not live"):
        torch.ops.mixcomm.mixed_comm(mode.from_tensor(x), 3, -1, hid)
    assert len(fake.calls) == n


def test_registry_does_not_keep_a_dropped_handler_alive(fake):
    h = _handler(fake)
    fake.made.remove(h)
    hid = h.handler_id
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del h
        gc.collect()
    assert any(issubclass(w.category, ResourceWarning) for w in caught)
    with pytest.raises(RuntimeError, match="not live"):
        handler_from_id(hid)
