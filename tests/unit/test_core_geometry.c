/* SPDX-License-Identifier: Apache-2.0
 * Tests of the per-call geometry (grid, span, block, steps, chunks) of the fused modes: random
 * calls over many job shapes, launch limits and sizes against the rules every launch must
 * keep, and a worked example. */
#include <stdio.h>
#include <string.h>

#include "core/plan.h"
#include "fixtures.h"
#include "harness/task.h"

/* ---------------------------------------------------------------------------------------- */
/* Geometry                                                                                   */
/* ---------------------------------------------------------------------------------------- */

static test_rng_t gen = {0x9e3779b97f4a7c15ull};

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
    const int* sh = shapes[rng_next(&gen) % (sizeof shapes / sizeof shapes[0])];
    mixcomm_topology_t t = resolved_topology(sh[0], sh[1], sh[2], sh[3], sh[4], sh[5]);
    const mixcomm_mode_t mode = fused[rng_next(&gen) % 3];
    if (!mixcomm_topology_mode_valid(&t, &all_on, mode, NULL))
      continue;
    mixcomm_op_t op = (mixcomm_op_t)(rng_next(&gen) % MIXCOMM_NUM_OPS);
    if (!mixcomm_topology_op_valid(&t, op))
      continue;
    const mixcomm_dtype_t dtype = (mixcomm_dtype_t)(rng_next(&gen) % MIXCOMM_NUM_DTYPES);
    const size_t esize = mixcomm_dtype_size(dtype);
    const int grid_size = (int)rng_range(&gen, 1, 200);
    const int max_block = (rng_next(&gen) % 3 == 0) ? 0 : 32 * (int)rng_range(&gen, 1, 40);
    const int block_limit = (max_block != 0 && max_block < 1024) ? max_block : 1024;
    const int min_block = 32 * (int)rng_range(&gen, 1, block_limit / 32);
    const int min_num_steps = (int)rng_range(&gen, 1, 8);
    mixcomm_config_t c = plan_config(sh[0], sh[1], sh[2], sh[3], sh[4], sh[5], 0, dtype,
                                     grid_size, max_block, min_block);
    mixcomm_workspace_plan_t plan;
    ASSERT_OK(mixcomm_workspace_plan(&c, 0, &plan));

    /* Vector counts spread over many magnitudes, zero included. */
    int64_t vecs;
    switch (rng_next(&gen) % 5) {
      case 0: vecs = rng_range(&gen, 0, 3); break;
      case 1: vecs = rng_range(&gen, 0, 1000); break;
      case 2: vecs = rng_range(&gen, 1000, 1000000); break;
      case 3: vecs = rng_range(&gen, 1000000, 100000000); break;
      default: vecs = rng_range(&gen, 100000000, 4000000000ll); break;
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
  mixcomm_topology_t t = resolved_topology(8, 8, 0, 0, 0, 0);
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
