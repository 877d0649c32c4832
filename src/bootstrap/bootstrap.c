/* SPDX-License-Identifier: Apache-2.0
 * Internal collectives on top of a mixcomm_bootstrap_t, whoever filled it (a framework's
 * callbacks or the built-in TCP rendezvous of tcp.c).
 *
 * Protocol: none of its own. allgather and barrier call the bootstrap's callbacks; broadcast is
 * an allgather in which every rank contributes `bytes` and keeps only the root's piece (simple,
 * and correct for any callback implementation; the bootstrap is only used for small setup
 * messages). Timeouts are the callbacks' business: the TCP bootstrap bounds every wait by its
 * timeout, and a framework's process group by its own.
 *
 * Errors: a callback returns 0 or non-zero. Before calling it we clear this thread's last error;
 * a callback that fails after recording a detailed message with a mixcomm status (the TCP
 * bootstrap does: "rank 3 closed the connection", TIMEOUT naming the silent rank) keeps that
 * status and message, prefixed with `what`. Any other non-zero return becomes
 * MIXCOMM_ERR_BOOTSTRAP with a message naming `what` and the returned value.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bootstrap/bootstrap.h"
#include "core/error.h"
#include "core/log.h"

static mixcomm_status_t check_bs(const mixcomm_bootstrap_t* bs, const char* what) {
  if (bs == NULL)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "%s: the bootstrap is NULL", what);
  if (bs->allgather == NULL)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "%s: the bootstrap has no allgather callback; fill "
                          "mixcomm_bootstrap_t.allgather or use mixcomm_bootstrap_tcp_create",
                          what);
  if (bs->size < 1 || bs->rank < 0 || bs->rank >= bs->size)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "%s: the bootstrap says rank %d of size %d; need size >= 1 and "
                          "0 <= rank < size",
                          what, bs->rank, bs->size);
  return MIXCOMM_SUCCESS;
}

/* Turn a callback's non-zero return into a status (see the opening comment). */
static mixcomm_status_t callback_failed(const mixcomm_bootstrap_t* bs, int rc, const char* op,
                                        const char* what) {
  const char* detail = mixcomm_last_error();
  if (rc > 0 && rc < MIXCOMM_NUM_STATUS && detail[0] != '\0')
    return mixcomm__error_context((mixcomm_status_t)rc, "%s", what);
  return mixcomm__error(MIXCOMM_ERR_BOOTSTRAP,
                        "%s: the bootstrap's %s callback returned %d on rank %d of %d; check "
                        "that every rank makes the same calls and that the process group "
                        "behind the bootstrap is healthy",
                        what, op, rc, bs->rank, bs->size);
}

mixcomm_status_t mixcomm__bs_allgather(mixcomm_bootstrap_t* bs, const void* send, void* recv,
                                       size_t bytes, const char* what) {
  if (what == NULL)
    what = "bootstrap allgather";
  MIXCOMM_CHECK(check_bs(bs, what));
  if (bytes > 0 && (send == NULL || recv == NULL))
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "%s: allgather of %zu bytes with a NULL buffer", what, bytes);
  if (bytes > 0 && (size_t)bs->size > SIZE_MAX / bytes)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "%s: allgather of %zu bytes from %d ranks overflows size_t", what,
                          bytes, bs->size);
  mixcomm__error_clear();
  int rc = bs->allgather(bs->ctx, send, recv, bytes);
  if (rc != 0)
    return callback_failed(bs, rc, "allgather", what);
  MIXCOMM_DEBUG("%s: allgather of %zu bytes done (rank %d of %d)", what, bytes, bs->rank,
                bs->size);
  return MIXCOMM_SUCCESS;
}

mixcomm_status_t mixcomm__bs_barrier(mixcomm_bootstrap_t* bs, const char* what) {
  if (what == NULL)
    what = "bootstrap barrier";
  MIXCOMM_CHECK(check_bs(bs, what));
  if (bs->barrier == NULL) {
    /* No barrier callback: an allgather of one byte synchronises just as well. */
    unsigned char one = 1;
    unsigned char* all = malloc((size_t)bs->size);
    if (all == NULL)
      return mixcomm__error(MIXCOMM_ERR_OUT_OF_MEMORY, "%s: out of host memory (%d bytes)",
                            what, bs->size);
    mixcomm_status_t st = mixcomm__bs_allgather(bs, &one, all, 1, what);
    free(all);
    return st;
  }
  mixcomm__error_clear();
  int rc = bs->barrier(bs->ctx);
  if (rc != 0)
    return callback_failed(bs, rc, "barrier", what);
  return MIXCOMM_SUCCESS;
}

mixcomm_status_t mixcomm__bs_broadcast(mixcomm_bootstrap_t* bs, void* buf, size_t bytes,
                                       int root, const char* what) {
  if (what == NULL)
    what = "bootstrap broadcast";
  MIXCOMM_CHECK(check_bs(bs, what));
  if (root < 0 || root >= bs->size)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "%s: broadcast root %d is not a rank of the bootstrap (size %d)", what,
                          root, bs->size);
  if (bytes == 0)
    return MIXCOMM_SUCCESS;
  if (buf == NULL)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "%s: broadcast of %zu bytes with a NULL buffer", what, bytes);
  if ((size_t)bs->size > SIZE_MAX / bytes)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "%s: broadcast of %zu bytes to %d ranks overflows size_t", what, bytes,
                          bs->size);
  unsigned char* all = malloc((size_t)bs->size * bytes);
  if (all == NULL)
    return mixcomm__error(MIXCOMM_ERR_OUT_OF_MEMORY,
                          "%s: out of host memory (%zu bytes for a broadcast of %zu bytes)", what,
                          (size_t)bs->size * bytes, bytes);
  mixcomm_status_t st = mixcomm__bs_allgather(bs, buf, all, bytes, what);
  if (st == MIXCOMM_SUCCESS && bs->rank != root)
    memcpy(buf, all + (size_t)root * bytes, bytes);
  free(all);
  return st;
}

void mixcomm_bootstrap_destroy(mixcomm_bootstrap_t* bootstrap) {
  if (bootstrap == NULL)
    return;
  /* The TCP bootstrap's destroy frees the struct itself (it allocated it), so read what we
   * need first and never touch *bootstrap afterwards. A struct filled by the user is the
   * user's: only its destroy callback runs. */
  void (*destroy)(void*) = bootstrap->destroy;
  void* ctx = bootstrap->ctx;
  if (destroy != NULL)
    destroy(ctx);
}

/* One rank's word in mixcomm__bs_agree: its status and, for a failure, why (truncated). */
typedef struct agree_record {
  int32_t status;
  char text[252];
} agree_record_t;

mixcomm_status_t mixcomm__bs_agree(mixcomm_bootstrap_t* bs, mixcomm_status_t mine,
                                   const char* what) {
  if (what == NULL)
    what = "bootstrap agreement";
  MIXCOMM_CHECK(check_bs(bs, what));
  agree_record_t rec;
  memset(&rec, 0, sizeof rec);
  rec.status = (int32_t)mine;
  char own[1024] = ""; /* the allgather clears this thread's last error */
  if (mine != MIXCOMM_SUCCESS) {
    snprintf(own, sizeof own, "%s", mixcomm_last_error());
    snprintf(rec.text, sizeof rec.text, "%s", own);
  }
  agree_record_t* all = calloc((size_t)bs->size, sizeof *all);
  if (all == NULL)
    return mixcomm__error(MIXCOMM_ERR_OUT_OF_MEMORY, "%s: out of host memory (%d records)",
                          what, bs->size);
  mixcomm_status_t st = mixcomm__bs_allgather(bs, &rec, all, sizeof rec, what);
  if (st != MIXCOMM_SUCCESS) {
    free(all);
    /* A rank that failed itself keeps its own story; the others learn what the collective saw
     * (a lost or silent rank). */
    return mine != MIXCOMM_SUCCESS ? mixcomm__error(mine, "%s", own) : st;
  }
  int first = -1, failed = 0;
  for (int r = 0; r < bs->size; r++) {
    if (all[r].status == MIXCOMM_SUCCESS)
      continue;
    failed++;
    if (first < 0)
      first = r;
  }
  if (first < 0) {
    free(all);
    return MIXCOMM_SUCCESS;
  }
  const int32_t s = all[first].status;
  /* A status from another build that this one does not know stays a failure. */
  st = s > 0 && s < MIXCOMM_NUM_STATUS ? (mixcomm_status_t)s : MIXCOMM_ERR_INTERNAL;
  all[first].text[sizeof all[first].text - 1] = '\0';
  for (char* p = all[first].text; *p != '\0'; p++)
    if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
      *p = '?';
  if (first == bs->rank)
    st = mixcomm__error(mine, "%s: rank %d (this rank) failed (%d of %d ranks failed): %s",
                        what, bs->rank, failed, bs->size, own);
  else
    st = mixcomm__error(st, "%s: rank %d failed (%d of %d ranks failed): %s", what, first,
                        failed, bs->size, all[first].text);
  free(all);
  return st;
}
