/* SPDX-License-Identifier: Apache-2.0
 * The clock and the names of what the ranks of a fault scenario report (roles, places,
 * statuses), shared by the ranks and the parent. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "gpu/faults/faults.h"

const char* role_name(int r) {
  switch (r) {
    case ROLE_VICTIM:
      return "victim";
    case ROLE_SLEEPER:
      return "sleeper";
    case ROLE_DIVERGER:
      return "diverger";
    default:
      return "survivor";
  }
}

const char* where_name(int w) {
  static const char* names[] = {"-", "setup", "create", "run", "sync"};
  return w >= 0 && w <= AT_SYNC ? names[w] : "?";
}

double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

void sleep_ms(double ms) {
  if (ms <= 0)
    return;
  struct timespec ts;
  ts.tv_sec = (time_t)(ms / 1000);
  ts.tv_nsec = (long)((ms - ts.tv_sec * 1000.0) * 1e6);
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

const char* short_status(int st) {
  const char* n = mixcomm_status_name((mixcomm_status_t)st);
  if (strncmp(n, "MIXCOMM_ERR_", 12) == 0)
    return n + 12;
  if (strncmp(n, "MIXCOMM_", 8) == 0)
    return n + 8;
  return n;
}

void copy_msg(char* dst, size_t size, const char* src) {
  snprintf(dst, size, "%s", src != NULL ? src : "");
  for (char* p = dst; *p; p++)
    if (*p == '\n' || *p == '\r')
      *p = ' ';
}
