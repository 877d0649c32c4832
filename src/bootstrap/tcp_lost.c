/* SPDX-License-Identifier: Apache-2.0
 * The TCP bootstrap's failure state and its lost-rank bookkeeping (tcp.c, "Lost peers"): which
 * rank's connection closed, how rank 0 names it to the others (ERROR with b = rank + 1), and
 * the view of the connections the handler's watch on lost peers needs (bootstrap.h).
 * c->lost_rank is read and written with atomics: the watch thread peeks at it while the main
 * thread's collectives record it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "bootstrap/bootstrap.h"
#include "bootstrap/tcp_ctx.h"
#include "core/error.h"
#include "core/log.h"

#define HDR_SIZE MIXCOMM__TCP_HDR_SIZE

_Thread_local int mixcomm__tcp_closed_peer = -1;

/* The context of a built-in TCP bootstrap, NULL for one made of a framework's callbacks. */
static mixcomm__tcp_ctx_t* tcp_ctx_of(const mixcomm_bootstrap_t* bs) {
  if (bs == NULL || bs->allgather != mixcomm__tcp_allgather)
    return NULL;
  return (mixcomm__tcp_ctx_t*)bs->ctx;
}

/* The ERROR notice's b: the rank whose connection closed + 1, else 0. */
static uint32_t lost_wire(mixcomm__tcp_ctx_t* c) {
  const int lost = __atomic_load_n(&c->lost_rank, __ATOMIC_ACQUIRE);
  return lost >= 0 ? (uint32_t)lost + 1 : 0;
}

void mixcomm__tcp_note_lost(mixcomm__tcp_ctx_t* c, const mixcomm__tcp_hdr_t* h) {
  if (h->b >= 1 && h->b <= (uint32_t)c->size)
    __atomic_store_n(&c->lost_rank, (int)h->b - 1, __ATOMIC_RELEASE);
}

mixcomm_status_t mixcomm__tcp_mark_broken(mixcomm__tcp_ctx_t* c, mixcomm_status_t st, uint64_t seq,
                                          int notify) {
  if (c->rank == 0 && mixcomm__tcp_closed_peer > 0 && mixcomm__tcp_closed_peer < c->size) {
    int none = -1;
    __atomic_compare_exchange_n(&c->lost_rank, &none, mixcomm__tcp_closed_peer, 0, __ATOMIC_ACQ_REL,
                                __ATOMIC_ACQUIRE);
  }
  c->broken = st;
  snprintf(c->broken_msg, sizeof c->broken_msg, "%s", mixcomm_last_error());
  int first = c->rank == 0 ? 1 : 0, last = c->rank == 0 ? c->size - 1 : 0;
  for (int r = first; r <= last; r++) {
    if (c->fds[r] < 0)
      continue;
    if (notify)
      mixcomm__tcp_send_now(c->fds[r], MIXCOMM__MSG_ERROR, st, lost_wire(c), seq,
                            c->broken_msg);
    if (shutdown(c->fds[r], SHUT_WR) != 0)
      MIXCOMM_DEBUG("bootstrap: shutdown of the connection to rank %d: %s", r, strerror(errno));
  }
  return st;
}

int mixcomm__tcp_links(const mixcomm_bootstrap_t* bs, int* fds, int* ranks, int cap) {
  const mixcomm__tcp_ctx_t* c = tcp_ctx_of(bs);
  if (c == NULL)
    return 0;
  int n = 0;
  for (int r = 0; r < c->size && n < cap; r++) {
    if (r == c->rank || c->fds[r] < 0)
      continue;
    fds[n] = c->fds[r];
    ranks[n] = r;
    n++;
  }
  return n;
}

void mixcomm__tcp_report_lost(mixcomm_bootstrap_t* bs, int rank) {
  mixcomm__tcp_ctx_t* c = tcp_ctx_of(bs);
  if (c == NULL || c->rank != 0 || rank <= 0 || rank >= c->size)
    return;
  pthread_mutex_lock(&c->lock);
  if (c->broken == MIXCOMM_SUCCESS) {
    /* Not through mixcomm__error: this runs on the watch thread, which must not log. */
    int expected = -1;
    __atomic_compare_exchange_n(&c->lost_rank, &expected, rank, 0, __ATOMIC_ACQ_REL,
                                __ATOMIC_ACQUIRE);
    c->broken = MIXCOMM_ERR_PEER_LOST;
    snprintf(c->broken_msg, sizeof c->broken_msg,
             "rank %d closed its bootstrap connection to rank 0 (its process died or its "
             "bootstrap failed)",
             rank);
    for (int r = 1; r < c->size; r++) {
      if (c->fds[r] < 0)
        continue;
      if (r != rank)
        mixcomm__tcp_send_now(c->fds[r], MIXCOMM__MSG_ERROR, MIXCOMM_ERR_PEER_LOST,
                              (uint32_t)rank + 1, c->seq, c->broken_msg);
      shutdown(c->fds[r], SHUT_WR); /* the peers see this side close: the watch's signal */
    }
  }
  pthread_mutex_unlock(&c->lock);
}

/* A non-root, no collective in progress: rank 0's ERROR notice among the messages still queued
 * on its connection, read without taking them, recorded by note_lost. Rank 0's side is closed,
 * so everything it sent is already queued, and the notice, if any, is the last message; one
 * before it (what a collective that gave up left unread) is stepped over by its length. The
 * queue is bounded by the socket's receive buffer. */
static void peek_notice(mixcomm__tcp_ctx_t* c) {
  int avail = 0;
  if (ioctl(c->fds[0], FIONREAD, &avail) != 0 || avail < HDR_SIZE)
    return;
  unsigned char* buf = malloc((size_t)avail);
  if (buf == NULL)
    return;
  ssize_t got;
  do {
    got = recv(c->fds[0], buf, (size_t)avail, MSG_PEEK | MSG_DONTWAIT);
  } while (got < 0 && errno == EINTR);
  for (size_t off = 0; got > 0 && off + HDR_SIZE <= (size_t)got;) {
    mixcomm__tcp_hdr_t h;
    mixcomm__tcp_decode_hdr(buf + off, &h);
    if (!mixcomm__tcp_hdr_ours(&h))
      break;
    if (h.type == MIXCOMM__MSG_ERROR) {
      mixcomm__tcp_note_lost(c, &h); /* b names the closed rank; the text is not needed */
      break;
    }
    if (h.len > (uint64_t)got - off - HDR_SIZE)
      break; /* a message cut short: nothing after it */
    off += HDR_SIZE + (size_t)h.len;
  }
  free(buf);
}

int mixcomm__tcp_lost_rank(const mixcomm_bootstrap_t* bs) {
  mixcomm__tcp_ctx_t* c = tcp_ctx_of(bs);
  if (c == NULL)
    return -1;
  const int known = __atomic_load_n(&c->lost_rank, __ATOMIC_ACQUIRE);
  if (known >= 0 || c->rank == 0 || c->fds[0] < 0)
    return known;
  /* The main thread reads this socket only in a collective, which holds the lock: with it
   * held here, the queue starts at a message boundary (a peek while a collective is reading
   * saw a message half taken, and blamed rank 0). Rank 0's side is closed (that is why the
   * watch asks), so a collective in progress ends at once: it reads the notice, or finds the
   * connection closed. */
  pthread_mutex_lock(&c->lock);
  peek_notice(c);
  pthread_mutex_unlock(&c->lock);
  return __atomic_load_n(&c->lost_rank, __ATOMIC_ACQUIRE);
}
