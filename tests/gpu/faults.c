/* SPDX-License-Identifier: Apache-2.0
 * Fault-injection tests (mixcomm-fault-tests): ranks that die, diverge, never call or are
 * aborted, and misuse of a handler. See docs/reliability.md.
 *
 * Each scenario forks its own set of ranks on one node (they share the GPU under MPS, or use
 * one GPU each when there are enough). Unlike tools/common/spawn.c, a rank that dies does not
 * take the others down: every rank records what it saw (the status, the peer it names, the
 * message, how long detection and shutdown took) in memory shared with the parent, which judges
 * the scenario once every rank has exited or the scenario's hard limit has passed (then the
 * remaining ranks are killed and the scenario fails). The parent never touches CUDA.
 *
 *   mixcomm-fault-tests [--ranks 4[,2,...]] [--tp T] [--victim R] [--only NAME[,NAME...]]
 *                       [--list] [--timeout-ms 2000] [--bootstrap-timeout-ms 10000]
 *                       [--margin-ms 3000] [--limit-s 60] [--total-limit-s 540] [--calls 40]
 *                       [--late-ms 60000] [--dtype bf16] [--verbose]
 *
 * Output: one line per scenario, "fault <name>: ok (<who reported what, how long it took>)" or
 * "fault <name>: FAIL (<why> | <what each rank reported>)", then "faults injected N, survived
 * N" and "N passed, N failed". Exit status 0 when nothing failed.
 *
 * Who is expected to name whom. A rank that waits for a dead or silent peer directly names it.
 * In the one-shot mode (FUSED_OPT_WAITS_UC) every rank exchanges data with every other rank at
 * every step and sends before it waits, so a survivor only ever waits for the culprit: the
 * scenarios that require every survivor to name the culprit run one-shot calls where the fault
 * hits. In the two-shot mode (and during autotune, which measures both) a survivor may instead
 * wait for another survivor that is itself stuck on the culprit, and name that one; those
 * scenarios require every survivor to fail with a named peer and at least one to name the
 * culprit, and list who named whom.
 *
 * With the default timeout (10 minutes): kill-detected requires every survivor to report the
 * killed rank as MIXCOMM_ERR_PEER_LOST within 2 s of its death (the watch on the bootstrap's
 * connections, not the timeout); late-peer requires a call to succeed on every rank although
 * one rank starts it --late-ms after the others. map-fails injects a mapping failure on the
 * culprit (MIXCOMM_DEBUG_FAIL_MAP) and requires every rank's creation to fail naming it, well
 * before the bootstrap timeout.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cuda_runtime_api.h>

#include "common/args.h"
#include "common/refdata.h"
#include "common/spawn.h"
#include "mixcomm.h"

#define MAX_RANKS 16
#define MSG_BYTES 1024
#define NOTE_BYTES 512
/* Checked calls are at most this many rows per rank block and elements per row. */
#define CHECK_ROWS 64
#define CHECK_ELEMS 2048
#define DEVICE_BUFFER_BYTES ((size_t)32 << 20)

/* ---- options ------------------------------------------------------------------------------ */

typedef struct options {
  int ranks[8], nranks;
  int tp;                 /* 0: 2 when ranks >= 4 and even, else ranks */
  int victim;             /* -1: the last rank */
  int timeout_ms;         /* config.timeout_ms of the handlers (kernel waits) */
  int abort_timeout_ms;   /* config.timeout_ms in the abort scenario */
  int abort_delay_ms;     /* when the second thread aborts */
  int abort_limit_ms;     /* the aborted kernel must end within this */
  int bs_timeout_ms;      /* mixcomm_tcp_options_t.timeout_ms */
  int margin_ms;          /* allowed beyond a timeout */
  int limit_s;            /* hard limit of one scenario */
  int total_limit_s;      /* scenarios not started by then are counted as failed */
  int calls;              /* calls before the victim dies in kill-mid-stream */
  int late_ms;            /* how late the late rank is in late-peer */
  mixcomm_dtype_t dtype;
  char only[256];
  int verbose;
} options_t;

/* ---- what ranks report to the parent (shared memory) --------------------------------------- */

enum role { ROLE_SURVIVOR = 0, ROLE_VICTIM, ROLE_SLEEPER, ROLE_DIVERGER };
static const char* role_name(int r) {
  switch (r) {
    case ROLE_VICTIM:
      return "victim";
    case ROLE_SLEEPER:
      return "sleeper";
    case ROLE_DIVERGER:
      return "diverger";
    default:
      return "survivor";
  }
}

enum state { ST_NONE = 0, ST_STARTED, ST_READY, ST_REPORTED, ST_FINISHED };
enum where { AT_NONE = 0, AT_SETUP, AT_CREATE, AT_RUN, AT_SYNC };
static const char* where_name(int w) {
  static const char* names[] = {"-", "setup", "create", "run", "sync"};
  return w >= 0 && w <= AT_SYNC ? names[w] : "?";
}

typedef struct rank_result {
  volatile int state;
  int role;
  int setup_failed;  /* CUDA or bootstrap setup failed: the scenario never ran */
  int status;        /* first error observed (mixcomm_status_t), 0 if none */
  int peer;          /* peer named by mixcomm_handler_async_error (-1 if none) */
  int where;         /* enum where */
  int next_status;   /* what the next mixcomm_run returned after an asynchronous error */
  double detect_ms;  /* from the start of the failing operation to the error */
  int had_handler;   /* a handler existed when the rank finished its scenario */
  int shutdown_done;
  int shutdown_status;
  double shutdown_ms;
  int calls_ok;      /* checked calls that ran and matched the reference */
  long long wrong;   /* wrong elements over all checked calls */
  double plain_create_ms;
  double tuned_create_ms; /* kill-in-autotune: a throw-away creation with autotune, empty cache */
  double kill_delay_ms; /* victim: when it killed itself, after entering creation */
  double create_ms;
  double error_at_ms;   /* now_ms() when the first error was recorded (one clock for all) */
  double killed_at_ms;  /* victim of kill-detected: now_ms() right before it killed itself */
  double call_ms;       /* late-peer: how long the late call took */
  int checks_ok, checks_failed; /* misuse scenarios */
  char msg[MSG_BYTES];
  char shutdown_msg[MSG_BYTES / 2];
  char note[NOTE_BYTES];
} rank_result_t;

typedef struct shared {
  rank_result_t r[MAX_RANKS];
} shared_t;

/* ---- topology known to the parent (no CUDA) ------------------------------------------------ */

typedef struct topo_info {
  int world, tp, dp, victim;
  mixcomm_op_t ops[MIXCOMM_NUM_OPS];
  int nops;
  int twoshot; /* FUSED_OPT_BYTES1_UC is valid */
} topo_info_t;

/* ---- one rank ------------------------------------------------------------------------------ */

struct scenario;
typedef struct judge judge_t;

typedef struct rank_ctx {
  const options_t* opt;
  const struct scenario* sc;
  const topo_info_t* ti;
  shared_t* sh;
  rank_result_t* me;
  int rank, world;
  mixcomm_tcp_options_t tcp;
  char cache_dir[512];
  /* CUDA */
  int grid;
  cudaStream_t stream;
  char *d_in, *d_out;
  char *h_in, *h_out;
  double *ref, *abs_sum;
  unsigned char* neg_zero;
  size_t max_check_elems;
  /* mixcomm */
  mixcomm_bootstrap_t* bs;
  mixcomm_handler_t* h;
  mixcomm_topology_t topo;
} rank_ctx_t;

typedef struct scenario {
  const char* name;
  const char* what;
  /* NULL if it applies to this topology, else why not. */
  const char* (*skip)(const topo_info_t* ti);
  void (*assign)(const topo_info_t* ti, shared_t* sh); /* roles (parent, before forking) */
  void (*rank)(rank_ctx_t* c);
  /* Judge: return 1 if passed; append reasons with jfail. */
  int (*judge)(const options_t* o, const topo_info_t* ti, const shared_t* sh, const int* exits,
               judge_t* j);
} scenario_t;

struct judge {
  int ok;
  char why[2048];
  size_t used;
};

static void jfail(judge_t* j, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
static void jfail(judge_t* j, const char* fmt, ...) {
  j->ok = 0;
  if (j->used + 4 >= sizeof j->why)
    return;
  if (j->used > 0)
    j->used += (size_t)snprintf(j->why + j->used, sizeof j->why - j->used, "; ");
  va_list ap;
  va_start(ap, fmt);
  int w = vsnprintf(j->why + j->used, sizeof j->why - j->used, fmt, ap);
  va_end(ap);
  if (w > 0)
    j->used += (size_t)w < sizeof j->why - j->used ? (size_t)w : sizeof j->why - j->used - 1;
}

/* ---- small helpers ------------------------------------------------------------------------- */

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static void sleep_ms(double ms) {
  if (ms <= 0)
    return;
  struct timespec ts;
  ts.tv_sec = (time_t)(ms / 1000);
  ts.tv_nsec = (long)((ms - ts.tv_sec * 1000.0) * 1e6);
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static int is_gather(mixcomm_op_t op) {
  return op == MIXCOMM_OP_ALLGATHER || op == MIXCOMM_OP_ALLREDUCE_ALLGATHER;
}
static int is_scatter(mixcomm_op_t op) {
  return op == MIXCOMM_OP_REDUCESCATTER || op == MIXCOMM_OP_REDUCESCATTER_ALLREDUCE;
}

static const char* short_status(int st) {
  const char* n = mixcomm_status_name((mixcomm_status_t)st);
  if (strncmp(n, "MIXCOMM_ERR_", 12) == 0)
    return n + 12;
  if (strncmp(n, "MIXCOMM_", 8) == 0)
    return n + 8;
  return n;
}

/* Whether msg blames rank k: "rank k" (also "world rank k", "local rank k": one node) not
 * followed by another digit, and not "rank k of N", which is how a rank describes itself. */
static int names_rank(const char* msg, int k) {
  for (const char* p = strstr(msg, "rank "); p != NULL; p = strstr(p + 5, "rank ")) {
    const char* q = p + 5;
    if (!isdigit((unsigned char)*q))
      continue;
    char* end;
    long v = strtol(q, &end, 10);
    if (v != k)
      continue;
    if (strncmp(end, " of ", 4) == 0)
      continue;
    return 1;
  }
  return 0;
}

static void copy_msg(char* dst, size_t size, const char* src) {
  snprintf(dst, size, "%s", src != NULL ? src : "");
  for (char* p = dst; *p; p++)
    if (*p == '\n' || *p == '\r')
      *p = ' ';
}

static void notef(rank_ctx_t* c, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
static void notef(rank_ctx_t* c, const char* fmt, ...) {
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
static void record_error(rank_ctx_t* c, int status, int peer, int where, double t0,
                         const char* msg) {
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

static int rank_setup(rank_ctx_t* c) {
  rank_result_t* m = c->me;
  m->state = ST_STARTED;
  m->peer = -1;
  int ndev = 0;
  cudaError_t e = cudaGetDeviceCount(&ndev);
  if (e != cudaSuccess || ndev < 1) {
    notef(c, "no CUDA device: %s", cudaGetErrorString(e));
    return -1;
  }
  const int dev = c->rank % ndev;
  int sms = 0;
  if ((e = cudaSetDevice(dev)) != cudaSuccess || (e = cudaFree(NULL)) != cudaSuccess ||
      (e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev)) != cudaSuccess) {
    notef(c, "CUDA setup: %s", cudaGetErrorString(e));
    return -1;
  }
  /* The same grid on every rank; all CTAs of the ranks sharing a GPU must fit at once. */
  const int sharing = (c->world + ndev - 1) / ndev;
  c->grid = sms / sharing;
  if (c->grid > 32 && sharing > 1)
    c->grid = 32;
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

static void rank_teardown(rank_ctx_t* c) {
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

static mixcomm_status_t create_handler(rank_ctx_t* c, int timeout_ms, int autotune,
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

/* Shut the handler down, timing it. */
static void shutdown_handler(rank_ctx_t* c) {
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
static void wait_reported(rank_ctx_t* c, double max_ms) {
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

/* After an asynchronous error was seen: the next call turns it into a full message. */
static mixcomm_status_t observe_async(rank_ctx_t* c, double t0, int where) {
  int peer = -1;
  mixcomm_status_t st = mixcomm_handler_async_error(c->h, &peer);
  if (st == MIXCOMM_SUCCESS)
    return MIXCOMM_SUCCESS;
  const double detect_ms = now_ms() - t0;
  const int64_t vec = 16 / (int64_t)mixcomm_dtype_size(c->opt->dtype);
  mixcomm_status_t st2 = mixcomm_run(c->h, c->ti->ops[0], NULL, NULL, 0, vec,
                                     MIXCOMM_MODE_DEFAULT, c->stream);
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
static int64_t rows_in_for(const rank_ctx_t* c, mixcomm_op_t op, int64_t rows_unit) {
  return is_scatter(op) ? rows_unit * c->ti->dp : rows_unit;
}

/* One call, synchronised, its output checked against the float64 reference. Returns 0 if it
 * ran and matched, the error status if one was observed (recorded), -1 for wrong elements. */
static int checked_call(rank_ctx_t* c, mixcomm_op_t op, mixcomm_mode_t mode, int64_t rows_unit,
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
  const double t0 = now_ms();
  mixcomm_status_t st =
      mixcomm_run(c->h, op, c->d_in, c->d_out, rows_in, elems, mode, c->stream);
  if (st != MIXCOMM_SUCCESS) {
    int peer = -1;
    const char* msg = mixcomm_last_error();
    char copy[MSG_BYTES];
    copy_msg(copy, sizeof copy, msg);
    mixcomm_handler_async_error(c->h, &peer);
    record_error(c, st, peer, AT_RUN, t0, copy);
    return st;
  }
  e = cudaStreamSynchronize(c->stream);
  if (e != cudaSuccess) {
    record_error(c, MIXCOMM_ERR_CUDA, -1, AT_SYNC, t0, cudaGetErrorString(e));
    return MIXCOMM_ERR_CUDA;
  }
  st = observe_async(c, t0, AT_SYNC);
  if (st != MIXCOMM_SUCCESS)
    return st;
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

/* A call enqueued and synchronised but not checked (the fault call); records what it saw. */
static int unchecked_call(rank_ctx_t* c, mixcomm_op_t op, mixcomm_mode_t mode, int64_t rows_in,
                          int64_t elems) {
  const double t0 = now_ms();
  mixcomm_status_t st =
      mixcomm_run(c->h, op, c->d_in, c->d_out, rows_in, elems, mode, c->stream);
  if (st != MIXCOMM_SUCCESS) {
    char copy[MSG_BYTES];
    copy_msg(copy, sizeof copy, mixcomm_last_error());
    int peer = -1;
    mixcomm_handler_async_error(c->h, &peer);
    record_error(c, st, peer, AT_RUN, t0, copy);
    return st;
  }
  cudaError_t e = cudaStreamSynchronize(c->stream);
  if (e != cudaSuccess) {
    record_error(c, MIXCOMM_ERR_CUDA, -1, AT_SYNC, t0, cudaGetErrorString(e));
    return MIXCOMM_ERR_CUDA;
  }
  return observe_async(c, t0, AT_SYNC);
}

static void* killer_thread(void* arg) {
  sleep_ms(*(const double*)arg);
  kill(getpid(), SIGKILL);
  return NULL;
}

/* The victim dies now (SIGKILL: no cleanup, no goodbye on any socket). */
static void die_now(rank_ctx_t* c, const char* when) {
  notef(c, "killing itself %s", when);
  c->me->state = ST_REPORTED;
  fflush(stdout);
  fflush(stderr);
  kill(getpid(), SIGKILL);
  for (;;)
    pause();
}

/* Plain create, one checked call, shutdown: measures how long a creation takes. */
static int calibrate(rank_ctx_t* c) {
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

/* ---- scenarios: rank side ------------------------------------------------------------------- */

static void assign_victim(const topo_info_t* ti, shared_t* sh) {
  sh->r[ti->victim].role = ROLE_VICTIM;
}
static void assign_sleeper(const topo_info_t* ti, shared_t* sh) {
  sh->r[ti->victim].role = ROLE_SLEEPER;
}
static void assign_diverger(const topo_info_t* ti, shared_t* sh) {
  sh->r[ti->victim].role = ROLE_DIVERGER;
}
static void assign_none(const topo_info_t* ti, shared_t* sh) {
  (void)ti;
  (void)sh;
}

static int my_role(const rank_ctx_t* c) { return c->me->role; }

/* Survivor side shared by the scenarios whose fault hits creation: create; if that succeeded,
 * one call (one-shot), which must fail. */
static void survive_creation(rank_ctx_t* c, int autotune) {
  double ms = 0;
  const double t0 = now_ms();
  mixcomm_status_t st = create_handler(c, c->opt->timeout_ms, autotune, &ms);
  c->me->create_ms = ms;
  if (st != MIXCOMM_SUCCESS) {
    record_error(c, st, -1, AT_CREATE, t0, mixcomm_last_error());
  } else {
    notef(c, "creation succeeded after %.0f ms; running a call", ms);
    const int64_t rows = rows_in_for(c, c->ti->ops[0], 8);
    if (unchecked_call(c, c->ti->ops[0], MIXCOMM_MODE_FUSED_OPT_WAITS_UC, rows, 1024) ==
        MIXCOMM_SUCCESS)
      notef(c, "the call after creation succeeded although a rank is dead");
  }
  c->me->state = ST_REPORTED;
  wait_reported(c, c->opt->bs_timeout_ms + c->opt->timeout_ms + c->opt->margin_ms);
  shutdown_handler(c);
}

/* (a) The victim dies right before mixcomm_handler_create (its bootstrap is connected). */
static void rank_kill_before_create(rank_ctx_t* c) {
  if (my_role(c) == ROLE_VICTIM)
    die_now(c, "right before mixcomm_handler_create");
  survive_creation(c, 0);
}

/* (a') The victim dies half-way through its creation (by a plain creation's duration). */
static void rank_kill_in_create(rank_ctx_t* c) {
  if (calibrate(c) != 0)
    return;
  if (my_role(c) == ROLE_VICTIM) {
    double delay = c->me->plain_create_ms * 0.5;
    if (delay < 1)
      delay = 1;
    c->me->kill_delay_ms = delay;
    pthread_t t;
    pthread_create(&t, NULL, killer_thread, &delay);
    create_handler(c, c->opt->timeout_ms, 0, NULL);
    /* Still alive: creation was quicker than the delay; die idle. */
    sleep_ms(delay * 4 + 1000);
    die_now(c, "after creation (the killer thread was late)");
  }
  survive_creation(c, 0);
}

/* Point c->cache_dir at <scenario cache dir>/<sub>, a directory made fresh for one creation,
 * and check that it is empty (rank 0 alone reads the cache, but every rank checks). Returns 0
 * if it is empty, -1 otherwise (noted). */
static int fresh_cache_dir(rank_ctx_t* c, const char* base, const char* sub) {
  char dir[sizeof c->cache_dir];
  if (snprintf(dir, sizeof dir, "%s/%s", base, sub) >= (int)sizeof dir) {
    notef(c, "cache dir path too long");
    return -1;
  }
  if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
    notef(c, "cannot make the cache dir %s: %s", dir, strerror(errno));
    return -1;
  }
  memcpy(c->cache_dir, dir, sizeof dir);
  DIR* d = opendir(dir);
  if (d == NULL) {
    notef(c, "cannot open the cache dir %s: %s", dir, strerror(errno));
    return -1;
  }
  int entries = 0;
  for (struct dirent* e; (e = readdir(d)) != NULL;)
    entries += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
  closedir(d);
  if (entries != 0) {
    notef(c, "the cache dir %s is not empty: autotune would not measure", dir);
    return -1;
  }
  return 0;
}

/* (b) The victim dies during autotune at creation. A fixed delay cannot work: how long autotune
 * takes depends on the GPU, the topology (ops, modes, buckets) and how many ranks share the
 * GPU, and on an H100 it can be over within ~100 ms. So the scenario measures it, in the same
 * run, on the same ranks:
 *   1. calibrate(): a plain creation (no autotune) takes P ms;
 *   2. a throw-away creation with autotune takes T ms (every rank; its own fresh, empty cache
 *      dir "probe", so it really measures; rank 0 writes its result there);
 *   3. the real creation with autotune (another fresh, empty cache dir "kill", which nobody has
 *      written, so the victim and everybody else measure again); a thread on the victim
 *      SIGKILLs it P + 0.3 * (T - P) ms after it entered creation, i.e. when the plain part is
 *      over and about a third of the measurements are done.
 * The fraction is below one half on purpose: an early kill is harmless (it lands in the plain
 * part of creation, which fails on every survivor just the same), a late one lets creation
 * succeed; and the probe, being the first tuned creation, includes one-time costs (first
 * launches of the kernels of every op and mode), so it tends to overestimate T - P. The kill
 * is late only if the real autotune is over 3x faster than the measured one. */
static void rank_kill_in_autotune(rank_ctx_t* c) {
  char base[sizeof c->cache_dir];
  memcpy(base, c->cache_dir, sizeof base);
  if (calibrate(c) != 0)
    return;
  if (fresh_cache_dir(c, base, "probe") != 0)
    return;
  double tuned = 0;
  mixcomm_status_t st = create_handler(c, c->opt->timeout_ms, 1, &tuned);
  if (st != MIXCOMM_SUCCESS) {
    notef(c, "tuned calibration create failed: %s", mixcomm_last_error());
    return;
  }
  c->me->tuned_create_ms = tuned;
  st = mixcomm_handler_shutdown(c->h);
  c->h = NULL;
  if (st != MIXCOMM_SUCCESS) {
    notef(c, "tuned calibration shutdown failed: %s", mixcomm_last_error());
    return;
  }
  if (fresh_cache_dir(c, base, "kill") != 0)
    return;
  if (my_role(c) == ROLE_VICTIM) {
    const double plain = c->me->plain_create_ms;
    double delay = plain + 0.3 * (tuned > plain ? tuned - plain : 0.0);
    if (delay < 1)
      delay = 1;
    c->me->kill_delay_ms = delay;
    pthread_t t;
    pthread_create(&t, NULL, killer_thread, &delay);
    double ms = 0;
    create_handler(c, c->opt->timeout_ms, 1, &ms);
    notef(c, "autotuned creation finished after %.0f ms, before the kill", ms);
    sleep_ms(delay * 4 + 1000);
    die_now(c, "after creation (the killer thread was late)");
  }
  survive_creation(c, 1);
}

/* The sequence of checked calls before a fault: every valid op and fused mode in turn, sizes
 * varying; `i` is the call index, the same on every rank. */
static void stream_call_shape(const rank_ctx_t* c, int i, mixcomm_op_t* op, mixcomm_mode_t* mode,
                              int64_t* rows_unit, int64_t* elems) {
  static const int64_t rows[] = {1, 3, 8, 17, 64};
  static const int64_t els[] = {8, 64, 512, 2048};
  *op = c->ti->ops[i % c->ti->nops];
  *mode = (c->ti->twoshot && (i / c->ti->nops) % 2) ? MIXCOMM_MODE_FUSED_OPT_BYTES1_UC
                                                    : MIXCOMM_MODE_FUSED_OPT_WAITS_UC;
  *rows_unit = rows[i % 5];
  *elems = els[(i / 5) % 4]; /* 16-byte rows for every dtype */
}

/* (c) All ranks run checked calls; the victim dies after `calls` of them (between calls, after
 * its last one completed). Calls from then on are one-shot, so every survivor waits for the
 * victim directly. */
static void rank_kill_mid_stream(rank_ctx_t* c) {
  double ms = 0;
  if (create_handler(c, c->opt->timeout_ms, 0, &ms) != MIXCOMM_SUCCESS) {
    notef(c, "create failed: %s", mixcomm_last_error());
    return;
  }
  const int n = c->opt->calls;
  int i;
  for (i = 0; i < n + 5; i++) {
    if (i == n && my_role(c) == ROLE_VICTIM)
      die_now(c, "between calls");
    mixcomm_op_t op;
    mixcomm_mode_t mode;
    int64_t rows_unit, elems;
    stream_call_shape(c, i, &op, &mode, &rows_unit, &elems);
    if (i >= n)
      mode = MIXCOMM_MODE_FUSED_OPT_WAITS_UC;
    const int r = checked_call(c, op, mode, rows_unit, elems, 100 + (uint64_t)i);
    if (r > 0)
      break;
  }
  if (c->me->status == 0)
    notef(c, "no error in %d calls although the victim died after %d", i, n);
  c->me->state = ST_REPORTED;
  wait_reported(c, c->opt->timeout_ms + c->opt->margin_ms);
  shutdown_handler(c);
}

/* (d) One call diverges on one rank: another op, another row count, or another mode. */
enum diverge { DIVERGE_OP, DIVERGE_ROWS, DIVERGE_MODE };

static void rank_diverge(rank_ctx_t* c, enum diverge kind) {
  if (create_handler(c, c->opt->timeout_ms, 0, NULL) != MIXCOMM_SUCCESS) {
    notef(c, "create failed: %s", mixcomm_last_error());
    return;
  }
  for (int i = 0; i < 3; i++) {
    if (checked_call(c, c->ti->ops[0], MIXCOMM_MODE_FUSED_OPT_WAITS_UC, 8, 512, 200 + i) != 0) {
      notef(c, "warm-up call %d failed", i);
      break;
    }
  }
  if (c->me->status == 0) {
    mixcomm_op_t op = c->ti->ops[0];
    mixcomm_mode_t mode = MIXCOMM_MODE_FUSED_OPT_WAITS_UC;
    int64_t rows_unit = 8;
    if (my_role(c) == ROLE_DIVERGER) {
      if (kind == DIVERGE_OP)
        op = c->ti->ops[1];
      else if (kind == DIVERGE_ROWS)
        rows_unit = 9;
      else
        mode = MIXCOMM_MODE_FUSED_OPT_BYTES1_UC;
    }
    if (unchecked_call(c, op, mode, rows_in_for(c, op, rows_unit), 1024) == MIXCOMM_SUCCESS)
      notef(c, "the diverging call succeeded");
  }
  c->me->state = ST_REPORTED;
  wait_reported(c, c->opt->timeout_ms + c->opt->margin_ms);
  shutdown_handler(c);
}
static void rank_diverge_op(rank_ctx_t* c) { rank_diverge(c, DIVERGE_OP); }
static void rank_diverge_rows(rank_ctx_t* c) { rank_diverge(c, DIVERGE_ROWS); }
static void rank_diverge_mode(rank_ctx_t* c) { rank_diverge(c, DIVERGE_MODE); }

/* (e) One rank never makes the call: it waits until the others have reported, then shuts down
 * with them. */
static void sleeper_waits(rank_ctx_t* c, int timeout_ms) {
  c->me->state = ST_REPORTED;
  wait_reported(c, timeout_ms + c->opt->margin_ms + 2000);
  shutdown_handler(c);
}

static void rank_never_calls(rank_ctx_t* c, mixcomm_mode_t mode) {
  if (create_handler(c, c->opt->timeout_ms, 0, NULL) != MIXCOMM_SUCCESS) {
    notef(c, "create failed: %s", mixcomm_last_error());
    return;
  }
  if (checked_call(c, c->ti->ops[0], mode, 4, 512, 300) != 0)
    notef(c, "warm-up call failed");
  if (my_role(c) == ROLE_SLEEPER) {
    sleeper_waits(c, c->opt->timeout_ms);
    return;
  }
  if (c->me->status == 0 &&
      unchecked_call(c, c->ti->ops[0], mode, rows_in_for(c, c->ti->ops[0], 8), 1024) ==
          MIXCOMM_SUCCESS)
    notef(c, "the call succeeded although a rank never made it");
  c->me->state = ST_REPORTED;
  wait_reported(c, c->opt->timeout_ms + c->opt->margin_ms);
  shutdown_handler(c);
}
static void rank_never_calls_1shot(rank_ctx_t* c) {
  rank_never_calls(c, MIXCOMM_MODE_FUSED_OPT_WAITS_UC);
}
static void rank_never_calls_2shot(rank_ctx_t* c) {
  rank_never_calls(c, MIXCOMM_MODE_FUSED_OPT_BYTES1_UC);
}

/* (f) One rank never calls; on the others a second thread aborts the handler while the main
 * thread waits in cudaStreamSynchronize. */
typedef struct abort_arg {
  mixcomm_handler_t* h;
  double delay_ms;
  mixcomm_status_t st;
  double t_abort;
} abort_arg_t;

static void* abort_thread(void* p) {
  abort_arg_t* a = p;
  sleep_ms(a->delay_ms);
  a->t_abort = now_ms();
  a->st = mixcomm_handler_abort(a->h);
  return NULL;
}

static void rank_abort(rank_ctx_t* c) {
  const int timeout = c->opt->abort_timeout_ms;
  if (create_handler(c, timeout, 0, NULL) != MIXCOMM_SUCCESS) {
    notef(c, "create failed: %s", mixcomm_last_error());
    return;
  }
  if (checked_call(c, c->ti->ops[0], MIXCOMM_MODE_FUSED_OPT_WAITS_UC, 4, 512, 400) != 0)
    notef(c, "warm-up call failed");
  if (my_role(c) == ROLE_SLEEPER) {
    sleeper_waits(c, c->opt->abort_delay_ms + c->opt->abort_limit_ms);
    return;
  }
  if (c->me->status == 0) {
    abort_arg_t a = {c->h, c->opt->abort_delay_ms, MIXCOMM_SUCCESS, 0};
    pthread_t t;
    /* The thread starts first, so the abort comes abort_delay_ms after the call however long
     * mixcomm_run takes to enqueue. */
    const double t0 = now_ms();
    pthread_create(&t, NULL, abort_thread, &a);
    mixcomm_status_t st =
        mixcomm_run(c->h, c->ti->ops[0], c->d_in, c->d_out, rows_in_for(c, c->ti->ops[0], 8),
                    1024, MIXCOMM_MODE_FUSED_OPT_WAITS_UC, c->stream);
    if (st != MIXCOMM_SUCCESS) {
      record_error(c, st, -1, AT_RUN, t0, mixcomm_last_error());
      pthread_join(t, NULL);
    } else {
      cudaError_t e = cudaStreamSynchronize(c->stream);
      const double t_end = now_ms();
      pthread_join(t, NULL);
      if (a.st != MIXCOMM_SUCCESS)
        notef(c, "mixcomm_handler_abort returned %s", short_status(a.st));
      if (e != cudaSuccess) {
        record_error(c, MIXCOMM_ERR_CUDA, -1, AT_SYNC, t0, cudaGetErrorString(e));
      } else {
        observe_async(c, t0, AT_SYNC);
        c->me->detect_ms = t_end - t0; /* how long the kernel ran */
        notef(c, "kernel ended %.0f ms after the abort", t_end - a.t_abort);
        if (c->me->status == 0)
          notef(c, "no error after the abort");
      }
    }
  }
  c->me->state = ST_REPORTED;
  wait_reported(c, c->opt->abort_delay_ms + c->opt->abort_limit_ms + c->opt->margin_ms);
  shutdown_handler(c);
}

/* (g) Misuse: large calls alternately on two streams with nothing ordering them. */
static void rank_two_streams(rank_ctx_t* c) {
  if (create_handler(c, c->opt->timeout_ms, 0, NULL) != MIXCOMM_SUCCESS) {
    notef(c, "create failed: %s", mixcomm_last_error());
    return;
  }
  cudaStream_t s2 = NULL;
  if (cudaStreamCreateWithFlags(&s2, cudaStreamNonBlocking) != cudaSuccess) {
    notef(c, "creating a second stream failed");
    return;
  }
  const mixcomm_op_t op = c->ti->ops[0];
  const size_t es = mixcomm_dtype_size(c->opt->dtype);
  const int64_t elems = 8192;
  /* Input and each half of the output buffer must hold a call. */
  int64_t unit = 256;
  while (unit > 1 && (size_t)unit * (size_t)c->ti->dp * (size_t)elems * es > DEVICE_BUFFER_BYTES / 2)
    unit /= 2;
  const int64_t rows_in = rows_in_for(c, op, unit);
  char* out[2] = {c->d_out, c->d_out + DEVICE_BUFFER_BYTES / 2};
  cudaStream_t s[2] = {c->stream, s2};
  cudaMemsetAsync(c->d_in, 0x3C, DEVICE_BUFFER_BYTES, c->stream);
  cudaStreamSynchronize(c->stream);
  const double t0 = now_ms();
  int launched = 0;
  for (int i = 0; i < 64; i++) {
    mixcomm_status_t st = mixcomm_run(c->h, op, c->d_in, out[i % 2], rows_in, elems,
                                      MIXCOMM_MODE_FUSED_OPT_WAITS_UC, s[i % 2]);
    if (st != MIXCOMM_SUCCESS) {
      int peer = -1;
      char copy[MSG_BYTES];
      copy_msg(copy, sizeof copy, mixcomm_last_error());
      mixcomm_handler_async_error(c->h, &peer);
      record_error(c, st, peer, AT_RUN, t0, copy);
      break;
    }
    launched++;
  }
  cudaError_t e1 = cudaStreamSynchronize(s[0]);
  cudaError_t e2 = cudaStreamSynchronize(s[1]);
  if (e1 != cudaSuccess || e2 != cudaSuccess)
    record_error(c, MIXCOMM_ERR_CUDA, -1, AT_SYNC, t0,
                 cudaGetErrorString(e1 != cudaSuccess ? e1 : e2));
  else
    observe_async(c, t0, AT_SYNC);
  notef(c, "%d calls launched on two streams", launched);
  c->me->state = ST_REPORTED;
  wait_reported(c, c->opt->timeout_ms + c->opt->margin_ms);
  shutdown_handler(c);
  cudaStreamDestroy(s2);
}

static void check_misuse(rank_ctx_t* c, const char* what, mixcomm_status_t got,
                         mixcomm_status_t want, const char* needle) {
  const char* msg = mixcomm_last_error();
  if (got == want && (needle == NULL || strstr(msg, needle) != NULL)) {
    c->me->checks_ok++;
    return;
  }
  c->me->checks_failed++;
  notef(c, "%s: got %s \"%.200s\", expected %s%s%s%s", what, short_status(got), msg,
        short_status(want), needle ? " containing \"" : "", needle ? needle : "",
        needle ? "\"" : "");
  if (c->me->status == 0)
    record_error(c, got, -1, AT_RUN, now_ms(), msg);
}

/* (g) Use after shutdown and shutdown twice. */
static void rank_after_shutdown(rank_ctx_t* c) {
  if (create_handler(c, c->opt->timeout_ms, 0, NULL) != MIXCOMM_SUCCESS) {
    notef(c, "create failed: %s", mixcomm_last_error());
    return;
  }
  if (checked_call(c, c->ti->ops[0], MIXCOMM_MODE_FUSED_OPT_WAITS_UC, 4, 512, 500) != 0)
    notef(c, "first call failed");
  mixcomm_handler_t* dead = c->h;
  shutdown_handler(c);
  if (c->me->shutdown_status != MIXCOMM_SUCCESS)
    notef(c, "the first shutdown failed: %s", c->me->shutdown_msg);
  /* No handler may be created before these calls: it could get the same address. */
  const int64_t rows = rows_in_for(c, c->ti->ops[0], 4);
  check_misuse(c, "run after shutdown",
               mixcomm_run(dead, c->ti->ops[0], c->d_in, c->d_out, rows, 512,
                           MIXCOMM_MODE_DEFAULT, c->stream),
               MIXCOMM_ERR_INVALID_USAGE, "not a live handler");
  check_misuse(c, "second shutdown", mixcomm_handler_shutdown(dead), MIXCOMM_ERR_INVALID_USAGE,
               "not a live handler");
  int peer = 0;
  check_misuse(c, "async_error after shutdown", mixcomm_handler_async_error(dead, &peer),
               MIXCOMM_ERR_INVALID_USAGE, "not a live handler");
  check_misuse(c, "abort after shutdown", mixcomm_handler_abort(dead), MIXCOMM_ERR_INVALID_USAGE,
               "not a live handler");
  if (cudaStreamSynchronize(c->stream) != cudaSuccess)
    notef(c, "the stream failed after the misuse");
  c->me->state = ST_REPORTED;
}

/* (g) A call while a checkpoint has released the workspace: refused, nothing written; after
 * restore, calls are correct again. */
static void rank_checkpointed(rank_ctx_t* c) {
  if (create_handler(c, c->opt->timeout_ms, 0, NULL) != MIXCOMM_SUCCESS) {
    notef(c, "create failed: %s", mixcomm_last_error());
    return;
  }
  const mixcomm_op_t op = c->ti->ops[0];
  if (checked_call(c, op, MIXCOMM_MODE_FUSED_OPT_WAITS_UC, 4, 512, 600) != 0)
    notef(c, "first call failed");
  mixcomm_status_t st = mixcomm_checkpoint_prepare(c->h);
  if (st != MIXCOMM_SUCCESS) {
    check_misuse(c, "checkpoint_prepare", st, MIXCOMM_SUCCESS, NULL);
  } else {
    const size_t es = mixcomm_dtype_size(c->opt->dtype);
    const int64_t rows_in = rows_in_for(c, op, 4);
    const size_t out_bytes = (size_t)(is_gather(op) ? 4 * c->ti->dp : 4) * 512 * es;
    cudaMemsetAsync(c->d_out, 0xA5, out_bytes, c->stream);
    cudaStreamSynchronize(c->stream);
    check_misuse(c, "run while checkpointed",
                 mixcomm_run(c->h, op, c->d_in, c->d_out, rows_in, 512,
                             MIXCOMM_MODE_FUSED_OPT_WAITS_UC, c->stream),
                 MIXCOMM_ERR_INVALID_USAGE, "checkpoint");
    check_misuse(c, "run (DEFAULT mode) while checkpointed",
                 mixcomm_run(c->h, op, c->d_in, c->d_out, rows_in, 512, MIXCOMM_MODE_DEFAULT,
                             c->stream),
                 MIXCOMM_ERR_INVALID_USAGE, "checkpoint");
    cudaError_t e = cudaStreamSynchronize(c->stream);
    unsigned char* buf = (unsigned char*)c->h_out;
    if (e == cudaSuccess)
      e = cudaMemcpy(buf, c->d_out, out_bytes, cudaMemcpyDeviceToHost);
    size_t touched = 0;
    for (size_t i = 0; e == cudaSuccess && i < out_bytes; i++)
      touched += buf[i] != 0xA5;
    if (e != cudaSuccess || touched) {
      c->me->checks_failed++;
      notef(c, "the refused call changed the output (%zu bytes) or CUDA failed (%s)", touched,
            cudaGetErrorString(e));
    } else {
      c->me->checks_ok++;
    }
    st = mixcomm_checkpoint_restore(c->h);
    check_misuse(c, "checkpoint_restore", st, MIXCOMM_SUCCESS, NULL);
    if (st == MIXCOMM_SUCCESS) {
      if (checked_call(c, op, MIXCOMM_MODE_FUSED_OPT_WAITS_UC, 4, 512, 601) == 0 &&
          checked_call(c, op, MIXCOMM_MODE_DEFAULT, 17, 64, 602) == 0)
        c->me->checks_ok++;
      else {
        c->me->checks_failed++;
        notef(c, "calls after restore failed");
      }
    }
  }
  c->me->state = ST_REPORTED;
  wait_reported(c, c->opt->timeout_ms + c->opt->margin_ms);
  shutdown_handler(c);
  if (c->me->shutdown_status != MIXCOMM_SUCCESS) {
    c->me->checks_failed++;
    notef(c, "shutdown failed: %s", c->me->shutdown_msg);
  }
}

/* (h) Dead versus slow peers with the default timeout (10 minutes; MIXCOMM_TIMEOUT_MS is
 * cleared so that it cannot shorten it). */
static mixcomm_status_t create_with_default_timeout(rank_ctx_t* c) {
  unsetenv("MIXCOMM_TIMEOUT_MS");
  mixcomm_status_t st = create_handler(c, 0, 0, NULL);
  if (st != MIXCOMM_SUCCESS)
    notef(c, "create failed: %s", mixcomm_last_error());
  return st;
}

/* The victim dies while every other rank waits for it inside a one-shot call. */
static void rank_kill_detected(rank_ctx_t* c) {
  if (create_with_default_timeout(c) != MIXCOMM_SUCCESS)
    return;
  for (int i = 0; i < 3; i++) {
    if (checked_call(c, c->ti->ops[0], MIXCOMM_MODE_FUSED_OPT_WAITS_UC, 8, 512, 400 + i) != 0) {
      notef(c, "warm-up call %d failed", i);
      break;
    }
  }
  if (c->me->status == 0) {
    if (my_role(c) == ROLE_VICTIM) {
      sleep_ms(300); /* the others are in their kernels by now, waiting for this rank */
      c->me->killed_at_ms = now_ms();
      die_now(c, "while the others wait for it in a call");
    }
    if (unchecked_call(c, c->ti->ops[0], MIXCOMM_MODE_FUSED_OPT_WAITS_UC,
                       rows_in_for(c, c->ti->ops[0], 8), 1024) == MIXCOMM_SUCCESS)
      notef(c, "the call succeeded although a rank died");
  }
  c->me->state = ST_REPORTED;
  wait_reported(c, 5000 + c->opt->margin_ms);
  shutdown_handler(c);
}

/* The sleeper starts a call late_ms after the others; the call must succeed everywhere. */
static void rank_late_peer(rank_ctx_t* c) {
  if (create_with_default_timeout(c) != MIXCOMM_SUCCESS)
    return;
  for (int i = 0; i < 2; i++)
    if (checked_call(c, c->ti->ops[0], MIXCOMM_MODE_FUSED_OPT_WAITS_UC, 8, 512, 500 + i) != 0)
      notef(c, "warm-up call %d failed", i);
  if (c->me->status == 0) {
    if (my_role(c) == ROLE_SLEEPER) {
      notef(c, "sleeping %d ms before the call", c->opt->late_ms);
      sleep_ms(c->opt->late_ms);
    }
    const double t0 = now_ms();
    if (checked_call(c, c->ti->ops[0], MIXCOMM_MODE_FUSED_OPT_WAITS_UC, 8, 512, 502) != 0)
      notef(c, "the late call failed");
    c->me->call_ms = now_ms() - t0;
    /* The handler is still healthy: a two-shot call (several waits per kernel) right after. */
    if (c->me->status == 0 && c->ti->twoshot &&
        checked_call(c, c->ti->ops[0], MIXCOMM_MODE_FUSED_OPT_BYTES1_UC, 8, 512, 503) != 0)
      notef(c, "the two-shot call after the late one failed");
  }
  c->me->state = ST_REPORTED;
  shutdown_handler(c);
}

/* (i) The culprit's node-workspace mapping fails (MIXCOMM_DEBUG_FAIL_MAP, as a failed
 * cuMemSetAccess would): every rank's creation must fail at once, naming it. */
static void rank_map_fails(rank_ctx_t* c) {
  char v[16];
  snprintf(v, sizeof v, "%d", c->ti->victim);
  setenv("MIXCOMM_DEBUG_FAIL_MAP", v, 1);
  double ms = 0;
  const double t0 = now_ms();
  mixcomm_status_t st = create_handler(c, c->opt->timeout_ms, 0, &ms);
  unsetenv("MIXCOMM_DEBUG_FAIL_MAP");
  c->me->create_ms = ms;
  if (st != MIXCOMM_SUCCESS)
    record_error(c, st, -1, AT_CREATE, t0, mixcomm_last_error());
  else
    notef(c, "creation succeeded although rank %d's mapping failed", c->ti->victim);
  c->me->state = ST_REPORTED;
}

/* ---- scenarios: judges (parent side) ------------------------------------------------------ */

static int exited_ok(int st) { return st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0; }
static int was_killed(int st) { return st >= 0 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL; }

static void describe_exit(char* buf, size_t size, int st) {
  if (st < 0)
    snprintf(buf, size, "killed by the watchdog (scenario limit)");
  else if (WIFEXITED(st))
    snprintf(buf, size, "exit %d", WEXITSTATUS(st));
  else if (WIFSIGNALED(st))
    snprintf(buf, size, "signal %d", WTERMSIG(st));
  else
    snprintf(buf, size, "status 0x%x", st);
}

/* Exits: the victim killed itself; everybody else exited 0 after finishing its scenario. */
static void judge_exits(const topo_info_t* ti, const shared_t* sh, const int* exits, judge_t* j) {
  for (int r = 0; r < ti->world; r++) {
    const rank_result_t* m = &sh->r[r];
    char e[96];
    describe_exit(e, sizeof e, exits[r]);
    if (m->role == ROLE_VICTIM) {
      if (!was_killed(exits[r]))
        jfail(j, "victim rank %d: %s, expected SIGKILL", r, e);
    } else if (!exited_ok(exits[r]) || m->state != ST_FINISHED) {
      jfail(j, "rank %d did not finish cleanly (%s, state %d%s%s)", r, e, m->state,
            m->note[0] ? ": " : "", m->note);
    }
  }
}

/* Survivors' shutdown: returned (an error is fine) within the bootstrap timeout + margin. */
static void judge_shutdown(const options_t* o, const topo_info_t* ti, const shared_t* sh,
                           judge_t* j, int must_succeed) {
  for (int r = 0; r < ti->world; r++) {
    const rank_result_t* m = &sh->r[r];
    if (m->role == ROLE_VICTIM || !m->had_handler)
      continue;
    if (!m->shutdown_done)
      jfail(j, "rank %d never returned from shutdown", r);
    else if (m->shutdown_ms > o->bs_timeout_ms + o->margin_ms)
      jfail(j, "rank %d: shutdown took %.0f ms", r, m->shutdown_ms);
    else if (must_succeed && m->shutdown_status != MIXCOMM_SUCCESS)
      jfail(j, "rank %d: shutdown %s: %s", r, short_status(m->shutdown_status), m->shutdown_msg);
  }
}

/* Every survivor observed an error naming `culprit` (strict) or naming some rank, with at least
 * one naming the culprit (lenient), within bound_ms. allowed: bit mask of accepted statuses
 * (0: any error). */
static void judge_named(const topo_info_t* ti, const shared_t* sh, judge_t* j, int culprit,
                        int strict, unsigned allowed, double bound_ms) {
  int naming = 0;
  for (int r = 0; r < ti->world; r++) {
    const rank_result_t* m = &sh->r[r];
    if (m->role != ROLE_SURVIVOR)
      continue;
    if (m->status == 0) {
      jfail(j, "rank %d saw no error%s%s", r, m->note[0] ? ": " : "", m->note);
      continue;
    }
    if (allowed && !(allowed & (1u << m->status)))
      jfail(j, "rank %d: %s, not an expected status", r, short_status(m->status));
    const int names_culprit = m->peer == culprit || names_rank(m->msg, culprit);
    const int names_someone = m->peer >= 0 || strstr(m->msg, "rank ") != NULL;
    naming += names_culprit;
    if (strict && !names_culprit)
      jfail(j, "rank %d's error does not name rank %d (peer %d): %.300s", r, culprit, m->peer,
            m->msg);
    else if (!strict && !names_someone)
      jfail(j, "rank %d's error names no rank: %.300s", r, m->msg);
    if (m->detect_ms > bound_ms)
      jfail(j, "rank %d took %.0f ms to see the error (limit %.0f ms)", r, m->detect_ms,
            bound_ms);
    if (m->wrong)
      jfail(j, "rank %d: %lld wrong elements in the checked calls", r, m->wrong);
  }
  if (!strict && naming == 0)
    jfail(j, "no survivor names rank %d", culprit);
}

#define BIT(s) (1u << (s))

static int judge_kill_before_create(const options_t* o, const topo_info_t* ti, const shared_t* sh,
                                    const int* exits, judge_t* j) {
  judge_exits(ti, sh, exits, j);
  judge_named(ti, sh, j, ti->victim, 1, 0,
              (o->bs_timeout_ms > o->timeout_ms ? o->bs_timeout_ms : o->timeout_ms) + o->margin_ms);
  judge_shutdown(o, ti, sh, j, 0);
  return j->ok;
}

static int judge_kill_in_create(const options_t* o, const topo_info_t* ti, const shared_t* sh,
                                const int* exits, judge_t* j) {
  judge_exits(ti, sh, exits, j);
  const double delay = sh->r[ti->victim].kill_delay_ms;
  judge_named(ti, sh, j, ti->victim, 1, 0,
              delay + o->bs_timeout_ms + o->timeout_ms + o->margin_ms);
  judge_shutdown(o, ti, sh, j, 0);
  return j->ok;
}

static int judge_kill_in_autotune(const options_t* o, const topo_info_t* ti, const shared_t* sh,
                                  const int* exits, judge_t* j) {
  judge_exits(ti, sh, exits, j);
  const rank_result_t* v = &sh->r[ti->victim];
  judge_named(ti, sh, j, ti->victim, 0, 0,
              v->kill_delay_ms + o->bs_timeout_ms + o->timeout_ms + o->margin_ms);
  for (int r = 0; r < ti->world; r++) {
    const rank_result_t* m = &sh->r[r];
    if (m->role == ROLE_SURVIVOR && m->status != 0 && m->where != AT_CREATE)
      jfail(j,
            "rank %d: creation succeeded: the kill (%.0f ms in) landed after autotune (a plain "
            "creation took %.0f ms, a tuned one %.0f ms)",
            r, v->kill_delay_ms, v->plain_create_ms, v->tuned_create_ms);
  }
  judge_shutdown(o, ti, sh, j, 0);
  return j->ok;
}

static int judge_kill_mid_stream(const options_t* o, const topo_info_t* ti, const shared_t* sh,
                                 const int* exits, judge_t* j) {
  judge_exits(ti, sh, exits, j);
  /* The watch on the bootstrap usually sees the death first (PEER_LOST); the timeout is the
   * bound either way. */
  judge_named(ti, sh, j, ti->victim, 1, BIT(MIXCOMM_ERR_TIMEOUT) | BIT(MIXCOMM_ERR_PEER_LOST),
              o->timeout_ms + o->margin_ms);
  for (int r = 0; r < ti->world; r++) {
    const rank_result_t* m = &sh->r[r];
    if (m->calls_ok < o->calls)
      jfail(j, "rank %d: only %d of the %d calls before the kill were correct", r, m->calls_ok,
            o->calls);
    if (m->role == ROLE_SURVIVOR && m->status != 0 && m->next_status != m->status)
      jfail(j, "rank %d: the next mixcomm_run returned %s, not %s", r,
            short_status(m->next_status), short_status(m->status));
  }
  judge_shutdown(o, ti, sh, j, 0);
  return j->ok;
}

/* Diverging call: every rank fails with TIMEOUT or MISMATCH; the diverger is named in a
 * MISMATCH by every other rank (strict: one-shot, each receives its tags) or by one at least. */
static int judge_diverge(const options_t* o, const topo_info_t* ti, const shared_t* sh,
                         const int* exits, judge_t* j, int strict) {
  judge_exits(ti, sh, exits, j);
  const int d = ti->victim;
  int mismatch_naming = 0;
  for (int r = 0; r < ti->world; r++) {
    const rank_result_t* m = &sh->r[r];
    if (m->status != MIXCOMM_ERR_TIMEOUT && m->status != MIXCOMM_ERR_MISMATCH) {
      jfail(j, "rank %d: %s, expected TIMEOUT or MISMATCH%s%.200s", r,
            m->status ? short_status(m->status) : "no error", m->msg[0] ? ": " : "", m->msg);
      continue;
    }
    const int named = m->peer == d && names_rank(m->msg, d);
    if (r != d && m->status == MIXCOMM_ERR_MISMATCH && named)
      mismatch_naming++;
    else if (r != d && strict)
      jfail(j, "rank %d: %s naming rank %d, expected MISMATCH naming rank %d: %.300s", r,
            short_status(m->status), m->peer, d, m->msg);
    if (m->detect_ms > o->timeout_ms + o->margin_ms)
      jfail(j, "rank %d took %.0f ms", r, m->detect_ms);
    if (m->wrong)
      jfail(j, "rank %d: %lld wrong elements in the warm-up calls", r, m->wrong);
  }
  if (mismatch_naming == 0)
    jfail(j, "no rank reported MISMATCH naming rank %d", d);
  judge_shutdown(o, ti, sh, j, 0);
  return j->ok;
}
static int judge_diverge_strict(const options_t* o, const topo_info_t* ti, const shared_t* sh,
                                const int* exits, judge_t* j) {
  return judge_diverge(o, ti, sh, exits, j, 1);
}
static int judge_diverge_lenient(const options_t* o, const topo_info_t* ti, const shared_t* sh,
                                 const int* exits, judge_t* j) {
  return judge_diverge(o, ti, sh, exits, j, 0);
}

static int judge_never_calls(const options_t* o, const topo_info_t* ti, const shared_t* sh,
                             const int* exits, judge_t* j, int strict) {
  judge_exits(ti, sh, exits, j);
  judge_named(ti, sh, j, ti->victim, strict, BIT(MIXCOMM_ERR_TIMEOUT),
              o->timeout_ms + o->margin_ms);
  judge_shutdown(o, ti, sh, j, 0);
  const rank_result_t* s = &sh->r[ti->victim];
  if (s->status != 0)
    jfail(j, "the sleeper (rank %d) saw %s: %.200s", ti->victim, short_status(s->status), s->msg);
  return j->ok;
}
static int judge_never_calls_strict(const options_t* o, const topo_info_t* ti, const shared_t* sh,
                                    const int* exits, judge_t* j) {
  return judge_never_calls(o, ti, sh, exits, j, 1);
}
static int judge_never_calls_lenient(const options_t* o, const topo_info_t* ti,
                                     const shared_t* sh, const int* exits, judge_t* j) {
  return judge_never_calls(o, ti, sh, exits, j, 0);
}

static int judge_abort(const options_t* o, const topo_info_t* ti, const shared_t* sh,
                       const int* exits, judge_t* j) {
  judge_exits(ti, sh, exits, j);
  for (int r = 0; r < ti->world; r++) {
    const rank_result_t* m = &sh->r[r];
    if (m->role != ROLE_SURVIVOR)
      continue;
    if (m->status != MIXCOMM_ERR_ABORTED)
      jfail(j, "rank %d: %s, expected ABORTED%s%.200s", r,
            m->status ? short_status(m->status) : "no error", m->msg[0] ? ": " : "", m->msg);
    else if (m->next_status != MIXCOMM_ERR_ABORTED)
      jfail(j, "rank %d: the next mixcomm_run returned %s, not ABORTED", r,
            short_status(m->next_status));
    if (m->detect_ms >= o->abort_limit_ms)
      jfail(j, "rank %d: the kernel ran %.0f ms (limit %d ms, timeout %d ms)", r, m->detect_ms,
            o->abort_limit_ms, o->abort_timeout_ms);
    if (m->detect_ms < o->abort_delay_ms * 0.8)
      jfail(j, "rank %d: the kernel ended after %.0f ms, before the abort at %d ms", r,
            m->detect_ms, o->abort_delay_ms);
  }
  judge_shutdown(o, ti, sh, j, 0);
  return j->ok;
}

static int judge_two_streams(const options_t* o, const topo_info_t* ti, const shared_t* sh,
                             const int* exits, judge_t* j) {
  judge_exits(ti, sh, exits, j);
  int flagged = 0;
  for (int r = 0; r < ti->world; r++) {
    const rank_result_t* m = &sh->r[r];
    if (m->status == MIXCOMM_ERR_INVALID_USAGE && strstr(m->msg, "two streams") != NULL)
      flagged++;
    else if (m->status != MIXCOMM_ERR_INVALID_USAGE && m->status != MIXCOMM_ERR_TIMEOUT &&
             m->status != MIXCOMM_ERR_MISMATCH)
      jfail(j, "rank %d: %s%s%.200s", r, m->status ? short_status(m->status) : "no error",
            m->msg[0] ? ": " : "", m->msg);
    if (m->detect_ms > o->timeout_ms + o->margin_ms)
      jfail(j, "rank %d took %.0f ms", r, m->detect_ms);
  }
  if (flagged == 0)
    jfail(j, "no rank reported INVALID_USAGE mentioning \"two streams\"");
  judge_shutdown(o, ti, sh, j, 0);
  return j->ok;
}

static int judge_misuse(const options_t* o, const topo_info_t* ti, const shared_t* sh,
                        const int* exits, judge_t* j) {
  judge_exits(ti, sh, exits, j);
  for (int r = 0; r < ti->world; r++) {
    const rank_result_t* m = &sh->r[r];
    if (m->checks_failed || m->checks_ok == 0)
      jfail(j, "rank %d: %d of %d checks failed: %s", r, m->checks_failed,
            m->checks_ok + m->checks_failed, m->note);
    if (m->wrong)
      jfail(j, "rank %d: %lld wrong elements", r, m->wrong);
  }
  judge_shutdown(o, ti, sh, j, 1);
  return j->ok;
}

static int judge_kill_detected(const options_t* o, const topo_info_t* ti, const shared_t* sh,
                               const int* exits, judge_t* j) {
  judge_exits(ti, sh, exits, j);
  judge_named(ti, sh, j, ti->victim, 1, BIT(MIXCOMM_ERR_PEER_LOST), 1e9);
  const double killed = sh->r[ti->victim].killed_at_ms;
  if (killed <= 0)
    jfail(j, "the victim (rank %d) never got to kill itself", ti->victim);
  for (int r = 0; r < ti->world && killed > 0; r++) {
    const rank_result_t* m = &sh->r[r];
    if (m->role != ROLE_SURVIVOR || m->status == 0)
      continue;
    const double after = m->error_at_ms - killed;
    if (after > 2000)
      jfail(j, "rank %d reported the lost peer %.0f ms after its death (limit 2000 ms)", r,
            after);
    if (m->next_status != MIXCOMM_ERR_PEER_LOST)
      jfail(j, "rank %d: the next mixcomm_run returned %s, not PEER_LOST", r,
            short_status(m->next_status));
  }
  judge_shutdown(o, ti, sh, j, 0);
  return j->ok;
}

static int judge_late_peer(const options_t* o, const topo_info_t* ti, const shared_t* sh,
                           const int* exits, judge_t* j) {
  judge_exits(ti, sh, exits, j);
  const int want = 3 + (ti->twoshot ? 1 : 0);
  for (int r = 0; r < ti->world; r++) {
    const rank_result_t* m = &sh->r[r];
    if (m->status != 0)
      jfail(j, "rank %d: %s: %.300s", r, short_status(m->status), m->msg);
    else if (m->calls_ok != want || m->wrong != 0)
      jfail(j, "rank %d: %d of %d calls correct (%lld wrong elements)", r, m->calls_ok, want,
            m->wrong);
    /* The others really waited for the late rank (else this proved nothing). */
    if (m->role == ROLE_SURVIVOR && m->status == 0 && m->call_ms < 0.9 * o->late_ms)
      jfail(j, "rank %d's late call took only %.0f ms (the late rank slept %d ms)", r, m->call_ms,
            o->late_ms);
  }
  judge_shutdown(o, ti, sh, j, 1);
  return j->ok;
}

static int judge_map_fails(const options_t* o, const topo_info_t* ti, const shared_t* sh,
                           const int* exits, judge_t* j) {
  judge_exits(ti, sh, exits, j);
  const double bound = o->bs_timeout_ms / 2.0;
  for (int r = 0; r < ti->world; r++) {
    const rank_result_t* m = &sh->r[r];
    if (m->status == 0) {
      jfail(j, "rank %d: creation succeeded%s%s", r, m->note[0] ? ": " : "", m->note);
      continue;
    }
    if (m->where != AT_CREATE)
      jfail(j, "rank %d failed at %s, not in creation", r, where_name(m->where));
    if (!names_rank(m->msg, ti->victim) || strstr(m->msg, "MIXCOMM_DEBUG_FAIL_MAP") == NULL)
      jfail(j, "rank %d's error does not name rank %d's injected failure: %.300s", r, ti->victim,
            m->msg);
    if (m->detect_ms > bound)
      jfail(j, "rank %d's creation took %.0f ms to fail (limit %.0f ms, half the bootstrap "
            "timeout)", r, m->detect_ms, bound);
  }
  return j->ok;
}

/* ---- the scenario table ---------------------------------------------------------------------- */

static const char* skip_never(const topo_info_t* ti) {
  (void)ti;
  return NULL;
}
static const char* skip_one_op(const topo_info_t* ti) {
  return ti->nops < 2 ? "only one valid op for this topology" : NULL;
}
static const char* skip_no_twoshot(const topo_info_t* ti) {
  return ti->twoshot ? NULL : "FUSED_OPT_BYTES1_UC needs local_tp_size > 1";
}

static const scenario_t k_scenarios[] = {
    {"kill-before-create", "a rank is SIGKILLed right before mixcomm_handler_create", skip_never,
     assign_victim, rank_kill_before_create, judge_kill_before_create},
    {"kill-in-create", "a rank is SIGKILLed half-way through mixcomm_handler_create", skip_never,
     assign_victim, rank_kill_in_create, judge_kill_in_create},
    {"kill-in-autotune", "a rank is SIGKILLed while autotune measures (empty cache)", skip_never,
     assign_victim, rank_kill_in_autotune, judge_kill_in_autotune},
    {"kill-mid-stream", "a rank is SIGKILLed between calls of a checked stream", skip_never,
     assign_victim, rank_kill_mid_stream, judge_kill_mid_stream},
    {"diverge-op", "one rank calls another op", skip_one_op, assign_diverger, rank_diverge_op,
     judge_diverge_strict},
    {"diverge-rows", "one rank calls with another row count", skip_never, assign_diverger,
     rank_diverge_rows, judge_diverge_strict},
    {"diverge-mode", "one rank calls two-shot while the others call one-shot", skip_no_twoshot,
     assign_diverger, rank_diverge_mode, judge_diverge_lenient},
    {"never-calls", "one rank never makes a one-shot call", skip_never, assign_sleeper,
     rank_never_calls_1shot, judge_never_calls_strict},
    {"never-calls-2shot", "one rank never makes a two-shot call", skip_no_twoshot, assign_sleeper,
     rank_never_calls_2shot, judge_never_calls_lenient},
    {"abort", "a second thread aborts while the main thread waits on a stuck kernel", skip_never,
     assign_sleeper, rank_abort, judge_abort},
    {"two-streams", "one handler used from two streams at once", skip_never, assign_none,
     rank_two_streams, judge_two_streams},
    {"after-shutdown", "run, shutdown, async_error and abort after shutdown", skip_never,
     assign_none, rank_after_shutdown, judge_misuse},
    {"checkpointed", "run while a checkpoint has released the workspace", skip_never, assign_none,
     rank_checkpointed, judge_misuse},
    {"kill-detected", "a rank is SIGKILLed while the others wait for it (default timeout)",
     skip_never, assign_victim, rank_kill_detected, judge_kill_detected},
    {"late-peer", "a rank starts a call --late-ms after the others (default timeout)",
     skip_never, assign_sleeper, rank_late_peer, judge_late_peer},
    {"map-fails", "one rank's node-workspace mapping fails (MIXCOMM_DEBUG_FAIL_MAP)", skip_never,
     assign_diverger, rank_map_fails, judge_map_fails},
};
#define NUM_SCENARIOS ((int)(sizeof k_scenarios / sizeof k_scenarios[0]))

/* ---- the parent: fork, watch, judge ------------------------------------------------------------ */

static int remove_entry(const char* path, const struct stat* st, int flag, struct FTW* ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static void appendf(char* buf, size_t size, size_t* used, const char* fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void appendf(char* buf, size_t size, size_t* used, const char* fmt, ...) {
  if (*used + 1 >= size)
    return;
  va_list ap;
  va_start(ap, fmt);
  int w = vsnprintf(buf + *used, size - *used, fmt, ap);
  va_end(ap);
  if (w > 0)
    *used += (size_t)w < size - *used ? (size_t)w : size - *used - 1;
}

/* "r0 TIMEOUT->r3 at sync in 2051 ms, shutdown BOOTSTRAP 2 ms, r1 ..., r3 killed" */
static void summarize(const topo_info_t* ti, const shared_t* sh, const int* exits, char* buf,
                      size_t size) {
  size_t used = 0;
  buf[0] = '\0';
  for (int r = 0; r < ti->world; r++) {
    const rank_result_t* m = &sh->r[r];
    appendf(buf, size, &used, "%sr%d", r ? ", " : "", r);
    if (m->role != ROLE_SURVIVOR)
      appendf(buf, size, &used, " %s", role_name(m->role));
    if (m->role == ROLE_VICTIM) {
      char e[96];
      describe_exit(e, sizeof e, exits[r]);
      appendf(buf, size, &used, " %s", was_killed(exits[r]) ? "killed" : e);
      if (m->kill_delay_ms > 0) {
        appendf(buf, size, &used, " %.0f ms into creation (a plain creation takes %.0f ms",
                m->kill_delay_ms, m->plain_create_ms);
        if (m->tuned_create_ms > 0)
          appendf(buf, size, &used, ", a tuned one %.0f ms", m->tuned_create_ms);
        appendf(buf, size, &used, ")");
      }
      continue;
    }
    if (m->status != 0) {
      appendf(buf, size, &used, " %s", short_status(m->status));
      if (m->peer >= 0)
        appendf(buf, size, &used, "->r%d", m->peer);
      appendf(buf, size, &used, " at %s in %.0f ms", where_name(m->where), m->detect_ms);
    } else {
      appendf(buf, size, &used, " no error");
    }
    if (m->calls_ok)
      appendf(buf, size, &used, ", %d calls correct", m->calls_ok);
    if (m->checks_ok + m->checks_failed)
      appendf(buf, size, &used, ", %d/%d checks", m->checks_ok, m->checks_ok + m->checks_failed);
    if (m->shutdown_done)
      appendf(buf, size, &used, ", shutdown %s %.0f ms",
              m->shutdown_status ? short_status(m->shutdown_status) : "ok", m->shutdown_ms);
  }
}

/* The hard limit of one scenario: late-peer waits --late-ms on top. */
static int scenario_limit_s(const options_t* o, const scenario_t* sc) {
  return strcmp(sc->name, "late-peer") == 0 ? o->limit_s + o->late_ms / 1000 : o->limit_s;
}

static int run_scenario(const options_t* o, const topo_info_t* ti, const scenario_t* sc,
                        const char* tmpdir) {
  const int W = ti->world;
  shared_t* sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (sh == MAP_FAILED) {
    perror("faults: mmap");
    return 0;
  }
  memset(sh, 0, sizeof *sh);
  sc->assign(ti, sh);
  rank_ctx_t base;
  memset(&base, 0, sizeof base);
  base.opt = o;
  base.sc = sc;
  base.ti = ti;
  base.sh = sh;
  base.world = W;
  const int port = spawn_free_port();
  snprintf(base.tcp.addr, sizeof base.tcp.addr, "127.0.0.1");
  base.tcp.port = port;
  snprintf(base.tcp.token, sizeof base.tcp.token, "faults-%d-%d", (int)getpid(), port);
  snprintf(base.cache_dir, sizeof base.cache_dir, "%s/%s-%d", tmpdir, sc->name, W);
  mkdir(base.cache_dir, 0700);

  pid_t pids[MAX_RANKS];
  int exits[MAX_RANKS];
  const double t0 = now_ms();
  fflush(stdout);
  fflush(stderr);
  for (int r = 0; r < W; r++) {
    exits[r] = -1;
    pids[r] = fork();
    if (pids[r] < 0) {
      perror("faults: fork");
      for (int k = 0; k < r; k++)
        kill(pids[k], SIGKILL);
      for (int k = 0; k < r; k++)
        waitpid(pids[k], NULL, 0);
      munmap(sh, sizeof *sh);
      return 0;
    }
    if (pids[r] == 0) {
      alarm((unsigned)scenario_limit_s(o, sc) + 5); /* backstop: the parent kills first */
      rank_ctx_t c = base;
      c.rank = r;
      c.me = &sh->r[r];
      int rc = 3;
      if (rank_setup(&c) == 0) {
        sc->rank(&c);
        if (c.h != NULL)
          shutdown_handler(&c);
        rc = 0;
      } else {
        c.me->setup_failed = 1;
      }
      rank_teardown(&c);
      c.me->state = ST_FINISHED;
      fflush(stdout);
      fflush(stderr);
      _exit(rc);
    }
  }
  int remaining = W;
  const double deadline = t0 + scenario_limit_s(o, sc) * 1000.0;
  while (remaining > 0) {
    for (int r = 0; r < W; r++) {
      if (pids[r] <= 0)
        continue;
      int st;
      pid_t p = waitpid(pids[r], &st, WNOHANG);
      if (p == pids[r]) {
        exits[r] = st;
        pids[r] = 0;
        remaining--;
      }
    }
    if (remaining == 0)
      break;
    if (now_ms() > deadline) {
      for (int r = 0; r < W; r++) {
        if (pids[r] > 0) {
          kill(pids[r], SIGKILL);
          waitpid(pids[r], NULL, 0);
          exits[r] = -1;
          pids[r] = 0;
          remaining--;
        }
      }
      break;
    }
    sleep_ms(5);
  }
  const double took = now_ms() - t0;

  judge_t j;
  memset(&j, 0, sizeof j);
  j.ok = 1;
  for (int r = 0; r < W; r++)
    if (sh->r[r].setup_failed)
      jfail(&j, "rank %d could not set up (%s)", r, sh->r[r].note);
  const int ok = j.ok ? sc->judge(o, ti, sh, exits, &j) : 0;
  char summary[2048];
  summarize(ti, sh, exits, summary, sizeof summary);
  if (ok)
    printf("fault %s: ok (%s; %.1f s)\n", sc->name, summary, took / 1000.0);
  else
    printf("fault %s: FAIL (%s | %s; %.1f s)\n", sc->name, j.why, summary, took / 1000.0);
  if (!ok || o->verbose) {
    for (int r = 0; r < W; r++) {
      const rank_result_t* m = &sh->r[r];
      char e[96];
      describe_exit(e, sizeof e, exits[r]);
      printf("    rank %d (%s, %s): %s%s%s%s%s%s%s\n", r, role_name(m->role), e,
             m->status ? short_status(m->status) : "no error", m->msg[0] ? ": " : "", m->msg,
             m->note[0] ? " [notes: " : "", m->note, m->note[0] ? "]" : "",
             m->shutdown_msg[0] ? " [shutdown error]" : "");
    }
  }
  fflush(stdout);
  nftw(base.cache_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  munmap(sh, sizeof *sh);
  return ok;
}

/* ---- main ------------------------------------------------------------------------------------ */

static void usage(void) {
  fprintf(stderr,
          "usage: mixcomm-fault-tests [--ranks 4[,2,...]] [--tp T] [--victim R]\n"
          "                           [--only NAME[,NAME...]] [--list] [--timeout-ms 2000]\n"
          "                           [--bootstrap-timeout-ms 10000] [--margin-ms 3000]\n"
          "                           [--limit-s 60] [--total-limit-s 540] [--calls 40]\n"
          "                           [--late-ms 60000] [--dtype bf16] [--verbose]\n");
}

static int wanted(const options_t* o, const char* name) {
  if (o->only[0] == '\0')
    return 1;
  const size_t n = strlen(name);
  for (const char* p = o->only; (p = strstr(p, name)) != NULL; p += n) {
    const int start = p == o->only || p[-1] == ',';
    const int end = p[n] == '\0' || p[n] == ',';
    if (start && end)
      return 1;
  }
  return 0;
}

int main(int argc, char** argv) {
  options_t o;
  memset(&o, 0, sizeof o);
  o.ranks[0] = 4;
  o.nranks = 1;
  o.victim = -1;
  o.timeout_ms = 2000;
  o.abort_timeout_ms = 20000;
  o.abort_delay_ms = 300;
  o.abort_limit_ms = 5000;
  o.bs_timeout_ms = 10000;
  o.margin_ms = 3000;
  o.limit_s = 60;
  o.total_limit_s = 540;
  o.calls = 40;
  o.late_ms = 60000;
  o.dtype = MIXCOMM_BFLOAT16;
  for (int i = 1; i < argc; i++) {
    const char* a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : NULL;
    int bad = 0;
    if (!strcmp(a, "--list")) {
      for (int k = 0; k < NUM_SCENARIOS; k++)
        printf("%-20s %s\n", k_scenarios[k].name, k_scenarios[k].what);
      return 0;
    } else if (!strcmp(a, "--verbose")) {
      o.verbose = 1;
      continue;
    } else if (v == NULL) {
      bad = 1;
    } else if (!strcmp(a, "--ranks")) {
      o.nranks = 0;
      char buf[128];
      snprintf(buf, sizeof buf, "%s", v);
      for (char* tok = strtok(buf, ","); tok && !bad; tok = strtok(NULL, ",")) {
        if (o.nranks >= 8 || args_parse_int(tok, 2, MAX_RANKS, &o.ranks[o.nranks]) != 0)
          bad = 1;
        else
          o.nranks++;
      }
      bad |= o.nranks == 0;
    } else if (!strcmp(a, "--tp")) {
      bad = args_parse_int(v, 1, MAX_RANKS, &o.tp);
    } else if (!strcmp(a, "--victim")) {
      bad = args_parse_int(v, 0, MAX_RANKS - 1, &o.victim);
    } else if (!strcmp(a, "--only")) {
      snprintf(o.only, sizeof o.only, "%s", v);
    } else if (!strcmp(a, "--timeout-ms")) {
      bad = args_parse_int(v, 100, 600000, &o.timeout_ms);
    } else if (!strcmp(a, "--bootstrap-timeout-ms")) {
      bad = args_parse_int(v, 100, 600000, &o.bs_timeout_ms);
    } else if (!strcmp(a, "--margin-ms")) {
      bad = args_parse_int(v, 0, 600000, &o.margin_ms);
    } else if (!strcmp(a, "--limit-s")) {
      bad = args_parse_int(v, 5, 3600, &o.limit_s);
    } else if (!strcmp(a, "--total-limit-s")) {
      bad = args_parse_int(v, 10, 86400, &o.total_limit_s);
    } else if (!strcmp(a, "--calls")) {
      bad = args_parse_int(v, 1, 100000, &o.calls);
    } else if (!strcmp(a, "--late-ms")) {
      bad = args_parse_int(v, 0, 3600000, &o.late_ms);
    } else if (!strcmp(a, "--dtype")) {
      bad = mixcomm_dtype_from_name(v, &o.dtype) != MIXCOMM_SUCCESS;
    } else {
      bad = 1;
    }
    if (bad) {
      fprintf(stderr, "mixcomm-fault-tests: bad argument %s%s%s\n", a, v ? " " : "", v ? v : "");
      usage();
      return 2;
    }
    i++;
  }
  if (o.only[0] != '\0') {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", o.only);
    for (char* tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
      int found = 0;
      for (int k = 0; k < NUM_SCENARIOS; k++)
        found |= strcmp(tok, k_scenarios[k].name) == 0;
      if (!found) {
        fprintf(stderr, "mixcomm-fault-tests: unknown scenario %s (see --list)\n", tok);
        return 2;
      }
    }
  }
  char tmpdir[] = "/tmp/mixcomm-faults-XXXXXX";
  if (mkdtemp(tmpdir) == NULL) {
    perror("mixcomm-fault-tests: mkdtemp");
    return 2;
  }
  int passed = 0, failed = 0, injected = 0, survived = 0;
  const double t0 = now_ms();
  for (int n = 0; n < o.nranks; n++) {
    topo_info_t ti;
    memset(&ti, 0, sizeof ti);
    ti.world = o.ranks[n];
    ti.tp = o.tp ? o.tp : (ti.world >= 4 && ti.world % 2 == 0 ? 2 : ti.world);
    if (ti.world % ti.tp != 0) {
      fprintf(stderr, "mixcomm-fault-tests: --tp %d does not divide %d ranks\n", ti.tp, ti.world);
      failed++;
      continue;
    }
    ti.victim = o.victim >= 0 ? o.victim : ti.world - 1;
    if (ti.victim >= ti.world) {
      fprintf(stderr, "mixcomm-fault-tests: --victim %d is not a rank of %d\n", ti.victim,
              ti.world);
      failed++;
      continue;
    }
    mixcomm_topology_t in, t;
    memset(&in, 0, sizeof in);
    in.world_size = in.local_size = ti.world;
    in.inter_size = 1;
    in.local_tp_size = ti.tp;
    if (mixcomm_topology_resolve(&in, &t) != MIXCOMM_SUCCESS) {
      fprintf(stderr, "mixcomm-fault-tests: topology: %s\n", mixcomm_last_error());
      failed++;
      continue;
    }
    ti.dp = t.dp_size;
    for (int op = 0; op < MIXCOMM_NUM_OPS; op++)
      if (mixcomm_topology_op_valid(&t, (mixcomm_op_t)op))
        ti.ops[ti.nops++] = (mixcomm_op_t)op;
    ti.twoshot = mixcomm_topology_mode_valid(&t, NULL, MIXCOMM_MODE_FUSED_OPT_BYTES1_UC, NULL);
    printf("== faults: %d ranks, local tp %d x dp %d, %s, culprit rank %d, kernel timeout %d ms, "
           "bootstrap timeout %d ms, margin %d ms\n",
           ti.world, ti.tp, ti.dp, mixcomm_dtype_name(o.dtype), ti.victim, o.timeout_ms,
           o.bs_timeout_ms, o.margin_ms);
    fflush(stdout);
    for (int k = 0; k < NUM_SCENARIOS; k++) {
      const scenario_t* sc = &k_scenarios[k];
      if (!wanted(&o, sc->name))
        continue;
      const char* why = sc->skip(&ti);
      if (why != NULL) {
        printf("fault %s: skipped (%s)\n", sc->name, why);
        continue;
      }
      if (now_ms() - t0 + scenario_limit_s(&o, sc) * 1000.0 > o.total_limit_s * 1000.0) {
        printf("fault %s: FAIL (not run: it could end after the %d s total limit)\n", sc->name,
               o.total_limit_s);
        failed++;
        continue;
      }
      injected++;
      if (run_scenario(&o, &ti, sc, tmpdir)) {
        passed++;
        survived++;
      } else {
        failed++;
      }
    }
  }
  nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  printf("faults injected %d, survived %d\n", injected, survived);
  printf("%d passed, %d failed (%.1f s)\n", passed, failed, (now_ms() - t0) / 1000.0);
  return failed ? 1 : 0;
}
