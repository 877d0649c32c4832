/* SPDX-License-Identifier: Apache-2.0
 * Numbers from the environment and other text the library did not write. A setting that is
 * present but cannot be represented (not a whole number, out of range, trailing text) is an
 * error that names the variable, its value and what is allowed; it is never read half-way
 * (atoi-style) or silently replaced by a default. */
#ifndef MIXCOMM_CORE_ENV_H_
#define MIXCOMM_CORE_ENV_H_

#include "mixcomm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The value of environment variable `name`, or NULL when it is unset or empty. */
const char* mixcomm__env_nonempty(const char* name);

/* 1 and *out = the value if s is a whole decimal integer in [lo, hi]: an optional '-' or '+',
 * then digits, nothing else (no spaces, no trailing text, no overflow). 0 otherwise, *out
 * unchanged. */
int mixcomm__parse_ll(const char* s, long long lo, long long hi, long long* out);

/* Integer setting `name` in [lo, hi] (lo >= INT_MIN, hi <= INT_MAX). Unset or empty: returns
 * MIXCOMM_SUCCESS with *out unchanged and *given = 0 (given may be NULL). Otherwise *given =
 * 1 and either *out = the value, or MIXCOMM_ERR_INVALID_ARGUMENT with a message naming the
 * variable, its value (at most 64 bytes of it, control characters replaced) and [lo, hi]. */
mixcomm_status_t mixcomm__env_int(const char* name, int lo, int hi, int* out, int* given);

/* Copy at most cap - 1 bytes of text into out for a message: every byte outside printable
 * ASCII becomes '?', and a cut is marked with "...". Always NUL-terminates (cap >= 4). */
void mixcomm__printable(const char* text, char* out, size_t cap);

/* The kernel-wait timeout of a handler: `configured` when > 0, else MIXCOMM_TIMEOUT_MS (1 ..
 * 2^30 ms), else the default. A present but invalid MIXCOMM_TIMEOUT_MS is an error. */
mixcomm_status_t mixcomm__env_timeout_ms(int configured, int default_ms, int* out);

#ifdef __cplusplus
}
#endif

#endif
