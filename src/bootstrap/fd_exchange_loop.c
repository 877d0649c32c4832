/* SPDX-License-Identifier: Apache-2.0
 * Step 3 of the fd exchange (fd_exchange.c): one poll() loop per rank, everything non-blocking
 * so that no order of events can deadlock. It connects to every other local rank and sends its
 * hello with the descriptor attached, and meanwhile accepts the others' connections, checks
 * each peer's credentials and hello (fd_exchange_msg.c) and files its descriptor under the
 * sender's local rank. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include "bootstrap/fd_exchange_ctx.h"
#include "core/error.h"
#include "core/log.h"

#define HELLO_SIZE MIXCOMM__FDX_HELLO_SIZE

typedef struct {
  int fd;     /* accepted connection */
  int rfd;    /* descriptor received on it, -1 until then */
  size_t got; /* header bytes received */
  unsigned char hdr[HELLO_SIZE];
  struct ucred cred;
} inconn_t;

typedef struct {
  int fd;     /* connection to the peer, -1 when not connected */
  size_t off; /* header bytes sent; the fd goes with the first */
  int done;
  char last_err[128];
} outconn_t;

static void describe_peer(const mixcomm__fdx_t* x, int lr, char* out, size_t cap) {
  snprintf(out, cap, "local rank %d (world rank %d)", lr, x->first + lr);
}

/* A complete header arrived on c: check it and take the fd. */
static mixcomm_status_t take_fd(mixcomm__fdx_t* x, inconn_t* c) {
  const mixcomm__fdx_node_t node = mixcomm__fdx_node_of(x);
  int lr = -1;
  MIXCOMM_CHECK(
      mixcomm__fdx_check_hello(&node, c->hdr, (int)c->cred.pid, c->rfd, x->peer_fds, &lr));
  x->peer_fds[lr] = c->rfd;
  c->rfd = -1;
  MIXCOMM_DEBUG("fd exchange (local rank %d): got the fd of local rank %d", x->local_rank, lr);
  return MIXCOMM_SUCCESS;
}

/* Read what is available on c. Returns 1 when its header is complete, 0 to wait, or -1 with
 * *st set. */
static int read_conn(mixcomm__fdx_t* x, inconn_t* c, mixcomm_status_t* st) {
  char me[64];
  describe_peer(x, x->local_rank, me, sizeof me);
  return mixcomm__fdx_recv_hello(c->fd, c->hdr, &c->got, &c->rfd, me, (int)c->cred.pid, st);
}

/* Send our header and fd to local rank j as far as possible without blocking. */
static mixcomm_status_t push(mixcomm__fdx_t* x, outconn_t* o, int j, int my_fd, int* retry) {
  if (o->fd < 0) {
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (mixcomm__fdx_socket_path(x->dir, j, sa.sun_path, sizeof sa.sun_path) != 0)
      return mixcomm__error(MIXCOMM_ERR_INTERNAL, "fd exchange: socket path too long");
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
      return mixcomm__sys_error("fd exchange: socket(AF_UNIX)");
    if (connect(fd, (struct sockaddr*)&sa, sizeof sa) != 0) {
      int e = errno;
      mixcomm__close_fd(fd, "fd exchange");
      if (e == EAGAIN || e == ECONNREFUSED || e == ENOENT || e == EINTR || e == EINPROGRESS) {
        snprintf(o->last_err, sizeof o->last_err, "connect %s: %s", sa.sun_path, strerror(e));
        *retry = 1;
        return MIXCOMM_SUCCESS;
      }
      errno = e;
      char what[256];
      snprintf(what, sizeof what, "fd exchange (local rank %d): connect to %s", x->local_rank,
               sa.sun_path);
      return mixcomm__sys_error(what);
    }
    o->fd = fd;
    o->off = 0;
  }
  unsigned char hdr[HELLO_SIZE];
  mixcomm__fdx_encode_hello(hdr, x->local_rank, x->bs->rank, (int)getpid());
  while (o->off < HELLO_SIZE) {
    /* The descriptor goes with the first bytes. */
    ssize_t r = mixcomm__fdx_send_with_fds(o->fd, hdr + o->off, HELLO_SIZE - o->off, my_fd,
                                           o->off == 0 ? 1 : 0, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return MIXCOMM_SUCCESS; /* poll for POLLOUT */
    if (r < 0 && (errno == EPIPE || errno == ECONNRESET || errno == ECONNREFUSED)) {
      /* The peer went away mid-way: start over (and time out if it stays away). */
      snprintf(o->last_err, sizeof o->last_err, "send to local rank %d: %s", j, strerror(errno));
      mixcomm__close_fd(o->fd, "fd exchange");
      o->fd = -1;
      o->off = 0;
      *retry = 1;
      return MIXCOMM_SUCCESS;
    }
    if (r < 0) {
      char what[128];
      snprintf(what, sizeof what, "fd exchange (local rank %d): sendmsg to local rank %d",
               x->local_rank, j);
      return mixcomm__sys_error(what);
    }
    o->off += (size_t)r;
  }
  /* The descriptor in flight stays valid until the peer takes it. */
  mixcomm__close_fd(o->fd, "fd exchange");
  o->fd = -1;
  o->done = 1;
  return MIXCOMM_SUCCESS;
}

static void format_peers(const mixcomm__fdx_t* x, const int* lrs, int n, char* out, size_t cap) {
  size_t used = 0;
  out[0] = '\0';
  for (int i = 0; i < n && used < cap; i++) {
    const char* sep = i == 0 ? "" : (i == n - 1 ? " and " : ", ");
    int w = snprintf(out + used, cap - used, "%slocal rank %d (world rank %d)", sep, lrs[i],
                     x->first + lrs[i]);
    if (w < 0)
      return;
    used += (size_t)w;
  }
}

/* Step 3. */
mixcomm_status_t mixcomm__fdx_exchange(mixcomm__fdx_t* x, int my_fd) {
  const int n = x->local_size, me = x->local_rank;
  const long long deadline = mixcomm__monotonic_ms() + x->timeout_ms;
  const int in_cap = 2 * n + 8;
  mixcomm_status_t st = MIXCOMM_SUCCESS;
  int nin = 0, received = 0;
  outconn_t* out = calloc((size_t)n, sizeof *out);
  inconn_t* in = calloc((size_t)in_cap, sizeof *in);
  struct pollfd* pf = calloc((size_t)(1 + in_cap + n), sizeof *pf);
  int* list = calloc((size_t)n, sizeof *list);
  if (out == NULL || in == NULL || pf == NULL || list == NULL) {
    st = mixcomm__error(MIXCOMM_ERR_OUT_OF_MEMORY, "fd exchange: out of host memory");
    goto done;
  }
  for (int j = 0; j < n; j++) {
    out[j].fd = -1;
    out[j].done = j == me;
    snprintf(out[j].last_err, sizeof out[j].last_err, "not tried");
  }
  for (;;) {
    int retry = 0, sent = 0;
    /* Sends. */
    for (int j = 0; j < n; j++) {
      if (!out[j].done)
        MIXCOMM_CHECK_GOTO(push(x, &out[j], j, my_fd, &retry), st, done);
      sent += out[j].done;
    }
    /* Accepts. */
    for (;;) {
      int fd = mixcomm__accept_nonblock(x->listen_fd, NULL, NULL);
      if (fd < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
          break;
        st = mixcomm__sys_error("fd exchange: accept");
        goto done;
      }
      struct ucred cred;
      socklen_t cl = sizeof cred;
      if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) != 0) {
        st = mixcomm__sys_error("fd exchange: getsockopt(SO_PEERCRED)");
        mixcomm__close_fd(fd, "fd exchange");
        goto done;
      }
      if (cred.uid != getuid()) {
        st = mixcomm__error(MIXCOMM_ERR_BOOTSTRAP,
                            "fd exchange (local rank %d, world rank %d): a process of uid %u "
                            "(pid %d) connected to %s; expected one of this node's local ranks "
                            "running as uid %u",
                            me, x->bs->rank, (unsigned)cred.uid, (int)cred.pid, x->path,
                            (unsigned)getuid());
        mixcomm__close_fd(fd, "fd exchange");
        goto done;
      }
      if (nin == in_cap) {
        st = mixcomm__error(MIXCOMM_ERR_BOOTSTRAP,
                            "fd exchange (local rank %d, world rank %d): more than %d "
                            "connections to %s; only %d local peers were expected",
                            me, x->bs->rank, in_cap, x->path, n - 1);
        mixcomm__close_fd(fd, "fd exchange");
        goto done;
      }
      in[nin].fd = fd;
      in[nin].rfd = -1;
      in[nin].got = 0;
      in[nin].cred = cred;
      nin++;
    }
    /* Reads. */
    for (int i = 0; i < nin; i++) {
      if (in[i].fd < 0)
        continue;
      int r = read_conn(x, &in[i], &st);
      if (r < 0)
        goto done;
      if (r == 1) {
        MIXCOMM_CHECK_GOTO(take_fd(x, &in[i]), st, done);
        mixcomm__close_fd(in[i].fd, "fd exchange");
        in[i].fd = -1;
        received++;
      }
    }
    if (sent == n && received == n - 1)
      break;
    /* Wait. */
    int wait = mixcomm__ms_left(deadline);
    if (wait <= 0) {
      char who[512], whom[512];
      int nmiss = 0, nout = 0;
      const char* last = "";
      for (int j = 0; j < n; j++)
        if (j != me && x->peer_fds[j] < 0)
          list[nmiss++] = j;
      format_peers(x, list, nmiss, who, sizeof who);
      for (int j = 0; j < n; j++)
        if (!out[j].done) {
          list[nout++] = j;
          last = out[j].last_err;
        }
      format_peers(x, list, nout, whom, sizeof whom);
      if (nmiss > 0 && nout > 0)
        st = mixcomm__error(MIXCOMM_ERR_TIMEOUT,
                            "fd exchange (local rank %d, world rank %d): %s never connected "
                            "within %d ms, and this rank could not reach %s (%s); it may have "
                            "died or not called the exchange",
                            me, x->bs->rank, who, x->timeout_ms, whom, last);
      else if (nmiss > 0)
        st = mixcomm__error(MIXCOMM_ERR_TIMEOUT,
                            "fd exchange (local rank %d, world rank %d): %s never connected "
                            "within %d ms; it may have died or not called the exchange",
                            me, x->bs->rank, who, x->timeout_ms);
      else
        st = mixcomm__error(MIXCOMM_ERR_TIMEOUT,
                            "fd exchange (local rank %d, world rank %d): could not reach %s "
                            "within %d ms (%s); it may have died",
                            me, x->bs->rank, whom, x->timeout_ms, last);
      goto done;
    }
    int np = 0;
    pf[np].fd = x->listen_fd;
    pf[np].events = POLLIN;
    pf[np++].revents = 0;
    for (int i = 0; i < nin; i++)
      if (in[i].fd >= 0) {
        pf[np].fd = in[i].fd;
        pf[np].events = POLLIN;
        pf[np++].revents = 0;
      }
    for (int j = 0; j < n; j++)
      if (!out[j].done && out[j].fd >= 0) {
        pf[np].fd = out[j].fd;
        pf[np].events = POLLOUT;
        pf[np++].revents = 0;
      }
    if (retry && wait > 10)
      wait = 10;
    if (poll(pf, (nfds_t)np, wait) < 0 && errno != EINTR) {
      st = mixcomm__sys_error("fd exchange: poll");
      goto done;
    }
  }
done:
  if (out != NULL)
    for (int j = 0; j < n; j++)
      mixcomm__close_fd(out[j].fd, "fd exchange");
  if (in != NULL)
    for (int i = 0; i < nin; i++) {
      mixcomm__close_fd(in[i].fd, "fd exchange");
      mixcomm__close_fd(in[i].rfd, "fd exchange");
    }
  free(out);
  free(in);
  free(pf);
  free(list);
  return st;
}
