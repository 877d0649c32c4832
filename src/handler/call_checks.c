/* SPDX-License-Identifier: Apache-2.0
 * The checks every collective call starts with: the handler's state (live, no recorded error,
 * ready, on its device) and that the caller's buffers are device memory of its GPU. */
#include <cuda_runtime_api.h>

#include "core/error.h"
#include "core/validate.h"
#include "handler/handler.h"

mixcomm_status_t mixcomm__run_admit(mixcomm_handler_t* h) {
  MIXCOMM_CHECK(mixcomm__handler_usable(h, "run"));
  MIXCOMM_CHECK(mixcomm__handler_poll_error(h));
  if (h->state == MIXCOMM_STATE_CHECKPOINTED)
    return mixcomm__error(MIXCOMM_ERR_INVALID_USAGE,
                          "run: the workspace is released by checkpoint_prepare; call "
                          "checkpoint_restore first");
  if (h->state != MIXCOMM_STATE_READY)
    return mixcomm__error(MIXCOMM_ERR_INVALID_USAGE, "run: the handler is not ready (state %d)",
                          (int)h->state);
  int current = -1;
  MIXCOMM_CUDA_CHECK(cudaGetDevice(&current), "run: reading the current CUDA device");
  return mixcomm__validate_current_device(current, h->device, h->topo.world_rank, "run");
}

mixcomm_status_t mixcomm__check_device_pointer(const mixcomm_handler_t* h, const void* p,
                                              const char* name) {
  struct cudaPointerAttributes attr;
  cudaError_t e = cudaPointerGetAttributes(&attr, p);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return mixcomm__cuda_error((int)e, name);
  }
  if (attr.type != cudaMemoryTypeDevice && attr.type != cudaMemoryTypeManaged)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "%s=%p is not device memory (memory type %d): pass a GPU buffer", name,
                          p, (int)attr.type);
  if (attr.type == cudaMemoryTypeDevice && attr.device != h->device)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "%s=%p is on device %d but the handler uses device %d", name, p,
                          attr.device, h->device);
  return MIXCOMM_SUCCESS;
}
