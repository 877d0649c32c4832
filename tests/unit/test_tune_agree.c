/* SPDX-License-Identifier: Apache-2.0
 * Tests of the cross-rank agreement on measured timings (mixcomm__tune_measure_and_agree): 2, 3
 * and 4 forked ranks over the TCP bootstrap with fake timers choose the mode with the best
 * worst-rank time, every rank names the rank whose timer failed, and bad arguments are refused
 * before anything is measured. Expected tables are computed here as max over ranks of the
 * fake timers' times. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "harness/ranks.h"
#include "harness/task.h"
#include "tune/tune.h"

/* Poison for tables that must stay untouched. */
#define SENTINEL_BYTE 0x5a

/* ---------------------------------------------------------------------------------------- */
/* Agreement across ranks                                                                    */
/* ---------------------------------------------------------------------------------------- */

#define AG_MAX_OPS 5
#define AG_MAX_MODES 8

typedef struct agree_setup {
  int port;
  int nops, nmodes, nb;
  mixcomm_op_t ops[AG_MAX_OPS];
  mixcomm_mode_t modes[AG_MAX_MODES];
  /* failures: rank fail_rank fails at (ops[fail_op], bucket fail_bucket, modes[fail_mode]) */
  int fail_rank, fail_op, fail_bucket, fail_mode;
  int fail_kind;         /* 0 status, 1 NaN, 2 negative, 3 +inf */
  mixcomm_status_t fail_status;
  int timeout_rank;      /* another rank that reports a timeout at the same point (-1: none) */
  int reverse_modes_rank; /* a rank passing its mode list in another order (-1: none) */
  int expect_rank;       /* the rank the error must name */
  mixcomm_status_t expect_status;
} agree_setup_t;

typedef struct fake_timer {
  const agree_setup_t* s;
  int rank;
  int calls;
  int order_ok;
  int after_failure; /* calls made after this rank's timer failed (must stay 0 for that op) */
  int failed_op;     /* index of the op that failed on this rank (-1) */
} fake_timer_t;

static uint32_t mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}

/* Time of rank r for (op, bucket, mode index m). Rank r makes mode index r % nmodes the
 * fastest locally; bucket 0 ties every mode (the earlier mode must win); bucket 1 ties all but
 * the first mode. */
static double fake_us(const agree_setup_t* s, int r, int op, int b, int m) {
  if (b == 0)
    return 7.0;
  if (b == 1)
    return m == 0 ? 9.0 : 8.0;
  if (m == r % s->nmodes)
    return 1.0 + 0.25 * b;
  return 10.0 + (double)(mix32((uint32_t)(r * 7919 + op * 131 + b * 17 + m)) % 1000) / 10.0;
}

static mixcomm_status_t fake_timer_fn(void* ctx, mixcomm_op_t op, mixcomm_mode_t mode,
                                      int bucket, double* us) {
  fake_timer_t* f = ctx;
  const agree_setup_t* s = f->s;
  /* Expected call: ops x buckets x modes, in that order (after a failure the next op). */
  int per_op = s->nb * s->nmodes;
  int call = f->calls++;
  int oi = call / per_op, b = (call % per_op) / s->nmodes, mi = call % s->nmodes;
  if (f->failed_op >= 0) {
    f->after_failure++;
    return MIXCOMM_ERR_INTERNAL;
  }
  const mixcomm_mode_t* modes = s->modes;
  mixcomm_mode_t reversed[AG_MAX_MODES];
  if (f->rank == s->reverse_modes_rank) {
    for (int i = 0; i < s->nmodes; i++)
      reversed[i] = s->modes[s->nmodes - 1 - i];
    modes = reversed;
  }
  if (oi >= s->nops || op != s->ops[oi] || bucket != b || mode != modes[mi])
    f->order_ok = 0;
  if (oi == s->fail_op && b == s->fail_bucket && mi == s->fail_mode &&
      (f->rank == s->fail_rank || f->rank == s->timeout_rank)) {
    f->failed_op = oi;
    if (f->rank == s->timeout_rank)
      return mixcomm__error(MIXCOMM_ERR_TIMEOUT, "fake timeout waiting for a peer");
    switch (s->fail_kind) {
      case 1: *us = NAN; return MIXCOMM_SUCCESS;
      case 2: *us = -3.0; return MIXCOMM_SUCCESS;
      case 3: *us = INFINITY; return MIXCOMM_SUCCESS;
      default: return mixcomm__error(s->fail_status, "fake GPU failure on this rank");
    }
  }
  *us = fake_us(s, f->rank, op, bucket, mi);
  return MIXCOMM_SUCCESS;
}

static mixcomm_status_t make_bootstrap(int port, int rank, int n, mixcomm_bootstrap_t** bs) {
  mixcomm_tcp_options_t o;
  memset(&o, 0, sizeof o);
  snprintf(o.addr, sizeof o.addr, "127.0.0.1");
  o.port = port;
  snprintf(o.token, sizeof o.token, "tune-test");
  o.timeout_ms = 15000;
  return mixcomm_bootstrap_tcp_create(&o, rank, n, bs);
}

static int agree_rank(int rank, int n, void* arg) {
  const agree_setup_t* s = arg;
  mixcomm_bootstrap_t* bs = NULL;
  ASSERT_OK(make_bootstrap(s->port, rank, n, &bs));
  fake_timer_t f = {s, rank, 0, 1, 0, -1};
  mixcomm__tune_table_t table, before;
  memset(table, SENTINEL_BYTE, sizeof table);
  memcpy(before, table, sizeof before);
  mixcomm_mode_t modes[AG_MAX_MODES];
  for (int i = 0; i < s->nmodes; i++)
    modes[i] = rank == s->reverse_modes_rank ? s->modes[s->nmodes - 1 - i] : s->modes[i];
  mixcomm_status_t st = mixcomm__tune_measure_and_agree(bs, s->ops, s->nops, modes, s->nmodes,
                                                        s->nb, fake_timer_fn, &f, table);
  if (s->expect_status != MIXCOMM_SUCCESS) {
    if (st != s->expect_status)
      FAIL("rank %d: status %s, expected %s (%s)", rank, mixcomm_status_name(st),
           mixcomm_status_name(s->expect_status), mixcomm_last_error());
    char name[64];
    if (s->expect_rank >= 0) {
      snprintf(name, sizeof name, "rank %d", s->expect_rank);
      ASSERT_CONTAINS(mixcomm_last_error(), name);
    }
    if (rank == s->expect_rank && s->fail_kind == 0 && s->timeout_rank < 0)
      ASSERT_CONTAINS(mixcomm_last_error(), "fake GPU failure");
    if (rank == s->expect_rank)
      ASSERT_CONTAINS(mixcomm_last_error(), "this rank");
    if (memcmp(table, before, sizeof table) != 0)
      FAIL("rank %d: the table changed although autotune failed", rank);
    if (f.after_failure != 0)
      FAIL("rank %d: the timer was called %d times after it failed", rank, f.after_failure);
    ASSERT(f.order_ok);
    mixcomm_bootstrap_destroy(bs);
    return 0;
  }
  if (st != MIXCOMM_SUCCESS)
    FAIL("rank %d: %s: %s", rank, mixcomm_status_name(st), mixcomm_last_error());
  ASSERT(f.order_ok);
  ASSERT_EQ(f.calls, s->nops * s->nb * s->nmodes);

  /* Expected table: per entry max over ranks, argmin over modes, ties to the earlier mode. */
  int local_differs = 0;
  for (int oi = 0; oi < s->nops; oi++) {
    for (int b = 0; b < s->nb; b++) {
      int best = -1;
      double best_us = 0;
      for (int m = 0; m < s->nmodes; m++) {
        double worst = -1;
        for (int r = 0; r < n; r++)
          worst = fmax(worst, fake_us(s, r, s->ops[oi], b, m));
        if (best < 0 || worst < best_us) {
          best = m;
          best_us = worst;
        }
      }
      mixcomm_mode_t want = s->modes[best];
      if (table[s->ops[oi]][b] != want)
        FAIL("rank %d: %s bucket %d chose %s, expected %s", rank,
             mixcomm_op_name(s->ops[oi]), b, mixcomm_mode_name(table[s->ops[oi]][b]),
             mixcomm_mode_name(want));
      if (b >= 2 && s->modes[rank % s->nmodes] != want)
        local_differs++;
    }
  }
  /* Bucket 0 (all tied) and 1 (all but the first tied) test the tie rule. */
  ASSERT_EQ(table[s->ops[0]][0], s->modes[0]);
  ASSERT_EQ(table[s->ops[0]][1], s->modes[1]);
  /* The decision is not this rank's local one somewhere (so the max over ranks matters). */
  ASSERT(local_differs > 0);
  /* Ops not listed are untouched. */
  for (int op = 0; op < MIXCOMM_NUM_OPS; op++) {
    int listed = 0;
    for (int oi = 0; oi < s->nops; oi++)
      listed |= (int)s->ops[oi] == op;
    if (!listed)
      ASSERT(memcmp(table[op], before[op], sizeof table[op]) == 0);
  }
  mixcomm_bootstrap_destroy(bs);
  return 0;
}

static void agree_default_setup(agree_setup_t* s, int n) {
  memset(s, 0, sizeof *s);
  s->port = free_tcp_port();
  ASSERT(s->port > 0);
  s->nops = 2;
  s->ops[0] = MIXCOMM_OP_REDUCESCATTER_ALLREDUCE;
  s->ops[1] = MIXCOMM_OP_ALLREDUCE_ALLGATHER;
  s->nmodes = n >= 4 ? 4 : 3;
  /* Not in enum order, so "earlier" means earlier in the list. */
  const mixcomm_mode_t m[] = {MIXCOMM_MODE_NCCL_TP_DP, MIXCOMM_MODE_FUSED_OPT_BYTES1_UC,
                              MIXCOMM_MODE_FUSED_OPT_WAITS_UC, MIXCOMM_MODE_NCCL_ONE};
  memcpy(s->modes, m, sizeof m);
  s->nb = mixcomm__tune_num_buckets(2);
  s->fail_rank = -1;
  s->fail_op = -1;
  s->timeout_rank = -1;
  s->reverse_modes_rank = -1;
  s->expect_rank = -1;
  s->expect_status = MIXCOMM_SUCCESS;
}

static int run_agree(agree_setup_t* s, int n) {
  int statuses[8];
  int failed = run_ranks(n, agree_rank, s, 30000, statuses);
  for (int r = 0; r < n; r++)
    if (statuses[r] != 0)
      fprintf(stderr, "  rank %d exited with %d\n", r, statuses[r]);
  return failed;
}

TEST_IMPL(tune_agree_2_ranks) {
  agree_setup_t s;
  agree_default_setup(&s, 2);
  ASSERT_EQ(run_agree(&s, 2), 0);
  return 0;
}

TEST_IMPL(tune_agree_3_ranks) {
  agree_setup_t s;
  agree_default_setup(&s, 3);
  s.nops = 3;
  s.ops[2] = MIXCOMM_OP_ALLREDUCE;
  s.nb = mixcomm__tune_num_buckets(1);
  ASSERT_EQ(run_agree(&s, 3), 0);
  return 0;
}

TEST_IMPL(tune_agree_4_ranks) {
  agree_setup_t s;
  agree_default_setup(&s, 4);
  s.nb = mixcomm__tune_num_buckets(4);
  ASSERT_EQ(run_agree(&s, 4), 0);
  return 0;
}

/* One rank's timer fails at one point of the measurement (another may only time out as a
 * consequence); every rank must fail with the status expected and name the failing rank. */
typedef struct failure_case {
  int ranks;
  int fail_rank, timeout_rank; /* timeout_rank -1: none */
  int fail_op, fail_bucket, fail_mode;
  int fail_kind; /* as agree_setup_t's */
  mixcomm_status_t fail_status, expect_status;
} failure_case_t;

static int run_failure(const failure_case_t* c) {
  agree_setup_t s;
  agree_default_setup(&s, c->ranks);
  s.fail_rank = c->fail_rank;
  s.timeout_rank = c->timeout_rank;
  s.fail_op = c->fail_op;
  s.fail_bucket = c->fail_bucket;
  s.fail_mode = c->fail_mode;
  s.fail_kind = c->fail_kind;
  s.fail_status = c->fail_status;
  s.expect_rank = c->fail_rank;
  s.expect_status = c->expect_status;
  return run_agree(&s, c->ranks);
}

TEST_IMPL(tune_agree_timer_failure) {
  static const failure_case_t cases[] = {
      /* rank 1's timer fails in the second op: every rank names it, nobody hangs, and the
       * first op's result is not kept either. */
      {3, 1, -1, 1, 4, 1, 0, MIXCOMM_ERR_CUDA, MIXCOMM_ERR_CUDA},
      /* Failure on the first op, first measurement, of the last rank of 4. */
      {4, 3, -1, 0, 0, 0, 0, MIXCOMM_ERR_OUT_OF_MEMORY, MIXCOMM_ERR_OUT_OF_MEMORY},
      /* A rank that only timed out (as a consequence) is not blamed: rank 2 times out, rank 1
       * has the real failure; all name rank 1. */
      {3, 1, 2, 0, 3, 2, 0, MIXCOMM_ERR_CUDA, MIXCOMM_ERR_CUDA},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    if (run_failure(&cases[i]) != 0)
      FAIL("timer failure case %zu not handled", i);
  return 0;
}

TEST_IMPL(tune_agree_bad_times) {
  /* NaN, negative and infinite times are failures of the rank that measured them. */
  for (int kind = 1; kind <= 3; kind++) {
    const failure_case_t c = {3, kind - 1, -1, 1, 2, 2, kind, MIXCOMM_SUCCESS,
                              MIXCOMM_ERR_INTERNAL};
    if (run_failure(&c) != 0)
      FAIL("bad time kind %d not handled", kind);
  }
  return 0;
}

TEST_IMPL(tune_agree_mode_list_mismatch) {
  agree_setup_t s;
  agree_default_setup(&s, 2);
  s.reverse_modes_rank = 1;
  s.expect_status = MIXCOMM_ERR_MISMATCH;
  s.expect_rank = -1;
  ASSERT_EQ(run_agree(&s, 2), 0);
  return 0;
}

/* A world of one rank through callbacks: allgather is a copy; counts the calls. */
typedef struct one_bs {
  int allgathers;
  size_t bytes;
} one_bs_t;

static int one_allgather(void* ctx, const void* send, void* recv, size_t bytes) {
  one_bs_t* b = ctx;
  b->allgathers++;
  b->bytes = bytes;
  memcpy(recv, send, bytes);
  return 0;
}

TEST_IMPL(tune_agree_one_rank_and_arguments) {
  one_bs_t ctx = {0, 0};
  mixcomm_bootstrap_t bs = {&ctx, one_allgather, NULL, NULL, 0, 1};
  agree_setup_t s;
  agree_default_setup(&s, 2);
  s.nops = 5;
  for (int i = 0; i < 5; i++)
    s.ops[i] = (mixcomm_op_t)i;
  fake_timer_t f = {&s, 0, 0, 1, 0, -1};
  mixcomm__tune_table_t t;
  memset(t, SENTINEL_BYTE, sizeof t);
  ASSERT_OK(mixcomm__tune_measure_and_agree(&bs, s.ops, s.nops, s.modes, s.nmodes, s.nb,
                                            fake_timer_fn, &f, t));
  ASSERT_EQ(ctx.allgathers, 5); /* one per op */
  ASSERT(ctx.bytes >= sizeof(double) * (size_t)(s.nb * s.nmodes));
  ASSERT(f.order_ok);
  for (int op = 0; op < 5; op++)
    for (int b = 2; b < s.nb; b++)
      ASSERT_EQ(t[op][b], s.modes[0]); /* rank 0's locally fastest */

  /* Bad arguments are refused before anything is measured or exchanged. */
  ctx.allgathers = 0;
  mixcomm_mode_t with_autotune[] = {MIXCOMM_MODE_NCCL_ONE, MIXCOMM_MODE_AUTOTUNE};
  mixcomm_mode_t twice[] = {MIXCOMM_MODE_NCCL_ONE, MIXCOMM_MODE_NCCL_ONE};
  mixcomm_op_t bad_op[] = {(mixcomm_op_t)7};
  ASSERT_ERR(mixcomm__tune_measure_and_agree(&bs, s.ops, 1, with_autotune, 2, 3, fake_timer_fn,
                                             &f, t),
             MIXCOMM_ERR_INVALID_ARGUMENT, "mode");
  ASSERT_ERR(mixcomm__tune_measure_and_agree(&bs, s.ops, 1, twice, 2, 3, fake_timer_fn, &f, t),
             MIXCOMM_ERR_INVALID_ARGUMENT, "twice");
  ASSERT_ERR(mixcomm__tune_measure_and_agree(&bs, bad_op, 1, s.modes, 2, 3, fake_timer_fn, &f,
                                             t),
             MIXCOMM_ERR_INVALID_ARGUMENT, "op");
  ASSERT_ERR(mixcomm__tune_measure_and_agree(&bs, s.ops, 1, s.modes, 2, 16, fake_timer_fn, &f,
                                             t),
             MIXCOMM_ERR_INVALID_ARGUMENT, "buckets");
  ASSERT_ERR(mixcomm__tune_measure_and_agree(&bs, s.ops, 1, s.modes, 0, 3, fake_timer_fn, &f,
                                             t),
             MIXCOMM_ERR_INVALID_ARGUMENT, "mode");
  ASSERT_ERR(mixcomm__tune_measure_and_agree(NULL, s.ops, 1, s.modes, 2, 3, fake_timer_fn, &f,
                                             t),
             MIXCOMM_ERR_INVALID_ARGUMENT, "bootstrap");
  ASSERT_ERR(mixcomm__tune_measure_and_agree(&bs, s.ops, 1, s.modes, 2, 3, NULL, &f, t),
             MIXCOMM_ERR_INVALID_ARGUMENT, "timer");
  ASSERT_EQ(ctx.allgathers, 0);
  return 0;
}
