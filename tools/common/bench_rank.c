/* SPDX-License-Identifier: Apache-2.0
 * One rank of a graph benchmark tool (bench_rank.h). */
#include "common/bench_rank.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/refdata.h"

int bench_fail(const bench_rank_t* b, const char* what, const char* detail) {
  fprintf(stderr, "%s: rank %d: %s: %s\n", b->tool, b->r->rank, what, detail);
  return -1;
}

/* GPU, grid, bootstrap, and the rank's part of cfg. 0, or -1 reported. */
static int start(bench_rank_t* b, const char* tool, const spawn_rank_t* r, int gpu_index,
                 int grid_opt, mixcomm_config_t* cfg) {
  memset(b, 0, sizeof *b);
  b->tool = tool;
  b->r = r;
  int ndev = 0;
  if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev < 1)
    return bench_fail(b, "finding a GPU", "no CUDA driver or GPU found");
  b->device = gpu_index % ndev;
  int sms = 0;
  if (cudaSetDevice(b->device) != cudaSuccess ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, b->device) != cudaSuccess)
    return bench_fail(b, "selecting the GPU", cudaGetErrorString(cudaGetLastError()));
  /* Ranks sharing a GPU run their kernels side by side (MPS): each gets its share of the SMs. */
  const int sharing = (r->world_size + ndev - 1) / ndev;
  b->grid = grid_opt ? grid_opt : sms / sharing;
  if (!grid_opt && sharing > 1 && b->grid > 32)
    b->grid = 32;
  mixcomm_tcp_options_t tcp = r->tcp;
  tcp.timeout_ms = 300000;
  if (mixcomm_bootstrap_tcp_create(&tcp, r->rank, r->world_size, &b->bs) != MIXCOMM_SUCCESS)
    return bench_fail(b, "bootstrap", mixcomm_last_error());
  mixcomm_config_init(cfg);
  cfg->world_rank = r->rank;
  cfg->world_size = r->world_size;
  cfg->device = b->device;
  cfg->grid_size = b->grid;
  cfg->use_autotune = 0;
  return 0;
}

/* The handler (a failure is reported), the stream and the events: 0 when all exist. */
static int open_handler(bench_rank_t* b, const mixcomm_config_t* cfg) {
  if (mixcomm_handler_create(cfg, b->bs, &b->h) != MIXCOMM_SUCCESS)
    return bench_fail(b, "mixcomm_handler_create", mixcomm_last_error());
  if (cudaStreamCreateWithFlags(&b->stream, cudaStreamNonBlocking) != cudaSuccess ||
      cudaEventCreate(&b->ev[0]) != cudaSuccess || cudaEventCreate(&b->ev[1]) != cudaSuccess)
    return -1;
  b->t = mixcomm_handler_topology(b->h);
  mixcomm_get_valid_op_list(b->h, b->ops, MIXCOMM_NUM_OPS, &b->n_ops);
  return 0;
}

static void end(bench_rank_t* b) {
  if (b->stream != NULL)
    cudaStreamSynchronize(b->stream);
  if (b->h != NULL && mixcomm_handler_shutdown(b->h) != MIXCOMM_SUCCESS)
    bench_fail(b, "mixcomm_handler_shutdown", mixcomm_last_error());
  mixcomm_bootstrap_destroy(b->bs);
}

int bench_rank_run(bench_rank_t* b, const char* tool, const spawn_rank_t* r, int gpu_index,
                   int grid_opt, bench_configure_fn configure, bench_run_fn run) {
  mixcomm_config_t cfg;
  if (start(b, tool, r, gpu_index, grid_opt, &cfg) != 0)
    return 1;
  configure(b, &cfg);
  int rc = 1;
  if (open_handler(b, &cfg) == 0)
    rc = run(b) == 0 ? 0 : 1;
  end(b);
  return rc;
}

int bench_upload(bench_rank_t* b, void* dev, mixcomm_dtype_t dtype, uint64_t seed, int index,
                 size_t count) {
  const size_t bytes = count * mixcomm_dtype_size(dtype);
  void* host = malloc(bytes);
  if (host == NULL)
    return bench_fail(b, "allocating", "out of host memory");
  ref_fill_input(dtype, seed, index, host, count, 0);
  const cudaError_t e = cudaMemcpy(dev, host, bytes, cudaMemcpyHostToDevice);
  free(host);
  BENCH_CUDA_TRY(b, e);
  return 0;
}

int bench_rank_time(bench_rank_t* b, int calls, int warmup, int reps,
                    graph_bench_enqueue_fn enqueue, void* ctx, double* us) {
  char err[256];
  double mine = NAN;
  int rc = graph_bench_median(b->stream, b->ev, calls, warmup, reps, enqueue, ctx, &mine, err,
                              sizeof err);
  if (rc != 0 && err[0] != '\0')
    bench_fail(b, "timing a graph of calls", err);
  int peer = -1;
  if (rc == 0 && mixcomm_handler_async_error(b->h, &peer) != MIXCOMM_SUCCESS)
    rc = bench_fail(b, "a timed call", "the handler recorded an asynchronous error");
  if (rc != 0)
    mine = NAN;
  /* Every rank joins, also after a failure, so nobody waits for a rank that left. */
  if (graph_bench_slowest(b->bs, b->t->world_size, mine, us, err, sizeof err) != 0) {
    if (err[0] != '\0')
      bench_fail(b, "exchanging times", err);
    return -1;
  }
  return rc;
}
