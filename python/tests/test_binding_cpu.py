# SPDX-License-Identifier: Apache-2.0
"""Tests of the Python binding that need no GPU (and no torch: the torch parts are skipped when
it is absent). The library comes from $MIXCOMM_LIBRARY, else the repository's build/.

    MIXCOMM_LIBRARY=build/libmixcomm.so PYTHONPATH=python python3 -m pytest -q python/tests
"""
import ctypes
import inspect
import os
import re
import socket
import sys
import threading
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE.parent))  # the package in this checkout

import mixcomm  # noqa: E402
from mixcomm import (MixcommError, MixcommRuntimeError, MixcommValueError,  # noqa: E402
                     MixedCommHandler, MixedCommMode, MixedCommOp, run_mixed_comm)
from mixcomm import _bootstrap, _lib  # noqa: E402

HEADER = REPO / "include" / "mixcomm.h"

# FlashInfer MixedCommHandler's constructor: names, order and defaults.
_NO_DEFAULT = inspect.Parameter.empty
FLASHINFER_INIT = [
    ("world_rank", _NO_DEFAULT), ("world_size", _NO_DEFAULT), ("local_rank", _NO_DEFAULT),
    ("local_size", _NO_DEFAULT), ("inter_rank", _NO_DEFAULT), ("inter_size", _NO_DEFAULT),
    ("local_tp_size", _NO_DEFAULT), ("local_dp_size", _NO_DEFAULT),
    ("inter_tp_size", _NO_DEFAULT), ("inter_dp_size", _NO_DEFAULT),
    ("dtype", _NO_DEFAULT), ("device", _NO_DEFAULT),
    ("grid_size", None), ("max_block_size", None), ("min_block_size", 256),
    ("min_num_steps", 4), ("ib_enable_ibgda", True), ("should_init_nvshmem", True),
    ("use_autotune", True),
]
FLASHINFER_METHODS = ["get_valid_mode_list", "get_valid_op_list", "init_nvshmem",
                "init_virtual_memory", "run_autotune", "select_autotune_mode", "shutdown"]


def _header() -> str:
    return HEADER.read_text()


def _header_enum(typedef: str, prefix: str) -> dict:
    m = re.search(r"typedef enum %s \{(.*?)\} %s_t;" % (typedef, typedef), _header(), re.S)
    assert m, f"enum {typedef} not found in {HEADER}"
    out = {}
    for name, value in re.findall(r"\b%s(\w+)\s*=\s*(-?\d+)" % prefix, m.group(1)):
        out[name] = int(value)
    return out


# ------------------------------------------------------------------------------------------
# Enums
# ------------------------------------------------------------------------------------------


def test_ops_match_header():
    ops = _header_enum("mixcomm_op", "MIXCOMM_OP_")
    assert ops == {m.name: m.value for m in MixedCommOp}
    assert len(MixedCommOp) == _lib.NUM_OPS


def test_modes_match_header():
    modes = _header_enum("mixcomm_mode", "MIXCOMM_MODE_")
    assert modes.pop("DEFAULT") == _lib.MODE_DEFAULT == -1
    assert modes == {m.name: m.value for m in MixedCommMode}
    assert len(MixedCommMode) == _lib.NUM_MODES
    assert MixedCommMode.AUTOTUNE == 8 and MixedCommMode.NCCL_TP_DP == 7


def test_dtypes_and_statuses_match_header():
    dtypes = _header_enum("mixcomm_dtype", "MIXCOMM_")
    assert dtypes == {"FLOAT16": _lib.FLOAT16, "BFLOAT16": _lib.BFLOAT16,
                      "FLOAT32": _lib.FLOAT32}
    statuses = {name: int(v) for name, v in
                re.findall(r"X\(MIXCOMM_(\w+), (\d+), \"", _header())}
    ours = {name: getattr(_lib, name) for name in statuses}
    assert statuses == ours
    assert len(statuses) == _lib.NUM_STATUS
    assert int(re.search(r"#define MIXCOMM_MAX_LOCAL_SIZE (\d+)", _header()).group(1)) == \
        _lib.MAX_LOCAL_SIZE


def test_enum_names_match_library():
    for op in MixedCommOp:
        assert _lib.op_name(op.value) == op.name
    for mode in MixedCommMode:
        assert _lib.mode_name(mode.value) == mode.name
    assert _lib.mode_name(-1) == "DEFAULT"
    assert _lib.op_name(_lib.NUM_OPS) is None
    assert _lib.mode_name(_lib.NUM_MODES) is None
    for code, name in ((0, "float16"), (1, "bfloat16"), (2, "float32")):
        assert _lib.dtype_name(code) == name
        assert _lib.dtype_from_name(name) == code


def test_enums_are_intenums():
    assert MixedCommOp.ALLREDUCE_ALLGATHER == 3 and int(MixedCommOp.REDUCESCATTER) == 2
    assert MixedCommOp(4) is MixedCommOp.REDUCESCATTER_ALLREDUCE
    assert MixedCommMode(1) is MixedCommMode.FUSED_OPT_WAITS_UC


# ------------------------------------------------------------------------------------------
# Signatures
# ------------------------------------------------------------------------------------------


def _params(fn):
    return [p for p in inspect.signature(fn).parameters.values() if p.name != "self"]


def test_handler_signature_matches_flashinfer():
    params = _params(MixedCommHandler.__init__)
    assert [(p.name, p.default) for p in params] == FLASHINFER_INIT
    assert all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in params)


def test_flashinfer_methods_exist():
    for name in FLASHINFER_METHODS:
        assert callable(getattr(MixedCommHandler, name)), name
    assert [p.name for p in _params(MixedCommHandler.select_autotune_mode)] == ["op", "x_in"]
    for name in FLASHINFER_METHODS:
        if name != "select_autotune_mode":
            assert _params(getattr(MixedCommHandler, name)) == [], name


def test_run_mixed_comm_signature():
    params = _params(run_mixed_comm)
    assert [(p.name, p.default) for p in params[:5]] == [
        ("op", _NO_DEFAULT), ("handler", _NO_DEFAULT), ("x_in", _NO_DEFAULT), ("x_out", None),
        ("mode", None)]


def test_public_names():
    from mixcomm import MixedCommHandler as H, MixedCommMode as M, MixedCommOp as O  # noqa
    from mixcomm.mixed_comm import run_mixed_comm as r
    assert r is run_mixed_comm and H is MixedCommHandler and M is MixedCommMode and O is MixedCommOp


# ------------------------------------------------------------------------------------------
# ctypes declarations and struct layouts
# ------------------------------------------------------------------------------------------


def test_declared_functions_exist():
    """Every function the binding declares is in the header and the library, with argtypes."""
    names = set(re.findall(r"MIXCOMM_API[^;(]*?\b(mixcomm_\w+)\s*\(", _header()))
    assert len(names) > 30
    assert set(_lib._SIGNATURES) <= names
    lib = _lib.load()
    for name in _lib._SIGNATURES:
        assert getattr(lib, name).argtypes is not None, name


def test_every_called_function_is_declared():
    called = set()
    for f in (HERE.parent / "mixcomm").glob("*.py"):
        called |= set(re.findall(r"\.(mixcomm_\w+)\b", f.read_text()))
    assert called and called <= set(_lib._SIGNATURES)


def test_config_size_matches_library():
    buf = (ctypes.c_ubyte * 4096)()
    _lib.load().mixcomm_config_init(buf)
    struct_size = ctypes.c_size_t.from_buffer(buf).value
    assert struct_size == ctypes.sizeof(_lib.Config)
    assert all(b == 0 for b in buf[struct_size:])  # nothing written past the struct
    cfg = _lib.Config.from_buffer_copy(bytes(buf[:struct_size]))
    assert cfg.version == _lib.version()
    assert (cfg.world_size, cfg.local_size, cfg.inter_size) == (1, 1, 1)
    assert cfg.dtype == _lib.BFLOAT16 and cfg.device == -1
    assert (cfg.grid_size, cfg.max_block_size, cfg.min_block_size, cfg.min_num_steps) == \
        (0, 0, 256, 4)
    assert (cfg.ib_enable_ibgda, cfg.should_init_nvshmem, cfg.use_autotune) == (1, 1, 1)
    assert cfg.timeout_ms == 0 and cfg.autotune_cache_dir is None


def test_config_initializer_matches_header():
    m = re.search(r"#define MIXCOMM_CONFIG_INITIALIZER\s*\\\s*\{(.*?)\}", _header(), re.S)
    values = [v.strip() for v in m.group(1).replace("\\", " ").split(",")]
    names = [n for n, _ in _lib.Config._fields_]
    assert len(values) == len(names)
    cfg = _lib.init_config()
    for name, v in zip(names, values):
        if re.fullmatch(r"-?\d+", v):
            assert getattr(cfg, name) == int(v), name


def test_topology_layout_and_rules():
    # Resolve every rank of a few topologies and compare with the documented formulas.
    for world, local, ltp, ldp, itp, idp in ((8, 8, 4, 0, 0, 0), (8, 4, 2, 2, 1, 2),
                                               (12, 6, 0, 3, 2, 0), (4, 4, 0, 0, 0, 0)):
        inter = world // local
        for wr in range(world):
            lr, ir = wr % local, wr // local
            t = _lib.resolve_topology(wr, world, lr, local, ir, inter, ltp, ldp, itp, idp)
            lt = t.local_tp_size
            it = t.inter_tp_size
            assert lt * t.local_dp_size == local and it * t.inter_dp_size == inter
            assert (t.local_tp_rank, t.local_dp_rank) == (lr % lt, lr // lt)
            assert (t.inter_tp_rank, t.inter_dp_rank) == (ir % it, ir // it)
            assert t.tp_rank == t.local_tp_rank + t.inter_tp_rank * lt
            assert t.dp_rank == t.local_dp_rank + t.inter_dp_rank * t.local_dp_size
            assert t.tp_size == lt * it and t.dp_size == t.local_dp_size * t.inter_dp_size
            other = _lib.Topology()
            _lib.check(_lib.load().mixcomm_topology_for_rank(ctypes.byref(t), wr,
                                                              ctypes.byref(other)))
            assert other.as_dict() == t.as_dict()


def test_workspace_plan_layout():
    cfg = _lib.init_config()
    cfg.world_size, cfg.local_size, cfg.local_tp_size = 4, 4, 2
    cfg.grid_size = 24
    plan = _lib.WorkspacePlan()
    _lib.check(_lib.load().mixcomm_workspace_plan(ctypes.byref(cfg), 0, ctypes.byref(plan)))
    assert plan.grid_size == 24 and plan.max_block_size >= cfg.min_block_size
    assert plan.ring_slots >= 1 and plan.vmm_rows >= 1 and plan.nvshmem_rows == 0
    assert plan.vmm_bytes == plan.ring_slots * plan.grid_size * plan.vmm_slot_bytes
    assert plan.nvshmem_bytes == 0 and plan.control_bytes > 0


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_tcp_bootstrap_layout_through_library():
    """Two ranks in two threads meet through the TCP rendezvous; the struct the library fills
    is read through our Bootstrap layout and its allgather callback is called from Python."""
    lib = _lib.load()
    port = _free_port()
    results = {}

    def rank_main(rank):
        opts = _lib.TcpOptions()
        opts.addr = b"127.0.0.1"
        opts.port = port
        opts.timeout_ms = 20000
        opts.token = b"python-binding-test"
        out = ctypes.POINTER(_lib.Bootstrap)()
        st = lib.mixcomm_bootstrap_tcp_create(ctypes.byref(opts), rank, 2, ctypes.byref(out))
        if st != 0:
            results[rank] = _lib.make_error(st)
            return
        bs = out.contents
        send = ctypes.create_string_buffer(b"rank%d!!" % rank, 8)
        recv = ctypes.create_string_buffer(16)
        rc = bs.allgather(bs.ctx, ctypes.addressof(send), ctypes.addressof(recv), 8)
        rc2 = bs.barrier(bs.ctx)
        results[rank] = (bs.rank, bs.size, rc, rc2, recv.raw)
        lib.mixcomm_bootstrap_destroy(out)

    threads = [threading.Thread(target=rank_main, args=(r,)) for r in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for r in (0, 1):
        assert not isinstance(results.get(r), Exception), results.get(r)
        assert results[r] == (r, 2, 0, 0, b"rank0!!\x00rank1!!\x00")


# ------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------


def test_status_to_exception():
    lib = _lib.load()
    out = ctypes.c_int(-1)
    st = lib.mixcomm_op_from_name(b"bogus", ctypes.byref(out))
    assert st == _lib.ERR_INVALID_ARGUMENT
    with pytest.raises(ValueError, match="unknown op 'bogus'") as ei:
        _lib.check(st, "lookup")
    e = ei.value
    assert isinstance(e, MixcommValueError) and isinstance(e, MixcommError)
    assert not isinstance(e, RuntimeError)
    assert e.status == _lib.ERR_INVALID_ARGUMENT
    assert e.status_name == "MIXCOMM_ERR_INVALID_ARGUMENT"
    assert str(e).startswith("lookup: ")
    _lib.check(_lib.SUCCESS)  # no exception
    for status in range(2, _lib.NUM_STATUS):
        cls = _lib.error_class(status)
        assert issubclass(cls, RuntimeError) and not issubclass(cls, ValueError)
        assert _lib.status_name(status).startswith("MIXCOMM_ERR_")
        assert _lib.status_string(status)


def test_run_on_null_handler_is_value_error():
    lib = _lib.load()
    st = lib.mixcomm_run(None, 0, None, None, 1, 8, -1, None)
    assert st == _lib.ERR_INVALID_ARGUMENT
    with pytest.raises(ValueError, match="handler is NULL"):
        _lib.check(st)


def test_failure_is_runtime_error_with_library_message():
    lib = _lib.load()
    port = _free_port()  # nobody listens there
    opts = _lib.TcpOptions()
    opts.addr = b"127.0.0.1"
    opts.port = port
    opts.timeout_ms = 300
    out = ctypes.POINTER(_lib.Bootstrap)()
    st = lib.mixcomm_bootstrap_tcp_create(ctypes.byref(opts), 1, 2, ctypes.byref(out))
    with pytest.raises(RuntimeError, match=r"127\.0\.0\.1:%d" % port) as ei:
        _lib.check(st, "bootstrap")
    assert isinstance(ei.value, MixcommRuntimeError)
    assert ei.value.status == st != 0


def test_library_not_found(monkeypatch, tmp_path):
    monkeypatch.setenv("MIXCOMM_LIBRARY", str(tmp_path / "nope.so"))
    with pytest.raises(OSError, match="MIXCOMM_LIBRARY"):
        _lib.find_library()


# ------------------------------------------------------------------------------------------
# Argument checks of MixedCommHandler (no GPU needed: they come before any CUDA call)
# ------------------------------------------------------------------------------------------

BASE = dict(world_rank=0, world_size=2, local_rank=0, local_size=2, inter_rank=0, inter_size=1,
            local_tp_size=None, local_dp_size=None, inter_tp_size=None, inter_dp_size=None,
            dtype="bfloat16", device=0)


def _make(**kw):
    args = dict(BASE)
    args.update(kw)
    return MixedCommHandler(**args)


@pytest.mark.parametrize("kw, pattern", [
    (dict(dtype="int8"), "dtype should be"),
    (dict(dtype=object()), "dtype should be"),
    (dict(world_rank=5), r"world_rank=5 is outside \[0, 2\)"),
    (dict(world_rank=-1), r"world_rank=-1 is outside"),
    (dict(local_rank=2), r"local_rank=2 is outside"),
    (dict(world_size=3), "world_size=3 but inter_size=1 \\* local_size=2"),
    (dict(local_tp_size=3), "local_tp_size=3 does not divide local_size=2"),
    (dict(local_tp_size=2, local_dp_size=2), r"local_tp_size=2 \* local_dp_size=2 = 4"),
    (dict(inter_dp_size=2), "inter_dp_size=2 does not divide inter_size=1"),
    (dict(world_rank=1, local_rank=0), "ranks are numbered node by node"),
    (dict(local_tp_size="2"), "local_tp_size should be an int or None"),
    (dict(world_size=2.0), "world_size should be an int"),
    (dict(min_block_size=100), "min_block_size=100"),
    (dict(max_block_size=100), "max_block_size=100"),
    (dict(max_block_size=128), "max_block_size=128 is below min_block_size=256"),
    (dict(min_num_steps=0), "min_num_steps=0"),
    (dict(grid_size=-1), "grid_size=-1"),
    (dict(device=-1), "device should be"),
    (dict(device="cpu"), "device should be"),
    (dict(device=None), "device should be"),
])
def test_handler_argument_checks(kw, pattern):
    with pytest.raises(ValueError, match=pattern) as ei:
        _make(**kw)
    assert isinstance(ei.value, MixcommValueError)


def test_handler_argument_checks_with_torch():
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match="dtype should be"):
        _make(dtype=torch.int8)
    with pytest.raises(ValueError, match="dtype should be"):
        _make(dtype=torch.float64)
    with pytest.raises(ValueError, match="device should be a CUDA device"):
        _make(dtype=torch.bfloat16, device=torch.device("cpu"))
    with pytest.raises(ValueError, match="local_tp_size=3 does not divide"):
        _make(dtype=torch.float16, local_tp_size=3, device=torch.device("cuda", 0))


_WORLD1_PROGRAM = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from mixcomm import MixcommRuntimeError, MixedCommHandler, MixedCommOp
try:
    h = MixedCommHandler(0, 1, 0, 1, 0, 1, None, None, None, None, "float32", 0,
                         grid_size=1, use_autotune=False)
except MixcommRuntimeError as e:
    print(json.dumps({"error": str(e), "runtime": isinstance(e, RuntimeError),
                      "status": e.status_name}))
    sys.exit(0)
ops = [o.name for o in h.get_valid_op_list()]
tp, dp = h.tp_size, h.dp_size
h.shutdown()
h.shutdown()  # idempotent
try:
    h.get_valid_mode_list()
    after = "no exception"
except RuntimeError as e:
    after = str(e)
print(json.dumps({"ops": ops, "tp": tp, "dp": dp, "after": after}))
"""


def test_handler_world1_without_or_with_gpu():
    """World size 1 needs no peer: creation reaches CUDA, which fails without a GPU (a
    RuntimeError with the library's message); with a GPU it succeeds and shuts down. In a
    child process, so this process never holds a CUDA context."""
    import json
    import subprocess
    env = dict(os.environ)
    env.pop("MASTER_PORT", None)
    env.pop("MIXCOMM_PORT", None)
    proc = subprocess.run([sys.executable, "-c", _WORLD1_PROGRAM, str(HERE.parent)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    if "error" in res:
        assert res["runtime"] and res["status"].startswith("MIXCOMM_ERR_")
        assert res["error"].startswith("MixedCommHandler: ")
        return
    assert res["ops"] == ["ALLREDUCE", "ALLGATHER", "REDUCESCATTER"]  # tp = dp = 1
    assert (res["tp"], res["dp"]) == (1, 1)
    assert "after shutdown" in res["after"]


# ------------------------------------------------------------------------------------------
# The torch.distributed bridge's callbacks, called through their C function pointers
# ------------------------------------------------------------------------------------------


def test_callback_bootstrap_allgather_and_barrier():
    calls = []

    def allgather(data):
        calls.append(("allgather", data))
        return [data.replace(b"1", str(r).encode()) for r in range(3)]

    def barrier():
        calls.append(("barrier",))

    bs = _bootstrap.CallbackBootstrap(1, 3, allgather, barrier, "test group")
    s = bs.struct
    assert (s.rank, s.size) == (1, 3)
    send = ctypes.create_string_buffer(b"r1", 2)
    recv = ctypes.create_string_buffer(6)
    assert s.allgather(s.ctx, ctypes.addressof(send), ctypes.addressof(recv), 2) == 0
    assert recv.raw == b"r0r1r2"
    assert s.barrier(s.ctx) == 0
    assert calls == [("allgather", b"r1"), ("barrier",)]
    assert bs.failure_note() == ""
    assert not s.destroy  # NULL: mixcomm_bootstrap_destroy has nothing to call
    _lib.load().mixcomm_bootstrap_destroy(ctypes.pointer(s))


def test_callback_bootstrap_exceptions_become_nonzero():
    def allgather(data):
        raise ConnectionError("peer 2 went away")

    def barrier():
        raise KeyboardInterrupt()

    bs = _bootstrap.CallbackBootstrap(0, 2, allgather, barrier, "test group")
    s = bs.struct
    buf = ctypes.create_string_buffer(8)
    assert s.allgather(s.ctx, ctypes.addressof(buf), ctypes.addressof(buf), 4) == \
        _lib.ERR_BOOTSTRAP
    assert "ConnectionError: peer 2 went away" in bs.failure_note()
    bs.clear()
    assert s.barrier(s.ctx) == _lib.ERR_BOOTSTRAP
    assert "KeyboardInterrupt" in bs.failure_note()

    # A wrong number of pieces or a wrong size is a failure too, never a silent success.
    bs2 = _bootstrap.CallbackBootstrap(0, 2, lambda d: [d], lambda: None)
    assert bs2.struct.allgather(None, ctypes.addressof(buf), ctypes.addressof(buf), 4) != 0
    bs3 = _bootstrap.CallbackBootstrap(0, 2, lambda d: [d, d + b"x"], lambda: None)
    assert bs3.struct.allgather(None, ctypes.addressof(buf), ctypes.addressof(buf), 4) != 0


def test_destroy_callback_field_order():
    called = []
    bs = _lib.Bootstrap()
    bs.ctx = 1234
    cb = _lib.DESTROY_FN(lambda ctx: called.append(ctx))
    bs.destroy = cb
    _lib.load().mixcomm_bootstrap_destroy(ctypes.pointer(bs))
    assert called == [1234]


# ------------------------------------------------------------------------------------------
# Version and packaging
# ------------------------------------------------------------------------------------------


def test_library_version():
    parts = [int(re.search(r"#define MIXCOMM_VERSION_%s (\d+)" % k, _header()).group(1))
             for k in ("MAJOR", "MINOR", "PATCH")]
    assert _lib.version_tuple() == tuple(parts)
    assert _lib.version() == parts[0] * 10000 + parts[1] * 100 + parts[2]
    assert mixcomm.library_version() == "%d.%d.%d" % tuple(parts)
    assert mixcomm.__version__ == mixcomm.library_version()
    # The wheel's version is CMake's project version (pyproject.toml reads it from there).
    cmake = (REPO / "CMakeLists.txt").read_text()
    assert re.search(r"project\(mixcomm VERSION %s\b" % re.escape(mixcomm.__version__), cmake)
    assert "CMakeLists.txt" in (REPO / "pyproject.toml").read_text()


def test_run_mixed_comm_needs_torch_or_checks_args():
    import importlib.util
    if importlib.util.find_spec("torch") is None:
        with pytest.raises(ImportError, match="PyTorch"):
            run_mixed_comm(MixedCommOp.ALLREDUCE, None, None)
        return
    with pytest.raises(ValueError, match="Invalid op"):
        run_mixed_comm(17, None, None)
    with pytest.raises(ValueError, match="handler should be a MixedCommHandler"):
        run_mixed_comm(MixedCommOp.ALLREDUCE, object(), None)
