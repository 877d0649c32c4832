#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A DP-attention decoder layer (the pattern SGLang uses) on mixcomm, compiled with
torch.compile and replayed as CUDA graphs for several decode steps, checked against a float64
reference computed from every rank's inputs.

World = dp DP groups x tp ranks. Attention runs with TP inside each DP group (each rank holds
heads/tp heads of its group's sequences); the MLP is TP-sharded over all ranks and runs on every
DP group's tokens:

    r1   = x + residual ; h = RMSNorm(r1)             own tokens [T, H], same on a group's ranks
    a    = attention(h) @ Wo_shard (+ r1 on TP rank 0) partial sum over the TP group
    full = ALLREDUCE_ALLGATHER(a)                      [dp*T, H]: every group's r1 + attention
    residual' = full[dp_rank*T : (dp_rank+1)*T]
    m    = MLP_shard(RMSNorm(full))                    partial sum over all ranks
    y    = REDUCESCATTER_ALLREDUCE(m)                  [T, H]: own tokens, summed over all ranks

Each decode step feeds one new token per sequence (x, residual) and attends over a cached
context of --kv-len positions plus the token itself (the cache is not extended between steps,
which keeps the step a fixed CUDA graph without in-graph cache writes).

    torchrun --nproc-per-node 4 examples/dp_attention_layer.py            # TP 2 x DP 2, a GPU per rank
    bash examples/run_dp_attention_mps.sh --nproc 4                       # 4 ranks sharing one GPU (MPS)
    torchrun --nproc-per-node 8 examples/dp_attention_layer.py --tp 4 --hidden 4096 --tokens 16

--modes picks what runs (default eager,reduce-overhead,manual-graph): "eager" (plain calls),
"compile" (torch.compile, no CUDA graphs), "reduce-overhead" (torch.compile's CUDA graphs) and
"manual-graph" (the compiled layer captured into torch.cuda.CUDAGraph by hand, as vLLM does).
Exit code 0 when every step of every mode matches the reference and the ranks of each TP group
hold the same bits.
"""
import argparse
import ctypes
import datetime
import hashlib
import importlib.util
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

if importlib.util.find_spec("mixcomm") is None:  # not installed: use this checkout's package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))
from mixcomm import MixedCommHandler, MixedCommOp, run_mixed_comm  # noqa: E402

AR_AG = MixedCommOp.ALLREDUCE_ALLGATHER
RS_AR = MixedCommOp.REDUCESCATTER_ALLREDUCE
MODES = ("eager", "compile", "reduce-overhead", "manual-graph")


@dataclass
class Config:
    tokens: int = 4          # new tokens (sequences) per DP group and step
    hidden: int = 1024
    heads: int = 8
    head_dim: int = 128
    intermediate: int = 2048
    kv_len: int = 64
    eps: float = 1e-6
    seed: int = 1234


# ------------------------------------------------------------------------------------------
# Weights and inputs: every rank makes all of them from seeds (full weights, every DP group's
# inputs), takes its shard for the layer, and uses everything for the reference.
# ------------------------------------------------------------------------------------------


def _randn(shape, seed, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float32) * scale


def full_weights(cfg: Config) -> dict:
    H, NH, D, I = cfg.hidden, cfg.heads, cfg.head_dim, cfg.intermediate
    s = cfg.seed
    return {
        "w_in": 1.0 + _randn((H,), s + 1, 0.1),
        "w_post": 1.0 + _randn((H,), s + 2, 0.1),
        "wqkv": _randn((H, 3, NH, D), s + 3, H ** -0.5),
        "wo": _randn((NH, D, H), s + 4, (NH * D) ** -0.5),
        "wgu": _randn((H, 2, I), s + 5, H ** -0.5),
        "wd": _randn((I, H), s + 6, I ** -0.5),
    }


def kv_cache(cfg: Config, group: int):
    """The cached keys and values of DP group `group`'s sequences: [T, heads, kv_len, D] each."""
    shape = (cfg.tokens, cfg.heads, cfg.kv_len, cfg.head_dim)
    return _randn(shape, cfg.seed + 1000 + 2 * group), _randn(shape, cfg.seed + 1001 + 2 * group)


def step_inputs(cfg: Config, step: int, group: int, dtype):
    """Hidden states and residual of DP group `group`'s new tokens at a decode step."""
    shape = (cfg.tokens, cfg.hidden)
    base = cfg.seed + 100000 * (step + 1) + 10 * group
    return _randn(shape, base).to(dtype), _randn(shape, base + 1).to(dtype)


# ------------------------------------------------------------------------------------------
# The layer (one rank's shard)
# ------------------------------------------------------------------------------------------


def rms_norm(x, w, eps):
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps) * w.float()).to(x.dtype)


class DPAttentionLayer(torch.nn.Module):
    def __init__(self, cfg: Config, weights: dict, handler: MixedCommHandler, world_rank: int,
                 world_size: int, dtype, device):
        super().__init__()
        self.cfg, self.handler = cfg, handler
        self.tp_rank, self.dp_rank = handler.tp_rank, handler.dp_rank
        tp, NH, D, H = handler.tp_size, cfg.heads, cfg.head_dim, cfg.hidden
        if NH % tp or cfg.intermediate % world_size:
            raise ValueError(f"heads={NH} must divide by tp={tp} and intermediate="
                             f"{cfg.intermediate} by the world size {world_size}")
        self.nh = NH // tp
        heads = slice(self.tp_rank * self.nh, (self.tp_rank + 1) * self.nh)
        il = cfg.intermediate // world_size  # the MLP is sharded over every rank
        cols = slice(world_rank * il, (world_rank + 1) * il)

        def buf(name, t):
            self.register_buffer(name, t.contiguous().to(device=device, dtype=dtype))

        buf("w_in", weights["w_in"])
        buf("w_post", weights["w_post"])
        buf("wqkv", weights["wqkv"][:, :, heads].reshape(H, 3 * self.nh * D))
        buf("wo", weights["wo"][heads].reshape(self.nh * D, H))
        buf("wgu", weights["wgu"][:, :, cols].reshape(H, 2 * il))
        buf("wd", weights["wd"][cols])
        k, v = kv_cache(cfg, self.dp_rank)
        buf("cache_k", k[:, heads])
        buf("cache_v", v[:, heads])

    def forward(self, x, residual):
        cfg, T = self.cfg, x.shape[0]
        r1 = x + residual
        h = rms_norm(r1, self.w_in, cfg.eps)
        q, k, v = (h @ self.wqkv).view(T, 3, self.nh, cfg.head_dim).unbind(1)
        keys = torch.cat([self.cache_k, k.unsqueeze(2)], dim=2)      # [T, nh, L+1, D]
        values = torch.cat([self.cache_v, v.unsqueeze(2)], dim=2)
        scores = torch.einsum("thd,thld->thl", q.float(), keys.float()) * cfg.head_dim ** -0.5
        p = torch.softmax(scores, dim=-1)
        attn = torch.einsum("thl,thld->thd", p, values.float()).to(x.dtype)
        partial = attn.reshape(T, self.nh * cfg.head_dim) @ self.wo  # partial over the TP group
        if self.tp_rank == 0:
            partial = partial + r1  # the residual, counted once in the TP group's sum
        full = run_mixed_comm(AR_AG, self.handler, partial)          # [dp*T, H], every group
        new_residual = full[self.dp_rank * T:(self.dp_rank + 1) * T]
        hn = rms_norm(full, self.w_post, cfg.eps)
        gate, up = (hn @ self.wgu).chunk(2, dim=-1)
        mlp = (torch.nn.functional.silu(gate.float()) * up.float()).to(x.dtype) @ self.wd
        out = run_mixed_comm(RS_AR, self.handler, mlp)               # [T, H], own tokens
        return out, new_residual


# ------------------------------------------------------------------------------------------
# Reference: the whole layer, unsharded, in float64, over every DP group's tokens
# ------------------------------------------------------------------------------------------


def reference(cfg: Config, W: dict, xs, residuals, caches, dtype):
    """Per DP group: (layer output, new residual), from the weights and caches as the layer
    holds them (rounded to dtype) and exact arithmetic elsewhere."""
    H, NH, D = cfg.hidden, cfg.heads, cfg.head_dim
    W = {k: v.to(dtype).double() for k, v in W.items()}
    caches = [(k.to(dtype), v.to(dtype)) for k, v in caches]

    def rms(x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + cfg.eps) * w

    fulls = []
    for x, res, (ck, cv) in zip(xs, residuals, caches):
        r1 = x.double() + res.double()
        h = rms(r1, W["w_in"])
        q, k, v = (h @ W["wqkv"].reshape(H, 3 * NH * D)).view(-1, 3, NH, D).unbind(1)
        keys = torch.cat([ck.double(), k.unsqueeze(2)], dim=2)
        values = torch.cat([cv.double(), v.unsqueeze(2)], dim=2)
        p = torch.softmax(torch.einsum("thd,thld->thl", q, keys) * D ** -0.5, dim=-1)
        attn = torch.einsum("thl,thld->thd", p, values).reshape(-1, NH * D)
        fulls.append(attn @ W["wo"].reshape(NH * D, H) + r1)
    full = torch.cat(fulls)
    hn = rms(full, W["w_post"])
    gu = hn @ W["wgu"].reshape(H, -1)
    gate, up = gu.view(-1, 2, cfg.intermediate).unbind(1)
    out = (torch.nn.functional.silu(gate) * up) @ W["wd"]
    T = cfg.tokens
    return ([out[g * T:(g + 1) * T] for g in range(len(xs))], fulls)


def _error(got, ref):
    """(max abs error / max |ref|, relative L2 error)."""
    d = got.double().cpu() - ref
    scale = ref.abs().max().item() or 1.0
    return d.abs().max().item() / scale, (d.norm() / (ref.norm() or 1.0)).item()


def allgather_json(obj, group=None):
    """Every rank's obj (JSON-able), over a CPU process group (no numpy needed, unlike
    dist.all_gather_object)."""
    data = json.dumps(obj).encode()
    world = dist.get_world_size(group)
    n = torch.tensor([len(data)], dtype=torch.int64)
    sizes = [torch.zeros(1, dtype=torch.int64) for _ in range(world)]
    dist.all_gather(sizes, n, group=group)
    cap = max(int(s.item()) for s in sizes)
    send = torch.zeros(cap, dtype=torch.uint8)
    send[:len(data)] = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    recv = [torch.zeros(cap, dtype=torch.uint8) for _ in range(world)]
    dist.all_gather(recv, send, group=group)
    return [json.loads(ctypes.string_at(t.data_ptr(), int(s.item())))
            for t, s in zip(recv, sizes)]


def _digest(t) -> str:
    t = t.detach().contiguous().cpu()
    n = t.numel() * t.element_size()
    return hashlib.sha1(ctypes.string_at(t.data_ptr(), n) if n else b"").hexdigest()


# ------------------------------------------------------------------------------------------
# Decode steps in each mode
# ------------------------------------------------------------------------------------------


def run(cfg: Config, handler: MixedCommHandler, world_rank: int, world_size: int, dtype,
        device, modes, steps: int, group=None, backend="inductor", log=print) -> bool:
    """Run `steps` decode steps in each mode; check every output; True if all passed.
    group: a process group for comparing the TP ranks' bits (gloo; None = default)."""
    W = full_weights(cfg)
    dp = handler.dp_size
    layer = DPAttentionLayer(cfg, W, handler, world_rank, world_size, dtype, device)
    caches = [kv_cache(cfg, g) for g in range(dp)]
    # bf16 rounds ~10 times along the layer: about 7e-3 relative L2 error measured (3e-3 for the
    # residual); a wrong or missing contribution in a collective gives 0.1 to 1.
    max_bound, l2_bound = 0.05, 0.02
    ok = True
    cuda = device.type == "cuda"
    counters = torch._dynamo.utils.counters

    def sync():
        if cuda:
            torch.cuda.synchronize(device)

    for mode in modes:
        counters.clear()
        torch._dynamo.reset()
        worst = (0.0, 0.0)
        digests = []
        failures = []
        t_replay = []
        if mode == "eager":
            fn = layer
        elif mode == "compile":
            fn = torch.compile(layer, fullgraph=True, backend=backend)
        elif mode == "reduce-overhead":
            fn = torch.compile(layer, mode="reduce-overhead", fullgraph=True)
        elif mode == "manual-graph":
            compiled = torch.compile(layer, fullgraph=True, backend=backend)
            static_x = torch.zeros(cfg.tokens, cfg.hidden, dtype=dtype, device=device)
            static_r = torch.zeros_like(static_x)
            side = torch.cuda.Stream(device)
            side.wait_stream(torch.cuda.current_stream(device))
            with torch.cuda.stream(side):
                compiled(static_x, static_r)  # warm-up (compiles; a collective like any call)
            torch.cuda.current_stream(device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_out = compiled(static_x, static_r)
        else:
            raise ValueError(f"unknown mode {mode!r}")
        for step in range(steps):
            inputs = [step_inputs(cfg, step, g, dtype) for g in range(dp)]
            x, res = (t.to(device) for t in inputs[handler.dp_rank])
            t0 = time.perf_counter()
            if mode == "manual-graph":
                static_x.copy_(x)
                static_r.copy_(res)
                graph.replay()
                out, new_res = static_out
            else:
                if mode == "reduce-overhead":
                    torch.compiler.cudagraph_mark_step_begin()
                out, new_res = fn(x, res)
            sync()
            t_replay.append(time.perf_counter() - t0)
            ref_out, ref_res = reference(cfg, W, [i[0] for i in inputs], [i[1] for i in inputs],
                                         caches, dtype)
            for name, got, ref in (("output", out, ref_out[handler.dp_rank]),
                                   ("residual", new_res, ref_res[handler.dp_rank])):
                e_max, e_l2 = _error(got, ref)
                worst = (max(worst[0], e_max), max(worst[1], e_l2))
                if not (e_max <= max_bound and e_l2 <= l2_bound):
                    failures.append(f"step {step} {name}: max error {e_max:.3g} (bound "
                                    f"{max_bound}), L2 error {e_l2:.3g} (bound {l2_bound})")
                digests.append(_digest(got))
            del out, new_res
        if mode == "manual-graph":
            del graph, static_out
            sync()
        breaks = sum(counters["graph_break"].values())
        if mode != "eager" and breaks:
            failures.append(f"{breaks} graph breaks: {dict(counters['graph_break'])}")
        skips = counters["inductor"]["cudagraph_skips"]
        if mode == "reduce-overhead" and skips:
            failures.append(f"torch.compile did not use CUDA graphs ({skips} skips)")
        # The ranks of a TP group (same dp_rank) must hold the same bits.
        for r, (d, theirs) in enumerate(allgather_json([handler.dp_rank, digests], group)):
            if d == handler.dp_rank and theirs != digests:
                failures.append(f"rank {r} (same TP group) holds other bits")
        # Every rank's verdict, so that all ranks print and exit alike.
        bad = {r: f for r, f in enumerate(allgather_json(failures, group)) if f}
        if world_rank == 0:
            per_step = sorted(t_replay[2:] or t_replay)[len(t_replay[2:] or t_replay) // 2]
            log(f"{mode:<16} {steps} steps: max error {worst[0]:.2e}, L2 error {worst[1]:.2e}"
                f", {per_step * 1e6:8.1f} us per step (host-timed, incl. sync)  "
                f"{'OK' if not bad else 'FAILED'}")
            for r, f in sorted(bad.items()):
                for line in f[:5]:
                    log(f"  rank {r}: {line}")
        ok = ok and not bad
    return ok


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tp", type=int, default=2, help="attention TP size inside each DP group "
                    "(default 2; DP = world / tp)")
    ap.add_argument("--tokens", type=int, default=Config.tokens,
                    help="new tokens per DP group and step (default %(default)s)")
    ap.add_argument("--hidden", type=int, default=Config.hidden)
    ap.add_argument("--heads", type=int, default=Config.heads)
    ap.add_argument("--head-dim", type=int, default=Config.head_dim)
    ap.add_argument("--intermediate", type=int, default=Config.intermediate)
    ap.add_argument("--kv-len", type=int, default=Config.kv_len)
    ap.add_argument("--steps", type=int, default=6, help="decode steps per mode")
    ap.add_argument("--modes", default="eager,reduce-overhead,manual-graph",
                    help=f"comma-separated, of {', '.join(MODES)} (default %(default)s)")
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16"])
    args = ap.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    for m in modes:
        if m not in MODES:
            ap.error(f"unknown mode {m!r}")

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    local_size = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    node, nodes = rank // local_size, world // local_size
    ngpu = torch.cuda.device_count()
    device = torch.device("cuda", local_rank % ngpu)
    torch.cuda.set_device(device)
    share = -(-local_size // ngpu)  # ranks per GPU
    # NCCL refuses ranks that share a GPU: then the default group is gloo (mixcomm needs only
    # a CPU group for its setup, and makes a gloo group of its own otherwise).
    dist.init_process_group("nccl" if share == 1 else "gloo",
                            timeout=datetime.timedelta(seconds=120))
    cpu_group = dist.new_group(backend="gloo") if share == 1 else None
    grid = None
    if share > 1:  # every rank's kernel must fit on the GPU at once
        grid = max(1, min(32, torch.cuda.get_device_properties(device).multi_processor_count
                          // share))
    if local_size % args.tp:
        ap.error(f"--tp {args.tp} must divide the ranks per node ({local_size})")
    dtype = getattr(torch, args.dtype)
    cfg = Config(tokens=args.tokens, hidden=args.hidden, heads=args.heads,
                 head_dim=args.head_dim, intermediate=args.intermediate, kv_len=args.kv_len)

    # From the existing process group; COLLECTIVE. TP inside each node, DP over the rest.
    handler = MixedCommHandler(rank, world, local_rank, local_size, node, nodes, args.tp, None,
                               1, None, dtype, device, grid_size=grid, use_autotune=False)
    if rank == 0:
        print(f"{handler!r}\nlayer: {cfg}, {args.steps} decode steps per mode, {world} ranks "
              f"({share} per GPU), torch {torch.__version__}", flush=True)
    try:
        ok = run(cfg, handler, rank, world, dtype, device, modes, args.steps, group=cpu_group,
                 log=lambda s: print(s, flush=True))
    finally:
        torch.cuda.synchronize()
        handler.shutdown()  # COLLECTIVE, after every graph that holds its calls is gone
    if rank == 0:
        print("PASSED" if ok else "FAILED", flush=True)
    dist.destroy_process_group()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
