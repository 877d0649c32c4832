/* SPDX-License-Identifier: Apache-2.0
 * One case of mixcomm-perf on every rank (case.h). The time of a case is the largest of the
 * ranks' medians: a collective is as fast as its slowest rank. */
#include "perf/case.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/launch.h"
#include "perf/latency.h"
#include "perf/metrics.h"
#include "perf/report.h"

/* What a rank tells the others about a case. */
typedef struct case_result {
  double median_us;
  int64_t wrong;
  int32_t failed;
  int32_t pad;
} case_result_t;

/* This rank's part of a case: its result, and rank 0's phase breakdown (*have_bd). */
typedef struct own_case {
  case_result_t res;
  perf_breakdown_t bd;
  int have_bd;
} own_case_t;

static int add_row(perf_ctx_t* c, const perf_row_t* r) {
  if (c->n_rows == c->cap_rows) {
    int cap = c->cap_rows ? 2 * c->cap_rows : 64;
    perf_row_t* n = realloc(c->rows, (size_t)cap * sizeof *n);
    if (n == NULL)
      return -1;
    c->rows = n;
    c->cap_rows = cap;
  }
  c->rows[c->n_rows++] = *r;
  return 0;
}

/* A checked call (or graph replay) whose wrong elements count for this rank: 1 if it ran. */
static int check_once(perf_ctx_t* c, mixcomm_op_t op, mixcomm_mode_t mode, const perf_size_t* s,
                      const perf_ref_t* ref, cudaGraphExec_t graph, own_case_t* own) {
  const int64_t w = perf_checked_call(c, op, mode, s, ref, graph);
  if (w < 0)
    return 0;
  own->res.wrong += w;
  return 1;
}

/* Check, capture, time and check the graph's output on this rank. -1 if a barrier failed (the
 * run stops); otherwise 0, with own->res.failed saying whether this rank's calls went wrong. */
static int run_own_calls(perf_ctx_t* c, mixcomm_op_t op, mixcomm_mode_t mode,
                         const perf_size_t* s, const perf_ref_t* ref, own_case_t* own) {
  const perf_options_t* o = c->o;
  cudaGraphExec_t graph = NULL;
  int ok = 1;
  if (perf_barrier(c, "case start") != 0)
    return -1;
  if (o->check && !check_once(c, op, mode, s, ref, NULL, own))
    ok = 0;
  /* Hosts finish their checks at different times: start timing together. */
  if (perf_barrier(c, "after the check") != 0)
    return -1;
  if (ok && o->graph && perf_capture(c, op, mode, s, &graph) != 0)
    ok = 0;
  if (ok && perf_time_case(c, op, mode, s, graph, &own->res.median_us) != 0)
    ok = 0;
  if (ok && c->rank == 0 && s->bytes <= PERF_SMALL_MAX_BYTES && perf_breakdown_available(c->h)) {
    char err[256];
    const int calls = o->graph ? o->iters * o->graph_calls : o->iters;
    if (perf_breakdown_read(c->h, calls, &own->bd, err, sizeof err) == 0)
      own->have_bd = 1;
    else
      fprintf(stderr, PERF_TOOL ": rank 0: %s\n", err);
  }
  if (ok && graph && o->check && !check_once(c, op, mode, s, ref, graph, own))
    ok = 0;
  if (graph) {
    cudaError_t e = cudaGraphExecDestroy(graph);
    if (e != cudaSuccess && ok) {
      perf_cuda_fail(c, "cudaGraphExecDestroy", e);
      ok = 0;
    }
  }
  own->res.failed = !ok;
  return 0;
}

/* The row from every rank's result: the slowest median, the wrong elements of all, the
 * derived columns (NAN where they do not apply or the case failed). */
static void fill_row(const perf_ctx_t* c, mixcomm_op_t op, mixcomm_mode_t mode,
                     const perf_size_t* s, const case_result_t* all, int smallest,
                     perf_row_t* r) {
  memset(r, 0, sizeof *r);
  r->op = op;
  r->mode = mode;
  r->resolved = mode;
  if (mode == MIXCOMM_MODE_DEFAULT || mode == MIXCOMM_MODE_AUTOTUNE) {
    mixcomm_mode_t m;
    if (mixcomm_select_autotune_mode(c->h, op, perf_input_rows(c, op, s), s->row_elems, &m) ==
        MIXCOMM_SUCCESS)
      r->resolved = m;
  }
  r->size = *s;
  r->time_us = 0;
  for (int i = 0; i < c->world; i++) {
    r->failed |= all[i].failed != 0;
    r->wrong += all[i].wrong;
    if (!all[i].failed && all[i].median_us > r->time_us)
      r->time_us = all[i].median_us;
  }
  if (c->rank == 0) {
    r->rank_us = malloc((size_t)c->world * sizeof *r->rank_us);
    for (int i = 0; r->rank_us != NULL && i < c->world; i++)
      r->rank_us[i] = all[i].failed ? NAN : all[i].median_us;
  }
  const double S = (double)s->bytes;
  if (!r->failed && r->time_us > 0) {
    const double t_s = r->time_us * 1e-6;
    r->algbw = perf_in_bytes(c->topo, op, S) / t_s / 1e9;
    r->busbw = perf_bus_bytes(c->topo, S) / t_s / 1e9;
    r->mem_bytes = perf_mem_bytes(c, op, r->resolved, S);
    r->mem_gbps = isnan(r->mem_bytes) ? NAN : r->mem_bytes / t_s / 1e9;
    r->frac_copy = isnan(r->mem_gbps) || isnan(c->copy_gbps) ? NAN : r->mem_gbps / c->copy_gbps;
    r->lat_x_rtt =
        smallest && !isnan(c->rtt_us) && c->rtt_us > 0 ? r->time_us / c->rtt_us : NAN;
  } else {
    r->time_us = r->algbw = r->busbw = NAN;
    r->mem_bytes = r->mem_gbps = r->frac_copy = r->lat_x_rtt = NAN;
  }
  r->floor_us = r->x_floor = NAN;
}

/* Small sizes of a fused mode: the launch floor of the call's shape (collective: measured on
 * every rank at once) and x_floor. 0, or -1 reported. */
static int add_floor(perf_ctx_t* c, const perf_size_t* s, perf_row_t* r) {
  if (r->failed || s->bytes > PERF_SMALL_MAX_BYTES ||
      mixcomm__launch_shape(c->h, r->op, r->mode, c->d_in, c->d_out,
                            perf_input_rows(c, r->op, s), s->row_elems, &r->grid, &r->block,
                            &r->steps) != MIXCOMM_SUCCESS ||
      r->grid <= 0)
    return 0;
  char err[256];
  if (perf_floor(&c->floors, c->bs, c->world, r->grid, r->block,
                 c->o->graph ? c->o->graph_calls : 10, c->stream, &r->floor_us, err,
                 sizeof err) != 0) {
    perf_msg_fail(c, "%s", err);
    return -1;
  }
  if (!isnan(c->rtt_us) && r->time_us > 0)
    r->x_floor = r->time_us / (r->floor_us + c->rtt_us);
  return 0;
}

int perf_run_case(perf_ctx_t* c, mixcomm_op_t op, mixcomm_mode_t mode, const perf_size_t* s,
                  const perf_ref_t* ref, int smallest) {
  own_case_t own;
  memset(&own, 0, sizeof own);
  own.res.median_us = NAN;
  if (run_own_calls(c, op, mode, s, ref, &own) != 0)
    return -1;

  case_result_t* all = calloc((size_t)c->world, sizeof *all);
  if (all == NULL) {
    perf_msg_fail(c, "out of host memory");
    return -1;
  }
  mixcomm_status_t st =
      mixcomm__bs_allgather(c->bs, &own.res, all, sizeof own.res, "case results");
  if (st != MIXCOMM_SUCCESS) {
    perf_lib_fail(c, "gathering the results", st);
    free(all);
    return -1;
  }
  perf_row_t r;
  fill_row(c, op, mode, s, all, smallest, &r);
  free(all);
  if (add_floor(c, s, &r) != 0) {
    free(r.rank_us);
    return -1;
  }
  c->total_wrong += r.wrong;
  c->own_wrong += own.res.wrong;
  if (c->rank == 0) {
    perf_print_row(c, &r);
    if (own.have_bd)
      perf_print_breakdown(&r, &own.bd);
    if (add_row(c, &r) != 0) {
      free(r.rank_us);
      perf_msg_fail(c, "out of host memory");
      return -1;
    }
  }
  if (r.failed) {
    c->failed = 1;
    return -1;
  }
  return 0;
}
