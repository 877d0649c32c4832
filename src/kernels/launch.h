/* SPDX-License-Identifier: Apache-2.0
 * The only kernel header host C code includes: plain structs passed by value to the kernels,
 * and extern "C" launchers. */
#ifndef MIXCOMM_KERNELS_LAUNCH_H_
#define MIXCOMM_KERNELS_LAUNCH_H_

#include <stdint.h>

#include <cuda_runtime_api.h>

#include "mixcomm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Error record the kernels fill when a wait fails. The first failing thread of a handler wins
 * (atomicCAS on `claimed` in device memory) and copies the record to host-mapped memory, writing
 * `status` last, so the host can read it at any time without synchronising. */
typedef struct mixcomm__error_record {
  volatile int status;     /* mixcomm_status_t; 0 = no error */
  int peer_local_rank;     /* local rank waited for (-1 if none) */
  int peer_world_rank;     /* its world rank */
  int op, mode, step, cta, row;
  uint32_t tag_expected[4];
  uint32_t tag_received[4];
} mixcomm__error_record_t;

/* Host-mapped page shared by host and kernels. */
typedef struct mixcomm__host_flags {
  mixcomm__error_record_t error; /* written by kernels */
  volatile int abort;            /* written by the host (mixcomm_handler_abort) */
  /* World rank + 1 of a peer whose connection closed (0: none), written by the handler's
   * watch thread (handler/peer_watch.c); waiting kernels stop with MIXCOMM_ERR_PEER_LOST. */
  volatile int peer_lost;
} mixcomm__host_flags_t;

/* Per-CTA state kept in device memory between calls (the ring position is never on the host,
 * so calls need no host synchronisation and CUDA graphs replay correctly). One 64-bit word, so
 * that a kernel claims the CTA and reads its state with one atomic and releases it with one
 * more (device_common.cuh begin_call / save_ring):
 *   bit 63      busy: a kernel of the handler runs this CTA (catches two streams at once);
 *   bits 32-39  ring position: the slot the next step uses;
 *   bits 0-31   calls made so far (goes into every tag and signal). */
typedef struct mixcomm__cta_state {
  unsigned long long word;
  unsigned long long pad;
} mixcomm__cta_state_t;

/* Device-side control block: the error claim words, then the CTA states. */
typedef struct mixcomm__control {
  int claimed;  /* 0 until a thread records an error */
  int stop;     /* set with claimed: every waiting thread of the handler gives up */
  /* Debug count of what the cross-node kernels put (kargs count_puts; handler/put_count.c):
   * bytes of data, and network operations (put-with-signal, or a signal alone). */
  unsigned long long put_bytes, puts;
  int pad[58];
  mixcomm__cta_state_t cta[1]; /* grid_size entries */
} mixcomm__control_t;

/* The fused epilogue of a call (mixcomm_run_epilogue; kernels/epilogue.cuh). All zero for a
 * plain call, whose kernels then store S to x_out and nothing else. */
typedef struct mixcomm__epilogue_args {
  int on;              /* an epilogue call: row-aligned geometry, S goes through store_result */
  int add_at_source;   /* gather ops, tp rank 0: contribute round(input + residual_in) */
  int add_at_output;   /* other ops: P = round(S + residual_in) where S is stored */
  int write_s;         /* store S to x_out */
  int own_block;       /* output block whose P goes to residual_out (gather: dp_rank; else 0) */
  int stash_is_residual; /* the stash is residual_out (one store serves both) */
  int normalize;       /* run the row pass: norm_out and/or quant_out */
  int row_aligned;     /* the call uses the row-aligned geometry (the pass runs in the kernel) */
  int row_vecs;        /* 16-byte vectors per row */
  float eps;
  const void* residual_in;
  void* residual_out;
  void* stash;         /* P of every output row, for the row pass (norm_out, residual_out or a
                          temporary); NULL when nothing is normalized */
  const void* gamma;
  void* norm_out;
  void* quant_out;
  const float* scale;
} mixcomm__epilogue_args_t;

/* Phase stamps: builds configured with -DMIXCOMM_PHASE_STAMPS=ON only (mixcomm-perf prints
 * them as a "# breakdown" line; docs/results/latency-h200.md). Thread 0 of CTA 0 records
 * %globaltimer at the phase boundaries of every call into slot (CTA 0's call number %
 * MIXCOMM_STAMP_CALLS). Only CTA 0: the other CTAs' call numbers differ from CTA 0's whenever
 * earlier calls used fewer CTAs, so their stamps could not be matched to the same call.
 * Release builds compile none of it. */
#ifndef MIXCOMM_PHASE_STAMPS
#define MIXCOMM_PHASE_STAMPS 0
#endif
#define MIXCOMM_STAMP_CALLS 64
enum {
  MIXCOMM_STAMP_ENTRY = 0, /* CTA 0 starts (before waiting for the previous kernel) */
  MIXCOMM_STAMP_RESOLVED,  /* the previous kernel of the stream has finished (PDL wait) */
  MIXCOMM_STAMP_CLAIMED,   /* ring state claimed (begin_call) */
  MIXCOMM_STAMP_PRODUCED,  /* produce(0) done: step 0's sends written */
  MIXCOMM_STAMP_RELAYED,   /* relay(0) done (two-shot: phase 1 received, phase 2 sent) */
  MIXCOMM_STAMP_CONSUMED,  /* the last step's consume done: every wait is over */
  MIXCOMM_STAMP_FINISHED,  /* the epilogue's row pass done (same as CONSUMED without one) */
  MIXCOMM_STAMP_EXIT,      /* ring state released */
  MIXCOMM_STAMP_SEQ,       /* call number + 1 of the call in this slot */
  MIXCOMM_STAMP_FIELDS = 16
};
typedef struct mixcomm__stamp_call {
  unsigned long long t[MIXCOMM_STAMP_FIELDS];
} mixcomm__stamp_call_t;
/* Uneven rows per DP rank (mixcomm_run_v, mixcomm_run_v_device; kernels/uneven.cuh). DP block k
 * holds rows[k] rows of row_vecs vectors, the blocks packed in dp order (block k starts at the sum
 * of the rows before it); the call's geometry (kargs vecs) is cut for the largest block allowed,
 * max_rows. on = 0 for every equal-size call, whose kernels then run exactly their plain code. */
typedef struct mixcomm__uneven {
  int on;
  int blocks;               /* dp_size entries */
  int64_t row_vecs;         /* 16-byte vectors per row */
  int64_t max_rows;         /* rows of the largest block the geometry allows (kargs vecs) */
  const int32_t* rows_dev;  /* device form: counts read by every CTA at its start; NULL: rows[] */
  int64_t rows[MIXCOMM_MAX_DP_SIZE]; /* host form */
} mixcomm__uneven_t;

typedef struct mixcomm__kargs {
  /* Workspaces of the node, indexed by local rank (each mapped into this process). */
  char* peers[MIXCOMM_MAX_LOCAL_SIZE];
  const void* x_in;
  void* x_out;
  mixcomm__control_t* control;
  mixcomm__host_flags_t* host; /* device pointer of the host-mapped flags */
  /* Geometry (plan.h). */
  int64_t vecs, span;
  int steps, chunks, block;
  /* Plan. */
  int plan_grid, plan_rows;
  int row_vecs;    /* stride of node-workspace rows (vectors): the plan's rows re-cut into as
                      many rows as this call's algorithm needs */
  uint64_t slot_bytes, tag_bytes;
  /* Topology of the node. */
  int local_rank, local_size, local_tp, local_dp;
  int world_rank_base; /* world rank of local rank 0 */
  int op, mode, dtype;
  int pdl; /* launch with programmatic dependent launch allowed (launch_fused) */
  int count_puts; /* add every cross-node put to control->put_bytes/puts (debug, off by default) */
  uint64_t timeout_ns;
  /* Across nodes: the NVSHMEM symmetric workspace (same address on every PE). */
  char* ns_base;          /* data shares, laid out like the node workspace without tags */
  uint64_t* ns_signals;   /* [slot][cta][round 0..1][source node] signal words */
  uint64_t ns_slot_bytes;
  int ns_rows;
  int ns_row_vecs; /* stride of symmetric-workspace rows, cut the same way */
  int inter_rank, inter_size, inter_tp, inter_dp;
  mixcomm__epilogue_args_t epi;
  mixcomm__stamp_call_t* stamps; /* MIXCOMM_STAMP_CALLS slots; NULL unless a stamps build */
  mixcomm__uneven_t uneven;
} mixcomm__kargs_t;

/* How many CTAs of `block` threads of the single-node kernels fit on one SM at once (the
 * smaller of the one-shot and two-shot kernels). Returns a cudaError_t value. */
int mixcomm__intranode_blocks_per_sm(int dtype, int block, int* blocks);

/* Launch the single-node fused kernel (one-shot or two-shot by kargs->mode) with
 * kargs->geometry on stream. Returns a cudaError_t value. */
int mixcomm__launch_intranode(const mixcomm__kargs_t* kargs, cudaStream_t stream);

/* The epilogue as a kernel of its own, after an exchange that left S in `s` (NCCL modes, a
 * world of one rank): every output block's rows get the epilogue of e (row pass included);
 * blocks = output blocks of S (dp_size for gather ops, else 1), vecs = vectors per block. With
 * e.write_s, S is also copied to x_out. Returns a cudaError_t value. */
typedef struct mixcomm__epilogue_launch {
  const void* s;
  void* x_out;      /* where e.write_s copies S */
  int rows_only;    /* the stash already holds P: only the row pass */
  int64_t vecs;
  int blocks;
  int dtype;
  mixcomm__epilogue_args_t e;
} mixcomm__epilogue_launch_t;
int mixcomm__launch_epilogue(const mixcomm__epilogue_launch_t* args, cudaStream_t stream);

/* dst = round(src + residual) per element (vecs 16-byte vectors): the contribution of tp rank 0
 * of a gather op before an NCCL exchange. Returns a cudaError_t value. */
int mixcomm__launch_add_residual(const void* src, const void* residual, void* dst, int64_t vecs,
                                 int dtype, cudaStream_t stream);

/* Sum rank blocks gathered by NCCL into the output, in fp32 (NCCL_ONE of the fused ops).
 * src holds world_size blocks of numel elements in world-rank order.
 *   tp_major = 1 (ALLREDUCE_ALLGATHER): output block d = sum over tp rank t of the block of the
 *     rank (t, d), for every dp rank d;
 *   tp_major = 0 (REDUCESCATTER_ALLREDUCE): the single output block = sum of all blocks.
 * Summation order is ascending tp rank / world rank. Returns a cudaError_t value. */
typedef struct mixcomm__sum_args {
  const void* src;
  void* dst;
  int64_t vecs; /* 16-byte vectors per block */
  int tp_major;
  int local_size, local_tp, local_dp, inter_tp, inter_dp;
  int dtype;
} mixcomm__sum_args_t;
int mixcomm__launch_sum_blocks(const mixcomm__sum_args_t* args, cudaStream_t stream);

/* Copy the handler's phase stamps (MIXCOMM_STAMP_CALLS slots) to `out`. MIXCOMM_ERR_UNSUPPORTED
 * unless the library was built with MIXCOMM_PHASE_STAMPS (src/handler/introspect.c). */
mixcomm_status_t mixcomm__debug_stamps(const mixcomm_handler_t* h, mixcomm__stamp_call_t* out);

/* The launch shape (CTAs, threads per CTA, steps) of the plain call mixcomm_run(h, op, x_in,
 * x_out, rows, row_elems, mode) would make, without making it; all 0 when the call launches no
 * fused kernel (NCCL modes, zero rows, one rank). DEFAULT and AUTOTUNE are resolved as
 * mixcomm_run would. src/handler/introspect.c. */
mixcomm_status_t mixcomm__launch_shape(mixcomm_handler_t* h, mixcomm_op_t op, mixcomm_mode_t mode,
                                       const void* x_in, const void* x_out, int64_t rows,
                                       int64_t row_elems, int* grid, int* block, int* steps);
/* A world of one rank with device-array counts (mixcomm_run_v_device): copy rows_dev[0] rows of
 * a->uneven.row_vecs vectors from a->x_in to a->x_out, or record MIXCOMM_ERR_INVALID_ARGUMENT in
 * the handler's error record if the count is outside [0, max_rows]. Returns a cudaError_t. */
int mixcomm__launch_copy_rows(const mixcomm__kargs_t* a, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
