/* SPDX-License-Identifier: Apache-2.0
 * Uneven rows per DP rank (mixcomm_run_v, mixcomm_run_v_device) without a GPU: the argument
 * checks (validate_uneven.c), that the geometry cut for the largest block visits every vector of
 * every smaller block exactly once in both fused kernels' enumerations (the kernels then skip the
 * vectors past a block's length), that the kernel arguments stay within the 4 KiB a CUDA kernel
 * parameter may take, which mode an uneven call runs in, and the public entry points'
 * refusals. The kernels themselves are tested on the GPU (tests/gpu/uneven.c). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/plan.h"
#include "core/topology.h"
#include "core/validate.h"
#include "fixtures.h"
#include "harness/task.h"
#include "kernels/launch.h"

TEST_IMPL(uneven_validate_op) {
  const mixcomm_topology_t tp = tp_topology(2, 2, 2, 0), dp = tp_topology(4, 4, 1, 0),
                           mixed = tp_topology(6, 6, 2, 0);
  ASSERT_EQ(mixcomm__validate_uneven_op(&tp, MIXCOMM_OP_ALLREDUCE), MIXCOMM_ERR_INVALID_ARGUMENT);
  ASSERT_CONTAINS(mixcomm_last_error(), "no DP group");
  ASSERT_EQ(mixcomm__validate_uneven_op(&tp, MIXCOMM_OP_ALLGATHER), MIXCOMM_ERR_INVALID_ARGUMENT);
  ASSERT_CONTAINS(mixcomm_last_error(), "not valid for this topology");
  ASSERT_EQ(mixcomm__validate_uneven_op(&dp, (mixcomm_op_t)7), MIXCOMM_ERR_INVALID_ARGUMENT);
  ASSERT_OK(mixcomm__validate_uneven_op(&dp, MIXCOMM_OP_ALLGATHER));
  ASSERT_OK(mixcomm__validate_uneven_op(&dp, MIXCOMM_OP_REDUCESCATTER));
  ASSERT_OK(mixcomm__validate_uneven_op(&mixed, MIXCOMM_OP_ALLREDUCE_ALLGATHER));
  ASSERT_OK(mixcomm__validate_uneven_op(&mixed, MIXCOMM_OP_REDUCESCATTER_ALLREDUCE));
  /* dp_size above the kernels' table: 8 nodes x 16 ranks, all DP. */
  const mixcomm_topology_t big = tp_topology(128, 16, 1, 1);
  ASSERT_EQ(mixcomm__validate_uneven_op(&big, MIXCOMM_OP_ALLGATHER), MIXCOMM_ERR_UNSUPPORTED);
  ASSERT_CONTAINS(mixcomm_last_error(), "MIXCOMM_MAX_DP_SIZE");
  return 0;
}

TEST_IMPL(uneven_validate_rows) {
  mixcomm_topology_t t = tp_topology(4, 4, 1, 0);
  mixcomm__dp_rows_info_t info;
  ASSERT_EQ(mixcomm__validate_dp_rows(&t, NULL, &info), MIXCOMM_ERR_INVALID_ARGUMENT);
  ASSERT_CONTAINS(mixcomm_last_error(), "dp_rows is NULL");
  const int64_t neg[4] = {1, 2, -1, 4};
  ASSERT_EQ(mixcomm__validate_dp_rows(&t, neg, &info), MIXCOMM_ERR_INVALID_ARGUMENT);
  ASSERT_CONTAINS(mixcomm_last_error(), "dp_rows[2]=-1");
  const int64_t huge[4] = {INT64_MAX, 1, 0, 0};
  ASSERT_EQ(mixcomm__validate_dp_rows(&t, huge, &info), MIXCOMM_ERR_INVALID_ARGUMENT);
  ASSERT_CONTAINS(mixcomm_last_error(), "overflows");
  for (int r = 0; r < 4; r++) {
    ASSERT_OK(mixcomm_topology_for_rank(&t, r, &t));
    const int64_t skew[4] = {1, 64, 0, 17};
    ASSERT_OK(mixcomm__validate_dp_rows(&t, skew, &info));
    ASSERT_EQ(info.total, 82);
    ASSERT_EQ(info.max, 64);
    ASSERT_EQ(info.own, skew[t.dp_rank]);
    ASSERT_EQ(info.all_equal, 0);
  }
  const int64_t zeros[4] = {0, 0, 0, 0}, same[4] = {3, 3, 3, 3};
  ASSERT_OK(mixcomm__validate_dp_rows(&t, zeros, &info));
  ASSERT(info.all_equal && info.total == 0 && info.max == 0);
  ASSERT_OK(mixcomm__validate_dp_rows(&t, same, &info));
  ASSERT(info.all_equal && info.total == 12 && info.max == 3);
  /* TP x DP: the own count is the DP rank's, not the world rank's. */
  mixcomm_topology_t m = tp_topology(6, 6, 2, 0);
  ASSERT_OK(mixcomm_topology_for_rank(&m, 5, &m)); /* tp 1, dp 2 */
  const int64_t three[3] = {7, 0, 9};
  ASSERT_OK(mixcomm__validate_dp_rows(&m, three, &info));
  ASSERT_EQ(info.own, 9);
  return 0;
}

TEST_IMPL(uneven_validate_buffers) {
  mixcomm__run_shape_t s;
  void* in = ADDR(BASE);
  void* out = ADDR(BASE + (1u << 20));
  ASSERT_OK(mixcomm__validate_run_v(MIXCOMM_BFLOAT16, in, out, 0, 3, 10, 64, &s));
  ASSERT_EQ(s.in_bytes, 3u * 128u);
  ASSERT_EQ(s.out_bytes, 10u * 128u);
  ASSERT_EQ(s.out_rows, 10);
  const struct {
    mixcomm_dtype_t dtype;
    const void* in;
    const void* out;
    int out_optional;
    int64_t in_rows, out_rows, row_elems;
    const char* needle; /* NULL: accepted; else refused with a message containing it */
  } cases[] = {
      /* Zero own rows: x_in may be NULL; rows to write need x_out. */
      {MIXCOMM_BFLOAT16, NULL, out, 0, 0, 10, 64, NULL},
      {MIXCOMM_BFLOAT16, NULL, out, 0, 2, 10, 64, "x_in is NULL"},
      {MIXCOMM_BFLOAT16, in, NULL, 0, 2, 10, 64, ""},
      {MIXCOMM_BFLOAT16, in, NULL, 1, 2, 10, 64, NULL},
      {MIXCOMM_FLOAT16, in, out, 0, 2, 2, 12, "not a multiple of the 16-byte"},
      {MIXCOMM_FLOAT32, in, out, 0, 2, 2, 0, ""},
      {MIXCOMM_FLOAT32, ADDR(BASE + 4), out, 0, 2, 2, 64, "x_in="},
      {MIXCOMM_FLOAT32, in, ADDR(BASE + 256), 0, 2, 2, 64, "overlaps"},
      /* Touching but not overlapping: 2 rows of 256 B end where x_out starts. */
      {MIXCOMM_FLOAT32, in, ADDR(BASE + 512), 0, 2, 2, 64, NULL},
      {MIXCOMM_FLOAT32, in, out, 0, INT64_MAX / 8, 1, 64, "overflows"},
      {(mixcomm_dtype_t)9, in, out, 0, 1, 1, 64, ""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const mixcomm_status_t st =
        mixcomm__validate_run_v(cases[i].dtype, cases[i].in, cases[i].out, cases[i].out_optional,
                                cases[i].in_rows, cases[i].out_rows, cases[i].row_elems, &s);
    expect_argument_check(i, st, cases[i].needle);
  }
  return 0;
}

/* The geometry of the largest block covers every vector of it exactly once, in the one-shot and
 * the two-shot enumeration (intranode.cu): CTA b, step s, chunk j, thread t. */
static int covers(const mixcomm__geometry_t* g, int twoshot, unsigned char* seen) {
  memset(seen, 0, (size_t)g->vecs);
  for (int b = 0; b < g->grid; b++) {
    const int64_t begin = (int64_t)b * g->span;
    const int64_t end = begin + g->span < g->vecs ? begin + g->span : g->vecs;
    for (int s = 0; s < g->steps; s++)
      for (int j = 0; j < (twoshot ? g->chunks : 1); j++)
        for (int t = 0; t < g->block; t++) {
          const int64_t idx = twoshot ? begin + (int64_t)s * g->chunks * g->block +
                                            (int64_t)j * g->block + t
                                      : begin + (int64_t)s * g->block + t;
          if (idx >= end)
            continue;
          if (seen[idx]++)
            return 0;
        }
  }
  for (int64_t i = 0; i < g->vecs; i++)
    if (seen[i] != 1)
      return 0;
  return 1;
}

TEST_IMPL(uneven_geometry_covers) {
  const mixcomm_topology_t tops[3] = {tp_topology(4, 4, 2, 0), tp_topology(6, 6, 2, 0),
                                      tp_topology(4, 4, 1, 0)};
  const mixcomm_op_t ops[4] = {MIXCOMM_OP_ALLREDUCE_ALLGATHER, MIXCOMM_OP_REDUCESCATTER_ALLREDUCE,
                               MIXCOMM_OP_ALLGATHER, MIXCOMM_OP_REDUCESCATTER};
  unsigned char* seen = malloc((size_t)64 * 7168 * 2 / 16 + 16);
  ASSERT(seen != NULL);
  uint64_t x = 12345;
  for (int ti = 0; ti < 3; ti++) {
    mixcomm_workspace_plan_t plan;
    ASSERT_OK(mixcomm__plan_for_topology(&tops[ti], 20, 0, 256, &plan));
    for (int oi = 0; oi < 4; oi++) {
      if (!mixcomm_topology_op_valid(&tops[ti], ops[oi]))
        continue;
      for (int m = MIXCOMM_MODE_FUSED_OPT_WAITS_UC; m <= MIXCOMM_MODE_FUSED_OPT_BYTES1_UC; m += 2) {
        if (!mixcomm_topology_mode_valid(&tops[ti], NULL, (mixcomm_mode_t)m, NULL))
          continue;
        for (int c = 0; c < 30; c++) {
          x = x * 6364136223846793005ull + 1442695040888963407ull;
          const int64_t max_rows = 1 + (int64_t)((x >> 33) % 64);
          const int64_t E = c % 3 == 0 ? 7168 : c % 3 == 1 ? 40 : 1000;
          mixcomm__geometry_t g;
          const int rows_form = c % 2;
          if (rows_form)
            ASSERT_OK(mixcomm__geometry_rows(&plan, &tops[ti], ops[oi], (mixcomm_mode_t)m, 2,
                                             max_rows * E, E, 256, 4, &g));
          else
            ASSERT_OK(mixcomm__geometry(&plan, &tops[ti], ops[oi], (mixcomm_mode_t)m, 2,
                                        max_rows * E, 256, 4, &g));
          ASSERT(g.grid >= 1 && g.grid <= plan.grid_size);
          ASSERT(covers(&g, m == MIXCOMM_MODE_FUSED_OPT_BYTES1_UC, seen));
        }
      }
    }
  }
  free(seen);
  return 0;
}

/* Which mode an uneven call runs in (core/validate_uneven.c): across nodes only the one-shot
 * fused mode; an explicit two-shot mode is refused there, DEFAULT and AUTOTUNE move to WAITS_UC
 * (or to NCCL when the plugin is missing and the counts are on the host). */
TEST_IMPL(uneven_mode_choice) {
  mixcomm_caps_t caps = {0};
  caps.nccl = 1;
  caps.nvshmem = 1;
  caps.autotune = 1;
  /* 2 nodes of 4 ranks: local TP2 x DP2, inter TP2 (BYTES1 and BYTES2 valid), and all DP. */
  const mixcomm_topology_t hy = tp_topology(8, 4, 2, 2), dp = tp_topology(8, 4, 1, 1),
                           one = tp_topology(4, 4, 2, 0);
  ASSERT_EQ(hy.inter_size, 2);
  ASSERT(mixcomm_topology_mode_valid(&hy, &caps, MIXCOMM_MODE_FUSED_OPT_BYTES1_UC, NULL));
  ASSERT(mixcomm_topology_mode_valid(&hy, &caps, MIXCOMM_MODE_FUSED_OPT_BYTES2_UC, NULL));
  const mixcomm_mode_t two_shot[2] = {MIXCOMM_MODE_FUSED_OPT_BYTES1_UC,
                                      MIXCOMM_MODE_FUSED_OPT_BYTES2_UC};
  const mixcomm_mode_t resolved[2] = {MIXCOMM_MODE_DEFAULT, MIXCOMM_MODE_AUTOTUNE};
  for (int dev = 0; dev < 2; dev++) {
    mixcomm_mode_t m = MIXCOMM_MODE_NCCL_ONE;
    /* WAITS_UC across nodes takes both forms, explicitly or picked. */
    ASSERT(mixcomm__uneven_mode_unsupported(&hy, MIXCOMM_MODE_FUSED_OPT_WAITS_UC, dev) == NULL);
    ASSERT(mixcomm__uneven_mode_unsupported(&dp, MIXCOMM_MODE_FUSED_OPT_WAITS_UC, dev) == NULL);
    ASSERT_OK(mixcomm__uneven_mode(&hy, &caps, MIXCOMM_MODE_FUSED_OPT_WAITS_UC,
                                   MIXCOMM_MODE_FUSED_OPT_WAITS_UC, dev, &m));
    ASSERT_EQ(m, MIXCOMM_MODE_FUSED_OPT_WAITS_UC);
    for (int i = 0; i < 2; i++) {
      /* Asked for: refused with the reason. */
      m = MIXCOMM_MODE_NCCL_ONE;
      ASSERT_EQ(mixcomm__uneven_mode(&hy, &caps, two_shot[i], two_shot[i], dev, &m),
                MIXCOMM_ERR_UNSUPPORTED);
      ASSERT_CONTAINS(mixcomm_last_error(), "FUSED_OPT_WAITS_UC");
      ASSERT_CONTAINS(mixcomm_last_error(), mixcomm_mode_name(two_shot[i]));
      ASSERT_EQ(m, MIXCOMM_MODE_NCCL_ONE); /* untouched on error */
      /* Picked by DEFAULT or AUTOTUNE: moved to WAITS_UC. */
      for (int r = 0; r < 2; r++) {
        m = MIXCOMM_MODE_NCCL_ONE;
        ASSERT_OK(mixcomm__uneven_mode(&hy, &caps, resolved[r], two_shot[i], dev, &m));
        ASSERT_EQ(m, MIXCOMM_MODE_FUSED_OPT_WAITS_UC);
      }
    }
    /* One node: the two-shot BYTES1_UC takes uneven rows. */
    ASSERT(mixcomm__uneven_mode_unsupported(&one, MIXCOMM_MODE_FUSED_OPT_BYTES1_UC, dev) == NULL);
    /* An NCCL pick stays with host counts and moves to WAITS_UC with device counts. */
    m = MIXCOMM_MODE_FUSED_OPT_BYTES1_UC;
    ASSERT_OK(mixcomm__uneven_mode(&hy, &caps, MIXCOMM_MODE_DEFAULT, MIXCOMM_MODE_NCCL_TP_DP, dev,
                                   &m));
    ASSERT_EQ(m, dev ? MIXCOMM_MODE_FUSED_OPT_WAITS_UC : MIXCOMM_MODE_NCCL_TP_DP);
  }
  /* Without the NVSHMEM plugin: host counts fall back to NCCL, device counts have no mode. */
  mixcomm_caps_t no_ns = caps;
  no_ns.nvshmem = 0;
  mixcomm_mode_t m = MIXCOMM_MODE_DEFAULT;
  ASSERT_OK(mixcomm__uneven_mode(&hy, &no_ns, MIXCOMM_MODE_DEFAULT,
                                 MIXCOMM_MODE_FUSED_OPT_BYTES2_UC, 0, &m));
  ASSERT_EQ(m, MIXCOMM_MODE_NCCL_TP_DP);
  ASSERT_OK(mixcomm__uneven_mode(&dp, &no_ns, MIXCOMM_MODE_AUTOTUNE,
                                 MIXCOMM_MODE_FUSED_OPT_BYTES1_UC, 0, &m));
  ASSERT_EQ(m, MIXCOMM_MODE_NCCL_ONE);
  ASSERT_EQ(mixcomm__uneven_mode(&hy, &no_ns, MIXCOMM_MODE_DEFAULT, MIXCOMM_MODE_NCCL_TP_DP, 1,
                                 &m),
            MIXCOMM_ERR_UNSUPPORTED);
  ASSERT_CONTAINS(mixcomm_last_error(), "no mode of this handler");
  return 0;
}

TEST_IMPL(uneven_public_api) {
  /* Kernel parameters are limited to 4 KiB: the host table of counts must fit in them. */
  ASSERT(sizeof(mixcomm__kargs_t) <= 4096);
  ASSERT(MIXCOMM_MAX_DP_SIZE >= MIXCOMM_MAX_LOCAL_SIZE);
  const int64_t rows[2] = {1, 2};
  int32_t dev_rows[2] = {1, 2};
  ASSERT_NE(mixcomm_run_v(NULL, MIXCOMM_OP_ALLGATHER, ADDR(BASE), ADDR(BASE + 4096), rows, 64,
                          NULL, MIXCOMM_MODE_DEFAULT, NULL),
            MIXCOMM_SUCCESS);
  ASSERT_NE(mixcomm_run_v_device(NULL, MIXCOMM_OP_ALLGATHER, ADDR(BASE), ADDR(BASE + 4096),
                                 dev_rows, 4, 64, NULL, MIXCOMM_MODE_DEFAULT, NULL),
            MIXCOMM_SUCCESS);
  return 0;
}
