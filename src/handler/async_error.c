/* SPDX-License-Identifier: Apache-2.0
 * Errors that arrive asynchronously: what a kernel recorded in the host-mapped error record
 * (turned into a status and a message that names the call), a lost peer seen by the watch
 * thread, and mixcomm_handler_abort. */
#include <stdio.h>

#include "core/error.h"
#include "handler/handler.h"

static void describe_tag(const uint32_t* tag, char* buf, size_t size) {
  /* Bit 15 marks a call with uneven rows per DP rank (kernels/uneven.cuh): word 1 then holds a
   * hash of the row counts, the maximum block and the row length instead of the size. */
  const int uneven = (tag[0] >> 15) & 1;
  const unsigned op = (tag[0] >> 8) & 0x7F, mode = (tag[0] >> 4) & 0xF, dtype = tag[0] & 0xF;
  const unsigned long long vecs = (unsigned long long)tag[1] |
                                  ((unsigned long long)((tag[3] >> 16) & 0x1FF) << 31);
  const unsigned row_hash = ((tag[0] >> 20) & 0xF) << 6 | ((tag[3] >> 25) & 0x3F);
  const char* on = mixcomm_op_name((mixcomm_op_t)op);
  const char* mn = mixcomm_mode_name((mixcomm_mode_t)mode);
  const char* dn = mixcomm_dtype_name((mixcomm_dtype_t)dtype);
  char rows[64] = "";
  if (row_hash != 0)
    snprintf(rows, sizeof rows, " with an epilogue (row-length hash 0x%03x)", row_hash);
  if (uneven)
    snprintf(buf, size,
             "%s %s %s%s, uneven rows per DP rank (hash 0x%08x of the counts, maximum and row "
             "length), call #%u, step %u",
             on ? on : "?", mn ? mn : "?", dn ? dn : "?", rows, tag[1], tag[2], tag[3] & 0xFFFF);
  else
    snprintf(buf, size, "%s %s %s%s, %llu bytes per rank block, call #%u, step %u",
             on ? on : "?", mn ? mn : "?", dn ? dn : "?", rows, vecs * 16ull, tag[2],
             tag[3] & 0xFFFF);
}

mixcomm_status_t mixcomm__handler_poll_error(mixcomm_handler_t* h) {
  if (h->host->abort && h->host->error.status == 0)
    return mixcomm__error(MIXCOMM_ERR_ABORTED,
                          "rank %d: the handler was aborted (mixcomm_handler_abort); shut it down",
                          h->topo.world_rank);
  const int status = h->host->error.status;
  if (status == 0 && h->host->peer_lost != 0) { /* no kernel was waiting when it was seen */
    h->state = MIXCOMM_STATE_FAILED;
    return mixcomm__error(MIXCOMM_ERR_PEER_LOST,
                          "rank %d: the connection to rank %d closed (%s): its process died or "
                          "its bootstrap failed; the handler is unusable, shut it down",
                          h->topo.world_rank, h->host->peer_lost - 1,
                          mixcomm__peer_watch_how(h));
  }
  if (status == 0)
    return MIXCOMM_SUCCESS;
  h->state = MIXCOMM_STATE_FAILED;
  const mixcomm__error_record_t* e = &h->host->error;
  const char* op = mixcomm_op_name((mixcomm_op_t)e->op);
  const char* mode = mixcomm_mode_name((mixcomm_mode_t)e->mode);
  switch (status) {
    case MIXCOMM_ERR_TIMEOUT:
      return mixcomm__error(MIXCOMM_ERR_TIMEOUT,
                            "rank %d: a %s %s kernel waited %d ms for rank %d (local rank %d, "
                            "step %d, CTA %d) and gave up: is that rank alive and making the same "
                            "calls? The handler is unusable; shut it down",
                            h->topo.world_rank, op ? op : "?", mode ? mode : "?", h->timeout_ms,
                            e->peer_world_rank, e->peer_local_rank, e->step, e->cta);
    case MIXCOMM_ERR_MISMATCH: {
      if (e->row == -2) { /* a cross-node signal (src/nvshmem_plugin/internode.cu) */
        const unsigned long long want =
            (unsigned long long)e->tag_expected[0] | (unsigned long long)e->tag_expected[1] << 32;
        const unsigned long long got =
            (unsigned long long)e->tag_received[0] | (unsigned long long)e->tag_received[1] << 32;
        return mixcomm__error(MIXCOMM_ERR_MISMATCH,
                              "rank %d ran %s %s but rank %d (another node) signalled a "
                              "different call (signal 0x%llx, expected 0x%llx: the top 24 bits "
                              "hash op, mode, dtype and size): every rank must make the same "
                              "calls with the same shapes; the handler is unusable, shut it down",
                              h->topo.world_rank, op ? op : "?", mode ? mode : "?",
                              e->peer_world_rank, got, want);
      }
      char want[160], got[160];
      describe_tag(e->tag_expected, want, sizeof want);
      describe_tag(e->tag_received, got, sizeof got);
      return mixcomm__error(MIXCOMM_ERR_MISMATCH,
                            "rank %d ran [%s] but rank %d (local rank %d) sent [%s]: every rank "
                            "must make the same calls with the same shapes; the handler is "
                            "unusable, shut it down",
                            h->topo.world_rank, want, e->peer_world_rank, e->peer_local_rank, got);
    }
    case MIXCOMM_ERR_INVALID_USAGE:
      return mixcomm__error(MIXCOMM_ERR_INVALID_USAGE,
                            "rank %d: the handler was used from two streams at once (a %s %s "
                            "kernel found another of the same handler running): order a "
                            "handler's calls on one stream, or make the streams wait for each "
                            "other with events; the handler is unusable, shut it down",
                            h->topo.world_rank, op ? op : "?", mode ? mode : "?");
    case MIXCOMM_ERR_PEER_LOST:
      return mixcomm__error(MIXCOMM_ERR_PEER_LOST,
                            "rank %d: a %s %s kernel (step %d, CTA %d) stopped waiting because "
                            "the connection to rank %d closed (%s): its process died or its "
                            "bootstrap failed; the handler is unusable, shut it down",
                            h->topo.world_rank, op ? op : "?", mode ? mode : "?", e->step, e->cta,
                            e->peer_world_rank, mixcomm__peer_watch_how(h));
    case MIXCOMM_ERR_INVALID_ARGUMENT:
      if (e->row == -3) { /* kernels/uneven.cuh: a device-array row count out of range */
        const long long value =
            (long long)((uint64_t)e->tag_received[0] | (uint64_t)e->tag_received[1] << 32);
        const long long bound =
            (long long)((uint64_t)e->tag_expected[0] | (uint64_t)e->tag_expected[1] << 32);
        return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                              "rank %d: a %s %s kernel read dp_rows[%d] = %lld from the device "
                              "array, outside [0, max_rows=%lld] given to mixcomm_run_v_device: "
                              "nothing was written; the handler is unusable, shut it down",
                              h->topo.world_rank, op ? op : "?", mode ? mode : "?", e->step,
                              value, bound);
      }
      return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "rank %d: kernel error %d",
                            h->topo.world_rank, status);
    case MIXCOMM_ERR_ABORTED:
      return mixcomm__error(MIXCOMM_ERR_ABORTED,
                            "rank %d: a %s %s kernel stopped because the handler was aborted",
                            h->topo.world_rank, op ? op : "?", mode ? mode : "?");
    default:
      return mixcomm__error((mixcomm_status_t)status, "rank %d: kernel error %d",
                            h->topo.world_rank, status);
  }
}

mixcomm_status_t mixcomm_handler_async_error(const mixcomm_handler_t* h, int* peer) {
  if (peer != NULL)
    *peer = -1;
  MIXCOMM_CHECK(mixcomm__handler_usable(h, "async_error"));
  if (h->host->error.status == 0) {
    if (h->host->peer_lost != 0) {
      if (peer != NULL)
        *peer = h->host->peer_lost - 1;
      return MIXCOMM_ERR_PEER_LOST;
    }
    return h->host->abort ? MIXCOMM_ERR_ABORTED : MIXCOMM_SUCCESS;
  }
  if (peer != NULL)
    *peer = h->host->error.peer_world_rank;
  return (mixcomm_status_t)h->host->error.status;
}

mixcomm_status_t mixcomm_handler_abort(mixcomm_handler_t* h) {
  MIXCOMM_CHECK(mixcomm__handler_usable(h, "abort"));
  h->host->abort = 1; /* kernels poll it while they wait; mixcomm_run checks it */
  __sync_synchronize();
  return MIXCOMM_SUCCESS;
}

const char* mixcomm__peer_watch_how(const mixcomm_handler_t* h) {
  const int lost = h->host->peer_lost - 1;
  if (h->lost_via == lost)
    return "this rank saw its connection close";
  return "rank 0 saw its connection close and told this rank";
}

