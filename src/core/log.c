/* SPDX-License-Identifier: Apache-2.0
 * Opt-in logging (see log.h). The level is read once from the environment. */
#include <errno.h>
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

int mixcomm__log_level_from_text(const char* v, int* known) {
  *known = 1;
  if (v == NULL || *v == '\0')
    return MIXCOMM_LOG_OFF;
  if (!strcasecmp(v, "ERROR"))
    return MIXCOMM_LOG_ERROR;
  if (!strcasecmp(v, "WARN"))
    return MIXCOMM_LOG_WARN;
  if (!strcasecmp(v, "INFO"))
    return MIXCOMM_LOG_INFO;
  if (!strcasecmp(v, "DEBUG") || !strcasecmp(v, "TRACE"))
    return MIXCOMM_LOG_DEBUG;
  *known = 0;
  return MIXCOMM_LOG_WARN; /* asked for logging, but not how much */
}

int mixcomm__log_file_name(const char* pattern, int pid, char* out, size_t cap) {
  size_t n = 0;
  if (cap == 0)
    return -1;
  for (const char* p = pattern; *p != '\0'; p++) {
    char pid_text[24];
    const char* piece = p;
    size_t len = 1;
    if (p[0] == '%' && p[1] == 'p') {
      len = (size_t)snprintf(pid_text, sizeof pid_text, "%d", pid);
      piece = pid_text;
      p++;
    }
    if (len >= cap - n) {
      out[0] = '\0';
      return -1;
    }
    memcpy(out + n, piece, len);
    n += len;
  }
  out[n] = '\0';
  return n > 0 ? 0 : -1;
}

static void log_setup(void) {
  int known = 1;
  const char* v = getenv("MIXCOMM_LOG");
  log_level = mixcomm__log_level_from_text(v, &known);
  if (log_level == MIXCOMM_LOG_OFF)
    return;
  log_file = stderr;
  /* Logging is on, so stderr may say why the settings were not taken as given. */
  if (!known)
    fprintf(stderr, "[mixcomm] MIXCOMM_LOG='%.40s' is not ERROR, WARN, INFO or DEBUG; logging "
            "at WARN\n", v);
  const char* path = getenv("MIXCOMM_LOG_FILE");
  if (path != NULL && *path != '\0') {
    char name[1024];
    if (mixcomm__log_file_name(path, (int)getpid(), name, sizeof name) != 0) {
      fprintf(stderr, "[mixcomm] MIXCOMM_LOG_FILE is longer than %zu bytes; logging to stderr\n",
              sizeof name - 1);
      return;
    }
    FILE* f = fopen(name, "a");
    if (f != NULL)
      log_file = f;
    else
      fprintf(stderr, "[mixcomm] cannot open MIXCOMM_LOG_FILE %s: %s; logging to stderr\n", name,
              strerror(errno));
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
