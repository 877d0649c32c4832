/* SPDX-License-Identifier: Apache-2.0
 * One mixcomm-perf rank's sweep (sweep.h). The ceilings are measured before the benchmark
 * buffers take memory; every size's reference is computed once for all of its modes. */
#include "perf/sweep.h"

#include <stdlib.h>
#include <string.h>

#include "common/refdata.h"
#include "perf/calls.h"
#include "perf/case.h"
#include "perf/ceilings.h"
#include "perf/report.h"
#include "perf/work.h"

/* The copy ceiling (rank 0, the others wait) and, with ranks 0 and 1 on one host, the flag
 * round trip. A ceiling that fails is reported and fails the run, but the benchmark goes on;
 * -1 only if the ranks can no longer talk. */
static int measure_ceilings(perf_ctx_t* c) {
  if (c->rank == 0)
    perf_measure_copy(c);
  if (perf_agree(c, 1, "device copy ceiling") != 0) /* the others wait here meanwhile */
    return -1;
  double copy[2] = {c->copy_gbps, c->copy_bytes};
  mixcomm_status_t st = mixcomm__bs_broadcast(c->bs, copy, sizeof copy, 0, "copy ceiling");
  if (st != MIXCOMM_SUCCESS) {
    perf_lib_fail(c, "sharing the copy ceiling", st);
    return -1;
  }
  c->copy_gbps = copy[0];
  c->copy_bytes = copy[1];
  if (c->world >= 2 && !strncmp(c->infos[0].host, c->infos[1].host, PERF_HOST_NAME_CAP) &&
      perf_measure_rtt(c) != 0)
    return -1;
  return 0;
}

/* Buffers for the largest size: inputs up to dp*S (RS types), outputs up to dp*S (AG types),
 * the input filled with this rank's data; and the timing events. 1 if all is ready. */
static int allocate_buffers(perf_ctx_t* c) {
  const perf_options_t* o = c->o;
  const size_t esz = mixcomm_dtype_size(o->dtype);
  const size_t smax = o->sizes[o->n_sizes - 1].bytes;
  int ok = 1;
  c->in_cap = c->out_cap = (size_t)c->topo->dp_size * smax;
  cudaError_t e;
  void* h_in = malloc(c->in_cap);
  c->h_out = malloc(c->out_cap);
  if (h_in == NULL || c->h_out == NULL) {
    perf_msg_fail(c, "out of host memory for %zu-byte buffers", c->in_cap);
    ok = 0;
  } else if ((e = cudaMalloc(&c->d_in, c->in_cap)) != cudaSuccess ||
             (e = cudaMalloc(&c->d_out, c->out_cap)) != cudaSuccess) {
    perf_cuda_fail(c, "allocating the benchmark buffers", e);
    ok = 0;
  } else {
    ref_fill_input(o->dtype, PERF_DATA_SEED, c->rank, h_in, c->in_cap / esz, 0);
    /* Legacy-stream copies do not order with the non-blocking benchmark stream: wait. */
    if ((e = cudaMemcpy(c->d_in, h_in, c->in_cap, cudaMemcpyHostToDevice)) != cudaSuccess ||
        (e = cudaMemset(c->d_out, 0xFF, c->out_cap)) != cudaSuccess ||
        (e = cudaDeviceSynchronize()) != cudaSuccess) {
      perf_cuda_fail(c, "filling the input", e);
      ok = 0;
    }
  }
  free(h_in);
  c->ev = calloc((size_t)2 * o->iters, sizeof *c->ev);
  if (ok && c->ev == NULL) {
    perf_msg_fail(c, "out of host memory");
    ok = 0;
  }
  for (int i = 0; ok && i < 2 * o->iters; i++) {
    if ((e = cudaEventCreate(&c->ev[i])) != cudaSuccess) {
      perf_cuda_fail(c, "cudaEventCreate", e);
      ok = 0;
    } else {
      c->n_ev++;
    }
  }
  return ok;
}

/* Every mode of one (op, size), against one reference. 0, or -1 when the run must stop. */
static int run_size(perf_ctx_t* c, mixcomm_op_t op, int si, const mixcomm_mode_t* modes,
                    int n_modes) {
  const perf_size_t* s = &c->o->sizes[si];
  perf_ref_t ref;
  memset(&ref, 0, sizeof ref);
  int rc = 0;
  const int ok = !c->o->check || perf_make_ref(c, op, s, &ref) == 0;
  if (perf_agree(c, ok, "reference") != 0)
    rc = -1;
  for (int mi = 0; rc == 0 && mi < n_modes; mi++)
    rc = perf_run_case(c, op, modes[mi], s, &ref, si == 0);
  perf_free_ref(&ref);
  return rc;
}

int perf_sweep(perf_ctx_t* c) {
  const perf_options_t* o = c->o;
  mixcomm_op_t ops[PERF_MAX_OPS];
  mixcomm_mode_t modes[PERF_MAX_MODES];
  int n_ops = 0, n_modes = 0;
  if (perf_select_work(c, ops, &n_ops, modes, &n_modes) != 0)
    return -1;
  if (measure_ceilings(c) != 0)
    return -1;
  if (perf_agree(c, allocate_buffers(c), "allocating the benchmark buffers") != 0)
    return -1;
  if (c->rank == 0)
    perf_print_header(c);
  for (int oi = 0; oi < n_ops; oi++)
    for (int si = 0; si < o->n_sizes; si++)
      if (run_size(c, ops[oi], si, modes, n_modes) != 0)
        return -1;
  return 0;
}

void perf_release(perf_ctx_t* c) {
  for (int i = 0; i < c->n_ev; i++)
    cudaEventDestroy(c->ev[i]);
  free(c->ev);
  c->ev = NULL;
  if (c->d_in)
    cudaFree(c->d_in);
  if (c->d_out)
    cudaFree(c->d_out);
  c->d_in = c->d_out = NULL;
  perf_floor_free(&c->floors);
  free(c->h_out);
  c->h_out = NULL;
  for (int i = 0; i < c->n_rows; i++)
    free(c->rows[i].rank_us);
  free(c->rows);
  c->rows = NULL;
  free(c->infos);
  c->infos = NULL;
}
