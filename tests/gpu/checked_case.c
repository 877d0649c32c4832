/* SPDX-License-Identifier: Apache-2.0
 * What the tests of one rank of the GPU suite share: failures, stream-ordered copies,
 * the status of everything enqueued, one checked case (run twice, against the float64
 * reference) and the exchange of every rank's report after each case, so that TP-rank
 * consistency is checked and a failure on one rank makes every rank abandon the handler
 * together instead of waiting for a peer that left. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cuda_runtime_api.h>

#include "bootstrap/bootstrap.h"
#include "common/refdata.h"
#include "gpu/gpu_suite.h"

void failf(gpu_rank_t* g, const char* fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "  rank %d FAIL [%s]: %s\n", g->spawn.rank, mixcomm_dtype_name(g->dtype), msg);
  fflush(stderr);
  g->failed++;
}

int want(const gpu_rank_t* g, const char* test) {
  return g->opt->only[0] == '\0' || strcmp(g->opt->only, test) == 0;
}

/* Copies and fills go through the test's own stream: a plain cudaMemcpy from pageable memory
 * may return before its DMA lands, and the legacy default stream does not order work on a
 * non-blocking stream, so a kernel could read half-uploaded input. */
cudaError_t upload(gpu_rank_t* g, void* dst, const void* src, size_t bytes) {
  cudaError_t e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, g->stream);
  return e != cudaSuccess ? e : cudaStreamSynchronize(g->stream);
}

cudaError_t download(gpu_rank_t* g, void* dst, const void* src, size_t bytes) {
  cudaError_t e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, g->stream);
  return e != cudaSuccess ? e : cudaStreamSynchronize(g->stream);
}

static void sleep_ms(int ms) {
  struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&t, &t) != 0 && errno == EINTR) {
  }
}

cudaError_t fill(gpu_rank_t* g, void* dst, int value, size_t bytes) {
  cudaError_t e = cudaMemsetAsync(dst, value, bytes, g->stream);
  return e != cudaSuccess ? e : cudaStreamSynchronize(g->stream);
}

/* Status of everything enqueued so far: CUDA errors and the handler's asynchronous error. */
mixcomm_status_t settle(gpu_rank_t* g, char* why, size_t size) {
  cudaError_t e = cudaStreamSynchronize(g->stream);
  if (e != cudaSuccess) {
    snprintf(why, size, "cudaStreamSynchronize: %s", cudaGetErrorString(e));
    return MIXCOMM_ERR_CUDA;
  }
  int peer = -1;
  mixcomm_status_t st = mixcomm_handler_async_error(g->h, &peer);
  if (st != MIXCOMM_SUCCESS) {
    /* The next call turns the record into a full message. */
    mixcomm_status_t st2 = mixcomm_run(g->h, MIXCOMM_OP_ALLREDUCE, NULL, NULL, 0, 8,
                                       MIXCOMM_MODE_DEFAULT, g->stream);
    snprintf(why, size, "asynchronous %s (peer %d): %s", mixcomm_status_name(st), peer,
             st2 != MIXCOMM_SUCCESS ? mixcomm_last_error() : "");
  }
  return st;
}

void* exchange_reports(gpu_rank_t* g, const void* mine, size_t size, const char* tag,
                       const char* what) {
  const int W = g->topo.world_size;
  char* all = calloc((size_t)W, size);
  if (all == NULL || mixcomm__bs_allgather(g->bs, mine, all, size, tag) != MIXCOMM_SUCCESS) {
    failf(g, "%s: exchanging reports: %s", what, mixcomm_last_error());
    free(all);
    g->dead = 1;
    return NULL;
  }
  for (int w = 0; w < W; w++) {
    int32_t status;
    memcpy(&status, all + (size_t)w * size, sizeof status);
    if (status > 0)
      g->dead = 1; /* a rank's handler failed: everyone moves on */
  }
  return all;
}

int agree(gpu_rank_t* g, const case_report_t* mine, mixcomm_op_t op, const char* what) {
  const int W = g->topo.world_size;
  case_report_t* all = exchange_reports(g, mine, sizeof *mine, "test report", what);
  int bad = 0;
  if (all == NULL)
    return -1;
  if (mine->status == 0 && mine->hash1 != mine->hash2) {
    failf(g, "%s: a repeated run gave different bits", what);
    bad = 1;
  }
  for (int w = 0; w < W && mine->status == 0; w++) {
    if (all[w].status != 0)
      continue;
    /* Ranks that must hold identical outputs: all of them, except RS-type ops where only the
     * ranks of one DP group (the TP group) share an output block. */
    const int same = is_scatter(op) ? all[w].dp_rank == mine->dp_rank : 1;
    if (same && all[w].hash1 != mine->hash1) {
      failf(g, "%s: output differs bitwise from rank %d's (which must be identical)", what, w);
      bad = 1;
      break;
    }
  }
  free(all);
  return bad;
}

/* One checked call: op/mode on rows_unit rows (input rows are dp*rows_unit for RS types). */
void run_case(gpu_rank_t* g, mixcomm_op_t op, mixcomm_mode_t mode, int64_t rows_unit,
              int64_t row_elems, uint64_t seed, unsigned specials, size_t in_off, size_t out_off) {
  const mixcomm_topology_t* t = &g->topo;
  const size_t es = mixcomm_dtype_size(g->dtype);
  const int64_t rows_in = is_scatter(op) ? rows_unit * t->dp_size : rows_unit;
  const int64_t rows_out = is_gather(op) ? rows_unit * t->dp_size : rows_unit;
  const size_t n_in = (size_t)rows_in * (size_t)row_elems;
  const size_t n_out = (size_t)rows_out * (size_t)row_elems;
  char what[256];
  snprintf(what, sizeof what, "%s %s rows=%lld row_elems=%lld specials=%u offsets=%zu/%zu",
           mixcomm_op_name(op), mixcomm_mode_name(mode), (long long)rows_in,
           (long long)row_elems, specials, in_off, out_off);
  case_report_t rep = {0, t->dp_rank, 0, 1};
  char why[1200] = "";
  if (n_in * es + in_off > g->cap_bytes + SLACK || n_out * es + out_off > g->cap_bytes + SLACK) {
    failf(g, "%s: test buffers too small", what);
    rep.status = -1;
    agree(g, &rep, op, what);
    return;
  }
  ref_fill_input(g->dtype, seed, t->world_rank, g->h_in, n_in, specials);
  cudaError_t e = upload(g, g->d_in + in_off, g->h_in, n_in * es);
  for (int pass = 0; pass < 2 && rep.status == 0 && e == cudaSuccess; pass++) {
    /* Poison the output (all-ones: NaN) so an element never written is caught. */
    e = cudaMemsetAsync(g->d_out, 0xFF, n_out * es + out_off, g->stream);
    if (e != cudaSuccess)
      break;
    if (g->late_node_ms > 0 && t->inter_rank == 0)
      sleep_ms(g->late_node_ms);
    mixcomm_status_t st = mixcomm_run(g->h, op, g->d_in + in_off, g->d_out + out_off, rows_in,
                                      row_elems, mode, g->stream);
    if (st != MIXCOMM_SUCCESS) {
      snprintf(why, sizeof why, "mixcomm_run: %s: %s", mixcomm_status_name(st),
               mixcomm_last_error());
      rep.status = st;
      break;
    }
    st = settle(g, why, sizeof why);
    if (st != MIXCOMM_SUCCESS) {
      rep.status = st;
      break;
    }
    char* host = pass == 0 ? g->h_out : g->h_out2;
    e = download(g, host, g->d_out + out_off, n_out * es);
    if (e != cudaSuccess)
      break;
    if (pass == 0)
      rep.hash1 = ref_hash(host, n_out * es);
    else
      rep.hash2 = ref_hash(host, n_out * es);
  }
  if (e != cudaSuccess && rep.status == 0) {
    snprintf(why, sizeof why, "CUDA: %s", cudaGetErrorString(e));
    rep.status = MIXCOMM_ERR_CUDA;
  }
  if (rep.status == 0) {
    char report[512];
    const int64_t wrong = check_host_output(g, op, seed, rows_in, row_elems, specials, n_out,
                                            report, sizeof report);
    if (wrong) {
      snprintf(why, sizeof why, "%lld of %zu elements wrong: %s", (long long)wrong, n_out,
               report);
      rep.status = -1;
    }
  }
  if (rep.status != 0)
    failf(g, "%s: %s", what, why);
  const int bad = agree(g, &rep, op, what);
  if (rep.status == 0 && !bad)
    g->passed++;
}

void conclude_test(gpu_rank_t* g, int ok, const char* what) {
  if (ok)
    g->passed++;
  case_report_t rep = {ok ? 0 : -1, g->topo.dp_rank, 0, 0};
  agree(g, &rep, MIXCOMM_OP_REDUCESCATTER, what);
}

int64_t check_host_output(gpu_rank_t* g, mixcomm_op_t op, uint64_t seed, int64_t rows_in,
                          int64_t elems, unsigned specials, size_t n_out, char* report,
                          size_t size) {
  ref_compute(&g->topo, g->dtype, op, seed, rows_in, elems, specials, g->ref, g->abs_sum,
              g->neg_zero);
  return ref_check(g->dtype, g->h_out, g->ref, g->abs_sum, g->neg_zero, n_out, report, size);
}

int64_t check_device_output(gpu_rank_t* g, const void* dev, mixcomm_op_t op, uint64_t seed,
                            int64_t rows_in, int64_t elems, unsigned specials, char* report,
                            size_t size) {
  const int dp = g->topo.dp_size;
  const int64_t rows_out = is_gather(op) ? rows_in * dp : is_scatter(op) ? rows_in / dp : rows_in;
  const size_t n_out = (size_t)rows_out * (size_t)elems;
  download(g, g->h_out, dev, n_out * mixcomm_dtype_size(g->dtype));
  return check_host_output(g, op, seed, rows_in, elems, specials, n_out, report, size);
}

int valid_fused_modes(const gpu_rank_t* g, mixcomm_mode_t* modes) {
  int n = 0;
  for (int m = MIXCOMM_MODE_FUSED_OPT_WAITS_MC; m <= MIXCOMM_MODE_FUSED_OPT_BYTES2_UC; m++)
    if (mixcomm_mode_invalid_reason(g->h, (mixcomm_mode_t)m) == NULL)
      modes[n++] = (mixcomm_mode_t)m;
  return n;
}

int valid_ops(const gpu_rank_t* g, mixcomm_op_t* ops) {
  int n = 0;
  mixcomm_get_valid_op_list(g->h, ops, MIXCOMM_NUM_OPS, &n);
  return n;
}
