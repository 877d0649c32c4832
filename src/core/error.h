/* SPDX-License-Identifier: Apache-2.0
 * Internal error reporting: every failure becomes a status plus a message kept per thread
 * (mixcomm_last_error). Helpers here never print; logging is separate (log.h). */
#ifndef MIXCOMM_CORE_ERROR_H_
#define MIXCOMM_CORE_ERROR_H_

#include "mixcomm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Record status with a printf-style message as this thread's last error and return status.
 * The message is also logged at level WARN when logging is on. */
mixcomm_status_t mixcomm__error(mixcomm_status_t status, const char* fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prefix the current last error with more context ("creating handler: <old message>"). */
mixcomm_status_t mixcomm__error_context(mixcomm_status_t status, const char* fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Clear this thread's last error (start of a public call that succeeded). */
void mixcomm__error_clear(void);

/* CUDA runtime failure: "<what>: cudaErrorX (text)". Returns MIXCOMM_ERR_CUDA (or OOM). */
mixcomm_status_t mixcomm__cuda_error(int cuda_error, const char* what);

/* For the CUDA errors that mean "no usable driver or GPU" (cudaErrorNoDevice,
 * cudaErrorInsufficientDriver), a sentence telling which and what to do; NULL for others. */
const char* mixcomm__cuda_missing_reason(int cuda_error);

/* System call failure using errno: "<what>: strerror(errno)". Returns MIXCOMM_ERR_SYSTEM. */
mixcomm_status_t mixcomm__sys_error(const char* what);

#define MIXCOMM_CHECK(expr)                          \
  do {                                               \
    mixcomm_status_t mixcomm_check_st_ = (expr);     \
    if (mixcomm_check_st_ != MIXCOMM_SUCCESS)        \
      return mixcomm_check_st_;                      \
  } while (0)

#define MIXCOMM_CHECK_GOTO(expr, st, label) \
  do {                                      \
    (st) = (expr);                          \
    if ((st) != MIXCOMM_SUCCESS)            \
      goto label;                           \
  } while (0)

#define MIXCOMM_CUDA_CHECK(call, what)                        \
  do {                                                        \
    cudaError_t mixcomm_cuda_e_ = (call);                     \
    if (mixcomm_cuda_e_ != cudaSuccess)                       \
      return mixcomm__cuda_error((int)mixcomm_cuda_e_, what); \
  } while (0)

/* Run call (a CUDA runtime or driver call); on a result other than ok, st = convert(result,
 * what) and jump to label. The one shape behind MIXCOMM_CUDA_CHECK_GOTO and
 * MIXCOMM_CU_CHECK_GOTO (transport/cuda_driver.h). */
#define MIXCOMM__CALL_CHECK_GOTO(type, ok, convert, call, what, st, label) \
  do {                                                                    \
    type mixcomm_call_r_ = (call);                                        \
    if (mixcomm_call_r_ != (ok)) {                                        \
      (st) = convert(mixcomm_call_r_, what);                              \
      goto label;                                                         \
    }                                                                     \
  } while (0)

#define MIXCOMM_CUDA_CHECK_GOTO(call, what, st, label) \
  MIXCOMM__CALL_CHECK_GOTO(cudaError_t, cudaSuccess, mixcomm__cuda_error, call, what, st, label)

#ifdef __cplusplus
}
#endif

#endif
