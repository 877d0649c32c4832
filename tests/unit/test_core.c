/* SPDX-License-Identifier: Apache-2.0
 * Tests of the GPU-free core: topology, valid ops and modes, names and status strings, the config initializer, the workspace plan, the
 * per-call geometry and the run-argument checks.
 *
 * Expected values are computed here from the documented formulas (or the layout comment in
 * src/core/plan.h), never by calling the code under test. */
#include <stdint.h>
#include <strings.h>

#include "core/build_config.h"
#include "core/plan.h"
#include "core/validate.h"
#include "harness/task.h"

/* ---------------------------------------------------------------------------------------- */
/* Helpers                                                                                   */
/* ---------------------------------------------------------------------------------------- */

static int contains_ci(const char* hay, const char* needle) {
  if (hay == NULL)
    return 0;
  size_t n = strlen(needle);
  for (const char* p = hay; *p != '\0'; p++)
    if (strncasecmp(p, needle, n) == 0)
      return 1;
  return 0;
}

/* One way of describing a level (node or inter-node) of n ranks: the tp/dp sizes passed in
 * (0 = not given) and the sizes the default rules give for them. */
typedef struct level_form {
  int tp_in, dp_in;
  int tp, dp;
} level_form_t;

/* Every form for a level of n ranks: neither given; and for each divisor d of n, both given
 * (d, n/d), only tp given (d), only dp given (d). */
static int level_forms(int n, level_form_t* f) {
  int k = 0;
  f[k++] = (level_form_t){0, 0, n, 1};
  for (int d = 1; d <= n; d++) {
    if (n % d != 0)
      continue;
    f[k++] = (level_form_t){d, n / d, d, n / d};
    f[k++] = (level_form_t){d, 0, d, n / d};
    f[k++] = (level_form_t){0, d, n / d, d};
  }
  return k;
}

#define MAX_FORMS (1 + 3 * 64)

static mixcomm_topology_t make_input(int world_size, int local_size, int world_rank,
                                     const level_form_t* lf, const level_form_t* inf) {
  mixcomm_topology_t t;
  memset(&t, 0x7b, sizeof t); /* derived fields must be overwritten, not trusted */
  t.world_size = world_size;
  t.local_size = local_size;
  t.inter_size = world_size / local_size;
  t.world_rank = world_rank;
  t.local_rank = world_rank % local_size;
  t.inter_rank = world_rank / local_size;
  t.local_tp_size = lf->tp_in;
  t.local_dp_size = lf->dp_in;
  t.inter_tp_size = inf->tp_in;
  t.inter_dp_size = inf->dp_in;
  return t;
}

/* A resolved topology from the rank-0 view; fails the test if it does not resolve. */
static mixcomm_topology_t resolved(int world_size, int local_size, int ltp, int ldp, int itp,
                                   int idp) {
  mixcomm_topology_t t = {0};
  t.world_size = world_size;
  t.local_size = local_size;
  t.inter_size = world_size / local_size;
  t.local_tp_size = ltp;
  t.local_dp_size = ldp;
  t.inter_tp_size = itp;
  t.inter_dp_size = idp;
  ASSERT_OK(mixcomm_topology_resolve(&t, &t));
  return t;
}

/* Check every field of `got` against the topology rules for world rank w of a job of W ranks,
 * L per node, with resolved sizes ltp x ldp inside a node and itp x idp across nodes. */
static void check_rank(const mixcomm_topology_t* got, int W, int L, int ltp, int ldp, int itp,
                       int idp, int w, const char* what) {
  const int I = W / L;
  const int lr = w % L, ir = w / L;
  const int ltr = lr % ltp, ldr = lr / ltp;
  const int itr = ir % itp, idr = ir / itp;
  const int exp[][2] = {
      {got->world_rank, w},
      {got->world_size, W},
      {got->local_rank, lr},
      {got->local_size, L},
      {got->inter_rank, ir},
      {got->inter_size, I},
      {got->local_tp_size, ltp},
      {got->local_dp_size, ldp},
      {got->inter_tp_size, itp},
      {got->inter_dp_size, idp},
      {got->local_tp_rank, ltr},
      {got->local_dp_rank, ldr},
      {got->inter_tp_rank, itr},
      {got->inter_dp_rank, idr},
      {got->tp_rank, ltr + itr * ltp},
      {got->tp_size, ltp * itp},
      {got->dp_rank, ldr + idr * ldp},
      {got->dp_size, ldp * idp},
  };
  static const char* const names[] = {
      "world_rank",    "world_size",    "local_rank",    "local_size",    "inter_rank",
      "inter_size",    "local_tp_size", "local_dp_size", "inter_tp_size", "inter_dp_size",
      "local_tp_rank", "local_dp_rank", "inter_tp_rank", "inter_dp_rank", "tp_rank",
      "tp_size",       "dp_rank",       "dp_size"};
  for (size_t i = 0; i < sizeof exp / sizeof exp[0]; i++) {
    if (exp[i][0] != exp[i][1])
      FAIL("%s: W=%d L=%d local %dx%d inter %dx%d rank %d: %s = %d, expected %d", what, W, L,
           ltp, ldp, itp, idp, w, names[i], exp[i][0], exp[i][1]);
  }
}

/* ---------------------------------------------------------------------------------------- */
/* Topology                                                                                  */
/* ---------------------------------------------------------------------------------------- */

/* Every world size 1..64, every local size dividing it, every form of both levels, every
 * rank: resolve gives the documented ranks, and the (tp_rank, dp_rank) pairs cover the tp x dp
 * grid exactly once. */
TEST_IMPL(core_topology_all_ranks) {
  level_form_t lforms[MAX_FORMS], iforms[MAX_FORMS];
  static unsigned char seen[64 * 64];
  long long checked = 0;
  for (int W = 1; W <= 64; W++) {
    for (int L = 1; L <= W; L++) {
      if (W % L != 0)
        continue;
      const int nl = level_forms(L, lforms), ni = level_forms(W / L, iforms);
      for (int a = 0; a < nl; a++) {
        for (int b = 0; b < ni; b++) {
          const level_form_t* lf = &lforms[a];
          const level_form_t* inf = &iforms[b];
          memset(seen, 0, sizeof seen);
          for (int w = 0; w < W; w++) {
            mixcomm_topology_t in = make_input(W, L, w, lf, inf), out;
            memset(&out, 0x3c, sizeof out);
            mixcomm_status_t st = mixcomm_topology_resolve(&in, &out);
            if (st != MIXCOMM_SUCCESS)
              FAIL("W=%d L=%d local (%d,%d) inter (%d,%d) rank %d: %s: %s", W, L, lf->tp_in,
                   lf->dp_in, inf->tp_in, inf->dp_in, w, mixcomm_status_name(st),
                   mixcomm_last_error());
            check_rank(&out, W, L, lf->tp, lf->dp, inf->tp, inf->dp, w, "resolve");
            const int tps = lf->tp * inf->tp, dps = lf->dp * inf->dp;
            ASSERT_EQ(tps * dps, W);
            const int cell = out.tp_rank * dps + out.dp_rank;
            ASSERT(out.tp_rank >= 0 && out.tp_rank < tps);
            ASSERT(out.dp_rank >= 0 && out.dp_rank < dps);
            if (seen[cell])
              FAIL("W=%d L=%d: (tp_rank %d, dp_rank %d) given to two ranks", W, L, out.tp_rank,
                   out.dp_rank);
            seen[cell] = 1;
            /* in and out may alias. */
            if (w == W - 1) {
              mixcomm_topology_t alias = in;
              ASSERT_OK(mixcomm_topology_resolve(&alias, &alias));
              check_rank(&alias, W, L, lf->tp, lf->dp, inf->tp, inf->dp, w, "aliased resolve");
            }
            checked++;
          }
        }
      }
    }
  }
  ASSERT(checked > 100000);
  return 0;
}

/* mixcomm_topology_for_rank derives any other rank's view from a resolved topology. */
TEST_IMPL(core_topology_for_rank) {
  level_form_t lforms[MAX_FORMS], iforms[MAX_FORMS];
  for (int W = 1; W <= 64; W++) {
    for (int L = 1; L <= W; L++) {
      if (W % L != 0)
        continue;
      const int nl = level_forms(L, lforms), ni = level_forms(W / L, iforms);
      for (int a = 0; a < nl; a++) {
        for (int b = 0; b < ni; b++) {
          const int base_rank = (a * 7 + b * 3) % W;
          mixcomm_topology_t base = make_input(W, L, base_rank, &lforms[a], &iforms[b]);
          ASSERT_OK(mixcomm_topology_resolve(&base, &base));
          for (int w = 0; w < W; w++) {
            mixcomm_topology_t out;
            memset(&out, 0x11, sizeof out);
            ASSERT_OK(mixcomm_topology_for_rank(&base, w, &out));
            check_rank(&out, W, L, lforms[a].tp, lforms[a].dp, iforms[b].tp, iforms[b].dp, w,
                       "for_rank");
          }
        }
      }
    }
  }
  /* Out-of-range ranks and NULL arguments are errors, not crashes. */
  mixcomm_topology_t t = resolved(8, 4, 2, 0, 0, 0), out, before;
  memset(&out, 0x5a, sizeof out);
  before = out;
  ASSERT_ERR(mixcomm_topology_for_rank(&t, 8, &out), MIXCOMM_ERR_INVALID_ARGUMENT,
             "world_rank=8");
  ASSERT_ERR(mixcomm_topology_for_rank(&t, -1, &out), MIXCOMM_ERR_INVALID_ARGUMENT,
             "world_rank=-1");
  ASSERT(memcmp(&out, &before, sizeof out) == 0);
  ASSERT_EQ(mixcomm_topology_for_rank(NULL, 0, &out), MIXCOMM_ERR_INVALID_ARGUMENT);
  ASSERT_EQ(mixcomm_topology_for_rank(&t, 0, NULL), MIXCOMM_ERR_INVALID_ARGUMENT);
  return 0;
}

typedef struct bad_topology {
  int ws, ls, is;         /* world, local, inter size */
  int wr, lr, ir;         /* world, local, inter rank */
  int ltp, ldp, itp, idp; /* tp/dp sizes given */
  const char* needles[3]; /* the message must name these values */
} bad_topology_t;

/* Every violated topology rule gives INVALID_ARGUMENT with a message naming the
 * values, and leaves the output untouched. */
TEST_IMPL(core_topology_errors) {
  static const bad_topology_t cases[] = {
      /* world_size != inter_size * local_size */
      {8, 4, 3, 0, 0, 0, 0, 0, 0, 0, {"world_size=8", "inter_size=3", "local_size=4"}},
      {6, 4, 2, 0, 0, 0, 0, 0, 0, 0, {"world_size=6", "inter_size=2", "local_size=4"}},
      /* ranks out of range */
      {8, 4, 2, 8, 0, 2, 0, 0, 0, 0, {"world_rank=8", NULL, NULL}},
      {8, 4, 2, -1, 3, -1, 0, 0, 0, 0, {"rank=-1", NULL, NULL}},
      {8, 4, 2, 4, 4, 0, 0, 0, 0, 0, {"local_rank=4", NULL, NULL}},
      {8, 4, 2, 3, -1, 1, 0, 0, 0, 0, {"local_rank=-1", NULL, NULL}},
      {8, 4, 2, 0, 0, 2, 0, 0, 0, 0, {"inter_rank=2", NULL, NULL}},
      /* world_rank inconsistent with inter_rank * local_size + local_rank */
      {8, 4, 2, 5, 1, 0, 0, 0, 0, 0, {"world_rank=5", "local_rank=1", "inter_rank=0"}},
      {8, 4, 2, 1, 0, 1, 0, 0, 0, 0, {"world_rank=1", "inter_rank=1", "local_size=4"}},
      /* tp or dp not dividing the level */
      {4, 4, 1, 0, 0, 0, 3, 0, 0, 0, {"local_tp_size=3", "local_size=4", NULL}},
      {4, 4, 1, 0, 0, 0, 8, 0, 0, 0, {"local_tp_size=8", "local_size=4", NULL}},
      {4, 4, 1, 0, 0, 0, 0, 3, 0, 0, {"local_dp_size=3", "local_size=4", NULL}},
      {8, 4, 2, 0, 0, 0, 0, 0, 3, 0, {"inter_tp_size=3", "inter_size=2", NULL}},
      {8, 4, 2, 0, 0, 0, 0, 0, 0, 4, {"inter_dp_size=4", "inter_size=2", NULL}},
      /* both given, product mismatch */
      {4, 4, 1, 0, 0, 0, 2, 4, 0, 0, {"local_tp_size=2", "local_dp_size=4", "local_size=4"}},
      {6, 6, 1, 0, 0, 0, 2, 2, 0, 0, {"local_tp_size=2", "local_dp_size=2", "local_size=6"}},
      {8, 4, 2, 0, 0, 0, 0, 0, 1, 1, {"inter_tp_size=1", "inter_dp_size=1", "inter_size=2"}},
      {8, 2, 4, 0, 0, 0, 0, 0, 2, 4, {"inter_tp_size=2", "inter_dp_size=4", "inter_size=4"}},
      /* negative tp/dp sizes */
      {4, 4, 1, 0, 0, 0, -1, 0, 0, 0, {"local_tp_size=-1", NULL, NULL}},
      {4, 4, 1, 0, 0, 0, -2, -2, 0, 0, {"local_tp_size=-2", NULL, NULL}},
      {4, 4, 1, 0, 0, 0, 0, -4, 0, 0, {"local_dp_size=-4", NULL, NULL}},
      {8, 4, 2, 0, 0, 0, 0, 0, -1, 0, {"inter_tp_size=-1", NULL, NULL}},
      {8, 4, 2, 0, 0, 0, 0, 0, 2, -1, {"inter_dp_size=-1", NULL, NULL}},
      /* zero and negative sizes */
      {0, 1, 0, 0, 0, 0, 0, 0, 0, 0, {"world_size=0", NULL, NULL}},
      {0, 0, 1, 0, 0, 0, 0, 0, 0, 0, {"local_size=0", NULL, NULL}},
      {4, 4, 0, 0, 0, 0, 0, 0, 0, 0, {"inter_size=0", NULL, NULL}},
      {-4, -4, 1, 0, 0, 0, 0, 0, 0, 0, {"world_size=-4", "local_size=-4", NULL}},
      {4, -2, -2, 0, 0, 0, 0, 0, 0, 0, {"local_size=-2", "inter_size=-2", NULL}},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const bad_topology_t* c = &cases[i];
    mixcomm_topology_t in = {0}, out;
    in.world_size = c->ws;
    in.local_size = c->ls;
    in.inter_size = c->is;
    in.world_rank = c->wr;
    in.local_rank = c->lr;
    in.inter_rank = c->ir;
    in.local_tp_size = c->ltp;
    in.local_dp_size = c->ldp;
    in.inter_tp_size = c->itp;
    in.inter_dp_size = c->idp;
    memset(&out, 0x5a, sizeof out);
    mixcomm_topology_t out_before = out;
    mixcomm_status_t st = mixcomm_topology_resolve(&in, &out);
    if (st != MIXCOMM_ERR_INVALID_ARGUMENT)
      FAIL("case %zu: resolve returned %s, expected MIXCOMM_ERR_INVALID_ARGUMENT", i,
           mixcomm_status_name(st));
    const char* msg = mixcomm_last_error();
    for (int k = 0; k < 3; k++)
      if (c->needles[k] != NULL && strstr(msg, c->needles[k]) == NULL)
        FAIL("case %zu: message \"%s\" does not name %s", i, msg, c->needles[k]);
    if (memcmp(&out, &out_before, sizeof out) != 0)
      FAIL("case %zu: output written although resolve failed", i);
    /* Same with in == out: the input must survive. */
    mixcomm_topology_t alias = in;
    ASSERT_EQ(mixcomm_topology_resolve(&alias, &alias), MIXCOMM_ERR_INVALID_ARGUMENT);
    if (memcmp(&alias, &in, sizeof in) != 0)
      FAIL("case %zu: aliased input changed although resolve failed", i);
  }
  mixcomm_topology_t t = resolved(1, 1, 0, 0, 0, 0);
  ASSERT_EQ(mixcomm_topology_resolve(NULL, &t), MIXCOMM_ERR_INVALID_ARGUMENT);
  ASSERT_EQ(mixcomm_topology_resolve(&t, NULL), MIXCOMM_ERR_INVALID_ARGUMENT);
  ASSERT(mixcomm_last_error()[0] != '\0');
  return 0;
}

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

TEST_IMPL(core_ops_valid) {
  /* Order: AR, AG, RS, AR+AG, RS+AR. */
  static const int pure_tp[] = {1, 0, 0, 0, 0};
  static const int pure_dp[] = {0, 1, 1, 0, 0};
  static const int mixed[] = {0, 0, 0, 1, 1};
  static const int world1[] = {1, 1, 1, 0, 0};
  mixcomm_topology_t t;
  t = resolved(8, 8, 0, 0, 0, 0);
  check_ops(&t, pure_tp, "8 ranks, tp 8");
  t = resolved(16, 8, 0, 0, 0, 0);
  check_ops(&t, pure_tp, "2 nodes of 8, tp 16");
  t = resolved(8, 8, 1, 0, 0, 0);
  check_ops(&t, pure_dp, "8 ranks, dp 8");
  t = resolved(8, 4, 0, 4, 0, 2);
  check_ops(&t, pure_dp, "2 nodes of 4, dp 8");
  t = resolved(8, 8, 4, 0, 0, 0);
  check_ops(&t, mixed, "tp 4 x dp 2 in a node");
  t = resolved(8, 2, 2, 0, 0, 4);
  check_ops(&t, mixed, "tp 2 in a node, dp 4 across nodes");
  t = resolved(8, 4, 1, 4, 2, 0);
  check_ops(&t, mixed, "dp 4 in a node, tp 2 across nodes");
  t = resolved(1, 1, 0, 0, 0, 0);
  check_ops(&t, world1, "world 1");

  /* Every topology up to 48 ranks against the op table. */
  level_form_t lf[MAX_FORMS], inf[MAX_FORMS];
  for (int W = 1; W <= 48; W++) {
    for (int L = 1; L <= W; L++) {
      if (W % L != 0)
        continue;
      int nl = level_forms(L, lf), ni = level_forms(W / L, inf);
      for (int a = 0; a < nl; a++) {
        for (int b = 0; b < ni; b++) {
          mixcomm_topology_t in = make_input(W, L, 0, &lf[a], &inf[b]);
          ASSERT_OK(mixcomm_topology_resolve(&in, &t));
          const int tp = lf[a].tp * inf[b].tp, dp = lf[a].dp * inf[b].dp;
          const int exp[] = {dp == 1, tp == 1, tp == 1, tp > 1 && dp > 1, tp > 1 && dp > 1};
          check_ops(&t, exp, "sweep");
        }
      }
    }
  }
  /* Not an op, or no topology: never valid. */
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
  mixcomm_topology_t t = resolved(8, 8, 0, 0, 0, 0); /* tp 8 on one node */
  ASSERT_EQ(mixcomm_topology_mode_valid(&t, &c, MIXCOMM_MODE_FUSED_OPT_WAITS_UC, NULL), 1);
  ASSERT_EQ(mixcomm_topology_mode_valid(&t, &c, MIXCOMM_MODE_FUSED_OPT_BYTES1_UC, NULL), 1);
  ASSERT_EQ(mixcomm_topology_mode_valid(&t, &c, MIXCOMM_MODE_FUSED_OPT_BYTES2_UC, NULL), 0);
  ASSERT_EQ(mixcomm_topology_mode_valid(&t, &c, MIXCOMM_MODE_FUSED_OPT_WAITS_MC, NULL), 0);
  ASSERT_EQ(mixcomm_topology_mode_valid(&t, &c, MIXCOMM_MODE_NCCL_ONE, NULL), MIXCOMM_HAVE_NCCL);
  ASSERT_EQ(mixcomm_topology_mode_valid(&t, &c, MIXCOMM_MODE_NCCL_TP_DP, NULL), 0);
  ASSERT_EQ(mixcomm_topology_mode_valid(&t, &c, MIXCOMM_MODE_AUTOTUNE, NULL), 1);
  t = resolved(8, 8, 1, 0, 0, 0); /* dp 8 on one node */
  ASSERT_EQ(mixcomm_topology_mode_valid(&t, &c, MIXCOMM_MODE_FUSED_OPT_WAITS_UC, NULL), 1);
  ASSERT_EQ(mixcomm_topology_mode_valid(&t, &c, MIXCOMM_MODE_FUSED_OPT_BYTES1_UC, NULL), 0);
  t = resolved(8, 8, 4, 0, 0, 0); /* tp 4 x dp 2 */
  ASSERT_EQ(mixcomm_topology_mode_valid(&t, &c, MIXCOMM_MODE_NCCL_TP_DP, NULL),
            MIXCOMM_HAVE_NCCL);
  t = resolved(16, 8, 0, 0, 2, 0); /* two nodes, inter tp 2 */
  ASSERT_EQ(mixcomm_topology_mode_valid(&t, &c, MIXCOMM_MODE_FUSED_OPT_BYTES2_UC, NULL),
            MIXCOMM_HAVE_NVSHMEM);
  t = resolved(1, 1, 0, 0, 0, 0); /* world 1 */
  ASSERT_EQ(mixcomm_topology_mode_valid(&t, &c, MIXCOMM_MODE_FUSED_OPT_WAITS_UC, NULL), 1);
  ASSERT_EQ(mixcomm_topology_mode_valid(&t, &c, MIXCOMM_MODE_FUSED_OPT_BYTES1_UC, NULL), 0);

  /* NULL caps means the defaults. */
  level_form_t lf[MAX_FORMS], inf[MAX_FORMS];
  for (int W = 1; W <= 40; W++) {
    for (int L = 1; L <= W; L++) {
      if (W % L != 0)
        continue;
      int nl = level_forms(L, lf), ni = level_forms(W / L, inf);
      for (int a = 0; a < nl; a++) {
        for (int b = 0; b < ni; b++) {
          mixcomm_topology_t in = make_input(W, L, 0, &lf[a], &inf[b]);
          ASSERT_OK(mixcomm_topology_resolve(&in, &t));
          check_modes(&t, &c);
          for (int m = 0; m < MIXCOMM_NUM_MODES; m++)
            ASSERT_EQ(mixcomm_topology_mode_valid(&t, NULL, (mixcomm_mode_t)m, NULL),
                      mixcomm_topology_mode_valid(&t, &c, (mixcomm_mode_t)m, NULL));
        }
      }
    }
  }

  /* Values that are not modes, and no topology. */
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
          mixcomm_topology_t t = resolved(W, L, ltp, L / ltp, itp, I / itp);
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
  mixcomm_topology_t t = resolved(8, 8, 4, 0, 0, 0);
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
  t = resolved(16, 8, 0, 0, 2, 0);
  c.nvshmem = 0;
  ASSERT_EQ(mixcomm_topology_mode_valid(&t, &c, MIXCOMM_MODE_FUSED_OPT_WAITS_UC, &why), 0);
  ASSERT(contains_ci(why, "NVSHMEM"));
  c.nvshmem = 1;
  ASSERT_EQ(mixcomm_topology_mode_valid(&t, &c, MIXCOMM_MODE_FUSED_OPT_BYTES2_UC, &why), 1);
  c.multicast = 1; /* even with multicast hardware, MC modes are not built */
  ASSERT_EQ(mixcomm_topology_mode_valid(&t, &c, MIXCOMM_MODE_FUSED_OPT_BYTES2_MC, &why), 0);
  ASSERT(contains_ci(why, "multicast"));
  t = resolved(32, 32, 0, 0, 0, 0);
  ASSERT_EQ(mixcomm_topology_mode_valid(&t, &c, MIXCOMM_MODE_FUSED_OPT_WAITS_UC, &why), 0);
  t = resolved(17, 17, 0, 0, 0, 0);
  ASSERT_EQ(mixcomm_topology_mode_valid(&t, &c, MIXCOMM_MODE_FUSED_OPT_BYTES1_UC, &why), 0);
  t = resolved(16, 16, 0, 0, 0, 0);
  ASSERT_EQ(mixcomm_topology_mode_valid(&t, &c, MIXCOMM_MODE_FUSED_OPT_BYTES1_UC, &why), 1);
  return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Names and status strings                                                                   */
/* ---------------------------------------------------------------------------------------- */

TEST_IMPL(core_names) {
  static const char* const ops[] = {"ALLREDUCE", "ALLGATHER", "REDUCESCATTER",
                                    "ALLREDUCE_ALLGATHER", "REDUCESCATTER_ALLREDUCE"};
  static const char* const modes[] = {
      "FUSED_OPT_WAITS_MC",  "FUSED_OPT_WAITS_UC", "FUSED_OPT_BYTES1_MC",
      "FUSED_OPT_BYTES1_UC", "FUSED_OPT_BYTES2_MC", "FUSED_OPT_BYTES2_UC",
      "NCCL_ONE",            "NCCL_TP_DP",          "AUTOTUNE"};
  static const char* const dtypes[] = {"float16", "bfloat16", "float32"};
  ASSERT_EQ(sizeof ops / sizeof ops[0], MIXCOMM_NUM_OPS);
  ASSERT_EQ(sizeof modes / sizeof modes[0], MIXCOMM_NUM_MODES);
  ASSERT_EQ(sizeof dtypes / sizeof dtypes[0], MIXCOMM_NUM_DTYPES);

  for (int i = 0; i < MIXCOMM_NUM_OPS; i++) {
    ASSERT_STR_EQ(mixcomm_op_name((mixcomm_op_t)i), ops[i]);
    mixcomm_op_t op = (mixcomm_op_t)-7;
    ASSERT_OK(mixcomm_op_from_name(ops[i], &op));
    ASSERT_EQ(op, i);
    char lower[64];
    snprintf(lower, sizeof lower, "%s", ops[i]);
    for (char* p = lower; *p; p++)
      *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
    op = (mixcomm_op_t)-7;
    ASSERT_OK(mixcomm_op_from_name(lower, &op));
    ASSERT_EQ(op, i);
  }
  for (int i = 0; i < MIXCOMM_NUM_MODES; i++) {
    ASSERT_STR_EQ(mixcomm_mode_name((mixcomm_mode_t)i), modes[i]);
    mixcomm_mode_t m = (mixcomm_mode_t)-7;
    ASSERT_OK(mixcomm_mode_from_name(modes[i], &m));
    ASSERT_EQ(m, i);
  }
  mixcomm_mode_t m = MIXCOMM_MODE_AUTOTUNE;
  ASSERT_OK(mixcomm_mode_from_name("nccl_tp_dp", &m));
  ASSERT_EQ(m, MIXCOMM_MODE_NCCL_TP_DP);
  ASSERT_OK(mixcomm_mode_from_name(mixcomm_mode_name(MIXCOMM_MODE_DEFAULT), &m));
  ASSERT_EQ(m, MIXCOMM_MODE_DEFAULT);
  for (int i = 0; i < MIXCOMM_NUM_DTYPES; i++) {
    ASSERT_STR_EQ(mixcomm_dtype_name((mixcomm_dtype_t)i), dtypes[i]);
    mixcomm_dtype_t d = (mixcomm_dtype_t)-7;
    ASSERT_OK(mixcomm_dtype_from_name(dtypes[i], &d));
    ASSERT_EQ(d, i);
  }
  static const struct {
    const char* alias;
    mixcomm_dtype_t dtype;
    size_t size;
  } aliases[] = {{"fp16", MIXCOMM_FLOAT16, 2},  {"FP16", MIXCOMM_FLOAT16, 2},
                 {"half", MIXCOMM_FLOAT16, 2},  {"bf16", MIXCOMM_BFLOAT16, 2},
                 {"BFloat16", MIXCOMM_BFLOAT16, 2}, {"fp32", MIXCOMM_FLOAT32, 4},
                 {"float", MIXCOMM_FLOAT32, 4}, {"Float32", MIXCOMM_FLOAT32, 4}};
  for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++) {
    mixcomm_dtype_t d = (mixcomm_dtype_t)-7;
    ASSERT_OK(mixcomm_dtype_from_name(aliases[i].alias, &d));
    ASSERT_EQ(d, aliases[i].dtype);
    ASSERT_EQ(mixcomm_dtype_size(d), aliases[i].size);
  }

  /* Unknown names fail, name themselves and leave the output alone. */
  static const char* const unknown[] = {"", "ALLREDUCE2", "ALL_REDUCE", " ALLREDUCE", "fp64",
                                        "int8", "FUSED_OPT_WAITS", "NCCL"};
  for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
    mixcomm_op_t op = (mixcomm_op_t)-7;
    mixcomm_mode_t md = (mixcomm_mode_t)-7;
    mixcomm_dtype_t d = (mixcomm_dtype_t)-7;
    ASSERT_EQ(mixcomm_op_from_name(unknown[i], &op), MIXCOMM_ERR_INVALID_ARGUMENT);
    ASSERT_EQ((int)op, -7);
    ASSERT_EQ(mixcomm_mode_from_name(unknown[i], &md), MIXCOMM_ERR_INVALID_ARGUMENT);
    ASSERT_EQ((int)md, -7);
    ASSERT_EQ(mixcomm_dtype_from_name(unknown[i], &d), MIXCOMM_ERR_INVALID_ARGUMENT);
    ASSERT_EQ((int)d, -7);
    char quoted[64];
    snprintf(quoted, sizeof quoted, "'%s'", unknown[i]);
    ASSERT_CONTAINS(mixcomm_last_error(), quoted);
  }
  mixcomm_op_t op;
  mixcomm_dtype_t d;
  ASSERT_EQ(mixcomm_op_from_name(NULL, &op), MIXCOMM_ERR_INVALID_ARGUMENT);
  ASSERT_EQ(mixcomm_mode_from_name(NULL, &m), MIXCOMM_ERR_INVALID_ARGUMENT);
  ASSERT_EQ(mixcomm_dtype_from_name(NULL, &d), MIXCOMM_ERR_INVALID_ARGUMENT);

  /* Out-of-range values have no name. */
  ASSERT(mixcomm_op_name((mixcomm_op_t)-1) == NULL);
  ASSERT(mixcomm_op_name(MIXCOMM_NUM_OPS) == NULL);
  ASSERT(mixcomm_mode_name(MIXCOMM_NUM_MODES) == NULL);
  ASSERT(mixcomm_mode_name((mixcomm_mode_t)-2) == NULL);
  ASSERT(mixcomm_dtype_name(MIXCOMM_NUM_DTYPES) == NULL);
  ASSERT(mixcomm_dtype_name((mixcomm_dtype_t)-1) == NULL);

  ASSERT_EQ(mixcomm_dtype_size(MIXCOMM_FLOAT16), 2);
  ASSERT_EQ(mixcomm_dtype_size(MIXCOMM_BFLOAT16), 2);
  ASSERT_EQ(mixcomm_dtype_size(MIXCOMM_FLOAT32), 4);
  ASSERT_EQ(mixcomm_dtype_size(MIXCOMM_NUM_DTYPES), 0);
  ASSERT_EQ(mixcomm_dtype_size((mixcomm_dtype_t)-1), 0);
  return 0;
}

TEST_IMPL(core_status_strings) {
  ASSERT_EQ(MIXCOMM_SUCCESS, 0);
  ASSERT_STR_EQ(mixcomm_status_name(MIXCOMM_SUCCESS), "MIXCOMM_SUCCESS");
  ASSERT_STR_EQ(mixcomm_status_name(MIXCOMM_ERR_TIMEOUT), "MIXCOMM_ERR_TIMEOUT");
  ASSERT_STR_EQ(mixcomm_status_name(MIXCOMM_ERR_INVALID_ARGUMENT),
                "MIXCOMM_ERR_INVALID_ARGUMENT");
  ASSERT(MIXCOMM_NUM_STATUS >= 14);
  for (int i = 0; i < MIXCOMM_NUM_STATUS; i++) {
    const char* s = mixcomm_status_string((mixcomm_status_t)i);
    const char* n = mixcomm_status_name((mixcomm_status_t)i);
    ASSERT(s != NULL && s[0] != '\0');
    ASSERT(n != NULL && strncmp(n, "MIXCOMM_", 8) == 0 && strlen(n) > 8);
    for (int j = 0; j < i; j++) {
      if (!strcmp(s, mixcomm_status_string((mixcomm_status_t)j)))
        FAIL("status %d and %d share the string \"%s\"", i, j, s);
      if (!strcmp(n, mixcomm_status_name((mixcomm_status_t)j)))
        FAIL("status %d and %d share the name \"%s\"", i, j, n);
    }
  }
  /* Unknown values still give text. */
  const char* s = mixcomm_status_string((mixcomm_status_t)999);
  ASSERT(s != NULL && s[0] != '\0');
  s = mixcomm_status_name((mixcomm_status_t)-5);
  ASSERT(s != NULL && s[0] != '\0');
  ASSERT_EQ(mixcomm_version(), MIXCOMM_VERSION_CODE);
  ASSERT_EQ(MIXCOMM_VERSION_CODE,
            MIXCOMM_VERSION_MAJOR * 10000 + MIXCOMM_VERSION_MINOR * 100 + MIXCOMM_VERSION_PATCH);
  /* A failed call leaves a message. */
  mixcomm_op_t op;
  ASSERT_EQ(mixcomm_op_from_name("nope", &op), MIXCOMM_ERR_INVALID_ARGUMENT);
  ASSERT(mixcomm_last_error() != NULL && mixcomm_last_error()[0] != '\0');
  return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Config initializer                                                                         */
/* ---------------------------------------------------------------------------------------- */

TEST_IMPL(core_config_initializer) {
  const mixcomm_config_t a = MIXCOMM_CONFIG_INITIALIZER;
  mixcomm_config_t b;
  memset(&b, 0xa5, sizeof b);
  mixcomm_config_init(&b);
#define SAME(field) ASSERT_EQ(a.field, b.field)
  SAME(struct_size);
  SAME(version);
  SAME(world_rank);
  SAME(world_size);
  SAME(local_rank);
  SAME(local_size);
  SAME(inter_rank);
  SAME(inter_size);
  SAME(local_tp_size);
  SAME(local_dp_size);
  SAME(inter_tp_size);
  SAME(inter_dp_size);
  SAME(dtype);
  SAME(device);
  SAME(grid_size);
  SAME(max_block_size);
  SAME(min_block_size);
  SAME(min_num_steps);
  SAME(ib_enable_ibgda);
  SAME(should_init_nvshmem);
  SAME(use_autotune);
  SAME(timeout_ms);
#undef SAME
  ASSERT(a.autotune_cache_dir == b.autotune_cache_dir);

  /* The defaults (FlashInfer MixedCommHandler's where it has the field). */
  ASSERT_EQ(a.struct_size, sizeof(mixcomm_config_t));
  ASSERT_EQ(a.version, MIXCOMM_VERSION_CODE);
  ASSERT_EQ(a.world_rank, 0);
  ASSERT_EQ(a.world_size, 1);
  ASSERT_EQ(a.local_rank, 0);
  ASSERT_EQ(a.local_size, 1);
  ASSERT_EQ(a.inter_rank, 0);
  ASSERT_EQ(a.inter_size, 1);
  ASSERT_EQ(a.local_tp_size, 0);
  ASSERT_EQ(a.local_dp_size, 0);
  ASSERT_EQ(a.inter_tp_size, 0);
  ASSERT_EQ(a.inter_dp_size, 0);
  ASSERT_EQ(a.dtype, MIXCOMM_BFLOAT16);
  ASSERT_EQ(a.device, -1);
  ASSERT_EQ(a.grid_size, 0);
  ASSERT_EQ(a.max_block_size, 0);
  ASSERT_EQ(a.min_block_size, 256);
  ASSERT_EQ(a.min_num_steps, 4);
  ASSERT_EQ(a.ib_enable_ibgda, 1);
  ASSERT_EQ(a.should_init_nvshmem, 1);
  ASSERT_EQ(a.use_autotune, 1);
  ASSERT_EQ(a.timeout_ms, 0);
  ASSERT(a.autotune_cache_dir == NULL);

  /* The default config is a valid one-rank job whose workspace can be planned. */
  mixcomm_workspace_plan_t plan;
  ASSERT_OK(mixcomm_workspace_plan(&a, 100, &plan));
  ASSERT_EQ(plan.grid_size, 100);
  mixcomm_config_init(NULL); /* no crash */
  return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Workspace plan                                                                             */
/* ---------------------------------------------------------------------------------------- */

static size_t round_up_sz(size_t a, size_t b) { return (a + b - 1) / b * b; }

/* The bytes of one CTA's share of a slot per the layout comment in plan.h: one 16-byte tag
 * per row, the tag area padded to 128 bytes, then rows of block 16-byte vectors. */
static size_t share_bytes(int rows, int block) {
  return round_up_sz((size_t)rows * 16, 128) + (size_t)rows * block * 16;
}

static mixcomm_config_t plan_config(int W, int L, int ltp, int ldp, int itp, int idp, int rank,
                                    mixcomm_dtype_t dtype, int grid, int max_block,
                                    int min_block) {
  mixcomm_config_t c = MIXCOMM_CONFIG_INITIALIZER;
  c.world_size = W;
  c.local_size = L;
  c.inter_size = W / L;
  c.world_rank = rank;
  c.local_rank = rank % L;
  c.inter_rank = rank / L;
  c.local_tp_size = ltp;
  c.local_dp_size = ldp;
  c.inter_tp_size = itp;
  c.inter_dp_size = idp;
  c.dtype = dtype;
  c.grid_size = grid;
  c.max_block_size = max_block;
  c.min_block_size = min_block;
  return c;
}

static void check_plan_layout(const mixcomm_workspace_plan_t* p, const mixcomm_config_t* c) {
  const int L = c->local_size, I = c->world_size / c->local_size;
  int ltp = c->local_tp_size;
  if (ltp == 0)
    ltp = c->local_dp_size == 0 ? L : L / c->local_dp_size;
  const int B = (c->max_block_size == 0 || c->max_block_size > 1024) ? 1024 : c->max_block_size;
  char what[160];
  snprintf(what, sizeof what, "W=%d L=%d ltp=%d grid=%d max_block=%d", c->world_size, L, ltp,
           c->grid_size, c->max_block_size);
  if (p->grid_size != c->grid_size || p->max_block_size != B)
    FAIL("%s: plan grid %d block %d, expected %d and %d", what, p->grid_size, p->max_block_size,
         c->grid_size, B);
  if (p->ring_slots != MIXCOMM_RING_SLOTS)
    FAIL("%s: ring_slots %d", what, p->ring_slots);
  /* One row per sending local rank (one-shot), two rounds when two-shot is possible. */
  if (L <= MIXCOMM_MAX_LOCAL_SIZE && I == 1) {
    const int need = L == 1 ? 1 : (ltp > 1 ? 2 * L : L);
    if (p->vmm_rows < need || p->vmm_rows > 2 * L)
      FAIL("%s: vmm_rows %d, expected in [%d, %d]", what, p->vmm_rows, need, 2 * L);
  }
  if (p->vmm_rows < 1)
    FAIL("%s: vmm_rows %d", what, p->vmm_rows);
  if (p->vmm_slot_bytes != share_bytes(p->vmm_rows, B))
    FAIL("%s: vmm_slot_bytes %zu, expected %zu for %d rows", what, p->vmm_slot_bytes,
         share_bytes(p->vmm_rows, B), p->vmm_rows);
  if (p->vmm_bytes != (size_t)p->ring_slots * p->grid_size * p->vmm_slot_bytes)
    FAIL("%s: vmm_bytes %zu != slots x grid x share", what, p->vmm_bytes);
  if (I == 1) {
    if (p->nvshmem_rows != 0 || p->nvshmem_slot_bytes != 0 || p->nvshmem_bytes != 0)
      FAIL("%s: one node but nvshmem rows %d, share %zu, bytes %zu", what, p->nvshmem_rows,
           p->nvshmem_slot_bytes, p->nvshmem_bytes);
  } else {
    if (p->nvshmem_rows < 1 || p->nvshmem_bytes == 0)
      FAIL("%s: %d nodes but nvshmem rows %d, bytes %zu", what, I, p->nvshmem_rows,
           p->nvshmem_bytes);
    /* Symmetric shares have no tag area (signal words guard them). */
    if (p->nvshmem_slot_bytes != (size_t)p->nvshmem_rows * B * 16)
      FAIL("%s: nvshmem_slot_bytes %zu, expected %zu", what, p->nvshmem_slot_bytes,
           (size_t)p->nvshmem_rows * B * 16);
    const size_t data = (size_t)p->ring_slots * p->grid_size * p->nvshmem_slot_bytes;
    /* Data shares, then one 8-byte signal word per slot, CTA, round (2) and source node,
     * rounded up to 4 KiB. */
    const size_t signals = ((size_t)p->ring_slots * p->grid_size * 2 * I * 8 + 4095) / 4096 * 4096;
    if (p->nvshmem_bytes != data + signals)
      FAIL("%s: nvshmem_bytes %zu, expected %zu shares + %zu signals", what, p->nvshmem_bytes,
           data, signals);
  }
  if (p->control_bytes < (size_t)p->grid_size * 16 ||
      p->control_bytes > (size_t)p->grid_size * 64 + 4096)
    FAIL("%s: control_bytes %zu for grid %d", what, p->control_bytes, p->grid_size);
}

static int plan_equal(const mixcomm_workspace_plan_t* a, const mixcomm_workspace_plan_t* b) {
  return a->grid_size == b->grid_size && a->max_block_size == b->max_block_size &&
         a->ring_slots == b->ring_slots && a->vmm_rows == b->vmm_rows &&
         a->nvshmem_rows == b->nvshmem_rows && a->vmm_slot_bytes == b->vmm_slot_bytes &&
         a->vmm_bytes == b->vmm_bytes && a->nvshmem_slot_bytes == b->nvshmem_slot_bytes &&
         a->nvshmem_bytes == b->nvshmem_bytes && a->control_bytes == b->control_bytes;
}

TEST_IMPL(core_plan_layout) {
  static const int shapes[][6] = {
      /* W, L, ltp, ldp, itp, idp */
      {1, 1, 0, 0, 0, 0},  {2, 2, 0, 0, 0, 0},  {8, 8, 0, 0, 0, 0},  {8, 8, 1, 0, 0, 0},
      {8, 8, 4, 0, 0, 0},  {6, 6, 3, 2, 0, 0},  {3, 3, 0, 0, 0, 0},  {16, 16, 0, 0, 0, 0},
      {16, 8, 0, 0, 2, 0}, {16, 8, 4, 0, 0, 2}, {12, 6, 3, 0, 0, 0}, {32, 4, 0, 0, 0, 0},
      {32, 32, 0, 0, 0, 0}, {4, 1, 0, 0, 0, 0}, {24, 8, 1, 0, 3, 0}};
  static const int grids[] = {1, 7, 66, 132, 133};
  static const int max_blocks[] = {0, 256, 512, 1024, 2048};
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    const int* sh = shapes[s];
    for (size_t g = 0; g < sizeof grids / sizeof grids[0]; g++) {
      for (size_t mb = 0; mb < sizeof max_blocks / sizeof max_blocks[0]; mb++) {
        mixcomm_workspace_plan_t p[MIXCOMM_NUM_DTYPES], p2;
        for (int d = 0; d < MIXCOMM_NUM_DTYPES; d++) {
          mixcomm_config_t c = plan_config(sh[0], sh[1], sh[2], sh[3], sh[4], sh[5], 0,
                                           (mixcomm_dtype_t)d, grids[g], max_blocks[mb], 256);
          ASSERT_OK(mixcomm_workspace_plan(&c, 0, &p[d]));
          check_plan_layout(&p[d], &c);
          /* The dtype does not change the workspace. */
          if (!plan_equal(&p[d], &p[0]))
            FAIL("shape %zu: plan differs between dtype 0 and %d", s, d);
          /* Every rank of the job plans the same workspace. */
          mixcomm_config_t last = plan_config(sh[0], sh[1], sh[2], sh[3], sh[4], sh[5],
                                              sh[0] - 1, (mixcomm_dtype_t)d, grids[g],
                                              max_blocks[mb], 256);
          ASSERT_OK(mixcomm_workspace_plan(&last, 0, &p2));
          if (!plan_equal(&p2, &p[0]))
            FAIL("shape %zu: the last rank plans another workspace than rank 0", s);
        }
        /* Linear in the grid size: twice the CTAs, twice the shares, same share size. */
        mixcomm_config_t c2 = plan_config(sh[0], sh[1], sh[2], sh[3], sh[4], sh[5], 0,
                                          MIXCOMM_FLOAT16, 2 * grids[g], max_blocks[mb], 256);
        ASSERT_OK(mixcomm_workspace_plan(&c2, 0, &p2));
        ASSERT_EQ(p2.vmm_slot_bytes, p[0].vmm_slot_bytes);
        ASSERT_EQ(p2.vmm_bytes, 2 * p[0].vmm_bytes);
        ASSERT_EQ(p2.nvshmem_slot_bytes, p[0].nvshmem_slot_bytes);
        ASSERT(p2.nvshmem_bytes >= p[0].nvshmem_bytes);
        ASSERT(p2.control_bytes >= p[0].control_bytes);
      }
    }
  }
  /* A worked example: 8 ranks of tp 8, 132 CTAs, no cap: two-shot needs 2 x 8 rows of 1024
   * vectors per CTA: 256 B of tags + 16 x 16 KiB. */
  mixcomm_config_t c = plan_config(8, 8, 0, 0, 0, 0, 0, MIXCOMM_BFLOAT16, 132, 0, 256);
  mixcomm_workspace_plan_t p;
  ASSERT_OK(mixcomm_workspace_plan(&c, 0, &p));
  ASSERT_EQ(p.vmm_rows, 16);
  ASSERT_EQ(p.vmm_slot_bytes, 256 + 16 * 1024 * 16);
  ASSERT_EQ(p.vmm_bytes, (size_t)MIXCOMM_RING_SLOTS * 132 * (256 + 16 * 1024 * 16));
  /* grid_size 0 takes the SM count given by the caller. */
  c.grid_size = 0;
  ASSERT_OK(mixcomm_workspace_plan(&c, 78, &p));
  ASSERT_EQ(p.grid_size, 78);
  return 0;
}

/* The workspace depends on the node shape only: the same node shape gives the same node
 * workspace on 1, 2, 3 or 4 nodes, and the same symmetric heap on 2, 3 or 4 nodes. */
TEST_IMPL(core_plan_node_count) {
  static const int nodes[][2] = {/* L, ltp */ {1, 1}, {2, 2}, {4, 1}, {4, 2}, {8, 8}, {8, 2},
                                 {6, 3}, {16, 4}};
  for (size_t k = 0; k < sizeof nodes / sizeof nodes[0]; k++) {
    const int L = nodes[k][0], ltp = nodes[k][1];
    mixcomm_workspace_plan_t one, multi[3];
    memset(multi, 0, sizeof multi);
    mixcomm_config_t c = plan_config(L, L, ltp, 0, 0, 0, 0, MIXCOMM_BFLOAT16, 132, 0, 256);
    ASSERT_OK(mixcomm_workspace_plan(&c, 0, &one));
    for (int I = 2; I <= 4; I++) {
      /* Inter-node split: all tp, then all dp. */
      for (int split = 0; split < 2; split++) {
        mixcomm_config_t m = plan_config(I * L, L, ltp, 0, split ? 1 : 0, 0, 0,
                                         MIXCOMM_BFLOAT16, 132, 0, 256);
        mixcomm_workspace_plan_t p;
        ASSERT_OK(mixcomm_workspace_plan(&m, 0, &p));
        check_plan_layout(&p, &m);
        /* Across nodes the node workspace has the one-node rows, and at least two per local
         * rank (the multi-node two-shot kernels tag two rounds); at these few nodes every mode
         * fits a 32-thread step in those, so never more per extra node (many nodes:
         * tests/unit/test_wire.c). */
        const int rows = one.vmm_rows > 2 * L ? one.vmm_rows : 2 * L;
        if (p.vmm_rows != rows)
          FAIL("node of %d (ltp %d): %d nodes plan vmm_rows %d but expected %d (one node: %d)",
               L, ltp, I, p.vmm_rows, rows, one.vmm_rows);
        if (I == 2 && split == 0)
          multi[0] = p;
        else if (p.nvshmem_slot_bytes != multi[0].nvshmem_slot_bytes ||
                 p.nvshmem_rows != multi[0].nvshmem_rows)
          /* Only the signal words (8 B per node, slot and CTA) grow with the node count. */
          FAIL("node of %d: %d nodes (split %d) plan %zu B symmetric shares, 2 nodes %zu B", L,
               I, split, p.nvshmem_slot_bytes, multi[0].nvshmem_slot_bytes);
      }
    }
  }
  return 0;
}

TEST_IMPL(core_plan_invalid) {
  mixcomm_workspace_plan_t p, before;
  memset(&p, 0x5a, sizeof p);
  before = p;
  static const struct {
    int max_block, min_block, grid;
    const char* needle;
  } bad[] = {
      {33, 256, 132, "max_block_size=33"},  {16, 256, 132, "max_block_size=16"},
      {-32, 256, 132, "max_block_size=-32"}, {1000, 256, 132, "max_block_size=1000"},
      {128, 256, 132, "max_block_size=128"}, {0, 0, 132, "min_block_size=0"},
      {0, 48, 132, "min_block_size=48"},    {0, 2048, 132, "min_block_size=2048"},
      {0, -256, 132, "min_block_size=-256"}, {0, 256, -1, "grid_size=-1"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    mixcomm_config_t c = plan_config(8, 8, 0, 0, 0, 0, 0, MIXCOMM_FLOAT16, bad[i].grid,
                                     bad[i].max_block, bad[i].min_block);
    mixcomm_status_t st = mixcomm_workspace_plan(&c, 0, &p);
    if (st != MIXCOMM_ERR_INVALID_ARGUMENT || !strstr(mixcomm_last_error(), bad[i].needle))
      FAIL("case %zu: %s \"%s\", expected INVALID_ARGUMENT naming %s", i,
           mixcomm_status_name(st), mixcomm_last_error(), bad[i].needle);
    ASSERT(memcmp(&p, &before, sizeof p) == 0);
  }
  /* Limits that are fine: max == min, 32-thread blocks. */
  mixcomm_config_t c = plan_config(8, 8, 0, 0, 0, 0, 0, MIXCOMM_FLOAT16, 10, 256, 256);
  ASSERT_OK(mixcomm_workspace_plan(&c, 0, &p));
  ASSERT_EQ(p.max_block_size, 256);
  c = plan_config(8, 8, 0, 0, 0, 0, 0, MIXCOMM_FLOAT16, 10, 32, 32);
  ASSERT_OK(mixcomm_workspace_plan(&c, 0, &p));
  ASSERT_EQ(p.max_block_size, 32);
  /* Bad dtype, bad topology, NULL. */
  c = plan_config(8, 8, 0, 0, 0, 0, 0, (mixcomm_dtype_t)7, 10, 0, 256);
  ASSERT_ERR(mixcomm_workspace_plan(&c, 0, &p), MIXCOMM_ERR_INVALID_ARGUMENT, "dtype=7");
  c = plan_config(8, 4, 3, 0, 0, 0, 0, MIXCOMM_FLOAT16, 10, 0, 256);
  ASSERT_ERR(mixcomm_workspace_plan(&c, 0, &p), MIXCOMM_ERR_INVALID_ARGUMENT, "local_tp_size=3");
  c = plan_config(8, 4, 0, 0, 0, 0, 0, MIXCOMM_FLOAT16, 10, 0, 256);
  c.inter_size = 3;
  ASSERT_ERR(mixcomm_workspace_plan(&c, 0, &p), MIXCOMM_ERR_INVALID_ARGUMENT, "inter_size=3");
  ASSERT_EQ(mixcomm_workspace_plan(NULL, 0, &p), MIXCOMM_ERR_INVALID_ARGUMENT);
  ASSERT_EQ(mixcomm_workspace_plan(&c, 0, NULL), MIXCOMM_ERR_INVALID_ARGUMENT);
  return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Geometry                                                                                   */
/* ---------------------------------------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}
static int64_t rng_range(int64_t lo, int64_t hi) { /* inclusive */
  return lo + (int64_t)(rng() % (uint64_t)(hi - lo + 1));
}

TEST_IMPL(core_geometry_random) {
  static const int shapes[][6] = {
      {1, 1, 0, 0, 0, 0},  {2, 2, 0, 0, 0, 0},  {8, 8, 0, 0, 0, 0},  {8, 8, 1, 0, 0, 0},
      {8, 8, 4, 0, 0, 0},  {6, 6, 3, 2, 0, 0},  {3, 3, 0, 0, 0, 0},  {16, 16, 0, 0, 0, 0},
      {16, 8, 0, 0, 2, 0}, {16, 8, 4, 0, 0, 2}, {12, 6, 3, 0, 0, 0}, {32, 4, 0, 0, 0, 0},
      {4, 1, 0, 0, 0, 0},  {24, 8, 1, 0, 3, 0}, {64, 8, 2, 0, 4, 0}, {16, 2, 0, 0, 8, 0}};
  static const mixcomm_mode_t fused[] = {MIXCOMM_MODE_FUSED_OPT_WAITS_UC,
                                         MIXCOMM_MODE_FUSED_OPT_BYTES1_UC,
                                         MIXCOMM_MODE_FUSED_OPT_BYTES2_UC};
  const mixcomm_caps_t all_on = {0, 1, 1, 1, 0}; /* judge fused modes as an NVSHMEM build */
  int ok = 0, zero = 0;
  for (int iter = 0; iter < 400000; iter++) {
    const int* sh = shapes[rng() % (sizeof shapes / sizeof shapes[0])];
    mixcomm_topology_t t = resolved(sh[0], sh[1], sh[2], sh[3], sh[4], sh[5]);
    const mixcomm_mode_t mode = fused[rng() % 3];
    if (!mixcomm_topology_mode_valid(&t, &all_on, mode, NULL))
      continue;
    mixcomm_op_t op = (mixcomm_op_t)(rng() % MIXCOMM_NUM_OPS);
    if (!mixcomm_topology_op_valid(&t, op))
      continue;
    const mixcomm_dtype_t dtype = (mixcomm_dtype_t)(rng() % MIXCOMM_NUM_DTYPES);
    const size_t esize = mixcomm_dtype_size(dtype);
    const int grid_size = (int)rng_range(1, 200);
    const int max_block = (rng() % 3 == 0) ? 0 : 32 * (int)rng_range(1, 40);
    const int block_limit = (max_block != 0 && max_block < 1024) ? max_block : 1024;
    const int min_block = 32 * (int)rng_range(1, block_limit / 32);
    const int min_num_steps = (int)rng_range(1, 8);
    mixcomm_config_t c = plan_config(sh[0], sh[1], sh[2], sh[3], sh[4], sh[5], 0, dtype,
                                     grid_size, max_block, min_block);
    mixcomm_workspace_plan_t plan;
    ASSERT_OK(mixcomm_workspace_plan(&c, 0, &plan));

    /* Vector counts spread over many magnitudes, zero included. */
    int64_t vecs;
    switch (rng() % 5) {
      case 0: vecs = rng_range(0, 3); break;
      case 1: vecs = rng_range(0, 1000); break;
      case 2: vecs = rng_range(1000, 1000000); break;
      case 3: vecs = rng_range(1000000, 100000000); break;
      default: vecs = rng_range(100000000, 4000000000ll); break;
    }
    const int64_t numel = vecs * 16 / (int64_t)esize;
    mixcomm__geometry_t g, g2;
    memset(&g, 0x6b, sizeof g);
    mixcomm_status_t st =
        mixcomm__geometry(&plan, &t, op, mode, esize, numel, min_block, min_num_steps, &g);
    /* Never unsupported for a valid mode: the plan holds a 32-thread step of each. */
    if (st != MIXCOMM_SUCCESS)
      FAIL("geometry %s: %s", mixcomm_status_name(st), mixcomm_last_error());
    ok++;
    ASSERT_OK(
        mixcomm__geometry(&plan, &t, op, mode, esize, numel, min_block, min_num_steps, &g2));
    ASSERT(memcmp(&g, &g2, sizeof g) == 0 || (g.vecs == g2.vecs && g.span == g2.span &&
                                              g.grid == g2.grid && g.block == g2.block &&
                                              g.steps == g2.steps && g.chunks == g2.chunks));
    const int chunks = mode == MIXCOMM_MODE_FUSED_OPT_BYTES1_UC   ? t.local_tp_size
                       : mode == MIXCOMM_MODE_FUSED_OPT_BYTES2_UC ? t.tp_size
                                                                  : 1;
    char what[200];
    snprintf(what, sizeof what,
             "W=%d L=%d tp=%d dp=%d %s %s vecs=%lld grid_size=%d max_block=%d min_block=%d "
             "min_steps=%d -> grid %d span %lld block %d steps %d chunks %d",
             t.world_size, t.local_size, t.tp_size, t.dp_size, mixcomm_op_name(op),
             mixcomm_mode_name(mode), (long long)vecs, grid_size, max_block, min_block,
             min_num_steps, g.grid, (long long)g.span, g.block, g.steps, g.chunks);
    if (g.vecs != vecs || g.chunks != chunks)
      FAIL("%s: vecs or chunks wrong", what);
    if (vecs == 0) {
      if (g.grid != 0)
        FAIL("%s: zero vectors must launch nothing", what);
      zero++;
      continue;
    }
    if (g.grid < 1 || g.grid > plan.grid_size)
      FAIL("%s: grid outside [1, plan grid]", what);
    if (g.span < 1 || g.span % chunks != 0)
      FAIL("%s: span not a positive multiple of chunks", what);
    if ((int64_t)g.grid * g.span < vecs)
      FAIL("%s: the CTAs do not cover the vectors", what);
    if ((int64_t)(g.grid - 1) * g.span >= vecs)
      FAIL("%s: a CTA has nothing to do", what);
    if (g.block % 32 != 0 || g.block < 32 || g.block > plan.max_block_size)
      FAIL("%s: block not a multiple of 32 in [32, %d]", what, plan.max_block_size);
    if (g.steps < 1 || (int64_t)g.steps * g.block * g.chunks < g.span)
      FAIL("%s: steps x block x chunks does not cover the span", what);
    /* No step wastes a whole warp. */
    const int64_t m = g.span / chunks;
    if (g.block >= (m + g.steps - 1) / g.steps + 32)
      FAIL("%s: block larger than needed", what);
    /* On one node the plan fits every single-node algorithm at full block size, so a CTA
     * with at most min_block_size vectors per chunk runs in one step. */
    if (t.inter_size == 1 && m <= min_block && g.steps != 1)
      FAIL("%s: a small message took %d steps", what, g.steps);
  }
  ASSERT(ok > 50000);
  ASSERT(zero > 100);
  return 0;
}

TEST_IMPL(core_geometry_invalid) {
  mixcomm_topology_t t = resolved(8, 8, 0, 0, 0, 0);
  mixcomm_config_t c = plan_config(8, 8, 0, 0, 0, 0, 0, MIXCOMM_FLOAT16, 132, 0, 256);
  mixcomm_workspace_plan_t plan;
  ASSERT_OK(mixcomm_workspace_plan(&c, 0, &plan));
  mixcomm__geometry_t g;
  /* 7 fp16 elements are 14 bytes: not whole vectors. */
  ASSERT_NE(mixcomm__geometry(&plan, &t, MIXCOMM_OP_ALLREDUCE, MIXCOMM_MODE_FUSED_OPT_WAITS_UC,
                              2, 7, 256, 4, &g),
            MIXCOMM_SUCCESS);
  ASSERT_NE(mixcomm__geometry(&plan, &t, MIXCOMM_OP_ALLREDUCE, MIXCOMM_MODE_FUSED_OPT_WAITS_UC,
                              4, -4, 256, 4, &g),
            MIXCOMM_SUCCESS);
  /* A worked example: 1 MiB of bf16 over 132 CTAs, one-shot: 65536 vectors, 497 per CTA. */
  ASSERT_OK(mixcomm__geometry(&plan, &t, MIXCOMM_OP_ALLREDUCE, MIXCOMM_MODE_FUSED_OPT_WAITS_UC,
                              2, 1 << 19, 256, 4, &g));
  ASSERT_EQ(g.vecs, 65536);
  ASSERT_EQ(g.chunks, 1);
  ASSERT_EQ(g.span, 497);
  ASSERT_EQ(g.grid, 132);
  ASSERT_EQ(g.steps, 2);
  ASSERT_EQ(g.block, 256);
  return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Run validation                                                                             */
/* ---------------------------------------------------------------------------------------- */

/* Fake device addresses: validation never dereferences them. */
#define ADDR(x) ((void*)(uintptr_t)(x))
static const uintptr_t BASE = (uintptr_t)1 << 40;

typedef struct named_topology {
  const char* name;
  int W, L, ltp, ldp, itp, idp;
} named_topology_t;

static const named_topology_t kTopos[] = {
    {"pure TP", 4, 4, 0, 0, 0, 0},        {"pure DP", 4, 4, 1, 0, 0, 0},
    {"mixed", 8, 4, 2, 0, 0, 0},          {"world 1", 1, 1, 0, 0, 0, 0},
    {"mixed 2 nodes", 12, 6, 3, 0, 0, 0}, {"dp across nodes", 8, 2, 2, 0, 1, 0},
};
#define NUM_TOPOS ((int)(sizeof kTopos / sizeof kTopos[0]))

static mixcomm_topology_t topo_of(const named_topology_t* n) {
  return resolved(n->W, n->L, n->ltp, n->ldp, n->itp, n->idp);
}

static int is_gather(int op) {
  return op == MIXCOMM_OP_ALLGATHER || op == MIXCOMM_OP_ALLREDUCE_ALLGATHER;
}
static int is_scatter(int op) {
  return op == MIXCOMM_OP_REDUCESCATTER || op == MIXCOMM_OP_REDUCESCATTER_ALLREDUCE;
}

TEST_IMPL(core_validate_op) {
  mixcomm__run_shape_t shape;
  const void* in = ADDR(BASE);
  void* out = ADDR(BASE + (1 << 20));
  /* Pure TP: only ALLREDUCE; the message names the op and the valid one. */
  mixcomm_topology_t t = topo_of(&kTopos[0]);
  ASSERT_ERR(mixcomm__validate_run(&t, MIXCOMM_FLOAT16, MIXCOMM_OP_ALLGATHER, in, out, 4, 8,
                                   &shape),
             MIXCOMM_ERR_INVALID_ARGUMENT, "ALLGATHER");
  ASSERT_CONTAINS(mixcomm_last_error(), "ALLREDUCE");
  ASSERT_ERR(mixcomm__validate_run(&t, MIXCOMM_FLOAT16, MIXCOMM_OP_REDUCESCATTER_ALLREDUCE, in,
                                   out, 4, 8, &shape),
             MIXCOMM_ERR_INVALID_ARGUMENT, "REDUCESCATTER_ALLREDUCE");
  ASSERT_CONTAINS(mixcomm_last_error(), "tp_size=4");
  /* Pure DP: the valid ops are listed. */
  t = topo_of(&kTopos[1]);
  ASSERT_ERR(mixcomm__validate_run(&t, MIXCOMM_FLOAT16, MIXCOMM_OP_ALLREDUCE, in, out, 4, 8,
                                   &shape),
             MIXCOMM_ERR_INVALID_ARGUMENT, "ALLGATHER");
  ASSERT_CONTAINS(mixcomm_last_error(), "REDUCESCATTER");
  ASSERT_CONTAINS(mixcomm_last_error(), "dp_size=4");
  /* Mixed: both fused ops listed. */
  t = topo_of(&kTopos[2]);
  ASSERT_ERR(mixcomm__validate_run(&t, MIXCOMM_FLOAT16, MIXCOMM_OP_ALLREDUCE, in, out, 4, 8,
                                   &shape),
             MIXCOMM_ERR_INVALID_ARGUMENT, "ALLREDUCE_ALLGATHER");
  ASSERT_CONTAINS(mixcomm_last_error(), "REDUCESCATTER_ALLREDUCE");
  ASSERT_ERR(mixcomm__validate_run(&t, MIXCOMM_FLOAT16, MIXCOMM_OP_ALLGATHER, in, out, 4, 8,
                                   &shape),
             MIXCOMM_ERR_INVALID_ARGUMENT, "ALLREDUCE_ALLGATHER");
  /* Not ops at all; not a dtype. */
  ASSERT_ERR(mixcomm__validate_run(&t, MIXCOMM_FLOAT16, (mixcomm_op_t)5, in, out, 4, 8, &shape),
             MIXCOMM_ERR_INVALID_ARGUMENT, "op=5");
  ASSERT_ERR(mixcomm__validate_run(&t, MIXCOMM_FLOAT16, (mixcomm_op_t)-1, in, out, 4, 8, &shape),
             MIXCOMM_ERR_INVALID_ARGUMENT, "op=-1");
  ASSERT_ERR(mixcomm__validate_run(&t, (mixcomm_dtype_t)9, MIXCOMM_OP_ALLREDUCE_ALLGATHER, in,
                                   out, 4, 8, &shape),
             MIXCOMM_ERR_INVALID_ARGUMENT, "dtype=9");
  /* Every (topology, op) pair: accepted exactly when the op table says the op is valid. */
  for (int k = 0; k < NUM_TOPOS; k++) {
    t = topo_of(&kTopos[k]);
    const int tp = t.tp_size, dp = t.dp_size;
    for (int op = 0; op < MIXCOMM_NUM_OPS; op++) {
      const int valid = op == MIXCOMM_OP_ALLREDUCE ? dp == 1
                        : (op == MIXCOMM_OP_ALLGATHER || op == MIXCOMM_OP_REDUCESCATTER)
                            ? tp == 1
                            : tp > 1 && dp > 1;
      mixcomm_status_t st = mixcomm__validate_run(&t, MIXCOMM_FLOAT32, (mixcomm_op_t)op, in,
                                                  out, (int64_t)dp * 2, 4, &shape);
      if ((st == MIXCOMM_SUCCESS) != valid)
        FAIL("%s op %d: %s (%s)", kTopos[k].name, op, mixcomm_status_name(st),
             mixcomm_last_error());
      if (!valid)
        ASSERT_CONTAINS(mixcomm_last_error(), mixcomm_op_name((mixcomm_op_t)op));
    }
  }
  return 0;
}

TEST_IMPL(core_validate_shapes) {
  mixcomm__run_shape_t shape;
  /* Row bytes must be whole 16-byte vectors, for every dtype. */
  mixcomm_topology_t t = topo_of(&kTopos[0]);
  for (int d = 0; d < MIXCOMM_NUM_DTYPES; d++) {
    const int64_t esize = d == MIXCOMM_FLOAT32 ? 4 : 2;
    for (int64_t re = 1; re <= 80; re++) {
      const void* in = ADDR(BASE);
      void* out = ADDR(BASE + (1 << 20));
      mixcomm_status_t st = mixcomm__validate_run(&t, (mixcomm_dtype_t)d, MIXCOMM_OP_ALLREDUCE,
                                                  in, out, 3, re, &shape);
      const int ok = (re * esize) % 16 == 0;
      if ((st == MIXCOMM_SUCCESS) != ok)
        FAIL("dtype %d, row_elems %lld: %s (%s)", d, (long long)re, mixcomm_status_name(st),
             mixcomm_last_error());
      if (!ok) {
        char needle[32];
        snprintf(needle, sizeof needle, "row_elems=%lld", (long long)re);
        ASSERT_CONTAINS(mixcomm_last_error(), needle);
      }
    }
  }
  const void* in = ADDR(BASE);
  void* out = ADDR(BASE + (1 << 24));
  ASSERT_OK(mixcomm__validate_run(&t, MIXCOMM_FLOAT32, MIXCOMM_OP_ALLREDUCE, in, out, 1, 4,
                                  &shape));
  ASSERT_ERR(mixcomm__validate_run(&t, MIXCOMM_FLOAT32, MIXCOMM_OP_ALLREDUCE, in, out, 1, 2,
                                   &shape),
             MIXCOMM_ERR_INVALID_ARGUMENT, "row_elems=2");
  ASSERT_OK(mixcomm__validate_run(&t, MIXCOMM_FLOAT16, MIXCOMM_OP_ALLREDUCE, in, out, 1, 8,
                                  &shape));
  ASSERT_ERR(mixcomm__validate_run(&t, MIXCOMM_FLOAT16, MIXCOMM_OP_ALLREDUCE, in, out, 1, 12,
                                   &shape),
             MIXCOMM_ERR_INVALID_ARGUMENT, "row_elems=12");
  ASSERT_ERR(mixcomm__validate_run(&t, MIXCOMM_BFLOAT16, MIXCOMM_OP_ALLREDUCE, in, out, 1, 12,
                                   &shape),
             MIXCOMM_ERR_INVALID_ARGUMENT, "row_elems=12");
  /* rows < 0, row_elems < 1. */
  ASSERT_ERR(mixcomm__validate_run(&t, MIXCOMM_FLOAT16, MIXCOMM_OP_ALLREDUCE, in, out, -1, 8,
                                   &shape),
             MIXCOMM_ERR_INVALID_ARGUMENT, "rows=-1");
  ASSERT_ERR(mixcomm__validate_run(&t, MIXCOMM_FLOAT16, MIXCOMM_OP_ALLREDUCE, in, out, 4, 0,
                                   &shape),
             MIXCOMM_ERR_INVALID_ARGUMENT, "row_elems=0");
  ASSERT_ERR(mixcomm__validate_run(&t, MIXCOMM_FLOAT16, MIXCOMM_OP_ALLREDUCE, in, out, 4, -8,
                                   &shape),
             MIXCOMM_ERR_INVALID_ARGUMENT, "row_elems=-8");

  /* RS-type ops need rows divisible by dp_size. */
  t = topo_of(&kTopos[1]); /* dp 4 */
  ASSERT_ERR(mixcomm__validate_run(&t, MIXCOMM_FLOAT16, MIXCOMM_OP_REDUCESCATTER, in, out, 6, 8,
                                   &shape),
             MIXCOMM_ERR_INVALID_ARGUMENT, "rows=6");
  ASSERT_CONTAINS(mixcomm_last_error(), "dp_size=4");
  ASSERT_OK(mixcomm__validate_run(&t, MIXCOMM_FLOAT16, MIXCOMM_OP_REDUCESCATTER, in, out, 8, 8,
                                  &shape));
  ASSERT_OK(mixcomm__validate_run(&t, MIXCOMM_FLOAT16, MIXCOMM_OP_ALLGATHER, in, out, 3, 8,
                                  &shape));
  t = topo_of(&kTopos[2]); /* tp 4 x dp 2 */
  ASSERT_ERR(mixcomm__validate_run(&t, MIXCOMM_FLOAT16, MIXCOMM_OP_REDUCESCATTER_ALLREDUCE, in,
                                   out, 3, 8, &shape),
             MIXCOMM_ERR_INVALID_ARGUMENT, "rows=3");
  ASSERT_OK(mixcomm__validate_run(&t, MIXCOMM_FLOAT16, MIXCOMM_OP_ALLREDUCE_ALLGATHER, in, out,
                                  3, 8, &shape));

  /* Output rows and byte counts, every topology, op, dtype and a few row counts. */
  for (int k = 0; k < NUM_TOPOS; k++) {
    t = topo_of(&kTopos[k]);
    const int dp = t.dp_size;
    for (int op = 0; op < MIXCOMM_NUM_OPS; op++) {
      if (!mixcomm_topology_op_valid(&t, (mixcomm_op_t)op))
        continue;
      for (int d = 0; d < MIXCOMM_NUM_DTYPES; d++) {
        const int64_t esize = d == MIXCOMM_FLOAT32 ? 4 : 2;
        for (int64_t rows = 0; rows <= 5 * dp; rows += dp) {
          const int64_t re = 16 / esize * 3;
          memset(&shape, 0x6d, sizeof shape);
          ASSERT_OK(mixcomm__validate_run(&t, (mixcomm_dtype_t)d, (mixcomm_op_t)op, in, out,
                                          rows, re, &shape));
          const int64_t out_rows = is_gather(op) ? rows * dp : is_scatter(op) ? rows / dp : rows;
          const int64_t block_rows = is_scatter(op) ? out_rows : rows;
          if (shape.out_rows != out_rows || shape.in_bytes != (uint64_t)(rows * re * esize) ||
              shape.out_bytes != (uint64_t)(out_rows * re * esize) ||
              shape.numel_block != block_rows * re)
            FAIL("%s %s rows %lld: out_rows %lld in %llu out %llu numel_block %lld", kTopos[k].name,
                 mixcomm_op_name((mixcomm_op_t)op), (long long)rows, (long long)shape.out_rows,
                 (unsigned long long)shape.in_bytes, (unsigned long long)shape.out_bytes,
                 (long long)shape.numel_block);
        }
      }
    }
  }
  return 0;
}

TEST_IMPL(core_validate_pointers) {
  mixcomm__run_shape_t shape;
  for (int k = 0; k < NUM_TOPOS; k++) {
    mixcomm_topology_t t = topo_of(&kTopos[k]);
    const int dp = t.dp_size;
    for (int op = 0; op < MIXCOMM_NUM_OPS; op++) {
      if (!mixcomm_topology_op_valid(&t, (mixcomm_op_t)op))
        continue;
      const mixcomm_op_t o = (mixcomm_op_t)op;
      const int64_t rows = 2 * dp, re = 64; /* fp32: 256 bytes per row */
      const uintptr_t ib = (uintptr_t)rows * re * 4;
      const uintptr_t ob = (uintptr_t)(is_gather(op)    ? rows * dp
                                       : is_scatter(op) ? rows / dp
                                                        : rows) *
                           re * 4;
      const uintptr_t in = BASE;
      /* NULL with rows > 0 fails; with rows == 0 it is fine. */
      ASSERT_ERR(mixcomm__validate_run(&t, MIXCOMM_FLOAT32, o, NULL, ADDR(in + ib), rows, re,
                                       &shape),
                 MIXCOMM_ERR_INVALID_ARGUMENT, "x_in");
      ASSERT_ERR(mixcomm__validate_run(&t, MIXCOMM_FLOAT32, o, ADDR(in), NULL, rows, re, &shape),
                 MIXCOMM_ERR_INVALID_ARGUMENT, "x_out");
      ASSERT_ERR(mixcomm__validate_run(&t, MIXCOMM_FLOAT32, o, NULL, NULL, dp, re, &shape),
                 MIXCOMM_ERR_INVALID_ARGUMENT, "NULL");
      ASSERT_ERR(mixcomm__validate_run(&t, MIXCOMM_FLOAT32, o, ADDR(in + 8), ADDR(in + 4 * ib),
                                       dp, re, &shape),
                 MIXCOMM_ERR_INVALID_ARGUMENT, "x_in");
      ASSERT_OK(mixcomm__validate_run(&t, MIXCOMM_FLOAT32, o, NULL, NULL, 0, re, &shape));
      ASSERT_EQ(shape.out_rows, 0);
      ASSERT_EQ(shape.in_bytes, 0);
      ASSERT_EQ(shape.out_bytes, 0);
      /* Misalignment by 1, 2, 4, 8 bytes of either pointer. */
      static const int offs[] = {1, 2, 4, 8, 12};
      for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
        const uintptr_t far = in + 4 * (ib + ob) + 4096;
        ASSERT_ERR(mixcomm__validate_run(&t, MIXCOMM_FLOAT32, o, ADDR(in + offs[i]), ADDR(far),
                                         rows, re, &shape),
                   MIXCOMM_ERR_INVALID_ARGUMENT, "x_in");
        ASSERT_CONTAINS(mixcomm_last_error(), "16");
        ASSERT_ERR(mixcomm__validate_run(&t, MIXCOMM_FLOAT32, o, ADDR(in), ADDR(far + offs[i]),
                                         rows, re, &shape),
                   MIXCOMM_ERR_INVALID_ARGUMENT, "x_out");
        ASSERT_CONTAINS(mixcomm_last_error(), "16");
      }
      /* Overlaps: identical, out starting inside in, out ending inside in, one inside the
       * other. */
      const uintptr_t overlapping[] = {in, in + ib - 16, in - ob + 16, in + 16, in - 16};
      for (size_t i = 0; i < sizeof overlapping / sizeof overlapping[0]; i++) {
        mixcomm_status_t st = mixcomm__validate_run(&t, MIXCOMM_FLOAT32, o, ADDR(in),
                                                    ADDR(overlapping[i]), rows, re, &shape);
        if (st != MIXCOMM_ERR_INVALID_ARGUMENT || !contains_ci(mixcomm_last_error(), "overlap"))
          FAIL("%s %s: out at in%+lld: %s (%s), expected an overlap error", kTopos[k].name,
               mixcomm_op_name(o), (long long)(overlapping[i] - in), mixcomm_status_name(st),
               mixcomm_last_error());
      }
      /* Adjacent buffers, both orders: accepted. */
      ASSERT_OK(mixcomm__validate_run(&t, MIXCOMM_FLOAT32, o, ADDR(in), ADDR(in + ib), rows, re,
                                      &shape));
      ASSERT_OK(mixcomm__validate_run(&t, MIXCOMM_FLOAT32, o, ADDR(in), ADDR(in - ob), rows, re,
                                      &shape));
      /* Real host buffers as well. */
      unsigned char* buf = aligned_alloc(16, (size_t)(ib + ob + 64));
      ASSERT(buf != NULL);
      ASSERT_OK(mixcomm__validate_run(&t, MIXCOMM_FLOAT32, o, buf, buf + ib, rows, re, &shape));
      ASSERT_EQ(mixcomm__validate_run(&t, MIXCOMM_FLOAT32, o, buf, buf + ib - 16, rows, re,
                                      &shape),
                MIXCOMM_ERR_INVALID_ARGUMENT);
      free(buf);
    }
  }
  return 0;
}

TEST_IMPL(core_validate_overflow) {
  mixcomm__run_shape_t shape;
  const void* in = ADDR(BASE);
  void* out = ADDR(BASE * 2);
  mixcomm_topology_t t = topo_of(&kTopos[0]);
  /* rows x row bytes overflows int64. */
  ASSERT_EQ(mixcomm__validate_run(&t, MIXCOMM_FLOAT32, MIXCOMM_OP_ALLREDUCE, in, out,
                                  INT64_MAX / 8, 64, &shape),
            MIXCOMM_ERR_INVALID_ARGUMENT);
  ASSERT_CONTAINS(mixcomm_last_error(), "rows=");
  /* row_elems x element size overflows. */
  ASSERT_EQ(mixcomm__validate_run(&t, MIXCOMM_FLOAT32, MIXCOMM_OP_ALLREDUCE, in, out, 1,
                                  INT64_MAX / 2 + 1, &shape),
            MIXCOMM_ERR_INVALID_ARGUMENT);
  /* rows x dp_size overflows for a gather. */
  t = topo_of(&kTopos[1]);
  ASSERT_EQ(mixcomm__validate_run(&t, MIXCOMM_FLOAT16, MIXCOMM_OP_ALLGATHER, in, out,
                                  INT64_MAX / 2 + 1, 8, &shape),
            MIXCOMM_ERR_INVALID_ARGUMENT);
  ASSERT_EQ(mixcomm__validate_run(&t, MIXCOMM_FLOAT16, MIXCOMM_OP_ALLGATHER, in, out,
                                  INT64_MAX / 64, 8, &shape),
            MIXCOMM_ERR_INVALID_ARGUMENT);
  /* A large but representable call passes. */
  ASSERT_OK(mixcomm__validate_run(&t, MIXCOMM_FLOAT16, MIXCOMM_OP_ALLGATHER, in, out,
                                  (int64_t)1 << 20, 8, &shape));
  ASSERT_EQ(shape.out_rows, (int64_t)4 << 20);
  return 0;
}
