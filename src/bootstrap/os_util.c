/* SPDX-License-Identifier: Apache-2.0
 * Monotonic milliseconds, a logged close() and a non-blocking accept for the bootstrap
 * (os_util.h). */
#include "bootstrap/os_util.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

long long mixcomm__monotonic_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int mixcomm__ms_left(long long deadline) {
  long long left = deadline - mixcomm__monotonic_ms();
  if (left < 0)
    return 0;
  return left > INT_MAX ? INT_MAX : (int)left;
}

int mixcomm__accept_nonblock(int lfd, struct sockaddr_storage* sa, socklen_t* sl) {
  for (;;) {
    int fd = accept4(lfd, (struct sockaddr*)sa, sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0 || (errno != EINTR && errno != ECONNABORTED && errno != EPROTO))
      return fd;
  }
}

void mixcomm__close_fd(int fd, const char* who) {
  if (fd >= 0 && close(fd) != 0 && errno != EINTR)
    MIXCOMM_DEBUG("%s: close(%d) failed: %s", who, fd, strerror(errno));
}
