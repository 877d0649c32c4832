/* SPDX-License-Identifier: Apache-2.0
 * Forked ranks for tests (see ranks.h), on the process handling the tools share
 * (tools/common/spawn.h). Children never return into the caller. */
#include "harness/ranks.h"

#include <stdio.h>
#include <sys/wait.h>

#include "common/spawn.h"

typedef struct test_ranks {
  rank_fn fn;
  void* arg;
  int n, timeout_ms;
  int* statuses;
} test_ranks_t;

static int test_rank_main(int index, void* arg) {
  const test_ranks_t* t = arg;
  const int rc = t->fn(index, t->n, t->arg);
  return rc == 0 ? 0 : (rc > 0 && rc < 128 ? rc : 1);
}

static void test_rank_end(int index, int wait_status, void* arg) {
  const test_ranks_t* t = arg;
  int code = -1;
  if (wait_status == -1)
    fprintf(stderr, "  rank %d timed out after %d ms; killing it\n", index, t->timeout_ms);
  else
    code = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : 128 + WTERMSIG(wait_status);
  if (t->statuses)
    t->statuses[index] = code;
}

int run_ranks(int n, rank_fn fn, void* arg, int timeout_ms, int* statuses) {
  if (n > 256)
    return n;
  test_ranks_t t = {fn, arg, n, timeout_ms, statuses};
  const spawn_children_t children = {n, test_rank_main, &t, timeout_ms, 0, test_rank_end, "fork"};
  return spawn_children(&children);
}

int free_tcp_port(void) { return spawn_free_port(); }
