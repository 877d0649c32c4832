/* SPDX-License-Identifier: Apache-2.0
 * Test assertions. A failing assertion prints both sides with file:line and fails the test
 * (each test runs in its own child process, see runner.c). */
#ifndef MIXCOMM_TEST_TASK_H_
#define MIXCOMM_TEST_TASK_H_

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mixcomm.h"

#define TEST_IMPL(name) int test_##name(void)

#define FAIL(...)                                                    \
  do {                                                               \
    fprintf(stderr, "  FAIL %s:%d: ", __FILE__, __LINE__);           \
    fprintf(stderr, __VA_ARGS__);                                    \
    fprintf(stderr, "\n");                                           \
    fflush(stderr);                                                  \
    exit(1);                                                         \
  } while (0)

#define ASSERT(expr)                            \
  do {                                          \
    if (!(expr))                                \
      FAIL("assertion failed: %s", #expr);      \
  } while (0)

#define ASSERT_EQ(a, b)                                                                     \
  do {                                                                                      \
    long long a_ = (long long)(a), b_ = (long long)(b);                                     \
    if (a_ != b_)                                                                           \
      FAIL("%s == %s: %lld != %lld", #a, #b, a_, b_);                                       \
  } while (0)

#define ASSERT_NE(a, b)                                                                     \
  do {                                                                                      \
    long long a_ = (long long)(a), b_ = (long long)(b);                                     \
    if (a_ == b_)                                                                           \
      FAIL("%s != %s: both %lld", #a, #b, a_);                                              \
  } while (0)

#define ASSERT_STR_EQ(a, b)                                                                 \
  do {                                                                                      \
    const char *a_ = (a), *b_ = (b);                                                        \
    if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0)                                    \
      FAIL("%s == %s: \"%s\" != \"%s\"", #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)");   \
  } while (0)

#define ASSERT_CONTAINS(hay, needle)                                                        \
  do {                                                                                      \
    const char *h_ = (hay), *n_ = (needle);                                                 \
    if (h_ == NULL || strstr(h_, n_) == NULL)                                               \
      FAIL("%s should contain \"%s\" but is \"%s\"", #hay, n_, h_ ? h_ : "(null)");         \
  } while (0)

/* A mixcomm call that must succeed: on failure print the status and last error. */
#define ASSERT_OK(call)                                                                     \
  do {                                                                                      \
    mixcomm_status_t st_ = (call);                                                          \
    if (st_ != MIXCOMM_SUCCESS)                                                             \
      FAIL("%s returned %s: %s", #call, mixcomm_status_name(st_), mixcomm_last_error());    \
  } while (0)

/* A mixcomm call that must fail with `status` and a message containing `needle`. */
#define ASSERT_ERR(call, status, needle)                                                    \
  do {                                                                                      \
    mixcomm_status_t st_ = (call);                                                          \
    if (st_ != (status))                                                                    \
      FAIL("%s returned %s, expected %s (message: %s)", #call, mixcomm_status_name(st_),    \
           mixcomm_status_name(status), mixcomm_last_error());                              \
    ASSERT_CONTAINS(mixcomm_last_error(), needle);                                          \
  } while (0)

#endif
