/* SPDX-License-Identifier: Apache-2.0
 * Status strings and the per-thread last-error message. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "core/error.h"
#include "core/log.h"

#define MIXCOMM_ERROR_MAX 1024

static _Thread_local char last_error[MIXCOMM_ERROR_MAX];

const char* mixcomm_status_string(mixcomm_status_t status) {
  switch (status) {
#define MIXCOMM_X_TEXT(name, value, text) \
  case name:                              \
    return text;
    MIXCOMM_STATUS_MAP(MIXCOMM_X_TEXT)
#undef MIXCOMM_X_TEXT
    default:
      return "unknown status";
  }
}

const char* mixcomm_status_name(mixcomm_status_t status) {
  switch (status) {
#define MIXCOMM_X_NAME(name, value, text) \
  case name:                              \
    return #name;
    MIXCOMM_STATUS_MAP(MIXCOMM_X_NAME)
#undef MIXCOMM_X_NAME
    default:
      return "MIXCOMM_UNKNOWN_STATUS";
  }
}

const char* mixcomm_last_error(void) { return last_error; }

int mixcomm_version(void) { return MIXCOMM_VERSION_CODE; }

void mixcomm__error_clear(void) { last_error[0] = '\0'; }

mixcomm_status_t mixcomm__error(mixcomm_status_t status, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_error, sizeof last_error, fmt, ap);
  va_end(ap);
  if (mixcomm__log_enabled(MIXCOMM_LOG_WARN))
    mixcomm__log(MIXCOMM_LOG_WARN, "%s: %s", mixcomm_status_name(status), last_error);
  return status;
}

mixcomm_status_t mixcomm__error_context(mixcomm_status_t status, const char* fmt, ...) {
  char old[MIXCOMM_ERROR_MAX];
  memcpy(old, last_error, sizeof old);
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(last_error, sizeof last_error, fmt, ap);
  va_end(ap);
  if (n >= 0 && (size_t)n + 2 < sizeof last_error) {
    memcpy(last_error + n, ": ", 2);
    size_t room = sizeof last_error - (size_t)n - 2;
    size_t len = strnlen(old, room - 1);
    memcpy(last_error + n + 2, old, len);
    last_error[n + 2 + len] = '\0';
  }
  return status;
}

mixcomm_status_t mixcomm__cuda_error(int cuda_error, const char* what) {
  cudaError_t e = (cudaError_t)cuda_error;
  mixcomm_status_t st =
      e == cudaErrorMemoryAllocation ? MIXCOMM_ERR_OUT_OF_MEMORY : MIXCOMM_ERR_CUDA;
  const char* hint = "";
  if (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver)
    hint = " (is a GPU visible and its driver loaded?)";
  else if (e == cudaErrorMemoryAllocation)
    hint = " (free GPU memory or lower grid_size / max_block_size)";
  return mixcomm__error(st, "%s: %s (%s)%s", what, cudaGetErrorName(e), cudaGetErrorString(e),
                        hint);
}

mixcomm_status_t mixcomm__sys_error(const char* what) {
  int e = errno;
  return mixcomm__error(MIXCOMM_ERR_SYSTEM, "%s: %s (errno %d)", what, strerror(e), e);
}
