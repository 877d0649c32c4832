/* SPDX-License-Identifier: Apache-2.0
 * A thread that watches the built-in TCP bootstrap's connections for a peer whose side closed
 * (its process died) and reports which rank is gone, within about a second, so that kernels
 * waiting for that rank stop at once instead of at their timeout. See peer_watch.c. */
#ifndef MIXCOMM_BOOTSTRAP_PEER_WATCH_H_
#define MIXCOMM_BOOTSTRAP_PEER_WATCH_H_

#include "mixcomm.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mixcomm__peer_watch mixcomm__peer_watch_t;

/* Called once, on the watch thread: `lost` is the world rank that is gone, `via` the rank
 * whose connection to this rank closed (lost itself, or rank 0 when it told us). It must not
 * block, print or call into the bootstrap. */
typedef void (*mixcomm__peer_lost_fn)(void* arg, int lost, int via);

/* Start watching bs. A bootstrap of callbacks, or a world of one rank, has nothing to watch:
 * *out = NULL and MIXCOMM_SUCCESS. Failures (pipe, thread) are statuses. */
mixcomm_status_t mixcomm__peer_watch_start(mixcomm_bootstrap_t* bs, mixcomm__peer_lost_fn fn,
                                           void* arg, mixcomm__peer_watch_t** out);

/* Stop the thread and join it (NULL is a no-op). After it returns, fn is never called. */
void mixcomm__peer_watch_stop(mixcomm__peer_watch_t* w);

#ifdef __cplusplus
}
#endif

#endif
