/* SPDX-License-Identifier: Apache-2.0
 * The fused epilogue's host side, without a GPU: the initializer, the argument checks of
 * mixcomm_run_epilogue (validate_epilogue.c), the row-aligned geometry (plan.c) and the cost
 * model's epilogue case. The kernels themselves are tested on the GPU (tests/gpu/epilogue.c). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/plan.h"
#include "core/validate.h"
#include "fixtures.h"
#include "harness/task.h"
#include "tune/tune.h"

static test_rng_t gen = {0x2545F4914F6CDD1Dull};

TEST_IMPL(epilogue_initializer) {
  mixcomm_epilogue_t a = MIXCOMM_EPILOGUE_INITIALIZER, b;
  memset(&b, 0x5A, sizeof b);
  mixcomm_epilogue_init(&b);
  ASSERT_EQ(a.struct_size, sizeof(mixcomm_epilogue_t));
  ASSERT_EQ(b.struct_size, sizeof(mixcomm_epilogue_t));
  ASSERT(a.residual_in == NULL && a.residual_out == NULL && a.rms_gamma == NULL &&
         a.norm_out == NULL && a.quant_out == NULL && a.quant_scale == NULL);
  ASSERT(b.residual_in == NULL && b.residual_out == NULL && b.rms_gamma == NULL &&
         b.norm_out == NULL && b.quant_out == NULL && b.quant_scale == NULL);
  ASSERT(a.rms_eps == 1e-6f && b.rms_eps == 1e-6f);
  ASSERT(!mixcomm__epilogue_requested(&a));
  ASSERT(!mixcomm__epilogue_requested(NULL));
  mixcomm_epilogue_init(NULL); /* harmless */
  return 0;
}

/* Runs the two checks mixcomm_run_epilogue makes before touching the GPU. */
static mixcomm_status_t check(const mixcomm_topology_t* t, mixcomm_dtype_t dtype, mixcomm_op_t op,
                              const void* in, void* out, int64_t rows, int64_t row_elems,
                              const mixcomm_epilogue_t* e) {
  mixcomm__run_shape_t shape;
  mixcomm_status_t st =
      mixcomm__validate_run_ex(t, dtype, op, in, out, 1, rows, row_elems, &shape);
  if (st != MIXCOMM_SUCCESS)
    return st;
  return mixcomm__validate_epilogue(t, dtype, op, in, out, rows, row_elems, &shape, e);
}

/* The buffers an epilogue case gives (NULL: not given). */
typedef struct epilogue_buffers {
  const void* residual_in;
  void* residual_out;
  const void* rms_gamma;
  void* norm_out;
  void* quant_out;
  const float* quant_scale;
} epilogue_buffers_t;

static mixcomm_epilogue_t epilogue_with(const epilogue_buffers_t* b) {
  mixcomm_epilogue_t e;
  mixcomm_epilogue_init(&e);
  e.residual_in = b->residual_in;
  e.residual_out = b->residual_out;
  e.rms_gamma = b->rms_gamma;
  e.norm_out = b->norm_out;
  e.quant_out = b->quant_out;
  e.quant_scale = b->quant_scale;
  return e;
}

typedef struct epilogue_case {
  int mixed;       /* 0: the all-reduce topology, 1: the TP x DP one */
  mixcomm_dtype_t dtype;
  mixcomm_op_t op;
  const void* in;
  void* x_out;
  int64_t rows, row_elems;
  epilogue_buffers_t given;
  const char* needle; /* NULL: accepted; else refused with a message containing it */
} epilogue_case_t;

TEST_IMPL(epilogue_validate) {
  const mixcomm_topology_t topos[2] = {tp_topology(2, 2, 0, 0), tp_topology(4, 4, 2, 0)};
  const mixcomm_topology_t* ar = &topos[0];
  const int64_t R = 4, E = 64; /* bf16: 128-byte rows */
  const uintptr_t MB = 1 << 20;
  void* in = ADDR(BASE);
  void* res = ADDR(BASE + 1 * MB);
  void* res_out = ADDR(BASE + 2 * MB);
  void* gamma = ADDR(BASE + 3 * MB);
  void* norm = ADDR(BASE + 4 * MB);
  void* quant = ADDR(BASE + 5 * MB);
  const float* scale = ADDR(BASE + 6 * MB);
  void* x_out = ADDR(BASE + 7 * MB);
  const mixcomm_dtype_t BF = MIXCOMM_BFLOAT16;
  const mixcomm_op_t AR = MIXCOMM_OP_ALLREDUCE, AG = MIXCOMM_OP_ALLREDUCE_ALLGATHER,
                     RS = MIXCOMM_OP_REDUCESCATTER_ALLREDUCE;
  const epilogue_case_t cases[] = {
      /* The common engine call: residual in place plus RMSNorm; also with FP8 and x_out. */
      {0, BF, AR, in, NULL, R, E, {res, res, gamma, norm, NULL, NULL}, NULL},
      {0, BF, AR, in, x_out, R, E, {res, res, gamma, norm, quant, scale}, NULL},
      {1, BF, AG, in, NULL, R, E, {res, res, gamma, norm, quant, scale}, NULL},
      {1, BF, RS, in, NULL, 2 * R, E, {res, res, gamma, norm, quant, scale}, NULL},
      /* Each output alone is accepted; what each output needs is named when it is missing. */
      {0, MIXCOMM_FLOAT32, AR, in, NULL, R, E, {NULL, res_out, NULL, NULL, NULL, NULL}, NULL},
      {0, MIXCOMM_FLOAT16, AR, in, NULL, R, E, {NULL, NULL, gamma, norm, NULL, NULL}, NULL},
      {0, MIXCOMM_FLOAT16, AR, in, NULL, R, E, {NULL, NULL, gamma, NULL, quant, scale}, NULL},
      {0, BF, AR, in, NULL, R, E, {NULL, NULL, NULL, norm, NULL, NULL}, "rms_gamma is NULL"},
      {0, BF, AR, in, NULL, R, E, {NULL, NULL, gamma, NULL, quant, NULL}, "quant_scale is NULL"},
      {0, BF, AR, in, NULL, R, E, {NULL, res_out, NULL, NULL, NULL, scale}, "quant_out is NULL"},
      {0, BF, AR, in, NULL, R, E, {NULL, res_out, gamma, NULL, NULL, NULL},
       "neither norm_out nor quant_out"},
      {0, BF, AR, in, x_out, R, E, {res, NULL, NULL, NULL, NULL, NULL}, "no output uses it"},
      /* quant_scale needs 4-byte alignment only. */
      {0, BF, AR, in, NULL, R, E, {NULL, NULL, gamma, NULL, quant, ADDR(BASE + 6 * MB + 2)},
       "4-byte aligned"},
      {0, BF, AR, in, NULL, R, E, {NULL, NULL, gamma, NULL, quant, ADDR(BASE + 6 * MB + 4)}, NULL},
      /* Overlaps: outputs with anything; a residual in place is the one exception. Rows are 128
       * bytes and R = 4, so a buffer 256 bytes further overlaps, 512 bytes further does not. */
      {0, BF, AR, in, NULL, R, E, {res, ADDR(BASE + 1 * MB + 256), NULL, NULL, NULL, NULL},
       "overlaps"},
      {0, BF, AR, in, NULL, R, E, {res, ADDR(BASE + 1 * MB + 512), NULL, NULL, NULL, NULL}, NULL},
      /* the residual input is read while norm_out is written */
      {0, BF, AR, in, NULL, R, E, {res, ADDR(BASE + 1 * MB + 512), gamma, res, NULL, NULL},
       "norm_out"},
      /* norm_out inside x_in */
      {0, BF, AR, in, NULL, R, E, {res, ADDR(BASE + 1 * MB + 512), gamma, ADDR(BASE + 64), NULL,
       NULL}, "x_in"},
      {0, BF, AR, in, NULL, R, E, {res, ADDR(BASE + 1 * MB + 512), gamma, gamma, NULL, NULL},
       "rms_gamma"},
      /* quant_out inside norm_out (4 x 128 bytes) */
      {0, BF, AR, in, NULL, R, E, {res, ADDR(BASE + 1 * MB + 512), gamma, norm,
       ADDR(BASE + 4 * MB + 256), scale}, "quant_out"},
      /* Gather ops: norm_out holds dp_size * R rows (1 KiB here), residual_out R rows. */
      {1, BF, AG, in, NULL, R, E, {NULL, ADDR(BASE + 4 * MB + 768), gamma, norm, NULL, NULL},
       "overlaps"},
      {1, BF, AG, in, NULL, R, E, {NULL, ADDR(BASE + 4 * MB + 1024), gamma, norm, NULL, NULL},
       NULL},
      /* Scatter ops: everything has the output's R rows (input 2R). */
      {1, BF, RS, in, NULL, 2 * R, E, {NULL, ADDR(BASE + 4 * MB + 512), gamma, norm, NULL, NULL},
       NULL},
      /* The run checks still apply; x_out may be NULL; zero rows need no pointers. */
      {0, BF, AR, ADDR(BASE + 8), NULL, R, E, {NULL, res_out, NULL, NULL, NULL, NULL}, "x_in"},
      {0, BF, AR, in, NULL, R, 12, {NULL, res_out, NULL, NULL, NULL, NULL}, "16-byte vector"},
      {1, BF, RS, in, NULL, 3, E, {NULL, res_out, NULL, NULL, NULL, NULL}, "divisible"},
      /* residual_out misaligned and inside x_in: not looked at for 0 rows */
      {0, BF, AR, NULL, NULL, 0, E, {NULL, ADDR(BASE + 8), NULL, NULL, NULL, NULL}, NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const epilogue_case_t* c = &cases[i];
    const mixcomm_epilogue_t e = epilogue_with(&c->given);
    expect_argument_check(
        i, check(&topos[c->mixed], c->dtype, c->op, c->in, c->x_out, c->rows, c->row_elems, &e),
        c->needle);
  }

  /* rms_eps: negative or NaN refused, 0 allowed; a struct not set up by the initializer. */
  mixcomm_epilogue_t e;
  mixcomm_epilogue_init(&e);
  e.rms_gamma = gamma;
  e.norm_out = norm;
  e.rms_eps = -1.0f;
  ASSERT_ERR(check(ar, BF, AR, in, NULL, R, E, &e), MIXCOMM_ERR_INVALID_ARGUMENT, "rms_eps=-1");
  e.rms_eps = NAN;
  ASSERT_ERR(check(ar, BF, AR, in, NULL, R, E, &e), MIXCOMM_ERR_INVALID_ARGUMENT, "rms_eps");
  e.rms_eps = 0.0f; /* allowed */
  ASSERT_OK(check(ar, BF, AR, in, NULL, R, E, &e));
  e.struct_size = 8;
  ASSERT_ERR(check(ar, BF, AR, in, NULL, R, E, &e), MIXCOMM_ERR_INVALID_ARGUMENT,
             "mixcomm_epilogue_init");

  /* Alignment of every buffer but quant_scale: 16 bytes. */
  const char* names[] = {"residual_in", "residual_out", "rms_gamma", "norm_out", "quant_out"};
  for (int k = 0; k < 5; k++) {
    mixcomm_epilogue_init(&e);
    e.residual_in = k == 0 ? ADDR(BASE + 1 * MB + 8) : res;
    e.residual_out = k == 1 ? ADDR(BASE + 2 * MB + 4) : res_out;
    e.rms_gamma = k == 2 ? ADDR(BASE + 3 * MB + 2) : gamma;
    e.norm_out = k == 3 ? ADDR(BASE + 4 * MB + 8) : norm;
    e.quant_out = k == 4 ? ADDR(BASE + 5 * MB + 1) : quant;
    e.quant_scale = scale;
    ASSERT_ERR(check(ar, BF, AR, in, NULL, R, E, &e), MIXCOMM_ERR_INVALID_ARGUMENT, names[k]);
    ASSERT_CONTAINS(mixcomm_last_error(), "16-byte aligned");
  }
  return 0;
}

/* Every CTA of an epilogue call holds whole rows; otherwise the usual geometry rules. */
TEST_IMPL(epilogue_geometry_rows) {
  static const int shapes[][4] = {{2, 2, 0, 0},  {8, 8, 0, 0},  {8, 8, 4, 0}, {6, 6, 3, 0},
                                  {3, 3, 0, 0},  {16, 16, 0, 0}, {16, 8, 4, 0}, {16, 8, 2, 2},
                                  {4, 1, 0, 0},  {8, 2, 1, 0},   {16, 4, 2, 4}};
  static const mixcomm_mode_t fused[] = {MIXCOMM_MODE_FUSED_OPT_WAITS_UC,
                                         MIXCOMM_MODE_FUSED_OPT_BYTES1_UC,
                                         MIXCOMM_MODE_FUSED_OPT_BYTES2_UC};
  const mixcomm_caps_t all_on = {0, 1, 1, 1, 0};
  int checked = 0, one_cta = 0;
  for (int iter = 0; iter < 200000; iter++) {
    const int* sh = shapes[rng_next(&gen) % (sizeof shapes / sizeof shapes[0])];
    const mixcomm_topology_t t = tp_topology(sh[0], sh[1], sh[2], sh[3]);
    const mixcomm_mode_t mode = fused[rng_next(&gen) % 3];
    const mixcomm_op_t op = (mixcomm_op_t)(rng_next(&gen) % MIXCOMM_NUM_OPS);
    if (!mixcomm_topology_mode_valid(&t, &all_on, mode, NULL) || !mixcomm_topology_op_valid(&t, op))
      continue;
    const mixcomm_dtype_t dtype = (mixcomm_dtype_t)(rng_next(&gen) % MIXCOMM_NUM_DTYPES);
    const int64_t esize = (int64_t)mixcomm_dtype_size(dtype);
    mixcomm_workspace_plan_t plan;
    const int grid = (int)rng_range(&gen, 1, 160);
    const int max_block = rng_next(&gen) % 2 ? 0 : 32 * (int)rng_range(&gen, 8, 32);
    ASSERT_OK(mixcomm__plan_for_topology(&t, grid, max_block, 256, &plan));
    const int64_t row_vecs =
        rng_next(&gen) % 4 == 0 ? rng_range(&gen, 1, 4) : rng_range(&gen, 1, 3000);
    const int64_t rows =
        rng_next(&gen) % 3 == 0 ? rng_range(&gen, 0, 3) : rng_range(&gen, 1, 5000);
    const int64_t row_elems = row_vecs * 16 / esize;
    mixcomm__geometry_t g;
    const mixcomm_status_t st = mixcomm__geometry_rows(&plan, &t, op, mode, (size_t)esize,
                                                       rows * row_elems, row_elems, 256, 4, &g);
    ASSERT_OK(st); /* the plan holds a 32-thread step of every valid mode, across nodes too */
    char what[256];
    snprintf(what, sizeof what, "W=%d L=%d %s %s grid=%d rows=%lld row_vecs=%lld -> grid %d span "
             "%lld block %d steps %d chunks %d", t.world_size, t.local_size, mixcomm_op_name(op),
             mixcomm_mode_name(mode), grid, (long long)rows, (long long)row_vecs, g.grid,
             (long long)g.span, g.block, g.steps, g.chunks);
    if (g.vecs != rows * row_vecs)
      FAIL("%s: vecs", what);
    if (rows == 0) {
      if (g.grid != 0)
        FAIL("%s: zero rows launch nothing", what);
      continue;
    }
    if (g.span % row_vecs != 0)
      FAIL("%s: a CTA span is not whole rows", what);
    if (g.grid < 1 || g.grid > plan.grid_size)
      FAIL("%s: grid outside [1, plan grid]", what);
    if ((int64_t)g.grid * g.span < g.vecs || (int64_t)(g.grid - 1) * g.span >= g.vecs)
      FAIL("%s: CTAs do not cover the rows exactly", what);
    if (g.block % 32 != 0 || g.block < 32 || g.block > plan.max_block_size)
      FAIL("%s: block", what);
    if ((int64_t)g.steps * g.block * g.chunks < g.span)
      FAIL("%s: steps x block x chunks does not cover the span", what);
    /* Rows that fit one step at full block size are done in one step. */
    const int64_t m = (g.span + g.chunks - 1) / g.chunks;
    if (t.inter_size == 1 && m <= plan.max_block_size && g.steps != 1)
      FAIL("%s: a CTA whose rows fit one step took %d", what, g.steps);
    /* As many CTAs as rows allow, up to the plan (across nodes the put fan-out floor gives
     * each CTA more: tests/unit/test_wire.c). */
    const int64_t expect = rows < plan.grid_size ? rows : plan.grid_size;
    if (t.inter_size == 1 && g.grid < (expect + 1) / 2)
      FAIL("%s: only %d CTAs for %lld rows", what, g.grid, (long long)rows);
    one_cta += g.grid == 1;
    checked++;
  }
  ASSERT(checked > 10000);
  ASSERT(one_cta > 10);
  /* Row lengths that do not divide the block are an internal error, never a silent cut. */
  mixcomm_workspace_plan_t plan;
  const mixcomm_topology_t t = tp_topology(2, 2, 0, 0);
  ASSERT_OK(mixcomm__plan_for_topology(&t, 8, 0, 256, &plan));
  mixcomm__geometry_t g;
  ASSERT_ERR(mixcomm__geometry_rows(&plan, &t, MIXCOMM_OP_ALLREDUCE,
                                    MIXCOMM_MODE_FUSED_OPT_WAITS_UC, 2, 96, 12, 256, 4, &g),
             MIXCOMM_ERR_INTERNAL, "rows of 12");
  return 0;
}

/* The NCCL modes pay exactly one more kernel with an epilogue; fused modes nothing more. */
TEST_IMPL(epilogue_cost_model) {
  mixcomm__cost_params_t p;
  mixcomm__cost_params_default(&p);
  ASSERT(p.kernel_launch_us == 3.0);
  const mixcomm_topology_t t = tp_topology(8, 8, 4, 0);
  for (int m = 0; m < MIXCOMM_MODE_AUTOTUNE; m++) {
    for (uint64_t bytes = 8192; bytes <= (64ull << 20); bytes *= 8) {
      const double plain = mixcomm__cost_predict_us(&p, &t, MIXCOMM_OP_ALLREDUCE_ALLGATHER,
                                                    (mixcomm_mode_t)m, bytes);
      const double epi = mixcomm__cost_predict_epilogue_us(&p, &t, MIXCOMM_OP_ALLREDUCE_ALLGATHER,
                                                           (mixcomm_mode_t)m, bytes);
      const double extra =
          m == MIXCOMM_MODE_NCCL_ONE || m == MIXCOMM_MODE_NCCL_TP_DP ? p.kernel_launch_us : 0.0;
      if (fabs(epi - plain - extra) > 1e-9)
        FAIL("mode %d, %llu bytes: epilogue %g, plain %g", m, (unsigned long long)bytes, epi,
             plain);
    }
  }
  /* Epilogue calls only make NCCL dearer: where a plain call picks a fused mode, an epilogue
   * call picks the same one; where they differ, the plain call picked NCCL. */
  mixcomm_caps_t caps;
  mixcomm_caps_default(&caps);
  for (int op = 0; op < MIXCOMM_NUM_OPS; op++) {
    if (!mixcomm_topology_op_valid(&t, (mixcomm_op_t)op))
      continue;
    for (uint64_t bytes = 1024; bytes <= (1ull << 31); bytes *= 2) {
      const mixcomm_mode_t plain = mixcomm__cost_model_choose(&t, &caps, (mixcomm_op_t)op, bytes, 0);
      const mixcomm_mode_t epi = mixcomm__cost_model_choose(&t, &caps, (mixcomm_op_t)op, bytes, 1);
      ASSERT_EQ(plain, mixcomm__cost_model_choice(&t, &caps, (mixcomm_op_t)op, bytes));
      if (plain != epi)
        ASSERT(plain == MIXCOMM_MODE_NCCL_ONE || plain == MIXCOMM_MODE_NCCL_TP_DP);
    }
  }
  return 0;
}
