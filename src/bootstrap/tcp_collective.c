/* SPDX-License-Identifier: Apache-2.0
 * The TCP bootstrap's collectives (tcp.c, "Collectives"): allgather as a star through rank 0,
 * and barrier as an allgather of one byte. Rank 0 checks every rank's DATA header before any
 * payload lands, and on a fault tells every rank why (ERROR), so that all of them fail with
 * the same message instead of waiting for their timeout. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "bootstrap/tcp_ctx.h"
#include "core/error.h"
#include "core/log.h"

#define HDR_SIZE MIXCOMM__TCP_HDR_SIZE
#define MAX_TEXT MIXCOMM__TCP_MAX_TEXT

static mixcomm_status_t root_allgather(mixcomm__tcp_ctx_t* c, const void* send, void* recv,
                                       size_t bytes, uint64_t seq, const char* what) {
  const int n = c->size - 1;
  const size_t total = (size_t)c->size * bytes;
  const long long deadline = mixcomm__monotonic_ms() + c->timeout_ms;
  mixcomm_status_t st = MIXCOMM_SUCCESS;
  mixcomm__tcp_closed_peer = -1;
  unsigned char* hdrs = malloc((size_t)c->size * HDR_SIZE);
  mixcomm__tcp_xfer_t* x = malloc((size_t)n * sizeof *x);
  if (hdrs == NULL || x == NULL) {
    free(hdrs);
    free(x);
    return mixcomm__error(MIXCOMM_ERR_OUT_OF_MEMORY, "%s: out of host memory", what);
  }
  /* 1. Every header: sequence number and size, checked before any payload lands in recv. */
  for (int r = 1; r <= n; r++)
    mixcomm__tcp_xfer_init(&x[r - 1], c->fds[r], r, 0, hdrs + (size_t)r * HDR_SIZE, HDR_SIZE, NULL,
                           0);
  MIXCOMM_CHECK_GOTO(mixcomm__tcp_xfer_run(x, n, deadline, c->timeout_ms, what), st, fail);
  for (int r = 1; r <= n; r++)
    MIXCOMM_CHECK_GOTO(mixcomm__tcp_check_data(hdrs + (size_t)r * HDR_SIZE, r, seq, bytes, what),
                       st, fail);
  /* 2. Payloads, straight into their place in recv. */
  if (bytes > 0) {
    memmove(recv, send, bytes);
    for (int r = 1; r <= n; r++)
      mixcomm__tcp_xfer_init(&x[r - 1], c->fds[r], r, 0, (unsigned char*)recv + (size_t)r * bytes,
                             bytes, NULL, 0);
    MIXCOMM_CHECK_GOTO(mixcomm__tcp_xfer_run(x, n, deadline, c->timeout_ms, what), st, fail);
  }
  /* 3. The result to everyone (one header shared by all transfers). */
  mixcomm__tcp_encode_hdr(hdrs, MIXCOMM__MSG_RESULT, 0, 0, seq, total);
  for (int r = 1; r <= n; r++)
    mixcomm__tcp_xfer_init(&x[r - 1], c->fds[r], r, 1, hdrs, HDR_SIZE, recv, total);
  MIXCOMM_CHECK_GOTO(mixcomm__tcp_xfer_run(x, n, deadline, c->timeout_ms, what), st, fail_quiet);
  free(hdrs);
  free(x);
  return MIXCOMM_SUCCESS;
fail:
  free(hdrs);
  free(x);
  return mixcomm__tcp_mark_broken(c, st, seq, 1);
fail_quiet:
  /* Some results are half sent: a notice would be garbled, so just close our side. */
  free(hdrs);
  free(x);
  return mixcomm__tcp_mark_broken(c, st, seq, 0);
}

/* Rank 0's ERROR notice h with its text: the error of this rank's collective. */
static mixcomm_status_t reported_by_root(mixcomm__tcp_ctx_t* c, const mixcomm__tcp_hdr_t* h,
                                         const char* what, const char* text) {
  mixcomm__tcp_note_lost(c, h);
  return mixcomm__error(mixcomm__tcp_status_from_wire(h->a), "%s failed, as reported by rank 0: %s",
                        what, text);
}

/* If a complete ERROR message from rank 0 is already waiting on fd, consume it, record it as
 * the error and return 1; else leave the socket alone and return 0. Never blocks. */
static int pending_error(mixcomm__tcp_ctx_t* c, int fd, const char* what, mixcomm_status_t* st) {
  unsigned char buf[HDR_SIZE + MAX_TEXT];
  ssize_t got;
  do {
    got = recv(fd, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT);
  } while (got < 0 && errno == EINTR);
  if (got < HDR_SIZE)
    return 0;
  mixcomm__tcp_hdr_t h;
  char text[MAX_TEXT];
  const size_t size = mixcomm__tcp_parse_error_notice(buf, (size_t)got, &h, text, sizeof text);
  if (size == 0)
    return 0;
  ssize_t r;
  do {
    r = recv(fd, buf, size, MSG_DONTWAIT);
  } while (r < 0 && errno == EINTR);
  if (r < 0)
    MIXCOMM_DEBUG("bootstrap: reading rank 0's error notice: %s", strerror(errno));
  *st = reported_by_root(c, &h, what, text);
  return 1;
}

/* Move x on rank 0's connection until it is complete or the deadline passes; `late` and
 * `blame` complete the message of a timeout. While this rank sends its piece (x->is_send),
 * rank 0 can only answer early with an ERROR notice: the send then stops there (x->off tells
 * how far it got), leaving the notice to be read, and when the connection fails, rank 0's
 * notice, if it left one before closing, is the better message. */
static mixcomm_status_t drive(mixcomm__tcp_ctx_t* c, mixcomm__tcp_xfer_t* x, long long deadline,
                              const char* what, const char* late, const char* blame) {
  mixcomm_status_t st;
  for (;;) {
    int r = mixcomm__tcp_xfer_step(x);
    if (r == 1)
      return MIXCOMM_SUCCESS;
    if (r < 0) {
      int e = errno;
      if (x->is_send && pending_error(c, x->fd, what, &st))
        return st;
      errno = e;
      return mixcomm__tcp_xfer_fail(x, r, what);
    }
    int left = mixcomm__ms_left(deadline);
    if (left <= 0)
      return mixcomm__error(MIXCOMM_ERR_TIMEOUT, "%s: rank 0 (%s) %s within %d ms; %s", what,
                            c->where, late, c->timeout_ms, blame);
    struct pollfd pf = {x->fd, (short)(x->is_send ? POLLOUT | POLLIN : POLLIN), 0};
    int pr = poll(&pf, 1, left);
    if (pr < 0 && errno != EINTR)
      return mixcomm__sys_error("bootstrap: poll");
    if (x->is_send && pr > 0 && (pf.revents & POLLIN))
      return MIXCOMM_SUCCESS;
  }
}

static mixcomm_status_t nonroot_allgather(mixcomm__tcp_ctx_t* c, const void* send, void* recv,
                                          size_t bytes, uint64_t seq, const char* what) {
  const int fd = c->fds[0];
  const size_t total = (size_t)c->size * bytes;
  const long long deadline = mixcomm__monotonic_ms() + c->timeout_ms;
  const long long answer_deadline = deadline + mixcomm__tcp_grace_ms(c->timeout_ms);
  mixcomm_status_t st;
  unsigned char hbuf[HDR_SIZE];
  mixcomm__tcp_encode_hdr(hbuf, MIXCOMM__MSG_DATA, 0, 0, seq, bytes);

  /* 1. Send our piece; stop early if rank 0 answers meanwhile (that can only be an ERROR). */
  mixcomm__tcp_xfer_t x;
  mixcomm__tcp_xfer_init(&x, fd, 0, 1, hbuf, HDR_SIZE, (void*)send, bytes);
  st = drive(c, &x, deadline, what, "did not take this rank's data", "rank 0 may be stuck or dead");
  if (st != MIXCOMM_SUCCESS)
    return mixcomm__tcp_mark_broken(c, st, seq, 0);
  const int sent_all = x.off == HDR_SIZE + bytes;

  /* 2. Rank 0's answer: RESULT or ERROR. */
  unsigned char rbuf[HDR_SIZE];
  mixcomm__tcp_xfer_init(&x, fd, 0, 0, rbuf, HDR_SIZE, NULL, 0);
  st = drive(c, &x, answer_deadline, what, "sent no result",
             "rank 0 or another rank is stuck or dead");
  if (st != MIXCOMM_SUCCESS)
    return mixcomm__tcp_mark_broken(c, st, seq, 0);
  mixcomm__tcp_hdr_t h;
  const mixcomm__tcp_answer_t kind = mixcomm__tcp_classify_answer(rbuf, seq, total, &h);
  if (kind == MIXCOMM__ANSWER_ERROR) {
    char text[MAX_TEXT];
    st = mixcomm__tcp_recv_text(fd, 0, h.len, text, sizeof text, answer_deadline, c->timeout_ms,
                                what);
    if (st == MIXCOMM_SUCCESS)
      st = reported_by_root(c, &h, what, text);
    else
      mixcomm__tcp_note_lost(c, &h);
    return mixcomm__tcp_mark_broken(c, st, seq, 0);
  }
  if (kind != MIXCOMM__ANSWER_RESULT || !sent_all) {
    st = mixcomm__error(MIXCOMM_ERR_BOOTSTRAP,
                        "%s: rank 0 answered out of step (type %u, call #%llu, %llu bytes; "
                        "expected a result of call #%llu, %zu bytes)",
                        what, h.type, (unsigned long long)h.seq, (unsigned long long)h.len,
                        (unsigned long long)seq, total);
    return mixcomm__tcp_mark_broken(c, st, seq, 0);
  }
  if (total > 0) {
    mixcomm__tcp_xfer_init(&x, fd, 0, 0, recv, total, NULL, 0);
    st = mixcomm__tcp_xfer_run(&x, 1, answer_deadline, c->timeout_ms, what);
    if (st != MIXCOMM_SUCCESS)
      return mixcomm__tcp_mark_broken(c, st, seq, 0);
  }
  return MIXCOMM_SUCCESS;
}

static mixcomm_status_t collective(mixcomm__tcp_ctx_t* c, const void* send, void* recv,
                                   size_t bytes, const char* kind) {
  char what[128];
  if (c->broken != MIXCOMM_SUCCESS)
    return mixcomm__error(c->broken,
                          "bootstrap %s (rank %d of %d): unusable after an earlier failure: %s",
                          kind, c->rank, c->size, c->broken_msg);
  const uint64_t seq = ++c->seq;
  snprintf(what, sizeof what, "bootstrap %s #%llu (%zu bytes, rank %d of %d)", kind,
           (unsigned long long)seq, bytes, c->rank, c->size);
  if (bytes > 0 && (send == NULL || recv == NULL))
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "%s: NULL buffer", what);
  if (bytes > 0 && (size_t)c->size > SIZE_MAX / bytes)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "%s: %d x %zu bytes overflows size_t", what,
                          c->size, bytes);
  if (c->size == 1) {
    if (bytes > 0)
      memmove(recv, send, bytes);
    return MIXCOMM_SUCCESS;
  }
  if (c->rank == 0)
    return root_allgather(c, send, recv, bytes, seq, what);
  return nonroot_allgather(c, send, recv, bytes, seq, what);
}

/* Each collective runs under the lock: on rank 0 a lost-peer notice never interleaves with it
 * (and c->broken is read and written under it); on the others the watch never peeks at the
 * connection while the collective has taken part of a message (tcp_lost.c). */
static mixcomm_status_t tcp_collective(mixcomm__tcp_ctx_t* c, const void* send, void* recv,
                                       size_t bytes, const char* kind) {
  pthread_mutex_lock(&c->lock);
  mixcomm_status_t st = collective(c, send, recv, bytes, kind);
  pthread_mutex_unlock(&c->lock);
  return st;
}

int mixcomm__tcp_allgather(void* ctx, const void* send, void* recv, size_t bytes) {
  return (int)tcp_collective((mixcomm__tcp_ctx_t*)ctx, send, recv, bytes, "allgather");
}

int mixcomm__tcp_barrier(void* ctx) {
  mixcomm__tcp_ctx_t* c = (mixcomm__tcp_ctx_t*)ctx;
  unsigned char one = 1;
  unsigned char* all = malloc((size_t)c->size);
  if (all == NULL)
    return (int)mixcomm__error(MIXCOMM_ERR_OUT_OF_MEMORY, "bootstrap barrier: out of memory");
  mixcomm_status_t st = tcp_collective(c, &one, all, 1, "barrier");
  free(all);
  return (int)st;
}
