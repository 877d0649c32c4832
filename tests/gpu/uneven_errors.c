/* SPDX-License-Identifier: Apache-2.0
 * GPU tests of uneven rows that must be refused or fail: argument errors before anything is
 * enqueued, a list that differs on one rank (one node) or one whole node (across nodes), and a
 * device count above max_rows (see uneven.c for the whole test). */
#include <stdio.h>

#include <cuda_runtime_api.h>

#include "gpu/uneven.h"

/* Argument errors, before anything is enqueued. */
void uv_errors(gpu_rank_t* g, uv_buffers_t* b, mixcomm_op_t op) {
  const int dp = g->topo.dp_size;
  int64_t rows[MIXCOMM_MAX_DP_SIZE];
  for (int k = 0; k < dp; k++) rows[k] = 1 + k;
  int bad = 0;
  struct {
    const char* what;
    mixcomm_status_t st;
  } cases[6];
  int n = 0;
  cases[n].what = "dp_rows NULL";
  cases[n++].st = mixcomm_run_v(g->h, op, b->in, b->out, NULL, 64, NULL, MIXCOMM_MODE_DEFAULT,
                                g->stream);
  rows[0] = -1;
  cases[n].what = "negative count";
  cases[n++].st = mixcomm_run_v(g->h, op, b->in, b->out, rows, 64, NULL, MIXCOMM_MODE_DEFAULT,
                                g->stream);
  rows[0] = 1;
  cases[n].what = "misaligned x_out";
  cases[n++].st = mixcomm_run_v(g->h, op, b->in, b->out + 8, rows, 64, NULL,
                                MIXCOMM_MODE_DEFAULT, g->stream);
  cases[n].what = "row not a multiple of 16 bytes";
  cases[n++].st = mixcomm_run_v(g->h, op, b->in, b->out, rows, 3, NULL, MIXCOMM_MODE_DEFAULT,
                                g->stream);
  cases[n].what = "device form, negative max_rows";
  cases[n++].st = mixcomm_run_v_device(g->h, op, b->in, b->out, b->rows_dev, -1, 64, NULL,
                                       MIXCOMM_MODE_DEFAULT, g->stream);
  cases[n].what = "device form, host pointer";
  cases[n++].st = mixcomm_run_v_device(g->h, op, b->in, b->out, (const int32_t*)rows, 4, 64,
                                       NULL, MIXCOMM_MODE_DEFAULT, g->stream);
  for (int i = 0; i < n; i++)
    if (cases[i].st != MIXCOMM_ERR_INVALID_ARGUMENT) {
      failf(g, "uneven errors %s: %s: got %s", mixcomm_op_name(op), cases[i].what,
            mixcomm_status_name(cases[i].st));
      bad = 1;
    }
  if (!bad)
    g->passed++;
}

/* What an uneven call that should fail came to (st: what the call returned): if it was
 * enqueued, the handler's asynchronous error, naming *peer, once the stream is done. */
static mixcomm_status_t uv_outcome(gpu_rank_t* g, mixcomm_status_t st, int* peer, char* why,
                                   size_t n) {
  *peer = -1;
  if (st == MIXCOMM_SUCCESS) {
    cudaStreamSynchronize(g->stream);
    st = mixcomm_handler_async_error(g->h, peer);
    settle(g, why, n);
  }
  return st;
}

/* A one-shot call whose list has one row less in the last block where `odd` (the same largest
 * block, so the same geometry on every rank); what it came to. */
static mixcomm_status_t uv_odd_list_call(gpu_rank_t* g, uv_buffers_t* b, mixcomm_op_t op, int odd,
                                         int* peer, char* why, size_t n) {
  const int dp = g->topo.dp_size;
  int64_t rows[MIXCOMM_MAX_DP_SIZE];
  for (int k = 0; k < dp; k++) rows[k] = k == 0 ? 40 : 3 + k;
  if (odd)
    rows[dp - 1] -= 1;
  mixcomm_status_t st = mixcomm_run_v(g->h, op, b->in, b->out, rows, 64, NULL,
                                      MIXCOMM_MODE_FUSED_OPT_WAITS_UC, g->stream);
  return uv_outcome(g, st, peer, why, n);
}

/* A list that differs on the last world rank (same largest block, so the same geometry): every
 * rank reports MISMATCH, the others naming that rank. Leaves the handler unusable. */
void uv_mismatch(gpu_rank_t* g, uv_buffers_t* b, mixcomm_op_t op) {
  const mixcomm_topology_t* t = &g->topo;
  const int odd = t->world_size - 1;
  char why[1200] = "";
  int peer;
  const mixcomm_status_t st = uv_odd_list_call(g, b, op, t->world_rank == odd, &peer, why,
                                               sizeof why);
  const int ok = st == MIXCOMM_ERR_MISMATCH && (t->world_rank == odd || peer == odd);
  if (!ok)
    failf(g, "uneven mismatch %s: got %s naming rank %d (want MISMATCH naming rank %d): %s",
          mixcomm_op_name(op), mixcomm_status_name(st), peer, odd, why);
  else
    g->passed++;
  g->dead = 1; /* the handler is unusable now: the next dtype gets a new one */
}

/* Across nodes: the last node's list differs (same largest block, so the same geometry; every
 * rank of a node agrees, so the node's tags match and only the signal hash, which mixes in the
 * list's hash, tells the nodes apart). Every rank reports MISMATCH naming a rank of another node
 * (the last node's ranks: of any other; the others: of the last). Leaves the handler unusable. */
void uv_mismatch_nodes(gpu_rank_t* g, uv_buffers_t* b, mixcomm_op_t op) {
  const mixcomm_topology_t* t = &g->topo;
  const int odd_node = t->inter_size - 1;
  const int my_node = t->world_rank / t->local_size;
  char why[1200] = "";
  int peer;
  const mixcomm_status_t st = uv_odd_list_call(g, b, op, my_node == odd_node, &peer, why,
                                               sizeof why);
  const int peer_node = peer >= 0 ? peer / t->local_size : -1;
  const int named_ok = my_node == odd_node ? peer_node >= 0 && peer_node != odd_node
                                           : peer_node == odd_node;
  if (st != MIXCOMM_ERR_MISMATCH || !named_ok)
    failf(g, "uneven mismatch across nodes %s: got %s naming rank %d (want MISMATCH naming a "
          "rank of %s): %s",
          mixcomm_op_name(op), mixcomm_status_name(st), peer,
          my_node == odd_node ? "another node" : "the last node", why);
  else
    g->passed++;
  g->dead = 1;
}

/* A device count above max_rows on every rank: INVALID_ARGUMENT, and nothing written. */
void uv_bad_count(gpu_rank_t* g, uv_buffers_t* b, mixcomm_op_t op) {
  const int dp = g->topo.dp_size;
  int32_t r32[MIXCOMM_MAX_DP_SIZE];
  for (int k = 0; k < dp; k++) r32[k] = k == dp - 1 ? 9 : 2;
  char why[1200] = "";
  upload(g, b->rows_dev, r32, sizeof(int32_t) * (size_t)dp);
  cudaMemsetAsync(b->out, 0xFF, b->out_cap, g->stream);
  int peer;
  const mixcomm_status_t st = uv_outcome(
      g,
      mixcomm_run_v_device(g->h, op, b->in, b->out, b->rows_dev, 8, 64, NULL,
                           MIXCOMM_MODE_FUSED_OPT_WAITS_UC, g->stream),
      &peer, why, sizeof why);
  int ok = st == MIXCOMM_ERR_INVALID_ARGUMENT;
  if (ok && !uv_guard_intact(g, b->out, 0, why, sizeof why))
    ok = 0;
  if (!ok)
    failf(g, "uneven bad device count %s: got %s (want INVALID_ARGUMENT, nothing written): %s",
          mixcomm_op_name(op), mixcomm_status_name(st), why);
  else
    g->passed++;
  g->dead = 1;
}
