/* SPDX-License-Identifier: Apache-2.0
 * Internal bootstrap helpers on top of mixcomm_bootstrap_t (callbacks or built-in TCP), and the
 * exchange of file descriptors between the processes of one node. */
#ifndef MIXCOMM_BOOTSTRAP_BOOTSTRAP_H_
#define MIXCOMM_BOOTSTRAP_BOOTSTRAP_H_

#include <stddef.h>

#include "mixcomm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Allgather / barrier through the callbacks, turning a non-zero return into
 * MIXCOMM_ERR_BOOTSTRAP with a message naming `what`. */
mixcomm_status_t mixcomm__bs_allgather(mixcomm_bootstrap_t* bs, const void* send, void* recv,
                                       size_t bytes, const char* what);
mixcomm_status_t mixcomm__bs_barrier(mixcomm_bootstrap_t* bs, const char* what);
/* Broadcast `bytes` from world rank `root` to every rank (built on allgather). */
mixcomm_status_t mixcomm__bs_broadcast(mixcomm_bootstrap_t* bs, void* buf, size_t bytes,
                                       int root, const char* what);

/* Exchange one file descriptor between the local_size processes of this node (local ranks
 * first_world_rank .. first_world_rank + local_size - 1 of the world). COLLECTIVE over the
 * whole world (it uses the bootstrap's allgather and barrier). On return peer_fds[i] is an fd
 * (owned by the caller) received from local rank i, and peer_fds[local_rank] = dup(my_fd).
 * The sockets live in a fresh directory only this user can open (mode 0700, under
 * $MIXCOMM_SOCKET_DIR, $XDG_RUNTIME_DIR or /tmp); every connection's peer credentials are
 * checked (same uid, and the pid announced for that rank). Every wait ends after timeout_ms
 * with MIXCOMM_ERR_TIMEOUT naming the local rank that did not answer. */
mixcomm_status_t mixcomm__fd_exchange(mixcomm_bootstrap_t* bs, int local_rank, int local_size,
                                      int my_fd, int timeout_ms, int* peer_fds);

#ifdef __cplusplus
}
#endif

#endif
