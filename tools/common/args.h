/* SPDX-License-Identifier: Apache-2.0
 * Command-line numbers for the tools and test programs: a whole decimal integer in a range,
 * nothing else (no trailing text, no overflow), and comma-separated lists of them. */
#ifndef MIXCOMM_TOOLS_ARGS_H_
#define MIXCOMM_TOOLS_ARGS_H_

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 0 and *out = the value if s is an integer in [lo, hi]; -1 (and *out unchanged) otherwise. */
int args_parse_ll(const char* s, long long lo, long long hi, long long* out);
int args_parse_int(const char* s, int lo, int hi, int* out);

/* An option that takes an integer in [lo, hi] into *out. */
typedef struct args_int_option {
  const char* name;
  int lo, hi;
  int* out;
} args_int_option_t;

/* If name is one of the n options: 1 when value is an integer in its range (stored), -1 when
 * it is not; 0 when name is none of them. */
int args_int_option(const args_int_option_t* opts, size_t n, const char* name, const char* value);

/* The options of a command line of "--name value" pairs (argv[1..argc)): an integer option of
 * ints, else other(name, value, ctx), which returns 1 when it took the pair and 0 when the name
 * is unknown or the value bad. NULL when every pair was taken; otherwise the first argument that
 * was not (an unknown name, a bad value, or a name without a value). */
const char* args_parse_pairs(int argc, char* const* argv, const args_int_option_t* ints,
                             size_t n_ints,
                             int (*other)(const char* name, const char* value, void* ctx),
                             void* ctx);

/* What args_parse_int_list found wrong. */
enum { ARGS_LIST_TOO_LONG = -1, ARGS_LIST_BAD_ITEM = -2, ARGS_LIST_EMPTY = -3 };

/* A comma-separated list of integers in [lo, hi] (empty items are skipped), at most `cap` of
 * them, in a string of fewer than max_len characters. 0 with out[0..*n) on success; otherwise
 * ARGS_LIST_TOO_LONG, ARGS_LIST_BAD_ITEM (an item that is not such an integer, or the first
 * one past cap; its text goes to bad, cut to badcap) or ARGS_LIST_EMPTY. */
int args_parse_int_list(const char* s, size_t max_len, int lo, int hi, int* out, int cap, int* n,
                        char* bad, size_t badcap);

#ifdef __cplusplus
}
#endif

#endif
