/* SPDX-License-Identifier: Apache-2.0
 * Timing of a CUDA graph of calls for the benchmark tools (mixcomm-bench-epilogue,
 * mixcomm-bench-uneven): capture, replay, median, and the slowest rank's figure. */
#ifndef MIXCOMM_TOOLS_GRAPH_BENCH_H_
#define MIXCOMM_TOOLS_GRAPH_BENCH_H_

#include <stddef.h>

#include <cuda_runtime_api.h>

#include "bootstrap/bootstrap.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Enqueues one call on the stream; 0, or -1 after reporting why itself. */
typedef int (*graph_bench_enqueue_fn)(void* ctx);

/* Captures `calls` calls of enqueue(ctx) on `stream` into a graph, replays it warmup + reps times
 * between the events ev[0] and ev[1], and sets *us to the median replay time / calls. 0 on
 * success; -1 with a message in err (empty when enqueue failed: it reported that itself). */
int graph_bench_median(cudaStream_t stream, cudaEvent_t ev[2], int calls, int warmup, int reps,
                       graph_bench_enqueue_fn enqueue, void* ctx, double* us, char* err,
                       size_t errcap);

/* Collective over the bootstrap: *worst = the largest of every rank's `mine`; NAN from any rank
 * (it failed) makes it return -1. Every rank must call it, also after a failure of its own, so
 * that nobody waits for a rank that left. -1 with a message in err if the exchange fails. */
int graph_bench_slowest(mixcomm_bootstrap_t* bs, int world, double mine, double* worst, char* err,
                        size_t errcap);

#ifdef __cplusplus
}
#endif

#endif
