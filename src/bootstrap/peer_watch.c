/* SPDX-License-Identifier: Apache-2.0
 * Watch on lost peers (see peer_watch.h).
 *
 * Protocol. The TCP bootstrap is a star: rank 0 holds a connection to every rank, each other
 * rank one to rank 0. The thread poll()s those connections for POLLRDHUP (the peer shut its
 * side or its process exited: the kernel closes the socket of a killed process), POLLHUP and
 * POLLERR, never for POLLIN, and never reads: the bootstrap's own collectives (autotune,
 * checkpoint, shutdown) go on undisturbed on the same sockets. A pipe wakes it to stop.
 *  - On rank 0, rank k's connection closed: k is lost. Rank 0 tells every other rank through
 *    the bootstrap (mixcomm__tcp_report_lost: an ERROR notice naming k, then rank 0 closes its
 *    side of every connection), and reports k.
 *  - On another rank, rank 0's side closed: if rank 0 sent a notice first, the rank it names
 *    is lost (it is read without being taken, mixcomm__tcp_lost_rank); else rank 0 itself.
 * So any rank's death reaches every rank within one poll wake-up on rank 0 plus one on the
 * others: milliseconds, well under a second. The first loss ends the watch (the job cannot go
 * on). A connection that is closed because a bootstrap collective failed looks the same, and
 * is reported the same way: the peers could not finish that job either.
 *
 * Threads. The callback runs on this thread; start/stop run on the caller's. The thread never
 * prints and never logs.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bootstrap/bootstrap.h"
#include "bootstrap/os_util.h"
#include "bootstrap/peer_watch.h"
#include "core/error.h"

struct mixcomm__peer_watch {
  mixcomm_bootstrap_t* bs;
  mixcomm__peer_lost_fn fn;
  void* arg;
  int n;           /* connections watched */
  struct pollfd* pf; /* pf[0]: the wake pipe; pf[1..n]: connections */
  int* ranks;      /* ranks[i]: the rank at the other end of pf[i + 1] */
  int wake[2];
  pthread_t thread;
};

static const short kClosed = POLLRDHUP | POLLHUP | POLLERR;

static void* watch_main(void* p) {
  mixcomm__peer_watch_t* w = p;
  const int me = w->bs->rank;
  for (;;) {
    int r = poll(w->pf, (nfds_t)w->n + 1, -1);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      return NULL; /* cannot watch any more: the bounded waits still hold */
    }
    if (w->pf[0].revents != 0)
      return NULL; /* stop */
    for (int i = 0; i < w->n; i++) {
      const short ev = w->pf[i + 1].revents;
      if (ev & POLLNVAL) {
        w->pf[i + 1].fd = -1; /* not ours any more (the bootstrap was destroyed) */
        continue;
      }
      if (!(ev & kClosed))
        continue;
      int via = w->ranks[i];
      int lost = via;
      if (me == 0) {
        mixcomm__tcp_report_lost(w->bs, via);
        /* The first closed connection the bootstrap recorded (here or in a collective of the
         * main thread) is the lost rank: a rank that closed later did so because rank 0's
         * notice reached it, and poll() may report both at once, in rank order. Rank 0 learns
         * of a loss through the lost rank's own connection. */
        const int first = mixcomm__tcp_lost_rank(w->bs);
        if (first > 0)
          lost = via = first;
      } else {
        const int named = mixcomm__tcp_lost_rank(w->bs);
        if (named >= 0 && named != me)
          lost = named;
      }
      w->fn(w->arg, lost, via);
      return NULL;
    }
  }
}

static void close_pipe(mixcomm__peer_watch_t* w) {
  for (int i = 0; i < 2; i++)
    mixcomm__close_fd(w->wake[i], "peer watch");
}

mixcomm_status_t mixcomm__peer_watch_start(mixcomm_bootstrap_t* bs, mixcomm__peer_lost_fn fn,
                                           void* arg, mixcomm__peer_watch_t** out) {
  *out = NULL;
  if (bs == NULL || fn == NULL || bs->size <= 1)
    return MIXCOMM_SUCCESS;
  int* fds = malloc((size_t)bs->size * sizeof *fds);
  int* ranks = malloc((size_t)bs->size * sizeof *ranks);
  const int n = fds == NULL || ranks == NULL ? -1 : mixcomm__tcp_links(bs, fds, ranks, bs->size);
  if (n == 0) { /* a bootstrap of callbacks: the waits' timeout is the only bound */
    free(fds);
    free(ranks);
    return MIXCOMM_SUCCESS;
  }
  mixcomm__peer_watch_t* w = n > 0 ? calloc(1, sizeof *w) : NULL;
  struct pollfd* pf = n > 0 ? calloc((size_t)n + 1, sizeof *pf) : NULL;
  if (w == NULL || pf == NULL) {
    free(fds);
    free(ranks);
    free(w);
    free(pf);
    return mixcomm__error(MIXCOMM_ERR_OUT_OF_MEMORY,
                          "starting the watch on lost peers: out of host memory");
  }
  *w = (mixcomm__peer_watch_t){.bs = bs, .fn = fn, .arg = arg, .n = n, .pf = pf, .ranks = ranks,
                               .wake = {-1, -1}};
  for (int i = 0; i < n; i++) {
    pf[i + 1].fd = fds[i];
    pf[i + 1].events = POLLRDHUP;
  }
  free(fds);
  mixcomm_status_t st = MIXCOMM_SUCCESS;
  if (pipe2(w->wake, O_CLOEXEC) != 0) {
    st = mixcomm__sys_error("starting the watch on lost peers: pipe2");
    goto fail;
  }
  pf[0].fd = w->wake[0];
  pf[0].events = POLLIN;
  int e = pthread_create(&w->thread, NULL, watch_main, w);
  if (e != 0) {
    errno = e;
    st = mixcomm__sys_error("starting the watch on lost peers: pthread_create");
    goto fail;
  }
  *out = w;
  return MIXCOMM_SUCCESS;
fail:
  close_pipe(w);
  free(w->pf);
  free(w->ranks);
  free(w);
  return st;
}

void mixcomm__peer_watch_stop(mixcomm__peer_watch_t* w) {
  if (w == NULL)
    return;
  const char one = 1;
  ssize_t r;
  do {
    r = write(w->wake[1], &one, 1);
  } while (r < 0 && errno == EINTR);
  pthread_join(w->thread, NULL);
  close_pipe(w);
  free(w->pf);
  free(w->ranks);
  free(w);
}
