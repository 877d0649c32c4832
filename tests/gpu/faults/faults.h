/* SPDX-License-Identifier: Apache-2.0
 * Shared declarations of the fault-injection tests (mixcomm-fault-tests; main.c describes the
 * program): the options, what each rank reports to the parent in shared memory, one rank's
 * context, the scenario table's entries, and the pieces the scenario files share. */
#ifndef MIXCOMM_TESTS_GPU_FAULTS_H_
#define MIXCOMM_TESTS_GPU_FAULTS_H_

#include <ftw.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <cuda_runtime_api.h>

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
  int list;               /* --list: print the scenarios and exit */
} options_t;

/* ---- what ranks report to the parent (shared memory) --------------------------------------- */

enum role { ROLE_SURVIVOR = 0, ROLE_VICTIM, ROLE_SLEEPER, ROLE_DIVERGER };

enum state { ST_NONE = 0, ST_STARTED, ST_READY, ST_REPORTED, ST_FINISHED };
enum where { AT_NONE = 0, AT_SETUP, AT_CREATE, AT_RUN, AT_SYNC };

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

#define BIT(s) (1u << (s))
/* The arguments of every scenario's judge. */
#define FAULT_JUDGE_ARGS                                                                    \
  const options_t *o, const topo_info_t *ti, const shared_t *sh, const int *exits, judge_t *j

/* ---- names and the clock (common.c) ------------------------------------------------------- */

const char* role_name(int r);
const char* where_name(int w);
double now_ms(void);
void sleep_ms(double ms);
const char* short_status(int st);
void copy_msg(char* dst, size_t size, const char* src);

/* ---- the rank side every scenario shares (rank.c) ---------------------------------------- */

void notef(rank_ctx_t* c, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
/* Record the first error this rank observed. */
void record_error(rank_ctx_t* c, int status, int peer, int where, double t0, const char* msg);
int rank_setup(rank_ctx_t* c);
void rank_teardown(rank_ctx_t* c);
mixcomm_status_t create_handler(rank_ctx_t* c, int timeout_ms, int autotune, double* ms);
/* create_handler without autotune; notes "create failed: <error>" when it fails. */
mixcomm_status_t create_or_note(rank_ctx_t* c, int timeout_ms);
/* Shut the handler down, timing it. */
void shutdown_handler(rank_ctx_t* c);
/* Wait (bounded) until every rank except the victim has reported. */
void wait_reported(rank_ctx_t* c, double max_ms);
/* Report, wait (at most max_ms) for the others to report, then shut the handler down. */
void report_and_shutdown(rank_ctx_t* c, double max_ms);
mixcomm_status_t observe_async(rank_ctx_t* c, double t0, int where);
int64_t rows_in_for(const rank_ctx_t* c, mixcomm_op_t op, int64_t rows_unit);
int checked_call(rank_ctx_t* c, mixcomm_op_t op, mixcomm_mode_t mode, int64_t rows_unit,
                 int64_t elems, uint64_t seed);
int unchecked_call(rank_ctx_t* c, mixcomm_op_t op, mixcomm_mode_t mode, int64_t rows_in,
                   int64_t elems);
/* `calls` one-shot checked calls of the first op (8 rows of 512, seeds first_seed...), stopping
 * at the first that fails (noted). */
void warm_up(rank_ctx_t* c, int calls, uint64_t first_seed);
void* killer_thread(void* arg);
void die_now(rank_ctx_t* c, const char* when);
int calibrate(rank_ctx_t* c);
int my_role(const rank_ctx_t* c);

/* ---- the expectations judges share (judge.c) --------------------------------------------- */

void jfail(judge_t* j, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
int names_rank(const char* msg, int k);
int exited_ok(int st);
int was_killed(int st);
void describe_exit(char* buf, size_t size, int st);
void judge_exits(const topo_info_t* ti, const shared_t* sh, const int* exits, judge_t* j);
void judge_shutdown(const options_t* o, const topo_info_t* ti, const shared_t* sh, judge_t* j,
                    int must_succeed);
void judge_named(const topo_info_t* ti, const shared_t* sh, judge_t* j, int culprit, int strict,
                 unsigned allowed, double bound_ms);

/* ---- the scenarios: rank sides and judges, one file per group ------------------------------ */

/* creation.c */
void rank_kill_before_create(rank_ctx_t* c);
void rank_kill_in_create(rank_ctx_t* c);
void rank_kill_in_autotune(rank_ctx_t* c);
void rank_map_fails(rank_ctx_t* c);
int judge_kill_before_create(FAULT_JUDGE_ARGS);
int judge_kill_in_create(FAULT_JUDGE_ARGS);
int judge_kill_in_autotune(FAULT_JUDGE_ARGS);
int judge_map_fails(FAULT_JUDGE_ARGS);
/* dead_peer.c */
void rank_kill_mid_stream(rank_ctx_t* c);
void rank_kill_detected(rank_ctx_t* c);
void rank_late_peer(rank_ctx_t* c);
int judge_kill_mid_stream(FAULT_JUDGE_ARGS);
int judge_kill_detected(FAULT_JUDGE_ARGS);
int judge_late_peer(FAULT_JUDGE_ARGS);
/* stuck_peer.c */
void rank_diverge_op(rank_ctx_t* c);
void rank_diverge_rows(rank_ctx_t* c);
void rank_diverge_mode(rank_ctx_t* c);
void rank_never_calls_1shot(rank_ctx_t* c);
void rank_never_calls_2shot(rank_ctx_t* c);
void rank_abort(rank_ctx_t* c);
int judge_diverge_strict(FAULT_JUDGE_ARGS);
int judge_diverge_lenient(FAULT_JUDGE_ARGS);
int judge_never_calls_strict(FAULT_JUDGE_ARGS);
int judge_never_calls_lenient(FAULT_JUDGE_ARGS);
int judge_abort(FAULT_JUDGE_ARGS);
/* misuse.c */
void rank_two_streams(rank_ctx_t* c);
void rank_after_shutdown(rank_ctx_t* c);
void rank_checkpointed(rank_ctx_t* c);
int judge_two_streams(FAULT_JUDGE_ARGS);
int judge_misuse(FAULT_JUDGE_ARGS);

/* ---- the table and the parent ------------------------------------------------------------ */

/* scenarios.c */
extern const scenario_t k_scenarios[];
extern const int k_num_scenarios;
#define NUM_SCENARIOS k_num_scenarios

/* driver.c */
int remove_entry(const char* path, const struct stat* st, int flag, struct FTW* ftw);
/* The hard limit of one scenario: late-peer waits --late-ms on top. */
int scenario_limit_s(const options_t* o, const scenario_t* sc);
/* Fork the scenario's ranks, watch, judge, print its line; 1 if it passed. */
int run_scenario(const options_t* o, const topo_info_t* ti, const scenario_t* sc,
                 const char* tmpdir);

#endif
