/* SPDX-License-Identifier: Apache-2.0
 * Rank 0's side of the TCP bootstrap's setup (tcp.c, "Setup"): listen on addr:port, then poll
 * the listening socket and every connection at once, so that a slow or silent connection never
 * blocks the others, judge each hello (tcp_wire.c) and admit the ranks; OK to all once every
 * rank joined, or ABORT naming the missing ranks at the deadline. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "bootstrap/tcp_ctx.h"
#include "core/error.h"
#include "core/log.h"

#define HDR_SIZE MIXCOMM__TCP_HDR_SIZE
#define TOKEN_SIZE MIXCOMM__TCP_TOKEN_SIZE

mixcomm_status_t mixcomm__tcp_root_listen(mixcomm__tcp_ctx_t* c, const char* addr, int port,
                                          int* out_fd) {
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
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
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
    mixcomm__close_fd(fd, "bootstrap");
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
  mixcomm__tcp_send_now(p->fd, MIXCOMM__MSG_REJECT, st, 0, 0, reason);
  mixcomm__close_fd(p->fd, "bootstrap");
  p->fd = -1;
}

/* Rank r's hello was accepted (mixcomm__tcp_judge_hello): tell it how long rank 0 will wait. */
static void admit(mixcomm__tcp_ctx_t* c, pending_t* p, int r, long long deadline, int* joined) {
  unsigned char msg[HDR_SIZE];
  long long left = deadline - mixcomm__monotonic_ms();
  mixcomm__tcp_encode_hdr(msg, MIXCOMM__MSG_ACCEPTED, (uint32_t)(left > 0 ? left : 0), 0, 0, 0);
  /* A fresh socket takes 40 bytes at once; bound it anyway. */
  long long until = mixcomm__monotonic_ms() + 1000;
  mixcomm_status_t st = mixcomm__tcp_send_msg(
      p->fd, r, msg, NULL, 0, until < deadline ? until : deadline, 1000, "bootstrap setup");
  if (st != MIXCOMM_SUCCESS) {
    MIXCOMM_INFO("bootstrap: rank %d vanished while joining: %s", r, mixcomm_last_error());
    mixcomm__close_fd(p->fd, "bootstrap");
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

/* Rank 0's deadline passed before every rank joined: name the missing ranks (and why, where
 * known), tell the joined ones (ABORT) and return MIXCOMM_ERR_TIMEOUT with the same text. */
static mixcomm_status_t give_up(mixcomm__tcp_ctx_t* c, const int* left_early, int refused,
                                const char* last_refusal) {
  int* missing = calloc((size_t)c->size, sizeof *missing);
  int nmiss = 0;
  char names[256], text[2048], extra[700] = "";
  if (missing == NULL)
    return mixcomm__error(MIXCOMM_ERR_OUT_OF_MEMORY, "bootstrap: out of host memory");
  for (int r = 1; r < c->size; r++)
    if (c->fds[r] < 0)
      missing[nmiss++] = r;
  mixcomm__tcp_format_ranks(names, sizeof names, missing, nmiss);
  size_t used = 0;
  for (int i = 0; i < nmiss && used < sizeof extra; i++)
    if (left_early[missing[i]]) {
      int wr = snprintf(extra + used, sizeof extra - used,
                        "; rank %d connected but closed its connection", missing[i]);
      used += wr > 0 ? (size_t)wr : 0;
    }
  if (refused > 0 && used < sizeof extra)
    snprintf(extra + used, sizeof extra - used, "; %d connection(s) refused, last: %s", refused,
             last_refusal);
  snprintf(text, sizeof text,
           "%s of %d never connected to %s within %d ms%s; start every rank with the same "
           "address, port and job token, or raise MIXCOMM_BOOTSTRAP_TIMEOUT_MS",
           names, c->size, c->where, c->timeout_ms, extra);
  free(missing);
  for (int r = 1; r < c->size; r++)
    if (c->fds[r] >= 0)
      mixcomm__tcp_send_now(c->fds[r], MIXCOMM__MSG_ABORT, MIXCOMM_ERR_TIMEOUT, 0, 0, text);
  return mixcomm__error(MIXCOMM_ERR_TIMEOUT, "bootstrap: %s", text);
}

/* One more descriptor for root_setup's poll(): who[] says whose it is (>= 0: a rank; < 0:
 * ~index of a pending connection). */
static void poll_on(struct pollfd* pf, int* who, int* n, int fd, int whose) {
  pf[*n].fd = fd;
  pf[*n].events = POLLIN;
  pf[*n].revents = 0;
  who[(*n)++] = whose;
}

mixcomm_status_t mixcomm__tcp_root_setup(mixcomm__tcp_ctx_t* c, int lfd,
                                         const unsigned char* token) {
  const long long deadline = mixcomm__monotonic_ms() + c->timeout_ms;
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
    int left = mixcomm__ms_left(deadline);
    if (left <= 0)
      break;
    int n = 0;
    poll_on(pf, who, &n, lfd, 0);
    for (int i = 0; i < npend; i++)
      poll_on(pf, who, &n, pend[i].fd, ~i);
    for (int r = 1; r < c->size; r++)
      if (c->fds[r] >= 0)
        poll_on(pf, who, &n, c->fds[r], r);
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
        mixcomm__close_fd(c->fds[r], "bootstrap");
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
          mixcomm__close_fd(p->fd, "bootstrap");
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
          mixcomm__close_fd(p->fd, "bootstrap");
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
        int fd = mixcomm__accept_nonblock(lfd, &sa, &sl);
        if (fd < 0) {
          if (errno == EAGAIN || errno == EWOULDBLOCK)
            break;
          st = mixcomm__sys_error("bootstrap: rank 0: accept");
          goto out;
        }
        if (npend == cap) {
          /* Full of connections without a complete hello (a flood, or a scan of the port): the
           * oldest goes, not the newcomer, so that silent connections cannot keep the ranks out
           * (a rank sends its hello at once, and reconnects if it was dropped unanswered). */
          MIXCOMM_INFO(
              "bootstrap: rank 0 has %d connections that sent no hello; dropping the "
              "oldest, from %s",
              cap, pend[0].from);
          mixcomm__close_fd(pend[0].fd, "bootstrap");
          memmove(pend, pend + 1, (size_t)(npend - 1) * sizeof *pend);
          npend--;
        }
        mixcomm__tcp_nodelay(fd);
        memset(&pend[npend], 0, sizeof pend[npend]);
        pend[npend].fd = fd;
        peer_name(&sa, sl, pend[npend].from, sizeof pend[npend].from);
        npend++;
      }
    }
  }

  if (joined < need) {
    st = give_up(c, left_early, refused, last_refusal);
    goto out;
  }

  /* Everyone is here: OK to all. */
  {
    unsigned char ok[HDR_SIZE];
    mixcomm__tcp_xfer_t* x = calloc((size_t)need, sizeof *x);
    if (x == NULL) {
      st = mixcomm__error(MIXCOMM_ERR_OUT_OF_MEMORY, "bootstrap: out of host memory");
      goto out;
    }
    mixcomm__tcp_encode_hdr(ok, MIXCOMM__MSG_OK, 0, 0, 0, 0);
    for (int r = 1; r < c->size; r++)
      mixcomm__tcp_xfer_init(&x[r - 1], c->fds[r], r, 1, ok, HDR_SIZE, NULL, 0);
    st = mixcomm__tcp_xfer_run(x, need, deadline + mixcomm__tcp_grace_ms(c->timeout_ms),
                               c->timeout_ms, "bootstrap setup: telling every rank to go");
    free(x);
  }

out:
  for (int i = 0; i < npend; i++)
    mixcomm__close_fd(pend[i].fd, "bootstrap");
  free(left_early);
  free(pend);
  free(pf);
  free(who);
  return st;
}
