/* SPDX-License-Identifier: Apache-2.0
 * The two system helpers every bootstrap transport uses: a monotonic clock in milliseconds (the
 * deadlines of every bounded wait) and a close() whose failure is logged, never fatal. */
#ifndef MIXCOMM_BOOTSTRAP_OS_UTIL_H_
#define MIXCOMM_BOOTSTRAP_OS_UTIL_H_

/* Milliseconds of CLOCK_MONOTONIC. */
long long mixcomm__monotonic_ms(void);

/* close(fd) for fd >= 0; a failure other than EINTR is logged (debug) as "<who>: close(fd)". */
void mixcomm__close_fd(int fd, const char* who);

#endif
