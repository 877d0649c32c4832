/* SPDX-License-Identifier: Apache-2.0
 * The fd exchange's socket directory and this rank's listening socket (fd_exchange.c, steps 1
 * and 2): the leader makes the directory and checks that it is a directory of this user with
 * mode 0700; every rank checks it again before it listens in it, and the leader removes it,
 * with whatever a dead rank left there, at the end. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include "bootstrap/fd_exchange_ctx.h"
#include "core/error.h"
#include "core/log.h"

#define DIR_CAP MIXCOMM__FDX_DIR_CAP

int mixcomm__fdx_socket_path(const char* dir, int local_rank, char* out, size_t cap) {
  int w = snprintf(out, cap, "%s/r%d", dir, local_rank);
  return w > 0 && (size_t)w < cap ? 0 : -1;
}

static mixcomm_status_t check_dir(const mixcomm__fdx_t* x, const char* dir) {
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

mixcomm_status_t mixcomm__fdx_make_dir(mixcomm__fdx_t* x) {
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
void mixcomm__fdx_remove_dir(mixcomm__fdx_t* x) {
  if (!x->made_dir)
    return;
  for (int i = 0; i < x->local_size; i++) {
    char p[sizeof x->path];
    if (mixcomm__fdx_socket_path(x->dir, i, p, sizeof p) == 0 && unlink(p) != 0 && errno != ENOENT)
      MIXCOMM_INFO("fd exchange: cannot remove %s: %s", p, strerror(errno));
  }
  if (rmdir(x->dir) != 0)
    MIXCOMM_INFO("fd exchange: cannot remove the socket directory %s: %s", x->dir, strerror(errno));
  x->made_dir = 0;
}

void mixcomm__fdx_close_listener(mixcomm__fdx_t* x) {
  mixcomm__close_fd(x->listen_fd, "fd exchange");
  x->listen_fd = -1;
  if (x->path[0] != '\0' && unlink(x->path) != 0 && errno != ENOENT)
    MIXCOMM_INFO("fd exchange: cannot remove %s: %s", x->path, strerror(errno));
  x->path[0] = '\0';
}

mixcomm_status_t mixcomm__fdx_listen(mixcomm__fdx_t* x) {
  const mixcomm__fdx_node_t node = mixcomm__fdx_node_of(x);
  MIXCOMM_CHECK(mixcomm__fdx_check_node(&node, (uint32_t)getuid(), x->dir, sizeof x->dir));
  MIXCOMM_CHECK(check_dir(x, x->dir));

  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  if (mixcomm__fdx_socket_path(x->dir, x->local_rank, sa.sun_path, sizeof sa.sun_path) != 0)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "fd exchange: the socket path under %s is too long; set "
                          "MIXCOMM_SOCKET_DIR to a short directory",
                          x->dir);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return mixcomm__sys_error("fd exchange: socket(AF_UNIX)");
  if (bind(fd, (struct sockaddr*)&sa, sizeof sa) != 0) {
    char what[256];
    snprintf(what, sizeof what, "fd exchange (local rank %d): bind %s", x->local_rank, sa.sun_path);
    mixcomm_status_t st = mixcomm__sys_error(what);
    mixcomm__close_fd(fd, "fd exchange");
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
