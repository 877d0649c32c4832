/* SPDX-License-Identifier: Apache-2.0
 * Tests of the topology resolver: every job shape and way of describing it up to 64 ranks
 * gives the documented ranks and sizes, any rank's view can be derived from another's, and
 * every broken rule is an error naming the values.
 *
 * Expected values are computed here from the documented formulas, never by calling the code
 * under test. */
#include <string.h>

#include "fixtures.h"
#include "harness/task.h"

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

typedef struct all_ranks_ctx {
  unsigned char seen[64 * 64];
  long long checked;
} all_ranks_ctx_t;

static void check_all_ranks(int W, int L, const level_form_t* lf, int a, const level_form_t* inf,
                            int b, void* arg) {
  all_ranks_ctx_t* ctx = arg;
  memset(ctx->seen, 0, sizeof ctx->seen);
  for (int w = 0; w < W; w++) {
    mixcomm_topology_t in = topology_input(W, L, w, lf, inf), out;
    memset(&out, 0x3c, sizeof out);
    mixcomm_status_t st = mixcomm_topology_resolve(&in, &out);
    if (st != MIXCOMM_SUCCESS)
      FAIL("W=%d L=%d local (%d,%d) inter (%d,%d) rank %d: %s: %s", W, L, lf->tp_in, lf->dp_in,
           inf->tp_in, inf->dp_in, w, mixcomm_status_name(st), mixcomm_last_error());
    check_rank(&out, W, L, lf->tp, lf->dp, inf->tp, inf->dp, w, "resolve");
    const int tps = lf->tp * inf->tp, dps = lf->dp * inf->dp;
    ASSERT_EQ(tps * dps, W);
    const int cell = out.tp_rank * dps + out.dp_rank;
    ASSERT(out.tp_rank >= 0 && out.tp_rank < tps);
    ASSERT(out.dp_rank >= 0 && out.dp_rank < dps);
    if (ctx->seen[cell])
      FAIL("W=%d L=%d: (tp_rank %d, dp_rank %d) given to two ranks", W, L, out.tp_rank,
           out.dp_rank);
    ctx->seen[cell] = 1;
    /* in and out may alias. */
    if (w == W - 1) {
      mixcomm_topology_t alias = in;
      ASSERT_OK(mixcomm_topology_resolve(&alias, &alias));
      check_rank(&alias, W, L, lf->tp, lf->dp, inf->tp, inf->dp, w, "aliased resolve");
    }
    ctx->checked++;
  }
}

/* Every world size 1..64, every local size dividing it, every form of both levels, every
 * rank: resolve gives the documented ranks, and the (tp_rank, dp_rank) pairs cover the tp x dp
 * grid exactly once. */
TEST_IMPL(core_topology_all_ranks) {
  static all_ranks_ctx_t ctx;
  for_each_topology_form(64, check_all_ranks, &ctx);
  ASSERT(ctx.checked > 100000);
  return 0;
}

static void check_for_rank(int W, int L, const level_form_t* lf, int a, const level_form_t* inf,
                           int b, void* arg) {
  const int base_rank = (a * 7 + b * 3) % W;
  mixcomm_topology_t base = topology_input(W, L, base_rank, lf, inf);
  ASSERT_OK(mixcomm_topology_resolve(&base, &base));
  for (int w = 0; w < W; w++) {
    mixcomm_topology_t out;
    memset(&out, 0x11, sizeof out);
    ASSERT_OK(mixcomm_topology_for_rank(&base, w, &out));
    check_rank(&out, W, L, lf->tp, lf->dp, inf->tp, inf->dp, w, "for_rank");
  }
}

/* mixcomm_topology_for_rank derives any other rank's view from a resolved topology. */
TEST_IMPL(core_topology_for_rank) {
  for_each_topology_form(64, check_for_rank, NULL);
  /* Out-of-range ranks and NULL arguments are errors, not crashes. */
  mixcomm_topology_t t = resolved_topology(8, 4, 2, 0, 0, 0), out, before;
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
  mixcomm_topology_t t = resolved_topology(1, 1, 0, 0, 0, 0);
  ASSERT_EQ(mixcomm_topology_resolve(NULL, &t), MIXCOMM_ERR_INVALID_ARGUMENT);
  ASSERT_EQ(mixcomm_topology_resolve(&t, NULL), MIXCOMM_ERR_INVALID_ARGUMENT);
  ASSERT(mixcomm_last_error()[0] != '\0');
  return 0;
}
