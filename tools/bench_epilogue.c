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
#include <stdio.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "common/args.h"
#include "common/bench_rank.h"
#include "common/spawn.h"
#include "core/topology.h"
#include "handler/handler.h"
#include "kernels/launch.h"

#define TOOL "mixcomm-bench-epilogue"
#define MAX_ITEMS 16
#define WARMUP 3

typedef struct options {
  int ranks, local_size, local_tp, inter_tp, reps, graph_calls, grid;
  int tokens[MAX_ITEMS], ntokens;
  int hidden[MAX_ITEMS], nhidden;
  mixcomm_dtype_t dtype;
} options_t;

typedef struct bench {
  bench_rank_t rank; /* first: the callbacks of bench_rank_run reach the rest through it */
  const options_t* o;
  char *x_in, *x_out, *res, *norm, *gamma;
  size_t cap;
} bench_t;

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
    st = mixcomm_run_epilogue(b->rank.h, op, b->x_in, NULL, rows_in, E, &e,
                              MIXCOMM_MODE_DEFAULT, b->rank.stream);
  } else {
    st = mixcomm_run(b->rank.h, op, b->x_in, b->x_out, rows_in, E, MIXCOMM_MODE_DEFAULT,
                     b->rank.stream);
  }
  if (st != MIXCOMM_SUCCESS)
    return bench_fail(&b->rank, "enqueueing a call", mixcomm_last_error());
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
  const int err = mixcomm__launch_epilogue(&l, b->rank.stream);
  if (err != cudaSuccess)
    return bench_fail(&b->rank, "launching the separate epilogue kernel",
                      cudaGetErrorString((cudaError_t)err));
  return 0;
}

/* One call of a variant, for bench_rank_time. */
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
  call_t c = {b, variant, op, rows_in, E, out_rows};
  return bench_rank_time(&b->rank, b->o->graph_calls, WARMUP, b->o->reps, enqueue_call, &c, us);
}

static int setup_buffers(bench_t* b) {
  const options_t* o = b->o;
  int tmax = 0, hmax = 0;
  for (int i = 0; i < o->ntokens; i++)
    tmax = o->tokens[i] > tmax ? o->tokens[i] : tmax;
  for (int i = 0; i < o->nhidden; i++)
    hmax = o->hidden[i] > hmax ? o->hidden[i] : hmax;
  b->cap = (size_t)tmax * (size_t)hmax * mixcomm_dtype_size(o->dtype) * (size_t)b->rank.t->dp_size;
  char** bufs[] = {&b->x_in, &b->x_out, &b->res, &b->norm};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
    BENCH_CUDA_TRY(&b->rank, cudaMalloc((void**)bufs[i], b->cap));
  BENCH_CUDA_TRY(&b->rank, cudaMalloc((void**)&b->gamma, (size_t)hmax * 4));
  const size_t elems = b->cap / mixcomm_dtype_size(o->dtype);
  if (bench_upload(&b->rank, b->x_in, o->dtype, 77, b->rank.t->world_rank, elems) != 0 ||
      bench_upload(&b->rank, b->res, o->dtype, 78, b->rank.t->dp_rank, elems) != 0 ||
      bench_upload(&b->rank, b->gamma, o->dtype, 79, 0, (size_t)hmax) != 0)
    return -1;
  return 0;
}

/* Rank 0: the job above the table, and the table's head. */
static void print_title(const bench_t* b) {
  const options_t* o = b->o;
  const mixcomm_topology_t* t = b->rank.t;
  printf("\n### %d rank(s): %d node(s) x %d, TP %d x DP %d (local TP %d), %s, graphs of %d "
         "calls, median of %d replays, slowest rank\n\n",
         t->world_size, t->inter_size, t->local_size, t->tp_size, t->dp_size, t->local_tp_size,
         mixcomm_dtype_name(o->dtype), o->graph_calls, o->reps);
  printf("| op | mode (plain / epilogue) | tokens | hidden | bytes per rank | plain us | "
         "fused us | unfused us | unfused / fused |\n|---|---|---|---|---|---|---|---|---|\n");
  fflush(stdout);
}

/* Every op the topology allows, every (hidden, tokens): one line per case. */
static int run(bench_t* b) {
  const options_t* o = b->o;
  const mixcomm_topology_t* t = b->rank.t;
  if (setup_buffers(b) != 0)
    return -1;
  if (t->world_rank == 0)
    print_title(b);
  int rc = 0;
  for (int oi = 0; oi < b->rank.n_ops && rc == 0; oi++) {
    const mixcomm_op_t op = b->rank.ops[oi];
    const int gather = mixcomm__op_is_gather(op), scatter = mixcomm__op_is_scatter(op);
    for (int hi = 0; hi < o->nhidden && rc == 0; hi++) {
      for (int ti = 0; ti < o->ntokens && rc == 0; ti++) {
        const int64_t E = o->hidden[hi], T = o->tokens[ti];
        const int64_t rows_in = scatter ? T * t->dp_size : T;
        const int64_t out_rows = gather ? T * t->dp_size : T;
        double us[NUM_VARIANTS];
        for (int v = 0; v < NUM_VARIANTS && rc == 0; v++)
          rc = time_variant(b, v, op, rows_in, E, out_rows, &us[v]);
        mixcomm_mode_t m_plain = MIXCOMM_MODE_DEFAULT, m_epi = MIXCOMM_MODE_DEFAULT;
        mixcomm__select_mode(b->rank.h, op, rows_in, E, 0, &m_plain);
        mixcomm__select_mode(b->rank.h, op, rows_in, E, 1, &m_epi);
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

/* The handler's topology: --local-size ranks per node, the TP sizes given. */
static void configure(bench_rank_t* br, mixcomm_config_t* c) {
  const options_t* o = ((bench_t*)br)->o;
  c->local_rank = br->r->rank % o->local_size;
  c->local_size = o->local_size;
  c->inter_rank = br->r->rank / o->local_size;
  c->inter_size = br->r->world_size / o->local_size;
  c->local_tp_size = o->local_tp;
  c->inter_tp_size = o->inter_tp;
  c->dtype = o->dtype;
}

static int run_rank(bench_rank_t* br) { return run((bench_t*)br); }

static int rank_main(const spawn_rank_t* r, void* arg) {
  bench_t b;
  memset(&b, 0, sizeof b);
  b.o = arg;
  const int rc = bench_rank_run(&b.rank, TOOL, r, r->host_rank, b.o->grid, configure, run_rank);
  char* bufs[] = {b.x_in, b.x_out, b.res, b.norm, b.gamma};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
    cudaFree(bufs[i]);
  return rc;
}

static int parse_items(const char* opt, const char* s, int lo, int hi, int* out, int* n) {
  char bad[256];
  const int rc = args_parse_int_list(s, 256, lo, hi, out, MAX_ITEMS, n, bad, sizeof bad);
  if (rc == ARGS_LIST_TOO_LONG)
    fprintf(stderr, TOOL ": %s: list too long\n", opt);
  else if (rc == ARGS_LIST_BAD_ITEM)
    fprintf(stderr, TOOL ": %s: '%s' is not an integer in [%d, %d] (at most %d items)\n", opt,
            bad, lo, hi, MAX_ITEMS);
  return rc == 0 ? 0 : -1;
}

/* --tokens, --hidden and --dtype (args_parse_pairs): 1 if taken. */
static int parse_other(const char* a, const char* v, void* ctx) {
  options_t* o = ctx;
  if (!strcmp(a, "--tokens"))
    return parse_items(a, v, 1, 1 << 16, o->tokens, &o->ntokens) == 0;
  if (!strcmp(a, "--hidden"))
    return parse_items(a, v, 8, 1 << 16, o->hidden, &o->nhidden) == 0;
  if (!strcmp(a, "--dtype"))
    return mixcomm_dtype_from_name(v, &o->dtype) == MIXCOMM_SUCCESS;
  return 0;
}

int main(int argc, char** argv) {
  options_t o = {2, 0, 0, 0, 15, 10, 0, {1, 4, 16, 64, 256}, 5, {4096, 7168}, 2, MIXCOMM_BFLOAT16};
  const args_int_option_t ints[] = {
      {"--ranks", 1, 64, &o.ranks},
      {"--local-size", 1, MIXCOMM_MAX_LOCAL_SIZE, &o.local_size},
      {"--local-tp-size", 1, MIXCOMM_MAX_LOCAL_SIZE, &o.local_tp},
      {"--inter-tp-size", 1, 64, &o.inter_tp},
      {"--reps", 3, 1000, &o.reps},
      {"--graph-calls", 1, 100, &o.graph_calls},
      {"--grid-size", 1, 1024, &o.grid}};
  const char* bad =
      args_parse_pairs(argc, argv, ints, sizeof ints / sizeof ints[0], parse_other, &o);
  if (bad != NULL) {
    fprintf(stderr,
            "usage: " TOOL " --ranks N [--local-size L] [--local-tp-size T] "
            "[--inter-tp-size T] [--tokens 1,4,16,64,256] [--hidden 4096,7168] [--dtype bf16] "
            "[--reps 15] [--graph-calls 10] [--grid-size N]\n(bad or missing value at '%s')\n",
            bad);
    return 2;
  }
  if (o.local_size == 0)
    o.local_size = o.ranks;
  if (o.ranks % o.local_size != 0) {
    fprintf(stderr, TOOL ": --ranks %d is not a multiple of --local-size %d\n",
            o.ranks, o.local_size);
    return 2;
  }
  for (int i = 0; i < o.nhidden; i++) {
    if ((size_t)o.hidden[i] * mixcomm_dtype_size(o.dtype) % 16 != 0) {
      fprintf(stderr, TOOL ": --hidden %d is not a multiple of 16 bytes\n",
              o.hidden[i]);
      return 2;
    }
  }
  const int failed = spawn_ranks(o.ranks, o.local_size, 1800, rank_main, &o);
  return failed ? 1 : 0;
}
