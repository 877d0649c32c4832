/* SPDX-License-Identifier: Apache-2.0
 * The calls of one mixcomm-perf case on this rank (tools/perf/calls.c): one call checked against
 * the float64 reference, `iters` timed calls (or replays of a captured graph of calls). */
#ifndef MIXCOMM_TOOLS_PERF_CALLS_H_
#define MIXCOMM_TOOLS_PERF_CALLS_H_

#include <stddef.h>
#include <stdint.h>

#include "perf/context.h"

/* The float64 reference of one (op, size): expected output, the sums of |terms| its tolerance
 * scales with, and where the exact result is -0.0 (tools/common/refdata.h). */
typedef struct perf_ref {
  double* ref;
  double* abs_sum;
  unsigned char* neg_zero;
  size_t out_n;
} perf_ref_t;

/* 0 with r filled, or -1 reported (out of host memory). */
int perf_make_ref(perf_ctx_t* c, mixcomm_op_t op, const perf_size_t* s, perf_ref_t* r);
void perf_free_ref(perf_ref_t* r);

/* Poison the output, run (one call, or one replay of graph), compare with the reference.
 * Returns the number of wrong elements, or -1 on an error. */
int64_t perf_checked_call(perf_ctx_t* c, mixcomm_op_t op, mixcomm_mode_t mode,
                          const perf_size_t* s, const perf_ref_t* r, cudaGraphExec_t graph);

/* Times `iters` calls (or graph replays) with event pairs; *median_us per call. 0, or -1
 * reported. */
int perf_time_case(perf_ctx_t* c, mixcomm_op_t op, mixcomm_mode_t mode, const perf_size_t* s,
                   cudaGraphExec_t graph, double* median_us);

/* Capture graph_calls calls into a graph; *exec stays NULL on failure (reported, -1). */
int perf_capture(perf_ctx_t* c, mixcomm_op_t op, mixcomm_mode_t mode, const perf_size_t* s,
                 cudaGraphExec_t* exec);

#endif
