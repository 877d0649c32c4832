/* SPDX-License-Identifier: Apache-2.0
 * One collective call of equal blocks, with or without an epilogue: check the handler and the
 * arguments, pick the mode, and hand the call to the fused kernels, NCCL or the epilogue paths
 * (epilogue_call.c). The public entry points (run.c, run_uneven.c) and autotune's timed calls
 * all come through here, so a measured call is exactly a user's call. Nothing here synchronises
 * the host. */
#include <cuda_runtime_api.h>

#include "core/error.h"
#include "core/topology.h"
#include "core/validate.h"
#include "handler/handler.h"
#include "transport/nccl.h"

mixcomm_status_t mixcomm__dispatch_admitted(mixcomm_handler_t* h, mixcomm_op_t op,
                                            const void* x_in, void* x_out, int64_t rows,
                                            int64_t row_elems, const mixcomm_epilogue_t* epilogue,
                                            mixcomm_mode_t mode, cudaStream_t stream) {
  /* Nothing asked of the epilogue (or none given): the plain call. */
  const int asked = mixcomm__epilogue_asked(epilogue);
  mixcomm__run_shape_t shape;
  MIXCOMM_CHECK(mixcomm__validate_run_ex(&h->topo, h->config.dtype, op, x_in, x_out, asked, rows,
                                         row_elems, &shape));
  if (asked) {
    MIXCOMM_CHECK(mixcomm__validate_epilogue(&h->topo, h->config.dtype, op, x_in, x_out, rows,
                                             row_elems, &shape, epilogue));
    if (x_out == NULL && !mixcomm__epilogue_requested(epilogue))
      return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                            "run_epilogue: no output: give x_out, residual_out, norm_out or "
                            "quant_out");
  }
  MIXCOMM_CHECK(mixcomm__resolve_mode(h, op, rows, row_elems, asked, &mode));
  if (rows == 0)
    return MIXCOMM_SUCCESS;
  if (asked)
    return mixcomm__run_epilogue_call(h, op, mode, x_in, x_out, row_elems, &shape, epilogue,
                                      NULL, stream);
  MIXCOMM_CHECK(mixcomm__check_device_pointer(h, x_in, "x_in"));
  MIXCOMM_CHECK(mixcomm__check_device_pointer(h, x_out, "x_out"));
  if (mixcomm__mode_is_fused(mode))
    return mixcomm__run_fused(h, op, mode, x_in, x_out, shape.numel_block, row_elems, NULL,
                              stream);
  return mixcomm__nccl_run(h, op, mode, x_in, x_out, shape.numel_block, stream);
}

mixcomm_status_t mixcomm__dispatch(mixcomm_handler_t* h, mixcomm_op_t op, const void* x_in,
                                   void* x_out, int64_t rows, int64_t row_elems,
                                   const mixcomm_epilogue_t* epilogue, mixcomm_mode_t mode,
                                   cudaStream_t stream) {
  MIXCOMM_CHECK(mixcomm__validate_epilogue_struct(epilogue));
  MIXCOMM_CHECK(mixcomm__run_admit(h));
  return mixcomm__dispatch_admitted(h, op, x_in, x_out, rows, row_elems, epilogue, mode, stream);
}
