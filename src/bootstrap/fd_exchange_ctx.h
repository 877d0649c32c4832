/* SPDX-License-Identifier: Apache-2.0
 * One rank's state during the node-local fd exchange (fd_exchange.c describes the protocol)
 * and what its files share: the socket directory and this rank's listening socket
 * (fd_exchange_dir.c, steps 1 and 2) and the exchange proper (fd_exchange_loop.c, step 3). */
#ifndef MIXCOMM_BOOTSTRAP_FD_EXCHANGE_CTX_H_
#define MIXCOMM_BOOTSTRAP_FD_EXCHANGE_CTX_H_

#include <stddef.h>
#include <sys/un.h>

#include "bootstrap/fd_exchange_msg.h"
#include "bootstrap/os_util.h"
#include "mixcomm.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mixcomm__fdx {
  mixcomm_bootstrap_t* bs;
  int local_rank, local_size, first, timeout_ms; /* the node's leader is local rank 0 */
  char dir[MIXCOMM__FDX_DIR_CAP]; /* this node's socket directory ("" until known) */
  int made_dir;                   /* the leader created dir and must remove it */
  int listen_fd;
  char path[sizeof(((struct sockaddr_un*)0)->sun_path)]; /* our socket, "" when not bound */
  mixcomm__fdx_record_t* recs;
  int* peer_fds;
} mixcomm__fdx_t;

static inline mixcomm__fdx_node_t mixcomm__fdx_node_of(const mixcomm__fdx_t* x) {
  mixcomm__fdx_node_t n = {x->local_rank, x->local_size, x->first, x->bs->rank, x->recs};
  return n;
}

/* "<dir>/r<local_rank>" in out: 0, or -1 when it does not fit in cap. */
int mixcomm__fdx_socket_path(const char* dir, int local_rank, char* out, size_t cap);

/* Step 1, the leader: make the node's socket directory (x->dir, mode 0700) under
 * $MIXCOMM_SOCKET_DIR, $XDG_RUNTIME_DIR or /tmp. */
mixcomm_status_t mixcomm__fdx_make_dir(mixcomm__fdx_t* x);
/* The leader: remove the directory and whatever a dead rank left in it (no-op elsewhere). */
void mixcomm__fdx_remove_dir(mixcomm__fdx_t* x);
/* Step 2: this node's records must agree and its directory be this user's; then listen on
 * <dir>/r<local_rank>. */
mixcomm_status_t mixcomm__fdx_listen(mixcomm__fdx_t* x);
/* Close and unlink this rank's socket (no-op when there is none). */
void mixcomm__fdx_close_listener(mixcomm__fdx_t* x);

/* Step 3: send my_fd to every other local rank and take theirs into x->peer_fds, within
 * x->timeout_ms. */
mixcomm_status_t mixcomm__fdx_exchange(mixcomm__fdx_t* x, int my_fd);

#ifdef __cplusplus
}
#endif

#endif
