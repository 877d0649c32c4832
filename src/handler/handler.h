/* SPDX-License-Identifier: Apache-2.0
 * The handler object (opaque to users) and the internal calls between its parts. The files call
 * each other downwards only, in this order (a file calls only files below it):
 *   handler.c (lifetime), checkpoint.c, run.c, run_uneven.c, introspect.c, put_count.c
 *   autotune.c (measured calls go through dispatch.c, like a user's)
 *   dispatch.c (one call of equal blocks)
 *   epilogue_call.c, select_mode.c
 *   launch_fused.c, call_checks.c
 *   async_error.c
 *   registry.c (live handlers) */
#ifndef MIXCOMM_HANDLER_HANDLER_H_
#define MIXCOMM_HANDLER_HANDLER_H_

#include <pthread.h>
#include <stdint.h>

#include "core/plan.h"
#include "core/put_model.h"
#include "core/validate.h"
#include "kernels/launch.h"
#include "mixcomm.h"
#include "transport/vmm.h"
#include "tune/tune.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mixcomm__state {
  MIXCOMM_STATE_CREATING = 0,
  MIXCOMM_STATE_READY,        /* runs allowed */
  MIXCOMM_STATE_CHECKPOINTED, /* physical memory released: runs refused */
  MIXCOMM_STATE_FAILED,       /* an asynchronous error was seen: only shutdown is allowed */
  MIXCOMM_STATE_SHUT_DOWN
} mixcomm__state_t;

struct mixcomm_handler {
  mixcomm_config_t config;
  mixcomm_topology_t topo;
  mixcomm_caps_t caps;
  mixcomm_workspace_plan_t plan;
  mixcomm_bootstrap_t* bs;
  int device, sm_count;
  int blocks_per_sm; /* fused-kernel CTAs that fit on one SM (co-residency bound) */
  int timeout_ms;
  int pdl; /* launch fused kernels with programmatic dependent launch (MIXCOMM_DISABLE_PDL) */
  int count_puts; /* kernels count what they put across nodes (debug: put_count.c) */
  mixcomm__state_t state;

  /* Node workspace (init_virtual_memory). */
  mixcomm__vmm_t vmm;
  int vmm_ready;

  /* Kernel control block (device memory) and host-mapped flags. */
  mixcomm__control_t* control;
  mixcomm__host_flags_t* host;     /* host address */
  mixcomm__host_flags_t* host_dev; /* the same page as the device sees it */
  mixcomm__stamp_call_t* stamps;   /* after the control block; phase-stamps builds only */

  /* Autotune: chosen mode per op and bucket, and how many buckets were measured. */
  int tuned;
  int tune_buckets;
  mixcomm__tune_table_t tune_table;
  mixcomm__tune_table_t tune_table_epilogue; /* calls with an epilogue (mixcomm_run_epilogue) */

  /* NVSHMEM symmetric workspace (jobs across nodes) and whether this handler started NVSHMEM. */
  void* nvshmem_ws;
  int nvshmem_owner;

  /* NCCL communicators (NULL when NCCL modes are invalid). */
  struct mixcomm__nccl* nccl;

  /* Watch on the bootstrap's connections (NULL: none); who saw the lost peer's connection close
   * (written by the watch thread before host->peer_lost). */
  struct mixcomm__peer_watch* watch;
  volatile int lost_via;

  /* The last stream a collective was enqueued on (misuse detection). */
  cudaStream_t last_stream;
  int have_last_stream;
};

/* The registry of live handlers (registry.c): register at creation (0: out of memory),
 * unregister at shutdown, and whether h is live. */
int mixcomm__handler_register(const mixcomm_handler_t* h);
void mixcomm__handler_unregister(const mixcomm_handler_t* h);
int mixcomm__handler_live(const mixcomm_handler_t* h);

/* How this rank learned of its lost peer, for messages ("its connection to this rank closed",
 * or that rank 0 saw it and told this rank). */
const char* mixcomm__peer_watch_how(const mixcomm_handler_t* h);

/* Checks shared by every public entry point taking a handler. */
mixcomm_status_t mixcomm__handler_usable(const mixcomm_handler_t* h, const char* what);

/* Convert a recorded kernel error into a status and message (and mark the handler failed). */
mixcomm_status_t mixcomm__handler_poll_error(mixcomm_handler_t* h);

/* Fill kernel arguments common to every launch. */
void mixcomm__kargs_init(const mixcomm_handler_t* h, mixcomm__kargs_t* a);

/* One collective call of equal blocks (dispatch.c): epilogue NULL (or asking nothing) is the
 * plain call. What mixcomm_run and mixcomm_run_epilogue do, for them and for autotune. */
mixcomm_status_t mixcomm__dispatch(mixcomm_handler_t* h, mixcomm_op_t op, const void* x_in,
                                   void* x_out, int64_t rows, int64_t row_elems,
                                   const mixcomm_epilogue_t* epilogue, mixcomm_mode_t mode,
                                   cudaStream_t stream);
/* The same after the handler's checks (mixcomm__run_admit) and the epilogue struct's have
 * passed (mixcomm_run_v's all-equal lists, which made them already). */
mixcomm_status_t mixcomm__dispatch_admitted(mixcomm_handler_t* h, mixcomm_op_t op,
                                            const void* x_in, void* x_out, int64_t rows,
                                            int64_t row_elems, const mixcomm_epilogue_t* epilogue,
                                            mixcomm_mode_t mode, cudaStream_t stream);

/* The geometry of a fused call of (op, mode) on numel_block elements per rank block: cut into
 * whole rows of row_elems elements when row_elems > 0 (an epilogue's row pass), else plain. */
mixcomm_status_t mixcomm__handler_geometry(const mixcomm_handler_t* h, mixcomm_op_t op,
                                           mixcomm_mode_t mode, int64_t numel_block,
                                           int64_t row_elems, mixcomm__geometry_t* g);

/* Fused launch of (op, mode) for a validated call; epi is NULL for a plain call, else the
 * epilogue (row-aligned geometry over rows of row_elems elements). */
mixcomm_status_t mixcomm__run_fused(mixcomm_handler_t* h, mixcomm_op_t op, mixcomm_mode_t mode,
                                    const void* x_in, void* x_out, int64_t numel_block,
                                    int64_t row_elems, const mixcomm__epilogue_args_t* epi,
                                    cudaStream_t stream);

/* The same with uneven rows per DP rank when uneven is not NULL (numel_block is then the largest
 * block the geometry is cut for; kernels/uneven.cuh). One node only. */
mixcomm_status_t mixcomm__run_fused_v(mixcomm_handler_t* h, mixcomm_op_t op, mixcomm_mode_t mode,
                                      const void* x_in, void* x_out, int64_t numel_block,
                                      int64_t row_elems, const mixcomm__epilogue_args_t* epi,
                                      const mixcomm__uneven_t* uneven, cudaStream_t stream);

/* An epilogue call (epilogue_call.c) once its arguments are checked (rows > 0) and mode is
 * concrete: checks its pointers, then runs it. uneven: rows per DP rank (run_uneven.c; shape
 * holds the byte counts and numel_block the largest block), NULL for equal blocks. */
mixcomm_status_t mixcomm__run_epilogue_call(mixcomm_handler_t* h, mixcomm_op_t op,
                                           mixcomm_mode_t mode, const void* x_in, void* x_out,
                                           int64_t row_elems, const mixcomm__run_shape_t* shape,
                                           const mixcomm_epilogue_t* epilogue,
                                           const mixcomm__uneven_t* uneven, cudaStream_t stream);

/* The state checks every collective call starts with (usable, no recorded error, ready). */
mixcomm_status_t mixcomm__run_admit(mixcomm_handler_t* h);

/* The caller's buffer p must be device memory of the handler's GPU. */
mixcomm_status_t mixcomm__check_device_pointer(const mixcomm_handler_t* h, const void* p,
                                              const char* name);

/* Why mode is not valid for the handler, NULL if it is (mixcomm_mode_invalid_reason without
 * the handler check). */
const char* mixcomm__mode_invalid_reason(const mixcomm_handler_t* h, mixcomm_mode_t mode);

/* The concrete mode of a call: DEFAULT and AUTOTUNE resolved (the epilogue table when
 * epilogue), any other mode checked for validity. */
mixcomm_status_t mixcomm__resolve_mode(mixcomm_handler_t* h, mixcomm_op_t op, int64_t rows,
                                      int64_t row_elems, int epilogue, mixcomm_mode_t* mode);

/* The mode autotune (or the cost model) picks for a call; epilogue selects the table measured
 * with the epilogue. */
mixcomm_status_t mixcomm__select_mode(const mixcomm_handler_t* h, mixcomm_op_t op, int64_t rows,
                                      int64_t row_elems, int epilogue, mixcomm_mode_t* mode);

/* Autotune at creation: from the cache if every rank can use it, else measured. */
mixcomm_status_t mixcomm__tune_at_creation(mixcomm_handler_t* h);

/* Debug count of what the cross-node kernels put (put_count.c; for tests). enable switches the
 * counting on for later calls; take reads the counters after the calls enqueued on `stream`
 * and clears them; model is what a plain call (row_elems 0) or an epilogue call of rows of
 * row_elems elements of (op, mode) on numel_block elements per rank block should put. */
mixcomm_status_t mixcomm__put_count_enable(mixcomm_handler_t* h, int on);
mixcomm_status_t mixcomm__put_count_take(mixcomm_handler_t* h, cudaStream_t stream,
                                         mixcomm__put_count_t* out);
mixcomm_status_t mixcomm__put_count_model(const mixcomm_handler_t* h, mixcomm_op_t op,
                                          mixcomm_mode_t mode, int64_t numel_block,
                                          int64_t row_elems, mixcomm__put_count_t* out);

/* Zero the ring state, poison the own workspace and zero the own symmetric workspace with its
 * signal words (creation and checkpoint restore): every trace of the calls before is gone, so
 * the restarted call counters cannot meet an old tag or signal. */
mixcomm_status_t mixcomm__protocol_reset(mixcomm_handler_t* h);

#ifdef __cplusplus
}
#endif

#endif
