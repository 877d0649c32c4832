/* SPDX-License-Identifier: Apache-2.0
 *
 * A complete mixcomm program: every process is one rank of a job, the ranks meet through the
 * built-in TCP rendezvous, run one fused collective on the GPU and check the result.
 *
 * The job's shape comes from the environment, as torchrun and most launchers set it:
 *   RANK, WORLD_SIZE               this process's world rank and the number of ranks (0 and 1)
 *   LOCAL_RANK, LOCAL_WORLD_SIZE   rank inside the node and ranks per node (RANK, WORLD_SIZE)
 *   MASTER_ADDR, MASTER_PORT       where rank 0 listens (read by mixcomm itself)
 *   EXAMPLE_LOCAL_TP_SIZE          TP size inside a node (0 or unset: every rank of the node)
 *   EXAMPLE_ROWS                   rows per rank (default 64)
 *   EXAMPLE_GRID_SIZE              CTAs per rank (0 or unset: one per SM). Ranks sharing one GPU
 *                                  must split it: e.g. 32 for 4 ranks on a 132-SM GPU
 * Two ranks on this machine (one GPU each):
 *   for r in 0 1; do RANK=$r WORLD_SIZE=2 MASTER_PORT=29500 ./mixcomm-example & done; wait
 * or sharing one GPU under CUDA MPS (nvidia-cuda-mps-control -d first):
 *   for r in 0 1; do RANK=$r WORLD_SIZE=2 EXAMPLE_GRID_SIZE=64 MASTER_PORT=29500 \
 *     ./mixcomm-example & done; wait
 *
 * With TP and DP groups (EXAMPLE_LOCAL_TP_SIZE=2 with 4 ranks) it runs ALLREDUCE_ALLGATHER: DP
 * block d of the output is the sum over the TP group of DP rank d. Pure TP runs ALLREDUCE, pure
 * DP ALLGATHER: the same rule with one block or one rank per block. Exit status 0 when every
 * output element is right; any failure prints what failed and why (mixcomm_last_error) and
 * exits 1 after releasing what was created.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>
#include <mixcomm.h>

#define ROW_ELEMS 1024 /* fp32 elements per row: 4 KiB, a multiple of the required 16 bytes */

static int env_int(const char* name, int fallback) {
  const char* v = getenv(name);
  if (v == NULL || *v == '\0')
    return fallback;
  char* end = NULL;
  long x = strtol(v, &end, 10);
  if (*end != '\0' || x < 0 || x > 1 << 20) {
    fprintf(stderr, "mixcomm-example: %s='%s' is not a small non-negative integer\n", name, v);
    exit(2);
  }
  return (int)x;
}

/* Input element i of world rank w: small integers, so every sum is exact in fp32. */
static float input_value(int w, int64_t i) { return (float)((w + 1) * (int)(i % 5 + 1)); }

int main(void) {
  const int rank = env_int("RANK", 0);
  const int world = env_int("WORLD_SIZE", 1);
  const int local_rank = env_int("LOCAL_RANK", rank);
  const int local_size = env_int("LOCAL_WORLD_SIZE", world);
  const int64_t rows = env_int("EXAMPLE_ROWS", 64);
  if (world < 1 || rank >= world || local_size < 1 || world % local_size != 0 ||
      local_rank >= local_size) {
    fprintf(stderr, "mixcomm-example: RANK=%d WORLD_SIZE=%d LOCAL_RANK=%d LOCAL_WORLD_SIZE=%d "
                    "do not describe a job (every node has LOCAL_WORLD_SIZE ranks)\n",
            rank, world, local_rank, local_size);
    return 2;
  }

  int ok = 0;
  mixcomm_status_t st = MIXCOMM_SUCCESS;
  cudaError_t ce = cudaSuccess;
  const char* failed = NULL; /* the call that failed */
  mixcomm_bootstrap_t* bs = NULL;
  mixcomm_handler_t* h = NULL;
  cudaStream_t stream = NULL;
  float *d_in = NULL, *d_out = NULL, *host = NULL;

#define MC(call)                   \
  do {                             \
    st = (call);                   \
    if (st != MIXCOMM_SUCCESS) {   \
      failed = #call;              \
      goto done;                   \
    }                              \
  } while (0)
#define CU(call)                   \
  do {                             \
    ce = (call);                   \
    if (ce != cudaSuccess) {       \
      failed = #call;              \
      goto done;                   \
    }                              \
  } while (0)

  /* One GPU per rank when there are enough; otherwise ranks share them (use CUDA MPS). */
  int devices = 0;
  CU(cudaGetDeviceCount(&devices));
  CU(cudaSetDevice(local_rank % devices));

  /* Rank 0 listens at MASTER_ADDR:MASTER_PORT; empty fields come from the environment. */
  mixcomm_tcp_options_t tcp;
  memset(&tcp, 0, sizeof tcp);
  MC(mixcomm_bootstrap_tcp_create(&tcp, rank, world, &bs));

  mixcomm_config_t cfg;
  mixcomm_config_init(&cfg); /* the defaults; then the topology and the data type */
  cfg.world_rank = rank;
  cfg.world_size = world;
  cfg.local_rank = local_rank;
  cfg.local_size = local_size;
  cfg.inter_rank = rank / local_size; /* the node */
  cfg.inter_size = world / local_size;
  cfg.local_tp_size = env_int("EXAMPLE_LOCAL_TP_SIZE", 0); /* 0: the default */
  cfg.grid_size = env_int("EXAMPLE_GRID_SIZE", 0);         /* 0: one CTA per SM */
  cfg.dtype = MIXCOMM_FLOAT32; /* MIXCOMM_BFLOAT16 and MIXCOMM_FLOAT16 work the same way */
  cfg.use_autotune = 0;        /* a single call: let the cost model pick the mode */
  MC(mixcomm_handler_create(&cfg, bs, &h));

  const mixcomm_topology_t* t = mixcomm_handler_topology(h);
  mixcomm_op_t op = MIXCOMM_OP_ALLREDUCE_ALLGATHER;
  if (t->dp_size == 1)
    op = MIXCOMM_OP_ALLREDUCE;
  else if (t->tp_size == 1)
    op = MIXCOMM_OP_ALLGATHER;
  const int64_t out_rows = mixcomm_output_rows(h, op, rows);
  const size_t in_elems = (size_t)rows * ROW_ELEMS, out_elems = (size_t)out_rows * ROW_ELEMS;

  host = malloc((out_elems > in_elems ? out_elems : in_elems) * sizeof *host);
  if (host == NULL) {
    fprintf(stderr, "rank %d: out of host memory\n", rank);
    goto done;
  }
  for (size_t i = 0; i < in_elems; i++)
    host[i] = input_value(rank, (int64_t)i);
  CU(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  CU(cudaMalloc((void**)&d_in, in_elems * sizeof *d_in));
  CU(cudaMalloc((void**)&d_out, out_elems * sizeof *d_out));
  /* Through the call's stream: a plain cudaMemcpy from pageable memory can return before its DMA
   * lands, and the legacy default stream does not order work on a non-blocking stream. */
  CU(cudaMemcpyAsync(d_in, host, in_elems * sizeof *host, cudaMemcpyHostToDevice, stream));
  CU(cudaStreamSynchronize(stream));

  /* Enqueue only (CUDA-graph capturable); the mode is the library's choice for this size. */
  MC(mixcomm_run(h, op, d_in, d_out, rows, ROW_ELEMS, MIXCOMM_MODE_DEFAULT, stream));
  CU(cudaStreamSynchronize(stream));
  int peer = -1;
  MC(mixcomm_handler_async_error(h, &peer)); /* a peer's failure seen by the kernels */
  CU(cudaMemcpyAsync(host, d_out, out_elems * sizeof *host, cudaMemcpyDeviceToHost, stream));
  CU(cudaStreamSynchronize(stream));

  /* Block d of the output: the sum of the inputs of the ranks whose dp_rank is d. */
  int64_t wrong = 0;
  for (int64_t d = 0; d < out_rows / rows; d++) {
    for (size_t i = 0; i < in_elems; i++) {
      float want = 0.0f;
      for (int w = 0; w < world; w++) {
        mixcomm_topology_t rt;
        MC(mixcomm_topology_for_rank(t, w, &rt));
        if (rt.dp_rank == d)
          want += input_value(w, (int64_t)i);
      }
      wrong += host[(size_t)d * in_elems + i] != want;
    }
  }
  printf("rank %d of %d: %s, tp %d x dp %d, %lld rows of %d floats: %s (%lld wrong)\n", rank,
         world, mixcomm_op_name(op), t->tp_size, t->dp_size, (long long)rows, ROW_ELEMS,
         wrong ? "WRONG" : "correct", (long long)wrong);
  ok = wrong == 0;

done:
  if (failed != NULL && ce != cudaSuccess)
    fprintf(stderr, "rank %d: %s failed: %s (%s)%s\n", rank, failed, cudaGetErrorName(ce),
            cudaGetErrorString(ce),
            ce == cudaErrorInsufficientDriver || ce == cudaErrorNoDevice
                ? ": no CUDA driver or GPU found (mixcomm needs an NVIDIA GPU of compute "
                  "capability 9.0 or newer and its driver)"
                : "");
  else if (failed != NULL)
    fprintf(stderr, "rank %d: %s failed [%s]: %s\n", rank, failed, mixcomm_status_name(st),
            mixcomm_last_error());
  if (h != NULL) {
    /* COLLECTIVE: every rank shuts down (bounded even when a peer is gone). */
    if (mixcomm_handler_shutdown(h) != MIXCOMM_SUCCESS)
      fprintf(stderr, "rank %d: shutdown: %s\n", rank, mixcomm_last_error());
  }
  mixcomm_bootstrap_destroy(bs);
  if (stream != NULL)
    cudaStreamDestroy(stream);
  cudaFree(d_in);
  cudaFree(d_out);
  free(host);
  return ok ? 0 : 1;
}
