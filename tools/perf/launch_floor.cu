/* SPDX-License-Identifier: Apache-2.0
 * Launch floor kernel (tools/perf/launch_floor.h). Protocol: none; thread i of the grid reads
 * vector i of the first half of the scratch buffer and writes vector i of the second half, so
 * no two threads touch the same vector and nothing is shared with another process. The graph of `calls` launches mirrors a graph of collective
 * calls: one kernel after the other on one stream, each waiting for the previous one. */
#include <stdlib.h>

#include "perf/launch_floor.h"

namespace {

__global__ void floor_kernel(const uint4* src, uint4* dst) {
  const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  const uint4 v = src[i];
  dst[i] = make_uint4(v.y, v.z, v.w, v.x + 1);
}

int cmp_double(const void* a, const void* b) {
  const double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

}  // namespace

extern "C" int launch_floor_us(int grid, int block, int calls, int warmup, int iters,
                               void* scratch, cudaStream_t stream, double* median_us) {
  if (grid < 1 || block < 1 || block > 1024 || calls < 1 || iters < 1 || warmup < 0 ||
      scratch == nullptr)
    return (int)cudaErrorInvalidValue;
  cudaGraph_t g = nullptr;
  cudaGraphExec_t exec = nullptr;
  cudaEvent_t ev[2] = {nullptr, nullptr};
  double* t = (double*)malloc((size_t)iters * sizeof *t);
  cudaError_t e = t == nullptr ? cudaErrorMemoryAllocation : cudaSuccess;
  if (e == cudaSuccess)
    e = cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal);
  if (e == cudaSuccess) {
    for (int k = 0; k < calls; k++)
      floor_kernel<<<grid, block, 0, stream>>>((const uint4*)scratch,
                                               (uint4*)scratch + (size_t)grid * block);
    const cudaError_t launch = cudaGetLastError();
    e = cudaStreamEndCapture(stream, &g);
    if (e == cudaSuccess)
      e = launch;
  }
  if (e == cudaSuccess)
    e = cudaGraphInstantiate(&exec, g, 0);
  for (int i = 0; i < 2 && e == cudaSuccess; i++)
    e = cudaEventCreate(&ev[i]);
  for (int i = 0; i < warmup && e == cudaSuccess; i++)
    e = cudaGraphLaunch(exec, stream);
  for (int i = 0; i < iters && e == cudaSuccess; i++) {
    float ms = 0.f;
    e = cudaEventRecord(ev[0], stream);
    if (e == cudaSuccess)
      e = cudaGraphLaunch(exec, stream);
    if (e == cudaSuccess)
      e = cudaEventRecord(ev[1], stream);
    if (e == cudaSuccess)
      e = cudaEventSynchronize(ev[1]);
    if (e == cudaSuccess)
      e = cudaEventElapsedTime(&ms, ev[0], ev[1]);
    if (e == cudaSuccess)
      t[i] = (double)ms * 1e3 / calls;
  }
  if (e == cudaSuccess) {
    qsort(t, (size_t)iters, sizeof *t, cmp_double);
    *median_us = iters % 2 ? t[iters / 2] : 0.5 * (t[iters / 2 - 1] + t[iters / 2]);
  }
  for (int i = 0; i < 2; i++)
    if (ev[i] != nullptr)
      cudaEventDestroy(ev[i]);
  if (exec != nullptr)
    cudaGraphExecDestroy(exec);
  if (g != nullptr)
    cudaGraphDestroy(g);
  free(t);
  return (int)e;
}
