/* SPDX-License-Identifier: Apache-2.0
 * The system helpers every bootstrap transport uses: a monotonic clock in milliseconds and the
 * time left to a deadline on it (every bounded wait), a close() whose failure is logged, never
 * fatal, and a non-blocking accept. */
#ifndef MIXCOMM_BOOTSTRAP_OS_UTIL_H_
#define MIXCOMM_BOOTSTRAP_OS_UTIL_H_

#include <sys/socket.h>

/* Milliseconds of CLOCK_MONOTONIC. */
long long mixcomm__monotonic_ms(void);

/* Milliseconds from now to `deadline` (mixcomm__monotonic_ms time) as a poll() timeout: 0 once
 * it has passed, at most INT_MAX. */
int mixcomm__ms_left(long long deadline);

/* accept4(lfd, NONBLOCK | CLOEXEC), retried on EINTR, ECONNABORTED and EPROTO (a connection
 * that went away before it was taken). The new fd; or -1 with errno EAGAIN / EWOULDBLOCK when
 * nobody is waiting, any other errno a real failure. sa and sl may be NULL. */
int mixcomm__accept_nonblock(int lfd, struct sockaddr_storage* sa, socklen_t* sl);

/* close(fd) for fd >= 0; a failure other than EINTR is logged (debug) as "<who>: close(fd)". */
void mixcomm__close_fd(int fd, const char* who);

#endif
