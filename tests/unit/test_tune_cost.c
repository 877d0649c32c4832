/* SPDX-License-Identifier: Apache-2.0
 * Tests of the cost model that picks a mode without measuring: its default parameters, the
 * documented formulas for one node, valid and growing predictions over many topologies, and
 * the environment overrides (each scenario in its own child, since they are read once). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fixtures.h"
#include "harness/ranks.h"
#include "harness/task.h"
#include "tune/tune.h"

/* ---------------------------------------------------------------------------------------- */
/* Cost model                                                                                */
/* ---------------------------------------------------------------------------------------- */

static mixcomm_caps_t all_caps(void) {
  mixcomm_caps_t c;
  memset(&c, 0, sizeof c);
  c.nccl = 1;
  c.nvshmem = 1;
  c.autotune = 1;
  return c;
}

static int is_mc(mixcomm_mode_t m) {
  return m == MIXCOMM_MODE_FUSED_OPT_WAITS_MC || m == MIXCOMM_MODE_FUSED_OPT_BYTES1_MC ||
         m == MIXCOMM_MODE_FUSED_OPT_BYTES2_MC;
}

TEST_IMPL(tune_cost_model) {
  unsetenv("MIXCOMM_COST_INTRA_LAT_US");
  unsetenv("MIXCOMM_COST_INTRA_GBPS");
  unsetenv("MIXCOMM_COST_INTER_LAT_US");
  unsetenv("MIXCOMM_COST_INTER_GBPS");
  unsetenv("MIXCOMM_COST_NCCL_LAT_US");
  mixcomm__cost_params_t p;
  mixcomm__cost_params_default(&p);
  ASSERT(p.intra_latency_us == 2.0 && p.intra_gbps == 300.0 && p.inter_latency_us == 6.0 &&
         p.inter_gbps == 40.0 && p.nccl_latency_us == 20.0);

  mixcomm_caps_t caps = all_caps();
  mixcomm_topology_t tp8 = resolved_topology(8, 8, 0, 0, 0, 0);

  /* The documented formulas for TP8 all-reduce on one node (us = bytes / (GB/s * 1e3)). */
  double n = 1 << 20;
  double waits = 2.0 + 7 * n / 300e3, bytes1 = 4.0 + 2 * 7.0 / 8 * n / 300e3;
  double nccl = 20.0 + 2 * 7.0 / 8 * n / 300e3;
  ASSERT(fabs(mixcomm__cost_predict_us(&p, &tp8, MIXCOMM_OP_ALLREDUCE,
                                       MIXCOMM_MODE_FUSED_OPT_WAITS_UC, 1 << 20) - waits) < 1e-9);
  ASSERT(fabs(mixcomm__cost_predict_us(&p, &tp8, MIXCOMM_OP_ALLREDUCE,
                                       MIXCOMM_MODE_FUSED_OPT_BYTES1_UC, 1 << 20) - bytes1) <
         1e-9);
  ASSERT(fabs(mixcomm__cost_predict_us(&p, &tp8, MIXCOMM_OP_ALLREDUCE, MIXCOMM_MODE_NCCL_ONE,
                                       1 << 20) - nccl) < 1e-9);
  ASSERT(isinf(mixcomm__cost_predict_us(&p, &tp8, MIXCOMM_OP_ALLREDUCE, MIXCOMM_MODE_AUTOTUNE,
                                        1 << 20)));

  /* Small messages: one-shot; large: two-shot. */
  ASSERT_EQ(mixcomm__cost_model_choice(&tp8, &caps, MIXCOMM_OP_ALLREDUCE, 8192),
            MIXCOMM_MODE_FUSED_OPT_WAITS_UC);
  ASSERT_EQ(mixcomm__cost_model_choice(&tp8, &caps, MIXCOMM_OP_ALLREDUCE, 0),
            MIXCOMM_MODE_FUSED_OPT_WAITS_UC);
  ASSERT_EQ(mixcomm__cost_model_choice(&tp8, &caps, MIXCOMM_OP_ALLREDUCE, 64ull << 20),
            MIXCOMM_MODE_FUSED_OPT_BYTES1_UC);
  ASSERT_EQ(mixcomm__cost_model_choice(&tp8, &caps, MIXCOMM_OP_ALLREDUCE, 1 << 20),
            MIXCOMM_MODE_FUSED_OPT_BYTES1_UC);

  /* Mixed: TP4 x DP2 on one node behaves alike for AR+AG. */
  mixcomm_topology_t tp4dp2 = resolved_topology(8, 8, 4, 2, 0, 0);
  ASSERT_EQ(mixcomm__cost_model_choice(&tp4dp2, &caps, MIXCOMM_OP_ALLREDUCE_ALLGATHER, 8192),
            MIXCOMM_MODE_FUSED_OPT_WAITS_UC);
  ASSERT_EQ(mixcomm__cost_model_choice(&tp4dp2, &caps, MIXCOMM_OP_ALLREDUCE_ALLGATHER,
                                       64ull << 20),
            MIXCOMM_MODE_FUSED_OPT_BYTES1_UC);

  /* Across many topologies, ops and sizes: the choice is a valid, non-MC, non-AUTOTUNE mode,
   * and every valid mode's prediction grows with the message. */
  const int shapes[][6] = {
      {8, 8, 0, 0, 0, 0},  {8, 8, 4, 2, 0, 0},  {8, 8, 1, 8, 0, 0}, {8, 8, 2, 4, 0, 0},
      {4, 4, 0, 0, 0, 0},  {2, 2, 0, 0, 0, 0},  {1, 1, 0, 0, 0, 0}, {16, 8, 0, 0, 0, 0},
      {16, 8, 4, 2, 2, 1}, {16, 8, 8, 1, 1, 2}, {32, 8, 2, 4, 2, 2}, {32, 8, 1, 8, 1, 4},
      {24, 8, 0, 0, 0, 0}, {6, 6, 3, 2, 0, 0},  {64, 32, 0, 0, 0, 0}};
  mixcomm_caps_t variants[3] = {caps, caps, caps};
  variants[1].nccl = 0;
  variants[2].ranks_share_gpu = 1;
  variants[2].nvshmem = 0;
  for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
    const int* sh = shapes[si];
    mixcomm_topology_t t = resolved_topology(sh[0], sh[1], sh[2], sh[3], sh[4], sh[5]);
    for (int vi = 0; vi < 3; vi++) {
      for (int op = 0; op < MIXCOMM_NUM_OPS; op++) {
        for (int k = 0; k <= 16; k++) {
          uint64_t bytes = k == 16 ? 0 : 8192ull << k;
          mixcomm_mode_t m = mixcomm__cost_model_choice(&t, &variants[vi], (mixcomm_op_t)op,
                                                        bytes);
          ASSERT(m >= 0 && m < MIXCOMM_MODE_AUTOTUNE && !is_mc(m));
          if (mixcomm_topology_op_valid(&t, (mixcomm_op_t)op)) {
            int any_valid = 0;
            for (int mm = 0; mm < MIXCOMM_MODE_AUTOTUNE; mm++)
              any_valid |= !is_mc((mixcomm_mode_t)mm) &&
                           mixcomm_topology_mode_valid(&t, &variants[vi], (mixcomm_mode_t)mm,
                                                       NULL);
            if (any_valid && !mixcomm_topology_mode_valid(&t, &variants[vi], m, NULL))
              FAIL("shape %zu caps %d op %d bytes %llu: chose invalid %s", si, vi, op,
                   (unsigned long long)bytes, mixcomm_mode_name(m));
          }
        }
        for (int mm = 0; mm < MIXCOMM_MODE_AUTOTUNE; mm++) {
          if (!mixcomm_topology_mode_valid(&t, &caps, (mixcomm_mode_t)mm, NULL) ||
              !mixcomm_topology_op_valid(&t, (mixcomm_op_t)op))
            continue;
          double prev = -1;
          for (int k = 0; k < 16; k++) {
            double us = mixcomm__cost_predict_us(&p, &t, (mixcomm_op_t)op, (mixcomm_mode_t)mm,
                                                 8192ull << k);
            ASSERT(isfinite(us) && us > 0);
            if (t.world_size > 1 && !(us > prev))
              FAIL("shape %zu op %d mode %s: %g us at %llu bytes, not above %g", si, op,
                   mixcomm_mode_name((mixcomm_mode_t)mm), us, 8192ull << k, prev);
            prev = us;
          }
        }
      }
    }
  }

  /* An op the topology cannot run: WAITS_UC if that mode is valid, else NCCL_ONE. */
  mixcomm_topology_t dp8 = resolved_topology(8, 8, 1, 8, 0, 0);
  ASSERT_EQ(mixcomm__cost_model_choice(&dp8, &caps, MIXCOMM_OP_ALLREDUCE, 8192),
            MIXCOMM_MODE_FUSED_OPT_WAITS_UC);
  mixcomm_topology_t big = resolved_topology(32, 32, 1, 32, 0, 0); /* > MIXCOMM_MAX_LOCAL_SIZE */
  ASSERT_EQ(mixcomm__cost_model_choice(&big, &caps, MIXCOMM_OP_ALLREDUCE, 8192),
            MIXCOMM_MODE_NCCL_ONE);
  /* Only NCCL can run the big node. */
  ASSERT_EQ(mixcomm__cost_model_choice(&big, &caps, MIXCOMM_OP_ALLGATHER, 8192),
            MIXCOMM_MODE_NCCL_ONE);
  return 0;
}

/* Environment overrides are read once per process: each scenario runs in its own child. */
typedef struct env_case {
  const char* vars[5][2];
  mixcomm_op_t op;
  uint64_t bytes;
  mixcomm_mode_t expect;
  mixcomm__cost_params_t expect_params;
} env_case_t;

static int env_child(int rank, int n, void* arg) {
  (void)rank;
  (void)n;
  const env_case_t* c = arg;
  for (int i = 0; i < 5 && c->vars[i][0] != NULL; i++)
    setenv(c->vars[i][0], c->vars[i][1], 1);
  mixcomm__cost_params_t p;
  mixcomm__cost_params_default(&p);
  if (p.intra_latency_us != c->expect_params.intra_latency_us ||
      p.intra_gbps != c->expect_params.intra_gbps ||
      p.inter_latency_us != c->expect_params.inter_latency_us ||
      p.inter_gbps != c->expect_params.inter_gbps ||
      p.nccl_latency_us != c->expect_params.nccl_latency_us ||
      p.kernel_launch_us != c->expect_params.kernel_launch_us)
    FAIL("params %g %g %g %g %g %g", p.intra_latency_us, p.intra_gbps, p.inter_latency_us,
         p.inter_gbps, p.nccl_latency_us, p.kernel_launch_us);
  mixcomm_caps_t caps = all_caps();
  mixcomm_topology_t tp8 = resolved_topology(8, 8, 0, 0, 0, 0);
  mixcomm_mode_t m = mixcomm__cost_model_choice(&tp8, &caps, c->op, c->bytes);
  if (m != c->expect)
    FAIL("chose %s, expected %s", mixcomm_mode_name(m), mixcomm_mode_name(c->expect));
  return 0;
}

TEST_IMPL(tune_cost_model_env) {
  const mixcomm__cost_params_t d = {2.0, 300.0, 6.0, 40.0, 20.0, 3.0};
  env_case_t cases[] = {
      /* Defaults: one-shot at 8 KiB, two-shot at 1 MiB. */
      {{{NULL, NULL}}, MIXCOMM_OP_ALLREDUCE, 8192, MIXCOMM_MODE_FUSED_OPT_WAITS_UC, d},
      {{{NULL, NULL}}, MIXCOMM_OP_ALLREDUCE, 1 << 20, MIXCOMM_MODE_FUSED_OPT_BYTES1_UC, d},
      /* No round latency: two-shot's smaller volume wins even at 8 KiB. */
      {{{"MIXCOMM_COST_INTRA_LAT_US", "0"}},
       MIXCOMM_OP_ALLREDUCE, 8192, MIXCOMM_MODE_FUSED_OPT_BYTES1_UC,
       {0.0, 300.0, 6.0, 40.0, 20.0, 3.0}},
      /* ... and at 0 bytes everything fused costs 0: the tie goes to the lower enum. */
      {{{"MIXCOMM_COST_INTRA_LAT_US", "0"}},
       MIXCOMM_OP_ALLREDUCE, 0, MIXCOMM_MODE_FUSED_OPT_WAITS_UC, {0.0, 300.0, 6.0, 40.0, 20.0, 3.0}},
      /* Huge round latency: one-shot even at 1 MiB... */
      {{{"MIXCOMM_COST_INTRA_LAT_US", "1e4"}, {"MIXCOMM_COST_NCCL_LAT_US", "1e6"}},
       MIXCOMM_OP_ALLREDUCE, 1 << 20, MIXCOMM_MODE_FUSED_OPT_WAITS_UC,
       {1e4, 300.0, 6.0, 40.0, 1e6, 3.0}},
      /* ... or free NCCL: NCCL_ONE. */
      {{{"MIXCOMM_COST_NCCL_LAT_US", "0"}},
       MIXCOMM_OP_ALLREDUCE, 1 << 20, MIXCOMM_MODE_NCCL_ONE, {2.0, 300.0, 6.0, 40.0, 0.0, 3.0}},
      /* Slow NVLink: the one-shot region grows (30 GB/s moves the crossover to ~11 KiB). */
      {{{"MIXCOMM_COST_INTRA_GBPS", "30"}, {"MIXCOMM_COST_INTER_GBPS", "12.5"},
        {"MIXCOMM_COST_INTER_LAT_US", "3"}},
       MIXCOMM_OP_ALLREDUCE, 8192, MIXCOMM_MODE_FUSED_OPT_WAITS_UC,
       {2.0, 30.0, 3.0, 12.5, 20.0, 3.0}},
      /* Invalid values are ignored (defaults kept, same choice as with no variables). */
      {{{"MIXCOMM_COST_INTRA_LAT_US", "abc"}, {"MIXCOMM_COST_INTRA_GBPS", "0"},
        {"MIXCOMM_COST_INTER_LAT_US", "-1"}, {"MIXCOMM_COST_INTER_GBPS", "inf"},
        {"MIXCOMM_COST_NCCL_LAT_US", "5x"}},
       MIXCOMM_OP_ALLREDUCE, 8192, MIXCOMM_MODE_FUSED_OPT_WAITS_UC, d},
      {{{"MIXCOMM_COST_INTRA_LAT_US", "nan"}, {"MIXCOMM_COST_INTRA_GBPS", "-300"},
        {"MIXCOMM_COST_INTER_LAT_US", ""}, {"MIXCOMM_COST_INTER_GBPS", "1e999"},
        {"MIXCOMM_COST_NCCL_LAT_US", " "}},
       MIXCOMM_OP_ALLREDUCE, 1 << 20, MIXCOMM_MODE_FUSED_OPT_BYTES1_UC, d},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int st = 0;
    if (run_ranks(1, env_child, &cases[i], 10000, &st) != 0)
      FAIL("environment case %zu failed (exit %d)", i, st);
  }
  return 0;
}
