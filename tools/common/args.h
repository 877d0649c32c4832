/* SPDX-License-Identifier: Apache-2.0
 * Command-line numbers for the tools and test programs: a whole decimal integer in a range,
 * nothing else (no trailing text, no overflow). */
#ifndef MIXCOMM_TOOLS_ARGS_H_
#define MIXCOMM_TOOLS_ARGS_H_

#ifdef __cplusplus
extern "C" {
#endif

/* 0 and *out = the value if s is an integer in [lo, hi]; -1 (and *out unchanged) otherwise. */
int args_parse_ll(const char* s, long long lo, long long hi, long long* out);
int args_parse_int(const char* s, int lo, int hi, int* out);

#ifdef __cplusplus
}
#endif

#endif
