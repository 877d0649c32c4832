/* SPDX-License-Identifier: Apache-2.0
 * Exchange of one file descriptor between the processes of a node (mixcomm__fd_exchange), over
 * Unix sockets with SCM_RIGHTS. Used to share the VMM workspace handles of a node. This file
 * runs the steps and agrees on their outcome; the socket directory and the listening socket
 * are in fd_exchange_dir.c, step 3 in fd_exchange_loop.c, the checks of what arrives in
 * fd_exchange_msg.c (fd_exchange_ctx.h holds what they share).
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
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bootstrap/bootstrap.h"
#include "bootstrap/fd_exchange_ctx.h"
#include "core/error.h"
#include "core/log.h"

#define MAX_LOCAL 1024

mixcomm_status_t mixcomm__fd_exchange(mixcomm_bootstrap_t* bs, int local_rank, int local_size,
                                      int my_fd, int timeout_ms, int* peer_fds) {
  if (bs == NULL || peer_fds == NULL)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "fd exchange: %s is NULL",
                          bs == NULL ? "the bootstrap" : "peer_fds");
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
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "fd exchange: my_fd=%d is not a file "
                          "descriptor",
                          my_fd);
  if (timeout_ms <= 0)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "fd exchange: timeout_ms=%d; must be positive", timeout_ms);

  mixcomm__fdx_t x;
  memset(&x, 0, sizeof x);
  x.bs = bs;
  x.local_rank = local_rank;
  x.local_size = local_size;
  x.first = bs->rank - local_rank;
  x.timeout_ms = timeout_ms;
  x.listen_fd = -1;
  x.peer_fds = peer_fds;
  mixcomm_status_t st = MIXCOMM_SUCCESS, mine = MIXCOMM_SUCCESS;

  /* Step 1: the leader's directory, then everyone's record. */
  mixcomm__fdx_record_t rec;
  memset(&rec, 0, sizeof rec);
  rec.magic = MIXCOMM__FDX_MAGIC;
  rec.pid = (int32_t)getpid();
  rec.uid = (uint32_t)getuid();
  rec.local_rank = local_rank;
  rec.local_size = local_size;
  if (local_rank == 0) {
    mine = mixcomm__fdx_make_dir(&x);
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
  mine = mixcomm__fdx_listen(&x);
  MIXCOMM_CHECK_GOTO(mixcomm__bs_agree(bs, mine, "fd exchange: every rank listening"), st, out);

  /* Step 3: the exchange proper, then our own descriptor. */
  mine = mixcomm__fdx_exchange(&x, my_fd);
  if (mine == MIXCOMM_SUCCESS) {
    peer_fds[local_rank] = fcntl(my_fd, F_DUPFD_CLOEXEC, 0);
    if (peer_fds[local_rank] < 0)
      mine = mixcomm__sys_error("fd exchange: dup of this rank's descriptor");
  }
  mixcomm__fdx_close_listener(&x);

  /* Step 4: agree on the outcome; the leader cleans up below. */
  st = mixcomm__bs_agree(bs, mine, "fd exchange: every rank done");

out:
  mixcomm__fdx_close_listener(&x);
  if (st != MIXCOMM_SUCCESS)
    for (int i = 0; i < local_size; i++) {
      mixcomm__close_fd(peer_fds[i], "fd exchange");
      peer_fds[i] = -1;
    }
  mixcomm__fdx_remove_dir(&x);
  free(x.recs);
  if (st == MIXCOMM_SUCCESS)
    MIXCOMM_DEBUG("fd exchange: local rank %d of %d (world rank %d) has all %d descriptors",
                  local_rank, local_size, bs->rank, local_size);
  return st;
}
