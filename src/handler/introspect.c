/* SPDX-License-Identifier: Apache-2.0
 * Questions benchmark tools ask about a handler, never part of a collective's path: the launch
 * shape a call gets (mixcomm-perf's launch floor is measured with the same shape) and the
 * kernels' phase stamps (launch.h) for mixcomm-perf --breakdown. The stamps live right after
 * the control block in device memory; reading them synchronises with the device. */
#include <cuda_runtime_api.h>

#include "core/error.h"
#include "core/topology.h"
#include "core/validate.h"
#include "handler/handler.h"

mixcomm_status_t mixcomm__launch_shape(mixcomm_handler_t* h, mixcomm_op_t op, mixcomm_mode_t mode,
                                       const void* x_in, const void* x_out, int64_t rows,
                                       int64_t row_elems, int* grid, int* block, int* steps) {
  MIXCOMM_CHECK(mixcomm__handler_usable(h, "launch_shape"));
  if (grid == NULL || block == NULL || steps == NULL)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "launch_shape: NULL argument");
  mixcomm__run_shape_t shape;
  MIXCOMM_CHECK(mixcomm__validate_run(&h->topo, h->config.dtype, op, x_in, x_out, rows, row_elems,
                                      &shape));
  MIXCOMM_CHECK(mixcomm__resolve_mode(h, op, rows, row_elems, 0, &mode));
  *grid = *block = *steps = 0;
  if (!mixcomm__mode_is_fused(mode) || rows == 0 || h->topo.world_size == 1)
    return MIXCOMM_SUCCESS;
  mixcomm__geometry_t g;
  MIXCOMM_CHECK(mixcomm__handler_geometry(h, op, mode, shape.numel_block, 0, &g));
  *grid = g.grid;
  *block = g.block;
  *steps = g.steps;
  return MIXCOMM_SUCCESS;
}

mixcomm_status_t mixcomm__debug_stamps(const mixcomm_handler_t* h, mixcomm__stamp_call_t* out) {
  MIXCOMM_CHECK(mixcomm__handler_usable(h, "debug_stamps"));
  if (out == NULL)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "debug_stamps: NULL output");
  if (h->stamps == NULL)
    return mixcomm__error(MIXCOMM_ERR_UNSUPPORTED,
                          "phase stamps: this library was built without them (configure with "
                          "-DMIXCOMM_PHASE_STAMPS=ON)");
  MIXCOMM_CUDA_CHECK(cudaDeviceSynchronize(), "waiting for the kernels before reading stamps");
  MIXCOMM_CUDA_CHECK(cudaMemcpy(out, h->stamps, MIXCOMM_STAMP_CALLS * sizeof *out,
                                cudaMemcpyDeviceToHost),
                     "copying the phase stamps");
  return MIXCOMM_SUCCESS;
}
