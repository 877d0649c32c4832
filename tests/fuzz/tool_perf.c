/* SPDX-License-Identifier: Apache-2.0
 * mixcomm-perf's option parser for fuzz_tool_args: tools/perf/options.c, the tool's whole
 * command line (no CUDA calls), compiled into the target as it is. */
#include <getopt.h>
#include <stdio.h>

#include "fuzz_tools.h"
#include "perf/options.h"

const fuzz_perf_options_t* fuzz_perf(int argc, char** argv, int* rc) {
  static perf_options_t o;
  /* glibc's getopt keeps a position inside the previous command line; optind = 0 makes it
   * start afresh (the tool parses one command line per process, this target millions). */
  static char* none[] = {"fuzz", NULL};
  optind = 0;
  getopt_long(1, none, "", NULL, NULL);
  *rc = perf_parse_options(argc, argv, &o);
  return &o;
}

int fuzz_perf_check(const fuzz_perf_options_t* po, char* why, size_t cap) {
  const perf_options_t* o = po;
  if (o->ranks < 1 || o->ranks > 1024 || o->local_size < 1 || o->ranks % o->local_size != 0)
    return snprintf(why, cap, "ranks %d local %d", o->ranks, o->local_size), -1;
  if (o->n_sizes < 1 || o->n_sizes > PERF_MAX_SIZES)
    return snprintf(why, cap, "%d sizes", o->n_sizes), -1;
  const size_t esz = mixcomm_dtype_size(o->dtype);
  if (esz == 0)
    return snprintf(why, cap, "dtype %d", (int)o->dtype), -1;
  for (int i = 0; i < o->n_sizes; i++) {
    const perf_size_t* c = &o->sizes[i];
    if (c->bytes < 16 || c->bytes > o->max_bytes || c->rows < 1 || c->row_elems < 1 ||
        (size_t)c->rows * (size_t)c->row_elems * esz != c->bytes ||
        (i > 0 && c->bytes <= o->sizes[i - 1].bytes))
      return snprintf(why, cap, "size %d: %zu bytes, %lld rows of %lld", i, c->bytes,
                      (long long)c->rows, (long long)c->row_elems),
             -1;
  }
  if (o->n_ops < 0 || o->n_ops > PERF_MAX_LIST || o->n_modes < 0 || o->n_modes > PERF_MAX_LIST)
    return snprintf(why, cap, "%d ops, %d modes", o->n_ops, o->n_modes), -1;
  for (int i = 0; i < o->n_ops; i++)
    if (mixcomm_op_name(o->ops[i]) == NULL)
      return snprintf(why, cap, "op %d", (int)o->ops[i]), -1;
  for (int i = 0; i < o->n_modes; i++)
    if (mixcomm_mode_name(o->modes[i]) == NULL)
      return snprintf(why, cap, "mode %d", (int)o->modes[i]), -1;
  return 0;
}
