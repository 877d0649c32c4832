/* SPDX-License-Identifier: Apache-2.0
 * How a rank of mixcomm-perf reports failures and agrees with the others (context.h). */
#include "perf/context.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void perf_lib_fail(perf_ctx_t* c, const char* what, mixcomm_status_t st) {
  const char* detail = mixcomm_last_error();
  fprintf(stderr, PERF_TOOL ": rank %d: %s: %s%s%s\n", c->rank, what, mixcomm_status_name(st),
          detail[0] ? ": " : "", detail);
  fflush(stderr);
  c->failed = 1;
}

void perf_cuda_fail(perf_ctx_t* c, const char* what, cudaError_t e) {
  fprintf(stderr, PERF_TOOL ": rank %d: %s: %s (%s)\n", c->rank, what, cudaGetErrorName(e),
          cudaGetErrorString(e));
  fflush(stderr);
  c->failed = 1;
}

void perf_vmsg_fail(perf_ctx_t* c, const char* fmt, va_list ap) {
  fprintf(stderr, PERF_TOOL ": rank %d: ", c->rank);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  fflush(stderr);
  c->failed = 1;
}

void perf_msg_fail(perf_ctx_t* c, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  perf_vmsg_fail(c, fmt, ap);
  va_end(ap);
}

int perf_agree(perf_ctx_t* c, int local_ok, const char* what) {
  int32_t mine = local_ok ? 1 : 0;
  int32_t* all = calloc((size_t)c->world, sizeof *all);
  if (all == NULL) {
    perf_msg_fail(c, "%s: out of host memory", what);
    return -1;
  }
  mixcomm_status_t st = mixcomm__bs_allgather(c->bs, &mine, all, sizeof mine, what);
  if (st != MIXCOMM_SUCCESS) {
    perf_lib_fail(c, what, st);
    free(all);
    return -1;
  }
  int first_bad = -1;
  for (int i = 0; i < c->world && first_bad < 0; i++)
    if (!all[i])
      first_bad = i;
  free(all);
  if (first_bad < 0)
    return 0;
  if (local_ok && c->rank == 0) {
    fprintf(stderr, PERF_TOOL ": rank %d: %s: rank %d failed (see its message)\n", c->rank, what,
            first_bad);
    fflush(stderr);
  }
  c->failed = 1;
  return 1;
}

int perf_barrier(perf_ctx_t* c, const char* what) {
  mixcomm_status_t st = mixcomm__bs_barrier(c->bs, what);
  if (st != MIXCOMM_SUCCESS) {
    perf_lib_fail(c, what, st);
    return -1;
  }
  return 0;
}

int perf_finish_calls(perf_ctx_t* c, const char* what) {
  PERF_CUDA_OK(c, cudaStreamSynchronize(c->stream), what);
  int peer = -1;
  mixcomm_status_t ast = mixcomm_handler_async_error(c->h, &peer);
  if (ast != MIXCOMM_SUCCESS) {
    perf_msg_fail(c, "%s: asynchronous error %s (peer world rank %d)", what,
                  mixcomm_status_name(ast), peer);
    return -1;
  }
  return 0;
}

static int cmp_double(const void* a, const void* b) {
  const double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y ? 1 : 0;
}

double perf_median(double* v, int n) {
  if (n <= 0)
    return NAN;
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}
