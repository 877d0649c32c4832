# SPDX-License-Identifier: Apache-2.0
"""Time PyTorch's own residual add + RMSNorm (what an engine runs after a collective when the
library does not fuse it), in CUDA graphs, for the shapes of mixcomm-bench-epilogue.

    python3 tools/bench_torch_norm.py [--rows 1,4,16,64,256] [--hidden 4096,7168] [--dtype bf16]

Prints a markdown table: microseconds per (add + rms_norm), median of the replays of a graph of
--graph-calls pairs. The best of this and mixcomm's own separate kernel is the "unfused" baseline
of docs/results/epilogue-h200.md (add this to the plain call's time)."""
import argparse
import statistics

import torch
import torch.nn.functional as F


def parse_list(text):
    return [int(v) for v in text.split(",") if v]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=parse_list, default=[1, 4, 16, 64, 256])
    p.add_argument("--hidden", type=parse_list, default=[4096, 7168])
    p.add_argument("--dtype", default="bf16", choices=["bf16", "fp16", "fp32"])
    p.add_argument("--graph-calls", type=int, default=10)
    p.add_argument("--reps", type=int, default=15)
    a = p.parse_args()
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[a.dtype]
    dev = torch.device("cuda")
    print(f"\n### PyTorch {torch.__version__} residual add + F.rms_norm, {a.dtype}, "
          f"{torch.cuda.get_device_name()}, graphs of {a.graph_calls}, median of {a.reps}\n")
    print("| rows | hidden | torch add + rms_norm us |\n|---|---|---|")
    for hidden in a.hidden:
        for rows in a.rows:
            x = torch.randn(rows, hidden, device=dev, dtype=dtype)
            res = torch.randn(rows, hidden, device=dev, dtype=dtype)
            gamma = torch.randn(hidden, device=dev, dtype=dtype)
            def step():
                res.add_(x)
                return F.rms_norm(res, (hidden,), gamma, 1e-6)  # output from the graph's pool

            stream = torch.cuda.Stream()
            with torch.cuda.stream(stream):
                for _ in range(3):
                    step()
            torch.cuda.synchronize()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                for _ in range(a.graph_calls):
                    step()
            times = []
            for i in range(3 + a.reps):
                start = torch.cuda.Event(enable_timing=True)
                stop = torch.cuda.Event(enable_timing=True)
                start.record()
                graph.replay()
                stop.record()
                stop.synchronize()
                if i >= 3:
                    times.append(start.elapsed_time(stop) * 1e3 / a.graph_calls)
            print(f"| {rows} | {hidden} | {statistics.median(times):.2f} |", flush=True)


if __name__ == "__main__":
    main()
