/* SPDX-License-Identifier: Apache-2.0
 * mixcomm-bench-epilogue: what the fused epilogue (mixcomm_run_epilogue) saves. For each op the
 * topology allows and each (tokens per rank, hidden size), three CUDA graphs of --graph-calls
 * calls each are timed with events (warm-up replays, then the median of --reps replays; the
 * slowest rank's median is reported):
 *   plain    mixcomm_run alone (writes S);
 *   fused    mixcomm_run_epilogue: residual added in place + RMSNorm in the same call;
 *   unfused  mixcomm_run, then a separate residual-add + RMSNorm kernel over every output row
 *            (the library's own stand-alone epilogue kernel, as the NCCL modes use it).
 * Every call uses MIXCOMM_MODE_DEFAULT (autotune off: the cost model's choice, the same for the
 * plain and the epilogue call whenever it is a fused mode). Prints a markdown table.
 *
 *   mixcomm-bench-epilogue --ranks N [--local-size L] [--local-tp-size T] [--inter-tp-size T]
 *       [--tokens 1,4,16,64,256] [--hidden 4096,7168] [--dtype bf16] [--reps 15]
 *       [--graph-calls 10] [--grid-size N]
 * Ranks are forked here and share the GPU(s) (start the MPS daemon first when they share one). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "bootstrap/bootstrap.h"
#include "common/args.h"
#include "common/graph_bench.h"
#include "common/refdata.h"
#include "common/spawn.h"
#include "handler/handler.h"
#include "kernels/launch.h"

#define MAX_ITEMS 16
#define WARMUP 3

typedef struct options {
  int ranks, local_size, local_tp, inter_tp, reps, graph_calls, grid;
  int tokens[MAX_ITEMS], ntokens;
  int hidden[MAX_ITEMS], nhidden;
  mixcomm_dtype_t dtype;
} options_t;

typedef struct bench {
  const options_t* o;
  const spawn_rank_t* r;
  mixcomm_bootstrap_t* bs;
  mixcomm_handler_t* h;
  const mixcomm_topology_t* t;
  cudaStream_t stream;
  cudaEvent_t ev[2];
  char *x_in, *x_out, *res, *norm, *gamma;
  size_t cap;
} bench_t;

static int fail(const bench_t* b, const char* what, const char* detail) {
  fprintf(stderr, "mixcomm-bench-epilogue: rank %d: %s: %s\n", b->r->rank, what, detail);
  return -1;
}

#define CUDA_TRY(b, call)                                    \
  do {                                                       \
    cudaError_t e_ = (call);                                 \
    if (e_ != cudaSuccess)                                   \
      return fail(b, #call, cudaGetErrorString(e_));         \
  } while (0)

enum { PLAIN, FUSED, UNFUSED, NUM_VARIANTS };

/* One call of the variant, enqueued on the bench stream. */
static int enqueue(bench_t* b, int variant, mixcomm_op_t op, int64_t rows_in, int64_t E,
                   int64_t out_rows) {
  mixcomm_status_t st;
  if (variant == FUSED) {
    mixcomm_epilogue_t e;
    mixcomm_epilogue_init(&e);
    e.residual_in = b->res;
    e.residual_out = b->res;
    e.rms_gamma = b->gamma;
    e.norm_out = b->norm;
    st = mixcomm_run_epilogue(b->h, op, b->x_in, NULL, rows_in, E, &e, MIXCOMM_MODE_DEFAULT,
                              b->stream);
  } else {
    st = mixcomm_run(b->h, op, b->x_in, b->x_out, rows_in, E, MIXCOMM_MODE_DEFAULT, b->stream);
  }
  if (st != MIXCOMM_SUCCESS)
    return fail(b, "enqueueing a call", mixcomm_last_error());
  if (variant != UNFUSED)
    return 0;
  /* A separate fused_add_rms_norm over every output row (a gather op's rows as one block). */
  const int64_t row_vecs = E * (int64_t)mixcomm_dtype_size(b->o->dtype) / 16;
  mixcomm__epilogue_launch_t l;
  memset(&l, 0, sizeof l);
  l.s = b->x_out;
  l.vecs = out_rows * row_vecs;
  l.blocks = 1;
  l.dtype = (int)b->o->dtype;
  l.e.on = 1;
  l.e.add_at_output = 1;
  l.e.normalize = 1;
  l.e.row_vecs = (int)row_vecs;
  l.e.eps = 1e-6f;
  l.e.residual_in = b->res;
  l.e.residual_out = b->res;
  l.e.stash = b->res;
  l.e.stash_is_residual = 1;
  l.e.gamma = b->gamma;
  l.e.norm_out = b->norm;
  const int err = mixcomm__launch_epilogue(&l, b->stream);
  if (err != cudaSuccess)
    return fail(b, "launching the separate epilogue kernel", cudaGetErrorString((cudaError_t)err));
  return 0;
}

/* One call of a variant, for graph_bench_median. */
typedef struct call {
  bench_t* b;
  int variant;
  mixcomm_op_t op;
  int64_t rows_in, E, out_rows;
} call_t;

static int enqueue_call(void* ctx) {
  call_t* c = ctx;
  return enqueue(c->b, c->variant, c->op, c->rows_in, c->E, c->out_rows);
}

/* Median microseconds per call of a graph of graph_calls calls; the slowest rank's. */
static int time_variant(bench_t* b, int variant, mixcomm_op_t op, int64_t rows_in, int64_t E,
                        int64_t out_rows, double* us) {
  const options_t* o = b->o;
  call_t c = {b, variant, op, rows_in, E, out_rows};
  char err[256];
  double mine = NAN;
  int rc = graph_bench_median(b->stream, b->ev, o->graph_calls, WARMUP, o->reps, enqueue_call,
                              &c, &mine, err, sizeof err);
  if (rc != 0 && err[0] != '\0')
    fail(b, "timing a graph of calls", err);
  int peer = -1;
  if (rc == 0 && mixcomm_handler_async_error(b->h, &peer) != MIXCOMM_SUCCESS)
    rc = fail(b, "a timed call", "the handler recorded an asynchronous error");
  if (rc != 0)
    mine = NAN;
  /* Every rank joins, also after a failure, so nobody waits for a rank that left. */
  if (graph_bench_slowest(b->bs, b->t->world_size, mine, us, err, sizeof err) != 0) {
    if (err[0] != '\0')
      fail(b, "exchanging times", err);
    return -1;
  }
  return rc;
}

static int setup_buffers(bench_t* b) {
  const options_t* o = b->o;
  int tmax = 0, hmax = 0;
  for (int i = 0; i < o->ntokens; i++)
    tmax = o->tokens[i] > tmax ? o->tokens[i] : tmax;
  for (int i = 0; i < o->nhidden; i++)
    hmax = o->hidden[i] > hmax ? o->hidden[i] : hmax;
  b->cap = (size_t)tmax * (size_t)hmax * mixcomm_dtype_size(o->dtype) * (size_t)b->t->dp_size;
  char** bufs[] = {&b->x_in, &b->x_out, &b->res, &b->norm};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
    CUDA_TRY(b, cudaMalloc((void**)bufs[i], b->cap));
  CUDA_TRY(b, cudaMalloc((void**)&b->gamma, (size_t)hmax * 4));
  /* Real data, never zeros: the same generator as the tests. */
  const size_t elems = b->cap / mixcomm_dtype_size(o->dtype);
  void* host = malloc(b->cap);
  if (host == NULL)
    return fail(b, "allocating", "out of host memory");
  ref_fill_input(o->dtype, 77, b->t->world_rank, host, elems, 0);
  cudaError_t e = cudaMemcpy(b->x_in, host, b->cap, cudaMemcpyHostToDevice);
  ref_fill_input(o->dtype, 78, b->t->dp_rank, host, elems, 0);
  if (e == cudaSuccess)
    e = cudaMemcpy(b->res, host, b->cap, cudaMemcpyHostToDevice);
  ref_fill_input(o->dtype, 79, 0, host, (size_t)hmax, 0);
  if (e == cudaSuccess)
    e = cudaMemcpy(b->gamma, host, (size_t)hmax * mixcomm_dtype_size(o->dtype),
                   cudaMemcpyHostToDevice);
  free(host);
  CUDA_TRY(b, e);
  return 0;
}

static int run(bench_t* b) {
  const options_t* o = b->o;
  const mixcomm_topology_t* t = b->t;
  if (setup_buffers(b) != 0)
    return -1;
  if (t->world_rank == 0) {
    printf("\n### %d rank(s): %d node(s) x %d, TP %d x DP %d (local TP %d), %s, graphs of %d "
           "calls, median of %d replays, slowest rank\n\n",
           t->world_size, t->inter_size, t->local_size, t->tp_size, t->dp_size,
           t->local_tp_size, mixcomm_dtype_name(o->dtype), o->graph_calls, o->reps);
    printf("| op | mode (plain / epilogue) | tokens | hidden | bytes per rank | plain us | "
           "fused us | unfused us | unfused / fused |\n|---|---|---|---|---|---|---|---|---|\n");
    fflush(stdout);
  }
  mixcomm_op_t ops[MIXCOMM_NUM_OPS];
  int nops = 0;
  mixcomm_get_valid_op_list(b->h, ops, MIXCOMM_NUM_OPS, &nops);
  int rc = 0;
  for (int oi = 0; oi < nops && rc == 0; oi++) {
    const mixcomm_op_t op = ops[oi];
    const int gather = op == MIXCOMM_OP_ALLGATHER || op == MIXCOMM_OP_ALLREDUCE_ALLGATHER;
    const int scatter = op == MIXCOMM_OP_REDUCESCATTER || op == MIXCOMM_OP_REDUCESCATTER_ALLREDUCE;
    for (int hi = 0; hi < o->nhidden && rc == 0; hi++) {
      for (int ti = 0; ti < o->ntokens && rc == 0; ti++) {
        const int64_t E = o->hidden[hi], T = o->tokens[ti];
        const int64_t rows_in = scatter ? T * t->dp_size : T;
        const int64_t out_rows = gather ? T * t->dp_size : T;
        double us[NUM_VARIANTS];
        for (int v = 0; v < NUM_VARIANTS && rc == 0; v++)
          rc = time_variant(b, v, op, rows_in, E, out_rows, &us[v]);
        mixcomm_mode_t m_plain = MIXCOMM_MODE_DEFAULT, m_epi = MIXCOMM_MODE_DEFAULT;
        mixcomm__select_mode(b->h, op, rows_in, E, 0, &m_plain);
        mixcomm__select_mode(b->h, op, rows_in, E, 1, &m_epi);
        if (rc == 0 && t->world_rank == 0) {
          const double bytes = (double)T * (double)E * (double)mixcomm_dtype_size(o->dtype);
          printf("| %s | %s / %s | %lld | %lld | %.0f KiB | %.2f | %.2f | %.2f | %.2f |\n",
                 mixcomm_op_name(op), mixcomm_mode_name(m_plain), mixcomm_mode_name(m_epi),
                 (long long)T, (long long)E,
                 bytes / 1024.0, us[PLAIN], us[FUSED], us[UNFUSED], us[UNFUSED] / us[FUSED]);
          fflush(stdout);
        }
      }
    }
  }
  return rc;
}

static int rank_main(const spawn_rank_t* r, void* arg) {
  const options_t* o = arg;
  bench_t b;
  memset(&b, 0, sizeof b);
  b.o = o;
  b.r = r;
  int ndev = 0;
  if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev < 1)
  {
    fail(&b, "finding a GPU", "no CUDA driver or GPU found");
    return 1;
  }
  const int device = r->host_rank % ndev;
  int sms = 0;
  if (cudaSetDevice(device) != cudaSuccess ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess)
  {
    fail(&b, "selecting the GPU", cudaGetErrorString(cudaGetLastError()));
    return 1;
  }
  const int sharing = (r->world_size + ndev - 1) / ndev;
  int grid = o->grid ? o->grid : sms / sharing;
  if (!o->grid && sharing > 1 && grid > 32)
    grid = 32;
  mixcomm_tcp_options_t tcp = r->tcp;
  tcp.timeout_ms = 300000;
  if (mixcomm_bootstrap_tcp_create(&tcp, r->rank, r->world_size, &b.bs) != MIXCOMM_SUCCESS)
  {
    fail(&b, "bootstrap", mixcomm_last_error());
    return 1;
  }
  mixcomm_config_t c;
  mixcomm_config_init(&c);
  c.world_rank = r->rank;
  c.world_size = r->world_size;
  c.local_rank = r->rank % o->local_size;
  c.local_size = o->local_size;
  c.inter_rank = r->rank / o->local_size;
  c.inter_size = r->world_size / o->local_size;
  c.local_tp_size = o->local_tp;
  c.inter_tp_size = o->inter_tp;
  c.dtype = o->dtype;
  c.device = device;
  c.grid_size = grid;
  c.use_autotune = 0;
  int rc = 1;
  if (mixcomm_handler_create(&c, b.bs, &b.h) != MIXCOMM_SUCCESS) {
    fail(&b, "mixcomm_handler_create", mixcomm_last_error());
  } else if (cudaStreamCreateWithFlags(&b.stream, cudaStreamNonBlocking) == cudaSuccess &&
             cudaEventCreate(&b.ev[0]) == cudaSuccess && cudaEventCreate(&b.ev[1]) == cudaSuccess) {
    b.t = mixcomm_handler_topology(b.h);
    rc = run(&b) == 0 ? 0 : 1;
    cudaStreamSynchronize(b.stream);
  }
  if (b.h != NULL && mixcomm_handler_shutdown(b.h) != MIXCOMM_SUCCESS)
    fail(&b, "mixcomm_handler_shutdown", mixcomm_last_error());
  char* bufs[] = {b.x_in, b.x_out, b.res, b.norm, b.gamma};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
    cudaFree(bufs[i]);
  mixcomm_bootstrap_destroy(b.bs);
  return rc;
}

static int parse_items(const char* opt, const char* s, int lo, int hi, int* out, int* n) {
  char buf[256];
  if (strlen(s) >= sizeof buf) {
    fprintf(stderr, "mixcomm-bench-epilogue: %s: list too long\n", opt);
    return -1;
  }
  strcpy(buf, s);
  *n = 0;
  for (char* tok = strtok(buf, ","); tok != NULL; tok = strtok(NULL, ",")) {
    if (*n == MAX_ITEMS || args_parse_int(tok, lo, hi, &out[*n]) != 0) {
      fprintf(stderr, "mixcomm-bench-epilogue: %s: '%s' is not an integer in [%d, %d] (at most %d "
              "items)\n", opt, tok, lo, hi, MAX_ITEMS);
      return -1;
    }
    (*n)++;
  }
  return *n > 0 ? 0 : -1;
}

int main(int argc, char** argv) {
  options_t o = {2, 0, 0, 0, 15, 10, 0, {1, 4, 16, 64, 256}, 5, {4096, 7168}, 2, MIXCOMM_BFLOAT16};
  for (int i = 1; i < argc; i++) {
    const char* a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : NULL;
    int ok = v != NULL;
    if (ok && !strcmp(a, "--ranks"))
      ok = args_parse_int(v, 1, 64, &o.ranks) == 0;
    else if (ok && !strcmp(a, "--local-size"))
      ok = args_parse_int(v, 1, MIXCOMM_MAX_LOCAL_SIZE, &o.local_size) == 0;
    else if (ok && !strcmp(a, "--local-tp-size"))
      ok = args_parse_int(v, 1, MIXCOMM_MAX_LOCAL_SIZE, &o.local_tp) == 0;
    else if (ok && !strcmp(a, "--inter-tp-size"))
      ok = args_parse_int(v, 1, 64, &o.inter_tp) == 0;
    else if (ok && !strcmp(a, "--reps"))
      ok = args_parse_int(v, 3, 1000, &o.reps) == 0;
    else if (ok && !strcmp(a, "--graph-calls"))
      ok = args_parse_int(v, 1, 100, &o.graph_calls) == 0;
    else if (ok && !strcmp(a, "--grid-size"))
      ok = args_parse_int(v, 1, 1024, &o.grid) == 0;
    else if (ok && !strcmp(a, "--tokens"))
      ok = parse_items(a, v, 1, 1 << 16, o.tokens, &o.ntokens) == 0;
    else if (ok && !strcmp(a, "--hidden"))
      ok = parse_items(a, v, 8, 1 << 16, o.hidden, &o.nhidden) == 0;
    else if (ok && !strcmp(a, "--dtype"))
      ok = mixcomm_dtype_from_name(v, &o.dtype) == MIXCOMM_SUCCESS;
    else
      ok = 0;
    if (!ok) {
      fprintf(stderr,
              "usage: mixcomm-bench-epilogue --ranks N [--local-size L] [--local-tp-size T] "
              "[--inter-tp-size T] [--tokens 1,4,16,64,256] [--hidden 4096,7168] [--dtype bf16] "
              "[--reps 15] [--graph-calls 10] [--grid-size N]\n(bad or missing value at '%s')\n",
              a);
      return 2;
    }
    i++;
  }
  if (o.local_size == 0)
    o.local_size = o.ranks;
  if (o.ranks % o.local_size != 0) {
    fprintf(stderr, "mixcomm-bench-epilogue: --ranks %d is not a multiple of --local-size %d\n",
            o.ranks, o.local_size);
    return 2;
  }
  for (int i = 0; i < o.nhidden; i++) {
    if ((size_t)o.hidden[i] * mixcomm_dtype_size(o.dtype) % 16 != 0) {
      fprintf(stderr, "mixcomm-bench-epilogue: --hidden %d is not a multiple of 16 bytes\n",
              o.hidden[i]);
      return 2;
    }
  }
  const int failed = spawn_ranks(o.ranks, o.local_size, 1800, rank_main, &o);
  return failed ? 1 : 0;
}
