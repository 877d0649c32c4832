/* SPDX-License-Identifier: Apache-2.0
 * Local reduction after an NCCL gather (NCCL_ONE for ALLREDUCE_ALLGATHER and
 * REDUCESCATTER_ALLREDUCE). Protocol: none across ranks; NCCL has already placed every rank's
 * block in `src` (world-rank order) on this GPU. Each thread sums one 16-byte vector over the
 * contributing blocks in fp32, in ascending tp (or world) rank order, and rounds once. */
#include "kernels/device_common.cuh"
#include "kernels/launch_dispatch.cuh"

namespace mixcomm {
namespace {

/* World rank of the rank with tp rank t and dp rank d (TP fastest at both levels). */
__device__ __forceinline__ int64_t world_of(const mixcomm__sum_args_t& a, int t, int d) {
  const int ltp = t % a.local_tp, itp = t / a.local_tp;
  const int ldp = d % a.local_dp, idp = d / a.local_dp;
  const int local = ltp + ldp * a.local_tp, inter = itp + idp * a.inter_tp;
  return (int64_t)inter * a.local_size + local;
}

template <typename T>
__global__ void sum_blocks_kernel(const __grid_constant__ mixcomm__sum_args_t a) {
  const uint4* src = static_cast<const uint4*>(a.src);
  uint4* dst = static_cast<uint4*>(a.dst);
  const int tp = a.local_tp * a.inter_tp, dp = a.local_dp * a.inter_dp;
  const int outputs = a.tp_major ? dp : 1, terms = a.tp_major ? tp : tp * dp;
  const int64_t total = a.vecs * outputs;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
       i += (int64_t)gridDim.x * blockDim.x) {
    const int d = (int)(i / a.vecs);
    const int64_t v = i % a.vecs;
    Acc<T> acc;
    for (int k = 0; k < terms; k++) {
      const int64_t w = a.tp_major ? world_of(a, k, d) : k;
      const uint4 x = load_input(src + w * a.vecs + v);
      if (k == 0)
        acc.set(x);
      else
        acc.add(x);
    }
    dst[i] = acc.pack();
  }
}

template <typename T>
int launch(const mixcomm__sum_args_t* a, cudaStream_t stream) {
  const int64_t outputs = a->tp_major ? (int64_t)a->local_dp * a->inter_dp : 1;
  const int64_t total = a->vecs * outputs;
  if (total == 0)
    return cudaSuccess;
  int64_t blocks = (total + 255) / 256;
  if (blocks > 4096)
    blocks = 4096;
  sum_blocks_kernel<T><<<(unsigned)blocks, 256, 0, stream>>>(*a);
  return (int)cudaGetLastError();
}

}  // namespace
}  // namespace mixcomm

extern "C" int mixcomm__launch_sum_blocks(const mixcomm__sum_args_t* a, cudaStream_t stream) {
  return mixcomm::with_dtype(a->dtype, [&](auto tag) {
    return mixcomm::launch<typename decltype(tag)::type>(a, stream);
  });
}
