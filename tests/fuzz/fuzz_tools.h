/* SPDX-License-Identifier: Apache-2.0
 * The tools' parsers as fuzz_tool_args calls them (tool_info.c, tool_perf.c): each tool's
 * source is compiled in its own file, since both define the same static names. */
#ifndef MIXCOMM_FUZZ_TOOLS_H_
#define MIXCOMM_FUZZ_TOOLS_H_

#include <stddef.h>

#include "mixcomm.h"

typedef struct fuzz_info_result {
  int parsed, exit_code;
  int world_size, local_size, grid_size;
  mixcomm_dtype_t dtype;
  mixcomm_topology_t topo, last_rank;
  mixcomm_workspace_plan_t plan;
} fuzz_info_result_t;

/* mixcomm-info's parse_args and build_report: 0 when both succeed, -1 when the tool would
 * have exited (res->exit_code; res->parsed says whether the arguments were accepted). */
int fuzz_info(int argc, char** argv, fuzz_info_result_t* res);

/* mixcomm-perf's parse_options: its options (opaque here) and *rc (0 accepted, 1 help, -1
 * refused); fuzz_perf_check: 0 when accepted options are consistent, else -1 and why. */
typedef void fuzz_perf_options_t;
const fuzz_perf_options_t* fuzz_perf(int argc, char** argv, int* rc);
int fuzz_perf_check(const fuzz_perf_options_t* o, char* why, size_t cap);

#endif
