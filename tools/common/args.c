/* SPDX-License-Identifier: Apache-2.0
 * Command-line numbers (args.h). */
#include "common/args.h"

#include <errno.h>
#include <stdlib.h>

int args_parse_ll(const char* s, long long lo, long long hi, long long* out) {
  /* strtoll alone would also take leading white space (" 8", "\n8"). */
  const char* digits = s + (s[0] == '+' || s[0] == '-');
  if (*digits < '0' || *digits > '9')
    return -1;
  char* end = NULL;
  errno = 0;
  const long long v = strtoll(s, &end, 10);
  if (end == NULL || *end != '\0' || errno != 0 || v < lo || v > hi)
    return -1;
  *out = v;
  return 0;
}

int args_parse_int(const char* s, int lo, int hi, int* out) {
  long long v;
  if (args_parse_ll(s, lo, hi, &v) != 0)
    return -1;
  *out = (int)v;
  return 0;
}
