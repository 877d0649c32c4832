/* SPDX-License-Identifier: Apache-2.0
 * Tests of the pieces the tools share (tools/common): the integer lists of their command lines
 * (args.h) and the forked children that spawn_ranks and the CPU tests' run_ranks wait for
 * (spawn.h): exit statuses, signals, the time limit, and ending every rank when one fails. */
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/args.h"
#include "common/spawn.h"
#include "harness/ranks.h"
#include "harness/task.h"

static double seconds_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

TEST_IMPL(tools_args_int_list) {
  /* Lists of at most 4 integers in [-5, 20] in fewer than max_len characters. */
  static const struct {
    const char* s;
    size_t max_len;
    int rc, n;
    const char* bad; /* the item reported, cut to 8 bytes with the NUL */
  } cases[] = {
      {"3,,17,-2,", 64, 0, 3, ""},  /* empty items are skipped */
      {"1,21", 64, ARGS_LIST_BAD_ITEM, 1, "21"},
      {"1, 2", 64, ARGS_LIST_BAD_ITEM, 1, " 2"},
      {"1,2,3,4,5", 64, ARGS_LIST_BAD_ITEM, 4, "5"}, /* past the cap */
      {"1,12345678901", 64, ARGS_LIST_BAD_ITEM, 1, "1234567"},
      {",,", 64, ARGS_LIST_EMPTY, 0, ""},
      {"", 64, ARGS_LIST_EMPTY, 0, ""},
      {"1,2,3", 5, ARGS_LIST_TOO_LONG, 0, ""},
      {"1,2,3", 6, 0, 3, ""},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    int v[4] = {-7, -7, -7, -7}, n = -1;
    char bad[8] = "?";
    const int rc = args_parse_int_list(cases[k].s, cases[k].max_len, -5, 20, v, 4, &n, bad,
                                       sizeof bad);
    if (rc != cases[k].rc || n != cases[k].n || strcmp(bad, cases[k].bad) != 0)
      FAIL("'%s': %d, %d items, bad '%s'; expected %d, %d, '%s'", cases[k].s, rc, n, bad,
           cases[k].rc, cases[k].n, cases[k].bad);
    if (rc == 0 && v[3] != -7)
      FAIL("'%s': wrote past its items", cases[k].s);
  }
  int v[4], n = 0;
  ASSERT_EQ(args_parse_int_list("3,,17,-2,", 64, -5, 20, v, 4, &n, NULL, 0), 0);
  ASSERT(n == 3 && v[0] == 3 && v[1] == 17 && v[2] == -2);
  ASSERT_EQ(args_parse_int_list("x", 6, -5, 20, v, 4, &n, NULL, 0), ARGS_LIST_BAD_ITEM);
  return 0;
}

/* args_parse_pairs hands the names that are not integer options to this: --name takes "ok". */
static int other_pair(const char* name, const char* value, void* ctx) {
  ++*(int*)ctx;
  return strcmp(name, "--name") == 0 && strcmp(value, "ok") == 0;
}

TEST_IMPL(tools_args_pairs) {
  int a = -1, b = -1, others = 0;
  const args_int_option_t ints[] = {{"--a", 0, 9, &a}, {"--b", -3, 3, &b}};
  char* good[] = {"tool", "--a", "7", "--name", "ok", "--b", "-3", NULL};
  ASSERT(args_parse_pairs(7, good, ints, 2, other_pair, &others) == NULL);
  ASSERT(a == 7 && b == -3 && others == 1);
  static const struct {
    int argc;
    char* argv[6];
    const char* stop; /* the argument reported */
  } bad[] = {
      {3, {"tool", "--a", "10"}, "--a"},         /* out of range */
      {3, {"tool", "--a", "x"}, "--a"},          /* not a number */
      {4, {"tool", "--a", "1", "--b"}, "--b"},   /* no value */
      {3, {"tool", "--name", "no"}, "--name"},   /* refused by other */
      {5, {"tool", "--b", "1", "--c", "1"}, "--c"}, /* unknown */
  };
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    const char* stop = args_parse_pairs(bad[k].argc, bad[k].argv, ints, 2, other_pair, &others);
    if (stop == NULL || strcmp(stop, bad[k].stop) != 0)
      FAIL("case %zu: stopped at '%s', expected '%s'", k, stop ? stop : "(none)", bad[k].stop);
  }
  return 0;
}

/* Child i: exits with status i (child 3 kills itself). */
static int exit_with_index(int index, void* arg) {
  (void)arg;
  if (index == 3)
    raise(SIGKILL);
  return index;
}

/* Runs in the parent: arg is the parent's array. */
static void record_end(int index, int wait_status, void* arg) {
  ((int*)arg)[index] = wait_status;
}

TEST_IMPL(tools_spawn_children) {
  int ends[4] = {-2, -2, -2, -2};
  const spawn_children_t c = {4, exit_with_index, ends, 20000, 0, record_end, "fork"};
  ASSERT_EQ(spawn_children(&c), 3);
  ASSERT(WIFEXITED(ends[0]) && WEXITSTATUS(ends[0]) == 0);
  ASSERT(WIFEXITED(ends[1]) && WEXITSTATUS(ends[1]) == 1);
  ASSERT(WIFEXITED(ends[2]) && WEXITSTATUS(ends[2]) == 2);
  ASSERT(WIFSIGNALED(ends[3]) && WTERMSIG(ends[3]) == SIGKILL);
  return 0;
}

/* run_ranks (tests/harness/ranks.c) on the same piece. */
static int rank_outcomes(int rank, int n, void* arg) {
  (void)n;
  (void)arg;
  static const int rc[4] = {0, 5, 200, 0};
  if (rank == 3)
    raise(SIGTERM);
  return rc[rank];
}

static int rank_sleeps(int rank, int n, void* arg) {
  (void)rank;
  (void)n;
  (void)arg;
  sleep(30);
  return 0;
}

TEST_IMPL(tools_run_ranks_statuses) {
  int st[4] = {-2, -2, -2, -2};
  ASSERT_EQ(run_ranks(4, rank_outcomes, NULL, 20000, st), 3);
  ASSERT(st[0] == 0 && st[1] == 5 && st[2] == 1 && st[3] == 128 + SIGTERM);
  /* The time limit: every rank still running is killed and reported as -1. */
  const double t0 = seconds_now();
  int st2[2] = {-2, -2};
  ASSERT_EQ(run_ranks(2, rank_sleeps, NULL, 300, st2), 2);
  ASSERT(st2[0] == -1 && st2[1] == -1);
  ASSERT(seconds_now() - t0 < 10.0);
  return 0;
}

/* A forked rank checks what spawn_ranks told it; rank `fail_rank` fails at once, the others
 * then sleep (`sleepers`) until they are ended. */
typedef struct spawn_probe {
  int world, local, fail_rank, sleepers;
} spawn_probe_t;

static int probe_rank(const spawn_rank_t* r, void* arg) {
  const spawn_probe_t* p = arg;
  if (r->world_size != p->world || r->local_size != p->local || r->rank < 0 ||
      r->rank >= p->world || r->local_rank != r->rank % p->local || r->host_rank != r->rank ||
      r->tcp.port <= 0 || strcmp(r->tcp.addr, "127.0.0.1") != 0) {
    fprintf(stderr, "  rank %d: wrong place in the job\n", r->rank);
    return 1;
  }
  if (r->rank == p->fail_rank)
    return 1;
  if (p->sleepers)
    sleep(30);
  return 0;
}

TEST_IMPL(tools_spawn_ranks) {
  unsetenv("RANK");
  unsetenv("WORLD_SIZE");
  spawn_probe_t ok = {6, 3, -1, 0};
  ASSERT_EQ(spawn_ranks(6, 3, 60, probe_rank, &ok), 0);
  /* One rank fails: the others, sleeping, are ended at once (SIGTERM), not at the limit. */
  spawn_probe_t one_fails = {4, 4, 1, 1};
  double t0 = seconds_now();
  ASSERT_EQ(spawn_ranks(4, 4, 60, probe_rank, &one_fails), 4);
  ASSERT(seconds_now() - t0 < 20.0);
  /* Nobody fails but nobody ends: the time limit kills them all. */
  spawn_probe_t stuck = {3, 3, -1, 1};
  t0 = seconds_now();
  ASSERT_EQ(spawn_ranks(3, 3, 1, probe_rank, &stuck), 3);
  const double took = seconds_now() - t0;
  ASSERT(took > 0.9 && took < 20.0);
  return 0;
}

static int exit_zero(int index, void* arg) {
  (void)index;
  (void)arg;
  return 0;
}

TEST_IMPL(tools_spawn_children_unseen) {
  /* With SIGCHLD ignored the children are reaped by the kernel and never seen ending: they must
   * count as failed, not as passed (nor wait for the time limit). */
  signal(SIGCHLD, SIG_IGN);
  const spawn_children_t c = {3, exit_zero, NULL, 20000, 0, NULL, "fork"};
  const double t0 = seconds_now();
  ASSERT_EQ(spawn_children(&c), 3);
  ASSERT(seconds_now() - t0 < 10.0);
  signal(SIGCHLD, SIG_DFL);
  return 0;
}
