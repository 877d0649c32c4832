/* SPDX-License-Identifier: Apache-2.0
 * Workspace plan (sizes fixed at creation) and per-call launch geometry.
 *
 * A CTA's share of a ring slot holds `rows` rows of block-sized 16-byte vectors, preceded by
 * one 16-byte tag per row:
 *   [tag 0 .. tag rows-1, padded to 128 B][row 0: max_block x 16 B] ... [row rows-1]
 * The node workspace of one GPU is ring_slots x grid_size such shares, slot-major:
 *   share(slot, cta) at (slot * grid_size + cta) * vmm_slot_bytes.
 * A call whose algorithm needs more rows than the plan has re-cuts the share into that many
 * shorter rows and uses proportionally smaller blocks, so the data workspace never depends on
 * the message size. Across nodes the rows a step needs grow with the number of nodes; the plan
 * holds enough for a 32-thread step of every mode valid for the topology (at least 2 rows per
 * local rank: the multi-node two-shot kernels tag two rounds), and a mode needing more than
 * MIXCOMM_MAX_STEP_ROWS rows is not valid at all, which bounds a share at 512 KiB.
 * Across nodes, the NVSHMEM symmetric workspace holds ring_slots x grid_size shares of
 * nvshmem_rows rows (no tags), then 8-byte signal words [slot][cta][round 0..1][source node]. */
#ifndef MIXCOMM_CORE_PLAN_H_
#define MIXCOMM_CORE_PLAN_H_

#include <stdint.h>

#include "mixcomm.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MIXCOMM_RING_SLOTS 4
#define MIXCOMM_VEC_BYTES 16
#define MIXCOMM_KERNEL_MAX_THREADS 1024
#define MIXCOMM_TAG_AREA_ALIGN 128
#define MIXCOMM_DEFAULT_SM_COUNT 132
/* Most rows (of either workspace) one step of a fused mode may need across nodes: 64 nodes of 8
 * GPUs fit every mode; beyond, a mode needing more is invalid (mixcomm_topology_mode_valid). */
#define MIXCOMM_MAX_STEP_ROWS 1024
/* Smallest step (threads) the plan must hold for every valid mode. */
#define MIXCOMM_MIN_STEP_THREADS 32
/* Across nodes a CTA takes at least this many bytes per put row and peer over a call, and its
 * steps are as long as that allows up to the block cap (put fan-out, docs/design.md). */
#define MIXCOMM_MIN_PUT_BYTES 32768

/* Rows of the node workspace (vmm) and symmetric heap (ns) that one step of (op, mode) uses
 * per CTA. Fused modes only. */
void mixcomm__rows_needed(const mixcomm_topology_t* t, mixcomm_op_t op, mixcomm_mode_t mode,
                          int* vmm_rows, int* ns_rows);

/* The most rows (the larger of the two workspaces) one step of `mode` needs for any op valid
 * for the topology. */
int mixcomm__mode_step_rows(const mixcomm_topology_t* t, mixcomm_mode_t mode);

/* Rows of input blocks one cross-node put of (op, mode) carries per step: K of the one-shot
 * kernel (REDUCESCATTER: local_size, REDUCESCATTER_ALLREDUCE: local_dp_size), else 1. */
int mixcomm__put_rows(const mixcomm_topology_t* t, mixcomm_op_t op, mixcomm_mode_t mode);

/* Chunks a step is cut into: 1 one-shot, local_tp_size (OPT_BYTES1), tp_size (OPT_BYTES2). */
int mixcomm__mode_chunks(const mixcomm_topology_t* t, mixcomm_mode_t mode);

/* Bytes of NVSHMEM signal words at the end of the symmetric workspace. */
size_t mixcomm__signal_bytes(int inter_size, int grid_size);

/* Offset of the tag area's end (start of row 0) inside a CTA's slot share. */
size_t mixcomm__tag_area_bytes(int rows);

/* The plan for a resolved topology (no GPU needed). */
mixcomm_status_t mixcomm__plan_for_topology(const mixcomm_topology_t* t, int grid_size,
                                            int max_block_size, int min_block_size,
                                            mixcomm_workspace_plan_t* plan);

typedef struct mixcomm__geometry {
  int64_t vecs;   /* 16-byte vectors in one rank block (input block, or output block for RS) */
  int64_t span;   /* vectors per CTA (m * chunks) */
  int grid;       /* CTAs launched (0: nothing to do) */
  int block;      /* threads per CTA, a multiple of 32 */
  int steps;      /* steps every CTA runs */
  int chunks;     /* chunks per step */
} mixcomm__geometry_t;

/* Geometry of one call. numel_block is the number of elements of one rank block (input of
 * AR/AG/AR+AG, output of RS/RS+AR). Deterministic: every rank computes the same. */
mixcomm_status_t mixcomm__geometry(const mixcomm_workspace_plan_t* plan,
                                   const mixcomm_topology_t* t, mixcomm_op_t op,
                                   mixcomm_mode_t mode, size_t elem_size, int64_t numel_block,
                                   int min_block_size, int min_num_steps,
                                   mixcomm__geometry_t* g);

/* Geometry of an epilogue call (mixcomm_run_epilogue): like mixcomm__geometry, but every CTA's
 * span is a whole number of rows of row_elems elements, so that each CTA holds complete rows for
 * the row pass (kernels/epilogue.cuh). */
mixcomm_status_t mixcomm__geometry_rows(const mixcomm_workspace_plan_t* plan,
                                        const mixcomm_topology_t* t, mixcomm_op_t op,
                                        mixcomm_mode_t mode, size_t elem_size,
                                        int64_t numel_block, int64_t row_elems,
                                        int min_block_size, int min_num_steps,
                                        mixcomm__geometry_t* g);

#ifdef __cplusplus
}
#endif

#endif
