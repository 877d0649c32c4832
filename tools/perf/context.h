/* SPDX-License-Identifier: Apache-2.0
 * One rank of mixcomm-perf: its context (handler, GPU, same-run ceilings, buffers, results),
 * the way it reports a failure, and the agreements every rank takes part in
 * (tools/perf/context.c). */
#ifndef MIXCOMM_TOOLS_PERF_CONTEXT_H_
#define MIXCOMM_TOOLS_PERF_CONTEXT_H_

#include <stdarg.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#include "bootstrap/bootstrap.h"
#include "common/spawn.h"
#include "mixcomm.h"
#include "perf/latency.h"
#include "perf/options.h"

#define PERF_HOST_NAME_CAP 64
#define PERF_DATA_SEED 0x6d6978706572660bull /* inputs: ref_fill_input(seed, world rank) */
#define PERF_SMALL_MAX_BYTES (1u << 20)      /* sizes that get a launch floor (and a breakdown) */

typedef struct perf_devinfo {
  char host[PERF_HOST_NAME_CAP];
  unsigned char uuid[16];
  int32_t device, device_count, sm_count, pad;
  char name[128];
} perf_devinfo_t;

/* One line of the table (and of the JSON rows). */
typedef struct perf_row {
  mixcomm_op_t op;
  mixcomm_mode_t mode, resolved;
  perf_size_t size;
  double time_us, algbw, busbw;
  int64_t wrong;
  double mem_bytes, mem_gbps, frac_copy, lat_x_rtt; /* NAN: not applicable */
  double floor_us, x_floor;                         /* NAN: not measured */
  int grid, block, steps;                           /* launch shape (0: no fused kernel) */
  int failed;
  double* rank_us; /* world_size medians */
} perf_row_t;

typedef struct perf_ctx {
  const perf_options_t* o;
  const spawn_rank_t* r;
  int rank, world;
  mixcomm_bootstrap_t* bs;
  mixcomm_handler_t* h;
  const mixcomm_topology_t* topo;
  int device;
  perf_devinfo_t* infos; /* world entries */
  int sharing;           /* ranks on the GPU of this rank (same host and UUID) */
  int all_one_gpu;       /* every rank of the job on one GPU */
  int grid;
  cudaStream_t stream;
  /* Same-run ceilings (NAN if not measured). */
  double copy_gbps, copy_bytes;
  double rtt_us, rtt_event_us;
  int rtt_rounds;
  perf_floor_cache_t floors;
  /* Buffers. */
  void *d_in, *d_out;
  size_t in_cap, out_cap;
  void* h_out;
  cudaEvent_t* ev; /* 2 * iters */
  int n_ev;
  /* Results (rank 0). */
  perf_row_t* rows;
  int n_rows, cap_rows;
  int64_t total_wrong; /* summed over ranks */
  int64_t own_wrong;   /* this rank's */
  int failed;
} perf_ctx_t;

/* Report a failure of this rank on stderr ("mixcomm-perf: rank R: ...") and mark the run
 * failed: a library call (its status and last error), a CUDA call, or a message. */
void perf_lib_fail(perf_ctx_t* c, const char* what, mixcomm_status_t st);
void perf_cuda_fail(perf_ctx_t* c, const char* what, cudaError_t e);
void perf_msg_fail(perf_ctx_t* c, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void perf_vmsg_fail(perf_ctx_t* c, const char* fmt, va_list ap);

/* A CUDA call that must succeed in a function returning int: on failure, reported and -1. */
#define PERF_CUDA_OK(c, call, what)    \
  do {                                 \
    cudaError_t e_ = (call);           \
    if (e_ != cudaSuccess) {           \
      perf_cuda_fail((c), (what), e_); \
      return -1;                       \
    }                                  \
  } while (0)

/* Every rank says whether it is fine. Collective. Returns 0 if all are, 1 if some rank is not
 * (every rank then marks the run failed), -1 if the bootstrap itself failed. */
int perf_agree(perf_ctx_t* c, int local_ok, const char* what);

/* Bootstrap barrier; 0, or -1 reported. */
int perf_barrier(perf_ctx_t* c, const char* what);

/* Waits for the stream, then asks the handler for an asynchronous error (a peer that failed):
 * 0, or -1 reported with `what`. */
int perf_finish_calls(perf_ctx_t* c, const char* what);

/* The median of v[0..n) (sorted in place); NAN for n <= 0. */
double perf_median(double* v, int n);

#endif
