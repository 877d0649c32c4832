/* SPDX-License-Identifier: Apache-2.0
 * Status strings and the per-thread last-error message. */
#include <dlfcn.h>
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
  const char* missing = mixcomm__cuda_missing_reason(cuda_error);
  if (missing != NULL)
    return mixcomm__error(st, "%s: %s (%s)", what, missing, cudaGetErrorName(e));
  const char* hint = "";
  if (e == cudaErrorMemoryAllocation)
    hint = " (free GPU memory or lower grid_size / max_block_size)";
  return mixcomm__error(st, "%s: %s (%s)%s", what, cudaGetErrorName(e), cudaGetErrorString(e),
                        hint);
}

const char* mixcomm__cuda_missing_reason(int cuda_error) {
  const cudaError_t e = (cudaError_t)cuda_error;
  if (e == cudaErrorNoDevice)
    return "no CUDA driver or GPU found: the driver sees no GPU (check nvidia-smi and "
           "CUDA_VISIBLE_DEVICES)";
  if (e != cudaErrorInsufficientDriver)
    return NULL;
  /* The runtime says "insufficient driver" both for an old driver and for none at all. */
  void* driver = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
  if (driver == NULL)
    return "no CUDA driver or GPU found: libcuda.so.1 cannot be loaded (install the NVIDIA "
           "driver; mixcomm needs an NVIDIA GPU of compute capability 9.0 or newer)";
  dlclose(driver);
  return "the NVIDIA driver is older than this CUDA 13 build of mixcomm needs: update the driver";
}

mixcomm_status_t mixcomm__sys_error(const char* what) {
  int e = errno;
  return mixcomm__error(MIXCOMM_ERR_SYSTEM, "%s: %s (errno %d)", what, strerror(e), e);
}
