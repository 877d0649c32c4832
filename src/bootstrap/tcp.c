/* SPDX-License-Identifier: Apache-2.0
 * The built-in TCP bootstrap (mixcomm_bootstrap_tcp_create): a rendezvous at rank 0 and a star
 * of TCP connections for allgather and barrier afterwards.
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
 * closed); a collective of rank 0 holds `lock` for its whole duration, so that notice never
 * lands inside another message. A non-root that sees rank 0's side close finds the notice
 * still queued (a peek, mixcomm__tcp_lost_rank), or remembers it if its own collective read it.
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
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "bootstrap/bootstrap.h"
#include "bootstrap/tcp_internal.h"
#include "core/error.h"
#include "core/log.h"

#define HDR_SIZE MIXCOMM__TCP_HDR_SIZE
#define TOKEN_SIZE MIXCOMM__TCP_TOKEN_SIZE
#define MAX_TEXT MIXCOMM__TCP_MAX_TEXT

typedef struct tcp_ctx {
  mixcomm_bootstrap_t* self; /* the struct handed out; freed by tcp_destroy */
  int rank, size;
  int timeout_ms;
  char where[300]; /* "addr:port" of rank 0, for messages */
  int* fds;        /* rank 0: fds[r] for every r >= 1; others: fds[0] */
  uint64_t seq;
  mixcomm_status_t broken; /* not MIXCOMM_SUCCESS after a failed collective */
  char broken_msg[768];
  int lost_rank; /* rank whose connection closed (ERROR with b = rank + 1), -1: none; atomic */
  pthread_mutex_t lock; /* rank 0: held by a collective and by mixcomm__tcp_report_lost */
} tcp_ctx_t;

/* ------------------------------------------------------------------------------------------ */
/* Small helpers                                                                              */
/* ------------------------------------------------------------------------------------------ */

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int poll_ms(long long deadline) {
  long long left = deadline - now_ms();
  if (left < 0)
    return 0;
  return left > INT_MAX ? INT_MAX : (int)left;
}

static int grace_ms(int timeout_ms) {
  int g = timeout_ms / 2;
  if (g < 500)
    g = 500;
  if (g > 5000)
    g = 5000;
  return g;
}

static void close_fd(int fd) {
  if (fd >= 0 && close(fd) != 0 && errno != EINTR)
    MIXCOMM_DEBUG("bootstrap: close(%d) failed: %s", fd, strerror(errno));
}

/* Sleep until min(deadline, now + ms), tolerating signals. */
static void sleep_until(long long deadline, int ms) {
  long long until = now_ms() + ms;
  if (until > deadline)
    until = deadline;
  for (;;) {
    int left = poll_ms(until);
    if (left <= 0)
      return;
    if (poll(NULL, 0, left) < 0 && errno != EINTR)
      return;
  }
}

/* "rank 2" or "rank 1, rank 2 and rank 5" (at most 8 named, then "and N more"). */
static void format_ranks(char* buf, size_t size, const int* ranks, int n) {
  size_t used = 0;
  buf[0] = '\0';
  for (int i = 0; i < n && used < size; i++) {
    int w;
    if (i == 8) {
      snprintf(buf + used, size - used, " and %d more", n - i);
      return;
    }
    const char* sep = i == 0 ? "" : (i == n - 1 ? " and " : ", ");
    w = snprintf(buf + used, size - used, "%srank %d", sep, ranks[i]);
    if (w < 0)
      return;
    used += (size_t)w;
  }
}

/* ------------------------------------------------------------------------------------------ */
/* Transfers: move buffers on non-blocking sockets, many at once, against a deadline          */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
  int fd;
  int peer; /* world rank at the other end, for messages */
  int is_send;
  unsigned char* base[2]; /* two segments: header and body */
  size_t len[2];
  size_t off; /* bytes moved so far over both segments */
} xfer_t;

static void xfer_init(xfer_t* x, int fd, int peer, int is_send, void* b0, size_t l0, void* b1,
                      size_t l1) {
  x->fd = fd;
  x->peer = peer;
  x->is_send = is_send;
  x->base[0] = b0;
  x->len[0] = l0;
  x->base[1] = b1;
  x->len[1] = l1;
  x->off = 0;
}

/* Move bytes until done or the socket would block. Returns 1 when complete, 0 when it would
 * block, -1 when the peer closed the connection (errno 0 for an orderly close), -2 on another
 * error (errno set). */
static int xfer_step(xfer_t* x) {
  for (;;) {
    size_t total = x->len[0] + x->len[1];
    if (x->off >= total)
      return 1;
    int s = x->off < x->len[0] ? 0 : 1;
    size_t o = s == 0 ? x->off : x->off - x->len[0];
    unsigned char* p = x->base[s] + o;
    size_t n = x->len[s] - o;
    ssize_t r;
    if (x->is_send) {
      /* Both segments in one call: one packet for a small message. */
      struct iovec iov[2] = {{p, n}, {x->base[1], s == 0 ? x->len[1] : 0}};
      struct msghdr m;
      memset(&m, 0, sizeof m);
      m.msg_iov = iov;
      m.msg_iovlen = iov[1].iov_len > 0 ? 2 : 1;
      r = sendmsg(x->fd, &m, MSG_NOSIGNAL);
    } else {
      r = recv(x->fd, p, n, 0);
    }
    if (r > 0) {
      x->off += (size_t)r;
      continue;
    }
    if (r == 0) {
      errno = 0;
      return -1;
    }
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return 0;
    if (errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN || errno == ECONNABORTED)
      return -1;
    return -2;
  }
}

/* The rank whose connection this thread last found closed (-1: none): rank 0 names it in the
 * ERROR notice, so that the other ranks' watches blame that rank, not rank 0. */
static _Thread_local int closed_peer = -1;

static mixcomm_status_t xfer_fail(const xfer_t* x, int r, const char* what) {
  if (r == -1) {
    closed_peer = x->peer;
    if (errno != 0)
      return mixcomm__error(MIXCOMM_ERR_BOOTSTRAP,
                            "%s: rank %d closed the connection (%s); it probably exited or "
                            "crashed: see its own error",
                            what, x->peer, strerror(errno));
    return mixcomm__error(MIXCOMM_ERR_BOOTSTRAP,
                          "%s: rank %d closed the connection; it probably exited or crashed: "
                          "see its own error",
                          what, x->peer);
  }
  int e = errno;
  return mixcomm__error(MIXCOMM_ERR_SYSTEM, "%s: %s rank %d failed: %s (errno %d)", what,
                        x->is_send ? "sending to" : "receiving from", x->peer, strerror(e), e);
}

/* Complete every transfer before the deadline, all at once. On failure the error names the
 * rank at fault (for a timeout: every rank still pending). */
static mixcomm_status_t xfer_run(xfer_t* x, int n, long long deadline, int timeout_ms,
                                 const char* what) {
  mixcomm_status_t st = MIXCOMM_SUCCESS;
  struct pollfd* pf = calloc((size_t)(n > 0 ? n : 1), sizeof *pf);
  int* idx = calloc((size_t)(n > 0 ? n : 1), sizeof *idx);
  int active = 0;
  if (pf == NULL || idx == NULL) {
    st = mixcomm__error(MIXCOMM_ERR_OUT_OF_MEMORY, "%s: out of host memory", what);
    goto done;
  }
  /* First pass over everything; afterwards only the sockets poll() reports ready. */
  for (int i = 0; i < n; i++) {
    int r = xfer_step(&x[i]);
    if (r < 0) {
      st = xfer_fail(&x[i], r, what);
      goto done;
    }
    if (r == 0) {
      pf[active].fd = x[i].fd;
      pf[active].events = x[i].is_send ? POLLOUT : POLLIN;
      pf[active].revents = 0;
      idx[active++] = i;
    }
  }
  while (active > 0) {
    int left = poll_ms(deadline);
    if (left <= 0) {
      char names[256];
      int nsend = 0;
      for (int k = 0; k < active; k++) {
        nsend += x[idx[k]].is_send;
        idx[k] = x[idx[k]].peer; /* reuse idx for the names */
      }
      format_ranks(names, sizeof names, idx, active);
      if (nsend == active)
        st = mixcomm__error(MIXCOMM_ERR_TIMEOUT,
                            "%s: %s did not take its data within %d ms; it may be stuck or "
                            "dead",
                            what, names, timeout_ms);
      else
        st = mixcomm__error(MIXCOMM_ERR_TIMEOUT,
                            "%s: %s sent nothing (or not all its data) within %d ms; it may be "
                            "stuck, dead, or not making the same bootstrap call",
                            what, names, timeout_ms);
      goto done;
    }
    if (poll(pf, (nfds_t)active, left) < 0) {
      if (errno == EINTR)
        continue;
      st = mixcomm__sys_error("bootstrap: poll");
      goto done;
    }
    int kept = 0;
    for (int k = 0; k < active; k++) {
      if (pf[k].revents != 0) {
        int r = xfer_step(&x[idx[k]]);
        if (r < 0) {
          st = xfer_fail(&x[idx[k]], r, what);
          goto done;
        }
        if (r == 1)
          continue;
      }
      pf[kept] = pf[k];
      pf[kept].revents = 0;
      idx[kept++] = idx[k];
    }
    active = kept;
  }
done:
  free(pf);
  free(idx);
  return st;
}

static mixcomm_status_t send_msg(int fd, int peer, const void* hdr, const void* body,
                                 size_t body_len, long long deadline, int timeout_ms,
                                 const char* what) {
  xfer_t x;
  xfer_init(&x, fd, peer, 1, (void*)hdr, HDR_SIZE, (void*)body, body_len);
  return xfer_run(&x, 1, deadline, timeout_ms, what);
}

/* Best effort, never blocks: send a short message at once or not at all (used on the way out
 * of a failure, to tell a peer why). */
static void send_now(int fd, uint32_t type, mixcomm_status_t st, uint32_t b, uint64_t seq,
                     const char* text) {
  unsigned char buf[HDR_SIZE + 2048];
  size_t len = strlen(text);
  if (len > sizeof buf - HDR_SIZE)
    len = sizeof buf - HDR_SIZE;
  mixcomm__tcp_encode_hdr(buf, type, (uint32_t)st, b, seq, len);
  memcpy(buf + HDR_SIZE, text, len);
  ssize_t r;
  do {
    r = send(fd, buf, HDR_SIZE + len, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (r < 0 && errno == EINTR);
  if (r < 0)
    MIXCOMM_DEBUG("bootstrap: could not send a failure notice: %s", strerror(errno));
}

/* Read a text body of len bytes (capped) into text. */
static mixcomm_status_t recv_text(int fd, int peer, uint64_t len, char* text, size_t cap,
                                  long long deadline, int timeout_ms, const char* what) {
  if (len >= cap)
    return mixcomm__error(MIXCOMM_ERR_BOOTSTRAP,
                          "%s: rank %d sent a %llu-byte message, more than the protocol allows; "
                          "is it a mixcomm process of the same version?",
                          what, peer, (unsigned long long)len);
  xfer_t x;
  xfer_init(&x, fd, peer, 0, text, (size_t)len, NULL, 0);
  MIXCOMM_CHECK(xfer_run(&x, 1, deadline, timeout_ms, what));
  mixcomm__tcp_text_from_wire(text, (size_t)len);
  return MIXCOMM_SUCCESS;
}

/* ------------------------------------------------------------------------------------------ */
/* Failure state                                                                              */
/* ------------------------------------------------------------------------------------------ */

/* The ERROR notice's b: the rank whose connection closed + 1, else 0. */
static uint32_t lost_wire(tcp_ctx_t* c) {
  const int lost = __atomic_load_n(&c->lost_rank, __ATOMIC_ACQUIRE);
  return lost >= 0 ? (uint32_t)lost + 1 : 0;
}

/* A non-root read rank 0's ERROR notice h: remember the closed rank it names. */
static void note_lost(tcp_ctx_t* c, const mixcomm__tcp_hdr_t* h) {
  if (h->b >= 1 && h->b <= (uint32_t)c->size)
    __atomic_store_n(&c->lost_rank, (int)h->b - 1, __ATOMIC_RELEASE);
}

/* Remember the current error as fatal for this bootstrap. Rank 0 tells every other rank why
 * (ERROR) before shutting its side of the connections; a non-root shuts its connection so rank
 * 0 sees it gone at once. Returns st. */
static mixcomm_status_t mark_broken(tcp_ctx_t* c, mixcomm_status_t st, uint64_t seq,
                                    int notify) {
  if (c->rank == 0 && closed_peer > 0 && closed_peer < c->size) {
    int none = -1;
    __atomic_compare_exchange_n(&c->lost_rank, &none, closed_peer, 0, __ATOMIC_ACQ_REL,
                                __ATOMIC_ACQUIRE);
  }
  c->broken = st;
  snprintf(c->broken_msg, sizeof c->broken_msg, "%s", mixcomm_last_error());
  int first = c->rank == 0 ? 1 : 0, last = c->rank == 0 ? c->size - 1 : 0;
  for (int r = first; r <= last; r++) {
    if (c->fds[r] < 0)
      continue;
    if (notify)
      send_now(c->fds[r], MIXCOMM__MSG_ERROR, st, lost_wire(c), seq, c->broken_msg);
    if (shutdown(c->fds[r], SHUT_WR) != 0)
      MIXCOMM_DEBUG("bootstrap: shutdown of the connection to rank %d: %s", r, strerror(errno));
  }
  return st;
}

/* ------------------------------------------------------------------------------------------ */
/* Allgather and barrier                                                                      */
/* ------------------------------------------------------------------------------------------ */

static mixcomm_status_t root_allgather(tcp_ctx_t* c, const void* send, void* recv, size_t bytes,
                                       uint64_t seq, const char* what) {
  const int n = c->size - 1;
  const size_t total = (size_t)c->size * bytes;
  const long long deadline = now_ms() + c->timeout_ms;
  mixcomm_status_t st = MIXCOMM_SUCCESS;
  closed_peer = -1;
  unsigned char* hdrs = malloc((size_t)c->size * HDR_SIZE);
  xfer_t* x = malloc((size_t)n * sizeof *x);
  if (hdrs == NULL || x == NULL) {
    free(hdrs);
    free(x);
    return mixcomm__error(MIXCOMM_ERR_OUT_OF_MEMORY, "%s: out of host memory", what);
  }
  /* 1. Every header: sequence number and size, checked before any payload lands in recv. */
  for (int r = 1; r <= n; r++)
    xfer_init(&x[r - 1], c->fds[r], r, 0, hdrs + (size_t)r * HDR_SIZE, HDR_SIZE, NULL, 0);
  MIXCOMM_CHECK_GOTO(xfer_run(x, n, deadline, c->timeout_ms, what), st, fail);
  for (int r = 1; r <= n; r++)
    MIXCOMM_CHECK_GOTO(mixcomm__tcp_check_data(hdrs + (size_t)r * HDR_SIZE, r, seq, bytes, what),
                       st, fail);
  /* 2. Payloads, straight into their place in recv. */
  if (bytes > 0) {
    memmove(recv, send, bytes);
    for (int r = 1; r <= n; r++)
      xfer_init(&x[r - 1], c->fds[r], r, 0, (unsigned char*)recv + (size_t)r * bytes, bytes,
                NULL, 0);
    MIXCOMM_CHECK_GOTO(xfer_run(x, n, deadline, c->timeout_ms, what), st, fail);
  }
  /* 3. The result to everyone (one header shared by all transfers). */
  mixcomm__tcp_encode_hdr(hdrs, MIXCOMM__MSG_RESULT, 0, 0, seq, total);
  for (int r = 1; r <= n; r++)
    xfer_init(&x[r - 1], c->fds[r], r, 1, hdrs, HDR_SIZE, recv, total);
  MIXCOMM_CHECK_GOTO(xfer_run(x, n, deadline, c->timeout_ms, what), st, fail_quiet);
  free(hdrs);
  free(x);
  return MIXCOMM_SUCCESS;
fail:
  free(hdrs);
  free(x);
  return mark_broken(c, st, seq, 1);
fail_quiet:
  /* Some results are half sent: a notice would be garbled, so just close our side. */
  free(hdrs);
  free(x);
  return mark_broken(c, st, seq, 0);
}

/* If a complete ERROR message from rank 0 is already waiting on fd, consume it, record it as
 * the error and return 1; else leave the socket alone and return 0. Never blocks. */
static int pending_error(tcp_ctx_t* c, int fd, const char* what, mixcomm_status_t* st) {
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
  note_lost(c, &h);
  *st = mixcomm__error(mixcomm__tcp_status_from_wire(h.a), "%s failed, as reported by rank 0: %s",
                       what, text);
  return 1;
}

static mixcomm_status_t nonroot_allgather(tcp_ctx_t* c, const void* send, void* recv,
                                          size_t bytes, uint64_t seq, const char* what) {
  const int fd = c->fds[0];
  const size_t total = (size_t)c->size * bytes;
  const long long deadline = now_ms() + c->timeout_ms;
  const long long answer_deadline = deadline + grace_ms(c->timeout_ms);
  mixcomm_status_t st;
  unsigned char hbuf[HDR_SIZE];
  mixcomm__tcp_encode_hdr(hbuf, MIXCOMM__MSG_DATA, 0, 0, seq, bytes);

  /* 1. Send our piece; stop early if rank 0 answers meanwhile (that can only be an ERROR). */
  xfer_t x;
  xfer_init(&x, fd, 0, 1, hbuf, HDR_SIZE, (void*)send, bytes);
  for (;;) {
    int r = xfer_step(&x);
    if (r == 1)
      break;
    if (r < 0) {
      /* Rank 0 may have told us why before it closed: that is the better message. */
      int e = errno;
      if (pending_error(c, fd, what, &st))
        return mark_broken(c, st, seq, 0);
      errno = e;
      st = xfer_fail(&x, r, what);
      return mark_broken(c, st, seq, 0);
    }
    int left = poll_ms(deadline);
    if (left <= 0) {
      st = mixcomm__error(MIXCOMM_ERR_TIMEOUT,
                          "%s: rank 0 (%s) did not take this rank's data within %d ms; rank 0 "
                          "may be stuck or dead",
                          what, c->where, c->timeout_ms);
      return mark_broken(c, st, seq, 0);
    }
    struct pollfd pf = {fd, POLLOUT | POLLIN, 0};
    int pr = poll(&pf, 1, left);
    if (pr < 0 && errno != EINTR) {
      st = mixcomm__sys_error("bootstrap: poll");
      return mark_broken(c, st, seq, 0);
    }
    if (pr > 0 && (pf.revents & POLLIN))
      break;
  }
  const int sent_all = x.off == HDR_SIZE + bytes;

  /* 2. Rank 0's answer: RESULT or ERROR. */
  unsigned char rbuf[HDR_SIZE];
  xfer_init(&x, fd, 0, 0, rbuf, HDR_SIZE, NULL, 0);
  for (;;) {
    int r = xfer_step(&x);
    if (r == 1)
      break;
    if (r < 0) {
      st = xfer_fail(&x, r, what);
      return mark_broken(c, st, seq, 0);
    }
    int left = poll_ms(answer_deadline);
    if (left <= 0) {
      st = mixcomm__error(MIXCOMM_ERR_TIMEOUT,
                          "%s: rank 0 (%s) sent no result within %d ms; rank 0 or another rank "
                          "is stuck or dead",
                          what, c->where, c->timeout_ms);
      return mark_broken(c, st, seq, 0);
    }
    struct pollfd pf = {fd, POLLIN, 0};
    if (poll(&pf, 1, left) < 0 && errno != EINTR) {
      st = mixcomm__sys_error("bootstrap: poll");
      return mark_broken(c, st, seq, 0);
    }
  }
  mixcomm__tcp_hdr_t h;
  const mixcomm__tcp_answer_t kind = mixcomm__tcp_classify_answer(rbuf, seq, total, &h);
  if (kind == MIXCOMM__ANSWER_ERROR) {
    char text[MAX_TEXT];
    st = recv_text(fd, 0, h.len, text, sizeof text, answer_deadline, c->timeout_ms, what);
    note_lost(c, &h);
    if (st == MIXCOMM_SUCCESS)
      st = mixcomm__error(mixcomm__tcp_status_from_wire(h.a),
                          "%s failed, as reported by rank 0: %s", what, text);
    return mark_broken(c, st, seq, 0);
  }
  if (kind != MIXCOMM__ANSWER_RESULT || !sent_all) {
    st = mixcomm__error(MIXCOMM_ERR_BOOTSTRAP,
                        "%s: rank 0 answered out of step (type %u, call #%llu, %llu bytes; "
                        "expected a result of call #%llu, %zu bytes)",
                        what, h.type, (unsigned long long)h.seq, (unsigned long long)h.len,
                        (unsigned long long)seq, total);
    return mark_broken(c, st, seq, 0);
  }
  if (total > 0) {
    xfer_init(&x, fd, 0, 0, recv, total, NULL, 0);
    st = xfer_run(&x, 1, answer_deadline, c->timeout_ms, what);
    if (st != MIXCOMM_SUCCESS)
      return mark_broken(c, st, seq, 0);
  }
  return MIXCOMM_SUCCESS;
}

static mixcomm_status_t collective(tcp_ctx_t* c, const void* send, void* recv, size_t bytes,
                                   const char* kind) {
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
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "%s: %d x %zu bytes overflows size_t",
                          what, c->size, bytes);
  if (c->size == 1) {
    if (bytes > 0)
      memmove(recv, send, bytes);
    return MIXCOMM_SUCCESS;
  }
  if (c->rank == 0)
    return root_allgather(c, send, recv, bytes, seq, what);
  return nonroot_allgather(c, send, recv, bytes, seq, what);
}

/* Rank 0 runs each collective under the lock (a lost-peer notice never interleaves with it,
 * and c->broken is read and written under it). */
static mixcomm_status_t tcp_collective(tcp_ctx_t* c, const void* send, void* recv, size_t bytes,
                                       const char* kind) {
  if (c->rank != 0)
    return collective(c, send, recv, bytes, kind);
  pthread_mutex_lock(&c->lock);
  mixcomm_status_t st = collective(c, send, recv, bytes, kind);
  pthread_mutex_unlock(&c->lock);
  return st;
}

static int tcp_allgather(void* ctx, const void* send, void* recv, size_t bytes) {
  return (int)tcp_collective((tcp_ctx_t*)ctx, send, recv, bytes, "allgather");
}

static int tcp_barrier(void* ctx) {
  tcp_ctx_t* c = (tcp_ctx_t*)ctx;
  unsigned char one = 1;
  unsigned char* all = malloc((size_t)c->size);
  if (all == NULL)
    return (int)mixcomm__error(MIXCOMM_ERR_OUT_OF_MEMORY, "bootstrap barrier: out of memory");
  mixcomm_status_t st = tcp_collective(c, &one, all, 1, "barrier");
  free(all);
  return (int)st;
}

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
  close_fd(fd);
}

static void tcp_destroy(void* ctx) {
  tcp_ctx_t* c = (tcp_ctx_t*)ctx;
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

/* ------------------------------------------------------------------------------------------ */
/* Setup: rank 0                                                                              */
/* ------------------------------------------------------------------------------------------ */

static mixcomm_status_t root_listen(tcp_ctx_t* c, const char* addr, int port, int* out_fd) {
  struct addrinfo hints, *res = NULL;
  char ps[16];
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  snprintf(ps, sizeof ps, "%d", port);
  int g = getaddrinfo(addr, ps, &hints, &res);
  if (g != 0)
    return mixcomm__error(MIXCOMM_ERR_BOOTSTRAP,
                          "bootstrap: rank 0 cannot resolve its address '%s': %s; set "
                          "MIXCOMM_ADDR (or MASTER_ADDR) to an address of rank 0's host",
                          addr, g == EAI_SYSTEM ? strerror(errno) : gai_strerror(g));
  int last_errno = 0;
  const char* step = "socket";
  for (struct addrinfo* ai = res; ai != NULL; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
    if (fd < 0) {
      last_errno = errno;
      step = "socket";
      continue;
    }
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) {
      last_errno = errno;
      step = "setsockopt(SO_REUSEADDR)";
    } else if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      last_errno = errno;
      step = "bind";
    } else if (listen(fd, SOMAXCONN) != 0) {
      last_errno = errno;
      step = "listen";
    } else {
      freeaddrinfo(res);
      *out_fd = fd;
      return MIXCOMM_SUCCESS;
    }
    close_fd(fd);
  }
  freeaddrinfo(res);
  if (last_errno == EADDRINUSE)
    return mixcomm__error(MIXCOMM_ERR_BOOTSTRAP,
                          "bootstrap: rank 0 cannot listen on %s: the port is in use (another "
                          "job, or a previous run still holding it?); choose another "
                          "MIXCOMM_PORT / MASTER_PORT",
                          c->where);
  if (last_errno == EADDRNOTAVAIL)
    return mixcomm__error(MIXCOMM_ERR_BOOTSTRAP,
                          "bootstrap: rank 0 cannot listen on %s: '%s' is not an address of "
                          "this host; set MIXCOMM_ADDR / MASTER_ADDR to rank 0's own address",
                          c->where, addr);
  return mixcomm__error(MIXCOMM_ERR_SYSTEM, "bootstrap: rank 0 cannot listen on %s: %s: %s",
                        c->where, step, strerror(last_errno));
}

typedef struct {
  int fd;
  size_t got;
  unsigned char buf[HDR_SIZE + TOKEN_SIZE];
  char from[INET6_ADDRSTRLEN + 16];
} pending_t;

/* Refuse a connection: tell it why, then close it. */
static void refuse(pending_t* p, mixcomm_status_t st, const char* reason, char* last_refusal,
                   size_t cap) {
  MIXCOMM_INFO("bootstrap: rank 0 refused a connection from %s: %s", p->from, reason);
  snprintf(last_refusal, cap, "%s (from %s)", reason, p->from);
  send_now(p->fd, MIXCOMM__MSG_REJECT, st, 0, 0, reason);
  close_fd(p->fd);
  p->fd = -1;
}

/* Rank r's hello was accepted (mixcomm__tcp_judge_hello): tell it how long rank 0 will wait. */
static void admit(tcp_ctx_t* c, pending_t* p, int r, long long deadline, int* joined) {
  unsigned char msg[HDR_SIZE];
  long long left = deadline - now_ms();
  mixcomm__tcp_encode_hdr(msg, MIXCOMM__MSG_ACCEPTED, (uint32_t)(left > 0 ? left : 0), 0, 0, 0);
  /* A fresh socket takes 40 bytes at once; bound it anyway. */
  long long until = now_ms() + 1000;
  mixcomm_status_t st = send_msg(p->fd, r, msg, NULL, 0, until < deadline ? until : deadline,
                                 1000, "bootstrap setup");
  if (st != MIXCOMM_SUCCESS) {
    MIXCOMM_INFO("bootstrap: rank %d vanished while joining: %s", r, mixcomm_last_error());
    close_fd(p->fd);
    p->fd = -1;
    return;
  }
  MIXCOMM_DEBUG("bootstrap: rank %d of %d joined from %s", r, c->size, p->from);
  c->fds[r] = p->fd;
  p->fd = -1;
  (*joined)++;
}

static void peer_name(const struct sockaddr_storage* sa, socklen_t len, char* out, size_t cap) {
  char host[INET6_ADDRSTRLEN], serv[16];
  if (getnameinfo((const struct sockaddr*)sa, len, host, sizeof host, serv, sizeof serv,
                  NI_NUMERICHOST | NI_NUMERICSERV) == 0)
    snprintf(out, cap, "%s:%s", host, serv);
  else
    snprintf(out, cap, "an unknown address");
}

static mixcomm_status_t root_setup(tcp_ctx_t* c, int lfd, const unsigned char* token) {
  const long long deadline = now_ms() + c->timeout_ms;
  const int need = c->size - 1;
  const int cap = c->size + 64;
  int joined = 0, npend = 0, refused = 0;
  char last_refusal[512] = "";
  int* left_early = calloc((size_t)c->size, sizeof *left_early);
  pending_t* pend = calloc((size_t)cap, sizeof *pend);
  struct pollfd* pf = calloc((size_t)(1 + cap + c->size), sizeof *pf);
  int* who = calloc((size_t)(1 + cap + c->size), sizeof *who); /* >= 0: rank; < 0: ~pending */
  mixcomm_status_t st = MIXCOMM_SUCCESS;
  if (left_early == NULL || pend == NULL || pf == NULL || who == NULL) {
    st = mixcomm__error(MIXCOMM_ERR_OUT_OF_MEMORY, "bootstrap: out of host memory");
    goto out;
  }
  MIXCOMM_INFO("bootstrap: rank 0 listening on %s for %d ranks (%d ms)", c->where, c->size,
               c->timeout_ms);
  while (joined < need) {
    int left = poll_ms(deadline);
    if (left <= 0)
      break;
    int n = 0;
    pf[n].fd = lfd;
    pf[n].events = POLLIN;
    pf[n].revents = 0;
    who[n++] = 0;
    for (int i = 0; i < npend; i++) {
      pf[n].fd = pend[i].fd;
      pf[n].events = POLLIN;
      pf[n].revents = 0;
      who[n++] = ~i;
    }
    for (int r = 1; r < c->size; r++) {
      if (c->fds[r] < 0)
        continue;
      pf[n].fd = c->fds[r];
      pf[n].events = POLLIN;
      pf[n].revents = 0;
      who[n++] = r;
    }
    if (poll(pf, (nfds_t)n, left) < 0) {
      if (errno == EINTR)
        continue;
      st = mixcomm__sys_error("bootstrap: rank 0: poll");
      goto out;
    }
    for (int k = 1; k < n; k++) {
      if (pf[k].revents == 0)
        continue;
      if (who[k] > 0) {
        /* A joined rank must stay silent until OK: readable means it closed (or misbehaves). */
        const int r = who[k];
        MIXCOMM_INFO("bootstrap: rank %d closed its connection before every rank joined", r);
        close_fd(c->fds[r]);
        c->fds[r] = -1;
        left_early[r] = 1;
        joined--;
        continue;
      }
      pending_t* p = &pend[~who[k]];
      for (;;) {
        ssize_t got = recv(p->fd, p->buf + p->got, sizeof p->buf - p->got, 0);
        if (got < 0 && errno == EINTR)
          continue;
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
          break;
        if (got <= 0) {
          close_fd(p->fd);
          p->fd = -1;
          break;
        }
        p->got += (size_t)got;
        mixcomm__tcp_hello_t v;
        mixcomm__tcp_judge_hello(p->buf, p->got, token, c->size, c->fds, &v);
        if (v.verdict == MIXCOMM__HELLO_MORE)
          continue;
        if (v.verdict == MIXCOMM__HELLO_DROP) {
          MIXCOMM_INFO("bootstrap: rank 0 dropped a connection from %s: %s", p->from, v.reason);
          close_fd(p->fd);
          p->fd = -1;
        } else if (v.verdict == MIXCOMM__HELLO_REFUSE) {
          refused++;
          refuse(p, v.status, v.reason, last_refusal, sizeof last_refusal);
        } else {
          admit(c, p, v.rank, deadline, &joined);
        }
        break;
      }
    }
    /* Drop finished pending entries. */
    int w = 0;
    for (int i = 0; i < npend; i++)
      if (pend[i].fd >= 0)
        pend[w++] = pend[i];
    npend = w;
    if (pf[0].revents != 0) {
      for (;;) {
        struct sockaddr_storage sa;
        socklen_t sl = sizeof sa;
        int fd = accept4(lfd, (struct sockaddr*)&sa, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
          if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
            continue;
          if (errno == EAGAIN || errno == EWOULDBLOCK)
            break;
          st = mixcomm__sys_error("bootstrap: rank 0: accept");
          goto out;
        }
        if (npend == cap) {
          /* Full of connections without a complete hello (a flood, or a scan of the port): the
           * oldest goes, not the newcomer, so that silent connections cannot keep the ranks out
           * (a rank sends its hello at once, and reconnects if it was dropped unanswered). */
          MIXCOMM_INFO("bootstrap: rank 0 has %d connections that sent no hello; dropping the "
                       "oldest, from %s",
                       cap, pend[0].from);
          close_fd(pend[0].fd);
          memmove(pend, pend + 1, (size_t)(npend - 1) * sizeof *pend);
          npend--;
        }
        int one = 1;
        if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
          MIXCOMM_DEBUG("bootstrap: TCP_NODELAY: %s", strerror(errno));
        memset(&pend[npend], 0, sizeof pend[npend]);
        pend[npend].fd = fd;
        peer_name(&sa, sl, pend[npend].from, sizeof pend[npend].from);
        npend++;
      }
    }
  }

  if (joined < need) {
    /* Deadline: name the missing ranks, tell the joined ones, give up. */
    int* missing = calloc((size_t)c->size, sizeof *missing);
    int nmiss = 0;
    char names[256], text[2048], extra[700] = "";
    if (missing == NULL) {
      st = mixcomm__error(MIXCOMM_ERR_OUT_OF_MEMORY, "bootstrap: out of host memory");
      goto out;
    }
    for (int r = 1; r < c->size; r++)
      if (c->fds[r] < 0)
        missing[nmiss++] = r;
    format_ranks(names, sizeof names, missing, nmiss);
    size_t used = 0;
    for (int i = 0; i < nmiss && used < sizeof extra; i++)
      if (left_early[missing[i]]) {
        int wr = snprintf(extra + used, sizeof extra - used,
                          "; rank %d connected but closed its connection", missing[i]);
        used += wr > 0 ? (size_t)wr : 0;
      }
    if (refused > 0 && used < sizeof extra)
      snprintf(extra + used, sizeof extra - used, "; %d connection(s) refused, last: %s",
               refused, last_refusal);
    snprintf(text, sizeof text,
             "%s of %d never connected to %s within %d ms%s; start every rank with the same "
             "address, port and job token, or raise MIXCOMM_BOOTSTRAP_TIMEOUT_MS",
             names, c->size, c->where, c->timeout_ms, extra);
    free(missing);
    for (int r = 1; r < c->size; r++)
      if (c->fds[r] >= 0)
        send_now(c->fds[r], MIXCOMM__MSG_ABORT, MIXCOMM_ERR_TIMEOUT, 0, 0, text);
    st = mixcomm__error(MIXCOMM_ERR_TIMEOUT, "bootstrap: %s", text);
    goto out;
  }

  /* Everyone is here: OK to all. */
  {
    unsigned char ok[HDR_SIZE];
    xfer_t* x = calloc((size_t)need, sizeof *x);
    if (x == NULL) {
      st = mixcomm__error(MIXCOMM_ERR_OUT_OF_MEMORY, "bootstrap: out of host memory");
      goto out;
    }
    mixcomm__tcp_encode_hdr(ok, MIXCOMM__MSG_OK, 0, 0, 0, 0);
    for (int r = 1; r < c->size; r++)
      xfer_init(&x[r - 1], c->fds[r], r, 1, ok, HDR_SIZE, NULL, 0);
    st = xfer_run(x, need, deadline + grace_ms(c->timeout_ms), c->timeout_ms,
                  "bootstrap setup: telling every rank to go");
    free(x);
  }

out:
  for (int i = 0; i < npend; i++)
    close_fd(pend[i].fd);
  free(left_early);
  free(pend);
  free(pf);
  free(who);
  return st;
}

/* ------------------------------------------------------------------------------------------ */
/* Setup: the other ranks                                                                     */
/* ------------------------------------------------------------------------------------------ */

/* One connection attempt to every address of rank 0. Returns a connected socket or -1 (with
 * *last_err describing the last failure). */
static int try_connect(const char* addr, const char* port, long long deadline, char* last_err,
                       size_t cap) {
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  int g = getaddrinfo(addr, port, &hints, &res);
  if (g != 0) {
    snprintf(last_err, cap, "cannot resolve '%.100s': %s", addr,
             g == EAI_SYSTEM ? strerror(errno) : gai_strerror(g));
    return -1;
  }
  int out = -1;
  for (struct addrinfo* ai = res; ai != NULL && out < 0; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
    if (fd < 0) {
      snprintf(last_err, cap, "socket: %s", strerror(errno));
      continue;
    }
    int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (rc != 0 && (errno == EINPROGRESS || errno == EINTR)) {
      long long until = now_ms() + 2000;
      if (until > deadline)
        until = deadline;
      struct pollfd pf = {fd, POLLOUT, 0};
      int pr;
      for (;;) {
        pr = poll(&pf, 1, poll_ms(until));
        if (pr < 0 && errno == EINTR)
          continue;
        break;
      }
      if (pr < 0) {
        snprintf(last_err, cap, "poll: %s", strerror(errno));
      } else if (pr == 0) {
        snprintf(last_err, cap, "connect: no answer");
      } else {
        int err = 0;
        socklen_t el = sizeof err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0)
          err = errno;
        if (err == 0)
          rc = 0;
        else
          snprintf(last_err, cap, "connect: %s", strerror(err));
      }
    } else if (rc != 0) {
      snprintf(last_err, cap, "connect: %s", strerror(errno));
    }
    if (rc == 0)
      out = fd;
    else
      close_fd(fd);
  }
  freeaddrinfo(res);
  return out;
}

/* Hello on the connected c->fds[0], then rank 0's answers until OK. *dropped = 1 when rank 0
 * closed the connection before answering the hello (it drops the oldest silent connection
 * when flooded): the caller then connects again. */
static mixcomm_status_t join(tcp_ctx_t* c, const unsigned char* token, long long deadline,
                             int* dropped) {
  const int fd = c->fds[0];
  *dropped = 0;
  unsigned char hello[HDR_SIZE];
  mixcomm__tcp_encode_hdr(hello, MIXCOMM__MSG_HELLO, (uint32_t)c->rank, (uint32_t)c->size, 0,
                          TOKEN_SIZE);
  mixcomm_status_t st = send_msg(fd, 0, hello, token, TOKEN_SIZE, deadline, c->timeout_ms,
                                 "bootstrap setup: sending hello");
  if (st != MIXCOMM_SUCCESS) {
    *dropped = st == MIXCOMM_ERR_BOOTSTRAP;
    return st;
  }
  long long wait_until = deadline;
  int accepted = 0;
  for (;;) {
    unsigned char buf[HDR_SIZE];
    xfer_t x;
    xfer_init(&x, fd, 0, 0, buf, HDR_SIZE, NULL, 0);
    st = xfer_run(&x, 1, wait_until, c->timeout_ms, "bootstrap setup");
    if (st == MIXCOMM_ERR_TIMEOUT) {
      if (accepted)
        return mixcomm__error(MIXCOMM_ERR_TIMEOUT,
                              "bootstrap: rank %d of %d joined rank 0 at %s, but rank 0 did not "
                              "report the end of setup within %d ms; rank 0 may be stuck",
                              c->rank, c->size, c->where, c->timeout_ms);
      return mixcomm__error(MIXCOMM_ERR_TIMEOUT,
                            "bootstrap: rank 0 at %s took the connection of rank %d of %d but "
                            "did not answer its hello within %d ms; is another program using "
                            "this port?",
                            c->where, c->rank, c->size, c->timeout_ms);
    }
    if (st != MIXCOMM_SUCCESS) {
      *dropped = !accepted && st == MIXCOMM_ERR_BOOTSTRAP;
      return st;
    }
    mixcomm__tcp_hdr_t h;
    int wait_ms = 0;
    switch (mixcomm__tcp_classify_setup(buf, &h, &wait_ms)) {
      case MIXCOMM__SETUP_ACCEPTED:
        accepted = 1;
        wait_until = now_ms() + wait_ms + grace_ms(c->timeout_ms);
        continue;
      case MIXCOMM__SETUP_OK:
        return MIXCOMM_SUCCESS;
      case MIXCOMM__SETUP_TEXT: {
        char text[MAX_TEXT];
        MIXCOMM_CHECK(recv_text(fd, 0, h.len, text, sizeof text, wait_until, c->timeout_ms,
                                "bootstrap setup"));
        if (h.type == MIXCOMM__MSG_REJECT)
          return mixcomm__error(mixcomm__tcp_status_from_wire(h.a),
                                "bootstrap: rank 0 at %s refused this process (rank %d of %d): "
                                "%s",
                                c->where, c->rank, c->size, text);
        return mixcomm__error(mixcomm__tcp_status_from_wire(h.a),
                              "bootstrap: rank 0 at %s gave up: %s", c->where, text);
      }
      case MIXCOMM__SETUP_FOREIGN:
        return mixcomm__error(MIXCOMM_ERR_BOOTSTRAP,
                              "bootstrap: the process at %s does not speak mixcomm bootstrap "
                              "version %u; check MIXCOMM_PORT / MASTER_PORT",
                              c->where, MIXCOMM__TCP_VERSION);
      default:
        return mixcomm__error(MIXCOMM_ERR_BOOTSTRAP,
                              "bootstrap: rank 0 at %s sent message type %u (a = %u, %llu "
                              "bytes) during setup, which no rank 0 of this version sends; are "
                              "all ranks running the same mixcomm build?",
                              c->where, h.type, h.a, (unsigned long long)h.len);
    }
  }
}

static mixcomm_status_t nonroot_setup(tcp_ctx_t* c, const char* addr, int port,
                                      const unsigned char* token) {
  const long long deadline = now_ms() + c->timeout_ms;
  char ps[16], last_err[256] = "no attempt";
  snprintf(ps, sizeof ps, "%d", port);
  for (;;) {
    int fd = -1;
    for (;;) {
      fd = try_connect(addr, ps, deadline, last_err, sizeof last_err);
      if (fd >= 0 || now_ms() >= deadline)
        break;
      sleep_until(deadline, 50);
    }
    if (fd < 0)
      return mixcomm__error(MIXCOMM_ERR_TIMEOUT,
                            "bootstrap: rank %d of %d could not reach rank 0 at %s within %d ms "
                            "(last error: %s); check that rank 0 is running and that "
                            "MIXCOMM_ADDR / MASTER_ADDR and MIXCOMM_PORT / MASTER_PORT name it",
                            c->rank, c->size, c->where, c->timeout_ms, last_err);
    c->fds[0] = fd;
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
      MIXCOMM_DEBUG("bootstrap: TCP_NODELAY: %s", strerror(errno));
    int dropped = 0;
    mixcomm_status_t st = join(c, token, deadline, &dropped);
    if (!dropped)
      return st;
    MIXCOMM_DEBUG("bootstrap: rank %d: rank 0 closed the connection before answering the "
                  "hello; connecting again",
                  c->rank);
    snprintf(last_err, sizeof last_err,
             "rank 0 closed the connection before answering the hello (too many connections "
             "to it at once?)");
    close_fd(fd);
    c->fds[0] = -1;
    sleep_until(deadline, 20);
  }
}

/* ------------------------------------------------------------------------------------------ */
/* Public entry point                                                                         */
/* ------------------------------------------------------------------------------------------ */

mixcomm_status_t mixcomm_bootstrap_tcp_create(const mixcomm_tcp_options_t* options, int rank,
                                              int size, mixcomm_bootstrap_t** out) {
  char addr[256];
  unsigned char token[TOKEN_SIZE];
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

  mixcomm_bootstrap_t* bs = calloc(1, sizeof *bs);
  tcp_ctx_t* c = calloc(1, sizeof *c);
  int* fds = malloc((size_t)size * sizeof *fds);
  if (bs == NULL || c == NULL || fds == NULL) {
    free(bs);
    free(c);
    free(fds);
    return mixcomm__error(MIXCOMM_ERR_OUT_OF_MEMORY,
                          "mixcomm_bootstrap_tcp_create: out of host memory");
  }
  for (int r = 0; r < size; r++)
    fds[r] = -1;
  c->self = bs;
  c->rank = rank;
  c->size = size;
  c->timeout_ms = timeout_ms;
  c->fds = fds;
  c->broken = MIXCOMM_SUCCESS;
  c->lost_rank = -1;
  pthread_mutex_init(&c->lock, NULL);
  if (strchr(addr, ':') != NULL)
    snprintf(c->where, sizeof c->where, "[%s]:%d", addr, port);
  else
    snprintf(c->where, sizeof c->where, "%s:%d", addr, port);

  mixcomm_status_t st = MIXCOMM_SUCCESS;
  if (size > 1 && rank == 0) {
    int lfd = -1;
    st = root_listen(c, addr, port, &lfd);
    if (st == MIXCOMM_SUCCESS) {
      st = root_setup(c, lfd, token);
      close_fd(lfd);
    }
  } else if (size > 1) {
    st = nonroot_setup(c, addr, port, token);
  }
  if (st != MIXCOMM_SUCCESS) {
    tcp_destroy(c);
    return st;
  }
  bs->ctx = c;
  bs->allgather = tcp_allgather;
  bs->barrier = tcp_barrier;
  bs->destroy = tcp_destroy;
  bs->rank = rank;
  bs->size = size;
  *out = bs;
  MIXCOMM_INFO("bootstrap ready: rank %d of %d via %s", rank, size, size > 1 ? c->where : "-");
  return MIXCOMM_SUCCESS;
}

/* ------------------------------------------------------------------------------------------ */
/* Lost peers (see the opening comment)                                                       */
/* ------------------------------------------------------------------------------------------ */

int mixcomm__tcp_links(const mixcomm_bootstrap_t* bs, int* fds, int* ranks, int cap) {
  if (bs == NULL || bs->allgather != tcp_allgather || bs->ctx == NULL)
    return 0;
  const tcp_ctx_t* c = (const tcp_ctx_t*)bs->ctx;
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
  if (bs == NULL || bs->allgather != tcp_allgather || bs->ctx == NULL)
    return;
  tcp_ctx_t* c = (tcp_ctx_t*)bs->ctx;
  if (c->rank != 0 || rank <= 0 || rank >= c->size)
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
        send_now(c->fds[r], MIXCOMM__MSG_ERROR, MIXCOMM_ERR_PEER_LOST, (uint32_t)rank + 1,
                 c->seq, c->broken_msg);
      shutdown(c->fds[r], SHUT_WR); /* the peers see this side close: the watch's signal */
    }
  }
  pthread_mutex_unlock(&c->lock);
}

int mixcomm__tcp_lost_rank(const mixcomm_bootstrap_t* bs) {
  if (bs == NULL || bs->allgather != tcp_allgather || bs->ctx == NULL)
    return -1;
  tcp_ctx_t* c = (tcp_ctx_t*)bs->ctx;
  const int known = __atomic_load_n(&c->lost_rank, __ATOMIC_ACQUIRE);
  if (known >= 0 || c->rank == 0 || c->fds[0] < 0)
    return known;
  /* Look at rank 0's unread messages without taking them: the main thread may still read them.
   * Rank 0's side is closed (that is why the watch asks), so everything it sent is already in
   * the socket's receive queue, and the notice, if any, is the last message: messages the main
   * thread has not read yet (the result of a collective it is still finishing) come first and
   * are stepped over by their lengths. The queue is bounded by the socket's receive buffer. */
  int avail = 0;
  if (ioctl(c->fds[0], FIONREAD, &avail) != 0 || avail < HDR_SIZE)
    return __atomic_load_n(&c->lost_rank, __ATOMIC_ACQUIRE);
  unsigned char* buf = malloc((size_t)avail);
  if (buf == NULL)
    return __atomic_load_n(&c->lost_rank, __ATOMIC_ACQUIRE);
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
      note_lost(c, &h); /* b names the closed rank; the text is not needed */
      break;
    }
    if (h.len > (uint64_t)got - off - HDR_SIZE)
      break; /* a message cut short: nothing after it */
    off += HDR_SIZE + (size_t)h.len;
  }
  free(buf);
  return __atomic_load_n(&c->lost_rank, __ATOMIC_ACQUIRE);
}
