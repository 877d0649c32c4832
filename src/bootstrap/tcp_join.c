/* SPDX-License-Identifier: Apache-2.0
 * A non-root rank's side of the TCP bootstrap's setup (tcp.c, "Setup"): connect to rank 0,
 * retrying until the deadline (rank 0 may start later), send the hello and wait for rank 0's
 * verdict on rank 0's clock; connect again when rank 0 closed the connection unanswered (it
 * drops the oldest silent connection when flooded). */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "bootstrap/tcp_ctx.h"
#include "core/error.h"
#include "core/log.h"

#define HDR_SIZE MIXCOMM__TCP_HDR_SIZE
#define TOKEN_SIZE MIXCOMM__TCP_TOKEN_SIZE
#define MAX_TEXT MIXCOMM__TCP_MAX_TEXT

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
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      snprintf(last_err, cap, "socket: %s", strerror(errno));
      continue;
    }
    int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (rc != 0 && (errno == EINPROGRESS || errno == EINTR)) {
      long long until = mixcomm__monotonic_ms() + 2000;
      if (until > deadline)
        until = deadline;
      struct pollfd pf = {fd, POLLOUT, 0};
      int pr;
      for (;;) {
        pr = poll(&pf, 1, mixcomm__ms_left(until));
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
      mixcomm__close_fd(fd, "bootstrap");
  }
  freeaddrinfo(res);
  return out;
}

/* Hello on the connected c->fds[0], then rank 0's answers until OK. *dropped = 1 when rank 0
 * closed the connection before answering the hello (it drops the oldest silent connection
 * when flooded): the caller then connects again. */
static mixcomm_status_t join(mixcomm__tcp_ctx_t* c, const unsigned char* token, long long deadline,
                             int* dropped) {
  const int fd = c->fds[0];
  *dropped = 0;
  unsigned char hello[HDR_SIZE];
  mixcomm__tcp_encode_hdr(hello, MIXCOMM__MSG_HELLO, (uint32_t)c->rank, (uint32_t)c->size, 0,
                          TOKEN_SIZE);
  mixcomm_status_t st = mixcomm__tcp_send_msg(fd, 0, hello, token, TOKEN_SIZE, deadline,
                                              c->timeout_ms, "bootstrap setup: sending hello");
  if (st != MIXCOMM_SUCCESS) {
    *dropped = st == MIXCOMM_ERR_BOOTSTRAP;
    return st;
  }
  long long wait_until = deadline;
  int accepted = 0;
  for (;;) {
    unsigned char buf[HDR_SIZE];
    mixcomm__tcp_xfer_t x;
    mixcomm__tcp_xfer_init(&x, fd, 0, 0, buf, HDR_SIZE, NULL, 0);
    st = mixcomm__tcp_xfer_run(&x, 1, wait_until, c->timeout_ms, "bootstrap setup");
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
        wait_until = mixcomm__monotonic_ms() + wait_ms + mixcomm__tcp_grace_ms(c->timeout_ms);
        continue;
      case MIXCOMM__SETUP_OK:
        return MIXCOMM_SUCCESS;
      case MIXCOMM__SETUP_TEXT: {
        char text[MAX_TEXT];
        MIXCOMM_CHECK(mixcomm__tcp_recv_text(fd, 0, h.len, text, sizeof text, wait_until,
                                             c->timeout_ms, "bootstrap setup"));
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

mixcomm_status_t mixcomm__tcp_nonroot_setup(mixcomm__tcp_ctx_t* c, const char* addr, int port,
                                            const unsigned char* token) {
  const long long deadline = mixcomm__monotonic_ms() + c->timeout_ms;
  char ps[16], last_err[256] = "no attempt";
  snprintf(ps, sizeof ps, "%d", port);
  for (;;) {
    int fd = -1;
    for (;;) {
      fd = try_connect(addr, ps, deadline, last_err, sizeof last_err);
      if (fd >= 0 || mixcomm__monotonic_ms() >= deadline)
        break;
      mixcomm__tcp_sleep_until(deadline, 50);
    }
    if (fd < 0)
      return mixcomm__error(MIXCOMM_ERR_TIMEOUT,
                            "bootstrap: rank %d of %d could not reach rank 0 at %s within %d ms "
                            "(last error: %s); check that rank 0 is running and that "
                            "MIXCOMM_ADDR / MASTER_ADDR and MIXCOMM_PORT / MASTER_PORT name it",
                            c->rank, c->size, c->where, c->timeout_ms, last_err);
    c->fds[0] = fd;
    mixcomm__tcp_nodelay(fd);
    int dropped = 0;
    mixcomm_status_t st = join(c, token, deadline, &dropped);
    if (!dropped)
      return st;
    MIXCOMM_DEBUG(
        "bootstrap: rank %d: rank 0 closed the connection before answering the "
        "hello; connecting again",
        c->rank);
    snprintf(last_err, sizeof last_err,
             "rank 0 closed the connection before answering the hello (too many connections "
             "to it at once?)");
    mixcomm__close_fd(fd, "bootstrap");
    c->fds[0] = -1;
    mixcomm__tcp_sleep_until(deadline, 20);
  }
}
