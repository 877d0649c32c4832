/* SPDX-License-Identifier: Apache-2.0
 * The TCP bootstrap's transfers (tcp_ctx.h): buffers moved on non-blocking sockets, many at
 * once, against a deadline, and the time helpers every wait of the bootstrap is bounded with.
 * Sends use MSG_NOSIGNAL: a peer that went away is an error, never a SIGPIPE. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "bootstrap/tcp_ctx.h"
#include "core/error.h"
#include "core/log.h"

#define HDR_SIZE MIXCOMM__TCP_HDR_SIZE

int mixcomm__tcp_grace_ms(int timeout_ms) {
  int g = timeout_ms / 2;
  if (g < 500)
    g = 500;
  if (g > 5000)
    g = 5000;
  return g;
}

void mixcomm__tcp_sleep_until(long long deadline, int ms) {
  long long until = mixcomm__monotonic_ms() + ms;
  if (until > deadline)
    until = deadline;
  for (;;) {
    int left = mixcomm__ms_left(until);
    if (left <= 0)
      return;
    if (poll(NULL, 0, left) < 0 && errno != EINTR)
      return;
  }
}

void mixcomm__tcp_format_ranks(char* buf, size_t size, const int* ranks, int n) {
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

void mixcomm__tcp_nodelay(int fd) {
  int one = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
    MIXCOMM_DEBUG("bootstrap: TCP_NODELAY: %s", strerror(errno));
}

void mixcomm__tcp_xfer_init(mixcomm__tcp_xfer_t* x, int fd, int peer, int is_send, void* b0,
                            size_t l0, void* b1, size_t l1) {
  x->fd = fd;
  x->peer = peer;
  x->is_send = is_send;
  x->base[0] = b0;
  x->len[0] = l0;
  x->base[1] = b1;
  x->len[1] = l1;
  x->off = 0;
}

int mixcomm__tcp_xfer_step(mixcomm__tcp_xfer_t* x) {
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

mixcomm_status_t mixcomm__tcp_xfer_fail(const mixcomm__tcp_xfer_t* x, int r, const char* what) {
  if (r == -1) {
    mixcomm__tcp_closed_peer = x->peer;
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

mixcomm_status_t mixcomm__tcp_xfer_run(mixcomm__tcp_xfer_t* x, int n, long long deadline,
                                       int timeout_ms, const char* what) {
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
    int r = mixcomm__tcp_xfer_step(&x[i]);
    if (r < 0) {
      st = mixcomm__tcp_xfer_fail(&x[i], r, what);
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
    int left = mixcomm__ms_left(deadline);
    if (left <= 0) {
      char names[256];
      int nsend = 0;
      for (int k = 0; k < active; k++) {
        nsend += x[idx[k]].is_send;
        idx[k] = x[idx[k]].peer; /* reuse idx for the names */
      }
      mixcomm__tcp_format_ranks(names, sizeof names, idx, active);
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
        int r = mixcomm__tcp_xfer_step(&x[idx[k]]);
        if (r < 0) {
          st = mixcomm__tcp_xfer_fail(&x[idx[k]], r, what);
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

mixcomm_status_t mixcomm__tcp_send_msg(int fd, int peer, const void* hdr, const void* body,
                                       size_t body_len, long long deadline, int timeout_ms,
                                       const char* what) {
  mixcomm__tcp_xfer_t x;
  mixcomm__tcp_xfer_init(&x, fd, peer, 1, (void*)hdr, HDR_SIZE, (void*)body, body_len);
  return mixcomm__tcp_xfer_run(&x, 1, deadline, timeout_ms, what);
}

void mixcomm__tcp_send_now(int fd, uint32_t type, mixcomm_status_t st, uint32_t b, uint64_t seq,
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

mixcomm_status_t mixcomm__tcp_recv_text(int fd, int peer, uint64_t len, char* text, size_t cap,
                                        long long deadline, int timeout_ms, const char* what) {
  if (len >= cap)
    return mixcomm__error(MIXCOMM_ERR_BOOTSTRAP,
                          "%s: rank %d sent a %llu-byte message, more than the protocol allows; "
                          "is it a mixcomm process of the same version?",
                          what, peer, (unsigned long long)len);
  mixcomm__tcp_xfer_t x;
  mixcomm__tcp_xfer_init(&x, fd, peer, 0, text, (size_t)len, NULL, 0);
  MIXCOMM_CHECK(mixcomm__tcp_xfer_run(&x, 1, deadline, timeout_ms, what));
  mixcomm__tcp_text_from_wire(text, (size_t)len);
  return MIXCOMM_SUCCESS;
}
