/* SPDX-License-Identifier: Apache-2.0
 * The epilogue as kernels of their own, for the calls whose exchange is not a mixcomm kernel:
 * the NCCL modes, and a world of one rank (where every op is the identity).
 * Protocol: none across ranks. The exchange (NCCL, or nothing) has left S in args.s on this GPU,
 * stream-ordered before these kernels.
 *   add_residual_kernel: dst = round(src + residual), the contribution of tp rank 0 of a gather
 *     op, made before NCCL gathers it (so NCCL's result is P, as in the fused kernels).
 *   epilogue_kernel: CTA b takes rows [b * rows_per_cta, ...) of every output block, stores
 *     every vector of them through store_result (x_out copy, P to residual_out and the stash),
 *     then runs the same row pass as the fused kernels (epilogue_rows) over them. With
 *     rows_only the stash already holds P (a fused kernel that left the pass to this one,
 *     epilogue_call.c): only the pass runs. The stash is
 *     written and read by the same CTA; the block barrier inside epilogue_rows orders the two.
 * Memory ordering between these kernels and NCCL is the stream's: nothing else writes the
 * buffers while they run. */
#include "kernels/epilogue.cuh"
#include "kernels/launch_dispatch.cuh"

namespace mixcomm {
namespace {

constexpr int kEpilogueThreads = 256;
constexpr int kEpilogueCtas = 4 * MIXCOMM_DEFAULT_SM_COUNT; /* enough to fill any Hopper */

template <typename T>
__global__ void __launch_bounds__(kEpilogueThreads)
    epilogue_kernel(const __grid_constant__ mixcomm__epilogue_launch_t p, int64_t rows_per_cta) {
  const mixcomm__epilogue_args_t& e = p.e;
  const int64_t V = e.row_vecs;
  const int64_t begin = (int64_t)blockIdx.x * rows_per_cta * V;
  const int64_t end = begin + rows_per_cta * V < p.vecs ? begin + rows_per_cta * V : p.vecs;
  const uint4* s = static_cast<const uint4*>(p.s);
  for (int k = 0; k < p.blocks && !p.rows_only; k++) {
    for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
      const uint4 v = load_coherent(s + (int64_t)k * p.vecs + i);
      store_result<T, true>(e, p.x_out, p.vecs, k, i, v);
    }
  }
  epilogue_rows<T>(e, p.vecs, p.blocks, begin, end, true);
}

template <typename T>
__global__ void add_residual_kernel(const uint4* src, const uint4* residual, uint4* dst,
                                    int64_t vecs) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < vecs;
       i += (int64_t)gridDim.x * blockDim.x)
    dst[i] = add_vectors<T>(load_input(src + i), load_coherent(residual + i));
}

template <typename T>
int launch_epilogue(const mixcomm__epilogue_launch_t* p, cudaStream_t stream) {
  const int64_t V = p->e.row_vecs;
  if (p->vecs <= 0 || V <= 0 || p->vecs % V != 0)
    return (int)cudaErrorInvalidValue;
  const int64_t rows = p->vecs / V;
  const int64_t per = (rows + kEpilogueCtas - 1) / kEpilogueCtas;
  const int64_t grid = (rows + per - 1) / per;
  mixcomm__epilogue_launch_t args = *p;
  args.e.on = 1;
  epilogue_kernel<T><<<(unsigned)grid, kEpilogueThreads, 0, stream>>>(args, per);
  return (int)cudaGetLastError();
}

template <typename T>
int launch_add(const void* src, const void* residual, void* dst, int64_t vecs,
               cudaStream_t stream) {
  if (vecs <= 0)
    return cudaSuccess;
  int64_t blocks = (vecs + 255) / 256;
  if (blocks > kEpilogueCtas)
    blocks = kEpilogueCtas;
  add_residual_kernel<T><<<(unsigned)blocks, 256, 0, stream>>>(
      static_cast<const uint4*>(src), static_cast<const uint4*>(residual), static_cast<uint4*>(dst),
      vecs);
  return (int)cudaGetLastError();
}

}  // namespace
}  // namespace mixcomm

extern "C" int mixcomm__launch_epilogue(const mixcomm__epilogue_launch_t* p, cudaStream_t stream) {
  return mixcomm::with_dtype(p->dtype, [&](auto tag) {
    return mixcomm::launch_epilogue<typename decltype(tag)::type>(p, stream);
  });
}

extern "C" int mixcomm__launch_add_residual(const void* src, const void* residual, void* dst,
                                            int64_t vecs, int dtype, cudaStream_t stream) {
  return mixcomm::with_dtype(dtype, [&](auto tag) {
    return mixcomm::launch_add<typename decltype(tag)::type>(src, residual, dst, vecs, stream);
  });
}
