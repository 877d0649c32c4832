/* SPDX-License-Identifier: Apache-2.0
 * Running a built tool from a CPU test: its arguments from a space-separated string, its stdout
 * and stderr captured whole, its exit status (tests/harness/tool_run.c). */
#ifndef MIXCOMM_TEST_TOOL_RUN_H_
#define MIXCOMM_TEST_TOOL_RUN_H_

#include <stdio.h>

typedef struct tool_run {
  int status; /* exit code, or 128 + signal */
  char* out;  /* NUL-terminated, malloc'd */
  char* err;
} tool_run_t;

/* Everything written to f so far (f positioned at its end), NUL-terminated and malloc'd. */
char* tool_run_slurp(FILE* f);

/* Runs path with the space-separated arguments in args (no quoting), outside any launcher's
 * job (RANK and WORLD_SIZE unset in the child); fails the test if it cannot run. */
tool_run_t tool_run(const char* path, const char* args);

#endif
