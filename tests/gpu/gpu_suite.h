/* SPDX-License-Identifier: Apache-2.0
 * Shared declarations of the GPU test suite (gpu_tests.c drives topologies, gpu_rank.c is one
 * rank's tests). */
#ifndef MIXCOMM_TESTS_GPU_SUITE_H_
#define MIXCOMM_TESTS_GPU_SUITE_H_

#include <cuda_runtime_api.h>

#include "common/spawn.h"
#include "mixcomm.h"

typedef struct gpu_options {
  mixcomm_dtype_t dtypes[3];
  int ndtypes;
  int quick;
  char only[32];
  int grid;
  int timeout_ms;
  int inter_tp[8]; /* --inter-tp: only these inter tp sizes (ninter_tp 0: every divisor) */
  int ninter_tp;
  int late_rank;   /* --late-rank: this world rank waits late_ms before each handler's first
                      call (-1: nobody), which the others' kernels must wait out */
  int late_ms;
} gpu_options_t;

typedef struct gpu_rank {
  const gpu_options_t* opt;
  spawn_rank_t spawn;
  int local_size, local_tp, inter_size, inter_tp;
  mixcomm_bootstrap_t* bs;
  mixcomm_handler_t* h;
  mixcomm_topology_t topo;
  mixcomm_dtype_t dtype;
  int grid;
  cudaStream_t stream;
  /* Device buffers (capacity cap_bytes each, plus 256 B of slack for offsets). */
  char *d_in, *d_out;
  size_t cap_bytes;
  /* Host buffers. */
  char *h_in, *h_out, *h_out2;
  double *ref, *abs_sum;
  unsigned char* neg_zero;
  int passed, failed;
  int dead; /* the handler hit an asynchronous error: skip to the next handler */
  int reuse_nvshmem; /* create handlers with should_init_nvshmem = 0 */
  int late_node_ms;  /* run_case: node 0's ranks wait this long before each call (0: none) */
} gpu_rank_t;

int gpu_rank_run(gpu_rank_t* g);

/* Helpers of gpu_rank.c shared with the other test files. */
void failf(gpu_rank_t* g, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
int want(const gpu_rank_t* g, const char* test);
/* Stream-ordered copies and the status of everything enqueued (CUDA and the handler's). */
cudaError_t upload(gpu_rank_t* g, void* dst, const void* src, size_t bytes);
cudaError_t download(gpu_rank_t* g, void* dst, const void* src, size_t bytes);
mixcomm_status_t settle(gpu_rank_t* g, char* why, size_t size);
/* The handler's valid fused modes and ops, in enum order. */
int valid_fused_modes(const gpu_rank_t* g, mixcomm_mode_t* modes);
int valid_ops(const gpu_rank_t* g, mixcomm_op_t* ops);

/* The fused epilogue (tests/gpu/epilogue.c): every op and fused mode, every output alone and
 * together, against a float64 reference; CUDA graph replay; argument errors. */
void test_epilogue(gpu_rank_t* g);

/* Uneven rows per DP rank (tests/gpu/uneven.c): host and device forms, every DP op and valid
 * mode, graphs with changing counts, mismatched lists, out-of-range device counts. Leaves the
 * handler unusable (g->dead) after its last check. */
void test_uneven(gpu_rank_t* g);

#endif
