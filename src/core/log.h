/* SPDX-License-Identifier: Apache-2.0
 * Opt-in logging. Silent unless MIXCOMM_LOG is set to ERROR, WARN, INFO or DEBUG; output goes
 * to stderr, or to MIXCOMM_LOG_FILE (where "%p" becomes the process id). */
#ifndef MIXCOMM_CORE_LOG_H_
#define MIXCOMM_CORE_LOG_H_

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mixcomm__log_level {
  MIXCOMM_LOG_OFF = 0,
  MIXCOMM_LOG_ERROR = 1,
  MIXCOMM_LOG_WARN = 2,
  MIXCOMM_LOG_INFO = 3,
  MIXCOMM_LOG_DEBUG = 4
} mixcomm__log_level_t;

int mixcomm__log_enabled(mixcomm__log_level_t level);
/* The level MIXCOMM_LOG=v asks for (OFF when unset or empty); *known = 0 for a value that is
 * none of the names (that means WARN). */
int mixcomm__log_level_from_text(const char* v, int* known);
/* MIXCOMM_LOG_FILE pattern with each "%p" replaced by pid, into out: 0, or -1 (out = "") when
 * the name would not fit in cap bytes or is empty; a name is never cut short. */
int mixcomm__log_file_name(const char* pattern, int pid, char* out, size_t cap);
void mixcomm__log(mixcomm__log_level_t level, const char* fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define MIXCOMM_INFO(...)                          \
  do {                                             \
    if (mixcomm__log_enabled(MIXCOMM_LOG_INFO))    \
      mixcomm__log(MIXCOMM_LOG_INFO, __VA_ARGS__); \
  } while (0)
#define MIXCOMM_DEBUG(...)                          \
  do {                                              \
    if (mixcomm__log_enabled(MIXCOMM_LOG_DEBUG))    \
      mixcomm__log(MIXCOMM_LOG_DEBUG, __VA_ARGS__); \
  } while (0)
#define MIXCOMM_WARN(...)                          \
  do {                                             \
    if (mixcomm__log_enabled(MIXCOMM_LOG_WARN))    \
      mixcomm__log(MIXCOMM_LOG_WARN, __VA_ARGS__); \
  } while (0)

#ifdef __cplusplus
}
#endif

#endif
