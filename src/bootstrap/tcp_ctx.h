/* SPDX-License-Identifier: Apache-2.0
 * The TCP bootstrap's state on one rank and what its files share (tcp.c describes the
 * protocol): transfers on non-blocking sockets against a deadline (tcp_xfer.c), rank 0's side of
 * setup (tcp_accept.c), the other ranks' side (tcp_join.c), allgather and barrier
 * (tcp_collective.c), and the failure state with the lost-rank bookkeeping (tcp_lost.c). */
#ifndef MIXCOMM_BOOTSTRAP_TCP_CTX_H_
#define MIXCOMM_BOOTSTRAP_TCP_CTX_H_

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "bootstrap/os_util.h"
#include "bootstrap/tcp_internal.h"
#include "mixcomm.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mixcomm__tcp_ctx {
  mixcomm_bootstrap_t* self; /* the struct handed out; freed by the destroy callback */
  int rank, size;
  int timeout_ms;
  char where[300]; /* "addr:port" of rank 0, for messages */
  int* fds;        /* rank 0: fds[r] for every r >= 1; others: fds[0] */
  uint64_t seq;
  mixcomm_status_t broken; /* not MIXCOMM_SUCCESS after a failed collective */
  char broken_msg[768];
  int lost_rank; /* rank whose connection closed (ERROR with b = rank + 1), -1: none; atomic */
  pthread_mutex_t lock; /* held by a collective, by mixcomm__tcp_report_lost (rank 0) and by
                         * mixcomm__tcp_lost_rank's peek (the others) */
} mixcomm__tcp_ctx_t;

/* ---- time and small helpers (tcp_xfer.c; the clock, the time to a deadline, close() and
 * accept in os_util.h) ---- */

/* How much longer a non-root waits for rank 0's answer than rank 0 waits for the ranks:
 * timeout/2, clamped to [0.5 s, 5 s], so that rank 0 is the one to name the rank at fault. */
int mixcomm__tcp_grace_ms(int timeout_ms);
/* Sleep until min(deadline, now + ms), tolerating signals. */
void mixcomm__tcp_sleep_until(long long deadline, int ms);
/* "rank 2" or "rank 1, rank 2 and rank 5" (at most 8 named, then "and N more"). */
void mixcomm__tcp_format_ranks(char* buf, size_t size, const int* ranks, int n);
/* TCP_NODELAY on a fresh connection (failure only slows small messages down). */
void mixcomm__tcp_nodelay(int fd);

/* ---- transfers (tcp_xfer.c) ---- */

/* One buffer in two segments (header and body) to send or receive on a non-blocking socket. */
typedef struct mixcomm__tcp_xfer {
  int fd;
  int peer; /* world rank at the other end, for messages */
  int is_send;
  unsigned char* base[2];
  size_t len[2];
  size_t off; /* bytes moved so far over both segments */
} mixcomm__tcp_xfer_t;

void mixcomm__tcp_xfer_init(mixcomm__tcp_xfer_t* x, int fd, int peer, int is_send, void* b0,
                            size_t l0, void* b1, size_t l1);
/* Move bytes until done or the socket would block. Returns 1 when complete, 0 when it would
 * block, -1 when the peer closed the connection (errno 0 for an orderly close), -2 on another
 * error (errno set). */
int mixcomm__tcp_xfer_step(mixcomm__tcp_xfer_t* x);
/* The error for xfer_step's failure r (errno as it left it); a closed connection is recorded
 * as this thread's closed peer (tcp_lost.c). */
mixcomm_status_t mixcomm__tcp_xfer_fail(const mixcomm__tcp_xfer_t* x, int r, const char* what);
/* Complete every transfer before the deadline, all at once. On failure the error names the
 * rank at fault (for a timeout: every rank still pending). */
mixcomm_status_t mixcomm__tcp_xfer_run(mixcomm__tcp_xfer_t* x, int n, long long deadline,
                                       int timeout_ms, const char* what);
/* One message (a HDR_SIZE header and body_len bytes of body) to peer, before the deadline. */
mixcomm_status_t mixcomm__tcp_send_msg(int fd, int peer, const void* hdr, const void* body,
                                       size_t body_len, long long deadline, int timeout_ms,
                                       const char* what);
/* Best effort, never blocks: send a short message at once or not at all (used on the way out
 * of a failure, to tell a peer why). */
void mixcomm__tcp_send_now(int fd, uint32_t type, mixcomm_status_t st, uint32_t b, uint64_t seq,
                           const char* text);
/* Read a text body of len bytes (at most cap - 1) into text, made safe to print. */
mixcomm_status_t mixcomm__tcp_recv_text(int fd, int peer, uint64_t len, char* text, size_t cap,
                                        long long deadline, int timeout_ms, const char* what);

/* ---- setup (tcp_accept.c on rank 0, tcp_join.c on the others) ---- */

/* Rank 0: a listening socket on addr:port in *out_fd. */
mixcomm_status_t mixcomm__tcp_root_listen(mixcomm__tcp_ctx_t* c, const char* addr, int port,
                                          int* out_fd);
/* Rank 0: admit every other rank through lfd, then send OK to all (or ABORT at the deadline). */
mixcomm_status_t mixcomm__tcp_root_setup(mixcomm__tcp_ctx_t* c, int lfd,
                                         const unsigned char* token);
/* A non-root: connect to rank 0, say hello and wait for OK; the connection ends in c->fds[0]. */
mixcomm_status_t mixcomm__tcp_nonroot_setup(mixcomm__tcp_ctx_t* c, const char* addr, int port,
                                            const unsigned char* token);

/* ---- collectives (tcp_collective.c): the callbacks of mixcomm_bootstrap_t ---- */

int mixcomm__tcp_allgather(void* ctx, const void* send, void* recv, size_t bytes);
int mixcomm__tcp_barrier(void* ctx);

/* ---- failure state and lost peers (tcp_lost.c) ---- */

/* The rank whose connection this thread last found closed (-1: none): rank 0 names it in the
 * ERROR notice, so that the other ranks' watches blame that rank, not rank 0. */
extern _Thread_local int mixcomm__tcp_closed_peer;
/* A non-root read rank 0's ERROR notice h: remember the closed rank it names. */
void mixcomm__tcp_note_lost(mixcomm__tcp_ctx_t* c, const mixcomm__tcp_hdr_t* h);
/* Remember the current error as fatal for this bootstrap. Rank 0 tells every other rank why
 * (ERROR, when notify) before shutting its side of the connections; a non-root shuts its
 * connection so rank 0 sees it gone at once. Returns st. */
mixcomm_status_t mixcomm__tcp_mark_broken(mixcomm__tcp_ctx_t* c, mixcomm_status_t st,
                                          uint64_t seq, int notify);

#ifdef __cplusplus
}
#endif

#endif
