/* SPDX-License-Identifier: Apache-2.0
 * mixcomm-perf's latency view of small calls (tools/perf/latency.c): the launch floor of the
 * call's own launch shape, measured on every rank at once, and, in builds with phase stamps
 * (-DMIXCOMM_PHASE_STAMPS=ON), where the time of a call goes. */
#ifndef MIXCOMM_TOOLS_PERF_LATENCY_H_
#define MIXCOMM_TOOLS_PERF_LATENCY_H_

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#include "bootstrap/bootstrap.h"
#include "mixcomm.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PERF_FLOOR_SHAPES 64

/* Launch floors already measured in this run, by launch shape. */
typedef struct perf_floor_cache {
  int n;
  int grid[PERF_FLOOR_SHAPES], block[PERF_FLOOR_SHAPES];
  double us[PERF_FLOOR_SHAPES];
  void* scratch; /* device memory for the floor kernel, grown as needed */
  size_t scratch_bytes;
} perf_floor_cache_t;

/* Collective over the bootstrap (every rank calls it with the same grid and block, which the
 * deterministic geometry guarantees): the largest over ranks of each rank's median launch
 * floor (tools/perf/launch_floor.h) for grid x block, all ranks measuring at the same time, as the
 * collectives they are compared with run. Cached per shape. 0 on success; -1 with a message
 * in err. */
int perf_floor(perf_floor_cache_t* cache, mixcomm_bootstrap_t* bs, int world, int grid,
               int block, int calls, cudaStream_t stream, double* us, char* err, size_t errcap);
void perf_floor_free(perf_floor_cache_t* cache);

/* Mean durations (us) of the phases of the last `calls` calls, from the phase stamps of this
 * rank's CTA 0 (launch.h): gap = from CTA 0's exit of the previous call to its entry into this
 * one (negative: launched early, programmatic dependent launch), then entry -> resolved
 * (waiting for the previous kernel to finish), -> claimed (ring state), -> produced (step 0
 * sent), -> relayed (two-shot phase 1 received, phase 2 sent), -> consumed (last wait over),
 * -> finished (epilogue row pass), -> exit. */
typedef struct perf_breakdown {
  int calls;
  double gap, resolve, claim, produce, relay, consume, finish, exit;
} perf_breakdown_t;

/* 1 if the library records phase stamps, else 0. */
int perf_breakdown_available(mixcomm_handler_t* h);

/* Read the stamps after `calls` calls (at most MIXCOMM_STAMP_CALLS - 1 are used). 0 on success;
 * -1 with a message in err. */
int perf_breakdown_read(mixcomm_handler_t* h, int calls, perf_breakdown_t* out, char* err,
                        size_t errcap);

#ifdef __cplusplus
}
#endif

#endif
