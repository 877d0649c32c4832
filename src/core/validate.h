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

/* Checks of an epilogue call's arguments after mixcomm__validate_run_ex succeeded: struct size,
 * what each requested output needs, alignment, overlaps (only residual_out == residual_in is
 * allowed). */
mixcomm_status_t mixcomm__validate_epilogue(const mixcomm_topology_t* t, mixcomm_dtype_t dtype,
                                            mixcomm_op_t op, const void* x_in, const void* x_out,
                                            int64_t rows, int64_t row_elems,
                                            const mixcomm__run_shape_t* shape,
                                            const mixcomm_epilogue_t* e);

/* A collective call runs on the handler's GPU: `current` (cudaGetDevice) must be
 * handler_device, else MIXCOMM_ERR_INVALID_USAGE naming both and what to do. */
mixcomm_status_t mixcomm__validate_current_device(int current, int handler_device, int world_rank,
                                                  const char* what);

/* "ALLREDUCE, ALLGATHER" style list of the ops valid for t, into buf. */
void mixcomm__valid_ops_text(const mixcomm_topology_t* t, char* buf, size_t size);

#ifdef __cplusplus
}
#endif

#endif
