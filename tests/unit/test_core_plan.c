/* SPDX-License-Identifier: Apache-2.0
 * Tests of the workspace plan: its layout for many job shapes, grid sizes and block caps, that
 * it depends on the node shape only, and the limits it refuses.
 *
 * Expected sizes are computed here from the layout comment in src/core/plan.h, never by
 * calling the code under test. */
#include <stdio.h>
#include <string.h>

#include "core/plan.h"
#include "fixtures.h"
#include "harness/task.h"

/* ---------------------------------------------------------------------------------------- */
/* Workspace plan                                                                             */
/* ---------------------------------------------------------------------------------------- */

static size_t round_up_sz(size_t a, size_t b) { return (a + b - 1) / b * b; }

/* The bytes of one CTA's share of a slot per the layout comment in plan.h: one 16-byte tag
 * per row, the tag area padded to 128 bytes, then rows of block 16-byte vectors. */
static size_t share_bytes(int rows, int block) {
  return round_up_sz((size_t)rows * 16, 128) + (size_t)rows * block * 16;
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
