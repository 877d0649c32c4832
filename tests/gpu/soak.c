/* SPDX-License-Identifier: Apache-2.0
 * Soak test (mixcomm-soak): a long random stream of collectives, every result checked against
 * the float64 reference of tools/common/refdata.c. See docs/reliability.md.
 *
 *   mixcomm-soak [--ranks 4] [--tp T] [--calls 100000] [--seed S] [--dtypes bf16,fp16,fp32]
 *                [--batch 64] [--graph-percent 2] [--max-rows 512] [--max-elems 8192]
 *                [--timeout-ms 10000] [--limit-s 570] [--all-modes] [--dry-run] [--verbose]
 *
 * Every rank draws the same random sequence (shared seed), so all ranks make the same calls:
 * each call picks a valid op, a fused mode or DEFAULT (--all-modes: also the NCCL modes when
 * they are valid; autotune is off in the soak's handlers), a shape
 * (rows 1..max-rows per output block, sometimes 0; row_elems a multiple of the 16-byte vector
 * from 8 to max-elems, mostly small so the host-side reference keeps up), special values (-0.0,
 * all-ones words) and one of two streams. The handler is never used on two streams at once:
 * when the stream changes, the next one waits for an event recorded on the previous one.
 * Sometimes a group of 2-6 calls is captured into a CUDA graph and replayed 1-3 times.
 *
 * Calls are batched: up to --batch calls are enqueued into distinct slots of one input and one
 * output buffer (inputs uploaded and outputs poisoned first, the ranks meeting at a bootstrap
 * barrier before each batch), then the host synchronises once,
 * downloads every output and checks each call against its reference. The calls are split
 * evenly over the dtypes, one handler per dtype. Each rank counts calls, checked calls, wrong
 * elements and errors in memory shared with the parent, which prints
 *   soak: calls N, checked N, wrong elements N, errors N, seconds S
 * (calls: collective calls each rank made, each with its own output; checked: calls whose
 * output every rank verified; wrong elements and errors: summed over ranks) and exits non-zero
 * if anything was wrong, an error occurred, a rank failed, or not every call was checked.
 *
 * --dry-run: no GPU and no ranks; this process plans every call of rank 0 and computes inputs
 * and references on the host, to check the plan and measure the host-side cost per call.
 */
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cuda_runtime_api.h>

#include "common/args.h"
#include "common/refdata.h"
#include "common/spawn.h"
#include "mixcomm.h"

#define MAX_RANKS 16
#define MAX_GROUP 6
#define ALIGN 256

typedef struct options {
  int ranks, tp;
  long long calls;
  uint64_t seed;
  mixcomm_dtype_t dtypes[3];
  int ndtypes;
  int batch;
  int graph_percent;
  int max_rows, max_elems;
  int timeout_ms;
  int limit_s;
  int all_modes;
  int dry_run;
  int verbose;
} options_t;

typedef struct counts {
  volatile int state; /* 1 started, 2 finished */
  long long calls;      /* collective calls made (each with its own output slot) */
  long long checked;    /* calls whose output was verified (or that had nothing to verify) */
  long long executions; /* kernel-level runs, counting every graph replay */
  long long wrong;      /* wrong elements */
  long long errors;     /* failed calls or asynchronous errors */
  long long zero_rows, graphs, graph_calls, switches, elements;
  long long per_op[MIXCOMM_NUM_OPS];
  long long per_mode[MIXCOMM_NUM_MODES + 1]; /* index mode + 1: DEFAULT is 0 */
  double seconds;
  char first_error[1024];
  char first_wrong[1024];
} counts_t;

typedef struct shared {
  counts_t r[MAX_RANKS];
} shared_t;

/* ---- helpers ------------------------------------------------------------------------------ */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t rng_next(uint64_t* s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Uniform integer in [lo, hi]. */
static int64_t rng_range(uint64_t* s, int64_t lo, int64_t hi) {
  if (hi <= lo)
    return lo;
  return lo + (int64_t)(rng_next(s) % (uint64_t)(hi - lo + 1));
}

/* Log-uniform integer in [lo, hi] (lo >= 1): small values much more likely. */
static int64_t rng_log(uint64_t* s, int64_t lo, int64_t hi) {
  if (hi <= lo)
    return lo;
  const double u = (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
  int64_t v = (int64_t)floor(exp(log((double)lo) + u * (log((double)hi + 1.0) - log((double)lo))));
  return v < lo ? lo : v > hi ? hi : v;
}

static int is_gather(mixcomm_op_t op) {
  return op == MIXCOMM_OP_ALLGATHER || op == MIXCOMM_OP_ALLREDUCE_ALLGATHER;
}
static int is_scatter(mixcomm_op_t op) {
  return op == MIXCOMM_OP_REDUCESCATTER || op == MIXCOMM_OP_REDUCESCATTER_ALLREDUCE;
}

static size_t align_up(size_t v, size_t a) { return (v + a - 1) / a * a; }

/* ---- the plan: every rank draws the same calls -------------------------------------------- */

typedef struct call {
  mixcomm_op_t op;
  mixcomm_mode_t mode;
  int64_t rows_in, rows_out, elems;
  uint64_t seed;
  unsigned specials;
  size_t in_off, out_off, in_bytes, out_bytes;
  int null_ptrs; /* zero rows passed with NULL buffers */
} call_t;

typedef struct unit {
  call_t c[MAX_GROUP];
  int n;       /* calls */
  int graph;   /* captured into a graph and replayed */
  int replays; /* graph launches */
  int stream;  /* 0 or 1 */
} unit_t;

typedef struct plan_ctx {
  const options_t* opt;
  uint64_t rng;
  mixcomm_dtype_t dtype;
  int dp;
  mixcomm_op_t ops[MIXCOMM_NUM_OPS];
  int nops;
  mixcomm_mode_t modes[MIXCOMM_NUM_MODES + 1];
  int nmodes;
  uint64_t next_seed;
} plan_ctx_t;

/* One call's shape. `small_only` for calls inside a graph (they must fit a batch together). */
static void draw_call(plan_ctx_t* p, call_t* c, int small_only) {
  const options_t* o = p->opt;
  const int64_t vec = 16 / (int64_t)mixcomm_dtype_size(p->dtype);
  const int64_t kmin = (8 + vec - 1) / vec, kmax = o->max_elems / vec > kmin ? o->max_elems / vec
                                                                               : kmin;
  memset(c, 0, sizeof *c);
  c->op = p->ops[rng_range(&p->rng, 0, p->nops - 1)];
  c->mode = p->modes[rng_range(&p->rng, 0, p->nmodes - 1)];
  const int64_t cls = rng_range(&p->rng, 0, 9999);
  int64_t rows_unit, k;
  if (cls < 150) { /* 1.5%: zero rows */
    rows_unit = 0;
    k = rng_range(&p->rng, kmin, kmin + 31);
  } else if (cls < 8150 || small_only) { /* 80%: tiny */
    rows_unit = rng_range(&p->rng, 1, 8 < o->max_rows ? 8 : o->max_rows);
    k = rng_range(&p->rng, kmin, kmin + 31 < kmax ? kmin + 31 : kmax);
  } else if (cls < 9650) { /* 15%: medium */
    rows_unit = rng_range(&p->rng, 1, 64 < o->max_rows ? 64 : o->max_rows);
    k = rng_log(&p->rng, kmin, 2048 / vec < kmax ? 2048 / vec : kmax);
  } else if (cls < 9995) { /* 3.45%: large, log-uniform over the whole range */
    rows_unit = rng_log(&p->rng, 1, o->max_rows);
    k = rng_log(&p->rng, kmin, kmax);
  } else { /* 0.05%: the largest shapes */
    rows_unit = rng_range(&p->rng, (o->max_rows + 1) / 2, o->max_rows);
    k = rng_range(&p->rng, (kmax + 1) / 2, kmax);
  }
  c->elems = k * vec;
  c->rows_in = is_scatter(c->op) ? rows_unit * p->dp : rows_unit;
  c->rows_out = is_gather(c->op) ? rows_unit * p->dp : rows_unit;
  const size_t es = mixcomm_dtype_size(p->dtype);
  c->in_bytes = (size_t)c->rows_in * (size_t)c->elems * es;
  c->out_bytes = (size_t)c->rows_out * (size_t)c->elems * es;
  static const unsigned specials[] = {0, 0, 0, 0, 0, REF_SPECIAL_NEG_ZERO, REF_SPECIAL_NEG_ZERO,
                                      REF_SPECIAL_NEG_ZERO, REF_SPECIAL_POISON,
                                      REF_SPECIAL_NEG_ZERO | REF_SPECIAL_POISON};
  c->specials = specials[rng_range(&p->rng, 0, 9)];
  c->null_ptrs = rows_unit == 0 && rng_range(&p->rng, 0, 1) == 1;
  c->seed = p->next_seed++;
}

static void draw_unit(plan_ctx_t* p, unit_t* u, long long calls_left) {
  memset(u, 0, sizeof *u);
  u->stream = (int)rng_range(&p->rng, 0, 1);
  const int graph = calls_left >= 2 && rng_range(&p->rng, 0, 99) < p->opt->graph_percent;
  if (graph) {
    u->graph = 1;
    u->n = (int)rng_range(&p->rng, 2, calls_left < MAX_GROUP ? calls_left : MAX_GROUP);
    u->replays = (int)rng_range(&p->rng, 1, 3);
    for (int i = 0; i < u->n; i++)
      draw_call(p, &u->c[i], 1);
  } else {
    u->n = 1;
    draw_call(p, &u->c[0], 0);
  }
}

/* Place a unit's calls after *in_used / *out_used; 0 if it does not fit the capacity. */
static int place_unit(plan_ctx_t* p, unit_t* u, size_t* in_used, size_t* out_used, size_t cap) {
  size_t in = *in_used, out = *out_used;
  for (int i = 0; i < u->n; i++) {
    call_t* c = &u->c[i];
    /* One call in eight at an offset that is 16-byte but not 256-byte aligned. */
    const size_t skew = rng_range(&p->rng, 0, 7) == 0 ? 16 * (size_t)rng_range(&p->rng, 1, 15) : 0;
    c->in_off = align_up(in, ALIGN) + skew;
    c->out_off = align_up(out, ALIGN) + skew;
    in = c->in_off + c->in_bytes;
    out = c->out_off + c->out_bytes;
  }
  if (in > cap || out > cap)
    return 0;
  *in_used = in;
  *out_used = out;
  return 1;
}

/* The next batch: units for at most opt->batch of the `left` calls still to make, whose
 * buffers fit `cap` bytes. A unit that does not fit waits in `pending` for the next batch. */
typedef struct batch {
  unit_t* units; /* opt->batch entries */
  int nunits, ncalls;
  size_t in_used, out_used;
  unit_t pending;
  int have_pending;
} batch_t;

/* Fill b with the next batch; -1 if one unit alone does not fit an empty batch. */
static int plan_batch(plan_ctx_t* p, batch_t* b, long long left, size_t cap) {
  const int max_calls = p->opt->batch;
  b->nunits = b->ncalls = 0;
  b->in_used = b->out_used = 0;
  while (b->ncalls < max_calls && left - b->ncalls > 0) {
    unit_t u;
    if (b->have_pending) {
      u = b->pending;
      b->have_pending = 0;
    } else {
      draw_unit(p, &u, left - b->ncalls);
    }
    if ((b->ncalls > 0 && b->ncalls + u.n > max_calls) ||
        !place_unit(p, &u, &b->in_used, &b->out_used, cap)) {
      if (b->nunits == 0)
        return -1;
      b->pending = u;
      b->have_pending = 1;
      break;
    }
    b->units[b->nunits++] = u;
    b->ncalls += u.n;
  }
  return 0;
}

/* ---- one rank ------------------------------------------------------------------------------ */

typedef struct soak_rank {
  const options_t* opt;
  spawn_rank_t spawn;
  counts_t* cnt;
  int grid;
  cudaStream_t s[2];
  cudaEvent_t ev;
  char *d_in, *d_out, *h_in, *h_out;
  size_t cap;
  double *ref, *abs_sum;
  unsigned char* neg_zero;
  size_t max_elems_call;
  mixcomm_bootstrap_t* bs;
  mixcomm_handler_t* h;
  mixcomm_topology_t topo;
  int dead;
} soak_rank_t;

static void errorf(soak_rank_t* g, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
static void errorf(soak_rank_t* g, const char* fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  g->cnt->errors++;
  if (g->cnt->first_error[0] == '\0')
    snprintf(g->cnt->first_error, sizeof g->cnt->first_error, "%s", msg);
  if (g->cnt->errors <= 5)
    fprintf(stderr, "  soak rank %d ERROR: %s\n", g->spawn.rank, msg);
  fflush(stderr);
}

/* Largest in/out bytes of one call, and largest element count of one output, for any dtype. */
static size_t max_call_bytes(const options_t* o, int dp) {
  return (size_t)o->max_rows * (size_t)dp * (size_t)o->max_elems * 4;
}

static int plan_init(plan_ctx_t* p, const options_t* o, mixcomm_dtype_t dtype,
                     const mixcomm_topology_t* t, const mixcomm_handler_t* h, int dtype_index) {
  memset(p, 0, sizeof *p);
  p->opt = o;
  p->dtype = dtype;
  p->dp = t->dp_size;
  p->rng = o->seed * 0x9E3779B97F4A7C15ull + 0x51A4ull + (uint64_t)dtype_index;
  p->next_seed = o->seed * 1000003ull + (uint64_t)dtype_index * 0x100000000ull;
  for (int op = 0; op < MIXCOMM_NUM_OPS; op++)
    if (mixcomm_topology_op_valid(t, (mixcomm_op_t)op))
      p->ops[p->nops++] = (mixcomm_op_t)op;
  p->modes[p->nmodes++] = MIXCOMM_MODE_DEFAULT;
  for (int m = 0; m < MIXCOMM_NUM_MODES; m++) {
    const int fused = m >= MIXCOMM_MODE_FUSED_OPT_WAITS_MC && m <= MIXCOMM_MODE_FUSED_OPT_BYTES2_UC;
    if ((!fused && !o->all_modes) || m == MIXCOMM_MODE_AUTOTUNE) /* handlers: autotune off */
      continue;
    const int valid = h != NULL ? mixcomm_mode_invalid_reason(h, (mixcomm_mode_t)m) == NULL
                                : mixcomm_topology_mode_valid(t, NULL, (mixcomm_mode_t)m, NULL);
    if (valid)
      p->modes[p->nmodes++] = (mixcomm_mode_t)m;
  }
  return p->nops > 0 ? 0 : -1;
}

/* Enqueue one unit: eager call or captured graph, on its stream, after the previous stream. */
static void enqueue_unit(soak_rank_t* g, const unit_t* u, int* prev,
                         cudaGraphExec_t* execs, int* nexecs) {
  const options_t* o = g->opt;
  cudaStream_t s = g->s[u->stream];
  counts_t* k = g->cnt;
  if (u->stream != *prev) {
    cudaError_t e = cudaEventRecord(g->ev, g->s[*prev]);
    if (e == cudaSuccess)
      e = cudaStreamWaitEvent(s, g->ev, 0);
    if (e != cudaSuccess) {
      errorf(g, "ordering the streams: %s", cudaGetErrorString(e));
      g->dead = 1;
      return;
    }
    k->switches++;
    *prev = u->stream;
  }
  cudaGraph_t graph = NULL;
  if (u->graph && cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal) != cudaSuccess) {
    errorf(g, "cudaStreamBeginCapture failed");
    g->dead = 1;
    return;
  }
  for (int i = 0; i < u->n && !g->dead; i++) {
    const call_t* c = &u->c[i];
    const void* in = c->null_ptrs ? NULL : g->d_in + c->in_off;
    void* out = c->null_ptrs ? NULL : g->d_out + c->out_off;
    mixcomm_status_t st = mixcomm_run(g->h, c->op, in, out, c->rows_in, c->elems, c->mode, s);
    if (st != MIXCOMM_SUCCESS) {
      errorf(g, "mixcomm_run(%s, %s, rows %lld x %lld%s): %s: %s", mixcomm_op_name(c->op),
             c->mode == MIXCOMM_MODE_DEFAULT ? "DEFAULT" : mixcomm_mode_name(c->mode),
             (long long)c->rows_in, (long long)c->elems, u->graph ? ", in a graph" : "",
             mixcomm_status_name(st), mixcomm_last_error());
      g->dead = 1;
    }
    k->calls++;
    k->per_op[c->op]++;
    k->per_mode[c->mode + 1]++;
    k->zero_rows += c->rows_in == 0;
    if (!u->graph)
      k->executions++;
  }
  if (!u->graph)
    return;
  cudaError_t e = cudaStreamEndCapture(s, &graph);
  if (e != cudaSuccess || g->dead) {
    if (!g->dead)
      errorf(g, "cudaStreamEndCapture: %s", cudaGetErrorString(e));
    if (graph)
      cudaGraphDestroy(graph);
    g->dead = 1;
    return;
  }
  cudaGraphExec_t exec = NULL;
  e = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  if (e != cudaSuccess) {
    errorf(g, "cudaGraphInstantiate: %s", cudaGetErrorString(e));
    g->dead = 1;
    return;
  }
  execs[(*nexecs)++] = exec;
  for (int r = 0; r < u->replays; r++) {
    e = cudaGraphLaunch(exec, s);
    if (e != cudaSuccess) {
      errorf(g, "cudaGraphLaunch: %s", cudaGetErrorString(e));
      g->dead = 1;
      return;
    }
    k->executions += u->n;
  }
  k->graphs++;
  k->graph_calls += u->n;
  (void)o;
}

static void verify_call(soak_rank_t* g, mixcomm_dtype_t dtype, const call_t* c) {
  counts_t* k = g->cnt;
  if (c->rows_in == 0) {
    k->checked++;
    return;
  }
  const size_t n_out = (size_t)c->rows_out * (size_t)c->elems;
  ref_compute(&g->topo, dtype, c->op, c->seed, c->rows_in, c->elems, c->specials, g->ref,
              g->abs_sum, g->neg_zero);
  char report[400];
  const int64_t wrong = ref_check(dtype, g->h_out + c->out_off, g->ref, g->abs_sum, g->neg_zero,
                                  n_out, report, sizeof report);
  k->checked++;
  k->elements += (long long)n_out;
  if (wrong) {
    k->wrong += wrong;
    char what[1024];
    snprintf(what, sizeof what, "%s %s %s rows %lld x %lld specials %u offsets %zu/%zu: %lld of %zu "
             "wrong: %s",
             mixcomm_dtype_name(dtype), mixcomm_op_name(c->op),
             c->mode == MIXCOMM_MODE_DEFAULT ? "DEFAULT" : mixcomm_mode_name(c->mode),
             (long long)c->rows_in, (long long)c->elems, c->specials, c->in_off, c->out_off,
             (long long)wrong, n_out, report);
    if (k->first_wrong[0] == '\0')
      snprintf(k->first_wrong, sizeof k->first_wrong, "%s", what);
    if (k->wrong == wrong || g->opt->verbose)
      fprintf(stderr, "  soak rank %d WRONG: %s\n", g->spawn.rank, what);
  }
}

/* Run this dtype's share of the calls. */
static void soak_dtype(soak_rank_t* g, mixcomm_dtype_t dtype, int dtype_index, long long calls,
                       long long* done_total, long long total, double t_start) {
  const options_t* o = g->opt;
  plan_ctx_t p;
  if (plan_init(&p, o, dtype, &g->topo, g->h, dtype_index) != 0) {
    errorf(g, "no valid op for this topology");
    g->dead = 1;
    return;
  }
  unit_t* units = calloc((size_t)o->batch, sizeof *units);
  cudaGraphExec_t* execs = calloc((size_t)o->batch, sizeof *execs);
  if (units == NULL || execs == NULL) {
    errorf(g, "host allocation failed");
    g->dead = 1;
    free(units);
    free(execs);
    return;
  }
  batch_t b = {.units = units};
  long long left = calls;
  long long next_progress = total / 10;
  while (left > 0 && !g->dead) {
    if (plan_batch(&p, &b, left, g->cap) != 0) {
      errorf(g, "a call does not fit the %zu-byte buffers", g->cap);
      g->dead = 1;
      break;
    }
    const int nunits = b.nunits, ncalls = b.ncalls;
    const size_t in_used = b.in_used, out_used = b.out_used;
    /* Inputs of this rank, uploaded once; outputs poisoned (all-ones NaN). */
    for (int i = 0; i < nunits; i++)
      for (int j = 0; j < units[i].n; j++) {
        const call_t* c = &units[i].c[j];
        if (c->rows_in > 0)
          ref_fill_input(dtype, c->seed, g->topo.world_rank, g->h_in + c->in_off,
                         (size_t)c->rows_in * (size_t)c->elems, c->specials);
      }
    /* Ranks verify at different speeds: meet before enqueueing, so that no kernel waits for a
     * peer that is still checking the previous batch on the host (the kernel timeout is for
     * faults, not for this). */
    if (g->bs->barrier(g->bs->ctx) != 0) {
      errorf(g, "bootstrap barrier before a batch: %s", mixcomm_last_error());
      g->dead = 1;
      break;
    }
    cudaError_t e = cudaMemcpyAsync(g->d_in, g->h_in, in_used, cudaMemcpyHostToDevice, g->s[0]);
    if (e == cudaSuccess)
      e = cudaMemsetAsync(g->d_out, 0xFF, out_used, g->s[0]);
    if (e != cudaSuccess) {
      errorf(g, "upload: %s", cudaGetErrorString(e));
      g->dead = 1;
      break;
    }
    int prev = 0, nexecs = 0;
    for (int i = 0; i < nunits && !g->dead; i++)
      enqueue_unit(g, &units[i], &prev, execs, &nexecs);
    /* Back to stream 0 for the download; then one synchronisation for the batch. */
    if (prev != 0) {
      e = cudaEventRecord(g->ev, g->s[prev]);
      if (e == cudaSuccess)
        e = cudaStreamWaitEvent(g->s[0], g->ev, 0);
    }
    if (e == cudaSuccess)
      e = cudaMemcpyAsync(g->h_out, g->d_out, out_used, cudaMemcpyDeviceToHost, g->s[0]);
    cudaError_t e0 = cudaStreamSynchronize(g->s[0]);
    cudaError_t e1 = cudaStreamSynchronize(g->s[1]);
    if (e == cudaSuccess)
      e = e0 != cudaSuccess ? e0 : e1;
    for (int i = 0; i < nexecs; i++)
      cudaGraphExecDestroy(execs[i]);
    if (e != cudaSuccess) {
      errorf(g, "CUDA: %s", cudaGetErrorString(e));
      g->dead = 1;
      break;
    }
    int peer = -1;
    mixcomm_status_t st = mixcomm_handler_async_error(g->h, &peer);
    if (st != MIXCOMM_SUCCESS) {
      mixcomm_status_t st2 = mixcomm_run(g->h, p.ops[0], NULL, NULL, 0, 16 / (int64_t)
                                         mixcomm_dtype_size(dtype), MIXCOMM_MODE_DEFAULT, g->s[0]);
      errorf(g, "asynchronous %s (peer %d): %s", mixcomm_status_name(st), peer,
             st2 != MIXCOMM_SUCCESS ? mixcomm_last_error() : "");
      g->dead = 1;
      break;
    }
    if (g->dead)
      break;
    for (int i = 0; i < nunits; i++)
      for (int j = 0; j < units[i].n; j++)
        verify_call(g, dtype, &units[i].c[j]);
    left -= ncalls;
    *done_total += ncalls;
    if (g->spawn.rank == 0 && (*done_total >= next_progress || left == 0)) {
      while (next_progress <= *done_total)
        next_progress += total / 10 > 0 ? total / 10 : 1;
      printf("  soak: %lld/%lld calls (%s), %lld wrong elements, %lld errors, %.1f s\n",
             *done_total, total, mixcomm_dtype_name(dtype), g->cnt->wrong, g->cnt->errors,
             now_s() - t_start);
      fflush(stdout);
    }
  }
  free(units);
  free(execs);
}

static mixcomm_status_t create_handler(soak_rank_t* g, mixcomm_dtype_t dtype) {
  const options_t* o = g->opt;
  mixcomm_config_t c;
  mixcomm_config_init(&c);
  c.world_rank = g->spawn.rank;
  c.world_size = g->spawn.world_size;
  c.local_rank = g->spawn.rank % g->spawn.local_size;
  c.local_size = g->spawn.local_size;
  c.inter_rank = g->spawn.rank / g->spawn.local_size;
  c.inter_size = g->spawn.world_size / g->spawn.local_size;
  c.local_tp_size = o->tp;
  c.dtype = dtype;
  c.grid_size = g->grid;
  c.timeout_ms = o->timeout_ms;
  c.use_autotune = 0;
  c.autotune_cache_dir = "";
  mixcomm_status_t st = mixcomm_handler_create(&c, g->bs, &g->h);
  if (st == MIXCOMM_SUCCESS)
    g->topo = *mixcomm_handler_topology(g->h);
  return st;
}

static int soak_setup(soak_rank_t* g, int dp) {
  const options_t* o = g->opt;
  int ndev = 0;
  cudaError_t e = cudaGetDeviceCount(&ndev);
  if (e != cudaSuccess || ndev < 1) {
    errorf(g, "no CUDA device: %s", cudaGetErrorString(e));
    return -1;
  }
  const int dev = g->spawn.host_rank % ndev;
  int sms = 0;
  if ((e = cudaSetDevice(dev)) != cudaSuccess ||
      (e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev)) != cudaSuccess) {
    errorf(g, "CUDA setup: %s", cudaGetErrorString(e));
    return -1;
  }
  const int sharing = (g->spawn.world_size + ndev - 1) / ndev; /* every rank on this host */
  g->grid = sms / sharing;
  if (g->grid > 32 && sharing > 1)
    g->grid = 32;
  const size_t maxcall = max_call_bytes(o, dp);
  g->cap = maxcall * 2 > ((size_t)64 << 20) ? maxcall * 2 : ((size_t)64 << 20);
  g->max_elems_call = (size_t)o->max_rows * (size_t)dp * (size_t)o->max_elems;
  if ((e = cudaStreamCreateWithFlags(&g->s[0], cudaStreamNonBlocking)) != cudaSuccess ||
      (e = cudaStreamCreateWithFlags(&g->s[1], cudaStreamNonBlocking)) != cudaSuccess ||
      (e = cudaEventCreateWithFlags(&g->ev, cudaEventDisableTiming)) != cudaSuccess ||
      (e = cudaMalloc((void**)&g->d_in, g->cap)) != cudaSuccess ||
      (e = cudaMalloc((void**)&g->d_out, g->cap)) != cudaSuccess ||
      (e = cudaHostAlloc((void**)&g->h_in, g->cap, cudaHostAllocDefault)) != cudaSuccess ||
      (e = cudaHostAlloc((void**)&g->h_out, g->cap, cudaHostAllocDefault)) != cudaSuccess) {
    errorf(g, "CUDA allocation (%zu bytes per buffer): %s", g->cap, cudaGetErrorString(e));
    return -1;
  }
  memset(g->h_in, 0, g->cap);
  g->ref = malloc(g->max_elems_call * sizeof(double));
  g->abs_sum = malloc(g->max_elems_call * sizeof(double));
  g->neg_zero = malloc(g->max_elems_call);
  if (!g->ref || !g->abs_sum || !g->neg_zero) {
    errorf(g, "host allocation failed");
    return -1;
  }
  mixcomm_tcp_options_t tcp = g->spawn.tcp;
  tcp.timeout_ms = 60000;
  mixcomm_status_t st = mixcomm_bootstrap_tcp_create(&tcp, g->spawn.rank, g->spawn.world_size,
                                                     &g->bs);
  if (st != MIXCOMM_SUCCESS) {
    errorf(g, "bootstrap: %s", mixcomm_last_error());
    return -1;
  }
  return 0;
}

typedef struct job {
  const options_t* opt;
  shared_t* sh;
  int dp;
} job_t;

static int soak_rank_main(const spawn_rank_t* r, void* arg) {
  const job_t* job = arg;
  const options_t* o = job->opt;
  alarm((unsigned)o->limit_s + 30); /* backstop; spawn_ranks kills at limit_s */
  soak_rank_t g;
  memset(&g, 0, sizeof g);
  g.opt = o;
  g.spawn = *r;
  /* Forked ranks report in their own slot; a launcher-started rank is alone in this process. */
  g.cnt = &job->sh->r[spawn_under_launcher() || r->rank >= MAX_RANKS ? 0 : r->rank];
  g.cnt->state = 1;
  const double t0 = now_s();
  if (soak_setup(&g, job->dp) != 0)
    return 1;
  long long done = 0;
  for (int d = 0; d < o->ndtypes && !g.dead; d++) {
    const long long share = o->calls / o->ndtypes + (d < o->calls % o->ndtypes ? 1 : 0);
    if (create_handler(&g, o->dtypes[d]) != MIXCOMM_SUCCESS) {
      errorf(&g, "handler creation (%s): %s", mixcomm_dtype_name(o->dtypes[d]),
             mixcomm_last_error());
      break;
    }
    soak_dtype(&g, o->dtypes[d], d, share, &done, o->calls, t0);
    mixcomm_status_t st = mixcomm_handler_shutdown(g.h);
    if (st != MIXCOMM_SUCCESS && !g.dead)
      errorf(&g, "shutdown: %s", mixcomm_last_error());
    g.h = NULL;
  }
  g.cnt->seconds = now_s() - t0;
  mixcomm_bootstrap_destroy(g.bs);
  g.cnt->state = 2;
  return g.cnt->errors || g.cnt->wrong || g.cnt->checked != o->calls ? 1 : 0;
}

/* ---- dry run: the plan and the references on the host, no GPU ---------------------------- */

static int dry_run(const options_t* o, const mixcomm_topology_t* t) {
  counts_t cnt;
  memset(&cnt, 0, sizeof cnt);
  const double t0 = now_s();
  size_t cap = max_call_bytes(o, t->dp_size) * 2;
  if (cap < ((size_t)64 << 20))
    cap = (size_t)64 << 20;
  const size_t max_elems = (size_t)o->max_rows * (size_t)t->dp_size * (size_t)o->max_elems;
  char* h_in = malloc(cap);
  double* ref = malloc(max_elems * sizeof(double));
  double* abs_sum = malloc(max_elems * sizeof(double));
  unsigned char* nz = malloc(max_elems);
  char* out = malloc(max_elems * 4);
  unit_t* units = calloc((size_t)o->batch, sizeof *units);
  if (!h_in || !ref || !abs_sum || !nz || !out || !units) {
    fprintf(stderr, "soak: host allocation failed\n");
    return 1;
  }
  long long batches = 0, max_batch_bytes = 0;
  for (int d = 0; d < o->ndtypes; d++) {
    const mixcomm_dtype_t dtype = o->dtypes[d];
    plan_ctx_t p;
    plan_init(&p, o, dtype, t, NULL, d);
    const long long share = o->calls / o->ndtypes + (d < o->calls % o->ndtypes ? 1 : 0);
    long long left = share;
    batch_t b = {.units = units};
    while (left > 0) {
      if (plan_batch(&p, &b, left, cap) != 0) {
        fprintf(stderr, "soak: a unit does not fit an empty batch\n");
        return 1;
      }
      const int nunits = b.nunits, ncalls = b.ncalls;
      const size_t out_used = b.out_used;
      batches++;
      if ((long long)out_used > max_batch_bytes)
        max_batch_bytes = (long long)out_used;
      for (int i = 0; i < nunits; i++) {
        cnt.graphs += units[i].graph;
        for (int j = 0; j < units[i].n; j++) {
          const call_t* c = &units[i].c[j];
          cnt.calls++;
          cnt.per_op[c->op]++;
          cnt.per_mode[c->mode + 1]++;
          cnt.graph_calls += units[i].graph;
          if (c->rows_in == 0) {
            cnt.zero_rows++;
            cnt.checked++;
            continue;
          }
          const size_t n_in = (size_t)c->rows_in * (size_t)c->elems;
          const size_t n_out = (size_t)c->rows_out * (size_t)c->elems;
          ref_fill_input(dtype, c->seed, 0, h_in + c->in_off, n_in, c->specials);
          ref_compute(t, dtype, c->op, c->seed, c->rows_in, c->elems, c->specials, ref, abs_sum,
                      nz);
          /* The reference, rounded to the dtype, must pass the checker. */
          for (size_t i2 = 0; i2 < n_out; i2++)
            ref_from_double(dtype, out, i2, nz[i2] ? -0.0 : ref[i2]);
          cnt.wrong += ref_check(dtype, out, ref, abs_sum, nz, n_out, NULL, 0);
          cnt.checked++;
          cnt.elements += (long long)n_out;
        }
      }
      left -= ncalls;
    }
  }
  const double dt = now_s() - t0;
  printf("soak dry run: %lld calls in %lld batches (largest batch output %.1f MiB), %lld zero-row, "
         "%lld in %lld graphs, %lld elements checked, %lld wrong; host time %.2f s (%.1f us per "
         "call)\n",
         cnt.calls, batches, max_batch_bytes / 1048576.0, cnt.zero_rows, cnt.graph_calls,
         cnt.graphs, cnt.elements, cnt.wrong, dt, dt * 1e6 / (cnt.calls ? cnt.calls : 1));
  printf("soak dry run: ops");
  for (int op = 0; op < MIXCOMM_NUM_OPS; op++)
    if (cnt.per_op[op])
      printf(" %s %lld", mixcomm_op_name((mixcomm_op_t)op), cnt.per_op[op]);
  printf("; modes");
  for (int m = 0; m <= MIXCOMM_NUM_MODES; m++)
    if (cnt.per_mode[m])
      printf(" %s %lld", m == 0 ? "DEFAULT" : mixcomm_mode_name((mixcomm_mode_t)(m - 1)),
             cnt.per_mode[m]);
  printf("\n");
  free(h_in);
  free(ref);
  free(abs_sum);
  free(nz);
  free(out);
  free(units);
  return cnt.wrong || cnt.checked != o->calls ? 1 : 0;
}

/* ---- main ---------------------------------------------------------------------------------- */

static void usage(void) {
  fprintf(stderr,
          "usage: mixcomm-soak [--ranks 4] [--tp T] [--calls 100000] [--seed S]\n"
          "                    [--dtypes bf16,fp16,fp32] [--batch 64] [--graph-percent 2]\n"
          "                    [--max-rows 512] [--max-elems 8192] [--timeout-ms 10000]\n"
          "                    [--limit-s 570] [--all-modes] [--dry-run] [--verbose]\n");
}

int main(int argc, char** argv) {
  options_t o;
  memset(&o, 0, sizeof o);
  o.ranks = 4;
  o.calls = 100000;
  o.seed = 20261124;
  o.dtypes[0] = MIXCOMM_BFLOAT16;
  o.dtypes[1] = MIXCOMM_FLOAT16;
  o.dtypes[2] = MIXCOMM_FLOAT32;
  o.ndtypes = 3;
  o.batch = 64;
  o.graph_percent = 2;
  o.max_rows = 512;
  o.max_elems = 8192;
  o.timeout_ms = 10000;
  o.limit_s = 570;
  for (int i = 1; i < argc; i++) {
    const char* a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : NULL;
    int bad = 0;
    if (!strcmp(a, "--all-modes")) {
      o.all_modes = 1;
      continue;
    } else if (!strcmp(a, "--dry-run")) {
      o.dry_run = 1;
      continue;
    } else if (!strcmp(a, "--verbose")) {
      o.verbose = 1;
      continue;
    } else if (v == NULL) {
      bad = 1;
    } else if (!strcmp(a, "--ranks")) {
      bad = args_parse_int(v, 2, MAX_RANKS, &o.ranks);
    } else if (!strcmp(a, "--tp")) {
      bad = args_parse_int(v, 1, MAX_RANKS, &o.tp);
    } else if (!strcmp(a, "--calls")) {
      bad = args_parse_ll(v, 1, 1000000000LL, &o.calls);
    } else if (!strcmp(a, "--seed")) {
      long long s;
      bad = args_parse_ll(v, 0, 0x7FFFFFFFFFFFFFFFLL, &s);
      o.seed = (uint64_t)s;
    } else if (!strcmp(a, "--dtypes")) {
      char buf[128];
      snprintf(buf, sizeof buf, "%s", v);
      o.ndtypes = 0;
      for (char* tok = strtok(buf, ","); tok && !bad; tok = strtok(NULL, ",")) {
        if (o.ndtypes >= 3 || mixcomm_dtype_from_name(tok, &o.dtypes[o.ndtypes]) != MIXCOMM_SUCCESS)
          bad = 1;
        else
          o.ndtypes++;
      }
      bad |= o.ndtypes == 0;
    } else if (!strcmp(a, "--batch")) {
      bad = args_parse_int(v, MAX_GROUP, 4096, &o.batch);
    } else if (!strcmp(a, "--graph-percent")) {
      bad = args_parse_int(v, 0, 100, &o.graph_percent);
    } else if (!strcmp(a, "--max-rows")) {
      bad = args_parse_int(v, 1, 1 << 16, &o.max_rows);
    } else if (!strcmp(a, "--max-elems")) {
      bad = args_parse_int(v, 8, 1 << 20, &o.max_elems);
    } else if (!strcmp(a, "--timeout-ms")) {
      bad = args_parse_int(v, 100, 3600000, &o.timeout_ms);
    } else if (!strcmp(a, "--limit-s")) {
      bad = args_parse_int(v, 10, 86400, &o.limit_s);
    } else {
      bad = 1;
    }
    if (bad) {
      fprintf(stderr, "mixcomm-soak: bad argument %s%s%s\n", a, v ? " " : "", v ? v : "");
      usage();
      return 2;
    }
    i++;
  }
  if (o.tp == 0)
    o.tp = o.ranks >= 4 && o.ranks % 2 == 0 ? 2 : o.ranks;
  mixcomm_topology_t in, t;
  memset(&in, 0, sizeof in);
  in.world_size = in.local_size = o.ranks;
  in.inter_size = 1;
  in.local_tp_size = o.tp;
  if (mixcomm_topology_resolve(&in, &t) != MIXCOMM_SUCCESS) {
    fprintf(stderr, "mixcomm-soak: topology: %s\n", mixcomm_last_error());
    return 2;
  }
  char dts[64] = "";
  for (int d = 0; d < o.ndtypes; d++)
    snprintf(dts + strlen(dts), sizeof dts - strlen(dts), "%s%s", d ? "," : "",
             mixcomm_dtype_name(o.dtypes[d]));
  printf("== soak: %d ranks, local tp %d x dp %d, %lld calls (%s), seed %llu, batch %d, graphs "
         "%d%%, rows <= %d, row_elems <= %d, kernel timeout %d ms, limit %d s\n",
         o.ranks, t.local_tp_size, t.local_dp_size, o.calls, dts, (unsigned long long)o.seed,
         o.batch, o.graph_percent, o.max_rows, o.max_elems, o.timeout_ms, o.limit_s);
  fflush(stdout);
  if (o.dry_run)
    return dry_run(&o, &t);

  shared_t* sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (sh == MAP_FAILED) {
    perror("mixcomm-soak: mmap");
    return 2;
  }
  memset(sh, 0, sizeof *sh);
  job_t job = {&o, sh, t.dp_size};
  const double t0 = now_s();
  const int failed_ranks = spawn_ranks(o.ranks, o.ranks, o.limit_s, soak_rank_main, &job);
  const double dt = now_s() - t0;
  const int W = spawn_under_launcher() ? 1 : o.ranks;
  long long calls = -1, checked = -1, wrong = 0, errors = 0, executions = 0, graphs = 0,
            graph_calls = 0, switches = 0, zero = 0, elements = 0;
  for (int r = 0; r < W; r++) {
    const counts_t* k = &sh->r[spawn_under_launcher() ? 0 : r];
    if (calls < 0 || k->calls < calls)
      calls = k->calls;
    if (checked < 0 || k->checked < checked)
      checked = k->checked;
    wrong += k->wrong;
    errors += k->errors;
    executions += k->executions;
    graphs += k->graphs;
    graph_calls += k->graph_calls;
    switches += k->switches;
    zero += k->zero_rows;
    elements += k->elements;
    if (k->first_error[0])
      printf("  rank %d first error: %s\n", r, k->first_error);
    if (k->first_wrong[0])
      printf("  rank %d first wrong call: %s\n", r, k->first_wrong);
  }
  const counts_t* k0 = &sh->r[0];
  printf("soak: per rank: %lld executions (graph replays included), %lld calls in %lld graphs, "
         "%lld stream switches, %lld zero-row calls; %lld elements checked over all ranks\n",
         executions / W, graph_calls / W, graphs / W, switches / W, zero / W, elements);
  printf("soak: ops");
  for (int op = 0; op < MIXCOMM_NUM_OPS; op++)
    if (k0->per_op[op])
      printf(" %s %lld", mixcomm_op_name((mixcomm_op_t)op), k0->per_op[op]);
  printf("; modes");
  for (int m = 0; m <= MIXCOMM_NUM_MODES; m++)
    if (k0->per_mode[m])
      printf(" %s %lld", m == 0 ? "DEFAULT" : mixcomm_mode_name((mixcomm_mode_t)(m - 1)),
             k0->per_mode[m]);
  printf("\n");
  if (failed_ranks)
    printf("soak: %d rank(s) failed or were killed (limit %d s)\n", failed_ranks, o.limit_s);
  printf("soak: calls %lld, checked %lld, wrong elements %lld, errors %lld, seconds %.1f\n", calls,
         checked, wrong, errors, dt);
  fflush(stdout);
  const int bad = failed_ranks || wrong || errors || calls != o.calls || checked != o.calls;
  munmap(sh, sizeof *sh);
  return bad ? 1 : 0;
}
