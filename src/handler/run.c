/* SPDX-License-Identifier: Apache-2.0
 * The public collective entry points of equal blocks (the work is dispatch.c's) and the
 * questions a caller asks of a handler about its calls: output rows, valid ops and modes. */
#include "core/error.h"
#include "core/topology.h"
#include "handler/handler.h"

mixcomm_status_t mixcomm_run(mixcomm_handler_t* h, mixcomm_op_t op, const void* x_in,
                             void* x_out, int64_t rows, int64_t row_elems, mixcomm_mode_t mode,
                             cudaStream_t stream) {
  return mixcomm__dispatch(h, op, x_in, x_out, rows, row_elems, NULL, mode, stream);
}

mixcomm_status_t mixcomm_run_epilogue(mixcomm_handler_t* h, mixcomm_op_t op, const void* x_in,
                                      void* x_out, int64_t rows, int64_t row_elems,
                                      const mixcomm_epilogue_t* epilogue, mixcomm_mode_t mode,
                                      cudaStream_t stream) {
  return mixcomm__dispatch(h, op, x_in, x_out, rows, row_elems, epilogue, mode, stream);
}

int64_t mixcomm_output_rows(const mixcomm_handler_t* h, mixcomm_op_t op, int64_t rows) {
  if (mixcomm__handler_usable(h, "output_rows") != MIXCOMM_SUCCESS)
    return -1;
  return mixcomm__output_rows(&h->topo, op, rows);
}

mixcomm_status_t mixcomm_get_valid_op_list(const mixcomm_handler_t* h, mixcomm_op_t* ops,
                                           int capacity, int* count) {
  MIXCOMM_CHECK(mixcomm__handler_usable(h, "get_valid_op_list"));
  if (count == NULL || (ops == NULL && capacity > 0))
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "get_valid_op_list: NULL argument");
  int n = 0;
  for (int op = 0; op < MIXCOMM_NUM_OPS; op++) {
    if (!mixcomm_topology_op_valid(&h->topo, (mixcomm_op_t)op))
      continue;
    if (n < capacity)
      ops[n] = (mixcomm_op_t)op;
    n++;
  }
  *count = n;
  return MIXCOMM_SUCCESS;
}

mixcomm_status_t mixcomm_get_valid_mode_list(const mixcomm_handler_t* h, mixcomm_mode_t* modes,
                                             int capacity, int* count) {
  MIXCOMM_CHECK(mixcomm__handler_usable(h, "get_valid_mode_list"));
  if (count == NULL || (modes == NULL && capacity > 0))
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "get_valid_mode_list: NULL argument");
  int n = 0;
  for (int m = 0; m < MIXCOMM_NUM_MODES; m++) {
    if (!mixcomm_topology_mode_valid(&h->topo, &h->caps, (mixcomm_mode_t)m, NULL))
      continue;
    if (n < capacity)
      modes[n] = (mixcomm_mode_t)m;
    n++;
  }
  *count = n;
  return MIXCOMM_SUCCESS;
}

const char* mixcomm_mode_invalid_reason(const mixcomm_handler_t* h, mixcomm_mode_t mode) {
  if (mixcomm__handler_usable(h, "mode_invalid_reason") != MIXCOMM_SUCCESS)
    return "not a live handler";
  return mixcomm__mode_invalid_reason(h, mode);
}
