/* SPDX-License-Identifier: Apache-2.0
 * Strict numbers from the environment (env.h). */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core/env.h"
#include "core/error.h"

#define MAX_TIMEOUT_MS (1 << 30)

const char* mixcomm__env_nonempty(const char* name) {
  const char* v = getenv(name);
  return v != NULL && v[0] != '\0' ? v : NULL;
}

int mixcomm__parse_ll(const char* s, long long lo, long long hi, long long* out) {
  if (s == NULL)
    return 0;
  const char* p = s + (s[0] == '-' || s[0] == '+');
  if (*p < '0' || *p > '9') /* strtoll would skip spaces and accept an empty number */
    return 0;
  char* end = NULL;
  errno = 0;
  const long long v = strtoll(s, &end, 10);
  if (errno != 0 || end == NULL || *end != '\0' || v < lo || v > hi)
    return 0;
  *out = v;
  return 1;
}

void mixcomm__printable(const char* text, char* out, size_t cap) {
  if (cap == 0)
    return;
  size_t n = 0;
  const size_t len = text != NULL ? strlen(text) : 0;
  const size_t room = len < cap ? len : (cap >= 4 ? cap - 4 : cap - 1);
  for (; n < room; n++) {
    const unsigned char ch = (unsigned char)text[n];
    out[n] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
  }
  if (len >= cap && cap >= 4) {
    memcpy(out + n, "...", 3);
    n += 3;
  }
  out[n] = '\0';
}

mixcomm_status_t mixcomm__env_int(const char* name, int lo, int hi, int* out, int* given) {
  const char* v = mixcomm__env_nonempty(name);
  if (given != NULL)
    *given = v != NULL;
  if (v == NULL)
    return MIXCOMM_SUCCESS;
  long long x;
  if (!mixcomm__parse_ll(v, lo, hi, &x)) {
    char shown[68];
    mixcomm__printable(v, shown, sizeof shown);
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "%s='%s' is not a whole number in [%d, %d]; fix or unset it", name,
                          shown, lo, hi);
  }
  *out = (int)x;
  return MIXCOMM_SUCCESS;
}

mixcomm_status_t mixcomm__env_timeout_ms(int configured, int default_ms, int* out) {
  if (configured > 0) {
    *out = configured;
    return MIXCOMM_SUCCESS;
  }
  int v = default_ms;
  MIXCOMM_CHECK(mixcomm__env_int("MIXCOMM_TIMEOUT_MS", 1, MAX_TIMEOUT_MS, &v, NULL));
  *out = v;
  return MIXCOMM_SUCCESS;
}
