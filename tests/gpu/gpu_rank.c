/* SPDX-License-Identifier: Apache-2.0
 * One rank of the GPU test suite (see gpu_tests.c): its GPU, buffers and bootstrap, a handler
 * per dtype running every test in the same order on every rank (the tests: calls.c,
 * checkpoint.c, epilogue.c, uneven.c; what they share: checked_case.c), and the tests of the
 * handler's lifetime (create/shutdown cycles, autotune with its cache). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cuda_runtime_api.h>

#include "bootstrap/bootstrap.h"
#include "common/refdata.h"
#include "gpu/gpu_suite.h"

#define MAX_BLOCK_ELEMS (1u << 20) /* elements of one rank block, largest case */

#define CUDA_OR_FAIL(call)                                                            \
  do {                                                                                \
    cudaError_t e_ = (call);                                                          \
    if (e_ != cudaSuccess) {                                                          \
      failf(g, "%s: %s", #call, cudaGetErrorString(e_));                              \
      return -1;                                                                      \
    }                                                                                 \
  } while (0)

/* ---- handler lifetime ------------------------------------------------------------------- */

static mixcomm_status_t create_handler(gpu_rank_t* g, mixcomm_dtype_t dtype, int autotune,
                                       const char* cache_dir) {
  mixcomm_config_t c;
  mixcomm_config_init(&c);
  c.world_rank = g->spawn.rank;
  c.world_size = g->local_size * g->inter_size;
  c.local_rank = g->spawn.rank % g->local_size;
  c.local_size = g->local_size;
  c.inter_rank = g->spawn.rank / g->local_size;
  c.inter_size = g->inter_size;
  c.local_tp_size = g->local_tp;
  c.inter_tp_size = g->inter_tp;
  c.dtype = dtype;
  c.grid_size = g->grid;
  c.timeout_ms = g->opt->timeout_ms;
  c.use_autotune = autotune;
  c.autotune_cache_dir = cache_dir;
  c.should_init_nvshmem = !g->reuse_nvshmem;
  g->dtype = dtype;
  mixcomm_status_t st = mixcomm_handler_create(&c, g->bs, &g->h);
  if (st == MIXCOMM_SUCCESS)
    g->topo = *mixcomm_handler_topology(g->h);
  g->dead = 0;
  return st;
}

static void destroy_handler(gpu_rank_t* g) {
  if (g->h == NULL)
    return;
  if (mixcomm_handler_shutdown(g->h) != MIXCOMM_SUCCESS && !g->dead)
    failf(g, "shutdown: %s", mixcomm_last_error());
  g->h = NULL;
}

/* Creation and shutdown in a loop must leak nothing. */
static void test_lifecycle(gpu_rank_t* g) {
  size_t free0 = 0, free_first = 0, free1 = 0, total;
  mixcomm__bs_barrier(g->bs, "lifecycle");
  cudaMemGetInfo(&free0, &total);
  const int loops = g->opt->quick ? 3 : 10;
  for (int i = 0; i < loops; i++) {
    if (create_handler(g, MIXCOMM_BFLOAT16, 0, NULL) != MIXCOMM_SUCCESS) {
      failf(g, "lifecycle create %d: %s", i, mixcomm_last_error());
      return;
    }
    mixcomm_op_t ops[MIXCOMM_NUM_OPS];
    valid_ops(g, ops);
    run_case(g, ops[0], MIXCOMM_MODE_DEFAULT, 3, 64, 300 + i, 0, 0, 0);
    destroy_handler(g);
    if (i == 0) {
      /* What the first cycle keeps (run-time and NVSHMEM state that lives as long as the
       * process) is not a leak; growth over the later cycles is. */
      mixcomm__bs_barrier(g->bs, "lifecycle");
      cudaMemGetInfo(&free_first, &total);
    }
  }
  mixcomm__bs_barrier(g->bs, "lifecycle");
  cudaMemGetInfo(&free1, &total);
  const double first = ((double)free0 - (double)free_first) / 1048576.0;
  const double growth = ((double)free_first - (double)free1) / 1048576.0;
  if (g->spawn.rank == 0)
    printf("  lifecycle: %d create/shutdown cycles on a GPU shared by %d ranks: %.1f MiB kept "
           "after the first, %.1f MiB more over the other %d\n",
           loops, g->topo.world_size, first, growth, loops - 1);
  /* Across nodes: a handler that uses the NVSHMEM already running in the process
   * (should_init_nvshmem = 0), as an application that started NVSHMEM itself would. */
  if (g->topo.inter_size > 1) {
    g->reuse_nvshmem = 1;
    if (create_handler(g, MIXCOMM_BFLOAT16, 0, NULL) != MIXCOMM_SUCCESS) {
      failf(g, "should_init_nvshmem = 0: %s", mixcomm_last_error());
    } else {
      mixcomm_op_t ops[MIXCOMM_NUM_OPS];
      valid_ops(g, ops);
      run_case(g, ops[0], MIXCOMM_MODE_FUSED_OPT_WAITS_UC, 5, 256, 333, 0, 0, 0);
      destroy_handler(g);
    }
    g->reuse_nvshmem = 0;
  }
  if (growth > 16.0)
    failf(g, "lifecycle: GPU memory in use grew by %.1f MiB over %d create/shutdown cycles",
          growth, loops - 1);
  else
    g->passed++;
}

/* Autotune with an on-disk cache: the first creation measures, the second reads the file. */
static void test_autotune(gpu_rank_t* g) {
  char dir[256];
  snprintf(dir, sizeof dir, "/tmp/mixcomm-gpu-tests-cache-%d", g->spawn.tcp.port);
  const double t0 = now_s();
  if (create_handler(g, MIXCOMM_BFLOAT16, 1, dir) != MIXCOMM_SUCCESS) {
    failf(g, "autotune: creation: %s", mixcomm_last_error());
    return;
  }
  const double t1 = now_s();
  uint32_t choices[MIXCOMM_NUM_OPS * 16];
  int n = 0;
  mixcomm_op_t ops[MIXCOMM_NUM_OPS];
  const int nops = valid_ops(g, ops);
  for (int oi = 0; oi < nops; oi++) {
    for (int k = 0; k < 15; k++) {
      mixcomm_mode_t m;
      if (mixcomm_select_autotune_mode(g->h, ops[oi], (int64_t)1 << k, 4096, &m) != MIXCOMM_SUCCESS ||
          mixcomm_mode_invalid_reason(g->h, m) != NULL || m == MIXCOMM_MODE_AUTOTUNE) {
        failf(g, "autotune: bucket %d of %s chose an invalid mode", k, mixcomm_op_name(ops[oi]));
        break;
      }
      choices[n++] = (uint32_t)m;
    }
  }
  run_case(g, ops[0], MIXCOMM_MODE_AUTOTUNE, 100, 4096, 55, REF_SPECIAL_NEG_ZERO, 0, 0);
  case_report_t rep = {0, 0, ref_hash(choices, n * sizeof choices[0]),
                       ref_hash(choices, n * sizeof choices[0])};
  if (agree(g, &rep, MIXCOMM_OP_ALLREDUCE, "autotune choices (identical on every rank)") == 0)
    g->passed++;
  destroy_handler(g);
  const double t2 = now_s();
  if (create_handler(g, MIXCOMM_BFLOAT16, 1, dir) != MIXCOMM_SUCCESS) {
    failf(g, "autotune: second creation: %s", mixcomm_last_error());
    return;
  }
  const double t3 = now_s();
  run_case(g, ops[0], MIXCOMM_MODE_DEFAULT, 100, 4096, 56, REF_SPECIAL_NEG_ZERO, 0, 0);
  destroy_handler(g);
  if (g->spawn.rank == 0) {
    printf("  autotune: creation with tuning %.2f s, with the cache %.3f s\n", t1 - t0, t3 - t2);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "ls %s/autotune-*.txt > /dev/null 2>&1", dir);
    if (system(cmd) != 0)
      failf(g, "autotune: no cache file in %s", dir);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
      failf(g, "autotune: could not remove %s", dir);
  }
  if (t3 - t2 > 1.0)
    failf(g, "autotune: creation with a warm cache took %.2f s (target < 1 s)", t3 - t2);
  else
    g->passed++;
}

/* ---- one rank ----------------------------------------------------------------------------- */

static int setup(gpu_rank_t* g) {
  int ndev = 0;
  CUDA_OR_FAIL(cudaGetDeviceCount(&ndev));
  CUDA_OR_FAIL(cudaSetDevice(g->spawn.host_rank % ndev));
  int sms = 0;
  CUDA_OR_FAIL(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount,
                                      g->spawn.host_rank % ndev));
  /* Every rank of the job runs on this host (nodes are emulated): they share the GPUs. */
  const int world = g->local_size * g->inter_size;
  const int sharing = (world + ndev - 1) / ndev;
  g->grid = g->opt->grid ? g->opt->grid : sms / sharing;
  if (g->grid > 32 && sharing > 1)
    g->grid = 32;
  CUDA_OR_FAIL(cudaStreamCreateWithFlags(&g->stream, cudaStreamNonBlocking));
  const int dp_max = g->local_size * g->inter_size;
  g->cap_bytes = (size_t)MAX_BLOCK_ELEMS * 4 * (size_t)dp_max;
  CUDA_OR_FAIL(cudaMalloc((void**)&g->d_in, g->cap_bytes + SLACK));
  CUDA_OR_FAIL(cudaMalloc((void**)&g->d_out, g->cap_bytes + SLACK));
  const size_t elems = g->cap_bytes / 2 + SLACK;
  g->h_in = malloc(g->cap_bytes + SLACK);
  g->h_out = malloc(g->cap_bytes + SLACK);
  g->h_out2 = malloc(g->cap_bytes + SLACK);
  g->ref = malloc(elems * sizeof(double));
  g->abs_sum = malloc(elems * sizeof(double));
  g->neg_zero = malloc(elems);
  if (!g->h_in || !g->h_out || !g->h_out2 || !g->ref || !g->abs_sum || !g->neg_zero) {
    failf(g, "host allocation failed");
    return -1;
  }
  mixcomm_tcp_options_t tcp = g->spawn.tcp;
  tcp.timeout_ms = 120000;
  if (mixcomm_bootstrap_tcp_create(&tcp, g->spawn.rank, g->spawn.world_size, &g->bs) !=
      MIXCOMM_SUCCESS) {
    failf(g, "bootstrap: %s", mixcomm_last_error());
    return -1;
  }
  return 0;
}

/* The tests each handler runs, in this order (--only NAME: those named NAME). */
static const struct {
  const char* name;
  void (*run)(gpu_rank_t* g);
} k_handler_tests[] = {
    {"matrix", test_matrix},
    {"edge", test_edge},
    {"errors", test_errors},
    {"burst", test_burst},
    {"graph", test_graph},
    {"checkpoint", test_checkpoint},
    {"checkpoint", test_checkpoint_signals},
    {"epilogue", test_epilogue},
    {"putcount", test_put_count},
    {"uneven", test_uneven}, /* last: it ends with the checks that leave the handler unusable */
};

int gpu_rank_run(gpu_rank_t* g) {
  if (setup(g) != 0)
    return 1;
  for (int d = 0; d < g->opt->ndtypes; d++) {
    if (create_handler(g, g->opt->dtypes[d], 0, NULL) != MIXCOMM_SUCCESS) {
      failf(g, "handler creation: %s", mixcomm_last_error());
      break;
    }
    if (g->spawn.rank == g->opt->late_rank) {
      /* Start late: every other rank's first kernels wait for this one. */
      printf("  rank %d starts its calls %d ms late\n", g->spawn.rank, g->opt->late_ms);
      fflush(stdout);
      struct timespec late = {g->opt->late_ms / 1000, (long)(g->opt->late_ms % 1000) * 1000000L};
      while (nanosleep(&late, &late) != 0 && errno == EINTR) {
      }
    }
    for (size_t k = 0; k < sizeof k_handler_tests / sizeof k_handler_tests[0]; k++)
      if (want(g, k_handler_tests[k].name) && !g->dead)
        k_handler_tests[k].run(g);
    destroy_handler(g);
  }
  if (want(g, "lifecycle"))
    test_lifecycle(g);
  if (want(g, "autotune"))
    test_autotune(g);
  printf("  rank %d: %d passed, %d failed\n", g->spawn.rank, g->passed, g->failed);
  fflush(stdout);
  mixcomm_bootstrap_destroy(g->bs);
  return g->failed ? 1 : 0;
}
