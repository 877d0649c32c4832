/* SPDX-License-Identifier: Apache-2.0
 * Exchange of one file descriptor between the processes of a node (mixcomm__fd_exchange), over
 * Unix sockets with SCM_RIGHTS. Used to share the VMM workspace handles of a node.
 *
 * Protocol. The node leader is world rank (rank - local_rank). Every step that involves the
 * bootstrap is made by every rank of the world, in the same order, so that a failure on one
 * node never leaves the other nodes waiting:
 *   1. The leader makes a directory with mkdtemp ("mixcomm-XXXXXX" under $MIXCOMM_SOCKET_DIR,
 *      else $XDG_RUNTIME_DIR, else /tmp) and checks it is a directory of this user with mode
 *      0700. Allgather of a fixed-size record from every rank:
 *        {magic, pid, uid, local_rank, local_size, status, dir[100]}
 *      (status: the leader's failure to make the directory, dir: the leader's directory, ""
 *      on the others). Each rank takes its own leader's directory and its local peers' pids;
 *      a failed leader anywhere makes every rank fail (naming it).
 *   2. Each rank checks its node's records (same uid, consistent local ranks), checks the
 *      directory and listens on <dir>/r<local_rank> (AF_UNIX, SOCK_STREAM, backlog >=
 *      local_size). Allgather of every rank's status (this is the barrier: after it every
 *      socket of the node exists); any failure makes every rank fail, naming the first one.
 *   3. Node-local exchange, one poll() loop per rank, everything non-blocking so that no order
 *      of events can deadlock: connect to every other local rank and send it a 16-byte header
 *      {magic "MXFD", local_rank, world_rank, pid} with our fd attached (SCM_RIGHTS), then
 *      close; meanwhile accept connections, check the peer's credentials (SO_PEERCRED: uid
 *      must be ours; pid must be the one announced for the local rank the header claims, when
 *      both are non-zero - containers may hide pids), and file each fd under the sender's local
 *      rank. A wrong peer is MIXCOMM_ERR_BOOTSTRAP naming what was expected. Each rank then
 *      closes and unlinks its socket.
 *   4. Allgather of every rank's status; any failure makes every rank fail. The leader removes
 *      the directory (and any socket a dead rank left behind).
 * Timeouts. Step 3 ends after timeout_ms with MIXCOMM_ERR_TIMEOUT naming the local (and world)
 * ranks that never connected or could not be reached; the bootstrap bounds steps 1, 2 and 4.
 * On any error every received fd is closed, peer_fds is all -1, and what this rank created
 * (socket, directory on the leader) is removed.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "bootstrap/bootstrap.h"
#include "bootstrap/fd_exchange_msg.h"
#include "core/error.h"
#include "core/log.h"

#define DIR_CAP MIXCOMM__FDX_DIR_CAP
#define MAX_LOCAL 1024
#define HELLO_SIZE MIXCOMM__FDX_HELLO_SIZE

typedef mixcomm__fdx_record_t fdx_record_t;

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

typedef struct {
  mixcomm_bootstrap_t* bs;
  int local_rank, local_size, first, timeout_ms;
  int is_leader;
  char dir[DIR_CAP]; /* this node's socket directory ("" until known) */
  int made_dir;      /* the leader created dir and must remove it */
  int listen_fd;
  char path[sizeof(((struct sockaddr_un*)0)->sun_path)]; /* our socket, "" when not bound */
  fdx_record_t* recs;
  int* peer_fds;
} fdx_t;

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void close_fd(int fd) {
  if (fd >= 0 && close(fd) != 0 && errno != EINTR)
    MIXCOMM_DEBUG("fd exchange: close(%d) failed: %s", fd, strerror(errno));
}

static int socket_path(const char* dir, int local_rank, char* out, size_t cap) {
  int w = snprintf(out, cap, "%s/r%d", dir, local_rank);
  return w > 0 && (size_t)w < cap ? 0 : -1;
}

/* ------------------------------------------------------------------------------------------ */
/* Directory                                                                                  */
/* ------------------------------------------------------------------------------------------ */

static mixcomm_status_t check_dir(const fdx_t* x, const char* dir) {
  struct stat sb;
  if (lstat(dir, &sb) != 0) {
    int e = errno;
    return mixcomm__error(MIXCOMM_ERR_BOOTSTRAP,
                          "fd exchange (local rank %d, world rank %d): cannot stat the node's "
                          "socket directory %s: %s; do all local ranks see the same file system "
                          "(same MIXCOMM_SOCKET_DIR / XDG_RUNTIME_DIR)?",
                          x->local_rank, x->bs->rank, dir, strerror(e));
  }
  if (!S_ISDIR(sb.st_mode) || sb.st_uid != getuid() || (sb.st_mode & 0777) != 0700)
    return mixcomm__error(MIXCOMM_ERR_BOOTSTRAP,
                          "fd exchange (local rank %d, world rank %d): %s must be a directory "
                          "of uid %u with mode 0700, but it is %s of uid %u with mode %04o; "
                          "someone else may be interfering",
                          x->local_rank, x->bs->rank, dir, (unsigned)getuid(),
                          S_ISDIR(sb.st_mode) ? "a directory" : "not a directory",
                          (unsigned)sb.st_uid, (unsigned)(sb.st_mode & 07777));
  return MIXCOMM_SUCCESS;
}

static mixcomm_status_t make_dir(fdx_t* x) {
  const char* name = "MIXCOMM_SOCKET_DIR";
  const char* base = getenv(name);
  int explicit_base = 1;
  if (base == NULL || base[0] == '\0') {
    explicit_base = 0;
    name = "XDG_RUNTIME_DIR";
    base = getenv(name);
    if (base == NULL || base[0] == '\0') {
      name = "the default";
      base = "/tmp";
    }
  }
  for (int attempt = 0; attempt < 2; attempt++) {
    char tmpl[DIR_CAP];
    if (mixcomm__fdx_dir_template(base, x->local_size, tmpl, sizeof tmpl) != 0)
      return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                            "fd exchange: the socket directory base '%.200s' (from %s) is too "
                            "long for a Unix socket path (at most %d bytes in all); set "
                            "MIXCOMM_SOCKET_DIR to a short directory such as /tmp",
                            base, name, DIR_CAP - 16);
    if (mkdtemp(tmpl) != NULL) {
      snprintf(x->dir, sizeof x->dir, "%s", tmpl);
      x->made_dir = 1;
      MIXCOMM_DEBUG("fd exchange: node leader (world rank %d) made %s", x->bs->rank, x->dir);
      return check_dir(x, x->dir);
    }
    int e = errno;
    if (explicit_base || strcmp(base, "/tmp") == 0) {
      errno = e;
      char what[600];
      snprintf(what, sizeof what,
               "fd exchange: the node leader (world rank %d) cannot create a socket directory "
               "under %s (from %s; set MIXCOMM_SOCKET_DIR to a writable local directory)",
               x->bs->rank, base, name);
      return mixcomm__sys_error(what);
    }
    MIXCOMM_DEBUG("fd exchange: cannot create a directory under %s (%s): %s; trying /tmp", base,
                  name, strerror(e));
    base = "/tmp";
    name = "the fallback";
  }
  return mixcomm__error(MIXCOMM_ERR_INTERNAL, "fd exchange: make_dir fell through");
}

/* Leader: remove the directory and whatever a dead rank left in it. */
static void remove_dir(fdx_t* x) {
  if (!x->made_dir)
    return;
  for (int i = 0; i < x->local_size; i++) {
    char p[sizeof x->path];
    if (socket_path(x->dir, i, p, sizeof p) == 0 && unlink(p) != 0 && errno != ENOENT)
      MIXCOMM_INFO("fd exchange: cannot remove %s: %s", p, strerror(errno));
  }
  if (rmdir(x->dir) != 0)
    MIXCOMM_INFO("fd exchange: cannot remove the socket directory %s: %s", x->dir,
                 strerror(errno));
  x->made_dir = 0;
}

static void close_listener(fdx_t* x) {
  close_fd(x->listen_fd);
  x->listen_fd = -1;
  if (x->path[0] != '\0' && unlink(x->path) != 0 && errno != ENOENT)
    MIXCOMM_INFO("fd exchange: cannot remove %s: %s", x->path, strerror(errno));
  x->path[0] = '\0';
}

/* ------------------------------------------------------------------------------------------ */
/* Steps                                                                                      */
/* ------------------------------------------------------------------------------------------ */

/* Step 2: this node's records must agree; then listen. */
static mixcomm__fdx_node_t node_of(const fdx_t* x) {
  mixcomm__fdx_node_t n = {x->local_rank, x->local_size, x->first, x->bs->rank, x->recs};
  return n;
}

static mixcomm_status_t check_node_and_listen(fdx_t* x) {
  const mixcomm__fdx_node_t node = node_of(x);
  MIXCOMM_CHECK(mixcomm__fdx_check_node(&node, (uint32_t)getuid(), x->dir, sizeof x->dir));
  MIXCOMM_CHECK(check_dir(x, x->dir));

  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  if (socket_path(x->dir, x->local_rank, sa.sun_path, sizeof sa.sun_path) != 0)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "fd exchange: the socket path under %s is too long; set "
                          "MIXCOMM_SOCKET_DIR to a short directory",
                          x->dir);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return mixcomm__sys_error("fd exchange: socket(AF_UNIX)");
  if (bind(fd, (struct sockaddr*)&sa, sizeof sa) != 0) {
    char what[256];
    snprintf(what, sizeof what, "fd exchange (local rank %d): bind %s", x->local_rank,
             sa.sun_path);
    mixcomm_status_t st = mixcomm__sys_error(what);
    close_fd(fd);
    return st;
  }
  x->listen_fd = fd;
  snprintf(x->path, sizeof x->path, "%s", sa.sun_path);
  int backlog = x->local_size + 16;
  if (backlog < SOMAXCONN)
    backlog = SOMAXCONN;
  if (listen(fd, backlog) != 0)
    return mixcomm__sys_error("fd exchange: listen");
  return MIXCOMM_SUCCESS;
}

static void describe_peer(const fdx_t* x, int lr, char* out, size_t cap) {
  snprintf(out, cap, "local rank %d (world rank %d)", lr, x->first + lr);
}

/* A complete header arrived on c: check it and take the fd. */
static mixcomm_status_t take_fd(fdx_t* x, inconn_t* c) {
  const mixcomm__fdx_node_t node = node_of(x);
  int lr = -1;
  MIXCOMM_CHECK(mixcomm__fdx_check_hello(&node, c->hdr, (int)c->cred.pid, c->rfd, x->peer_fds,
                                         &lr));
  x->peer_fds[lr] = c->rfd;
  c->rfd = -1;
  MIXCOMM_DEBUG("fd exchange (local rank %d): got the fd of local rank %d", x->local_rank, lr);
  return MIXCOMM_SUCCESS;
}

/* Read what is available on c. Returns 1 when its header is complete, 0 to wait, or -1 with
 * *st set. */
static int read_conn(fdx_t* x, inconn_t* c, mixcomm_status_t* st) {
  char me[64];
  describe_peer(x, x->local_rank, me, sizeof me);
  return mixcomm__fdx_recv_hello(c->fd, c->hdr, &c->got, &c->rfd, me, (int)c->cred.pid, st);
}

/* Send our header and fd to local rank j as far as possible without blocking. */
static mixcomm_status_t push(fdx_t* x, outconn_t* o, int j, int my_fd, int* retry) {
  if (o->fd < 0) {
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (socket_path(x->dir, j, sa.sun_path, sizeof sa.sun_path) != 0)
      return mixcomm__error(MIXCOMM_ERR_INTERNAL, "fd exchange: socket path too long");
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
      return mixcomm__sys_error("fd exchange: socket(AF_UNIX)");
    if (connect(fd, (struct sockaddr*)&sa, sizeof sa) != 0) {
      int e = errno;
      close_fd(fd);
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
    union {
      char buf[CMSG_SPACE(sizeof(int))];
      struct cmsghdr align;
    } ctl;
    struct iovec iov = {hdr + o->off, HELLO_SIZE - o->off};
    struct msghdr m;
    memset(&m, 0, sizeof m);
    memset(&ctl, 0, sizeof ctl);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    if (o->off == 0) {
      m.msg_control = ctl.buf;
      m.msg_controllen = sizeof ctl.buf;
      struct cmsghdr* cm = CMSG_FIRSTHDR(&m);
      cm->cmsg_level = SOL_SOCKET;
      cm->cmsg_type = SCM_RIGHTS;
      cm->cmsg_len = CMSG_LEN(sizeof(int));
      memcpy(CMSG_DATA(cm), &my_fd, sizeof my_fd);
    }
    ssize_t r = sendmsg(o->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return MIXCOMM_SUCCESS; /* poll for POLLOUT */
    if (r < 0 && (errno == EPIPE || errno == ECONNRESET || errno == ECONNREFUSED)) {
      /* The peer went away mid-way: start over (and time out if it stays away). */
      snprintf(o->last_err, sizeof o->last_err, "send to local rank %d: %s", j,
               strerror(errno));
      close_fd(o->fd);
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
  close_fd(o->fd); /* the descriptor in flight stays valid until the peer takes it */
  o->fd = -1;
  o->done = 1;
  return MIXCOMM_SUCCESS;
}

static void format_peers(const fdx_t* x, const int* lrs, int n, char* out, size_t cap) {
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
static mixcomm_status_t exchange(fdx_t* x, int my_fd) {
  const int n = x->local_size, me = x->local_rank;
  const long long deadline = now_ms() + x->timeout_ms;
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
      int fd = accept4(x->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED)
          continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
          break;
        st = mixcomm__sys_error("fd exchange: accept");
        goto done;
      }
      struct ucred cred;
      socklen_t cl = sizeof cred;
      if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) != 0) {
        st = mixcomm__sys_error("fd exchange: getsockopt(SO_PEERCRED)");
        close_fd(fd);
        goto done;
      }
      if (cred.uid != getuid()) {
        st = mixcomm__error(MIXCOMM_ERR_BOOTSTRAP,
                            "fd exchange (local rank %d, world rank %d): a process of uid %u "
                            "(pid %d) connected to %s; expected one of this node's local ranks "
                            "running as uid %u",
                            me, x->bs->rank, (unsigned)cred.uid, (int)cred.pid, x->path,
                            (unsigned)getuid());
        close_fd(fd);
        goto done;
      }
      if (nin == in_cap) {
        st = mixcomm__error(MIXCOMM_ERR_BOOTSTRAP,
                            "fd exchange (local rank %d, world rank %d): more than %d "
                            "connections to %s; only %d local peers were expected",
                            me, x->bs->rank, in_cap, x->path, n - 1);
        close_fd(fd);
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
        close_fd(in[i].fd);
        in[i].fd = -1;
        received++;
      }
    }
    if (sent == n && received == n - 1)
      break;
    /* Wait. */
    long long left = deadline - now_ms();
    if (left <= 0) {
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
    int wait = left > INT_MAX ? INT_MAX : (int)left;
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
      close_fd(out[j].fd);
  if (in != NULL)
    for (int i = 0; i < nin; i++) {
      close_fd(in[i].fd);
      close_fd(in[i].rfd);
    }
  free(out);
  free(in);
  free(pf);
  free(list);
  return st;
}

/* Allgather every rank's status; if one failed, fail naming the first (keeping our own error if
 * we are the one). */
static mixcomm_status_t agree(fdx_t* x, mixcomm_status_t mine, const char* what) {
  char saved[1024];
  snprintf(saved, sizeof saved, "%s", mixcomm_last_error());
  int32_t s = (int32_t)mine;
  int32_t* all = calloc((size_t)x->bs->size, sizeof *all);
  if (all == NULL) {
    if (mine != MIXCOMM_SUCCESS)
      return mine;
    return mixcomm__error(MIXCOMM_ERR_OUT_OF_MEMORY, "fd exchange: out of host memory");
  }
  mixcomm_status_t st = mixcomm__bs_allgather(x->bs, &s, all, sizeof s, what);
  if (mine != MIXCOMM_SUCCESS) {
    free(all);
    return mixcomm__error(mine, "%s", saved); /* our own failure is the story */
  }
  for (int r = 0; st == MIXCOMM_SUCCESS && r < x->bs->size; r++) {
    if (all[r] == MIXCOMM_SUCCESS)
      continue;
    mixcomm_status_t theirs = all[r] > 0 && all[r] < MIXCOMM_NUM_STATUS ? (mixcomm_status_t)all[r]
                                                                        : MIXCOMM_ERR_BOOTSTRAP;
    if (x->recs != NULL)
      st = mixcomm__error(theirs,
                          "fd exchange (local rank %d, world rank %d): world rank %d (local "
                          "rank %d of its node) failed with %s; see that rank's error message",
                          x->local_rank, x->bs->rank, r, (int)x->recs[r].local_rank,
                          mixcomm_status_name(theirs));
    else
      st = mixcomm__error(theirs,
                          "fd exchange (local rank %d, world rank %d): world rank %d failed "
                          "with %s; see that rank's error message",
                          x->local_rank, x->bs->rank, r, mixcomm_status_name(theirs));
  }
  free(all);
  return st;
}

mixcomm_status_t mixcomm__fd_exchange(mixcomm_bootstrap_t* bs, int local_rank, int local_size,
                                      int my_fd, int timeout_ms, int* peer_fds) {
  if (bs == NULL || peer_fds == NULL)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "fd exchange: %s is NULL", bs == NULL ? "the bootstrap" : "peer_fds");
  if (local_size < 1 || local_size > MAX_LOCAL || local_rank < 0 || local_rank >= local_size)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "fd exchange: local rank %d of local size %d; need 1 <= local_size <= "
                          "%d and 0 <= local_rank < local_size",
                          local_rank, local_size, MAX_LOCAL);
  for (int i = 0; i < local_size; i++)
    peer_fds[i] = -1;
  if (bs->size < 1 || bs->rank < 0 || bs->rank >= bs->size || bs->rank - local_rank < 0 ||
      bs->rank - local_rank + local_size > bs->size)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "fd exchange: world rank %d of %d cannot be local rank %d of %d (the "
                          "node's ranks must be consecutive world ranks)",
                          bs->rank, bs->size, local_rank, local_size);
  if (my_fd < 0)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "fd exchange: my_fd=%d is not a file "
                          "descriptor", my_fd);
  if (timeout_ms <= 0)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "fd exchange: timeout_ms=%d; must be positive", timeout_ms);

  fdx_t x;
  memset(&x, 0, sizeof x);
  x.bs = bs;
  x.local_rank = local_rank;
  x.local_size = local_size;
  x.first = bs->rank - local_rank;
  x.timeout_ms = timeout_ms;
  x.is_leader = local_rank == 0;
  x.listen_fd = -1;
  x.peer_fds = peer_fds;
  mixcomm_status_t st = MIXCOMM_SUCCESS, mine = MIXCOMM_SUCCESS;

  /* Step 1: the leader's directory, then everyone's record. */
  fdx_record_t rec;
  memset(&rec, 0, sizeof rec);
  rec.magic = MIXCOMM__FDX_MAGIC;
  rec.pid = (int32_t)getpid();
  rec.uid = (uint32_t)getuid();
  rec.local_rank = local_rank;
  rec.local_size = local_size;
  if (x.is_leader) {
    mine = make_dir(&x);
    rec.status = (int32_t)mine;
    if (mine == MIXCOMM_SUCCESS)
      snprintf(rec.dir, sizeof rec.dir, "%s", x.dir);
  }
  x.recs = calloc((size_t)bs->size, sizeof *x.recs);
  if (x.recs == NULL) {
    st = mixcomm__error(MIXCOMM_ERR_OUT_OF_MEMORY, "fd exchange: out of host memory");
    goto out;
  }
  {
    char saved[1024];
    snprintf(saved, sizeof saved, "%s", mixcomm_last_error());
    st = mixcomm__bs_allgather(bs, &rec, x.recs, sizeof rec, "fd exchange: sharing records");
    if (mine != MIXCOMM_SUCCESS) {
      st = mixcomm__error(mine, "%s", saved);
      goto out;
    }
    if (st != MIXCOMM_SUCCESS)
      goto out;
  }
  for (int r = 0; r < bs->size; r++)
    if (x.recs[r].status != MIXCOMM_SUCCESS) {
      st = mixcomm__error(MIXCOMM_ERR_BOOTSTRAP,
                          "fd exchange (local rank %d, world rank %d): the node leader world "
                          "rank %d could not create its socket directory; see its error",
                          local_rank, bs->rank, r);
      goto out;
    }

  /* Step 2: check the node, listen, agree. */
  mine = check_node_and_listen(&x);
  MIXCOMM_CHECK_GOTO(agree(&x, mine, "fd exchange: every rank listening"), st, out);

  /* Step 3: the exchange proper, then our own descriptor. */
  mine = exchange(&x, my_fd);
  if (mine == MIXCOMM_SUCCESS) {
    peer_fds[local_rank] = fcntl(my_fd, F_DUPFD_CLOEXEC, 0);
    if (peer_fds[local_rank] < 0)
      mine = mixcomm__sys_error("fd exchange: dup of this rank's descriptor");
  }
  close_listener(&x);

  /* Step 4: agree on the outcome; the leader cleans up below. */
  st = agree(&x, mine, "fd exchange: every rank done");

out:
  close_listener(&x);
  if (st != MIXCOMM_SUCCESS)
    for (int i = 0; i < local_size; i++) {
      close_fd(peer_fds[i]);
      peer_fds[i] = -1;
    }
  remove_dir(&x);
  free(x.recs);
  if (st == MIXCOMM_SUCCESS)
    MIXCOMM_DEBUG("fd exchange: local rank %d of %d (world rank %d) has all %d descriptors",
                  local_rank, local_size, bs->rank, local_size);
  return st;
}
