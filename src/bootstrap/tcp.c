/* SPDX-License-Identifier: Apache-2.0
 * The built-in TCP bootstrap (mixcomm_bootstrap_tcp_create): a rendezvous at rank 0 and a star
 * of TCP connections for allgather and barrier afterwards.
 *
 * This file creates and destroys a rank's bootstrap and describes the protocol; the rest is in
 * tcp_options.c (settings), tcp_wire.c (wire format and verdicts on received bytes),
 * tcp_xfer.c (transfers against a deadline), tcp_accept.c and tcp_join.c (setup on rank 0 and
 * on the others), tcp_collective.c (allgather, barrier) and tcp_lost.c (failure state, lost
 * peers); tcp_ctx.h holds what they share.
 *
 * Settings. Each field of mixcomm_tcp_options_t that is set wins; an empty/zero field (or
 * options == NULL) is taken from the environment, first match wins:
 *   addr       options.addr, MIXCOMM_ADDR, MASTER_ADDR, "127.0.0.1"
 *   port       options.port, MIXCOMM_PORT, MASTER_PORT (no default: an error if all are unset,
 *              except with size == 1, which needs no socket at all)
 *   token      options.token, MIXCOMM_JOB_TOKEN, TORCHELASTIC_RUN_ID, "" (at most 127 bytes)
 *   timeout_ms options.timeout_ms, MIXCOMM_BOOTSTRAP_TIMEOUT_MS, 60000
 * Empty environment variables count as unset.
 *
 * Wire format. Every message starts with a 40-byte header, integers big-endian:
 *   u32 magic "MXCB", u32 version (1), u32 type, u32 a, u32 b, u32 reserved (0), u64 seq,
 *   u64 len (bytes of body that follow the header).
 *   HELLO    non-root -> 0  a = rank, b = size, len = 128, body = job token (zero padded)
 *   ACCEPTED 0 -> non-root  a = milliseconds left before rank 0 gives up waiting for the others
 *   OK       0 -> non-root  every rank joined: setup is done
 *   REJECT   0 -> process   a = status, body = reason text; the connection is then closed
 *   ABORT    0 -> non-root  a = status, body = text naming the ranks that never arrived
 *   DATA     non-root -> 0  seq, len = bytes, body = this rank's contribution
 *   RESULT   0 -> non-root  seq, len = size * bytes, body = the gathered buffer
 *   ERROR    0 -> non-root  a = status, seq, body = text: the collective failed (why, naming
 *                           the rank at fault)
 *
 * Setup. Rank 0 binds addr:port (SO_REUSEADDR, IPv4 or IPv6 as getaddrinfo resolves it) and
 * polls its listening socket and every connection at once, so a slow or silent connection
 * never blocks the others. Non-roots connect, retrying until their deadline (rank 0 may start
 * later), and send HELLO. Rank 0 checks magic and version, the token (a process of another job
 * gets REJECT and rank 0 keeps waiting for the right one), the size, that the rank is in range
 * and not already joined, and answers ACCEPTED with the time it will still wait, so that a
 * joined rank waits for rank 0's verdict on rank 0's clock (plus a grace period) rather than
 * its own. Rank 0 reads at most one hello's worth of bytes from a connection before judging it
 * (tcp_wire.c), holds at most size + 64 such connections, and when that many are open without
 * a complete hello it closes the oldest; a non-root whose connection is closed before any
 * answer connects again until its deadline. When all size - 1 ranks have joined, rank 0
 * sends OK to each. If rank 0's deadline passes first, it sends ABORT naming the missing ranks
 * to those that joined and returns MIXCOMM_ERR_TIMEOUT naming them; the joined ranks return
 * the same status and text.
 *
 * Collectives. allgather is a star through rank 0: every non-root sends DATA (sequence number
 * and byte count are checked: a rank at another call or with another size is named in a
 * MIXCOMM_ERR_MISMATCH), rank 0 receives from all connections concurrently, assembles
 * size * bytes and sends RESULT to all concurrently. barrier is an allgather of one byte.
 * When rank 0 finds a fault (a closed connection: "rank N closed the connection"; a silent
 * rank: MIXCOMM_ERR_TIMEOUT naming it; a mismatch) it sends ERROR to every other rank, so
 * that all ranks fail with the same message instead of waiting. After any failure the
 * bootstrap is unusable: later calls fail at once with the first error.
 *
 * Lost peers (peer_watch.c). A handler watches these connections for a close between
 * collectives, never reading from them. Rank 0, told that rank k's connection closed
 * (mixcomm__tcp_report_lost), marks the bootstrap broken with MIXCOMM_ERR_PEER_LOST and sends
 * ERROR with b = k + 1 to every other rank before shutting its side, exactly as for a failed
 * collective (whose ERROR also carries b = k + 1 when it failed because rank k's connection
 * closed); a collective holds `lock` for its whole duration, so that on rank 0 that notice
 * never lands inside another message. A non-root that sees rank 0's side close finds the
 * notice still queued (a peek under `lock`, mixcomm__tcp_lost_rank, so never in the middle of
 * a message its own collective is reading), or remembers it if its collective read it.
 *
 * Timeouts. Every wait (connect, accept, send, receive) is a poll() against a deadline of
 * timeout_ms from the start of the call; non-roots wait for rank 0's answer a grace period
 * longer (timeout/2, clamped to [0.5 s, 5 s]) so that rank 0, which sees all the ranks, is the
 * one to name the rank at fault. Sockets are non-blocking; sends use MSG_NOSIGNAL.
 *
 * Ownership. tcp_create allocates the mixcomm_bootstrap_t it returns; its destroy callback
 * closes the sockets and frees both the context and that struct, so mixcomm_bootstrap_destroy
 * (which only calls destroy) releases everything, and never frees a struct a user filled.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "bootstrap/bootstrap.h"
#include "bootstrap/tcp_ctx.h"
#include "core/error.h"
#include "core/log.h"

/* Close a connection without a reset: stop sending, read away what the peer already sent
 * (unread data would turn the close into an RST that can destroy our last message), close. */
static void close_gracefully(int fd) {
  if (fd < 0)
    return;
  if (shutdown(fd, SHUT_WR) != 0 && errno != ENOTCONN)
    MIXCOMM_DEBUG("bootstrap: shutdown(%d): %s", fd, strerror(errno));
  unsigned char sink[4096];
  for (int i = 0; i < 4096; i++) {
    ssize_t r = recv(fd, sink, sizeof sink, MSG_DONTWAIT);
    if (r > 0)
      continue;
    if (r < 0 && errno == EINTR)
      continue;
    break;
  }
  mixcomm__close_fd(fd, "bootstrap");
}

static void tcp_destroy(void* ctx) {
  mixcomm__tcp_ctx_t* c = (mixcomm__tcp_ctx_t*)ctx;
  if (c == NULL)
    return;
  if (c->fds != NULL) {
    for (int r = 0; r < c->size; r++)
      close_gracefully(c->fds[r]);
    free(c->fds);
  }
  pthread_mutex_destroy(&c->lock);
  free(c->self);
  free(c);
}

/* A rank's context without connections, with the struct it will hand out (c->self); NULL when
 * out of memory. */
static mixcomm__tcp_ctx_t* ctx_new(int rank, int size, int timeout_ms, const char* addr, int port) {
  mixcomm__tcp_ctx_t* c = calloc(1, sizeof *c);
  if (c == NULL)
    return NULL;
  pthread_mutex_init(&c->lock, NULL);
  c->rank = rank;
  c->size = size;
  c->timeout_ms = timeout_ms;
  c->broken = MIXCOMM_SUCCESS;
  c->lost_rank = -1;
  c->fds = malloc((size_t)size * sizeof *c->fds);
  for (int r = 0; c->fds != NULL && r < size; r++)
    c->fds[r] = -1;
  c->self = calloc(1, sizeof *c->self);
  if (c->fds == NULL || c->self == NULL) {
    tcp_destroy(c);
    return NULL;
  }
  if (strchr(addr, ':') != NULL)
    snprintf(c->where, sizeof c->where, "[%s]:%d", addr, port);
  else
    snprintf(c->where, sizeof c->where, "%s:%d", addr, port);
  return c;
}

mixcomm_status_t mixcomm_bootstrap_tcp_create(const mixcomm_tcp_options_t* options, int rank,
                                              int size, mixcomm_bootstrap_t** out) {
  char addr[256];
  unsigned char token[MIXCOMM__TCP_TOKEN_SIZE];
  int port = 0, timeout_ms = MIXCOMM__TCP_DEFAULT_TIMEOUT_MS;
  if (out == NULL)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "mixcomm_bootstrap_tcp_create: out is NULL");
  *out = NULL;
  if (size < 1)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "mixcomm_bootstrap_tcp_create: size=%d; the world needs at least 1 "
                          "rank",
                          size);
  if (rank < 0 || rank >= size)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "mixcomm_bootstrap_tcp_create: rank=%d is outside [0, size=%d)", rank,
                          size);
  MIXCOMM_CHECK(
      mixcomm__tcp_resolve_options(options, size, addr, sizeof addr, &port, token, &timeout_ms));

  mixcomm__tcp_ctx_t* c = ctx_new(rank, size, timeout_ms, addr, port);
  if (c == NULL)
    return mixcomm__error(MIXCOMM_ERR_OUT_OF_MEMORY,
                          "mixcomm_bootstrap_tcp_create: out of host memory");
  mixcomm_bootstrap_t* bs = c->self;

  mixcomm_status_t st = MIXCOMM_SUCCESS;
  if (size > 1 && rank == 0) {
    int lfd = -1;
    st = mixcomm__tcp_root_listen(c, addr, port, &lfd);
    if (st == MIXCOMM_SUCCESS) {
      st = mixcomm__tcp_root_setup(c, lfd, token);
      mixcomm__close_fd(lfd, "bootstrap");
    }
  } else if (size > 1) {
    st = mixcomm__tcp_nonroot_setup(c, addr, port, token);
  }
  if (st != MIXCOMM_SUCCESS) {
    tcp_destroy(c);
    return st;
  }
  *bs = (mixcomm_bootstrap_t){.ctx = c,
                               .allgather = mixcomm__tcp_allgather,
                               .barrier = mixcomm__tcp_barrier,
                               .destroy = tcp_destroy,
                               .rank = rank,
                               .size = size};
  *out = bs;
  MIXCOMM_INFO("bootstrap ready: rank %d of %d via %s", rank, size, size > 1 ? c->where : "-");
  return MIXCOMM_SUCCESS;
}
