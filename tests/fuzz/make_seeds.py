#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Write the seed inputs of the fuzz targets (valid messages and files, and a few near misses)
into tests/fuzz/corpus/<target>/. Each target's input layout is described at the top of its
source file; these seeds follow it, so that fuzzing starts from messages the library accepts.

    python3 tests/fuzz/make_seeds.py [output directory]
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "corpus")

TCP_MAGIC, TCP_VERSION = 0x4D584342, 1
HELLO, ACCEPTED, OK, REJECT, ABORT, DATA, RESULT, ERROR = range(1, 9)
TOKEN = b"fuzz-job-7f3a9c"  # fuzz_tcp_hello.c's job token
FDX_MAGIC = 0x4D584644
CACHE_KEY = ("v=1;world=8;local=8;inter=1;ltp=4;ldp=2;itp=1;idp=1;dtype=bfloat16;"
             "gpu=NVIDIA H100 80GB HBM3;driver=12040;lib=100;grid=132;maxblock=0;"
             "minblock=256;minsteps=1;share=0;modes=0x1ff;")  # fuzz_cache.c's key
OPS = ["ALLREDUCE", "ALLGATHER", "REDUCESCATTER", "ALLREDUCE_ALLGATHER",
       "REDUCESCATTER_ALLREDUCE"]
MODES = ["FUSED_OPT_WAITS_MC", "FUSED_OPT_WAITS_UC", "FUSED_OPT_BYTES1_MC",
         "FUSED_OPT_BYTES1_UC", "FUSED_OPT_BYTES2_MC", "FUSED_OPT_BYTES2_UC", "NCCL_ONE",
         "NCCL_TP_DP"]


def hdr(typ, a=0, b=0, seq=0, length=0, magic=TCP_MAGIC, version=TCP_VERSION):
    return struct.pack(">IIIIIIQQ", magic, version, typ, a, b, 0, seq, length)


def write(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def tcp_hello():
    token = TOKEN.ljust(128, b"\0")
    size4 = bytes([2])  # size = 2 + byte % 16 = 4
    good = hdr(HELLO, 1, 4, 0, 128) + token
    write("tcp_hello", "admit-rank1", size4 + b"\x00\x00" + good)
    write("tcp_hello", "admit-rank3-chunked", size4 + b"\x00\x05" + hdr(HELLO, 3, 4, 0, 128) + token)
    write("tcp_hello", "wrong-token", size4 + b"\x00\x00" + hdr(HELLO, 1, 4, 0, 128) +
          b"another-job".ljust(128, b"\0"))
    write("tcp_hello", "duplicate-rank", size4 + b"\x01\x00" + good)
    write("tcp_hello", "rank-out-of-range", size4 + b"\x00\x00" + hdr(HELLO, 4, 4, 0, 128) + token)
    write("tcp_hello", "size-mismatch", size4 + b"\x00\x00" + hdr(HELLO, 1, 8, 0, 128) + token)
    write("tcp_hello", "version-2", size4 + b"\x00\x00" + hdr(HELLO, 1, 4, 0, 128, version=2))
    write("tcp_hello", "huge-length", size4 + b"\x00\x00" + hdr(HELLO, 1, 4, 0, 1 << 62))
    write("tcp_hello", "http", size4 + b"\x00\x00" + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 4)
    write("tcp_hello", "half-hello", size4 + b"\x00\x00" + good[:100])


def tcp_messages():
    seq, nbytes, rank = 7, 64, 3

    def msg(kind, body):
        return bytes([kind]) + struct.pack(">II", seq, nbytes) + bytes([rank - 1]) + body

    write("tcp_messages", "data", msg(0, hdr(DATA, 0, 0, seq, nbytes)))
    write("tcp_messages", "data-other-call", msg(0, hdr(DATA, 0, 0, seq + 1, nbytes)))
    total = nbytes * (1 + rank % 8)
    write("tcp_messages", "result", msg(1, hdr(RESULT, 0, 0, seq, total)))
    text = b"bootstrap allgather #7 failed: rank 2 closed the connection"
    write("tcp_messages", "error", msg(1, hdr(ERROR, 11, 0, seq, len(text)) + text))
    write("tcp_messages", "accepted", msg(2, hdr(ACCEPTED, 59000)))
    write("tcp_messages", "ok", msg(2, hdr(OK)))
    reason = b"wrong job token: this process belongs to another job"
    write("tcp_messages", "reject", msg(2, hdr(REJECT, 12, 0, 0, len(reason)) + reason))
    write("tcp_messages", "abort", msg(2, hdr(ABORT, 5, 0, 0, len(reason)) + reason))
    write("tcp_messages", "notice", msg(3, hdr(ERROR, 5, 0, seq, len(text)) + text + b"tail"))
    write("tcp_messages", "text", msg(4, b"plain \x1b[31mred\x1b[0m text\x00with a NUL\n"))


def fd_record(pid, local_rank, local_size, directory=b""):
    return struct.pack("<IiIiii", FDX_MAGIC, pid, 1000, local_rank, local_size, 0) + \
        directory.ljust(100, b"\0")


def fdx_hello(local_rank, world_rank, pid):
    return struct.pack(">IIII", FDX_MAGIC, local_rank, world_rank, pid)


def fd_exchange():
    # layout: local_size byte (1 + b % 8), local_rank, first (b % 4), force, taken, cred
    def layout(local_size, local_rank, first, force, taken=0, cred=0):
        return bytes([local_size - 1, local_rank, first, force, taken, cred])

    recs = b"".join(fd_record(100 + i, i, 4, b"/tmp/mixcomm-abc123" if i == 0 else b"")
                    for i in range(4))
    hello = fdx_hello(1, 1, 101)
    write("fd_exchange", "hello-one-fd", layout(4, 0, 0, 0, 0, 1) + recs +
          bytes([16, 1]) + hello)
    write("fd_exchange", "hello-split", layout(4, 0, 0, 0, 0, 1) + recs +
          bytes([5, 1]) + hello[:5] + bytes([11, 0]) + hello[5:])
    write("fd_exchange", "hello-many-fds", layout(4, 0, 0, 0) + recs + bytes([16, 10]) + hello)
    write("fd_exchange", "hello-no-fd", layout(4, 0, 0, 0) + recs + bytes([16, 0]) + hello)
    write("fd_exchange", "hello-wrong-pid", layout(4, 0, 0, 0) + recs + bytes([16, 1]) +
          fdx_hello(1, 1, 999))
    write("fd_exchange", "hello-self", layout(4, 0, 0, 0) + recs + bytes([16, 1]) +
          fdx_hello(0, 0, 100))
    recs2 = b"".join(fd_record(0, i, 2) for i in range(2))
    write("fd_exchange", "forced-second-node", layout(2, 1, 2, 7) + recs2 +
          bytes([16, 2]) + fdx_hello(0, 2, 0))
    write("fd_exchange", "truncated", layout(4, 2, 0, 3) + recs + bytes([9, 1]) + hello[:9])


def fnv1a64(data):
    h = 14695981039346656037
    for b in data:
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


def cache_file(ops_mask, nb, pick):
    body = "mixcomm-autotune 1\nkey %s\nbuckets %d\n" % (CACHE_KEY, nb)
    for op in range(5):
        if ops_mask >> op & 1:
            for b in range(nb):
                body += "%s %d %s\n" % (OPS[op], b, pick(op, b))
    body = body.encode()
    return body + b"checksum %016x\n" % fnv1a64(body)


def cache():
    def uc(op, b):
        return MODES[1] if b < 3 else MODES[3]

    def nccl(op, b):
        return MODES[6]
    # config byte: nb = 1 + (c & 15) % 15, modes mask index (c >> 4) & 3, load when c >> 6 == 3
    write("cache", "fused-4-buckets", bytes([3, 0x18]) + cache_file(0x18, 4, uc))
    write("cache", "nccl-only", bytes([0x30 | 0, 0x01]) + cache_file(0x01, 1, nccl))
    f = cache_file(0x07, 15, uc)
    write("cache", "three-ops-15-buckets", bytes([14, 0x07]) + f)
    write("cache", "loaded-from-disk", bytes([0xC3, 0x18]) + cache_file(0x18, 4, uc) + b"")
    write("cache", "truncated", bytes([3, 0x18]) + cache_file(0x18, 4, uc)[:-20])
    write("cache", "no-ops", bytes([3, 0x00]) + cache_file(0x00, 4, uc))
    # Sealed by the target (ops byte bit 7): the content only, the target appends the checksum.
    unsealed = cache_file(0x18, 4, uc).rsplit(b"checksum", 1)[0]
    write("cache", "sealed-fused", bytes([3, 0x98]) + unsealed)
    write("cache", "sealed-three-ops", bytes([14, 0x87]) +
          cache_file(0x07, 15, uc).rsplit(b"checksum", 1)[0])
    write("cache", "sealed-other-key", bytes([3, 0x98]) + unsealed.replace(b"world=8", b"world=9"))
    # Inputs of findings (docs/reliability.md, section 7).
    write("cache", "finding-short-last-line", bytes([3, 0x18]) + b"mixcomm-autotune 1\nx\n")
    write("cache", "finding-escape-in-key", bytes([3, 0x98]) +
          unsealed.replace(b"world=8", b"world=\x1b[2J"))


def tool_args():
    def args(tool, flags, *a):
        return bytes([tool, flags]) + b"\0".join(x.encode() for x in a)

    write("tool_args", "info-basic", args(0, 0, "--world-size", "8", "--local-size", "8"))
    write("tool_args", "info-full", args(0, 0, "--world-size=16", "--local-size=8",
                                         "--local-tp-size=4", "--inter-dp-size", "2",
                                         "--dtype", "fp32", "--grid-size", "66",
                                         "--max-block-size", "512", "--no-autotune", "--json"))
    write("tool_args", "info-bad", args(0, 0, "--world-size", "8x", "--local-size", "-3"))
    write("tool_args", "perf-basic", args(1, 0, "-n", "4", "-b", "1K", "-e", "16M", "-f", "2",
                                          "--op", "allreduce", "--mode", "fused"))
    write("tool_args", "perf-launcher", args(1, 3, "8", "4", "--local-tp-size", "2", "-d",
                                             "fp16", "--row-bytes", "4KiB", "-G", "-g", "5",
                                             "--dry-run"))
    write("tool_args", "perf-lists", args(1, 0, "-o", "ALLREDUCE_ALLGATHER,REDUCESCATTER_ALLREDUCE",
                                          "-m", "FUSED_OPT_WAITS_UC,NCCL_ONE,all", "-n", "8",
                                          "--local-tp-size", "4", "--json", "out.json"))
    write("tool_args", "numbers", args(2, 0, "0", "-9223372036854775808", "+17",
                                       "9223372036854775808", " 5", "1e3", "0x10"))
    write("tool_args", "finding-leading-space", args(2, 1, " 5", "\t7", "\n8"))
    write("tool_args", "finding-launcher-atoi", args(1, 1, "4x", "--dry-run"))


def env():
    names = ["MIXCOMM_ADDR", "MASTER_ADDR", "MIXCOMM_PORT", "MASTER_PORT", "MIXCOMM_JOB_TOKEN",
             "TORCHELASTIC_RUN_ID", "MIXCOMM_BOOTSTRAP_TIMEOUT_MS", "MIXCOMM_TIMEOUT_MS",
             "MIXCOMM_COST_INTRA_LAT_US", "MIXCOMM_COST_INTRA_GBPS", "MIXCOMM_COST_INTER_LAT_US",
             "MIXCOMM_COST_INTER_GBPS", "MIXCOMM_COST_NCCL_LAT_US", "MIXCOMM_CACHE_DIR",
             "XDG_CACHE_HOME", "HOME", "MIXCOMM_SOCKET_DIR", "XDG_RUNTIME_DIR", "MIXCOMM_LOG",
             "MIXCOMM_LOG_FILE", "MIXCOMM_COST_KERNEL_US"]  # fuzz_env.c's list, in its order

    def pairs(flags, size, *kv):
        out = bytes([flags, size])
        for k, v in kv:
            idx = names.index(k) if k is not None else len(names)
            out += bytes([idx]) + v.encode() + b"\0"
        return out

    write("env", "launcher", pairs(0, 3, ("MASTER_ADDR", "10.0.0.1"), ("MASTER_PORT", "29500"),
                                   ("TORCHELASTIC_RUN_ID", "job-42")))
    write("env", "mixcomm", pairs(0, 3, ("MIXCOMM_ADDR", "::1"), ("MIXCOMM_PORT", "1234"),
                                  ("MIXCOMM_BOOTSTRAP_TIMEOUT_MS", "1500"),
                                  ("MIXCOMM_TIMEOUT_MS", "2000")))
    write("env", "bad-numbers", pairs(0, 3, ("MIXCOMM_PORT", "70000"),
                                      ("MIXCOMM_TIMEOUT_MS", "5000abc"),
                                      ("MIXCOMM_BOOTSTRAP_TIMEOUT_MS", "-1")))
    write("env", "cost", pairs(0, 1, ("MIXCOMM_COST_INTRA_LAT_US", "0"),
                               ("MIXCOMM_COST_INTRA_GBPS", "30"),
                               ("MIXCOMM_COST_INTER_GBPS", "12.5"),
                               ("MIXCOMM_COST_NCCL_LAT_US", "1e6")))
    write("env", "paths", pairs(0, 2, ("MIXCOMM_CACHE_DIR", "/tmp/cache/"),
                                ("MIXCOMM_SOCKET_DIR", "/run/user/1000"),
                                ("MIXCOMM_LOG", "info"), ("MIXCOMM_LOG_FILE", "/tmp/log-%p.txt")))
    write("env", "xdg", pairs(0, 2, ("XDG_CACHE_HOME", "relative"), ("HOME", "/home/u"),
                              ("XDG_RUNTIME_DIR", "/run/user/1000")))
    write("env", "options", bytes([0x1F, 4]) + struct.pack(">II", 29500, 1000) +
          b"127.0.0.1".ljust(256, b"\0") + b"tok".ljust(128, b"\0"))
    write("env", "config-dir", pairs(0, 2, (None, "/scratch/tune"), ("HOME", "")))
    write("env", "finding-cost-infinite", pairs(0, 1, ("MIXCOMM_COST_INTRA_GBPS", "1e-300"),
                                                ("MIXCOMM_COST_NCCL_LAT_US", "1e300"),
                                                ("MIXCOMM_COST_KERNEL_US", "1e308")))
    write("env", "finding-escape-in-path", pairs(0, 1, ("MIXCOMM_CACHE_DIR", "/\x1b[2J" + "d" * 600)))
    write("env", "finding-address-source", pairs(0, 2, ("MASTER_ADDR", "a" * 300),
                                                 ("MIXCOMM_PORT", "1")))
    write("env", "finding-timeout-atoi", pairs(0, 1, ("MIXCOMM_TIMEOUT_MS", "5000abc")))


for fn in (tcp_hello, tcp_messages, fd_exchange, cache, tool_args, env):
    fn()
