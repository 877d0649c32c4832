/* SPDX-License-Identifier: Apache-2.0
 * Checks of the fd exchange's records and hellos, and the read of one hello with its
 * descriptor (fd_exchange_msg.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/uio.h>
#include <unistd.h>

#include "bootstrap/byte_order.h"
#include "bootstrap/fd_exchange_msg.h"
#include "bootstrap/os_util.h"
#include "core/error.h"
#include "core/log.h"

mixcomm_status_t mixcomm__fdx_check_node(const mixcomm__fdx_node_t* n, uint32_t uid, char* dir,
                                         size_t cap) {
  for (int i = 0; i < n->local_size; i++) {
    const mixcomm__fdx_record_t* r = &n->recs[n->first + i];
    if (r->magic != MIXCOMM__FDX_MAGIC || r->local_rank != i || r->local_size != n->local_size)
      return mixcomm__error(MIXCOMM_ERR_MISMATCH,
                            "fd exchange (local rank %d, world rank %d): world rank %d says it "
                            "is local rank %d of %d, but this rank expects local rank %d of %d "
                            "there; every rank must pass the same node layout",
                            n->local_rank, n->world_rank, n->first + i, (int)r->local_rank,
                            (int)r->local_size, i, n->local_size);
    if (r->uid != uid)
      return mixcomm__error(MIXCOMM_ERR_BOOTSTRAP,
                            "fd exchange (local rank %d, world rank %d): local rank %d (world "
                            "rank %d) runs as uid %u but this rank as uid %u; the ranks of a "
                            "node must run as the same user",
                            n->local_rank, n->world_rank, i, n->first + i, (unsigned)r->uid,
                            (unsigned)uid);
  }
  const mixcomm__fdx_record_t* leader = &n->recs[n->first];
  if (memchr(leader->dir, '\0', sizeof leader->dir) == NULL || leader->dir[0] == '\0' ||
      cap < sizeof leader->dir)
    return mixcomm__error(MIXCOMM_ERR_BOOTSTRAP,
                          "fd exchange (local rank %d, world rank %d): the node leader (world "
                          "rank %d) announced no socket directory",
                          n->local_rank, n->world_rank, n->first);
  snprintf(dir, cap, "%s", leader->dir);
  return MIXCOMM_SUCCESS;
}

int mixcomm__fdx_dir_template(const char* base, int local_size, char* tmpl, size_t cap) {
  char digits[16];
  snprintf(digits, sizeof digits, "%d", local_size > 0 ? local_size - 1 : 0);
  if (cap < MIXCOMM__FDX_DIR_CAP)
    return -1;
  int w = snprintf(tmpl, MIXCOMM__FDX_DIR_CAP, "%s/mixcomm-XXXXXX", base);
  if (w < 0 || (size_t)w >= MIXCOMM__FDX_DIR_CAP ||
      (size_t)w + 2 + strlen(digits) >= sizeof(((struct sockaddr_un*)0)->sun_path)) {
    tmpl[0] = '\0';
    return -1;
  }
  return 0;
}

void mixcomm__fdx_encode_hello(unsigned char* hdr, int local_rank, int world_rank, int pid) {
  mixcomm__put_be32(hdr, MIXCOMM__FDX_MAGIC);
  mixcomm__put_be32(hdr + 4, (uint32_t)local_rank);
  mixcomm__put_be32(hdr + 8, (uint32_t)world_rank);
  mixcomm__put_be32(hdr + 12, (uint32_t)pid);
}

mixcomm_status_t mixcomm__fdx_check_hello(const mixcomm__fdx_node_t* n, const unsigned char* hdr,
                                          int cred_pid, int rfd, const int* peer_fds, int* lr) {
  char me[64];
  snprintf(me, sizeof me, "local rank %d (world rank %d)", n->local_rank, n->world_rank);
  const uint32_t magic = mixcomm__get_be32(hdr);
  const uint32_t ulr = mixcomm__get_be32(hdr + 4), uwr = mixcomm__get_be32(hdr + 8);
  const uint32_t upid = mixcomm__get_be32(hdr + 12);
  /* Compared as unsigned: a claim outside the node is refused before any arithmetic on it. */
  const uint32_t first = (uint32_t)n->first;
  if (magic != MIXCOMM__FDX_MAGIC || ulr >= (uint32_t)n->local_size ||
      ulr == (uint32_t)n->local_rank || uwr != first + ulr)
    return mixcomm__error(MIXCOMM_ERR_BOOTSTRAP,
                          "fd exchange (%s): a connection from pid %d sent a bad header (magic "
                          "0x%08x, claims local rank %u, world rank %u); expected one of the %d "
                          "other local ranks %d..%d of this node",
                          me, cred_pid, magic, ulr, uwr, n->local_size - 1, n->first,
                          n->first + n->local_size - 1);
  const int r = (int)ulr, wr = (int)uwr;
  const int pid = (int)upid;
  const int announced = (int)n->recs[n->first + r].pid;
  if ((cred_pid != 0 && announced != 0 && cred_pid != announced) ||
      (pid != 0 && announced != 0 && pid != announced))
    return mixcomm__error(MIXCOMM_ERR_BOOTSTRAP,
                          "fd exchange (%s): a connection claiming to be local rank %d (world "
                          "rank %d) says it is pid %d and its credentials say pid %d (0: "
                          "unknown), but that rank announced pid %d; a process that is not "
                          "part of this job connected",
                          me, r, wr, pid, cred_pid, announced);
  if (peer_fds[r] >= 0)
    return mixcomm__error(MIXCOMM_ERR_BOOTSTRAP,
                          "fd exchange (%s): local rank %d (world rank %d) sent a second file "
                          "descriptor",
                          me, r, wr);
  if (rfd < 0)
    return mixcomm__error(MIXCOMM_ERR_BOOTSTRAP,
                          "fd exchange (%s): local rank %d (world rank %d) sent its header but "
                          "no file descriptor",
                          me, r, wr);
  *lr = r;
  return MIXCOMM_SUCCESS;
}

/* Keep the first descriptor of the control data, close every other (SCM_RIGHTS only; the
 * socket has no other option set, so the kernel sends nothing else). */
static void take_rights(struct msghdr* m, int* rfd) {
  for (struct cmsghdr* cm = CMSG_FIRSTHDR(m); cm != NULL; cm = CMSG_NXTHDR(m, cm)) {
    if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS ||
        cm->cmsg_len < CMSG_LEN(0))
      continue;
    const size_t nfd = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t k = 0; k < nfd; k++) {
      int fd;
      memcpy(&fd, CMSG_DATA(cm) + k * sizeof(int), sizeof fd);
      if (*rfd < 0)
        *rfd = fd;
      else
        mixcomm__close_fd(fd, "fd exchange");
    }
  }
}

ssize_t mixcomm__fdx_send_with_fds(int fd, const void* p, size_t len, int attach, int nfds,
                                   int flags) {
  union {
    char buf[CMSG_SPACE(sizeof(int) * MIXCOMM__FDX_SEND_FDS_MAX)];
    struct cmsghdr align;
  } ctl;
  if (nfds < 0 || nfds > MIXCOMM__FDX_SEND_FDS_MAX) {
    errno = EINVAL;
    return -1;
  }
  memset(&ctl, 0, sizeof ctl);
  struct iovec iov = {(void*)p, len};
  struct msghdr m;
  memset(&m, 0, sizeof m);
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  if (nfds > 0) {
    m.msg_control = ctl.buf;
    m.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
    struct cmsghdr* cm = CMSG_FIRSTHDR(&m);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
    for (int k = 0; k < nfds; k++)
      memcpy(CMSG_DATA(cm) + k * sizeof(int), &attach, sizeof attach);
  }
  return sendmsg(fd, &m, flags);
}

int mixcomm__fdx_recv_hello(int fd, unsigned char* hdr, size_t* got, int* rfd, const char* me,
                            int cred_pid, mixcomm_status_t* st) {
  while (*got < MIXCOMM__FDX_HELLO_SIZE) {
    union {
      char buf[CMSG_SPACE(sizeof(int) * MIXCOMM__FDX_MAX_FDS)];
      struct cmsghdr align;
    } ctl;
    struct iovec iov = {hdr + *got, MIXCOMM__FDX_HELLO_SIZE - *got};
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctl.buf;
    m.msg_controllen = sizeof ctl.buf;
    ssize_t r = recvmsg(fd, &m, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return 0;
    if (r < 0) {
      char what[160];
      snprintf(what, sizeof what, "fd exchange (%s): receiving from pid %d", me, cred_pid);
      *st = mixcomm__sys_error(what);
      return -1;
    }
    take_rights(&m, rfd);
    if (m.msg_flags & MSG_CTRUNC) {
      *st = mixcomm__error(MIXCOMM_ERR_BOOTSTRAP,
                           "fd exchange (%s): pid %d sent more descriptors than expected", me,
                           cred_pid);
      return -1;
    }
    if (r == 0) {
      *st = mixcomm__error(MIXCOMM_ERR_BOOTSTRAP,
                           "fd exchange (%s): pid %d closed its connection after %zu of %d "
                           "header bytes; it probably died",
                           me, cred_pid, *got, MIXCOMM__FDX_HELLO_SIZE);
      return -1;
    }
    *got += (size_t)r;
  }
  return 1;
}
