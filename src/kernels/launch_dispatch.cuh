/* SPDX-License-Identifier: Apache-2.0
 * Host code shared by the kernels' launchers (the device helpers are in device_common.cuh): the
 * launch of a fused kernel (with programmatic dependent launch where allowed), its grid, the
 * dispatch from a call's dtype and variant (epilogue, uneven) to a template instantiation, and
 * the occupancy fold of the co-residency check. */
#ifndef MIXCOMM_KERNELS_LAUNCH_DISPATCH_CUH_
#define MIXCOMM_KERNELS_LAUNCH_DISPATCH_CUH_

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "kernels/launch.h"

namespace mixcomm {

/* Launch a fused kernel with kargs a: with programmatic dependent launch allowed when a.pdl
 * (the kernel's launch then overlaps the tail of the previous kernel of the stream), plainly
 * otherwise. Host code; returns a cudaError_t value. */
template <typename Kernel>
inline int launch_fused(Kernel kernel, unsigned grid, const mixcomm__kargs_t& a,
                        cudaStream_t stream) {
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(grid);
  config.blockDim = dim3((unsigned)a.block);
  config.stream = stream;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  config.attrs = attr;
  config.numAttrs = a.pdl ? 1 : 0;
  return (int)cudaLaunchKernelEx(&config, kernel, a);
}

/* ---- host-side dispatch shared by the fused kernels' launchers ------------------------- */

/* CTAs of a fused call: one per span of the rank block. An uneven call whose largest block is
 * empty still exchanges its tags and signals (one CTA, one step), so a rank with another list
 * reports a mismatch rather than leaving its peers waiting. */
inline unsigned fused_grid(const mixcomm__kargs_t& a) {
  if (a.steps <= 0)
    return 0u;
  if (a.uneven.on && a.vecs == 0)
    return 1u;
  return (unsigned)((a.vecs + a.span - 1) / a.span);
}

template <bool kEpilogue, bool kUneven>
struct Variant {
  static constexpr bool epilogue = kEpilogue, uneven = kUneven;
};

/* f(Variant<epilogue, uneven>{}) for the call's instantiation: plain calls run the kernels
 * built without the epilogue and uneven code. */
template <typename F>
int with_variant(const mixcomm__kargs_t& a, F f) {
  if (a.uneven.on)
    return a.epi.on ? f(Variant<true, true>{}) : f(Variant<false, true>{});
  return a.epi.on ? f(Variant<true, false>{}) : f(Variant<false, false>{});
}

template <typename T>
struct TypeTag {
  using type = T;
};

/* f(TypeTag<T>{}) for the element type of `dtype`; cudaErrorInvalidValue for a dtype that is
 * none (every launcher's answer to it). */
template <typename F>
int with_dtype(int dtype, F f) {
  switch (dtype) {
    case MIXCOMM_FLOAT16:
      return f(TypeTag<__half>{});
    case MIXCOMM_BFLOAT16:
      return f(TypeTag<__nv_bfloat16>{});
    case MIXCOMM_FLOAT32:
      return f(TypeTag<float>{});
    default:
      return (int)cudaErrorInvalidValue;
  }
}

/* The fewest CTAs of `block` threads that fit on one SM over n kernels, folded into *fewest
 * (which the caller starts large): the co-residency bound must hold for whichever kernel a
 * call of that block runs. */
inline cudaError_t fold_fewest_blocks(const void* const* kernels, int n, int block, int* fewest) {
  for (int i = 0; i < n; i++) {
    int blocks = 0;
    const cudaError_t e =
        cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernels[i], block, 0);
    if (e != cudaSuccess)
      return e;
    *fewest = blocks < *fewest ? blocks : *fewest;
  }
  return cudaSuccess;
}

/* A fused call's launch: an unknown dtype is cudaErrorInvalidValue, an empty grid launches
 * nothing, else f(TypeTag<T>{}, Variant<...>{}, grid) for its element type and instantiation. */
template <typename F>
int launch_call(const mixcomm__kargs_t& a, F f) {
  return with_dtype(a.dtype, [&](auto tag) {
    const unsigned grid = fused_grid(a);
    if (grid == 0)
      return (int)cudaSuccess;
    return with_variant(a, [&](auto v) { return f(tag, v, grid); });
  });
}

}  // namespace mixcomm

#endif
