# SPDX-License-Identifier: Apache-2.0
"""Uneven rows per DP rank through run_mixed_comm(..., dp_rows=...) without a GPU: the custom
ops mixcomm::mixed_comm_v*, (schemas, fake implementations and shapes, also under
torch.compile), the argument checks, what reaches the library, and the results against a
float64 reference of the made-up peers (tests/fakelib.py stands in for the library's GPU side).

    MIXCOMM_LIBRARY=build/libmixcomm.so PYTHONPATH=python python3 -m pytest -q python/tests
"""
import pytest

torch = pytest.importorskip("torch")

from cpu_op_helpers import GATHER, SCATTER, O, fake, new_handler  # noqa: E402,F401
import fakelib  # noqa: E402
from mixcomm import ops, run_mixed_comm  # noqa: E402
from torch._subclasses.fake_tensor import FakeTensorMode  # noqa: E402

BF = torch.bfloat16
HIDDEN = 64


def _handler(fake, world, tp, rank):
    return new_handler(fake, world, tp, rank, BF)


def _ops_for(tp):
    return GATHER[1:] + SCATTER[1:] if tp > 1 else GATHER[:1] + SCATTER[:1]


def _reference(h, op, rows, x):
    """float64 result from the made-up inputs of every rank (fakelib.uneven_input)."""
    t = h.topology
    world, dp_rank = t["world_size"], t["dp_rank"]
    dp_of = [r // t["local_tp_size"] % t["local_dp_size"] for r in range(world)]
    gather = op in GATHER
    total = sum(rows)
    xs = [fakelib.uneven_input(x, r, rows[dp_of[r]] if gather else total, HIDDEN).double()
          for r in range(world)]
    if gather:
        return torch.cat([sum(xs[r] for r in range(world) if dp_of[r] == d)
                          for d in range(len(rows))])
    off = sum(rows[:dp_rank])
    return sum(v[off:off + rows[dp_rank]] for v in xs)


def test_schemas_registered():
    for name in ("mixed_comm_v", "mixed_comm_v_out", "mixed_comm_v_device",
                 "mixed_comm_v_device_out"):
        assert f"mixcomm::{name}" in ops.OP_QUALNAMES
        overload = getattr(torch.ops.mixcomm, name).default
        assert str(overload._schema) == f"mixcomm::{name}" + ops.SCHEMAS[name]
        for key in ("CPU", "CUDA", "Meta"):
            assert torch._C._dispatch_has_kernel_for_dispatch_key(f"mixcomm::{name}", key), key


@pytest.mark.parametrize("world,tp", [(4, 1), (4, 2), (6, 2)])
@pytest.mark.parametrize("rank_pick", [0, -1])
@pytest.mark.parametrize("rows", [[3, 0, 5], [1, 64, 3, 17], [0, 0, 2], [4, 4, 4]])
def test_results_and_shapes(fake, world, tp, rank_pick, rows):
    dp = world // tp
    rows = (rows * 2)[:dp]
    rank = rank_pick % world
    h = _handler(fake, world, tp, rank)
    dp_rank = h.topology["dp_rank"]
    for op in _ops_for(tp):
        gather = op in GATHER
        n_in = rows[dp_rank] if gather else sum(rows)
        x = (torch.randn(n_in, HIDDEN) * 0.5).to(BF)
        y = run_mixed_comm(op, h, x, dp_rows=rows)
        assert y.shape == ((sum(rows) if gather else rows[dp_rank]), HIDDEN)
        want = _reference(h, op, rows, x)
        torch.testing.assert_close(y.double(), want, rtol=2 ** -7, atol=2 ** -7)
        call = fake.calls[-1]
        assert call["dp_rows"] == rows and call["max_rows"] is None
        # The out form writes the given tensor.
        out = torch.full(y.shape, float("nan"), dtype=BF)
        assert run_mixed_comm(op, h, x, out, dp_rows=rows) is out
        assert torch.equal(out, y)


def test_device_form_shapes_and_capacity(fake):
    h = _handler(fake, 4, 2, 3)  # tp 1, dp 1 of TP2 x DP2
    rows = torch.tensor([2, 5], dtype=torch.int32)
    op = O.ALLREDUCE_ALLGATHER
    x = (torch.randn(8, HIDDEN) * 0.5).to(BF)  # capacity: max_rows = 8
    y = run_mixed_comm(op, h, x, dp_rows=rows)
    assert y.shape == (16, HIDDEN)  # dp_size * max_rows, whatever the counts
    assert fake.calls[-1]["max_rows"] == 8 and fake.calls[-1]["dp_rows"] == [2, 5]
    want = _reference(h, op, [2, 5], x[:5])
    torch.testing.assert_close(y[:7].double(), want, rtol=2 ** -7, atol=2 ** -7)
    # Scatter op: x_in of dp_size * max_rows rows, output of max_rows.
    x2 = (torch.randn(2 * 6, HIDDEN) * 0.5).to(BF)
    y2 = run_mixed_comm(O.REDUCESCATTER_ALLREDUCE, h, x2, dp_rows=rows, max_rows=6)
    assert y2.shape == (6, HIDDEN)
    # A count above max_rows is the library's error.
    with pytest.raises(ValueError, match="max_rows"):
        run_mixed_comm(op, h, x[:4], dp_rows=rows)


def test_argument_errors(fake):
    h = _handler(fake, 4, 1, 0)
    x = torch.zeros(3, HIDDEN, dtype=BF)
    cases = [
        (dict(dp_rows=[3, 1]), "entries"),
        (dict(dp_rows=[3, -1, 0, 0]), "should be >= 0"),
        (dict(dp_rows=[2, 1, 1, 1]), "x_in.shape\\[0\\]=3"),
        (dict(dp_rows=[3, 1, 1, 1.5]), "ints"),
        (dict(dp_rows="3,1"), "list of ints"),
        (dict(dp_rows=[3, 1, 1, 1], max_rows=4), "max_rows goes with"),
        (dict(dp_rows=torch.tensor([1, 1, 1, 1], dtype=torch.int64)), "int32"),
        (dict(dp_rows=torch.tensor([1, 1, 1], dtype=torch.int32)), "shape"),
        (dict(dp_rows=[3, 1, 1, 1], rms_gamma=torch.ones(HIDDEN, dtype=BF)), "epilogue"),
    ]
    for kwargs, match in cases:
        with pytest.raises(ValueError, match=match):
            run_mixed_comm(O.ALLGATHER, h, x, **kwargs)
    with pytest.raises(ValueError, match="shape"):
        run_mixed_comm(O.ALLGATHER, h, x, torch.zeros(5, HIDDEN, dtype=BF), dp_rows=[3, 1, 1, 1])
    odd = torch.zeros(3, 12, dtype=BF)
    with pytest.raises(ValueError, match="16-byte"):
        run_mixed_comm(O.ALLGATHER, h, odd, dp_rows=[3, 1, 1, 1])
    tp = _handler(fake, 2, 2, 0)
    with pytest.raises(ValueError, match="no DP group"):
        run_mixed_comm(O.ALLREDUCE, tp, x, dp_rows=[3])
    with pytest.raises(ValueError, match="Invalid op"):
        run_mixed_comm(O.ALLGATHER, tp, x, dp_rows=[3])
    assert len(fake.calls) == 0


def test_fake_tensor_shapes(fake):
    h = _handler(fake, 4, 2, 2)  # dp rank 1
    with FakeTensorMode():
        x = torch.empty(5, HIDDEN, dtype=BF)
        y = torch.ops.mixcomm.mixed_comm_v(x, [1, 5], int(O.ALLREDUCE_ALLGATHER), -1,
                                           h.handler_id)
        assert y.shape == (6, HIDDEN)
        x2 = torch.empty(6, HIDDEN, dtype=BF)
        y2 = torch.ops.mixcomm.mixed_comm_v(x2, [1, 5], int(O.REDUCESCATTER_ALLREDUCE), -1,
                                            h.handler_id)
        assert y2.shape == (5, HIDDEN)  # this rank's block
        counts = torch.empty(2, dtype=torch.int32)
        y3 = torch.ops.mixcomm.mixed_comm_v_device(x, counts, 5, int(O.ALLREDUCE_ALLGATHER), -1,
                                                   h.handler_id)
        assert y3.shape == (10, HIDDEN)


def test_under_torch_compile(fake):
    h = _handler(fake, 4, 1, 2)
    rows = [1, 64, 3, 17]

    def f(x):
        return run_mixed_comm(O.ALLGATHER, h, x, dp_rows=rows) * 1

    x = (torch.randn(3, HIDDEN) * 0.5).to(BF)
    eager = f(x)
    compiled = torch.compile(f, fullgraph=True, backend="eager")(x)
    assert compiled.shape == (85, HIDDEN)
    assert torch.equal(eager, compiled)

    counts = torch.tensor(rows, dtype=torch.int32)

    def g(x, c):
        return run_mixed_comm(O.ALLGATHER, h, x, dp_rows=c)

    xg = (torch.randn(64, HIDDEN) * 0.5).to(BF)
    out = torch.compile(g, fullgraph=True, backend="eager")(xg, counts)
    assert out.shape == (4 * 64, HIDDEN)
