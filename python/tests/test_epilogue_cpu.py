# SPDX-License-Identifier: Apache-2.0
"""The fused epilogue of run_mixed_comm (residual_in, residual_out, rms_gamma, rms_eps, norm_out,
quant_out, scale_factor) without a GPU: the custom op mixcomm::mixed_comm_epilogue (schema,
fake implementation, opcheck), what run_mixed_comm allocates and returns, the arguments that
reach the library, and the results against a float64 reference, eagerly and under
torch.compile, with tests/fakelib.py standing in for the library's GPU side.

    MIXCOMM_LIBRARY=build/libmixcomm.so PYTHONPATH=python python3 -m pytest -q python/tests
"""
import pytest

torch = pytest.importorskip("torch")

from cpu_op_helpers import GATHER, SCATTER, O, fake, new_handler  # noqa: E402,F401
import fakelib  # noqa: E402
from mixcomm import ops, run_mixed_comm  # noqa: E402
from torch._subclasses.fake_tensor import FakeTensorMode  # noqa: E402

TOPOLOGIES = {"tp2": (2, 2), "dp2": (2, 1), "tp2xdp2": (4, 2)}
BF = torch.bfloat16
F8 = torch.float8_e4m3fn


def _handler(fake, topology="tp2xdp2", rank=0):
    world, tp = TOPOLOGIES[topology]
    return new_handler(fake, world, tp, rank, BF)


def _shapes(op, h, rows, hidden):
    """(x_in shape, output shape, residual shape) for `rows` rows of a rank block."""
    dp = h.dp_size
    x = (rows * dp if op in SCATTER else rows, hidden)
    out = (rows * dp if op in GATHER else rows, hidden)
    res = x if op in GATHER else out
    return x, out, res


def _reference(op, h, x, residual, gamma, eps, scale):
    """float64 S, P, RMSNorm(P) and the FP8 values for this rank (made-up peers as fakelib's;
    every DP group's residual is this rank's, as fakelib assumes without an exchange)."""
    world, tp = h.world_size, h.local_tp_size
    xs = [fakelib.peer_input(x, r).double() for r in range(world)]
    dp = world // tp
    if op == O.ALLREDUCE:
        s = sum(xs)
    elif op == O.ALLGATHER:
        s = torch.cat(xs)
    elif op == O.ALLREDUCE_ALLGATHER:
        s = torch.cat([sum(xs[d * tp:(d + 1) * tp]) for d in range(dp)])
    else:
        b = x.shape[0] // dp
        d = h.world_rank // tp
        s = sum(v[d * b:(d + 1) * b] for v in xs)
    blocks = dp if op in GATHER else 1
    p = s.view(blocks, -1, s.shape[1])
    if residual is not None:
        p = p + residual.double()
    p = p.reshape(s.shape)
    norm = p / torch.sqrt((p * p).mean(dim=1, keepdim=True) + eps) * gamma.double()
    quant = (norm / scale).clamp(-448, 448)
    return s, p, norm, quant


def _close(got, ref, rel=2 ** -6):
    g, r = got.double(), ref.double()
    return bool(((g - r).abs() <= rel * (r.abs() + 1.0)).all())


# ------------------------------------------------------------------------------------------
# The op
# ------------------------------------------------------------------------------------------


def test_epilogue_op_schema_and_mutations():
    assert "mixcomm::mixed_comm_epilogue" in ops.OP_QUALNAMES
    schema = torch.ops.mixcomm.mixed_comm_epilogue.default._schema
    assert str(schema) == "mixcomm::mixed_comm_epilogue" + ops.SCHEMAS["mixed_comm_epilogue"]
    writes = [a.name for a in schema.arguments if a.alias_info is not None and a.alias_info.is_write]
    assert writes == ["x_out", "residual_out", "norm_out", "quant_out"]
    assert schema.returns == []
    for key in ("CPU", "CUDA", "Meta"):
        assert torch._C._dispatch_has_kernel_for_dispatch_key("mixcomm::mixed_comm_epilogue", key)
    assert ops.mixed_comm_epilogue is torch.ops.mixcomm.mixed_comm_epilogue


@pytest.mark.parametrize("topology", list(TOPOLOGIES))
def test_epilogue_results_and_returns(fake, topology):
    world, _ = TOPOLOGIES[topology]
    for rank in (0, world - 1):
        h = _handler(fake, topology, rank)
        for op in h.get_valid_op_list():
            xs, outs, ress = _shapes(op, h, 3, 64)
            x = torch.randn(xs).to(BF)
            residual = torch.randn(ress).to(BF)
            gamma = torch.randn(64).to(BF)
            scale = torch.tensor([0.05])
            keep = residual.clone()
            # Everything, residual in place: the result is norm_out.
            quant = torch.full(outs, float("nan"), dtype=F8)
            norm = run_mixed_comm(op, h, x, residual_in=residual, residual_out=residual,
                                  rms_gamma=gamma, rms_eps=1e-5, quant_out=quant,
                                  scale_factor=scale)
            call = fake.calls[-1]
            epi = call["epilogue"]
            assert epi["residual_in"] == epi["residual_out"] == residual.data_ptr()
            assert epi["norm_out"] == norm.data_ptr() and epi["quant_out"] == quant.data_ptr()
            assert epi["quant_scale"] == scale.data_ptr() and not call["out_ptr"]
            assert epi["rms_eps"] == pytest.approx(1e-5)
            assert tuple(norm.shape) == outs and norm.dtype == BF
            s, p, nref, qref = _reference(op, h, x, keep, gamma, 1e-5, 0.05)
            own = p[h.dp_rank * 3:(h.dp_rank + 1) * 3] if op in GATHER else p
            assert _close(residual, own), (op, "residual in place")
            assert _close(norm, nref), (op, "norm")
            assert _close(quant.float(), qref, rel=2 ** -3), (op, "quant")
            # residual_out alone (allocated), out of place: the result is residual_out.
            r2 = run_mixed_comm(op, h, x, residual_in=keep)
            assert r2.data_ptr() != keep.data_ptr() and tuple(r2.shape) == ress
            assert _close(r2, own)
            # x_out with the epilogue: S, and norm of S without a residual.
            x_out = torch.empty(outs, dtype=BF)
            n3 = run_mixed_comm(op, h, x, x_out, rms_gamma=gamma)
            s2, _, n2, _ = _reference(op, h, x, None, gamma, 1e-6, 1.0)
            assert _close(x_out, s2) and _close(n3, n2)


def test_epilogue_bad_calls_raise_the_same_error_eager_and_fake(fake):
    h = _handler(fake)
    op = O.ALLREDUCE_ALLGATHER
    xs, outs, ress = _shapes(op, h, 2, 32)
    x = torch.randn(xs).to(BF)
    g = torch.randn(32).to(BF)
    cases = [
        ("norm without gamma", dict(norm_out=torch.empty(outs, dtype=BF)), "need rms_gamma"),
        ("quant without scale", dict(rms_gamma=g, quant_out=torch.empty(outs, dtype=F8)),
         "go together"),
        ("residual shape", dict(residual_in=torch.empty(outs, dtype=BF)), "residual_in.shape"),
        ("norm dtype", dict(rms_gamma=g, norm_out=torch.empty(outs)), "norm_out.dtype"),
        ("gamma shape", dict(rms_gamma=torch.randn(16).to(BF)), "rms_gamma.shape"),
        ("quant dtype", dict(rms_gamma=g, quant_out=torch.empty(outs, dtype=BF),
                             scale_factor=torch.tensor([1.0])), "quant_out.dtype"),
        ("scale size", dict(rms_gamma=g, scale_factor=torch.tensor([1.0, 2.0])), "one float32"),
        ("eps", dict(rms_gamma=g, rms_eps=-1.0), "rms_eps=-1.0"),
    ]
    for what, kwargs, needle in cases:
        with pytest.raises(ValueError, match=needle) as eager:
            run_mixed_comm(op, h, x, **kwargs)
        # The same check in the fake implementation (what torch.compile traces).
        args = dict(residual_in=None, residual_out=None, rms_gamma=None, rms_eps=1e-6,
                    norm_out=None, quant_out=None, scale_factor=None)
        args.update(kwargs)
        if args["rms_gamma"] is not None and args["norm_out"] is None and args["quant_out"] is None:
            args["norm_out"] = torch.empty(outs, dtype=BF)
        if args["scale_factor"] is not None and args["quant_out"] is None:
            args["quant_out"] = torch.empty(outs, dtype=F8)
        if args["residual_in"] is not None and args["residual_out"] is None:
            args["residual_out"] = torch.empty(args["residual_in"].shape, dtype=BF)
        mode = FakeTensorMode(allow_non_fake_inputs=False)
        conv = {k: mode.from_tensor(v) if isinstance(v, torch.Tensor) else v
                for k, v in args.items()}
        with mode, pytest.raises(ValueError, match=needle):
            torch.ops.mixcomm.mixed_comm_epilogue.default(
                mode.from_tensor(x), None, conv["residual_in"], conv["residual_out"], False,
                conv["rms_gamma"], conv["rms_eps"], conv["norm_out"], conv["quant_out"],
                conv["scale_factor"], int(op), -1, h.handler_id)
        assert str(eager.value)
    assert fake.calls == []


@pytest.mark.parametrize("topology", ["tp2", "tp2xdp2"])
def test_epilogue_opcheck(fake, topology):
    h = _handler(fake, topology)
    for op in h.get_valid_op_list():
        xs, outs, ress = _shapes(op, h, 3, 64)
        x = torch.randn(xs).to(BF)
        # (opcheck's schema test multiplies the outputs, which CPU float8 cannot: the FP8
        # output is covered by the other tests.)
        out_of_place = (x, None, torch.randn(ress).to(BF), torch.empty(ress, dtype=BF), False,
                        torch.randn(64).to(BF), 1e-6, torch.empty(outs, dtype=BF), None, None,
                        int(op), -1, h.handler_id)
        in_place = (x, torch.empty(outs, dtype=BF), None, torch.randn(ress).to(BF), True,
                    torch.randn(64).to(BF), 1e-6, torch.empty(outs, dtype=BF), None, None,
                    int(op), -1, h.handler_id)
        for args in (out_of_place, in_place):
            n = len(fake.calls)
            result = torch.library.opcheck(torch.ops.mixcomm.mixed_comm_epilogue.default, args)
            assert set(result.values()) == {"SUCCESS"}, result
            assert len(fake.calls) > n


def test_epilogue_under_torch_compile_fullgraph(fake):
    h = _handler(fake, "tp2")
    x = torch.randn(4, 64).to(BF)
    gamma = torch.randn(64).to(BF)
    residual = torch.randn(4, 64).to(BF)

    def layer(x, residual):
        normed = run_mixed_comm(O.ALLREDUCE, h, x * 2, residual_in=residual,
                                residual_out=residual, rms_gamma=gamma)
        return normed + 1

    eager_res = residual.clone()
    want = layer(x, eager_res)
    torch._dynamo.reset()
    compiled = torch.compile(layer, fullgraph=True, backend="aot_eager")
    got_res = residual.clone()
    got = compiled(x, got_res)
    assert torch.equal(got, want) and torch.equal(got_res, eager_res)
