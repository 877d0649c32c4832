/* SPDX-License-Identifier: Apache-2.0
 * The fused epilogue's host side, without a GPU: the initializer, the argument checks of
 * mixcomm_run_epilogue (validate_epilogue.c), the row-aligned geometry (plan.c) and the cost
 * model's epilogue case. The kernels themselves are tested on the GPU (tests/gpu/epilogue.c). */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/plan.h"
#include "core/validate.h"
#include "harness/task.h"
#include "tune/tune.h"

#define ADDR(x) ((void*)(uintptr_t)(x))
static const uintptr_t BASE = (uintptr_t)1 << 40;

static mixcomm_topology_t topo(int W, int L, int ltp, int itp) {
  mixcomm_topology_t t = {0};
  t.world_size = W;
  t.local_size = L;
  t.inter_size = W / L;
  t.local_tp_size = ltp;
  t.inter_tp_size = itp;
  ASSERT_OK(mixcomm_topology_resolve(&t, &t));
  return t;
}

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static uint64_t rng(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}
static int64_t rng_range(int64_t lo, int64_t hi) { /* inclusive */
  return lo + (int64_t)(rng() % (uint64_t)(hi - lo + 1));
}

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

TEST_IMPL(epilogue_validate) {
  const mixcomm_topology_t ar = topo(2, 2, 0, 0), mixed = topo(4, 4, 2, 0);
  const int64_t R = 4, E = 64; /* bf16: 128-byte rows */
  const uintptr_t MB = 1 << 20;
  void* in = ADDR(BASE);
  void* res = ADDR(BASE + 1 * MB);
  void* res_out = ADDR(BASE + 2 * MB);
  void* gamma = ADDR(BASE + 3 * MB);
  void* norm = ADDR(BASE + 4 * MB);
  void* quant = ADDR(BASE + 5 * MB);
  const float* scale = ADDR(BASE + 6 * MB);
  mixcomm_epilogue_t e;

  /* The common engine call: residual in place plus RMSNorm; also with FP8 and x_out. */
  mixcomm_epilogue_init(&e);
  e.residual_in = res;
  e.residual_out = res;
  e.rms_gamma = gamma;
  e.norm_out = norm;
  ASSERT_OK(check(&ar, MIXCOMM_BFLOAT16, MIXCOMM_OP_ALLREDUCE, in, NULL, R, E, &e));
  e.quant_out = quant;
  e.quant_scale = scale;
  ASSERT_OK(check(&ar, MIXCOMM_BFLOAT16, MIXCOMM_OP_ALLREDUCE, in, ADDR(BASE + 7 * MB), R, E, &e));
  ASSERT_OK(check(&mixed, MIXCOMM_BFLOAT16, MIXCOMM_OP_ALLREDUCE_ALLGATHER, in, NULL, R, E, &e));
  ASSERT_OK(check(&mixed, MIXCOMM_BFLOAT16, MIXCOMM_OP_REDUCESCATTER_ALLREDUCE, in, NULL, 2 * R, E,
                  &e));
  /* Each output alone. */
  mixcomm_epilogue_init(&e);
  e.residual_out = res_out;
  ASSERT_OK(check(&ar, MIXCOMM_FLOAT32, MIXCOMM_OP_ALLREDUCE, in, NULL, R, E, &e));
  mixcomm_epilogue_init(&e);
  e.rms_gamma = gamma;
  e.norm_out = norm;
  ASSERT_OK(check(&ar, MIXCOMM_FLOAT16, MIXCOMM_OP_ALLREDUCE, in, NULL, R, E, &e));
  mixcomm_epilogue_init(&e);
  e.rms_gamma = gamma;
  e.quant_out = quant;
  e.quant_scale = scale;
  ASSERT_OK(check(&ar, MIXCOMM_FLOAT16, MIXCOMM_OP_ALLREDUCE, in, NULL, R, E, &e));

  /* What each output needs. */
  mixcomm_epilogue_init(&e);
  e.norm_out = norm;
  ASSERT_ERR(check(&ar, MIXCOMM_BFLOAT16, MIXCOMM_OP_ALLREDUCE, in, NULL, R, E, &e),
             MIXCOMM_ERR_INVALID_ARGUMENT, "rms_gamma is NULL");
  mixcomm_epilogue_init(&e);
  e.rms_gamma = gamma;
  e.quant_out = quant;
  ASSERT_ERR(check(&ar, MIXCOMM_BFLOAT16, MIXCOMM_OP_ALLREDUCE, in, NULL, R, E, &e),
             MIXCOMM_ERR_INVALID_ARGUMENT, "quant_scale is NULL");
  mixcomm_epilogue_init(&e);
  e.residual_out = res_out;
  e.quant_scale = scale;
  ASSERT_ERR(check(&ar, MIXCOMM_BFLOAT16, MIXCOMM_OP_ALLREDUCE, in, NULL, R, E, &e),
             MIXCOMM_ERR_INVALID_ARGUMENT, "quant_out is NULL");
  mixcomm_epilogue_init(&e);
  e.residual_out = res_out;
  e.rms_gamma = gamma;
  ASSERT_ERR(check(&ar, MIXCOMM_BFLOAT16, MIXCOMM_OP_ALLREDUCE, in, NULL, R, E, &e),
             MIXCOMM_ERR_INVALID_ARGUMENT, "neither norm_out nor quant_out");
  mixcomm_epilogue_init(&e);
  e.residual_in = res;
  ASSERT_ERR(check(&ar, MIXCOMM_BFLOAT16, MIXCOMM_OP_ALLREDUCE, in, ADDR(BASE + 7 * MB), R, E, &e),
             MIXCOMM_ERR_INVALID_ARGUMENT, "no output uses it");
  mixcomm_epilogue_init(&e);
  e.rms_gamma = gamma;
  e.norm_out = norm;
  e.rms_eps = -1.0f;
  ASSERT_ERR(check(&ar, MIXCOMM_BFLOAT16, MIXCOMM_OP_ALLREDUCE, in, NULL, R, E, &e),
             MIXCOMM_ERR_INVALID_ARGUMENT, "rms_eps=-1");
  e.rms_eps = NAN;
  ASSERT_ERR(check(&ar, MIXCOMM_BFLOAT16, MIXCOMM_OP_ALLREDUCE, in, NULL, R, E, &e),
             MIXCOMM_ERR_INVALID_ARGUMENT, "rms_eps");
  e.rms_eps = 0.0f; /* allowed */
  ASSERT_OK(check(&ar, MIXCOMM_BFLOAT16, MIXCOMM_OP_ALLREDUCE, in, NULL, R, E, &e));
  e.struct_size = 8;
  ASSERT_ERR(check(&ar, MIXCOMM_BFLOAT16, MIXCOMM_OP_ALLREDUCE, in, NULL, R, E, &e),
             MIXCOMM_ERR_INVALID_ARGUMENT, "mixcomm_epilogue_init");

  /* Alignment of every buffer (quant_scale: 4 bytes). */
  const char* names[] = {"residual_in", "residual_out", "rms_gamma", "norm_out", "quant_out"};
  for (int k = 0; k < 5; k++) {
    mixcomm_epilogue_init(&e);
    e.residual_in = k == 0 ? ADDR(BASE + 1 * MB + 8) : res;
    e.residual_out = k == 1 ? ADDR(BASE + 2 * MB + 4) : res_out;
    e.rms_gamma = k == 2 ? ADDR(BASE + 3 * MB + 2) : gamma;
    e.norm_out = k == 3 ? ADDR(BASE + 4 * MB + 8) : norm;
    e.quant_out = k == 4 ? ADDR(BASE + 5 * MB + 1) : quant;
    e.quant_scale = scale;
    ASSERT_ERR(check(&ar, MIXCOMM_BFLOAT16, MIXCOMM_OP_ALLREDUCE, in, NULL, R, E, &e),
               MIXCOMM_ERR_INVALID_ARGUMENT, names[k]);
    ASSERT_CONTAINS(mixcomm_last_error(), "16-byte aligned");
  }
  mixcomm_epilogue_init(&e);
  e.rms_gamma = gamma;
  e.quant_out = quant;
  e.quant_scale = ADDR(BASE + 6 * MB + 2);
  ASSERT_ERR(check(&ar, MIXCOMM_BFLOAT16, MIXCOMM_OP_ALLREDUCE, in, NULL, R, E, &e),
             MIXCOMM_ERR_INVALID_ARGUMENT, "4-byte aligned");
  e.quant_scale = ADDR(BASE + 6 * MB + 4); /* 4 bytes suffice */
  ASSERT_OK(check(&ar, MIXCOMM_BFLOAT16, MIXCOMM_OP_ALLREDUCE, in, NULL, R, E, &e));

  /* Overlaps: outputs with anything; a residual in place is the one exception. Rows are 128
   * bytes and R = 4, so a buffer 256 bytes further overlaps, 512 bytes further does not. */
  mixcomm_epilogue_init(&e);
  e.residual_in = res;
  e.residual_out = ADDR(BASE + 1 * MB + 256);
  ASSERT_ERR(check(&ar, MIXCOMM_BFLOAT16, MIXCOMM_OP_ALLREDUCE, in, NULL, R, E, &e),
             MIXCOMM_ERR_INVALID_ARGUMENT, "overlaps");
  e.residual_out = ADDR(BASE + 1 * MB + 512);
  ASSERT_OK(check(&ar, MIXCOMM_BFLOAT16, MIXCOMM_OP_ALLREDUCE, in, NULL, R, E, &e));
  e.rms_gamma = gamma;
  e.norm_out = res; /* the residual input is read while norm_out is written */
  ASSERT_ERR(check(&ar, MIXCOMM_BFLOAT16, MIXCOMM_OP_ALLREDUCE, in, NULL, R, E, &e),
             MIXCOMM_ERR_INVALID_ARGUMENT, "norm_out");
  e.norm_out = ADDR(BASE + 64); /* inside x_in */
  ASSERT_ERR(check(&ar, MIXCOMM_BFLOAT16, MIXCOMM_OP_ALLREDUCE, in, NULL, R, E, &e),
             MIXCOMM_ERR_INVALID_ARGUMENT, "x_in");
  e.norm_out = gamma;
  ASSERT_ERR(check(&ar, MIXCOMM_BFLOAT16, MIXCOMM_OP_ALLREDUCE, in, NULL, R, E, &e),
             MIXCOMM_ERR_INVALID_ARGUMENT, "rms_gamma");
  e.norm_out = norm;
  e.quant_out = ADDR(BASE + 4 * MB + 256); /* inside norm_out (4 x 128 bytes) */
  e.quant_scale = scale;
  ASSERT_ERR(check(&ar, MIXCOMM_BFLOAT16, MIXCOMM_OP_ALLREDUCE, in, NULL, R, E, &e),
             MIXCOMM_ERR_INVALID_ARGUMENT, "quant_out");
  /* Gather ops: norm_out holds dp_size * R rows (1 KiB here), residual_out R rows. */
  mixcomm_epilogue_init(&e);
  e.rms_gamma = gamma;
  e.norm_out = norm;
  e.residual_out = ADDR(BASE + 4 * MB + 768);
  ASSERT_ERR(check(&mixed, MIXCOMM_BFLOAT16, MIXCOMM_OP_ALLREDUCE_ALLGATHER, in, NULL, R, E, &e),
             MIXCOMM_ERR_INVALID_ARGUMENT, "overlaps");
  e.residual_out = ADDR(BASE + 4 * MB + 1024);
  ASSERT_OK(check(&mixed, MIXCOMM_BFLOAT16, MIXCOMM_OP_ALLREDUCE_ALLGATHER, in, NULL, R, E, &e));
  /* Scatter ops: everything has the output's R rows (input 2R). */
  e.residual_out = ADDR(BASE + 4 * MB + 512);
  ASSERT_OK(check(&mixed, MIXCOMM_BFLOAT16, MIXCOMM_OP_REDUCESCATTER_ALLREDUCE, in, NULL, 2 * R, E,
                  &e));

  /* The run checks still apply; x_out may be NULL; zero rows need no pointers. */
  mixcomm_epilogue_init(&e);
  e.residual_out = res_out;
  ASSERT_ERR(check(&ar, MIXCOMM_BFLOAT16, MIXCOMM_OP_ALLREDUCE, ADDR(BASE + 8), NULL, R, E, &e),
             MIXCOMM_ERR_INVALID_ARGUMENT, "x_in");
  ASSERT_ERR(check(&ar, MIXCOMM_BFLOAT16, MIXCOMM_OP_ALLREDUCE, in, NULL, R, 12, &e),
             MIXCOMM_ERR_INVALID_ARGUMENT, "16-byte vector");
  ASSERT_ERR(check(&mixed, MIXCOMM_BFLOAT16, MIXCOMM_OP_REDUCESCATTER_ALLREDUCE, in, NULL, 3, E,
                   &e),
             MIXCOMM_ERR_INVALID_ARGUMENT, "divisible");
  e.residual_out = ADDR(BASE + 8); /* misaligned and inside x_in: not looked at for 0 rows */
  ASSERT_OK(check(&ar, MIXCOMM_BFLOAT16, MIXCOMM_OP_ALLREDUCE, NULL, NULL, 0, E, &e));
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
    const int* sh = shapes[rng() % (sizeof shapes / sizeof shapes[0])];
    const mixcomm_topology_t t = topo(sh[0], sh[1], sh[2], sh[3]);
    const mixcomm_mode_t mode = fused[rng() % 3];
    const mixcomm_op_t op = (mixcomm_op_t)(rng() % MIXCOMM_NUM_OPS);
    if (!mixcomm_topology_mode_valid(&t, &all_on, mode, NULL) || !mixcomm_topology_op_valid(&t, op))
      continue;
    const mixcomm_dtype_t dtype = (mixcomm_dtype_t)(rng() % MIXCOMM_NUM_DTYPES);
    const int64_t esize = (int64_t)mixcomm_dtype_size(dtype);
    mixcomm_workspace_plan_t plan;
    const int grid = (int)rng_range(1, 160);
    const int max_block = rng() % 2 ? 0 : 32 * (int)rng_range(8, 32);
    ASSERT_OK(mixcomm__plan_for_topology(&t, grid, max_block, 256, &plan));
    const int64_t row_vecs = rng() % 4 == 0 ? rng_range(1, 4) : rng_range(1, 3000);
    const int64_t rows = rng() % 3 == 0 ? rng_range(0, 3) : rng_range(1, 5000);
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
  const mixcomm_topology_t t = topo(2, 2, 0, 0);
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
  const mixcomm_topology_t t = topo(8, 8, 4, 0);
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
