/* SPDX-License-Identifier: Apache-2.0
 * Command-line numbers (args.h). */
#include "common/args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int args_int_option(const args_int_option_t* opts, size_t n, const char* name,
                    const char* value) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(name, opts[i].name) == 0)
      return args_parse_int(value, opts[i].lo, opts[i].hi, opts[i].out) == 0 ? 1 : -1;
  return 0;
}

const char* args_parse_pairs(int argc, char* const* argv, const args_int_option_t* ints,
                             size_t n_ints,
                             int (*other)(const char* name, const char* value, void* ctx),
                             void* ctx) {
  for (int i = 1; i < argc; i += 2) {
    const char* name = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : NULL;
    if (value == NULL)
      return name;
    const int number = args_int_option(ints, n_ints, name, value);
    if (number < 0 || (number == 0 && !other(name, value, ctx)))
      return name;
  }
  return NULL;
}

int args_parse_int_list(const char* s, size_t max_len, int lo, int hi, int* out, int cap, int* n,
                        char* bad, size_t badcap) {
  *n = 0;
  if (badcap > 0)
    bad[0] = '\0';
  const size_t len = strlen(s);
  if (len >= max_len)
    return ARGS_LIST_TOO_LONG;
  char* buf = malloc(len + 1);
  if (buf == NULL)
    return ARGS_LIST_TOO_LONG;
  memcpy(buf, s, len + 1);
  int rc = 0;
  char* save = NULL;
  for (char* tok = strtok_r(buf, ",", &save); tok != NULL && rc == 0;
       tok = strtok_r(NULL, ",", &save)) {
    if (*n == cap || args_parse_int(tok, lo, hi, &out[*n]) != 0) {
      if (badcap > 0)
        snprintf(bad, badcap, "%s", tok);
      rc = ARGS_LIST_BAD_ITEM;
    } else {
      (*n)++;
    }
  }
  free(buf);
  if (rc == 0 && *n == 0)
    rc = ARGS_LIST_EMPTY;
  return rc;
}
