/* SPDX-License-Identifier: Apache-2.0
 * Many nodes and the wire, without a GPU: every mode a topology lists as valid gets a geometry
 * that fits the plan for every size (every topology up to 64 nodes of up to 8 ranks, every grid
 * size up to 132), modes whose steps would need an unbounded workspace are refused with the
 * reason, the put model (core/put_model.c) against closed forms of the bytes each receiver
 * reads, and the put fan-out rule of the cross-node geometry (docs/design.md).
 *
 * The rows each algorithm uses and the byte totals are written out here from the protocol
 * comment of src/nvshmem_plugin/internode.cu, not taken from the code under test. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/plan.h"
#include "core/put_model.h"
#include "harness/task.h"

static const mixcomm_caps_t kAllOn = {0, 1, 1, 1, 0}; /* judge modes as an NVSHMEM build */
static const mixcomm_mode_t kFused[] = {MIXCOMM_MODE_FUSED_OPT_WAITS_UC,
                                        MIXCOMM_MODE_FUSED_OPT_BYTES1_UC,
                                        MIXCOMM_MODE_FUSED_OPT_BYTES2_UC};

static mixcomm_topology_t resolved(int I, int L, int ltp, int itp, int world_rank) {
  mixcomm_topology_t t = {0};
  t.world_size = I * L;
  t.local_size = L;
  t.inter_size = I;
  t.local_tp_size = ltp;
  t.inter_tp_size = itp;
  t.world_rank = world_rank;
  t.local_rank = world_rank % L;
  t.inter_rank = world_rank / L;
  ASSERT_OK(mixcomm_topology_resolve(&t, &t));
  return t;
}

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* Rows of the node (vmm) and symmetric (ns) workspace one step of (op, mode) uses across
 * nodes, from the kernels' row layouts. */
static void rows_used(const mixcomm_topology_t* t, mixcomm_op_t op, mixcomm_mode_t mode,
                      int* vmm, int* ns) {
  const int L = t->local_size, I = t->inter_size, It = t->inter_tp_size, Id = t->inter_dp_size;
  const int scatter = op == MIXCOMM_OP_REDUCESCATTER || op == MIXCOMM_OP_REDUCESCATTER_ALLREDUCE;
  if (I == 1) {
    mixcomm__rows_needed(t, op, mode, vmm, ns); /* one node: not this file's subject */
  } else if (mode == MIXCOMM_MODE_FUSED_OPT_WAITS_UC) {
    const int K = op == MIXCOMM_OP_REDUCESCATTER ? L
                  : op == MIXCOMM_OP_REDUCESCATTER_ALLREDUCE ? t->local_dp_size
                                                             : 1;
    const int nsend = op == MIXCOMM_OP_ALLGATHER ? I
                      : op == MIXCOMM_OP_ALLREDUCE_ALLGATHER ? Id
                                                             : 1;
    *vmm = L > 1 ? L * nsend : 1;
    *ns = 2 * I * K; /* received and staged: K rows per node */
  } else if (mode == MIXCOMM_MODE_FUSED_OPT_BYTES1_UC) {
    const int Np = scatter ? Id : 1, Nf = op == MIXCOMM_OP_ALLREDUCE_ALLGATHER ? Id : 1;
    *vmm = L * (Np + Nf);
    *ns = I + Np;
  } else {
    const int Np = scatter ? I : It, Nf = scatter ? It : I;
    *vmm = L * (Np + Nf);
    *ns = 2 * I + Np + 1;
  }
}

/* Threads a step may use: the plan's rows re-cut into the rows the call needs (as
 * launch_fused.c does for the kernels' row strides), floored to a warp. */
static int64_t step_cap(const mixcomm_workspace_plan_t* p, int vmm, int ns) {
  int64_t cap = p->max_block_size;
  if (vmm > p->vmm_rows && (int64_t)p->max_block_size * p->vmm_rows / vmm < cap)
    cap = (int64_t)p->max_block_size * p->vmm_rows / vmm;
  if (ns > p->nvshmem_rows && (int64_t)p->max_block_size * p->nvshmem_rows / ns < cap)
    cap = (int64_t)p->max_block_size * p->nvshmem_rows / ns;
  return cap / 32 * 32;
}

/* The geometry covers the vectors, every step fits the re-cut rows of both workspaces. */
static int check_fit(const mixcomm_workspace_plan_t* p, const mixcomm_topology_t* t,
                     mixcomm_op_t op, mixcomm_mode_t mode, const mixcomm__geometry_t* g,
                     int64_t vecs, const char* what) {
  int vmm, ns;
  rows_used(t, op, mode, &vmm, &ns);
  const int64_t cap = step_cap(p, vmm, ns);
  if (g->vecs != vecs || g->grid < 1 || g->grid > p->grid_size || g->block % 32 != 0 ||
      g->block < 32 || g->block > cap || g->steps < 1 ||
      (int64_t)g->grid * g->span < vecs || (int64_t)(g->grid - 1) * g->span >= vecs ||
      (int64_t)g->steps * g->block * g->chunks < g->span) {
    FAIL("%s: geometry grid %d span %lld block %d steps %d chunks %d does not fit (cap %lld, "
         "vmm rows %d/%d, ns rows %d/%d)",
         what, g->grid, (long long)g->span, g->block, g->steps, g->chunks, (long long)cap, vmm,
         p->vmm_rows, ns, p->nvshmem_rows);
  }
  return 0;
}

/* Every topology of up to 64 nodes of 1..8 ranks (every factorisation), every grid size 1..132:
 * the plan holds every valid mode, for every valid op and every size, in plain and epilogue
 * calls. This is the check that a mode in the valid list (mixcomm_topology_mode_valid, hence
 * mixcomm_get_valid_mode_list and mixcomm-info) never fails at run time for want of rows. */
TEST_IMPL(wire_valid_modes_fit) {
  static const int64_t sizes[] = {1, 33, 1000, 40001, 3000000}; /* vectors per rank block */
  static const int64_t row_shapes[][2] = {{1, 256}, {600, 256}, {7, 1}};
  long long geometries = 0;
  int widest_rows = 0;
  size_t largest_share = 0;
  for (int I = 1; I <= 64; I++) {
    for (int L = 1; L <= 8; L++) {
      for (int ltp = 1; ltp <= L; ltp++) {
        if (L % ltp)
          continue;
        for (int itp = 1; itp <= I; itp++) {
          if (I % itp)
            continue;
          const mixcomm_topology_t t = resolved(I, L, ltp, itp, 0);
          mixcomm_mode_t modes[3];
          mixcomm_op_t ops[MIXCOMM_NUM_OPS];
          int nm = 0, no = 0;
          for (int m = 0; m < 3; m++) {
            const char* why = NULL;
            if (mixcomm_topology_mode_valid(&t, &kAllOn, kFused[m], &why))
              modes[nm++] = kFused[m];
            else if (why == NULL || why[0] == '\0')
              FAIL("I=%d L=%d: %s invalid without a reason", I, L, mixcomm_mode_name(kFused[m]));
          }
          for (int op = 0; op < MIXCOMM_NUM_OPS; op++)
            if (mixcomm_topology_op_valid(&t, (mixcomm_op_t)op))
              ops[no++] = (mixcomm_op_t)op;
          /* Up to 64 nodes of 8 every fused mode the topology's shape allows stays valid. */
          if (I > 1 && nm != 1 + (ltp > 1) + (itp > 1))
            FAIL("I=%d L=%d ltp=%d itp=%d: only %d fused modes valid", I, L, ltp, itp, nm);
          for (int grid = 1; grid <= 132; grid++) {
            const int blocks[] = {0, 64};
            for (int bi = 0; bi < (grid % 16 == 1 ? 2 : 1); bi++) {
              mixcomm_workspace_plan_t p;
              ASSERT_OK(mixcomm__plan_for_topology(&t, grid, blocks[bi], 32, &p));
              if (p.nvshmem_slot_bytes > largest_share)
                largest_share = p.nvshmem_slot_bytes;
              if (p.vmm_slot_bytes > largest_share)
                largest_share = p.vmm_slot_bytes;
              for (int mi = 0; mi < nm; mi++) {
                for (int oi = 0; oi < no; oi++) {
                  int vmm, ns;
                  rows_used(&t, ops[oi], modes[mi], &vmm, &ns);
                  if (I > 1) {
                    int v2, n2;
                    mixcomm__rows_needed(&t, ops[oi], modes[mi], &v2, &n2);
                    if (v2 != vmm || n2 != ns)
                      FAIL("I=%d L=%d %s %s: rows_needed %d/%d, kernels use %d/%d", I, L,
                           mixcomm_op_name(ops[oi]), mixcomm_mode_name(modes[mi]), v2, n2, vmm,
                           ns);
                    widest_rows = vmm > widest_rows ? vmm : widest_rows;
                    widest_rows = ns > widest_rows ? ns : widest_rows;
                  }
                  char what[160];
                  for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
                    snprintf(what, sizeof what, "I=%d L=%d ltp=%d itp=%d grid=%d B=%d %s %s "
                             "vecs=%lld", I, L, ltp, itp, grid, blocks[bi],
                             mixcomm_op_name(ops[oi]), mixcomm_mode_name(modes[mi]),
                             (long long)sizes[si]);
                    mixcomm__geometry_t g;
                    const mixcomm_status_t st = mixcomm__geometry(
                        &p, &t, ops[oi], modes[mi], 4, sizes[si] * 4, 256, 4, &g);
                    if (st != MIXCOMM_SUCCESS)
                      FAIL("%s: %s", what, mixcomm_last_error());
                    if (check_fit(&p, &t, ops[oi], modes[mi], &g, sizes[si], what))
                      return 1;
                    geometries++;
                  }
                  for (size_t ri = 0; ri < sizeof row_shapes / sizeof row_shapes[0]; ri++) {
                    const int64_t rows = row_shapes[ri][0], row_vecs = row_shapes[ri][1];
                    snprintf(what, sizeof what, "I=%d L=%d ltp=%d itp=%d grid=%d %s %s rows "
                             "%lld x %lld vectors", I, L, ltp, itp, grid,
                             mixcomm_op_name(ops[oi]), mixcomm_mode_name(modes[mi]),
                             (long long)rows, (long long)row_vecs);
                    mixcomm__geometry_t g;
                    const mixcomm_status_t st =
                        mixcomm__geometry_rows(&p, &t, ops[oi], modes[mi], 2, rows * row_vecs * 8,
                                               row_vecs * 8, 256, 4, &g);
                    if (st != MIXCOMM_SUCCESS)
                      FAIL("%s: %s", what, mixcomm_last_error());
                    if (check_fit(&p, &t, ops[oi], modes[mi], &g, rows * row_vecs, what))
                      return 1;
                    if (g.span % row_vecs != 0)
                      FAIL("%s: a CTA holds part of a row", what);
                    geometries++;
                  }
                }
              }
            }
          }
        }
      }
    }
  }
  ASSERT(geometries > 1000000);
  /* 64 nodes of 8 reach the bound exactly (WAITS REDUCESCATTER: 2 x 64 x 8 rows)... */
  ASSERT_EQ(widest_rows, MIXCOMM_MAX_STEP_ROWS);
  /* ...and a share never exceeds what that bound needs at a 32-thread step (plus one row of
   * rounding at 64-thread blocks), or the one-node algorithms of 8 ranks at 1024 threads. */
  ASSERT(largest_share <= (size_t)MIXCOMM_MAX_STEP_ROWS * 32 * 16 + 1024 * 16 + 16384);
  return 0;
}

/* The case and the bound: 34 nodes of one GPU at grid 2 run OPT_BYTES2 (68 node rows
 * and 103 symmetric rows per step) for every size; past MIXCOMM_MAX_STEP_ROWS a mode is left
 * out of the valid list with the reason. */
TEST_IMPL(wire_mode_row_bound) {
  mixcomm_topology_t t = resolved(34, 1, 1, 34, 5);
  ASSERT_EQ(mixcomm_topology_mode_valid(&t, &kAllOn, MIXCOMM_MODE_FUSED_OPT_BYTES2_UC, NULL), 1);
  mixcomm_workspace_plan_t p;
  ASSERT_OK(mixcomm__plan_for_topology(&t, 2, 0, 256, &p));
  for (int64_t vecs = 1; vecs < (1 << 22); vecs = vecs * 3 + 1) {
    mixcomm__geometry_t g;
    ASSERT_OK(mixcomm__geometry(&p, &t, MIXCOMM_OP_ALLREDUCE, MIXCOMM_MODE_FUSED_OPT_BYTES2_UC,
                                2, vecs * 8, 256, 4, &g));
    if (check_fit(&p, &t, MIXCOMM_OP_ALLREDUCE, MIXCOMM_MODE_FUSED_OPT_BYTES2_UC, &g, vecs,
                  "34 nodes BYTES2"))
      return 1;
  }
  /* 128 nodes of 8, pure DP: WAITS REDUCESCATTER needs 2 x 128 x 8 = 2048 symmetric rows. */
  t = resolved(128, 8, 1, 1, 0);
  const char* why = NULL;
  ASSERT_EQ(mixcomm_topology_mode_valid(&t, &kAllOn, MIXCOMM_MODE_FUSED_OPT_WAITS_UC, &why), 0);
  ASSERT_CONTAINS(why, "MIXCOMM_MAX_STEP_ROWS");
  ASSERT_EQ(mixcomm__mode_step_rows(&t, MIXCOMM_MODE_FUSED_OPT_WAITS_UC), 2048);
  /* NCCL stays valid there, and the plan is the bounded one-node plan plus signal words. */
  ASSERT_EQ(mixcomm_topology_mode_valid(&t, &kAllOn, MIXCOMM_MODE_NCCL_ONE, NULL), 1);
  ASSERT_OK(mixcomm__plan_for_topology(&t, 132, 0, 256, &p));
  ASSERT_EQ(p.nvshmem_rows, 16);
  /* 128 nodes of 8 with inter TP 128: BYTES2 needs 8 x (128 + 128) node rows: invalid; WAITS
   * ALLREDUCE needs 2 x 128 symmetric rows: valid. */
  t = resolved(128, 8, 8, 128, 9);
  ASSERT_EQ(mixcomm_topology_mode_valid(&t, &kAllOn, MIXCOMM_MODE_FUSED_OPT_BYTES2_UC, &why), 0);
  ASSERT_CONTAINS(why, "1024");
  ASSERT_EQ(mixcomm_topology_mode_valid(&t, &kAllOn, MIXCOMM_MODE_FUSED_OPT_WAITS_UC, NULL), 1);
  ASSERT_EQ(mixcomm_topology_mode_valid(&t, &kAllOn, MIXCOMM_MODE_FUSED_OPT_BYTES1_UC, NULL), 1);
  /* One node: no bound applies (a node's rows are at most 2 x 16). */
  t = resolved(1, 8, 8, 1, 0);
  ASSERT_EQ(mixcomm__mode_step_rows(&t, MIXCOMM_MODE_FUSED_OPT_BYTES1_UC), 16);
  return 0;
}

/* The model against what each receiver reads, summed the way the protocol makes it simple:
 *   WAITS:  every rank puts K blocks of the call to every other node: (I-1) x K x vecs;
 *   BYTES1: the local TP ranks of a DP group own the chunks, each puts its chunk to every other
 *           node: summed over them (I-1) x vecs;
 *   BYTES2: the TP ranks (local and inter) of a DP group own the chunks; each puts It-1 (or
 *           I-1) partials and I-1 (or It-1) finals of its chunk: summed (I + It - 2) x vecs.
 * Every CTA runs every step and puts to every peer once per step (round), data or not. */
TEST_IMPL(wire_put_model) {
  static const int nodes[] = {2, 3, 4, 6, 8, 12};
  static const int locals[] = {1, 2, 4, 6, 8};
  static const int grids[] = {1, 2, 5, 132};
  static const int64_t sizes[] = {1, 7, 100, 1024, 5000, 70001};
  long long checked = 0;
  for (size_t ni = 0; ni < sizeof nodes / sizeof nodes[0]; ni++) {
    for (size_t li = 0; li < sizeof locals / sizeof locals[0]; li++) {
      const int I = nodes[ni], L = locals[li], W = I * L;
      for (int ltp = 1; ltp <= L; ltp++) {
        for (int itp = 1; itp <= I; itp++) {
          if (L % ltp || I % itp)
            continue;
          const mixcomm_topology_t t0 = resolved(I, L, ltp, itp, 0);
          for (size_t gi = 0; gi < sizeof grids / sizeof grids[0]; gi++) {
            mixcomm_workspace_plan_t p;
            ASSERT_OK(mixcomm__plan_for_topology(&t0, grids[gi], 0, 256, &p));
            for (int mi = 0; mi < 3; mi++) {
              const mixcomm_mode_t mode = kFused[mi];
              if (!mixcomm_topology_mode_valid(&t0, &kAllOn, mode, NULL))
                continue;
              for (int op = 0; op < MIXCOMM_NUM_OPS; op++) {
                if (!mixcomm_topology_op_valid(&t0, (mixcomm_op_t)op))
                  continue;
                const int K = op == MIXCOMM_OP_REDUCESCATTER ? L
                              : op == MIXCOMM_OP_REDUCESCATTER_ALLREDUCE ? t0.local_dp_size
                                                                         : 1;
                for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
                  const int64_t vecs = sizes[si];
                  mixcomm__geometry_t g;
                  ASSERT_OK(mixcomm__geometry(&p, &t0, (mixcomm_op_t)op, mode, 16, vecs, 256, 4,
                                              &g));
                  const uint64_t rounds = (uint64_t)g.grid * g.steps;
                  uint64_t total = 0;
                  for (int w = 0; w < W; w++) {
                    const mixcomm_topology_t t = resolved(I, L, ltp, itp, w);
                    mixcomm__put_count_t c;
                    ASSERT_OK(mixcomm__put_model(&t, (mixcomm_op_t)op, mode, &g, &c));
                    uint64_t puts;
                    if (mode == MIXCOMM_MODE_FUSED_OPT_WAITS_UC) {
                      if (c.bytes != (uint64_t)(I - 1) * K * vecs * 16)
                        FAIL("I=%d L=%d %s WAITS vecs=%lld rank %d: %llu bytes, expected %llu",
                             I, L, mixcomm_op_name((mixcomm_op_t)op), (long long)vecs, w,
                             (unsigned long long)c.bytes,
                             (unsigned long long)((uint64_t)(I - 1) * K * vecs * 16));
                      puts = rounds * (I - 1);
                    } else if (mode == MIXCOMM_MODE_FUSED_OPT_BYTES1_UC) {
                      puts = rounds * (I - 1);
                    } else {
                      puts = rounds * (I + itp - 2);
                    }
                    if (c.puts != puts)
                      FAIL("I=%d L=%d %s %s vecs=%lld rank %d: %llu puts, expected %llu", I, L,
                           mixcomm_op_name((mixcomm_op_t)op), mixcomm_mode_name(mode),
                           (long long)vecs, w, (unsigned long long)c.puts,
                           (unsigned long long)puts);
                    total += c.bytes;
                    checked++;
                  }
                  /* Over the world: DP groups per node (Ld) x nodes or node groups. */
                  const uint64_t Ld = (uint64_t)t0.local_dp_size, Id = (uint64_t)t0.inter_dp_size;
                  const uint64_t per_vec =
                      mode == MIXCOMM_MODE_FUSED_OPT_WAITS_UC    ? (uint64_t)W * (I - 1) * K
                      : mode == MIXCOMM_MODE_FUSED_OPT_BYTES1_UC ? (uint64_t)I * Ld * (I - 1)
                                                                 : Ld * Id * (uint64_t)(I + itp - 2);
                  const uint64_t want = per_vec * (uint64_t)vecs * 16;
                  if (total != want)
                    FAIL("I=%d L=%d ltp=%d itp=%d %s %s vecs=%lld: the world puts %llu bytes, "
                         "the receivers read %llu",
                         I, L, ltp, itp, mixcomm_op_name((mixcomm_op_t)op),
                         mixcomm_mode_name(mode), (long long)vecs, (unsigned long long)total,
                         (unsigned long long)want);
                }
              }
            }
          }
        }
      }
    }
  }
  ASSERT(checked > 100000);

  /* The example: 2 nodes x (TP4 x DP2), a 16 KiB output block of REDUCESCATTER_ALLREDUCE
   * at grid 132. The staged rows used to sit at the plan's row stride, so each of ~128 CTAs put
   * ((K-1) x 2048 + 8) vectors, about 4 MB per rank and call; now one CTA puts the K = 2 blocks
   * the other node reads: 32 KiB in one put. */
  const mixcomm_topology_t t = resolved(2, 8, 4, 1, 3);
  mixcomm_workspace_plan_t p;
  ASSERT_OK(mixcomm__plan_for_topology(&t, 132, 0, 256, &p));
  mixcomm__geometry_t g;
  ASSERT_OK(mixcomm__geometry(&p, &t, MIXCOMM_OP_REDUCESCATTER_ALLREDUCE,
                              MIXCOMM_MODE_FUSED_OPT_WAITS_UC, 2, 8192, 256, 4, &g));
  mixcomm__put_count_t c;
  ASSERT_OK(mixcomm__put_model(&t, MIXCOMM_OP_REDUCESCATTER_ALLREDUCE,
                               MIXCOMM_MODE_FUSED_OPT_WAITS_UC, &g, &c));
  ASSERT_EQ(c.bytes, 32768);
  ASSERT_EQ(c.puts, 1);
  /* One node puts nothing; a non-fused mode is an argument error. */
  const mixcomm_topology_t one = resolved(1, 8, 8, 1, 0);
  ASSERT_OK(
      mixcomm__put_model(&one, MIXCOMM_OP_ALLREDUCE, MIXCOMM_MODE_FUSED_OPT_WAITS_UC, &g, &c));
  ASSERT_EQ(c.bytes, 0);
  ASSERT_EQ(c.puts, 0);
  ASSERT_ERR(mixcomm__put_model(&t, MIXCOMM_OP_ALLREDUCE, MIXCOMM_MODE_NCCL_ONE, &g, &c),
             MIXCOMM_ERR_INVALID_ARGUMENT, "not a fused mode");
  return 0;
}

static uint64_t rng_state = 0x243F6A8885A308D3ull;
static uint64_t rng(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

/* The put fan-out rule across nodes: with F = MIXCOMM_MIN_PUT_BYTES / (16 B x rows per put)
 * vectors (rows per put: K of WAITS, else 1) and S = F rounded up to a warp, at most the step
 * cap: a call with at most F vectors per chunk runs in one CTA; otherwise every CTA takes at
 * least F vectors per chunk, and a CTA with at least S has steps of at least S / 2. Every
 * rank computes the same geometry. */
TEST_IMPL(wire_put_fanout) {
  static const int shapes[][4] = {/* I, L, ltp, itp */
                                  {2, 1, 1, 2},  {2, 8, 8, 2}, {2, 8, 4, 1}, {2, 8, 1, 1},
                                  {4, 4, 2, 2},  {3, 2, 1, 3}, {8, 8, 8, 4}, {16, 2, 2, 8},
                                  {40, 1, 1, 40}, {40, 1, 1, 1}, {40, 1, 1, 2}, {6, 6, 3, 3}};
  static const int grids[] = {1, 2, 16, 132};
  long long one_cta = 0, spread = 0;
  for (int iter = 0; iter < 60000; iter++) {
    const int* sh = shapes[rng() % (sizeof shapes / sizeof shapes[0])];
    const mixcomm_topology_t t = resolved(sh[0], sh[1], sh[2], sh[3], 0);
    const mixcomm_mode_t mode = kFused[rng() % 3];
    const mixcomm_op_t op = (mixcomm_op_t)(rng() % MIXCOMM_NUM_OPS);
    if (!mixcomm_topology_mode_valid(&t, &kAllOn, mode, NULL) || !mixcomm_topology_op_valid(&t, op))
      continue;
    const int grid = grids[rng() % 4];
    const int max_block = rng() % 3 == 0 ? 256 : 0;
    mixcomm_workspace_plan_t p;
    ASSERT_OK(mixcomm__plan_for_topology(&t, grid, max_block, 32, &p));
    int64_t vecs;
    switch (rng() % 4) {
      case 0: vecs = 1 + (int64_t)(rng() % 64); break;
      case 1: vecs = 1 + (int64_t)(rng() % 4096); break;
      case 2: vecs = 1 + (int64_t)(rng() % 200000); break;
      default: vecs = 1 + (int64_t)(rng() % 50000000); break;
    }
    const int min_block = 32 << (rng() % 4), min_steps = 1 + (int)(rng() % 6);
    mixcomm__geometry_t g;
    ASSERT_OK(mixcomm__geometry(&p, &t, op, mode, 16, vecs, min_block, min_steps, &g));
    const int K = mode != MIXCOMM_MODE_FUSED_OPT_WAITS_UC ? 1
                  : op == MIXCOMM_OP_REDUCESCATTER        ? t.local_size
                  : op == MIXCOMM_OP_REDUCESCATTER_ALLREDUCE ? t.local_dp_size
                                                             : 1;
    const int64_t F = ceil_div(MIXCOMM_MIN_PUT_BYTES, 16 * K);
    int vmm, ns;
    rows_used(&t, op, mode, &vmm, &ns);
    const int64_t cap = step_cap(&p, vmm, ns);
    const int64_t S = (F + 31) / 32 * 32 < cap ? (F + 31) / 32 * 32 : cap;
    const int64_t per_chunk = ceil_div(vecs, g.chunks), m = g.span / g.chunks;
    char what[200];
    snprintf(what, sizeof what, "I=%d L=%d %s %s grid %d B %d vecs %lld min_block %d: F %lld S %lld"
             " -> grid %d m %lld block %d steps %d", t.inter_size, t.local_size,
             mixcomm_op_name(op), mixcomm_mode_name(mode), grid, max_block, (long long)vecs,
             min_block, (long long)F, (long long)S, g.grid, (long long)m, g.block, g.steps);
    if (per_chunk <= F) {
      if (g.grid != 1)
        FAIL("%s: a call of at most F vectors per chunk spread over CTAs", what);
      one_cta++;
    } else {
      if (m < F)
        FAIL("%s: a CTA takes fewer than F vectors per chunk", what);
      spread += g.grid > 1;
    }
    if (m >= S && 2 * (int64_t)g.block < S)
      FAIL("%s: steps shorter than S / 2", what);
    /* Deterministic: another rank of the job computes the same. */
    const mixcomm_topology_t other = resolved(sh[0], sh[1], sh[2], sh[3], t.world_size - 1);
    mixcomm__geometry_t g2;
    ASSERT_OK(mixcomm__geometry(&p, &other, op, mode, 16, vecs, min_block, min_steps, &g2));
    ASSERT(g.grid == g2.grid && g.span == g2.span && g.block == g2.block && g.steps == g2.steps);
    /* Epilogue calls: whole rows, and no fewer than F vectors per chunk per CTA either. */
    const int64_t row_vecs = 1 + (int64_t)(rng() % 512), rows = 1 + (int64_t)(rng() % 3000);
    ASSERT_OK(mixcomm__geometry_rows(&p, &t, op, mode, 16, rows * row_vecs, row_vecs, min_block,
                                     min_steps, &g));
    const int64_t rows_per_cta = g.span / row_vecs;
    const int64_t floor_rows = ceil_div(F * g.chunks, row_vecs);
    if (rows_per_cta < (floor_rows < rows ? floor_rows : rows))
      FAIL("%s: epilogue call of %lld rows of %lld vectors: %lld rows per CTA, below the floor "
           "%lld", what, (long long)rows, (long long)row_vecs, (long long)rows_per_cta,
           (long long)floor_rows);
  }
  ASSERT(one_cta > 1000);
  ASSERT(spread > 1000);

  /* The case: a 16 KiB ALLREDUCE across 2 nodes at grid 132 used to run 128 CTAs of 32
   * threads, each with its own put per step; now one CTA of 1024 threads puts 16 KiB. */
  const mixcomm_topology_t t = resolved(2, 8, 8, 1, 0);
  mixcomm_workspace_plan_t p;
  ASSERT_OK(mixcomm__plan_for_topology(&t, 132, 0, 256, &p));
  mixcomm__geometry_t g;
  ASSERT_OK(mixcomm__geometry(&p, &t, MIXCOMM_OP_ALLREDUCE, MIXCOMM_MODE_FUSED_OPT_WAITS_UC, 2,
                              8192, 256, 4, &g));
  ASSERT_EQ(g.grid, 1);
  ASSERT_EQ(g.block, 1024);
  ASSERT_EQ(g.steps, 1);
  /* 1 MiB: 32 CTAs of 2048 vectors (32 KiB each, in two 1024-thread steps of 16 KiB puts)
   * instead of 132 CTAs of two 256-thread steps (4 KiB puts). */
  ASSERT_OK(mixcomm__geometry(&p, &t, MIXCOMM_OP_ALLREDUCE, MIXCOMM_MODE_FUSED_OPT_WAITS_UC, 2,
                              1 << 19, 256, 4, &g));
  ASSERT_EQ(g.grid, 32);
  ASSERT_EQ(g.span, 2048);
  ASSERT_EQ(g.block, 1024);
  ASSERT_EQ(g.steps, 2);
  /* One node has no put floor, only the per-CTA floor of small calls (2 * 256 / 8 = 64
   * vectors, tests/unit/test_latency_geometry.c): 1024 vectors in 16 CTAs. */
  const mixcomm_topology_t one = resolved(1, 8, 8, 1, 0);
  ASSERT_OK(mixcomm__plan_for_topology(&one, 132, 0, 256, &p));
  ASSERT_OK(mixcomm__geometry(&p, &one, MIXCOMM_OP_ALLREDUCE, MIXCOMM_MODE_FUSED_OPT_WAITS_UC, 2,
                              8192, 256, 4, &g));
  ASSERT_EQ(g.grid, 16);
  return 0;
}
