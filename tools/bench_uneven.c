/* SPDX-License-Identifier: Apache-2.0
 * mixcomm-bench-uneven: what uneven rows per DP rank (mixcomm_run_v) save. For each DP op the
 * topology allows, with counts per DP rank (--counts, repeated cyclically over the DP ranks) of
 * --hidden elements, four CUDA graphs of --graph-calls calls each are timed with events (warm-up
 * replays, then the median of --reps replays; the slowest rank's median is reported):
 *   uneven   mixcomm_run_v with the counts (only the real rows move);
 *   device   mixcomm_run_v_device with the counts in a device array, max_rows = largest count;
 *   padded   mixcomm_run with every rank padded to the largest count (what engines do without
 *            gather-v; the padding copies themselves are not timed, so this is a lower bound of
 *            the padded path);
 *   same     mixcomm_run with ceil(total / dp_size) rows per rank: an equal-size call moving
 *            (about) the same total bytes, the speed to match.
 * Every call uses MIXCOMM_MODE_DEFAULT (autotune off: the cost model's choice). Prints a markdown
 * table.
 *
 *   mixcomm-bench-uneven --ranks N [--local-tp-size T] [--counts 1,64,3,17] [--hidden 7168]
 *       [--dtype bf16] [--reps 15] [--graph-calls 10] [--grid-size N]
 * Ranks are forked here and share the GPU(s) (start the MPS daemon first when they share one).
 * One node only (the GPU suite covers uneven calls across emulated nodes: --only uneven). */
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

#define MAX_ITEMS MIXCOMM_MAX_DP_SIZE
#define WARMUP 3

typedef struct options {
  int ranks, local_tp, reps, graph_calls, grid, hidden;
  int counts[MAX_ITEMS], ncounts;
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
  char *x_in, *x_out;
  int32_t* rows_dev;
  size_t cap;
  int64_t rows[MAX_ITEMS], total, max;
} bench_t;

static int fail(const bench_t* b, const char* what, const char* detail) {
  fprintf(stderr, "mixcomm-bench-uneven: rank %d: %s: %s\n", b->r->rank, what, detail);
  return -1;
}

#define CUDA_TRY(b, call)                                    \
  do {                                                       \
    cudaError_t e_ = (call);                                 \
    if (e_ != cudaSuccess)                                   \
      return fail(b, #call, cudaGetErrorString(e_));         \
  } while (0)

enum { UNEVEN, DEVICE, PADDED, SAME, NUM_VARIANTS };
static const char* const variant_names[NUM_VARIANTS] = {"uneven", "device", "padded", "same"};

static int scatter_op(mixcomm_op_t op) {
  return op == MIXCOMM_OP_REDUCESCATTER || op == MIXCOMM_OP_REDUCESCATTER_ALLREDUCE;
}

static int enqueue(bench_t* b, int variant, mixcomm_op_t op) {
  const int64_t E = b->o->hidden, dp = b->t->dp_size;
  mixcomm_status_t st;
  if (variant == UNEVEN) {
    st = mixcomm_run_v(b->h, op, b->x_in, b->x_out, b->rows, E, NULL, MIXCOMM_MODE_DEFAULT,
                       b->stream);
  } else if (variant == DEVICE) {
    st = mixcomm_run_v_device(b->h, op, b->x_in, b->x_out, b->rows_dev, b->max, E, NULL,
                              MIXCOMM_MODE_DEFAULT, b->stream);
  } else {
    const int64_t unit = variant == PADDED ? b->max : (b->total + dp - 1) / dp;
    st = mixcomm_run(b->h, op, b->x_in, b->x_out, scatter_op(op) ? unit * dp : unit, E,
                     MIXCOMM_MODE_DEFAULT, b->stream);
  }
  if (st != MIXCOMM_SUCCESS)
    return fail(b, variant_names[variant], mixcomm_last_error());
  return 0;
}

/* Median microseconds per call of a graph of graph_calls calls; the slowest rank's. */
/* One call of a variant, for graph_bench_median. */
typedef struct call {
  bench_t* b;
  int variant;
  mixcomm_op_t op;
} call_t;

static int enqueue_call(void* ctx) {
  call_t* c = ctx;
  return enqueue(c->b, c->variant, c->op);
}

static int time_variant(bench_t* b, int variant, mixcomm_op_t op, double* us) {
  const options_t* o = b->o;
  call_t c = {b, variant, op};
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
  const int dp = b->t->dp_size;
  int32_t r32[MAX_ITEMS];
  b->total = 0;
  b->max = 0;
  for (int k = 0; k < dp; k++) {
    b->rows[k] = o->counts[k % o->ncounts];
    r32[k] = (int32_t)b->rows[k];
    b->total += b->rows[k];
    b->max = b->rows[k] > b->max ? b->rows[k] : b->max;
  }
  /* The largest of every variant's input and output: dp_size blocks of the largest count. */
  b->cap = (size_t)(b->max + 1) * (size_t)dp * (size_t)o->hidden * mixcomm_dtype_size(o->dtype);
  CUDA_TRY(b, cudaMalloc((void**)&b->x_in, b->cap));
  CUDA_TRY(b, cudaMalloc((void**)&b->x_out, b->cap));
  CUDA_TRY(b, cudaMalloc((void**)&b->rows_dev, sizeof r32));
  CUDA_TRY(b, cudaMemcpy(b->rows_dev, r32, sizeof(int32_t) * (size_t)dp, cudaMemcpyHostToDevice));
  void* host = malloc(b->cap);
  if (host == NULL)
    return fail(b, "allocating", "out of host memory");
  ref_fill_input(o->dtype, 77, b->t->world_rank, host, b->cap / mixcomm_dtype_size(o->dtype), 0);
  const cudaError_t e = cudaMemcpy(b->x_in, host, b->cap, cudaMemcpyHostToDevice);
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
    printf("\n### %d rank(s), TP %d x DP %d, %s, hidden %d, rows per DP rank [", t->world_size,
           t->tp_size, t->dp_size, mixcomm_dtype_name(o->dtype), o->hidden);
    for (int k = 0; k < t->dp_size; k++)
      printf("%s%lld", k ? ", " : "", (long long)b->rows[k]);
    printf("], graphs of %d calls, median of %d replays, slowest rank\n\n", o->graph_calls,
           o->reps);
    printf("| op | mode (uneven and same / padded) | uneven us | device us | padded us | same us | "
           "padded / uneven | uneven / same |\n|---|---|---|---|---|---|---|---|\n");
    fflush(stdout);
  }
  mixcomm_op_t ops[MIXCOMM_NUM_OPS];
  int nops = 0;
  mixcomm_get_valid_op_list(b->h, ops, MIXCOMM_NUM_OPS, &nops);
  int rc = 0;
  for (int oi = 0; oi < nops && rc == 0; oi++) {
    const mixcomm_op_t op = ops[oi];
    if (op == MIXCOMM_OP_ALLREDUCE)
      continue;
    double us[NUM_VARIANTS];
    for (int v = 0; v < NUM_VARIANTS && rc == 0; v++)
      rc = time_variant(b, v, op, &us[v]);
    const int64_t dp = t->dp_size, same = (b->total + dp - 1) / dp;
    const int s = scatter_op(op);
    /* The uneven call's mode is chosen as for the equal call of the same total ("same"). */
    mixcomm_mode_t m_u = MIXCOMM_MODE_DEFAULT, m_p = MIXCOMM_MODE_DEFAULT;
    mixcomm__select_mode(b->h, op, s ? same * dp : same, o->hidden, 0, &m_u);
    mixcomm__select_mode(b->h, op, s ? b->max * dp : b->max, o->hidden, 0, &m_p);
    if (rc == 0 && t->world_rank == 0) {
      printf("| %s | %s / %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |\n",
             mixcomm_op_name(op), mixcomm_mode_name(m_u), mixcomm_mode_name(m_p), us[UNEVEN],
             us[DEVICE], us[PADDED], us[SAME],
             us[PADDED] / us[UNEVEN], us[UNEVEN] / us[SAME]);
      fflush(stdout);
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
  if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev < 1) {
    fail(&b, "finding a GPU", "no CUDA driver or GPU found");
    return 1;
  }
  const int device = r->rank % ndev;
  int sms = 0;
  if (cudaSetDevice(device) != cudaSuccess ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) {
    fail(&b, "selecting the GPU", cudaGetErrorString(cudaGetLastError()));
    return 1;
  }
  const int sharing = (r->world_size + ndev - 1) / ndev;
  int grid = o->grid ? o->grid : sms / sharing;
  if (!o->grid && sharing > 1 && grid > 32)
    grid = 32;
  mixcomm_tcp_options_t tcp = r->tcp;
  tcp.timeout_ms = 300000;
  if (mixcomm_bootstrap_tcp_create(&tcp, r->rank, r->world_size, &b.bs) != MIXCOMM_SUCCESS) {
    fail(&b, "bootstrap", mixcomm_last_error());
    return 1;
  }
  mixcomm_config_t c;
  mixcomm_config_init(&c);
  c.world_rank = r->rank;
  c.world_size = r->world_size;
  c.local_rank = r->rank;
  c.local_size = r->world_size;
  c.inter_rank = 0;
  c.inter_size = 1;
  c.local_tp_size = o->local_tp;
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
    if (b.t->dp_size < 2 || b.t->dp_size > MAX_ITEMS)
      fail(&b, "topology", "needs 2 <= dp_size <= MIXCOMM_MAX_DP_SIZE");
    else
      rc = run(&b) == 0 ? 0 : 1;
    cudaStreamSynchronize(b.stream);
  }
  if (b.h != NULL && mixcomm_handler_shutdown(b.h) != MIXCOMM_SUCCESS)
    fail(&b, "mixcomm_handler_shutdown", mixcomm_last_error());
  cudaFree(b.x_in);
  cudaFree(b.x_out);
  cudaFree(b.rows_dev);
  mixcomm_bootstrap_destroy(b.bs);
  return rc;
}

static int parse_counts(const char* s, int* out, int* n) {
  char buf[512];
  if (strlen(s) >= sizeof buf)
    return -1;
  strcpy(buf, s);
  *n = 0;
  for (char* tok = strtok(buf, ","); tok != NULL; tok = strtok(NULL, ",")) {
    if (*n == MAX_ITEMS || args_parse_int(tok, 0, 1 << 16, &out[*n]) != 0)
      return -1;
    (*n)++;
  }
  return *n > 0 ? 0 : -1;
}

int main(int argc, char** argv) {
  options_t o = {8, 2, 15, 10, 0, 7168, {1, 64, 3, 17}, 4, MIXCOMM_BFLOAT16};
  for (int i = 1; i < argc; i++) {
    const char* a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : NULL;
    int ok = v != NULL;
    if (ok && !strcmp(a, "--ranks"))
      ok = args_parse_int(v, 2, MIXCOMM_MAX_LOCAL_SIZE, &o.ranks) == 0;
    else if (ok && !strcmp(a, "--local-tp-size"))
      ok = args_parse_int(v, 1, MIXCOMM_MAX_LOCAL_SIZE, &o.local_tp) == 0;
    else if (ok && !strcmp(a, "--reps"))
      ok = args_parse_int(v, 3, 1000, &o.reps) == 0;
    else if (ok && !strcmp(a, "--graph-calls"))
      ok = args_parse_int(v, 1, 100, &o.graph_calls) == 0;
    else if (ok && !strcmp(a, "--grid-size"))
      ok = args_parse_int(v, 1, 1024, &o.grid) == 0;
    else if (ok && !strcmp(a, "--hidden"))
      ok = args_parse_int(v, 8, 1 << 16, &o.hidden) == 0;
    else if (ok && !strcmp(a, "--counts"))
      ok = parse_counts(v, o.counts, &o.ncounts) == 0;
    else if (ok && !strcmp(a, "--dtype"))
      ok = mixcomm_dtype_from_name(v, &o.dtype) == MIXCOMM_SUCCESS;
    else
      ok = 0;
    if (!ok) {
      fprintf(stderr,
              "usage: mixcomm-bench-uneven --ranks N [--local-tp-size T] [--counts 1,64,3,17] "
              "[--hidden 7168] [--dtype bf16] [--reps 15] [--graph-calls 10] [--grid-size N]\n"
              "(bad or missing value at '%s'; counts are integers in [0, 65536], at most %d)\n",
              a, MAX_ITEMS);
      return 2;
    }
    i++;
  }
  if (o.ranks % o.local_tp != 0 || o.ranks / o.local_tp < 2) {
    fprintf(stderr, "mixcomm-bench-uneven: --ranks %d / --local-tp-size %d must leave dp >= 2\n",
            o.ranks, o.local_tp);
    return 2;
  }
  if ((size_t)o.hidden * mixcomm_dtype_size(o.dtype) % 16 != 0) {
    fprintf(stderr, "mixcomm-bench-uneven: --hidden %d is not a multiple of 16 bytes\n",
            o.hidden);
    return 2;
  }
  const int failed = spawn_ranks(o.ranks, o.ranks, 1800, rank_main, &o);
  return failed ? 1 : 0;
}
