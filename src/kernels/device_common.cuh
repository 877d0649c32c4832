/* SPDX-License-Identifier: Apache-2.0
 * Device helpers shared by the fused kernels: 16-byte vector access, the poison convention,
 * fp32 accumulation per dtype, workspace addressing, message tags and bounded waits (the host
 * side of the launches is in launch_dispatch.cuh).
 *
 * Poison convention. Receivers detect the arrival of data without any flag: every 32-bit word
 * of an empty workspace row is 0xFFFFFFFF (the "poison"), and senders never write that word:
 * canon() turns it into 0x7FFFFFFF. Both are NaN in fp32 and a pair of NaNs in fp16/bf16, so
 * the substitution changes no value (only a NaN payload); -0.0 and every other bit pattern pass
 * through unchanged. A 16-byte vector has arrived when none of its four words is the poison
 * (each 32-bit word is written atomically, so a torn vector still shows poison somewhere). */
#ifndef MIXCOMM_KERNELS_DEVICE_COMMON_CUH_
#define MIXCOMM_KERNELS_DEVICE_COMMON_CUH_

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

#include "core/plan.h"
#include "kernels/launch.h"

namespace mixcomm {

constexpr uint32_t kPoison = 0xFFFFFFFFu;
constexpr uint32_t kCanonicalNaN = 0x7FFFFFFFu;
constexpr int kRing = MIXCOMM_RING_SLOTS;
constexpr int kSpinsPerCheck = 256;

/* ---- 16-byte access ---------------------------------------------------------------------- */

/* User input: read-only for the whole kernel. */
__device__ __forceinline__ uint4 load_input(const uint4* p) {
  uint4 v;
  asm volatile("ld.global.nc.v4.u32 {%0,%1,%2,%3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}

/* Workspace reads that may race with a peer's write: never cached, re-read each time. */
__device__ __forceinline__ uint4 load_volatile(const uint4* p) {
  uint4 v;
  asm volatile("ld.volatile.global.v4.u32 {%0,%1,%2,%3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p)
               : "memory");
  return v;
}

/* Workspace writes (own or a peer's): strong stores, so that a fence before them publishes. */
__device__ __forceinline__ void store_volatile(uint4* p, uint4 v) {
  asm volatile("st.volatile.global.v4.u32 [%0], {%1,%2,%3,%4};" ::"l"(p), "r"(v.x), "r"(v.y),
               "r"(v.z), "r"(v.w)
               : "memory");
}

__device__ __forceinline__ void store_output(uint4* p, uint4 v) { *p = v; }

__device__ __forceinline__ bool poisoned(uint4 v) {
  return (v.x == kPoison) | (v.y == kPoison) | (v.z == kPoison) | (v.w == kPoison);
}

__device__ __forceinline__ uint32_t canon_word(uint32_t w) {
  return w == kPoison ? kCanonicalNaN : w;
}

__device__ __forceinline__ uint4 canon(uint4 v) {
  return make_uint4(canon_word(v.x), canon_word(v.y), canon_word(v.z), canon_word(v.w));
}

__device__ __forceinline__ uint4 poison_vec() { return make_uint4(kPoison, kPoison, kPoison, kPoison); }

/* ---- fp32 accumulation ------------------------------------------------------------------- */

/* The 16-bit types as pairs: their packed pair type and its exact conversions to and from two
 * floats (round to nearest even on the way back). */
template <typename T>
struct Pair16;
template <>
struct Pair16<__half> {
  using type = __half2;
  static __device__ __forceinline__ float2 to_float2(__half2 h) { return __half22float2(h); }
  static __device__ __forceinline__ __half2 from_float2(float2 f) { return __float22half2_rn(f); }
};
template <>
struct Pair16<__nv_bfloat16> {
  using type = __nv_bfloat162;
  static __device__ __forceinline__ float2 to_float2(__nv_bfloat162 h) {
    return __bfloat1622float2(h);
  }
  static __device__ __forceinline__ __nv_bfloat162 from_float2(float2 f) {
    return __float22bfloat162_rn(f);
  }
};

/* A 16-byte vector of T summed in fp32: eight 16-bit values as four float pairs (the float
 * specialisation below holds four floats). */
template <typename T>
struct Acc {
  using P = Pair16<T>;
  using H2 = typename P::type;
  float2 a[4];
  __device__ __forceinline__ void set(uint4 v) {
    const H2* h = reinterpret_cast<const H2*>(&v);
#pragma unroll
    for (int i = 0; i < 4; i++) a[i] = P::to_float2(h[i]);
  }
  __device__ __forceinline__ void add(uint4 v) {
    const H2* h = reinterpret_cast<const H2*>(&v);
#pragma unroll
    for (int i = 0; i < 4; i++) {
      float2 f = P::to_float2(h[i]);
      a[i].x += f.x;
      a[i].y += f.y;
    }
  }
  __device__ __forceinline__ uint4 pack() const {
    uint4 v;
    H2* h = reinterpret_cast<H2*>(&v);
#pragma unroll
    for (int i = 0; i < 4; i++) h[i] = P::from_float2(a[i]);
    return v;
  }
};

template <>
struct Acc<float> {
  float a[4];
  __device__ __forceinline__ void set(uint4 v) {
    a[0] = __uint_as_float(v.x);
    a[1] = __uint_as_float(v.y);
    a[2] = __uint_as_float(v.z);
    a[3] = __uint_as_float(v.w);
  }
  __device__ __forceinline__ void add(uint4 v) {
    a[0] += __uint_as_float(v.x);
    a[1] += __uint_as_float(v.y);
    a[2] += __uint_as_float(v.z);
    a[3] += __uint_as_float(v.w);
  }
  __device__ __forceinline__ uint4 pack() const {
    return make_uint4(__float_as_uint(a[0]), __float_as_uint(a[1]), __float_as_uint(a[2]),
                      __float_as_uint(a[3]));
  }
};

/* ---- workspace addressing (layout in core/plan.h) ----------------------------------------- */

/* This CTA's share of ring slot `slot` in local rank `rank`'s workspace. */
__device__ __forceinline__ char* slot_share(const mixcomm__kargs_t& a, int rank, uint32_t slot) {
  return a.peers[rank] + ((uint64_t)slot * a.plan_grid + blockIdx.x) * a.slot_bytes;
}

__device__ __forceinline__ uint4* tag_at(char* share, int row) {
  return reinterpret_cast<uint4*>(share) + row;
}

__device__ __forceinline__ uint4* row_at(const mixcomm__kargs_t& a, char* share, int row) {
  return reinterpret_cast<uint4*>(share + a.tag_bytes) + (uint64_t)row * a.row_vecs;
}

/* A 10-bit hash of an epilogue call's row length (0 for a plain call): epilogue calls cut the
 * rank block at row boundaries, so two ranks must agree on the row length as well as the size. */
__device__ __forceinline__ uint32_t row_shape_hash(const mixcomm__kargs_t& a) {
  if (!a.epi.on)
    return 0;
  const uint32_t h = (uint32_t)a.epi.row_vecs * 0x9E3779B1u;
  return (h >> 22) | 1u; /* never 0, so a plain and an epilogue call never match */
}

/* Every sender writes a tag per destination row and step: what it is running. A receiver
 * that finds a tag different from its own expectation reports MIXCOMM_ERR_MISMATCH instead of
 * reducing foreign data. No word can be the poison (bit 31 of words 1-3 is clear, word 0 starts
 * with 0x5A). Layout (handler/async_error.c describe_tag decodes it):
 *   x: 0x5A | row hash bits 6-9 (20-23) | phase (16-19) | op (8-15) | mode (4-7) | dtype (0-3)
 *   y: vecs bits 0-30;  z: call number (31 bits)
 *   w: step (0-15) | vecs bits 31-39 (16-24) | row hash bits 0-5 (25-30) */
__device__ __forceinline__ uint4 make_tag(const mixcomm__kargs_t& a, uint32_t seq, int step,
                                          int phase) {
  const uint32_t rh = row_shape_hash(a);
  uint4 t;
  t.x = 0x5A000000u | ((rh >> 6) << 20) | ((uint32_t)phase << 16) | ((uint32_t)a.op << 8) |
        ((uint32_t)a.mode << 4) | (uint32_t)a.dtype;
  t.y = (uint32_t)(a.vecs & 0x7FFFFFFF);
  t.z = seq & 0x7FFFFFFFu;
  t.w = ((uint32_t)step & 0xFFFFu) | (((uint32_t)(a.vecs >> 31) & 0x1FFu) << 16) |
        ((rh & 0x3Fu) << 25);
  return t;
}

/* ---- bounded waits ---------------------------------------------------------------------- */

__device__ __forceinline__ uint64_t global_time_ns() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

/* "No peer" for record_error; otherwise peers are given relative to world_rank_base (a local
 * rank inside the node, anything else for a rank of another node). */
constexpr int kNoPeer = -(1 << 30);

/* Record the first error of the handler and tell every other waiting thread to stop. */
static __device__ __noinline__ void record_error(const mixcomm__kargs_t& a, int status, int peer,
                                                 int step, int row, const uint4* expected,
                                                 const uint4* received) {
  if (atomicCAS(&a.control->claimed, 0, 1) == 0) {
    mixcomm__error_record_t* e = &a.host->error;
    e->peer_local_rank = peer >= 0 && peer < a.local_size ? peer : -1;
    e->peer_world_rank = peer != kNoPeer ? a.world_rank_base + peer : -1;
    e->op = a.op;
    e->mode = a.mode;
    e->step = step;
    e->cta = blockIdx.x;
    e->row = row;
    if (expected != nullptr && received != nullptr) {
      e->tag_expected[0] = expected->x;
      e->tag_expected[1] = expected->y;
      e->tag_expected[2] = expected->z;
      e->tag_expected[3] = expected->w;
      e->tag_received[0] = received->x;
      e->tag_received[1] = received->y;
      e->tag_received[2] = received->z;
      e->tag_received[3] = received->w;
    }
    __threadfence_system();
    e->status = status;
    __threadfence_system();
  }
  atomicExch(&a.control->stop, 1);
}

/* One thread's waits. The timeout bounds each wait from its start (a rank that is
 * legitimately late for one call, minutes after the previous, is not charged for the time
 * earlier waits took): a wait's deadline is 0 until its first check, which sets it from the
 * clock. Checks (still_waiting) run every kSpinsPerCheck polls and end the wait, after
 * recording why, on stop, abort, a lost peer or the deadline.
 * Where the deadline lives is a register-allocation choice with no effect on behaviour, made
 * per kernel by measurement (docs/results/latency-h200.md): kDeadlineInRegister keeps it in a
 * register of the spin loop (the single-node two-shot kernel: 1-3% faster at 4-256 MiB than
 * with a store per wait), otherwise it is a member that every wait clears (the single-node
 * one-shot kernel, whose inlined per-row polls spill more and ran 4-6% slower with the
 * register form; the cross-node kernels, not measured either way). */
template <bool kDeadlineInRegister>
struct BasicWaiter {
  const mixcomm__kargs_t& a;
  uint64_t deadline = 0; /* the member form's */
  int step = 0;
  __device__ explicit BasicWaiter(const mixcomm__kargs_t& args) : a(args) {}

  __device__ __forceinline__ void start_wait() { deadline = 0; }

  __device__ __forceinline__ bool still_waiting(int peer, int row, uint64_t& wait_deadline) {
    const uint64_t now = global_time_ns();
    if (wait_deadline == 0)
      wait_deadline = now + a.timeout_ns;
    if (*reinterpret_cast<volatile int*>(&a.control->stop) != 0)
      return false;
    if (a.host->abort != 0) {
      record_error(a, MIXCOMM_ERR_ABORTED, kNoPeer, step, row, nullptr, nullptr);
      return false;
    }
    const int lost = a.host->peer_lost;
    if (lost != 0) { /* a peer's connection closed: it is dead, stop waiting for anyone */
      record_error(a, MIXCOMM_ERR_PEER_LOST, lost - 1 - a.world_rank_base, step, row, nullptr,
                   nullptr);
      return false;
    }
    if (now > wait_deadline) {
      record_error(a, MIXCOMM_ERR_TIMEOUT, peer, step, row, nullptr, nullptr);
      return false;
    }
    return true;
  }

  /* The member form's check, out of line (waits are rare enough; the step loop stays short). */
  __device__ __noinline__ bool keep_waiting(int peer, int row) {
    return still_waiting(peer, row, deadline);
  }

  /* The register form's: the deadline to keep, or 0 when the wait must end. */
  __device__ __noinline__ uint64_t keep_waiting_until(int peer, int row, uint64_t d) {
    return still_waiting(peer, row, d) ? d : 0;
  }

  /* Spin until *p holds no poison; false if the wait had to end. */
  __device__ __forceinline__ bool poll(const uint4* p, uint4& v, int peer, int row) {
    uint64_t d = 0;
    if constexpr (!kDeadlineInRegister)
      start_wait();
    v = load_volatile(p);
    int spins = 0;
    while (poisoned(v)) {
      if (++spins == kSpinsPerCheck) {
        spins = 0;
        if constexpr (kDeadlineInRegister) {
          d = keep_waiting_until(peer, row, d);
          if (d == 0)
            return false;
        } else if (!keep_waiting(peer, row)) {
          return false;
        }
      }
      v = load_volatile(p);
    }
    return true;
  }

  /* Wait for the tag of `peer` in row `row` of `share`, check it, and re-poison it. */
  __device__ bool check_tag(char* share, int row, int peer, const uint4& expected) {
    uint4* p = tag_at(share, row);
    uint4 t;
    if (!poll(p, t, peer, row))
      return false;
    store_volatile(p, poison_vec());
    if (t.x != expected.x || t.y != expected.y || t.z != expected.z || t.w != expected.w) {
      record_error(a, MIXCOMM_ERR_MISMATCH, peer, step, row, &expected, &t);
      return false;
    }
    return true;
  }
};

/* The member form (every kernel but the single-node two-shot one). */
using Waiter = BasicWaiter<false>;

/* Sum, in order, the vectors of rows [first, first + count) of `share` at vector t, taking
 * `own` for the row of `me`; loads are issued four at a time before any is waited for. */
template <typename T, typename W>
__device__ __forceinline__ bool reduce_rows(W& w, const mixcomm__kargs_t& a, char* share,
                                            int row_base, int first, int count, int me,
                                            uint4 own, int64_t t, Acc<T>& acc) {
  bool ok = true;
  for (int k0 = 0; k0 < count; k0 += 4) {
    uint4 v[4];
    const int n = count - k0 < 4 ? count - k0 : 4;
#pragma unroll
    for (int j = 0; j < 4; j++) {
      if (j < n) {
        const int src = first + k0 + j;
        v[j] = src == me ? own : load_volatile(row_at(a, share, row_base + src) + t);
      }
    }
#pragma unroll
    for (int j = 0; j < 4; j++) {
      if (j < n) {
        const int src = first + k0 + j;
        if (ok && poisoned(v[j]))
          ok = w.poll(row_at(a, share, row_base + src) + t, v[j], src, row_base + src);
        if (k0 + j == 0)
          acc.set(v[j]);
        else
          acc.add(v[j]);
      }
    }
  }
  return ok;
}

/* ---- per-CTA call bookkeeping shared by the fused kernels -------------------------------- */

__device__ __forceinline__ bool is_gather(int op) {
  return op == MIXCOMM_OP_ALLGATHER || op == MIXCOMM_OP_ALLREDUCE_ALLGATHER;
}
__device__ __forceinline__ bool is_scatter(int op) {
  return op == MIXCOMM_OP_REDUCESCATTER || op == MIXCOMM_OP_REDUCESCATTER_ALLREDUCE;
}

/* Slot of step s of a call that starts at ring position `ring`. */
__device__ __forceinline__ uint32_t slot_of(uint32_t ring, int s) {
  return (ring + (uint32_t)s) % kRing;
}

/* Vectors of a block-sized piece starting at `first` that lie before `end` (0 if none). */
__device__ __forceinline__ int64_t piece_count(int64_t first, int64_t end, int block) {
  return end - first <= 0 ? 0 : (end - first < block ? end - first : block);
}

constexpr unsigned long long kBusyBit = 1ull << 63;

/* The CTA's ring position and call counter at the start of a call. */
struct CallState {
  uint32_t ring, seq;
#if MIXCOMM_PHASE_STAMPS
  uint64_t entry, resolved; /* thread 0's clock before and after the PDL wait */
#endif
};

/* ---- phase stamps (launch.h; builds with MIXCOMM_PHASE_STAMPS only) ----------------------- */

#if MIXCOMM_PHASE_STAMPS
__device__ __forceinline__ void stamp(const mixcomm__kargs_t& a, uint32_t seq, int field) {
  if (threadIdx.x == 0 && blockIdx.x == 0 && a.stamps != nullptr)
    a.stamps[seq % MIXCOMM_STAMP_CALLS].t[field] = global_time_ns();
}
__device__ __forceinline__ void stamp_begin(const mixcomm__kargs_t& a, const CallState& c) {
  if (threadIdx.x != 0 || blockIdx.x != 0 || a.stamps == nullptr)
    return;
  mixcomm__stamp_call_t* slot = &a.stamps[c.seq % MIXCOMM_STAMP_CALLS];
  slot->t[MIXCOMM_STAMP_ENTRY] = c.entry;
  slot->t[MIXCOMM_STAMP_RESOLVED] = c.resolved;
  slot->t[MIXCOMM_STAMP_CLAIMED] = global_time_ns();
  slot->t[MIXCOMM_STAMP_SEQ] = (unsigned long long)c.seq + 1;
}
__device__ __forceinline__ void stamp_exit(const mixcomm__kargs_t& a, uint32_t seq) {
  stamp(a, seq, MIXCOMM_STAMP_EXIT);
}
#else
__device__ __forceinline__ void stamp(const mixcomm__kargs_t&, uint32_t, int) {}
__device__ __forceinline__ void stamp_begin(const mixcomm__kargs_t&, const CallState&) {}
__device__ __forceinline__ void stamp_exit(const mixcomm__kargs_t&, uint32_t) {}
#endif

/* Start of every fused kernel. First wait for the previous kernel of the stream (a no-op
 * unless launched with programmatic dependent launch, launch_fused), then claim this CTA's
 * ring state and read it with one atomic. Two kernels of one handler running the same CTA at
 * once (calls on two unsynchronised streams) would share slots and corrupt each other: the
 * second one finds the busy bit set, records INVALID_USAGE and does nothing. Returns false
 * (uniformly over the block, so the caller may return before any barrier) if the kernel must
 * do nothing.
 * prefetch() runs on every thread while thread 0's atomic is in flight: it may only issue
 * loads that need no ring state (the first step's input, prefetch_input), so the input's trip
 * from L2 overlaps the claim's instead of following it. It runs after the wait for the
 * previous kernel, which may have written the input. */
template <typename Prefetch>
__device__ __forceinline__ bool begin_call(const mixcomm__kargs_t& a, CallState& c,
                                           Prefetch prefetch) {
#if MIXCOMM_PHASE_STAMPS
  c.entry = global_time_ns();
#endif
#if __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
#if MIXCOMM_PHASE_STAMPS
  c.resolved = global_time_ns();
#endif
  __shared__ unsigned long long state;
  unsigned long long claimed = 0;
  if (threadIdx.x == 0)
    claimed = atomicOr(&a.control->cta[blockIdx.x].word, kBusyBit);
  prefetch();
  if (threadIdx.x == 0) {
    state = claimed;
    if (claimed & kBusyBit)
      record_error(a, MIXCOMM_ERR_INVALID_USAGE, kNoPeer, 0, -1, nullptr, nullptr);
  }
  __syncthreads();
  const unsigned long long st = state;
  c.ring = (uint32_t)(st >> 32) & 0xFFu;
  c.seq = (uint32_t)st;
  if ((st & kBusyBit) != 0)
    return false;
  stamp_begin(a, c);
  return true;
}

struct NoPrefetch {
  __device__ void operator()() const {}
};

__device__ __forceinline__ bool begin_call(const mixcomm__kargs_t& a, CallState& c) {
  return begin_call(a, c, NoPrefetch());
}

/* Bring vector `idx` of input block `blk` into this SM's L1 (a hint: no value, no fault, no
 * ordering), for a load that follows shortly. */
__device__ __forceinline__ void prefetch_input(const mixcomm__kargs_t& a, int64_t blk, int64_t idx) {
  const uint4* p = static_cast<const uint4*>(a.x_in) + blk * a.vecs + idx;
  asm volatile("prefetch.global.L1 [%0];" ::"l"(p));
}

/* End of every fused kernel, once this CTA waits for nobody any more: let the next kernel of
 * the stream start launching (its CTAs wait in begin_call until this grid has finished and
 * its memory is visible; triggering only after the last wait keeps them from taking SM slots
 * a peer's CTAs still need), then store the advanced ring state, clearing the busy bit. */
__device__ __forceinline__ void save_ring(const mixcomm__kargs_t& a, uint32_t ring, uint32_t seq) {
#if __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
  __syncthreads(); /* the whole CTA is done before the claim is released */
  if (threadIdx.x == 0) {
    const unsigned long long next =
        ((unsigned long long)((ring + (uint32_t)a.steps) % kRing) << 32) | (uint32_t)(seq + 1);
    atomicExch(&a.control->cta[blockIdx.x].word, next);
  }
  stamp_exit(a, seq);
}

/* The ring-reuse fence (run_pipelined). What the proofs need is message passing across ranks:
 * rank B's reads and re-poisoning of a slot, then B's fence, then B's strong store that rank A
 * observes with a strong (volatile = relaxed.sys) load, then A's fence, then A's stores into
 * that slot. A fence.acq_rel on each side is the release and the acquire half of that pattern
 * (PTX memory model: fence-fence synchronisation through a morally strong store/load pair),
 * so B's earlier accesses happen before A's later stores. No pattern here needs the single
 * total order of fence.sc (store buffering between ranks never decides anything: every wait is
 * on data or a flag written after the fence), and fence.sc would also wait for that order.
 * System scope, because on real hardware the peers are other GPUs (and other processes). */
__device__ __forceinline__ void fence_acq_rel_sys() {
  asm volatile("fence.acq_rel.sys;" ::: "memory");
}

/* The software-pipelined step loop of every fused kernel: produce(s) starts step s with the
 * sends that need no wait, consume(s - 1) finishes the step before it, and relay(s) (a no-op
 * where a kernel has no middle phase) continues step s once consume(s - 1) is done:
 *   produce(0) relay(0) produce(1) consume(0) relay(1) produce(2) consume(1) ... consume(S-1)
 * then finish() (the epilogue's row pass, which waits for nobody; epilogue.cuh).
 * Before produce(s), s >= 2, every thread fences at system scope (fence.acq_rel.sys: all its
 * reads and re-poisoning so far, which include all of step s - 2, are ordered before its
 * later writes), then the block synchronises. The ring-reuse argument of each kernel file rests
 * on this. Every thread runs every phase (phases contain barriers). Ends the call (save_ring). */
template <typename W, typename Produce, typename Consume, typename Relay, typename Finish>
__device__ __forceinline__ void run_pipelined(const mixcomm__kargs_t& a, const CallState& call,
                                              W& w, Produce produce, Consume consume,
                                              Relay relay, Finish finish) {
  const int steps = a.steps;
  for (int s = 0; s <= steps; s++) {
    if (s < steps) {
      if (s >= 2) {
        fence_acq_rel_sys();
        __syncthreads();
      }
      w.step = s;
      produce(s);
      if (s == 0)
        stamp(a, call.seq, MIXCOMM_STAMP_PRODUCED);
    }
    if (s > 0) {
      w.step = s - 1;
      consume(s - 1);
    }
    if (s < steps) {
      w.step = s;
      relay(s);
      if (s == 0)
        stamp(a, call.seq, MIXCOMM_STAMP_RELAYED);
    }
  }
  stamp(a, call.seq, MIXCOMM_STAMP_CONSUMED);
  finish();
  stamp(a, call.seq, MIXCOMM_STAMP_FINISHED);
  save_ring(a, call.ring, call.seq);
}

struct NoPhase {
  __device__ void operator()(int) const {}
};

/* The vectors of the rank block this CTA handles: [begin, end). */
struct CtaRange {
  int64_t begin, end;
};

__device__ __forceinline__ CtaRange cta_range(const mixcomm__kargs_t& a) {
  const int64_t begin = (int64_t)blockIdx.x * a.span;
  return {begin, begin + a.span < a.vecs ? begin + a.span : a.vecs};
}

/* A range [lo, hi) of local ranks. */
struct RankRange {
  int lo, hi;
  __device__ __forceinline__ bool has(int r) const { return r >= lo && r < hi; }
};

/* The local ranks of the two node rounds of the two-shot kernels, seen from a rank of local DP
 * group md: the reducing round (contributors to chunk owners) and the delivering round (owners to
 * the ranks that need the result). Scatter ops reduce across the DP groups and deliver inside
 * one; the other ops reduce inside the DP group and deliver to every local rank. */
__device__ __forceinline__ RankRange reduce_peers(const mixcomm__kargs_t& a, int md) {
  const RankRange group = {md * a.local_tp, md * a.local_tp + a.local_tp};
  return is_scatter(a.op) ? RankRange{0, a.local_size} : group;
}

__device__ __forceinline__ RankRange deliver_peers(const mixcomm__kargs_t& a, int md) {
  const RankRange group = {md * a.local_tp, md * a.local_tp + a.local_tp};
  return is_scatter(a.op) ? group : RankRange{0, a.local_size};
}

}  // namespace mixcomm

#endif
