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
#include <stdio.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "common/args.h"
#include "common/bench_rank.h"
#include "common/spawn.h"
#include "core/topology.h"
#include "handler/handler.h"

#define TOOL "mixcomm-bench-uneven"
#define MAX_ITEMS MIXCOMM_MAX_DP_SIZE
#define WARMUP 3

typedef struct options {
  int ranks, local_tp, reps, graph_calls, grid, hidden;
  int counts[MAX_ITEMS], ncounts;
  mixcomm_dtype_t dtype;
} options_t;

typedef struct bench {
  bench_rank_t rank; /* first: the callbacks of bench_rank_run reach the rest through it */
  const options_t* o;
  char *x_in, *x_out;
  int32_t* rows_dev;
  size_t cap;
  int64_t rows[MAX_ITEMS], total, max;
} bench_t;

enum { UNEVEN, DEVICE, PADDED, SAME, NUM_VARIANTS };
static const char* const variant_names[NUM_VARIANTS] = {"uneven", "device", "padded", "same"};

static int enqueue(bench_t* b, int variant, mixcomm_op_t op) {
  const int64_t E = b->o->hidden, dp = b->rank.t->dp_size;
  mixcomm_status_t st;
  if (variant == UNEVEN) {
    st = mixcomm_run_v(b->rank.h, op, b->x_in, b->x_out, b->rows, E, NULL, MIXCOMM_MODE_DEFAULT,
                       b->rank.stream);
  } else if (variant == DEVICE) {
    st = mixcomm_run_v_device(b->rank.h, op, b->x_in, b->x_out, b->rows_dev, b->max, E, NULL,
                              MIXCOMM_MODE_DEFAULT, b->rank.stream);
  } else {
    const int64_t unit = variant == PADDED ? b->max : (b->total + dp - 1) / dp;
    st = mixcomm_run(b->rank.h, op, b->x_in, b->x_out, mixcomm__op_is_scatter(op) ? unit * dp : unit, E,
                     MIXCOMM_MODE_DEFAULT, b->rank.stream);
  }
  if (st != MIXCOMM_SUCCESS)
    return bench_fail(&b->rank, variant_names[variant], mixcomm_last_error());
  return 0;
}

/* One call of a variant, for bench_rank_time. */
typedef struct call {
  bench_t* b;
  int variant;
  mixcomm_op_t op;
} call_t;

static int enqueue_call(void* ctx) {
  call_t* c = ctx;
  return enqueue(c->b, c->variant, c->op);
}

/* Median microseconds per call of a graph of graph_calls calls; the slowest rank's. */
static int time_variant(bench_t* b, int variant, mixcomm_op_t op, double* us) {
  call_t c = {b, variant, op};
  return bench_rank_time(&b->rank, b->o->graph_calls, WARMUP, b->o->reps, enqueue_call, &c, us);
}

static int setup_buffers(bench_t* b) {
  const options_t* o = b->o;
  const int dp = b->rank.t->dp_size;
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
  BENCH_CUDA_TRY(&b->rank, cudaMalloc((void**)&b->x_in, b->cap));
  BENCH_CUDA_TRY(&b->rank, cudaMalloc((void**)&b->x_out, b->cap));
  BENCH_CUDA_TRY(&b->rank, cudaMalloc((void**)&b->rows_dev, sizeof r32));
  BENCH_CUDA_TRY(&b->rank, cudaMemcpy(b->rows_dev, r32, sizeof(int32_t) * (size_t)dp,
                                      cudaMemcpyHostToDevice));
  return bench_upload(&b->rank, b->x_in, o->dtype, 77, b->rank.t->world_rank,
                      b->cap / mixcomm_dtype_size(o->dtype));
}

/* Rank 0: the job and the rows above the table, and the table's head. */
static void print_title(const bench_t* b) {
  const options_t* o = b->o;
  const mixcomm_topology_t* t = b->rank.t;
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

/* Every DP op the topology allows: one line each. */
static int run(bench_t* b) {
  const mixcomm_topology_t* t = b->rank.t;
  if (setup_buffers(b) != 0)
    return -1;
  if (t->world_rank == 0)
    print_title(b);
  const options_t* o = b->o;
  int rc = 0;
  for (int oi = 0; oi < b->rank.n_ops && rc == 0; oi++) {
    const mixcomm_op_t op = b->rank.ops[oi];
    if (op == MIXCOMM_OP_ALLREDUCE)
      continue;
    double us[NUM_VARIANTS];
    for (int v = 0; v < NUM_VARIANTS && rc == 0; v++)
      rc = time_variant(b, v, op, &us[v]);
    const int64_t dp = t->dp_size, same = (b->total + dp - 1) / dp;
    const int s = mixcomm__op_is_scatter(op);
    /* The uneven call's mode is chosen as for the equal call of the same total ("same"). */
    mixcomm_mode_t m_u = MIXCOMM_MODE_DEFAULT, m_p = MIXCOMM_MODE_DEFAULT;
    mixcomm__select_mode(b->rank.h, op, s ? same * dp : same, o->hidden, 0, &m_u);
    mixcomm__select_mode(b->rank.h, op, s ? b->max * dp : b->max, o->hidden, 0, &m_p);
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

/* The handler's topology: one node of every rank, the local TP size given. */
static void configure(bench_rank_t* br, mixcomm_config_t* c) {
  const options_t* o = ((bench_t*)br)->o;
  c->local_rank = br->r->rank;
  c->local_size = br->r->world_size;
  c->inter_rank = 0;
  c->inter_size = 1;
  c->local_tp_size = o->local_tp;
  c->dtype = o->dtype;
}

static int run_rank(bench_rank_t* br) {
  if (br->t->dp_size < 2 || br->t->dp_size > MAX_ITEMS)
    return bench_fail(br, "topology", "needs 2 <= dp_size <= MIXCOMM_MAX_DP_SIZE");
  return run((bench_t*)br);
}

static int rank_main(const spawn_rank_t* r, void* arg) {
  bench_t b;
  memset(&b, 0, sizeof b);
  b.o = arg;
  const int rc = bench_rank_run(&b.rank, TOOL, r, r->rank, b.o->grid, configure, run_rank);
  cudaFree(b.x_in);
  cudaFree(b.x_out);
  cudaFree(b.rows_dev);
  return rc;
}

/* --counts and --dtype (args_parse_pairs): 1 if taken. */
static int parse_other(const char* a, const char* v, void* ctx) {
  options_t* o = ctx;
  if (!strcmp(a, "--counts"))
    return args_parse_int_list(v, 512, 0, 1 << 16, o->counts, MAX_ITEMS, &o->ncounts, NULL,
                               0) == 0;
  if (!strcmp(a, "--dtype"))
    return mixcomm_dtype_from_name(v, &o->dtype) == MIXCOMM_SUCCESS;
  return 0;
}

int main(int argc, char** argv) {
  options_t o = {8, 2, 15, 10, 0, 7168, {1, 64, 3, 17}, 4, MIXCOMM_BFLOAT16};
  const args_int_option_t ints[] = {
      {"--ranks", 2, MIXCOMM_MAX_LOCAL_SIZE, &o.ranks},
      {"--local-tp-size", 1, MIXCOMM_MAX_LOCAL_SIZE, &o.local_tp},
      {"--reps", 3, 1000, &o.reps},
      {"--graph-calls", 1, 100, &o.graph_calls},
      {"--grid-size", 1, 1024, &o.grid},
      {"--hidden", 8, 1 << 16, &o.hidden}};
  const char* bad =
      args_parse_pairs(argc, argv, ints, sizeof ints / sizeof ints[0], parse_other, &o);
  if (bad != NULL) {
    fprintf(stderr,
            "usage: " TOOL " --ranks N [--local-tp-size T] [--counts 1,64,3,17] "
            "[--hidden 7168] [--dtype bf16] [--reps 15] [--graph-calls 10] [--grid-size N]\n"
            "(bad or missing value at '%s'; counts are integers in [0, 65536], at most %d)\n",
            bad, MAX_ITEMS);
    return 2;
  }
  if (o.ranks % o.local_tp != 0 || o.ranks / o.local_tp < 2) {
    fprintf(stderr, TOOL ": --ranks %d / --local-tp-size %d must leave dp >= 2\n",
            o.ranks, o.local_tp);
    return 2;
  }
  if ((size_t)o.hidden * mixcomm_dtype_size(o.dtype) % 16 != 0) {
    fprintf(stderr, TOOL ": --hidden %d is not a multiple of 16 bytes\n",
            o.hidden);
    return 2;
  }
  const int failed = spawn_ranks(o.ranks, o.ranks, 1800, rank_main, &o);
  return failed ? 1 : 0;
}
