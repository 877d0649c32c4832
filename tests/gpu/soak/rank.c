/* SPDX-License-Identifier: Apache-2.0
 * One rank of the soak: per dtype a handler, then batches of planned calls enqueued
 * (eager or in graphs, over two streams), synchronised once, every output checked against the
 * float64 reference; counts go to the parent through shared memory. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cuda_runtime_api.h>

#include "common/refdata.h"
#include "gpu/harness.h"

#include "gpu/soak/soak.h"

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
  char why[256];
  /* Every rank of the job shares this host's GPUs. */
  if (harness_pick_device(g->spawn.host_rank, g->spawn.world_size, &g->grid, why, sizeof why) !=
      0) {
    errorf(g, "%s", why);
    return -1;
  }
  cudaError_t e;
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

int soak_rank_main(const spawn_rank_t* r, void* arg) {
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
