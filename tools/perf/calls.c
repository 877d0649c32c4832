/* SPDX-License-Identifier: Apache-2.0
 * The calls of one mixcomm-perf case (calls.h). A graph replay stands for graph_calls calls:
 * the timed figure is its time divided by them. */
#include "perf/calls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/refdata.h"
#include "perf/metrics.h"

void perf_free_ref(perf_ref_t* r) {
  free(r->ref);
  free(r->abs_sum);
  free(r->neg_zero);
  memset(r, 0, sizeof *r);
}

int perf_make_ref(perf_ctx_t* c, mixcomm_op_t op, const perf_size_t* s, perf_ref_t* r) {
  const size_t esz = mixcomm_dtype_size(c->o->dtype);
  r->out_n = (size_t)perf_out_bytes(c->topo, op, (double)s->bytes) / esz;
  r->ref = malloc(r->out_n * sizeof *r->ref);
  r->abs_sum = malloc(r->out_n * sizeof *r->abs_sum);
  r->neg_zero = malloc(r->out_n);
  if (r->ref == NULL || r->abs_sum == NULL || r->neg_zero == NULL) {
    perf_free_ref(r);
    perf_msg_fail(c,
                  "%s, %zu bytes: out of host memory for the reference (use --check 0 or a "
                  "smaller -e)",
                  mixcomm_op_name(op), s->bytes);
    return -1;
  }
  ref_compute(c->topo, c->o->dtype, op, PERF_DATA_SEED, perf_input_rows(c, op, s), s->row_elems,
              0, r->ref, r->abs_sum, r->neg_zero);
  return 0;
}

/* One replay of graph, or one call: 0, or -1 reported as graph_what or call_what. */
static int enqueue(perf_ctx_t* c, mixcomm_op_t op, mixcomm_mode_t mode, const perf_size_t* s,
                   cudaGraphExec_t graph, const char* graph_what, const char* call_what) {
  if (graph) {
    PERF_CUDA_OK(c, cudaGraphLaunch(graph, c->stream), graph_what);
    return 0;
  }
  const mixcomm_status_t st = mixcomm_run(c->h, op, c->d_in, c->d_out,
                                          perf_input_rows(c, op, s), s->row_elems, mode,
                                          c->stream);
  if (st != MIXCOMM_SUCCESS) {
    perf_lib_fail(c, call_what, st);
    return -1;
  }
  return 0;
}

int64_t perf_checked_call(perf_ctx_t* c, mixcomm_op_t op, mixcomm_mode_t mode,
                          const perf_size_t* s, const perf_ref_t* r, cudaGraphExec_t graph) {
  const size_t esz = mixcomm_dtype_size(c->o->dtype);
  const size_t out_b = r->out_n * esz;
  char what[256];
  snprintf(what, sizeof what, "%s %s %zu bytes%s", mixcomm_op_name(op), mixcomm_mode_name(mode),
           s->bytes, graph ? " (graph replay)" : "");
  PERF_CUDA_OK(c, cudaMemsetAsync(c->d_out, 0xFF, out_b, c->stream), "poisoning the output");
  if (enqueue(c, op, mode, s, graph, what, what) != 0 || perf_finish_calls(c, what) != 0)
    return -1;
  PERF_CUDA_OK(c, cudaMemcpy(c->h_out, c->d_out, out_b, cudaMemcpyDeviceToHost),
               "copying the output back");
  char report[512];
  const int64_t wrong = ref_check(c->o->dtype, c->h_out, r->ref, r->abs_sum, r->neg_zero,
                                  r->out_n, report, sizeof report);
  if (wrong > 0) {
    fprintf(stderr, PERF_TOOL ": rank %d: %s: %lld of %zu elements wrong: %s\n", c->rank, what,
            (long long)wrong, r->out_n, report);
    fflush(stderr);
  }
  return wrong;
}

int perf_time_case(perf_ctx_t* c, mixcomm_op_t op, mixcomm_mode_t mode, const perf_size_t* s,
                   cudaGraphExec_t graph, double* median_us) {
  const perf_options_t* o = c->o;
  char what[256];
  snprintf(what, sizeof what, "%s %s %zu bytes", mixcomm_op_name(op), mixcomm_mode_name(mode),
           s->bytes);
  for (int i = 0; i < o->warmup; i++)
    if (enqueue(c, op, mode, s, graph, "warm-up graph replay", what) != 0)
      return -1;
  for (int i = 0; i < o->iters; i++) {
    PERF_CUDA_OK(c, cudaEventRecord(c->ev[2 * i], c->stream), "cudaEventRecord");
    if (enqueue(c, op, mode, s, graph, "graph replay", what) != 0)
      return -1;
    PERF_CUDA_OK(c, cudaEventRecord(c->ev[2 * i + 1], c->stream), "cudaEventRecord");
  }
  if (perf_finish_calls(c, what) != 0)
    return -1;
  double* t = malloc((size_t)o->iters * sizeof *t);
  if (t == NULL) {
    perf_msg_fail(c, "out of host memory");
    return -1;
  }
  for (int i = 0; i < o->iters; i++) {
    float ms = 0.f;
    cudaError_t e = cudaEventElapsedTime(&ms, c->ev[2 * i], c->ev[2 * i + 1]);
    if (e != cudaSuccess) {
      free(t);
      perf_cuda_fail(c, "cudaEventElapsedTime", e);
      return -1;
    }
    t[i] = (double)ms * 1e3 / (graph ? o->graph_calls : 1);
  }
  *median_us = perf_median(t, o->iters);
  free(t);
  return 0;
}

int perf_capture(perf_ctx_t* c, mixcomm_op_t op, mixcomm_mode_t mode, const perf_size_t* s,
                 cudaGraphExec_t* exec) {
  *exec = NULL;
  cudaGraph_t g = NULL;
  PERF_CUDA_OK(c, cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeGlobal),
               "cudaStreamBeginCapture");
  mixcomm_status_t st = MIXCOMM_SUCCESS;
  for (int k = 0; k < c->o->graph_calls && st == MIXCOMM_SUCCESS; k++)
    st = mixcomm_run(c->h, op, c->d_in, c->d_out, perf_input_rows(c, op, s), s->row_elems, mode,
                     c->stream);
  cudaError_t e = cudaStreamEndCapture(c->stream, &g);
  if (st != MIXCOMM_SUCCESS) {
    if (g)
      cudaGraphDestroy(g);
    perf_lib_fail(c, "mixcomm_run during graph capture", st);
    return -1;
  }
  if (e != cudaSuccess) {
    if (g)
      cudaGraphDestroy(g);
    perf_cuda_fail(c, "cudaStreamEndCapture", e);
    return -1;
  }
  e = cudaGraphInstantiate(exec, g, 0);
  cudaGraphDestroy(g);
  if (e != cudaSuccess) {
    *exec = NULL;
    perf_cuda_fail(c, "cudaGraphInstantiate", e);
    return -1;
  }
  return 0;
}
