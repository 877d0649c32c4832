/* SPDX-License-Identifier: Apache-2.0
 * GPU suite tests of checkpoint_prepare / checkpoint_restore: calls refused in
 * between, a graph captured before replays correctly after, the memory really goes away, and
 * across nodes no call takes a signal left from before a restore. */
#include <stdio.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "bootstrap/bootstrap.h"
#include "common/refdata.h"
#include "gpu/gpu_suite.h"

/* Release and restore the workspace: runs are refused in between, a graph captured before
 * replays correctly after, and the memory really went away. */
void test_checkpoint(gpu_rank_t* g) {
  mixcomm_op_t ops[MIXCOMM_NUM_OPS];
  valid_ops(g, ops);
  const mixcomm_op_t op = ops[0];
  const int64_t rows_in = is_scatter(op) ? 8 * g->topo.dp_size : 8;
  const int64_t elems = 1024;
  const size_t es = mixcomm_dtype_size(g->dtype);
  cudaGraph_t graph = NULL;
  cudaGraphExec_t exec = NULL;
  if (cudaStreamBeginCapture(g->stream, cudaStreamCaptureModeGlobal) != cudaSuccess) {
    failf(g, "checkpoint: capture failed");
    return;
  }
  mixcomm_status_t st =
      mixcomm_run(g->h, op, g->d_in, g->d_out, rows_in, elems, MIXCOMM_MODE_DEFAULT, g->stream);
  if (cudaStreamEndCapture(g->stream, &graph) != cudaSuccess || st != MIXCOMM_SUCCESS ||
      cudaGraphInstantiate(&exec, graph, 0) != cudaSuccess) {
    failf(g, "checkpoint: capturing the graph: %s", mixcomm_last_error());
    g->dead = 1;
    return;
  }
  size_t free0 = 0, free1 = 0, free2 = 0, total = 0;
  mixcomm__bs_barrier(g->bs, "checkpoint test");
  cudaMemGetInfo(&free0, &total);
  st = mixcomm_checkpoint_prepare(g->h);
  if (st != MIXCOMM_SUCCESS) {
    failf(g, "checkpoint_prepare: %s", mixcomm_last_error());
    g->dead = 1;
    return;
  }
  mixcomm__bs_barrier(g->bs, "checkpoint test");
  cudaMemGetInfo(&free1, &total);
  EXPECT_ERR(mixcomm_run(g->h, op, g->d_in, g->d_out, rows_in, elems, MIXCOMM_MODE_DEFAULT,
                         g->stream),
             MIXCOMM_ERR_INVALID_USAGE, "checkpoint_restore");
  st = mixcomm_checkpoint_restore(g->h);
  if (st != MIXCOMM_SUCCESS) {
    failf(g, "checkpoint_restore: %s", mixcomm_last_error());
    g->dead = 1;
    return;
  }
  mixcomm__bs_barrier(g->bs, "checkpoint test");
  cudaMemGetInfo(&free2, &total);
  const size_t ws = mixcomm_handler_plan(g->h)->vmm_bytes;
  if (g->spawn.rank == 0)
    printf("  checkpoint: free GPU memory %.1f MiB -> %.1f MiB after prepare -> %.1f MiB after "
           "restore (node workspace %.1f MiB per rank, %d ranks on this GPU)\n",
           free0 / 1048576.0, free1 / 1048576.0, free2 / 1048576.0, ws / 1048576.0,
           g->topo.local_size);
  /* Every rank of the node released its workspace; at least this rank's must show. */
  if (g->topo.local_size > 1 && free1 < free0 + ws / 2)
    failf(g, "checkpoint: only %.1f MiB freed, expected at least %.1f MiB",
          ((double)free1 - (double)free0) / 1048576.0, ws / 2 / 1048576.0);
  const size_t n_in = (size_t)rows_in * (size_t)elems;
  ref_fill_input(g->dtype, 4242, g->topo.world_rank, g->h_in, n_in, REF_SPECIAL_NEG_ZERO);
  upload(g, g->d_in, g->h_in, n_in * es);
  fill(g, g->d_out, 0xFF, g->cap_bytes);
  cudaGraphLaunch(exec, g->stream);
  char why[1200];
  int ok = 1;
  if (settle(g, why, sizeof why) != MIXCOMM_SUCCESS) {
    failf(g, "checkpoint: replay after restore: %s", why);
    g->dead = 1;
    ok = 0;
  } else {
    char report[512];
    const int64_t wrong = check_device_output(g, g->d_out, op, 4242, rows_in, elems,
                                              REF_SPECIAL_NEG_ZERO, report, sizeof report);
    if (wrong) {
      failf(g, "checkpoint: graph replay after restore: %lld wrong: %s", (long long)wrong, report);
      ok = 0;
    }
  }
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  conclude_test(g, ok, "checkpoint");
}

/* Across nodes, a restore restarts the call counters, which the epochs of the signal words
 * come from: a call after it must not take a signal left by the call of the same shape and
 * number before it (it would read that call's rows). Two restores put the counters back to 0
 * around one call; the same call after the second, with other data and node 0 late (node 1's
 * kernels run while only the old signals are there), must get the new data. Many CTAs, so that
 * every CTA's words are checked. */
void test_checkpoint_signals(gpu_rank_t* g) {
  const mixcomm_mode_t mode = MIXCOMM_MODE_FUSED_OPT_WAITS_UC;
  if (g->topo.inter_size == 1 || mixcomm_mode_invalid_reason(g->h, mode) != NULL)
    return;
  mixcomm_op_t ops[MIXCOMM_NUM_OPS];
  valid_ops(g, ops);
  const int64_t elems = 8192 / (int64_t)mixcomm_dtype_size(g->dtype); /* 8 KiB rows */
  for (int round = 0; round < 2 && !g->dead; round++) {
    if (mixcomm_checkpoint_prepare(g->h) != MIXCOMM_SUCCESS ||
        mixcomm_checkpoint_restore(g->h) != MIXCOMM_SUCCESS) {
      failf(g, "checkpoint signals: prepare/restore: %s", mixcomm_last_error());
      g->dead = 1;
      return;
    }
    g->late_node_ms = round == 1 ? 300 : 0;
    run_case(g, ops[0], mode, 100, elems, 7100 + (uint64_t)round, REF_SPECIAL_NEG_ZERO, 0, 0);
    g->late_node_ms = 0;
  }
}
