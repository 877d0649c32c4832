/* SPDX-License-Identifier: Apache-2.0
 * One rank of a graph benchmark tool (mixcomm-bench-epilogue, mixcomm-bench-uneven): its GPU
 * and grid, the bootstrap, the handler, the stream, and the slowest rank's time of a variant
 * (tools/common/bench_rank.c). */
#ifndef MIXCOMM_TOOLS_BENCH_RANK_H_
#define MIXCOMM_TOOLS_BENCH_RANK_H_

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#include "bootstrap/bootstrap.h"
#include "common/graph_bench.h"
#include "common/spawn.h"
#include "mixcomm.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bench_rank {
  const char* tool; /* messages: "<tool>: rank R: what: detail" */
  const spawn_rank_t* r;
  int device, grid;
  mixcomm_bootstrap_t* bs;
  mixcomm_handler_t* h;
  const mixcomm_topology_t* t; /* once the handler exists */
  mixcomm_op_t ops[MIXCOMM_NUM_OPS]; /* the ops the handler allows */
  int n_ops;
  cudaStream_t stream;
  cudaEvent_t ev[2];
} bench_rank_t;

/* Reports a failure of this rank on stderr; returns -1. */
int bench_fail(const bench_rank_t* b, const char* what, const char* detail);

/* A CUDA call that must succeed in a function returning int: on failure, reported and -1. */
#define BENCH_CUDA_TRY(b, call)                            \
  do {                                                     \
    cudaError_t e_ = (call);                               \
    if (e_ != cudaSuccess)                                 \
      return bench_fail(b, #call, cudaGetErrorString(e_)); \
  } while (0)

/* The tool's part of a rank. b is the first member of the tool's own struct (which they may
 * reach through it). configure fills what is the tool's in cfg (topology split, dtype; the
 * world rank and size, device, grid and autotune off are set); run measures, 0 on success. */
typedef void (*bench_configure_fn)(bench_rank_t* b, mixcomm_config_t* cfg);
typedef int (*bench_run_fn)(bench_rank_t* b);

/* One rank, start to end: picks GPU gpu_index % devices and the grid (grid_opt, or else the
 * GPU's SMs divided among the ranks that share it, at most 32 CTAs when shared), creates the
 * bootstrap (5-minute timeout: ranks wait for each other's host work), the handler (from
 * configure), the stream and the timing events, runs, then shuts the handler down and destroys
 * the bootstrap (the tool frees its own buffers after). Returns the rank's exit status: 0 when
 * run succeeded, 1 otherwise (failures reported). */
int bench_rank_run(bench_rank_t* b, const char* tool, const spawn_rank_t* r, int gpu_index,
                   int grid_opt, bench_configure_fn configure, bench_run_fn run);

/* Copies `count` elements of the tests' data generator (ref_fill_input(seed, index): real
 * data, never zeros) to the device buffer dev. 0, or -1 reported. */
int bench_upload(bench_rank_t* b, void* dev, mixcomm_dtype_t dtype, uint64_t seed, int index,
                 size_t count);

/* Median microseconds per call of a graph of `calls` calls of enqueue(ctx) (warm-up replays,
 * then the median of `reps`), the slowest rank's. Collective: every rank joins, also after a
 * failure of its own. 0, or -1 (reported). */
int bench_rank_time(bench_rank_t* b, int calls, int warmup, int reps,
                    graph_bench_enqueue_fn enqueue, void* ctx, double* us);

#ifdef __cplusplus
}
#endif

#endif
