/* SPDX-License-Identifier: Apache-2.0
 * The geometry's floor on a CTA's share of a call (src/core/plan.c mixcomm__geometry): a CTA
 * handles at least 2 * min_block_size / L vectors (L = local ranks, at least 2), or the whole
 * call if smaller, spread over chunks; only calls larger than that use more CTAs. Expected
 * values below are worked out by hand from that rule and the documented split (vectors per
 * chunk per CTA = ceil(ceil(vecs / chunks) / grid_size) before the floor). */
#include <stdint.h>

#include "core/plan.h"
#include "fixtures.h"
#include "harness/task.h"

/* One node of L ranks with local tp size ltp. */
static mixcomm_topology_t node(int L, int ltp) { return tp_topology(L, L, ltp, 0); }

typedef struct shape_case {
  int L, ltp, grid_size;
  mixcomm_op_t op;
  mixcomm_mode_t mode;
  int64_t bytes; /* one rank block, bf16 */
  int grid, block, steps;
} shape_case_t;

TEST_IMPL(latency_geometry_cases) {
  const mixcomm_op_t AR = MIXCOMM_OP_ALLREDUCE, AG = MIXCOMM_OP_ALLREDUCE_ALLGATHER;
  const mixcomm_mode_t W = MIXCOMM_MODE_FUSED_OPT_WAITS_UC, B1 = MIXCOMM_MODE_FUSED_OPT_BYTES1_UC;
  const shape_case_t cases[] = {
      /* 2 ranks, floor 256 vectors: 1 KiB = 64 vectors in one CTA of 64 threads. */
      {2, 2, 66, AR, W, 1024, 1, 64, 1},
      {2, 2, 66, AR, W, 16384, 4, 256, 1},      /* 1024 vectors: 4 x 256 */
      {2, 2, 66, AR, W, 65536, 16, 256, 1},     /* 4096: 16 x 256 */
      {2, 2, 66, AR, W, 262144, 64, 256, 1},    /* 16384: 249 per CTA < 256: 64 x 256 */
      {2, 2, 66, AR, W, 1048576, 66, 256, 4},   /* 65536: 993 per CTA, 4 steps of 256 */
      /* two-shot: chunks 2, floor 128 per chunk. */
      {2, 2, 66, AR, B1, 1024, 1, 32, 1},       /* 32 per chunk: the whole call */
      {2, 2, 66, AR, B1, 65536, 16, 128, 1},    /* 2048 per chunk: 16 x 128 */
      /* 8 ranks, floor 64 vectors. */
      {8, 8, 16, AR, W, 1024, 1, 64, 1},
      {8, 8, 16, AR, W, 4096, 4, 64, 1},        /* 256: 4 x 64 */
      {8, 8, 16, AR, W, 16384, 16, 64, 1},      /* 1024: 64 per CTA, as without the floor */
      {8, 8, 16, AR, B1, 4096, 4, 32, 1},       /* chunks 8: 32 per chunk, floor 8: 4 x 8 */
      /* 4 ranks TP2 x DP2, floor 128 vectors. */
      {4, 2, 33, AG, W, 4096, 2, 128, 1},       /* 256: 2 x 128 */
      {4, 2, 33, AG, B1, 16384, 8, 64, 1},      /* chunks 2: 512 per chunk, floor 64: 8 x 64 */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const shape_case_t* c = &cases[i];
    const mixcomm_topology_t t = node(c->L, c->ltp);
    mixcomm_workspace_plan_t plan;
    ASSERT_OK(mixcomm__plan_for_topology(&t, c->grid_size, 0, 256, &plan));
    mixcomm__geometry_t g;
    ASSERT_OK(mixcomm__geometry(&plan, &t, c->op, c->mode, 2, c->bytes / 2, 256, 4, &g));
    if (g.grid != c->grid || g.block != c->block || g.steps != c->steps)
      FAIL("case %zu (L=%d %s %s %lld B): got %d x %d, %d steps; expected %d x %d, %d steps", i,
           c->L, mixcomm_op_name(c->op), mixcomm_mode_name(c->mode), (long long)c->bytes,
           g.grid, g.block, g.steps, c->grid, c->block, c->steps);
  }
  return 0;
}

/* Every CTA but the last gets at least the floor, and calls up to the floor run in one CTA,
 * for every node size, mode, grid size and a spread of sizes and block minimums. */
TEST_IMPL(latency_geometry_floor) {
  int checked = 0;
  for (int L = 2; L <= 8; L++) {
    for (int ltp = 1; ltp <= L; ltp++) {
      if (L % ltp != 0)
        continue;
      const mixcomm_topology_t t = node(L, ltp);
      for (int min_block = 32; min_block <= 1024; min_block *= 2) {
        for (int grid_size = 1; grid_size <= 132; grid_size += 13) {
          mixcomm_workspace_plan_t plan;
          ASSERT_OK(mixcomm__plan_for_topology(&t, grid_size, 0, min_block, &plan));
          for (int m = MIXCOMM_MODE_FUSED_OPT_WAITS_UC; m <= MIXCOMM_MODE_FUSED_OPT_BYTES1_UC;
               m += 2) {
            if (!mixcomm_topology_mode_valid(&t, NULL, (mixcomm_mode_t)m, NULL))
              continue;
            const int chunks = m == MIXCOMM_MODE_FUSED_OPT_BYTES1_UC ? ltp : 1;
            const int64_t floor_total = (2 * (int64_t)min_block + L - 1) / L;
            const int64_t floor_chunk = (floor_total + chunks - 1) / chunks;
            for (int64_t vecs = 1; vecs <= (1 << 20); vecs = vecs * 3 + 1) {
              mixcomm__geometry_t g;
              ASSERT_OK(mixcomm__geometry(&plan, &t, MIXCOMM_OP_ALLREDUCE, (mixcomm_mode_t)m,
                                          4, vecs * 4, min_block, 4, &g));
              const int64_t per_chunk = (vecs + chunks - 1) / chunks;
              const int64_t want = per_chunk < floor_chunk ? per_chunk : floor_chunk;
              if (g.span / chunks < want)
                FAIL("L=%d ltp=%d min_block=%d grid_size=%d mode %d vecs=%lld: %lld vectors "
                     "per chunk per CTA, floor %lld",
                     L, ltp, min_block, grid_size, m, (long long)vecs,
                     (long long)(g.span / chunks), (long long)want);
              if (per_chunk <= floor_chunk && g.grid != 1)
                FAIL("L=%d mode %d vecs=%lld: a call under the floor used %d CTAs", L, m,
                     (long long)vecs, g.grid);
              checked++;
            }
          }
        }
      }
    }
  }
  ASSERT(checked > 10000);
  return 0;
}
