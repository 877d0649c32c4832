/* SPDX-License-Identifier: Apache-2.0
 * The fused epilogue (mixcomm_run_epilogue): residual add, RMSNorm and FP8 quantisation of a
 * collective's result, done by the collective kernel itself (intranode.cu, internode.cu) or by
 * epilogue.cu after an NCCL exchange. Device helpers only; the arguments are
 * mixcomm__epilogue_args_t (launch.h).
 *
 * Where the residual enters. For ALLREDUCE and the REDUCESCATTER ops every output row is this
 * rank's, so P = round(S + residual_in) is formed where the kernel stores S (store_result). For
 * the gather ops block d of P needs the residual of DP group d, which only that group holds: the
 * rank with tp rank 0 of each DP group contributes round(input + residual_in) instead of its input
 * (load_contribution), so the collective itself produces P for every block. Every rank sums the
 * same contributions in the same order, so TP ranks still agree bit for bit.
 *
 * Row pass. RMSNorm needs whole rows, so an epilogue call uses a row-aligned geometry (plan.c
 * mixcomm__geometry_rows): every CTA's span of a rank block is a whole number of rows, and the CTA
 * stores every output vector of those rows itself (for every output block). store_result keeps P
 * of those rows in the stash (norm_out, which is then normalised in place, or residual_out, or a
 * temporary); after its last step the CTA synchronises (the stash was written by its own threads,
 * so the block barrier makes it visible: no fence beyond the CTA is needed) and runs
 * epilogue_rows over its rows. Rows are reduced in a fixed order that depends only on the
 * geometry (block size, row length, row count), which every rank computes identically: the same
 * P gives the same bits on every rank and every run. Nothing here talks to another rank. */
#ifndef MIXCOMM_KERNELS_EPILOGUE_CUH_
#define MIXCOMM_KERNELS_EPILOGUE_CUH_

#include <cuda_fp8.h>

#include "kernels/device_common.cuh"

namespace mixcomm {

/* Elements of a 16-byte vector as floats, and back (round to nearest even). */
template <typename T>
struct Elems {
  static constexpr int N = 16 / sizeof(T);
  float f[N];
  __device__ __forceinline__ void unpack(uint4 v) {
    Acc<T> acc;
    acc.set(v);
    from_acc(acc);
  }
  __device__ __forceinline__ uint4 pack() const;
  __device__ __forceinline__ void from_acc(const Acc<T>& acc);
};

template <>
__device__ __forceinline__ void Elems<float>::from_acc(const Acc<float>& acc) {
#pragma unroll
  for (int i = 0; i < 4; i++) f[i] = acc.a[i];
}
template <>
__device__ __forceinline__ uint4 Elems<float>::pack() const {
  Acc<float> acc;
#pragma unroll
  for (int i = 0; i < 4; i++) acc.a[i] = f[i];
  return acc.pack();
}
template <typename T>
__device__ __forceinline__ void Elems<T>::from_acc(const Acc<T>& acc) {
#pragma unroll
  for (int i = 0; i < 4; i++) {
    f[2 * i] = acc.a[i].x;
    f[2 * i + 1] = acc.a[i].y;
  }
}
template <typename T>
__device__ __forceinline__ uint4 Elems<T>::pack() const {
  Acc<T> acc;
#pragma unroll
  for (int i = 0; i < 4; i++) acc.a[i] = make_float2(f[2 * i], f[2 * i + 1]);
  return acc.pack();
}

/* Coherent load: residual_in may be residual_out, and the stash is written in this kernel, so
 * the read-only (non-coherent) path of load_input must not be used for them. A plain load (not
 * volatile) lets the compiler issue several before the first is used; ordering against the
 * kernel's own stores comes from program order and the block barrier before the row pass. */
__device__ __forceinline__ uint4 load_coherent(const uint4* p) { return *p; }

template <typename T>
__device__ __forceinline__ uint4 add_vectors(uint4 x, uint4 y) {
  Acc<T> acc;
  acc.set(x);
  acc.add(y);
  return acc.pack();
}

/* This rank's contribution at vector `off` of its input: the input itself, or for tp rank 0 of a
 * gather op's epilogue call round(input + residual_in) (gather ops have one input block, so the
 * residual has the same offset). */
template <typename T, bool kEpilogue>
__device__ __forceinline__ uint4 load_contribution(const mixcomm__epilogue_args_t& e,
                                                   const uint4* in, int64_t off) {
  const uint4 x = load_input(in + off);
  if (!kEpilogue || !e.add_at_source)
    return x;
  return add_vectors<T>(x, load_coherent(static_cast<const uint4*>(e.residual_in) + off));
}

/* Every output vector a kernel produces goes through here: vector idx of output block k. A plain
 * call stores S to x_out; an epilogue call stores S only if asked, and P to residual_out (own
 * block) and to the stash. The kernels are instantiated twice (kEpilogue), so that plain calls
 * run exactly the code they ran before the epilogue existed. */
template <typename T, bool kEpilogue>
__device__ __forceinline__ void store_result_at(const mixcomm__epilogue_args_t& e, void* x_out,
                                                int64_t at, int64_t k, int64_t idx, uint4 v) {
  if (!kEpilogue) {
    store_output(static_cast<uint4*>(x_out) + at, v);
    return;
  }
  if (e.write_s)
    store_output(static_cast<uint4*>(x_out) + at, v);
  const uint4 p =
      e.add_at_output ? add_vectors<T>(v, load_coherent(static_cast<const uint4*>(e.residual_in) + idx))
                      : v;
  if (e.residual_out != nullptr && k == e.own_block)
    store_output(static_cast<uint4*>(e.residual_out) + idx, p);
  if (e.stash != nullptr && !e.stash_is_residual)
    store_output(static_cast<uint4*>(e.stash) + at, p);
}

/* The same with output block k at k * vecs (equal blocks); store_result_at takes the output
 * position `at` of vector idx of block k directly (uneven blocks, uneven.cuh). */
template <typename T, bool kEpilogue>
__device__ __forceinline__ void store_result(const mixcomm__epilogue_args_t& e, void* x_out,
                                             int64_t vecs, int64_t k, int64_t idx, uint4 v) {
  store_result_at<T, kEpilogue>(e, x_out, k * vecs + idx, k, idx, v);
}

/* float8 e4m3 of four or eight floats, saturated to the finite range (NaN stays NaN). */
__device__ __forceinline__ uint32_t fp8x4(float a, float b, float c, float d) {
  const uint32_t lo = __nv_cvt_float2_to_fp8x2(make_float2(a, b), __NV_SATFINITE, __NV_E4M3);
  const uint32_t hi = __nv_cvt_float2_to_fp8x2(make_float2(c, d), __NV_SATFINITE, __NV_E4M3);
  return lo | (hi << 16);
}

__device__ __forceinline__ float warp_sum(float x) {
  /* Butterfly: every lane adds the same two values (a + b == b + a exactly), so all lanes end
   * with identical bits. */
#pragma unroll
  for (int m = 16; m > 0; m >>= 1) x += __shfl_xor_sync(0xFFFFFFFFu, x, m);
  return x;
}

/* Normalise one row whose P starts at vector `base` of the stash, using `lanes` threads
 * (lane = 0..lanes-1 of them) that stride over the row's vectors; an inactive thread (no row
 * this round) loads and stores nothing but still calls reduce, which may hold barriers.
 * reduce(x) sums x over the lanes in a fixed order and returns it to all of them.
 * Each pass reads the row once (its loads are independent, so a lane's are in flight together);
 * keeping the row in registers between the passes would save one of these reads but, under the
 * fused kernels' 64-register budget (1024-thread blocks), spills the collective's own state. */
template <typename T, typename Reduce>
__device__ __forceinline__ void normalize_row(const mixcomm__epilogue_args_t& e, int64_t base,
                                              bool active, int lane, int lanes, float inv_n,
                                              Reduce reduce) {
  using E = Elems<T>;
  const uint4* stash = static_cast<const uint4*>(e.stash) + base;
  const int V = active ? e.row_vecs : 0;
  float sq = 0.0f;
#pragma unroll 4
  for (int v = lane; v < V; v += lanes) {
    E p;
    p.unpack(load_coherent(stash + v));
#pragma unroll
    for (int i = 0; i < E::N; i++) sq = fmaf(p.f[i], p.f[i], sq);
  }
  const float inv_rms = rsqrtf(reduce(sq) * inv_n + e.eps);
  const float scale = e.quant_out != nullptr && active ? *e.scale : 1.0f;
  const uint4* gamma = static_cast<const uint4*>(e.gamma);
#pragma unroll 4
  for (int v = lane; v < V; v += lanes) {
    E p, g;
    p.unpack(load_coherent(stash + v));
    g.unpack(__ldg(gamma + v));
#pragma unroll
    for (int i = 0; i < E::N; i++) p.f[i] = p.f[i] * inv_rms * g.f[i];
    if (e.quant_out != nullptr) {
      float q[E::N];
#pragma unroll
      for (int i = 0; i < E::N; i++) q[i] = __fdiv_rn(p.f[i], scale);
      uint8_t* qrow = static_cast<uint8_t*>(e.quant_out) + (base + v) * E::N;
      if constexpr (E::N == 8)
        *reinterpret_cast<uint2*>(qrow) =
            make_uint2(fp8x4(q[0], q[1], q[2], q[3]), fp8x4(q[4], q[5], q[6], q[7]));
      else
        *reinterpret_cast<uint32_t*>(qrow) = fp8x4(q[0], q[1], q[2], q[3]);
    }
    /* In place when the stash is norm_out: this lane read vector v in both loops before. */
    if (e.norm_out != nullptr)
      store_output(static_cast<uint4*>(e.norm_out) + base + v, p.pack());
  }
}

/* The row pass over this CTA's rows [begin, end) / row_vecs of every output block. Called by
 * every thread of the CTA after its last step; ok = this thread's steps succeeded (a failed
 * call writes no norm: its outputs are undefined anyway, and the stash may be partial).
 * The CTA's warps form groups of wpr = max(1, warps / rows) warps, each group normalising one
 * row at a time, so that all rows of the CTA are in flight at once. A row's sum of squares is
 * reduced in a fixed order (lanes, then the group's warps in order), which depends only on the
 * geometry: identical bits on every rank. */
template <typename T>
__device__ void epilogue_rows(const mixcomm__epilogue_args_t& e, int64_t vecs, int blocks,
                              int64_t begin, int64_t end, bool ok,
                              const int64_t* block_off = nullptr,
                              const int64_t* block_len = nullptr) {
  if (!e.on || !e.normalize)
    return;
  /* The barrier also makes every thread's stash stores visible to the whole CTA. */
  if (__syncthreads_or(!ok))
    return;
  const int64_t V = e.row_vecs;
  const int64_t r0 = begin / V, per_block = (end - begin + V - 1) / V;
  const int64_t nrows = per_block * blocks;
  if (nrows == 0)
    return; /* uniform over the CTA: the one CTA of an uneven call whose blocks are all empty */
  const int nwarps = blockDim.x / 32, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int wpr = nrows >= nwarps ? 1 : (int)(nwarps / nrows);
  const int groups = nwarps / wpr, group = warp / wpr;
  const int glane = (warp % wpr) * 32 + lane, glanes = wpr * 32;
  const float inv_n = 1.0f / (float)(V * Elems<T>::N);
  /* Uneven blocks (block_off, block_len: uneven.cuh): block b at block_off[b], and a row of it
   * exists only below block_len[b]; a missing row is an inactive one. */
  auto row_base = [&](int64_t j) {
    return (block_off != nullptr ? block_off[j / per_block] : (j / per_block) * vecs) +
           (r0 + j % per_block) * V;
  };
  auto row_exists = [&](int64_t j) {
    return block_len == nullptr || (r0 + j % per_block) * V < block_len[j / per_block];
  };
  __shared__ float partial[MIXCOMM_KERNEL_MAX_THREADS / 32];
  auto group_sum = [&](float x) {
    x = warp_sum(x);
    if (wpr == 1)
      return x;
    if (lane == 0)
      partial[warp] = x;
    __syncthreads();
    float s = 0.0f;
    for (int w = group * wpr; w < group * wpr + wpr && w < nwarps; w++) s += partial[w];
    __syncthreads(); /* partial[] is reused by the next round */
    return s;
  };
  const int64_t rounds = (nrows + groups - 1) / groups;
  for (int64_t r = 0; r < rounds; r++) {
    const int64_t j = r * groups + group;
    const bool active = group < groups && j < nrows && row_exists(j);
    normalize_row<T>(e, active ? row_base(j) : 0, active, glane, glanes, inv_n, group_sum);
  }
}

}  // namespace mixcomm

#endif
