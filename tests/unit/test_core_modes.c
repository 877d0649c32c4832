/* SPDX-License-Identifier: Apache-2.0
 * Tests of what a topology can run: the ops valid for each topology, the default capabilities,
 * and the modes valid for each (topology, capabilities) pair with the reason a mode is left
 * out.
 *
 * Expected values come from the rules written out here (the op table, mode_rules_broken),
 * never from the code under test. */
#include <string.h>

#include "core/build_config.h"
#include "fixtures.h"
#include "harness/task.h"

/* ---------------------------------------------------------------------------------------- */
/* Valid ops                                                                                  */
/* ---------------------------------------------------------------------------------------- */

static void check_ops(const mixcomm_topology_t* t, const int expected[MIXCOMM_NUM_OPS],
                      const char* what) {
  for (int op = 0; op < MIXCOMM_NUM_OPS; op++) {
    int got = mixcomm_topology_op_valid(t, (mixcomm_op_t)op);
    if (!got != !expected[op])
      FAIL("%s (tp %d, dp %d): op %d valid = %d, expected %d", what, t->tp_size, t->dp_size,
           op, got, expected[op]);
  }
}

/* Order: AR, AG, RS, AR+AG, RS+AR. */
static const int kPureTp[] = {1, 0, 0, 0, 0};
static const int kPureDp[] = {0, 1, 1, 0, 0};
static const int kMixed[] = {0, 0, 0, 1, 1};
static const int kWorld1[] = {1, 1, 1, 0, 0};

static const struct {
  int W, L, ltp, ldp, itp, idp;
  const int* ops;
  const char* what;
} kOpCases[] = {
    {8, 8, 0, 0, 0, 0, kPureTp, "8 ranks, tp 8"},
    {16, 8, 0, 0, 0, 0, kPureTp, "2 nodes of 8, tp 16"},
    {8, 8, 1, 0, 0, 0, kPureDp, "8 ranks, dp 8"},
    {8, 4, 0, 4, 0, 2, kPureDp, "2 nodes of 4, dp 8"},
    {8, 8, 4, 0, 0, 0, kMixed, "tp 4 x dp 2 in a node"},
    {8, 2, 2, 0, 0, 4, kMixed, "tp 2 in a node, dp 4 across nodes"},
    {8, 4, 1, 4, 2, 0, kMixed, "dp 4 in a node, tp 2 across nodes"},
    {1, 1, 0, 0, 0, 0, kWorld1, "world 1"},
};

/* Rank 0's view of one description against the op table. */
static void check_ops_of_form(int W, int L, const level_form_t* lf, int a,
                              const level_form_t* inf, int b, void* arg) {
  mixcomm_topology_t in = topology_input(W, L, 0, lf, inf), t;
  ASSERT_OK(mixcomm_topology_resolve(&in, &t));
  const int tp = lf->tp * inf->tp, dp = lf->dp * inf->dp;
  const int exp[] = {dp == 1, tp == 1, tp == 1, tp > 1 && dp > 1, tp > 1 && dp > 1};
  check_ops(&t, exp, "sweep");
}

TEST_IMPL(core_ops_valid) {
  for (size_t i = 0; i < sizeof kOpCases / sizeof kOpCases[0]; i++) {
    const mixcomm_topology_t t = resolved_topology(kOpCases[i].W, kOpCases[i].L,
                                                   kOpCases[i].ltp, kOpCases[i].ldp,
                                                   kOpCases[i].itp, kOpCases[i].idp);
    check_ops(&t, kOpCases[i].ops, kOpCases[i].what);
  }
  /* Every topology up to 48 ranks against the op table. */
  for_each_topology_form(48, check_ops_of_form, NULL);
  /* Not an op, or no topology: never valid. */
  const mixcomm_topology_t t = resolved_topology(8, 8, 4, 0, 0, 0);
  ASSERT_EQ(mixcomm_topology_op_valid(&t, (mixcomm_op_t)-1), 0);
  ASSERT_EQ(mixcomm_topology_op_valid(&t, MIXCOMM_NUM_OPS), 0);
  ASSERT_EQ(mixcomm_topology_op_valid(&t, (mixcomm_op_t)1000), 0);
  ASSERT_EQ(mixcomm_topology_op_valid(NULL, MIXCOMM_OP_ALLREDUCE), 0);
  return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Valid modes                                                                                */
/* ---------------------------------------------------------------------------------------- */

/* The rules one mode breaks for (topology, caps): up to 4, each with a word the reason must
 * contain when it is the only rule broken. Returns how many rules are broken. */
static int mode_rules_broken(const mixcomm_topology_t* t, const mixcomm_caps_t* c, int mode,
                             const char* words[4]) {
  int n = 0;
  const int is_mc = mode == MIXCOMM_MODE_FUSED_OPT_WAITS_MC ||
                    mode == MIXCOMM_MODE_FUSED_OPT_BYTES1_MC ||
                    mode == MIXCOMM_MODE_FUSED_OPT_BYTES2_MC;
  const int is_uc = mode == MIXCOMM_MODE_FUSED_OPT_WAITS_UC ||
                    mode == MIXCOMM_MODE_FUSED_OPT_BYTES1_UC ||
                    mode == MIXCOMM_MODE_FUSED_OPT_BYTES2_UC;
  const int is_nccl = mode == MIXCOMM_MODE_NCCL_ONE || mode == MIXCOMM_MODE_NCCL_TP_DP;
  if (is_mc)
    words[n++] = "multicast";
  if (is_uc) {
    if (t->local_size > 16)
      words[n++] = "16";
    if (t->inter_size > 1 && !c->nvshmem)
      words[n++] = "NVSHMEM";
  }
  if (mode == MIXCOMM_MODE_FUSED_OPT_BYTES1_UC && t->local_tp_size <= 1)
    words[n++] = "local_tp_size";
  if (mode == MIXCOMM_MODE_FUSED_OPT_BYTES2_UC && t->inter_tp_size <= 1)
    words[n++] = "inter_tp_size";
  if (mode == MIXCOMM_MODE_NCCL_TP_DP && !(t->tp_size > 1 && t->dp_size > 1))
    words[n++] = "dp_size";
  if (is_nccl && c->ranks_share_gpu && n < 4)
    words[n++] = "GPU";
  if (is_nccl && !c->nccl && n < 4)
    words[n++] = "NCCL";
  if (mode == MIXCOMM_MODE_AUTOTUNE && !c->autotune)
    words[n++] = "autotune";
  return n;
}

static void check_modes(const mixcomm_topology_t* t, const mixcomm_caps_t* c) {
  for (int m = 0; m < MIXCOMM_NUM_MODES; m++) {
    const char* words[4];
    const int broken = mode_rules_broken(t, c, m, words);
    const char* reason = (const char*)0x1; /* must be overwritten */
    const int got = mixcomm_topology_mode_valid(t, c, (mixcomm_mode_t)m, &reason);
    if (!got != (broken > 0))
      FAIL("mode %s, W=%d L=%d local %dx%d inter %dx%d, caps mc%d nccl%d nvshmem%d auto%d "
           "share%d: valid = %d, expected %d (reason: %s)",
           mixcomm_mode_name((mixcomm_mode_t)m), t->world_size, t->local_size,
           t->local_tp_size, t->local_dp_size, t->inter_tp_size, t->inter_dp_size, c->multicast,
           c->nccl, c->nvshmem, c->autotune, c->ranks_share_gpu, got, broken == 0,
           got ? "-" : reason);
    if (!got) {
      if (reason == NULL || reason == (const char*)0x1 || reason[0] == '\0')
        FAIL("mode %s excluded without a reason", mixcomm_mode_name((mixcomm_mode_t)m));
      if (broken == 1 && !contains_ci(reason, words[0]))
        FAIL("mode %s excluded for '%s' but the reason does not mention it: %s",
             mixcomm_mode_name((mixcomm_mode_t)m), words[0], reason);
    }
    /* A NULL reason pointer is allowed and gives the same answer. */
    ASSERT_EQ(mixcomm_topology_mode_valid(t, c, (mixcomm_mode_t)m, NULL), got);
  }
}

/* Rank 0's view of one description with the default caps, which NULL caps must mean. */
static void check_modes_default_caps(int W, int L, const level_form_t* lf, int a,
                                     const level_form_t* inf, int b, void* arg) {
  const mixcomm_caps_t* c = arg;
  mixcomm_topology_t in = topology_input(W, L, 0, lf, inf), t;
  ASSERT_OK(mixcomm_topology_resolve(&in, &t));
  check_modes(&t, c);
  for (int m = 0; m < MIXCOMM_NUM_MODES; m++)
    ASSERT_EQ(mixcomm_topology_mode_valid(&t, NULL, (mixcomm_mode_t)m, NULL),
              mixcomm_topology_mode_valid(&t, c, (mixcomm_mode_t)m, NULL));
}

TEST_IMPL(core_modes_caps_default) {
  mixcomm_caps_t c;
  memset(&c, 0x77, sizeof c);
  mixcomm_caps_default(&c);
  ASSERT_EQ(c.multicast, 0);
  ASSERT_EQ(c.nccl, MIXCOMM_HAVE_NCCL);
  ASSERT_EQ(c.nvshmem, MIXCOMM_HAVE_NVSHMEM);
  ASSERT_EQ(c.autotune, 1);
  ASSERT_EQ(c.ranks_share_gpu, 0);
  mixcomm_caps_default(NULL); /* no crash */

  /* Hand-checked examples with the default caps. */
  const struct {
    int W, L, ltp, ldp, itp, idp;
    mixcomm_mode_t mode;
    int valid;
  } examples[] = {
      /* tp 8 on one node */
      {8, 8, 0, 0, 0, 0, MIXCOMM_MODE_FUSED_OPT_WAITS_UC, 1},
      {8, 8, 0, 0, 0, 0, MIXCOMM_MODE_FUSED_OPT_BYTES1_UC, 1},
      {8, 8, 0, 0, 0, 0, MIXCOMM_MODE_FUSED_OPT_BYTES2_UC, 0},
      {8, 8, 0, 0, 0, 0, MIXCOMM_MODE_FUSED_OPT_WAITS_MC, 0},
      {8, 8, 0, 0, 0, 0, MIXCOMM_MODE_NCCL_ONE, MIXCOMM_HAVE_NCCL},
      {8, 8, 0, 0, 0, 0, MIXCOMM_MODE_NCCL_TP_DP, 0},
      {8, 8, 0, 0, 0, 0, MIXCOMM_MODE_AUTOTUNE, 1},
      /* dp 8 on one node */
      {8, 8, 1, 0, 0, 0, MIXCOMM_MODE_FUSED_OPT_WAITS_UC, 1},
      {8, 8, 1, 0, 0, 0, MIXCOMM_MODE_FUSED_OPT_BYTES1_UC, 0},
      /* tp 4 x dp 2 */
      {8, 8, 4, 0, 0, 0, MIXCOMM_MODE_NCCL_TP_DP, MIXCOMM_HAVE_NCCL},
      /* two nodes, inter tp 2 */
      {16, 8, 0, 0, 2, 0, MIXCOMM_MODE_FUSED_OPT_BYTES2_UC, MIXCOMM_HAVE_NVSHMEM},
      /* world 1 */
      {1, 1, 0, 0, 0, 0, MIXCOMM_MODE_FUSED_OPT_WAITS_UC, 1},
      {1, 1, 0, 0, 0, 0, MIXCOMM_MODE_FUSED_OPT_BYTES1_UC, 0},
  };
  for (size_t i = 0; i < sizeof examples / sizeof examples[0]; i++) {
    const mixcomm_topology_t t = resolved_topology(examples[i].W, examples[i].L,
                                                   examples[i].ltp, examples[i].ldp,
                                                   examples[i].itp, examples[i].idp);
    const int got = mixcomm_topology_mode_valid(&t, &c, examples[i].mode, NULL);
    if (got != examples[i].valid)
      FAIL("example %zu (W=%d L=%d, %s): valid = %d, expected %d", i, examples[i].W,
           examples[i].L, mixcomm_mode_name(examples[i].mode), got, examples[i].valid);
  }

  /* NULL caps means the defaults. */
  for_each_topology_form(40, check_modes_default_caps, &c);

  /* Values that are not modes, and no topology. */
  const mixcomm_topology_t t = resolved_topology(8, 8, 4, 0, 0, 0);
  const char* reason = NULL;
  ASSERT_EQ(mixcomm_topology_mode_valid(&t, &c, MIXCOMM_MODE_DEFAULT, &reason), 0);
  ASSERT(reason != NULL && reason[0] != '\0');
  reason = NULL;
  ASSERT_EQ(mixcomm_topology_mode_valid(&t, &c, MIXCOMM_NUM_MODES, &reason), 0);
  ASSERT(reason != NULL && reason[0] != '\0');
  ASSERT_EQ(mixcomm_topology_mode_valid(&t, &c, (mixcomm_mode_t)77, NULL), 0);
  reason = NULL;
  ASSERT_EQ(mixcomm_topology_mode_valid(NULL, &c, MIXCOMM_MODE_AUTOTUNE, &reason), 0);
  ASSERT(reason != NULL);
  return 0;
}

/* Every topology up to 64 ranks (rank 0's view, explicit factorisations), every combination
 * of the capability flags. */
TEST_IMPL(core_modes_sweep) {
  long long checked = 0;
  for (int W = 1; W <= 64; W++) {
    for (int L = 1; L <= W; L++) {
      if (W % L != 0)
        continue;
      const int I = W / L;
      for (int ltp = 1; ltp <= L; ltp++) {
        if (L % ltp != 0)
          continue;
        for (int itp = 1; itp <= I; itp++) {
          if (I % itp != 0)
            continue;
          mixcomm_topology_t t = resolved_topology(W, L, ltp, L / ltp, itp, I / itp);
          for (int bits = 0; bits < 32; bits++) {
            mixcomm_caps_t c = {bits & 1, (bits >> 1) & 1, (bits >> 2) & 1, (bits >> 3) & 1,
                                (bits >> 4) & 1};
            check_modes(&t, &c);
            checked++;
          }
        }
      }
    }
  }
  ASSERT(checked > 10000);

  /* The brief's named cases, spelled out. */
  mixcomm_caps_t c = {0, 1, 1, 1, 0};
  const char* why = NULL;
  mixcomm_topology_t t = resolved_topology(8, 8, 4, 0, 0, 0);
  c.ranks_share_gpu = 1;
  ASSERT_EQ(mixcomm_topology_mode_valid(&t, &c, MIXCOMM_MODE_NCCL_ONE, &why), 0);
  ASSERT(contains_ci(why, "GPU"));
  ASSERT_EQ(mixcomm_topology_mode_valid(&t, &c, MIXCOMM_MODE_NCCL_TP_DP, &why), 0);
  ASSERT(contains_ci(why, "GPU"));
  ASSERT_EQ(mixcomm_topology_mode_valid(&t, &c, MIXCOMM_MODE_FUSED_OPT_WAITS_UC, NULL), 1);
  c.ranks_share_gpu = 0;
  c.autotune = 0;
  ASSERT_EQ(mixcomm_topology_mode_valid(&t, &c, MIXCOMM_MODE_AUTOTUNE, &why), 0);
  ASSERT(contains_ci(why, "autotune"));
  c.autotune = 1;
  t = resolved_topology(16, 8, 0, 0, 2, 0);
  c.nvshmem = 0;
  ASSERT_EQ(mixcomm_topology_mode_valid(&t, &c, MIXCOMM_MODE_FUSED_OPT_WAITS_UC, &why), 0);
  ASSERT(contains_ci(why, "NVSHMEM"));
  c.nvshmem = 1;
  ASSERT_EQ(mixcomm_topology_mode_valid(&t, &c, MIXCOMM_MODE_FUSED_OPT_BYTES2_UC, &why), 1);
  c.multicast = 1; /* even with multicast hardware, MC modes are not built */
  ASSERT_EQ(mixcomm_topology_mode_valid(&t, &c, MIXCOMM_MODE_FUSED_OPT_BYTES2_MC, &why), 0);
  ASSERT(contains_ci(why, "multicast"));
  t = resolved_topology(32, 32, 0, 0, 0, 0);
  ASSERT_EQ(mixcomm_topology_mode_valid(&t, &c, MIXCOMM_MODE_FUSED_OPT_WAITS_UC, &why), 0);
  t = resolved_topology(17, 17, 0, 0, 0, 0);
  ASSERT_EQ(mixcomm_topology_mode_valid(&t, &c, MIXCOMM_MODE_FUSED_OPT_BYTES1_UC, &why), 0);
  t = resolved_topology(16, 16, 0, 0, 0, 0);
  ASSERT_EQ(mixcomm_topology_mode_valid(&t, &c, MIXCOMM_MODE_FUSED_OPT_BYTES1_UC, &why), 1);
  return 0;
}
