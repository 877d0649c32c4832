/* SPDX-License-Identifier: Apache-2.0
 * Driver entry points through the runtime (see cuda_driver.h). */
#include <pthread.h>
#include <stddef.h>

#include <cuda_runtime_api.h>

#include "core/error.h"
#include "transport/cuda_driver.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static mixcomm__driver_t table;
static const char* missing;
static cudaError_t missing_err;

static void resolve(void) {
#define MIXCOMM_X_RESOLVE(name, ver)                                                          \
  if (missing == NULL) {                                                                      \
    enum cudaDriverEntryPointQueryResult q;                                                   \
    void* fn = NULL;                                                                          \
    cudaError_t e = cudaGetDriverEntryPointByVersion(#name, &fn, ver, cudaEnableDefault, &q); \
    if (e != cudaSuccess || q != cudaDriverEntryPointSuccess || fn == NULL) {                 \
      missing = #name;                                                                        \
      missing_err = e;                                                                        \
    } else {                                                                                  \
      table.name = (PFN_##name##_v##ver)fn;                                                   \
    }                                                                                         \
  }
  MIXCOMM_DRIVER_FUNCTIONS(MIXCOMM_X_RESOLVE)
#undef MIXCOMM_X_RESOLVE
}

mixcomm_status_t mixcomm__driver(const mixcomm__driver_t** out) {
  pthread_once(&once, resolve);
  if (missing != NULL) {
    if (missing_err != cudaSuccess)
      return mixcomm__cuda_error((int)missing_err,
                                 "resolving the CUDA driver (is the NVIDIA driver installed?)");
    return mixcomm__error(MIXCOMM_ERR_CUDA,
                          "the CUDA driver has no entry point %s: update the NVIDIA driver",
                          missing);
  }
  *out = &table;
  return MIXCOMM_SUCCESS;
}

mixcomm_status_t mixcomm__cu_error(CUresult r, const char* what) {
  const char *name = "CUDA_ERROR_UNKNOWN", *text = "unknown driver error";
  if (table.cuGetErrorName != NULL)
    table.cuGetErrorName(r, &name);
  if (table.cuGetErrorString != NULL)
    table.cuGetErrorString(r, &text);
  return mixcomm__error(r == CUDA_ERROR_OUT_OF_MEMORY ? MIXCOMM_ERR_OUT_OF_MEMORY : MIXCOMM_ERR_CUDA,
                        "%s: %s (%s)", what, name, text);
}
