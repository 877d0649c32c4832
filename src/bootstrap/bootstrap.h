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

/* COLLECTIVE over the world: every rank contributes its status `mine` (its message, for a
 * failure, is the current mixcomm_last_error()). Every rank returns MIXCOMM_SUCCESS if all
 * succeeded, else the lowest failing rank's status with "<what>: rank R failed (N ranks
 * failed): <R's message>", so that a failure on one rank fails all of them at once instead of
 * leaving them at the next collective until its timeout. If the collective itself fails (a
 * rank lost or silent), a rank that failed on its own returns its own error, the others the
 * bootstrap's. */
mixcomm_status_t mixcomm__bs_agree(mixcomm_bootstrap_t* bs, mixcomm_status_t mine,
                                   const char* what);

/* The built-in TCP bootstrap's view of its connections, for the handler's watch on lost peers
 * (peer_watch.c); tcp.c describes the protocol. Each is a no-op (0 / -1) for a bootstrap made
 * of a framework's callbacks. */
/* Connections this rank holds (rank 0: to every rank; others: to rank 0): up to cap file
 * descriptors and the rank at the other end of each. */
int mixcomm__tcp_links(const mixcomm_bootstrap_t* bs, int* fds, int* ranks, int cap);
/* Rank 0: rank's connection closed. Breaks the bootstrap with MIXCOMM_ERR_PEER_LOST and tells
 * every other rank which rank it was, then closes rank 0's side. Once; thread-safe. */
void mixcomm__tcp_report_lost(mixcomm_bootstrap_t* bs, int rank);
/* Non-root, after rank 0's side closed: the lost rank rank 0 announced, or -1 if none. Waits
 * for a collective of this rank in progress (with rank 0's side closed, it ends at once). */
int mixcomm__tcp_lost_rank(const mixcomm_bootstrap_t* bs);

#ifdef __cplusplus
}
#endif

#endif
