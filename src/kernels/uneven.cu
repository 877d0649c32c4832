/* SPDX-License-Identifier: Apache-2.0
 * A world of one rank with device-array counts (mixcomm_run_v_device): every op is the identity,
 * so the call copies the rows the device array names. Protocol: none across ranks. Every CTA
 * reads the count itself (the array is written in stream order before the launch, possibly by a
 * graph replaying with new counts); a count outside [0, max_rows] is recorded in the handler's
 * error record (uneven.cuh) and nothing is copied, so a bad count never writes out of bounds. */
#include "kernels/uneven.cuh"

namespace mixcomm {
namespace {

__global__ void copy_rows_kernel(const __grid_constant__ mixcomm__kargs_t a) {
  const int64_t rows = a.uneven.rows_dev[0];
  if (rows < 0 || rows > a.uneven.max_rows) {
    if (blockIdx.x == 0 && threadIdx.x == 0) {
      const uint4 bound =
          make_uint4((uint32_t)a.uneven.max_rows, (uint32_t)(a.uneven.max_rows >> 32), 0, 0);
      const uint4 value = make_uint4((uint32_t)rows, (uint32_t)(rows >> 32), 0, 0);
      record_error(a, MIXCOMM_ERR_INVALID_ARGUMENT, kNoPeer, 0, kUnevenErrorRow, &bound, &value);
    }
    return;
  }
  const int64_t vecs = rows * a.uneven.row_vecs;
  const uint4* in = static_cast<const uint4*>(a.x_in);
  uint4* out = static_cast<uint4*>(a.x_out);
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < vecs;
       i += (int64_t)gridDim.x * blockDim.x)
    out[i] = load_input(in + i);
}

}  // namespace
}  // namespace mixcomm

extern "C" int mixcomm__launch_copy_rows(const mixcomm__kargs_t* a, cudaStream_t stream) {
  const int64_t most = a->uneven.max_rows * a->uneven.row_vecs;
  int64_t blocks = (most + 255) / 256;
  if (blocks > 1024)
    blocks = 1024;
  if (blocks < 1)
    blocks = 1;
  mixcomm::copy_rows_kernel<<<(unsigned)blocks, 256, 0, stream>>>(*a);
  return (int)cudaGetLastError();
}
