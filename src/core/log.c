/* SPDX-License-Identifier: Apache-2.0
 * Opt-in logging (see log.h). The level is read once from the environment. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

static pthread_once_t log_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t log_mutex = PTHREAD_MUTEX_INITIALIZER;
static int log_level = MIXCOMM_LOG_OFF;
static FILE* log_file;

static void log_setup(void) {
  const char* v = getenv("MIXCOMM_LOG");
  if (v == NULL || *v == '\0')
    return;
  if (!strcasecmp(v, "ERROR"))
    log_level = MIXCOMM_LOG_ERROR;
  else if (!strcasecmp(v, "WARN"))
    log_level = MIXCOMM_LOG_WARN;
  else if (!strcasecmp(v, "INFO"))
    log_level = MIXCOMM_LOG_INFO;
  else if (!strcasecmp(v, "DEBUG") || !strcasecmp(v, "TRACE"))
    log_level = MIXCOMM_LOG_DEBUG;
  else
    log_level = MIXCOMM_LOG_WARN;
  log_file = stderr;
  const char* path = getenv("MIXCOMM_LOG_FILE");
  if (path != NULL && *path != '\0') {
    char name[1024];
    size_t n = 0;
    for (const char* p = path; *p && n + 24 < sizeof name; p++) {
      if (p[0] == '%' && p[1] == 'p') {
        n += (size_t)snprintf(name + n, sizeof name - n, "%d", (int)getpid());
        p++;
      } else {
        name[n++] = *p;
      }
    }
    name[n] = '\0';
    FILE* f = fopen(name, "a");
    if (f != NULL)
      log_file = f;
  }
}

int mixcomm__log_enabled(mixcomm__log_level_t level) {
  pthread_once(&log_once, log_setup);
  return (int)level <= log_level;
}

void mixcomm__log(mixcomm__log_level_t level, const char* fmt, ...) {
  static const char* names[] = {"OFF", "ERROR", "WARN", "INFO", "DEBUG"};
  if (!mixcomm__log_enabled(level))
    return;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  pthread_mutex_lock(&log_mutex);
  fprintf(log_file, "[mixcomm %ld.%06ld pid %d %s] %s\n", (long)ts.tv_sec,
          (long)(ts.tv_nsec / 1000), (int)getpid(), names[level], msg);
  fflush(log_file);
  pthread_mutex_unlock(&log_mutex);
}
