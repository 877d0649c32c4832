/* SPDX-License-Identifier: Apache-2.0
 * Workspace plan and per-call geometry (see plan.h for the slot layout). */
#include <stddef.h>

#include <cuda_runtime_api.h>

#include "core/error.h"
#include "core/plan.h"
#include "core/topology.h"

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
static size_t round_up(size_t a, size_t b) { return (a + b - 1) / b * b; }

int mixcomm__mode_chunks(const mixcomm_topology_t* t, mixcomm_mode_t mode) {
  switch (mode) {
    case MIXCOMM_MODE_FUSED_OPT_BYTES1_UC:
    case MIXCOMM_MODE_FUSED_OPT_BYTES1_MC:
      return t->local_tp_size;
    case MIXCOMM_MODE_FUSED_OPT_BYTES2_UC:
    case MIXCOMM_MODE_FUSED_OPT_BYTES2_MC:
      return t->tp_size;
    default:
      return 1;
  }
}

void mixcomm__rows_needed(const mixcomm_topology_t* t, mixcomm_op_t op, mixcomm_mode_t mode,
                          int* vmm_rows, int* ns_rows) {
  const int L = t->local_size, I = t->inter_size;
  const int scatter = mixcomm__op_is_scatter(op);
  if (I == 1) {
    /* One row per sending local rank, per exchange round inside the node. */
    const int two_shot = mode == MIXCOMM_MODE_FUSED_OPT_BYTES1_UC;
    *vmm_rows = L > 1 ? (two_shot ? 2 * L : L) : 1;
    *ns_rows = 0;
    return;
  }
  if (mode == MIXCOMM_MODE_FUSED_OPT_BYTES1_UC) {
    /* Two-shot inside, one exchange across (bytes1_kernel): Np partials and Nf finals per
     * local rank; received partials (I rows) and staged ones (Np rows) across nodes. */
    const int Np = scatter ? t->inter_dp_size : 1;
    const int Nf = op == MIXCOMM_OP_ALLREDUCE_ALLGATHER ? t->inter_dp_size : 1;
    *vmm_rows = L * (Np + Nf);
    *ns_rows = I + Np;
    return;
  }
  if (mode == MIXCOMM_MODE_FUSED_OPT_BYTES2_UC) {
    /* Two-shot inside and across (bytes2_kernel): Np pieces and Nf finals per local rank;
     * two receive areas of I rows, Np staged partials and one final across nodes. */
    const int Np = scatter ? I : t->inter_tp_size;
    const int Nf = scatter ? t->inter_tp_size : I;
    *vmm_rows = L * (Np + Nf);
    *ns_rows = 2 * I + Np + 1;
    return;
  }
  /* Across nodes, one-shot (waits_kernel): K input blocks go to each other node (received
   * into I*K rows, staged in I*K rows), and each local rank receives nsend virtual blocks from
   * every local rank. */
  const int K = op == MIXCOMM_OP_REDUCESCATTER                ? L
                : op == MIXCOMM_OP_REDUCESCATTER_ALLREDUCE ? t->local_dp_size
                                                           : 1;
  const int nsend = op == MIXCOMM_OP_ALLGATHER              ? I
                    : op == MIXCOMM_OP_ALLREDUCE_ALLGATHER ? t->inter_dp_size
                                                           : 1;
  *vmm_rows = L > 1 ? L * nsend : 1;
  *ns_rows = 2 * I * K;
}

int mixcomm__mode_step_rows(const mixcomm_topology_t* t, mixcomm_mode_t mode) {
  int most = 0;
  for (int op = 0; op < MIXCOMM_NUM_OPS; op++) {
    if (!mixcomm_topology_op_valid(t, (mixcomm_op_t)op))
      continue;
    int v, n;
    mixcomm__rows_needed(t, (mixcomm_op_t)op, mode, &v, &n);
    most = v > most ? v : most;
    most = n > most ? n : most;
  }
  return most;
}

int mixcomm__put_rows(const mixcomm_topology_t* t, mixcomm_op_t op, mixcomm_mode_t mode) {
  if (mode != MIXCOMM_MODE_FUSED_OPT_WAITS_UC)
    return 1; /* the two-shot kernels put one chunk piece per peer */
  return op == MIXCOMM_OP_REDUCESCATTER                ? t->local_size
         : op == MIXCOMM_OP_REDUCESCATTER_ALLREDUCE ? t->local_dp_size
                                                    : 1;
}

size_t mixcomm__signal_bytes(int inter_size, int grid_size) {
  return round_up((size_t)MIXCOMM_RING_SLOTS * grid_size * 2 * inter_size * 8, 4096);
}

size_t mixcomm__tag_area_bytes(int rows) {
  return round_up((size_t)rows * MIXCOMM_VEC_BYTES, MIXCOMM_TAG_AREA_ALIGN);
}

mixcomm_status_t mixcomm__plan_for_topology(const mixcomm_topology_t* t, int grid_size,
                                            int max_block_size, int min_block_size,
                                            mixcomm_workspace_plan_t* plan) {
  if (grid_size < 1)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "grid_size=%d: must be >= 1", grid_size);
  if (max_block_size < 0)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "max_block_size=%d: must be >= 32, or 0 for no cap", max_block_size);
  if (max_block_size != 0 && (max_block_size < 32 || max_block_size % 32 != 0))
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "max_block_size=%d: must be a multiple of 32 and >= 32 (or 0)",
                          max_block_size);
  if (min_block_size < 32 || min_block_size % 32 != 0 ||
      min_block_size > MIXCOMM_KERNEL_MAX_THREADS)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "min_block_size=%d: must be a multiple of 32 in [32, %d]",
                          min_block_size, MIXCOMM_KERNEL_MAX_THREADS);
  int B = MIXCOMM_KERNEL_MAX_THREADS;
  if (max_block_size != 0 && max_block_size < B)
    B = max_block_size;
  if (max_block_size != 0 && max_block_size < min_block_size)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "max_block_size=%d is below min_block_size=%d", max_block_size,
                          min_block_size);

  /* Size for the largest single-node algorithm this topology can run; calls needing more rows
   * (across nodes) shrink their blocks instead of growing the workspace. */
  int vmm_rows = 1, ns_rows = 0;
  mixcomm_topology_t single = *t; /* the node's shape alone: no NVSHMEM question */
  single.inter_size = 1;
  single.inter_tp_size = 1;
  single.inter_dp_size = 1;
  for (int m = MIXCOMM_MODE_FUSED_OPT_WAITS_UC; m <= MIXCOMM_MODE_FUSED_OPT_BYTES1_UC; m += 2) {
    if (!mixcomm_topology_mode_valid(&single, NULL, (mixcomm_mode_t)m, NULL))
      continue;
    int v, n;
    mixcomm__rows_needed(&single, MIXCOMM_OP_ALLREDUCE, (mixcomm_mode_t)m, &v, &n);
    if (v > vmm_rows)
      vmm_rows = v;
  }
  if (t->inter_size > 1) {
    ns_rows = 2 * t->local_size > 4 ? 2 * t->local_size : 4;
    /* The multi-node two-shot kernels tag two rounds per local rank. */
    if (vmm_rows < 2 * t->local_size)
      vmm_rows = 2 * t->local_size;
    /* Every mode valid across nodes (whatever the machine offers: the plan must not depend on
     * it) fits a step of MIXCOMM_MIN_STEP_THREADS threads: rows x B >= rows needed x 32. The
     * modes' needs are at most MIXCOMM_MAX_STEP_ROWS, so this stays bounded. */
    const mixcomm_caps_t all_on = {0, 1, 1, 1, 0};
    for (int m = MIXCOMM_MODE_FUSED_OPT_WAITS_UC; m <= MIXCOMM_MODE_FUSED_OPT_BYTES2_UC; m += 2) {
      if (!mixcomm_topology_mode_valid(t, &all_on, (mixcomm_mode_t)m, NULL))
        continue;
      for (int op = 0; op < MIXCOMM_NUM_OPS; op++) {
        if (!mixcomm_topology_op_valid(t, (mixcomm_op_t)op))
          continue;
        int v, n;
        mixcomm__rows_needed(t, (mixcomm_op_t)op, (mixcomm_mode_t)m, &v, &n);
        const int v_fit = (int)ceil_div((int64_t)v * MIXCOMM_MIN_STEP_THREADS, B);
        const int n_fit = (int)ceil_div((int64_t)n * MIXCOMM_MIN_STEP_THREADS, B);
        vmm_rows = v_fit > vmm_rows ? v_fit : vmm_rows;
        ns_rows = n_fit > ns_rows ? n_fit : ns_rows;
      }
    }
  }

  plan->grid_size = grid_size;
  plan->max_block_size = B;
  plan->ring_slots = MIXCOMM_RING_SLOTS;
  plan->vmm_rows = vmm_rows;
  plan->nvshmem_rows = ns_rows;
  plan->vmm_slot_bytes =
      mixcomm__tag_area_bytes(vmm_rows) + (size_t)vmm_rows * B * MIXCOMM_VEC_BYTES;
  plan->vmm_bytes = (size_t)MIXCOMM_RING_SLOTS * grid_size * plan->vmm_slot_bytes;
  if (ns_rows > 0) {
    plan->nvshmem_slot_bytes = (size_t)ns_rows * B * MIXCOMM_VEC_BYTES; /* no tags: signals */
    /* Data shares, then the signal words: [slot][cta][round 0..1][source node]. */
    plan->nvshmem_bytes = (size_t)MIXCOMM_RING_SLOTS * grid_size * plan->nvshmem_slot_bytes +
                          mixcomm__signal_bytes(t->inter_size, grid_size);
  } else {
    plan->nvshmem_slot_bytes = 0;
    plan->nvshmem_bytes = 0;
  }
  /* Per CTA: ring position and call counter (16 B); then one 256-byte error record. */
  plan->control_bytes = round_up((size_t)grid_size * 16, 256) + 256;
  return MIXCOMM_SUCCESS;
}

mixcomm_status_t mixcomm_workspace_plan(const mixcomm_config_t* c, int sm_count,
                                        mixcomm_workspace_plan_t* plan) {
  if (c == NULL || plan == NULL)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "workspace plan: NULL argument");
  if (mixcomm_dtype_size(c->dtype) == 0)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "dtype=%d: expected MIXCOMM_FLOAT16, MIXCOMM_BFLOAT16 or "
                          "MIXCOMM_FLOAT32",
                          (int)c->dtype);
  mixcomm_topology_t t;
  mixcomm__topology_from_config(c, &t);
  MIXCOMM_CHECK(mixcomm_topology_resolve(&t, &t));
  int grid = c->grid_size;
  if (grid < 0)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "grid_size=%d: must be >= 1, or 0 for the number of SMs", grid);
  if (grid == 0)
    grid = sm_count;
  if (grid == 0) {
    int dev = c->device, sms = 0;
    if (dev < 0 && cudaGetDevice(&dev) != cudaSuccess)
      return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                            "grid_size is 0 and no GPU is visible to count its SMs: pass "
                            "grid_size or sm_count");
    cudaError_t e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
    if (e != cudaSuccess)
      return mixcomm__cuda_error((int)e, "counting the SMs of the device for grid_size=0 (pass "
                                         "grid_size or sm_count instead)");
    grid = sms;
  }
  return mixcomm__plan_for_topology(&t, grid, c->max_block_size, c->min_block_size, plan);
}

/* Threads per CTA a step of (op, mode) may use: the plan's rows hold max_block vectors each,
 * and an algorithm needing more rows per step gets proportionally fewer threads. */
static mixcomm_status_t block_cap(const mixcomm_workspace_plan_t* plan, const mixcomm_topology_t* t,
                                  mixcomm_op_t op, mixcomm_mode_t mode, int64_t* cap_out) {
  int vmm_rows, ns_rows;
  mixcomm__rows_needed(t, op, mode, &vmm_rows, &ns_rows);
  int64_t cap = plan->max_block_size;
  if (vmm_rows > plan->vmm_rows)
    cap = cap * plan->vmm_rows / vmm_rows;
  if (ns_rows > 0 && ns_rows > plan->nvshmem_rows) {
    int64_t ns_cap = (int64_t)plan->max_block_size * plan->nvshmem_rows / ns_rows;
    if (ns_cap < cap)
      cap = ns_cap;
  }
  cap = cap / 32 * 32;
  if (cap < 32) /* never for a mode valid for the plan's topology: the plan fits them all */
    return mixcomm__error(MIXCOMM_ERR_UNSUPPORTED,
                          "%s in %s needs %d node and %d symmetric workspace rows per step but "
                          "the plan has %d and %d, too few for a 32-thread step: is the mode "
                          "valid for this topology, and the plan made for it?",
                          mixcomm_op_name(op), mixcomm_mode_name(mode), vmm_rows, ns_rows,
                          plan->vmm_rows, plan->nvshmem_rows);
  *cap_out = cap;
  return MIXCOMM_SUCCESS;
}

/* Steps and block for a CTA that walks m vectors per chunk. */
static void cut_steps(int64_t m, int64_t cap, int min_block_size, int min_num_steps,
                      mixcomm__geometry_t* g) {
  int64_t steps = ceil_div(m, min_block_size);
  if (steps > min_num_steps) {
    int64_t target = ceil_div(m, min_num_steps);
    if (target > cap)
      target = cap;
    steps = ceil_div(m, target);
  }
  int64_t block = (ceil_div(m, steps) + 31) / 32 * 32;
  if (block > cap) {
    steps = ceil_div(m, cap);
    block = (ceil_div(m, steps) + 31) / 32 * 32;
  }
  g->block = (int)block;
  g->steps = (int)steps;
}

/* Put fan-out across nodes (docs/design.md): a CTA takes at least *floor_vecs vectors per
 * chunk, so that it puts at least MIXCOMM_MIN_PUT_BYTES to each peer over the call (unless the
 * whole call is smaller: then one CTA), and its steps are at least that long, up to the block
 * cap (raises *min_block). Returns 0 (nothing to apply) on one node. Depends only on the plan,
 * the topology's sizes and the call: every rank computes the same. */
static int put_floor(const mixcomm_topology_t* t, mixcomm_op_t op, mixcomm_mode_t mode,
                     int64_t cap, int64_t* floor_vecs, int* min_block) {
  if (t->inter_size == 1)
    return 0;
  *floor_vecs = ceil_div(MIXCOMM_MIN_PUT_BYTES,
                         (int64_t)MIXCOMM_VEC_BYTES * mixcomm__put_rows(t, op, mode));
  int64_t step = (*floor_vecs + 31) / 32 * 32;
  if (step > cap)
    step = cap;
  if (step > *min_block)
    *min_block = (int)step;
  return 1;
}

static mixcomm_status_t geometry_start(const mixcomm_topology_t* t, mixcomm_mode_t mode,
                                       size_t elem_size, int64_t numel_block,
                                       mixcomm__geometry_t* g) {
  const int64_t bytes = numel_block * (int64_t)elem_size;
  if (numel_block < 0 || bytes % MIXCOMM_VEC_BYTES != 0)
    return mixcomm__error(MIXCOMM_ERR_INTERNAL, "geometry: block of %lld elements",
                          (long long)numel_block);
  g->vecs = bytes / MIXCOMM_VEC_BYTES;
  g->chunks = mixcomm__mode_chunks(t, mode);
  g->grid = 0;
  g->block = 0;
  g->steps = 0;
  g->span = 0;
  return MIXCOMM_SUCCESS;
}

mixcomm_status_t mixcomm__geometry(const mixcomm_workspace_plan_t* plan,
                                   const mixcomm_topology_t* t, mixcomm_op_t op,
                                   mixcomm_mode_t mode, size_t elem_size, int64_t numel_block,
                                   int min_block_size, int min_num_steps,
                                   mixcomm__geometry_t* g) {
  MIXCOMM_CHECK(geometry_start(t, mode, elem_size, numel_block, g));
  if (g->vecs == 0)
    return MIXCOMM_SUCCESS;
  int64_t cap;
  MIXCOMM_CHECK(block_cap(plan, t, op, mode, &cap));
  const int64_t per_chunk = ceil_div(g->vecs, g->chunks);
  /* Vectors per chunk per CTA: spread over the plan's CTAs, but no thinner than a floor. Every
   * CTA pays the same fixed cost (ring claim, tags, waits, release) whatever it moves, and a
   * launch costs more the more CTAs it starts, so thin CTAs only add cost; but a CTA's data
   * also crosses one SM's memory pipes once per peer, so the floor shrinks as the node grows:
   * a CTA handles at least 2 * min_block_size / L vectors in all (one min_block_size block for
   * two ranks), or the whole call if smaller (measured: docs/results/latency-h200.md). */
  int64_t m = ceil_div(per_chunk, plan->grid_size);
  const int L = t->local_size > 2 ? t->local_size : 2;
  int64_t least = ceil_div(ceil_div(2 * (int64_t)min_block_size, L), g->chunks);
  if (least > per_chunk)
    least = per_chunk;
  if (m < least)
    m = least;
  /* Across nodes, puts of at least MIXCOMM_MIN_PUT_BYTES (put_floor). */
  int64_t floor_vecs = 0;
  if (put_floor(t, op, mode, cap, &floor_vecs, &min_block_size) && m < floor_vecs)
    m = floor_vecs < per_chunk ? floor_vecs : per_chunk;
  cut_steps(m, cap, min_block_size, min_num_steps, g);
  g->span = m * g->chunks;
  g->grid = (int)ceil_div(g->vecs, g->span);
  return MIXCOMM_SUCCESS;
}

mixcomm_status_t mixcomm__geometry_rows(const mixcomm_workspace_plan_t* plan,
                                        const mixcomm_topology_t* t, mixcomm_op_t op,
                                        mixcomm_mode_t mode, size_t elem_size,
                                        int64_t numel_block, int64_t row_elems,
                                        int min_block_size, int min_num_steps,
                                        mixcomm__geometry_t* g) {
  MIXCOMM_CHECK(geometry_start(t, mode, elem_size, numel_block, g));
  const int64_t row_bytes = row_elems * (int64_t)elem_size;
  if (row_elems < 1 || row_bytes % MIXCOMM_VEC_BYTES != 0 || numel_block % row_elems != 0)
    return mixcomm__error(MIXCOMM_ERR_INTERNAL, "row geometry: %lld elements in rows of %lld",
                          (long long)numel_block, (long long)row_elems);
  if (g->vecs == 0)
    return MIXCOMM_SUCCESS;
  int64_t cap;
  MIXCOMM_CHECK(block_cap(plan, t, op, mode, &cap));
  const int64_t row_vecs = row_bytes / MIXCOMM_VEC_BYTES, rows = g->vecs / row_vecs;
  /* Whole rows per CTA, spread over as many CTAs as the plan has (across nodes: as the put
   * floor allows). */
  int64_t rows_per_cta = ceil_div(rows, plan->grid_size);
  int64_t floor_vecs = 0;
  if (put_floor(t, op, mode, cap, &floor_vecs, &min_block_size)) {
    const int64_t floor_rows = ceil_div(floor_vecs * g->chunks, row_vecs);
    if (rows_per_cta < floor_rows)
      rows_per_cta = floor_rows < rows ? floor_rows : rows;
  }
  g->span = rows_per_cta * row_vecs;
  const int64_t m = ceil_div(g->span, g->chunks);
  if (m <= cap) {
    /* The CTA's rows fit one step: take it in one, one vector per thread and chunk, rather
     * than pipelining small steps; the row pass then has the least to read per thread. */
    g->steps = 1;
    g->block = (int)((m + 31) / 32 * 32);
  } else {
    cut_steps(m, cap, min_block_size, min_num_steps, g);
  }
  g->grid = (int)ceil_div(g->vecs, g->span);
  return MIXCOMM_SUCCESS;
}
