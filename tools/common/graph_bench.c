/* SPDX-License-Identifier: Apache-2.0
 * See graph_bench.h. */
#include "common/graph_bench.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "mixcomm.h"

static int cmp_double(const void* a, const void* b) {
  const double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

int graph_bench_median(cudaStream_t stream, cudaEvent_t ev[2], int calls, int warmup, int reps,
                       graph_bench_enqueue_fn enqueue, void* ctx, double* us, char* err,
                       size_t errcap) {
  err[0] = '\0';
  cudaGraph_t graph = NULL;
  cudaGraphExec_t exec = NULL;
  cudaError_t e = cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal);
  if (e != cudaSuccess) {
    snprintf(err, errcap, "cudaStreamBeginCapture: %s", cudaGetErrorString(e));
    return -1;
  }
  int rc = 0;
  for (int k = 0; k < calls && rc == 0; k++)
    rc = enqueue(ctx);
  e = cudaStreamEndCapture(stream, &graph);
  if (rc == 0 && e != cudaSuccess) {
    snprintf(err, errcap, "cudaStreamEndCapture: %s", cudaGetErrorString(e));
    rc = -1;
  }
  if (rc == 0 && (e = cudaGraphInstantiate(&exec, graph, 0)) != cudaSuccess) {
    snprintf(err, errcap, "cudaGraphInstantiate: %s", cudaGetErrorString(e));
    rc = -1;
  }
  if (graph != NULL)
    cudaGraphDestroy(graph);
  if (rc != 0)
    return -1;
  double* t = calloc((size_t)reps, sizeof *t);
  if (t == NULL) {
    cudaGraphExecDestroy(exec);
    snprintf(err, errcap, "out of host memory");
    return -1;
  }
  for (int i = 0; i < warmup + reps && rc == 0; i++) {
    float ms = 0;
    if (cudaEventRecord(ev[0], stream) != cudaSuccess ||
        cudaGraphLaunch(exec, stream) != cudaSuccess ||
        cudaEventRecord(ev[1], stream) != cudaSuccess || cudaEventSynchronize(ev[1]) != cudaSuccess ||
        cudaEventElapsedTime(&ms, ev[0], ev[1]) != cudaSuccess) {
      snprintf(err, errcap, "timing a graph replay: %s", cudaGetErrorString(cudaGetLastError()));
      rc = -1;
    } else if (i >= warmup) {
      t[i - warmup] = (double)ms * 1e3 / calls;
    }
  }
  cudaGraphExecDestroy(exec);
  if (rc == 0) {
    qsort(t, (size_t)reps, sizeof *t, cmp_double);
    *us = t[reps / 2];
  }
  free(t);
  return rc;
}

int graph_bench_slowest(mixcomm_bootstrap_t* bs, int world, double mine, double* worst, char* err,
                        size_t errcap) {
  double* all = calloc((size_t)world, sizeof *all);
  if (all == NULL ||
      mixcomm__bs_allgather(bs, &mine, all, sizeof mine, "bench times") != MIXCOMM_SUCCESS) {
    snprintf(err, errcap, "exchanging times: %s", all == NULL ? "out of host memory"
                                                              : mixcomm_last_error());
    free(all);
    return -1;
  }
  int rc = 0;
  *worst = 0;
  for (int w = 0; w < world; w++) {
    if (isnan(all[w]))
      rc = -1;
    *worst = all[w] > *worst ? all[w] : *worst;
  }
  free(all);
  return rc;
}
