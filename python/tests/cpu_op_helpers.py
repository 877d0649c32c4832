# SPDX-License-Identifier: Apache-2.0
"""What the CPU tests of the custom ops share (test_ops_cpu.py, test_epilogue_cpu.py,
test_uneven_cpu.py): the import paths, the op groups, the `fake` fixture that swaps the
library for tests/fakelib.py, and handlers made on it. A test module imports the fixture by
name (`from cpu_op_helpers import fake`) so pytest finds it there."""
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import fakelib  # noqa: E402
from mixcomm import MixedCommHandler, MixedCommOp, _lib  # noqa: E402

O = MixedCommOp
GATHER = (O.ALLGATHER, O.ALLREDUCE_ALLGATHER)
SCATTER = (O.REDUCESCATTER, O.REDUCESCATTER_ALLREDUCE)


@pytest.fixture
def fake(monkeypatch):
    f = fakelib.FakeLibrary(_lib.load())
    monkeypatch.setattr(_lib, "_lib", f)
    made = []
    f.made = made
    yield f
    for h in made:
        h.shutdown()


def new_handler(fake, world, tp, rank, dtype, cpu=True):
    """A one-node handler of world ranks (local_tp_size tp) as rank `rank` on the fake library,
    shut down by the fixture; cpu: its calls run on host tensors (fakelib.on_cpu)."""
    h = MixedCommHandler(rank, world, rank, world, 0, 1, tp, None, None, None, dtype, 0,
                         use_autotune=False)
    fake.made.append(h)
    if cpu:
        fakelib.on_cpu(h)
    return h
