/* SPDX-License-Identifier: Apache-2.0
 * What the ranks of every fault scenario share: setup on the GPU and the bootstrap,
 * handler creation and timed shutdown, checked and unchecked calls, recording the first error
 * and notes in the shared result, waiting (bounded) for the other ranks, dying on purpose. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cuda_runtime_api.h>

#include "common/refdata.h"
#include "gpu/harness.h"
#include "gpu/faults/faults.h"

void notef(rank_ctx_t* c, const char* fmt, ...) {
  char buf[NOTE_BYTES];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  size_t used = strlen(c->me->note);
  snprintf(c->me->note + used, sizeof c->me->note - used, "%s%s", used ? "; " : "", buf);
  if (c->opt->verbose) {
    fprintf(stderr, "    [%s] rank %d: %s\n", c->sc->name, c->rank, buf);
    fflush(stderr);
  }
}

/* Record the first error this rank observed. */
void record_error(rank_ctx_t* c, int status, int peer, int where, double t0, const char* msg) {
  rank_result_t* m = c->me;
  if (m->status != 0)
    return;
  m->status = status;
  m->peer = peer;
  m->where = where;
  m->error_at_ms = now_ms();
  m->detect_ms = m->error_at_ms - t0;
  copy_msg(m->msg, sizeof m->msg, msg);
  if (c->opt->verbose) {
    fprintf(stderr, "    [%s] rank %d: %s at %s after %.0f ms (peer %d): %s\n", c->sc->name,
            c->rank, short_status(status), where_name(where), m->detect_ms, peer, m->msg);
    fflush(stderr);
  }
}

/* ---- rank setup ----------------------------------------------------------------------------- */

int rank_setup(rank_ctx_t* c) {
  rank_result_t* m = c->me;
  m->state = ST_STARTED;
  m->peer = -1;
  /* The same grid on every rank. */
  char why[256];
  if (harness_pick_device(c->rank, c->world, &c->grid, why, sizeof why) != 0) {
    notef(c, "%s", why);
    return -1;
  }
  cudaError_t e = cudaFree(NULL); /* the CUDA context now, before the bootstrap */
  if (e != cudaSuccess) {
    notef(c, "CUDA setup: %s", cudaGetErrorString(e));
    return -1;
  }
  if ((e = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking)) != cudaSuccess ||
      (e = cudaMalloc((void**)&c->d_in, DEVICE_BUFFER_BYTES)) != cudaSuccess ||
      (e = cudaMalloc((void**)&c->d_out, DEVICE_BUFFER_BYTES)) != cudaSuccess) {
    notef(c, "CUDA allocation: %s", cudaGetErrorString(e));
    return -1;
  }
  c->max_check_elems = (size_t)CHECK_ROWS * CHECK_ELEMS * (size_t)c->world;
  c->h_in = malloc(c->max_check_elems * 4);
  c->h_out = malloc(c->max_check_elems * 4);
  c->ref = malloc(c->max_check_elems * sizeof(double));
  c->abs_sum = malloc(c->max_check_elems * sizeof(double));
  c->neg_zero = malloc(c->max_check_elems);
  if (!c->h_in || !c->h_out || !c->ref || !c->abs_sum || !c->neg_zero) {
    notef(c, "host allocation failed");
    return -1;
  }
  mixcomm_tcp_options_t tcp = c->tcp;
  tcp.timeout_ms = c->opt->bs_timeout_ms;
  const double t0 = now_ms();
  mixcomm_status_t st = mixcomm_bootstrap_tcp_create(&tcp, c->rank, c->world, &c->bs);
  if (st != MIXCOMM_SUCCESS) {
    record_error(c, st, -1, AT_SETUP, t0, mixcomm_last_error());
    notef(c, "bootstrap: %s", mixcomm_last_error());
    return -1;
  }
  m->state = ST_READY;
  return 0;
}

void rank_teardown(rank_ctx_t* c) {
  if (c->bs != NULL)
    mixcomm_bootstrap_destroy(c->bs);
  c->bs = NULL;
  if (c->d_in)
    cudaFree(c->d_in);
  if (c->d_out)
    cudaFree(c->d_out);
  if (c->stream)
    cudaStreamDestroy(c->stream);
  free(c->h_in);
  free(c->h_out);
  free(c->ref);
  free(c->abs_sum);
  free(c->neg_zero);
}

mixcomm_status_t create_handler(rank_ctx_t* c, int timeout_ms, int autotune,
                                double* ms) {
  mixcomm_config_t cfg;
  mixcomm_config_init(&cfg);
  cfg.world_rank = c->rank;
  cfg.world_size = c->world;
  cfg.local_rank = c->rank;
  cfg.local_size = c->world;
  cfg.inter_rank = 0;
  cfg.inter_size = 1;
  cfg.local_tp_size = c->ti->tp;
  cfg.dtype = c->opt->dtype;
  cfg.grid_size = c->grid;
  cfg.timeout_ms = timeout_ms;
  cfg.use_autotune = autotune;
  cfg.autotune_cache_dir = autotune ? c->cache_dir : "";
  const double t0 = now_ms();
  mixcomm_status_t st = mixcomm_handler_create(&cfg, c->bs, &c->h);
  if (ms != NULL)
    *ms = now_ms() - t0;
  if (st == MIXCOMM_SUCCESS) {
    c->topo = *mixcomm_handler_topology(c->h);
  } else {
    c->h = NULL;
  }
  return st;
}

mixcomm_status_t create_or_note(rank_ctx_t* c, int timeout_ms) {
  mixcomm_status_t st = create_handler(c, timeout_ms, 0, NULL);
  if (st != MIXCOMM_SUCCESS)
    notef(c, "create failed: %s", mixcomm_last_error());
  return st;
}

/* Shut the handler down, timing it. */
void shutdown_handler(rank_ctx_t* c) {
  if (c->h == NULL)
    return;
  c->me->had_handler = 1;
  const double t0 = now_ms();
  mixcomm_status_t st = mixcomm_handler_shutdown(c->h);
  c->me->shutdown_ms = now_ms() - t0;
  c->me->shutdown_status = st;
  c->me->shutdown_done = 1;
  if (st != MIXCOMM_SUCCESS)
    copy_msg(c->me->shutdown_msg, sizeof c->me->shutdown_msg, mixcomm_last_error());
  c->h = NULL;
}

/* Wait (bounded) until every rank except the victim has reported. */
void wait_reported(rank_ctx_t* c, double max_ms) {
  const double end = now_ms() + max_ms;
  for (;;) {
    int all = 1;
    for (int r = 0; r < c->world; r++)
      if (c->sh->r[r].role != ROLE_VICTIM && c->sh->r[r].state < ST_REPORTED)
        all = 0;
    if (all || now_ms() > end)
      return;
    sleep_ms(5);
  }
}

void report_and_shutdown(rank_ctx_t* c, double max_ms) {
  c->me->state = ST_REPORTED;
  wait_reported(c, max_ms);
  shutdown_handler(c);
}

/* The call after an error: a zero-row mixcomm_run, which must report the error again (a
 * failed handler refuses every call until it is shut down). */
static mixcomm_status_t next_run_status(rank_ctx_t* c) {
  const int64_t vec = 16 / (int64_t)mixcomm_dtype_size(c->opt->dtype);
  return mixcomm_run(c->h, c->ti->ops[0], NULL, NULL, 0, vec, MIXCOMM_MODE_DEFAULT, c->stream);
}

/* An error mixcomm_run itself returned (the watch or an earlier kernel had already failed the
 * handler): recorded like one seen after the call, with the next call's status. */
static void record_run_error(rank_ctx_t* c, mixcomm_status_t st, double t0, const char* msg) {
  int peer = -1;
  mixcomm_handler_async_error(c->h, &peer);
  const int first = c->me->status == 0;
  record_error(c, st, peer, AT_RUN, t0, msg);
  if (first)
    c->me->next_status = next_run_status(c);
}

/* After an asynchronous error was seen: the next call turns it into a full message. */
mixcomm_status_t observe_async(rank_ctx_t* c, double t0, int where) {
  int peer = -1;
  mixcomm_status_t st = mixcomm_handler_async_error(c->h, &peer);
  if (st == MIXCOMM_SUCCESS)
    return MIXCOMM_SUCCESS;
  const double detect_ms = now_ms() - t0;
  mixcomm_status_t st2 = next_run_status(c);
  const int first = c->me->status == 0;
  record_error(c, st, peer, where, t0,
               st2 != MIXCOMM_SUCCESS ? mixcomm_last_error() : "(the next mixcomm_run succeeded)");
  if (first) {
    c->me->detect_ms = detect_ms; /* not counting the extra call */
    c->me->next_status = st2;
  }
  return st;
}

/* Rows of the input block for rows_unit rows per output block. */
int64_t rows_in_for(const rank_ctx_t* c, mixcomm_op_t op, int64_t rows_unit) {
  return is_scatter(op) ? rows_unit * c->ti->dp : rows_unit;
}

/* One call, synchronised, its output checked against the float64 reference. Returns 0 if it
 * ran and matched, the error status if one was observed (recorded), -1 for wrong elements. */
int checked_call(rank_ctx_t* c, mixcomm_op_t op, mixcomm_mode_t mode, int64_t rows_unit,
                 int64_t elems, uint64_t seed) {
  const size_t es = mixcomm_dtype_size(c->opt->dtype);
  const int64_t rows_in = rows_in_for(c, op, rows_unit);
  const int64_t rows_out = is_gather(op) ? rows_unit * c->ti->dp : rows_unit;
  const size_t n_in = (size_t)rows_in * (size_t)elems, n_out = (size_t)rows_out * (size_t)elems;
  if (n_in > c->max_check_elems || n_out > c->max_check_elems) {
    notef(c, "checked call too large");
    return -1;
  }
  ref_fill_input(c->opt->dtype, seed, c->rank, c->h_in, n_in, REF_SPECIAL_NEG_ZERO);
  cudaError_t e = cudaMemcpyAsync(c->d_in, c->h_in, n_in * es, cudaMemcpyHostToDevice, c->stream);
  if (e == cudaSuccess)
    e = cudaMemsetAsync(c->d_out, 0xFF, n_out * es, c->stream);
  if (e == cudaSuccess)
    e = cudaStreamSynchronize(c->stream);
  if (e != cudaSuccess) {
    record_error(c, MIXCOMM_ERR_CUDA, -1, AT_RUN, now_ms(), cudaGetErrorString(e));
    return MIXCOMM_ERR_CUDA;
  }
  const double t0 = now_ms(); /* the copy back below reports its failures at the call's time */
  const int run = unchecked_call(c, op, mode, rows_in, elems);
  if (run != 0)
    return run;
  e = cudaMemcpyAsync(c->h_out, c->d_out, n_out * es, cudaMemcpyDeviceToHost, c->stream);
  if (e == cudaSuccess)
    e = cudaStreamSynchronize(c->stream);
  if (e != cudaSuccess) {
    record_error(c, MIXCOMM_ERR_CUDA, -1, AT_SYNC, t0, cudaGetErrorString(e));
    return MIXCOMM_ERR_CUDA;
  }
  ref_compute(&c->topo, c->opt->dtype, op, seed, rows_in, elems, REF_SPECIAL_NEG_ZERO, c->ref,
              c->abs_sum, c->neg_zero);
  char report[256];
  const int64_t wrong = ref_check(c->opt->dtype, c->h_out, c->ref, c->abs_sum, c->neg_zero,
                                  n_out, report, sizeof report);
  if (wrong) {
    c->me->wrong += wrong;
    notef(c, "%s %s rows %lld x %lld: %lld wrong elements: %s", mixcomm_op_name(op),
          mixcomm_mode_name(mode), (long long)rows_in, (long long)elems, (long long)wrong,
          report);
    return -1;
  }
  c->me->calls_ok++;
  return 0;
}

/* A call enqueued and synchronised but not checked (the fault call, and the first half of
 * checked_call); records what it saw. */
int unchecked_call(rank_ctx_t* c, mixcomm_op_t op, mixcomm_mode_t mode, int64_t rows_in,
                   int64_t elems) {
  const double t0 = now_ms();
  mixcomm_status_t st =
      mixcomm_run(c->h, op, c->d_in, c->d_out, rows_in, elems, mode, c->stream);
  if (st != MIXCOMM_SUCCESS) {
    char copy[MSG_BYTES];
    copy_msg(copy, sizeof copy, mixcomm_last_error());
    record_run_error(c, st, t0, copy);
    return st;
  }
  cudaError_t e = cudaStreamSynchronize(c->stream);
  if (e != cudaSuccess) {
    record_error(c, MIXCOMM_ERR_CUDA, -1, AT_SYNC, t0, cudaGetErrorString(e));
    return MIXCOMM_ERR_CUDA;
  }
  return observe_async(c, t0, AT_SYNC);
}

void warm_up(rank_ctx_t* c, int calls, uint64_t first_seed) {
  for (int i = 0; i < calls; i++) {
    if (checked_call(c, c->ti->ops[0], MIXCOMM_MODE_FUSED_OPT_WAITS_UC, 8, 512, first_seed + i) !=
        0) {
      notef(c, "warm-up call %d failed", i);
      break;
    }
  }
}

void* killer_thread(void* arg) {
  sleep_ms(*(const double*)arg);
  kill(getpid(), SIGKILL);
  return NULL;
}

/* The victim dies now (SIGKILL: no cleanup, no goodbye on any socket). */
void die_now(rank_ctx_t* c, const char* when) {
  notef(c, "killing itself %s", when);
  c->me->state = ST_REPORTED;
  fflush(stdout);
  fflush(stderr);
  kill(getpid(), SIGKILL);
  for (;;)
    pause();
}

/* Plain create, one checked call, shutdown: measures how long a creation takes. */
int calibrate(rank_ctx_t* c) {
  double ms = 0;
  mixcomm_status_t st = create_handler(c, c->opt->timeout_ms, 0, &ms);
  if (st != MIXCOMM_SUCCESS) {
    notef(c, "calibration create failed: %s", mixcomm_last_error());
    return -1;
  }
  c->me->plain_create_ms = ms;
  const int r = checked_call(c, c->ti->ops[0], MIXCOMM_MODE_FUSED_OPT_WAITS_UC, 4, 256, 11);
  st = mixcomm_handler_shutdown(c->h);
  c->h = NULL;
  if (r != 0 || st != MIXCOMM_SUCCESS) {
    notef(c, "calibration failed (call %d, shutdown %s: %s)", r, short_status(st),
          mixcomm_last_error());
    return -1;
  }
  return 0;
}

int my_role(const rank_ctx_t* c) { return c->me->role; }
