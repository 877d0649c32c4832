/* SPDX-License-Identifier: Apache-2.0
 * Checks of a run's arguments that need no GPU: op for the topology, shapes, alignment,
 * overlap. Each failure names the offending values. */
#ifndef MIXCOMM_CORE_VALIDATE_H_
#define MIXCOMM_CORE_VALIDATE_H_

#include <stdint.h>

#include "mixcomm.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mixcomm__run_shape {
  int64_t numel_block; /* elements of one rank block (see plan.h) */
  int64_t out_rows;
  uint64_t in_bytes, out_bytes;
} mixcomm__run_shape_t;

mixcomm_status_t mixcomm__validate_run(const mixcomm_topology_t* t, mixcomm_dtype_t dtype,
                                       mixcomm_op_t op, const void* x_in, const void* x_out,
                                       int64_t rows, int64_t row_elems,
                                       mixcomm__run_shape_t* shape);

/* The same; with x_out_optional, x_out may be NULL (an epilogue call that writes only the
 * epilogue's outputs). */
mixcomm_status_t mixcomm__validate_run_ex(const mixcomm_topology_t* t, mixcomm_dtype_t dtype,
                                          mixcomm_op_t op, const void* x_in, const void* x_out,
                                          int x_out_optional, int64_t rows, int64_t row_elems,
                                          mixcomm__run_shape_t* shape);

/* 1 if e asks for any epilogue output (residual_out, norm_out or quant_out). */
int mixcomm__epilogue_requested(const mixcomm_epilogue_t* e);

/* 1 if e asks anything of the epilogue (an output, or an input one would use: residual_in,
 * rms_gamma, quant_scale); a call that asks nothing is the plain call. NULL asks nothing. */
int mixcomm__epilogue_asked(const mixcomm_epilogue_t* e);

/* e (when not NULL) was initialised for this mixcomm_epilogue_t (its struct_size). */
mixcomm_status_t mixcomm__validate_epilogue_struct(const mixcomm_epilogue_t* e);

/* Checks of an epilogue call's arguments after mixcomm__validate_run_ex succeeded: struct size,
 * what each requested output needs, alignment, overlaps (only residual_out == residual_in is
 * allowed). rows: this rank's residual rows (the input's for gather ops), which may be 0 while
 * the call still moves data (an uneven call's empty block): then no residual is checked. */
mixcomm_status_t mixcomm__validate_epilogue(const mixcomm_topology_t* t, mixcomm_dtype_t dtype,
                                            mixcomm_op_t op, const void* x_in, const void* x_out,
                                            int64_t rows, int64_t row_elems,
                                            const mixcomm__run_shape_t* shape,
                                            const mixcomm_epilogue_t* e);

/* A collective call runs on the handler's GPU: `current` (cudaGetDevice) must be
 * handler_device, else MIXCOMM_ERR_INVALID_USAGE naming both and what to do. */
mixcomm_status_t mixcomm__validate_current_device(int current, int handler_device, int world_rank,
                                                  const char* what);
/* Rows of row_elems elements of dtype: a known dtype, row_elems >= 1, and a row of whole 16-byte
 * vectors; *row_bytes is its size. */
mixcomm_status_t mixcomm__validate_row(mixcomm_dtype_t dtype, int64_t row_elems,
                                       int64_t* row_bytes);

/* Buffers the kernels read and write in 16-byte vectors: both aligned (NULL passes), and not
 * overlapping when both are given and non-empty. */
mixcomm_status_t mixcomm__validate_buffers(const void* x_in, uint64_t in_bytes, const void* x_out,
                                           uint64_t out_bytes);

/* A host list of rows per DP rank (mixcomm_run_v), after mixcomm__validate_dp_rows. */
typedef struct mixcomm__dp_rows_info {
  int64_t total, max, own; /* sum, largest, this rank's (dp_rank) */
  int all_equal;
} mixcomm__dp_rows_info_t;

/* Checks shared by both uneven forms: op in range, valid for t and one with a DP group (the
 * gather and scatter ops; ALLREDUCE has none), dp_size <= MIXCOMM_MAX_DP_SIZE. */
mixcomm_status_t mixcomm__validate_uneven_op(const mixcomm_topology_t* t, mixcomm_op_t op);

/* The host list: not NULL, every count >= 0, the sum does not overflow. */
mixcomm_status_t mixcomm__validate_dp_rows(const mixcomm_topology_t* t, const int64_t* dp_rows,
                                           mixcomm__dp_rows_info_t* info);

/* Why `mode` (a concrete mode) cannot run an uneven call on topology t, NULL if it can: across
 * nodes the fused modes other than FUSED_OPT_WAITS_UC (their kernels take no uneven rows); the
 * NCCL modes with the counts on the device (device_counts: mixcomm_run_v_device). */
const char* mixcomm__uneven_mode_unsupported(const mixcomm_topology_t* t, mixcomm_mode_t mode,
                                             int device_counts);

/* The mode an uneven call runs in. picked: the concrete mode `asked` resolved to (itself, or
 * what DEFAULT or AUTOTUNE chose for the equal-size call of the same total). If picked cannot
 * take uneven rows, an explicit mode is MIXCOMM_ERR_UNSUPPORTED naming why; DEFAULT and AUTOTUNE
 * move to the first of FUSED_OPT_WAITS_UC, FUSED_OPT_BYTES1_UC, NCCL_TP_DP, NCCL_ONE valid on
 * (t, caps) that can (across nodes that is WAITS_UC when the NVSHMEM plugin is there), else
 * MIXCOMM_ERR_UNSUPPORTED. */
mixcomm_status_t mixcomm__uneven_mode(const mixcomm_topology_t* t, const mixcomm_caps_t* caps,
                                      mixcomm_mode_t asked, mixcomm_mode_t picked,
                                      int device_counts, mixcomm_mode_t* mode);

/* Shapes and buffers of an uneven call that reads in_rows and writes out_rows rows of row_elems
 * (for the device form: the capacities the buffers must have). Fills shape (numel_block is left
 * to the caller: the largest block). x_out may be NULL when x_out_optional. */
mixcomm_status_t mixcomm__validate_run_v(mixcomm_dtype_t dtype, const void* x_in,
                                         const void* x_out, int x_out_optional, int64_t in_rows,
                                         int64_t out_rows, int64_t row_elems,
                                         mixcomm__run_shape_t* shape);

/* op is an operation and valid for t (the message lists the valid ones). */
mixcomm_status_t mixcomm__validate_op(const mixcomm_topology_t* t, mixcomm_op_t op);

/* "ALLREDUCE, ALLGATHER" style list of the ops valid for t, into buf. */
void mixcomm__valid_ops_text(const mixcomm_topology_t* t, char* buf, size_t size);

#ifdef __cplusplus
}
#endif

#endif
