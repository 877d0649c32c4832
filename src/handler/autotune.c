/* SPDX-License-Identifier: Apache-2.0
 * The handler's side of autotune: time real calls with CUDA events, let tune/agree.c make
 * every rank choose the same modes, and keep the result in the on-disk cache (tune/cache.c).
 *
 * Cache agreement: world rank 0 alone reads the cache file and broadcasts what it found (or
 * that it found nothing), so every rank uses the cache or none does; after a measurement rank
 * 0 writes the file. Measurements are plain runs of the handler on scratch buffers filled with
 * a fixed non-zero pattern, with iteration counts fixed per bucket (never time-based), so every
 * rank makes exactly the same sequence of collective calls. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "bootstrap/bootstrap.h"
#include "core/error.h"
#include "core/log.h"
#include "core/topology.h"
#include "handler/handler.h"

/* Rows of 8 KiB: the message of bucket k is 2^k such rows per rank. */
#define TUNE_ROW_BYTES 8192

typedef struct gpu_timer {
  mixcomm_handler_t* h;
  void *in, *out;
  void *norm, *gamma; /* epilogue timings: RMSNorm output and weights */
  int epilogue;       /* time calls with an epilogue (residual in place + RMSNorm) */
  cudaStream_t stream;
  cudaEvent_t start, stop;
} gpu_timer_t;

/* One timed call: plain, or with the epilogue engines use most (the residual updated in place,
 * the scratch output serving as the residual, and RMSNorm). */
static mixcomm_status_t timed_call(gpu_timer_t* g, mixcomm_op_t op, mixcomm_mode_t mode,
                                   int64_t rows, int64_t row_elems) {
  if (!g->epilogue)
    return mixcomm__dispatch(g->h, op, g->in, g->out, rows, row_elems, NULL, mode, g->stream);
  mixcomm_epilogue_t e = MIXCOMM_EPILOGUE_INITIALIZER;
  e.residual_in = g->out;
  e.residual_out = g->out;
  e.rms_gamma = g->gamma;
  e.norm_out = g->norm;
  return mixcomm__dispatch(g->h, op, g->in, NULL, rows, row_elems, &e, mode, g->stream);
}

static int iterations_for(int bucket) {
  /* ~ the same total bytes per bucket: many runs of small messages, few of large ones. */
  int n = 1 << (bucket < 10 ? 10 - bucket : 0);
  if (n > 50)
    n = 50;
  return n < 5 ? 5 : n;
}

static mixcomm_status_t time_one(void* ctx, mixcomm_op_t op, mixcomm_mode_t mode, int bucket,
                                 double* us) {
  gpu_timer_t* g = ctx;
  mixcomm_handler_t* h = g->h;
  const size_t esize = mixcomm_dtype_size(h->config.dtype);
  const int64_t row_elems = TUNE_ROW_BYTES / (int64_t)esize;
  int64_t rows = (int64_t)(mixcomm__tune_bucket_bytes(bucket) / TUNE_ROW_BYTES);
  if (mixcomm__op_is_scatter(op))
    rows *= h->topo.dp_size;
  const int iters = iterations_for(bucket);
  if (g->epilogue) {
    /* The residual is updated in place by every call: start each measurement from the same
     * values, so it never grows to infinities over the whole autotune. */
    const int64_t res_rows =
        mixcomm__op_is_gather(op) ? rows : mixcomm__output_rows(&h->topo, op, rows);
    const size_t bytes = (size_t)res_rows * TUNE_ROW_BYTES;
    MIXCOMM_CUDA_CHECK(cudaMemsetAsync(g->out, 0x3C, bytes, g->stream),
                       "autotune: refilling the scratch residual");
  }
  for (int i = 0; i < 2; i++)
    MIXCOMM_CHECK(timed_call(g, op, mode, rows, row_elems));
  MIXCOMM_CUDA_CHECK(cudaEventRecord(g->start, g->stream), "autotune: recording an event");
  for (int i = 0; i < iters; i++)
    MIXCOMM_CHECK(timed_call(g, op, mode, rows, row_elems));
  MIXCOMM_CUDA_CHECK(cudaEventRecord(g->stop, g->stream), "autotune: recording an event");
  MIXCOMM_CUDA_CHECK(cudaEventSynchronize(g->stop), "autotune: waiting for the timed runs");
  MIXCOMM_CHECK(mixcomm__handler_poll_error(h));
  float ms = 0;
  MIXCOMM_CUDA_CHECK(cudaEventElapsedTime(&ms, g->start, g->stop), "autotune: reading events");
  *us = (double)ms * 1000.0 / iters;
  return MIXCOMM_SUCCESS;
}

static uint32_t valid_modes_mask(const mixcomm_handler_t* h) {
  uint32_t mask = 0;
  for (int m = 0; m < MIXCOMM_NUM_MODES; m++)
    if (m != MIXCOMM_MODE_AUTOTUNE &&
        mixcomm_topology_mode_valid(&h->topo, &h->caps, (mixcomm_mode_t)m, NULL))
      mask |= 1u << m;
  return mask;
}

static uint32_t valid_ops_mask(const mixcomm_handler_t* h) {
  uint32_t mask = 0;
  for (int op = 0; op < MIXCOMM_NUM_OPS; op++)
    if (mixcomm_topology_op_valid(&h->topo, (mixcomm_op_t)op))
      mask |= 1u << op;
  return mask;
}

static mixcomm_status_t measure(mixcomm_handler_t* h) {
  mixcomm_op_t ops[MIXCOMM_NUM_OPS];
  mixcomm_mode_t modes[MIXCOMM_NUM_MODES];
  int nops = 0, nmodes = 0;
  const uint32_t op_mask = valid_ops_mask(h), mode_mask = valid_modes_mask(h);
  for (int op = 0; op < MIXCOMM_NUM_OPS; op++)
    if (op_mask & (1u << op))
      ops[nops++] = (mixcomm_op_t)op;
  for (int m = 0; m < MIXCOMM_NUM_MODES; m++)
    if (mode_mask & (1u << m))
      modes[nmodes++] = (mixcomm_mode_t)m;
  const int buckets = mixcomm__tune_num_buckets(h->topo.dp_size);
  const size_t bytes = (size_t)mixcomm__tune_bucket_bytes(buckets - 1) * (size_t)h->topo.dp_size;

  gpu_timer_t g;
  memset(&g, 0, sizeof g);
  g.h = h;
  mixcomm_status_t st = MIXCOMM_SUCCESS;
  MIXCOMM_CUDA_CHECK_GOTO(cudaMalloc(&g.in, bytes), "autotune: allocating scratch input", st, out);
  MIXCOMM_CUDA_CHECK_GOTO(cudaMalloc(&g.out, bytes), "autotune: allocating scratch output", st,
                          out);
  MIXCOMM_CUDA_CHECK_GOTO(cudaMalloc(&g.norm, bytes), "autotune: allocating scratch output", st,
                          out);
  MIXCOMM_CUDA_CHECK_GOTO(cudaMalloc(&g.gamma, TUNE_ROW_BYTES), "autotune: allocating weights", st,
                          out);
  /* 0x3C3C... is 1.06 in fp16, 0.011 in bf16 and fp32: real data, never zeros. */
  MIXCOMM_CUDA_CHECK_GOTO(cudaMemset(g.in, 0x3C, bytes), "autotune: filling scratch input", st,
                          out);
  MIXCOMM_CUDA_CHECK_GOTO(cudaMemset(g.out, 0x3C, bytes), "autotune: filling scratch residual",
                          st, out);
  MIXCOMM_CUDA_CHECK_GOTO(cudaMemset(g.gamma, 0x3C, TUNE_ROW_BYTES), "autotune: filling weights",
                          st, out);
  MIXCOMM_CUDA_CHECK_GOTO(cudaStreamCreateWithFlags(&g.stream, cudaStreamNonBlocking),
                          "autotune: creating a stream", st, out);
  MIXCOMM_CUDA_CHECK_GOTO(cudaEventCreate(&g.start), "autotune: creating events", st, out);
  MIXCOMM_CUDA_CHECK_GOTO(cudaEventCreate(&g.stop), "autotune: creating events", st, out);
  MIXCOMM_CUDA_CHECK_GOTO(cudaDeviceSynchronize(), "autotune: preparing scratch buffers", st, out);
  /* Plain calls, then calls with an epilogue, which can favour another mode (the NCCL modes
   * run it as an extra kernel). */
  mixcomm__tune_table_t table, table_epilogue;
  memcpy(table, h->tune_table, sizeof table);
  memcpy(table_epilogue, h->tune_table_epilogue, sizeof table_epilogue);
  st = mixcomm__tune_measure_and_agree(h->bs, ops, nops, modes, nmodes, buckets, time_one, &g,
                                       table);
  if (st == MIXCOMM_SUCCESS) {
    g.epilogue = 1;
    st = mixcomm__tune_measure_and_agree(h->bs, ops, nops, modes, nmodes, buckets, time_one, &g,
                                         table_epilogue);
  }
  if (st == MIXCOMM_SUCCESS) {
    memcpy(h->tune_table, table, sizeof table);
    memcpy(h->tune_table_epilogue, table_epilogue, sizeof table_epilogue);
    h->tune_buckets = buckets;
    h->tuned = 1;
  }
out:
  if (g.stream != NULL)
    cudaStreamSynchronize(g.stream);
  if (g.start != NULL)
    cudaEventDestroy(g.start);
  if (g.stop != NULL)
    cudaEventDestroy(g.stop);
  if (g.stream != NULL)
    cudaStreamDestroy(g.stream);
  cudaFree(g.in);
  cudaFree(g.out);
  cudaFree(g.norm);
  cudaFree(g.gamma);
  return st;
}

/* The key of the plain table (epilogue = 0) or of the epilogue table (its own cache file). */
static mixcomm_status_t cache_key(const mixcomm_handler_t* h, int epilogue,
                                  mixcomm__tune_key_t* key) {
  struct cudaDeviceProp prop;
  int driver = 0;
  MIXCOMM_CUDA_CHECK(cudaGetDeviceProperties(&prop, h->device), "reading the GPU name");
  MIXCOMM_CUDA_CHECK(cudaDriverGetVersion(&driver), "reading the driver version");
  mixcomm__tune_key_fields_t f;
  memset(&f, 0, sizeof f);
  f.topo = &h->topo;
  f.dtype = h->config.dtype;
  f.gpu_name = prop.name;
  f.driver_version = driver;
  f.library_version = MIXCOMM_VERSION_CODE;
  f.grid_size = h->plan.grid_size;
  f.max_block_size = h->plan.max_block_size;
  f.min_block_size = h->config.min_block_size;
  f.min_num_steps = h->config.min_num_steps;
  f.ranks_share_gpu = h->caps.ranks_share_gpu;
  f.valid_modes_mask = valid_modes_mask(h);
  mixcomm__tune_key(&f, key);
  if (epilogue) {
    const size_t n = strlen(key->text);
    if (n + sizeof "epilogue=1;" > sizeof key->text)
      return mixcomm__error(MIXCOMM_ERR_INTERNAL, "autotune cache key too long");
    memcpy(key->text + n, "epilogue=1;", sizeof "epilogue=1;");
  }
  return MIXCOMM_SUCCESS;
}

/* mixcomm_run_autotune: measure every valid (op, mode, bucket), then rank 0 writes the cache. */
static mixcomm_status_t run_autotune(mixcomm_handler_t* h) {
  MIXCOMM_CHECK(mixcomm__handler_usable(h, "run_autotune"));
  if (h->state != MIXCOMM_STATE_READY)
    return mixcomm__error(MIXCOMM_ERR_INVALID_USAGE, "run_autotune: the handler is not ready");
  if (!h->caps.autotune)
    return mixcomm__error(MIXCOMM_ERR_INVALID_USAGE,
                          "run_autotune: autotune is off for this handler (use_autotune = 0)");
  MIXCOMM_CHECK(measure(h));
  for (int epilogue = 0; epilogue < 2 && h->topo.world_rank == 0; epilogue++) {
    mixcomm__tune_key_t key;
    char path[4096];
    MIXCOMM_CHECK(cache_key(h, epilogue, &key));
    if (mixcomm__tune_cache_path(h->config.autotune_cache_dir, &key, path, sizeof path) ==
        MIXCOMM_SUCCESS) {
      /* A cache that cannot be written costs the next start a re-tune, nothing else. */
      const mixcomm_mode_t(*table)[MIXCOMM_TUNE_BUCKETS] =
          (const mixcomm_mode_t(*)[MIXCOMM_TUNE_BUCKETS])(epilogue ? h->tune_table_epilogue
                                                                   : h->tune_table);
      if (mixcomm__tune_cache_store(path, &key, valid_ops_mask(h), h->tune_buckets, table) !=
          MIXCOMM_SUCCESS)
        MIXCOMM_WARN("autotune cache not written: %s", mixcomm_last_error());
    }
    mixcomm__error_clear();
  }
  return MIXCOMM_SUCCESS;
}

/* Rank 0's cache lookup, shared with every rank. */
typedef struct cache_result {
  int32_t found;
  int32_t buckets;
  mixcomm__tune_table_t table, table_epilogue;
} cache_result_t;

mixcomm_status_t mixcomm__tune_at_creation(mixcomm_handler_t* h) {
  cache_result_t r;
  memset(&r, 0, sizeof r);
  const int buckets = mixcomm__tune_num_buckets(h->topo.dp_size);
  if (h->topo.world_rank == 0) {
    /* Both tables or neither: a half-found cache re-tunes. */
    r.found = 1;
    for (int epilogue = 0; epilogue < 2 && r.found; epilogue++) {
      mixcomm__tune_key_t key;
      char path[4096] = "";
      MIXCOMM_CHECK(cache_key(h, epilogue, &key));
      r.found = mixcomm__tune_cache_path(h->config.autotune_cache_dir, &key, path,
                                         sizeof path) == MIXCOMM_SUCCESS &&
                mixcomm__tune_cache_load(path, &key, valid_ops_mask(h), valid_modes_mask(h),
                                         buckets, epilogue ? r.table_epilogue : r.table);
    }
    r.buckets = buckets;
    mixcomm__error_clear();
  }
  MIXCOMM_CHECK(mixcomm__bs_broadcast(h->bs, &r, sizeof r, 0, "autotune cache"));
  if (r.found) {
    memcpy(h->tune_table, r.table, sizeof r.table);
    memcpy(h->tune_table_epilogue, r.table_epilogue, sizeof r.table_epilogue);
    h->tune_buckets = r.buckets;
    h->tuned = 1;
    MIXCOMM_INFO("rank %d: autotune table read from the cache", h->topo.world_rank);
    return MIXCOMM_SUCCESS;
  }
  return run_autotune(h);
}

mixcomm_status_t mixcomm_run_autotune(mixcomm_handler_t* h) { return run_autotune(h); }
