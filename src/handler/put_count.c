/* SPDX-License-Identifier: Apache-2.0
 * Debug count of the bytes a handler puts across nodes (handler.h): the kernels add every put
 * to two counters in the control block when kargs.count_puts is on, so tests can compare what
 * went on the wire with the model of the call (core/put_model.c). Off unless switched on: the
 * kernels then only test the flag. */
#include <stddef.h>

#include <cuda_runtime_api.h>

#include "core/error.h"
#include "handler/handler.h"

mixcomm_status_t mixcomm__put_count_enable(mixcomm_handler_t* h, int on) {
  MIXCOMM_CHECK(mixcomm__handler_usable(h, "put count"));
  h->count_puts = on != 0;
  return MIXCOMM_SUCCESS;
}

mixcomm_status_t mixcomm__put_count_take(mixcomm_handler_t* h, cudaStream_t stream,
                                         mixcomm__put_count_t* out) {
  MIXCOMM_CHECK(mixcomm__handler_usable(h, "put count"));
  if (out == NULL)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "put count: NULL argument");
  unsigned long long v[2] = {0, 0};
  char* counters = (char*)h->control + offsetof(mixcomm__control_t, put_bytes);
  _Static_assert(offsetof(mixcomm__control_t, puts) ==
                     offsetof(mixcomm__control_t, put_bytes) + sizeof(unsigned long long),
                 "the two counters are adjacent");
  MIXCOMM_CUDA_CHECK(cudaMemcpyAsync(v, counters, sizeof v, cudaMemcpyDeviceToHost, stream),
                     "reading the put counters");
  MIXCOMM_CUDA_CHECK(cudaMemsetAsync(counters, 0, sizeof v, stream), "clearing the put counters");
  MIXCOMM_CUDA_CHECK(cudaStreamSynchronize(stream), "waiting for the put counters");
  out->bytes = v[0];
  out->puts = v[1];
  return MIXCOMM_SUCCESS;
}

mixcomm_status_t mixcomm__put_count_model(const mixcomm_handler_t* h, mixcomm_op_t op,
                                          mixcomm_mode_t mode, int64_t numel_block,
                                          int64_t row_elems, mixcomm__put_count_t* out) {
  MIXCOMM_CHECK(mixcomm__handler_usable(h, "put count"));
  mixcomm__geometry_t g;
  MIXCOMM_CHECK(mixcomm__handler_geometry(h, op, mode, numel_block, row_elems, &g));
  return mixcomm__put_model(&h->topo, op, mode, &g, out);
}
