/* SPDX-License-Identifier: Apache-2.0
 * Shared declarations of the soak test (mixcomm-soak; main.c describes the program): the
 * options, each rank's counts in memory shared with the parent, the plan of calls every rank
 * draws alike (plan.c), one rank's run (rank.c) and the dry run on the host (dry_run.c). */
#ifndef MIXCOMM_TESTS_GPU_SOAK_H_
#define MIXCOMM_TESTS_GPU_SOAK_H_

#include <stddef.h>
#include <stdint.h>

#include "common/spawn.h"
#include "gpu/harness.h"
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

/* The next batch: units for at most opt->batch of the `left` calls still to make, whose
 * buffers fit `cap` bytes. A unit that does not fit waits in `pending` for the next batch. */
typedef struct batch {
  unit_t* units; /* opt->batch entries */
  int nunits, ncalls;
  size_t in_used, out_used;
  unit_t pending;
  int have_pending;
} batch_t;
/* Largest in/out bytes of one call, and largest element count of one output, for any dtype. */
size_t max_call_bytes(const options_t* o, int dp);
/* The ops and modes this dtype's calls draw from (h NULL: from the topology alone, for the dry
 * run); -1 if no op is valid. */
int plan_init(plan_ctx_t* p, const options_t* o, mixcomm_dtype_t dtype,
              const mixcomm_topology_t* t, const mixcomm_handler_t* h, int dtype_index);
/* Fill b with the next batch; -1 if one unit alone does not fit an empty batch. */
int plan_batch(plan_ctx_t* p, batch_t* b, long long left, size_t cap);

typedef struct job {
  const options_t* opt;
  shared_t* sh;
  int dp;
} job_t;

/* One rank of the soak (spawn_ranks' function; arg: a job_t). */
int soak_rank_main(const spawn_rank_t* r, void* arg);
/* The plan and the references of rank 0 on the host, no GPU; the exit status. */
int dry_run(const options_t* o, const mixcomm_topology_t* t);
/* "<label> ops <op> N ...; modes <mode> N ..." of the calls counted in k. */
void print_mix(const char* label, const counts_t* k);

#endif
