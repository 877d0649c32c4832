/* SPDX-License-Identifier: Apache-2.0
 * The launch floor of mixcomm-perf: what a kernel of a collective's launch shape costs when it
 * does nothing but load and store its 16 bytes per thread, launched back to back in a CUDA
 * graph like the collectives it is compared with. See tools/perf/launch_floor.cu. */
#ifndef MIXCOMM_TOOLS_LAUNCH_FLOOR_H_
#define MIXCOMM_TOOLS_LAUNCH_FLOOR_H_

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Median time per kernel (us) of `iters` replays (after `warmup`) of a graph of `calls`
 * kernels of grid x block threads, each thread loading 16 bytes from the first half of
 * `scratch` and storing 16 bytes that depend on them into the second half (scratch: at least
 * 2 * grid * block * 16 bytes of device memory). Returns a cudaError_t value; *median_us is set on success. */
int launch_floor_us(int grid, int block, int calls, int warmup, int iters, void* scratch,
                    cudaStream_t stream, double* median_us);

#ifdef __cplusplus
}
#endif

#endif
