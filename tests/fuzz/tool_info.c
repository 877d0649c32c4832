/* SPDX-License-Identifier: Apache-2.0
 * mixcomm-info's argument parser and report builder for fuzz_tool_args (tools/mixcomm_info.c is
 * included as it is: its parsers are static). The tool ends a bad command line with exit(2);
 * here exit returns to the target instead (longjmp), so every input runs the tool's own code. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_tools.h"

static jmp_buf exit_jump;
static int exit_code;

static void fuzz_exit(int code) __attribute__((noreturn));
static void fuzz_exit(int code) {
  exit_code = code;
  longjmp(exit_jump, 1);
}

#define exit(code) fuzz_exit(code)
#define main mixcomm_info_main
#include "mixcomm_info.c"
#undef main
#undef exit

int fuzz_info(int argc, char** argv, fuzz_info_result_t* res) {
  static options_t o;
  static report_t r;
  memset(res, 0, sizeof *res);
  if (setjmp(exit_jump) != 0) {
    res->exit_code = exit_code;
    return -1;
  }
  parse_args(argc, argv, &o);
  res->parsed = 1;
  res->world_size = o.world_size;
  res->local_size = o.local_size;
  res->dtype = o.dtype;
  res->grid_size = o.grid_size;
  build_report(&o, &r);
  res->topo = r.topo;
  res->plan = r.plan;
  /* The tool prints every rank; a few are enough here. */
  const int ranks[3] = {0, o.world_size / 2, o.world_size - 1};
  for (int i = 0; i < 3; i++) {
    mixcomm_topology_t t;
    rank_topology(&r, ranks[i], &t);
    res->last_rank = t;
  }
  return 0;
}
