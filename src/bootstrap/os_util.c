/* SPDX-License-Identifier: Apache-2.0
 * Monotonic milliseconds and a logged close() for the bootstrap (os_util.h). */
#include "bootstrap/os_util.h"

#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

long long mixcomm__monotonic_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void mixcomm__close_fd(int fd, const char* who) {
  if (fd >= 0 && close(fd) != 0 && errno != EINTR)
    MIXCOMM_DEBUG("%s: close(%d) failed: %s", who, fd, strerror(errno));
}
