/* SPDX-License-Identifier: Apache-2.0
 * checkpoint_prepare / checkpoint_restore: give the node workspace's physical memory back
 * while a model sleeps, keeping every address, so CUDA graphs captured earlier replay after
 * restore. Both are collective: a rank's memory is only freed once every peer unmapped it, and
 * no peer may write into it again before it is re-poisoned. After restore every rank restarts
 * its ring at slot 0 with a fresh call counter, consistently, and its symmetric workspace's
 * signal words are zeroed, so that the restarted counters cannot meet a signal left by a call
 * before the checkpoint (mixcomm__protocol_reset). */
#include <cuda_runtime_api.h>

#include "bootstrap/bootstrap.h"
#include "core/error.h"
#include "handler/handler.h"

mixcomm_status_t mixcomm_checkpoint_prepare(mixcomm_handler_t* h) {
  MIXCOMM_CHECK(mixcomm__handler_usable(h, "checkpoint_prepare"));
  MIXCOMM_CHECK(mixcomm__handler_poll_error(h));
  if (h->state == MIXCOMM_STATE_CHECKPOINTED)
    return MIXCOMM_SUCCESS;
  if (h->state != MIXCOMM_STATE_READY)
    return mixcomm__error(MIXCOMM_ERR_INVALID_USAGE,
                          "checkpoint_prepare: the handler is not ready (state %d)",
                          (int)h->state);
  MIXCOMM_CUDA_CHECK(cudaDeviceSynchronize(), "checkpoint_prepare: waiting for kernels");
  MIXCOMM_CHECK(mixcomm__handler_poll_error(h));
  /* Nobody may still be using a workspace when its owner's mappings go. */
  MIXCOMM_CHECK(mixcomm__bs_barrier(h->bs, "checkpoint_prepare"));
  if (h->vmm.mapped)
    MIXCOMM_CHECK(mixcomm__vmm_unmap(&h->vmm));
  MIXCOMM_CHECK(mixcomm__bs_barrier(h->bs, "checkpoint_prepare (after unmap)"));
  h->state = MIXCOMM_STATE_CHECKPOINTED;
  return MIXCOMM_SUCCESS;
}

mixcomm_status_t mixcomm_checkpoint_restore(mixcomm_handler_t* h) {
  MIXCOMM_CHECK(mixcomm__handler_usable(h, "checkpoint_restore"));
  if (h->state == MIXCOMM_STATE_READY)
    return MIXCOMM_SUCCESS;
  if (h->state != MIXCOMM_STATE_CHECKPOINTED)
    return mixcomm__error(MIXCOMM_ERR_INVALID_USAGE,
                          "checkpoint_restore: no checkpoint to restore (state %d)", (int)h->state);
  if (h->vmm.reserved) {
    /* The mapping fails on every rank or none. Then the barrier before any rank writes into a
     * re-poisoned workspace; one rank's failure to reset fails them all. */
    MIXCOMM_CHECK(mixcomm__vmm_map(&h->vmm, h->bs, h->timeout_ms, MIXCOMM_SUCCESS));
    MIXCOMM_CHECK(
        mixcomm__bs_agree(h->bs, mixcomm__protocol_reset(h), "checkpoint_restore"));
  } else {
    MIXCOMM_CHECK(mixcomm__bs_barrier(h->bs, "checkpoint_restore"));
  }
  h->state = MIXCOMM_STATE_READY;
  return MIXCOMM_SUCCESS;
}
