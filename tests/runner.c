/* SPDX-License-Identifier: Apache-2.0
 * Test runner: each test runs in its own child process (and process group) with a time
 * limit, so a crash or a hang fails that test alone. Ends with "N passed, N failed".
 *   mixcomm-tests [--list] [--filter SUBSTRING | --test NAME] [--timeout-scale X] [-j N]
 * --test runs exactly the named test (ctest runs each test this way); an unknown name fails.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test_list.h"

#define X_DECLARE(name, timeout_s) int test_##name(void);
TEST_LIST(X_DECLARE)
#undef X_DECLARE

typedef struct {
  const char* name;
  int (*fn)(void);
  int timeout_s;
} test_entry;

static const test_entry tests[] = {
#define X_ENTRY(name, timeout_s) {#name, test_##name, timeout_s},
    TEST_LIST(X_ENTRY)
#undef X_ENTRY
};
#define NUM_TESTS ((int)(sizeof tests / sizeof tests[0]))

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct {
  pid_t pid;
  int index;
  double start;
} running_t;

static void start_test(running_t* r, int index) {
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    int rc = tests[index].fn();
    fflush(stdout);
    fflush(stderr);
    _exit(rc == 0 ? 0 : 1);
  }
  if (pid > 0)
    setpgid(pid, pid);
  r->pid = pid;
  r->index = index;
  r->start = now_s();
}

int main(int argc, char** argv) {
  const char* filter = NULL;
  const char* exact = NULL;
  double scale = 1.0;
  int jobs = 1;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--list")) {
      for (int t = 0; t < NUM_TESTS; t++)
        printf("%s\n", tests[t].name);
      return 0;
    } else if (!strcmp(argv[i], "--filter") && i + 1 < argc) {
      filter = argv[++i];
    } else if (!strcmp(argv[i], "--test") && i + 1 < argc) {
      exact = argv[++i];
    } else if (!strcmp(argv[i], "--timeout-scale") && i + 1 < argc) {
      scale = atof(argv[++i]);
    } else if (!strcmp(argv[i], "-j") && i + 1 < argc) {
      jobs = atoi(argv[++i]);
      if (jobs < 1)
        jobs = 1;
    } else {
      fprintf(stderr,
              "usage: %s [--list] [--filter SUBSTRING | --test NAME] [--timeout-scale X] [-j N]\n",
              argv[0]);
      return 2;
    }
  }
  if (exact != NULL) {
    int known = 0;
    for (int t = 0; t < NUM_TESTS; t++)
      known |= !strcmp(tests[t].name, exact);
    if (!known) {
      fprintf(stderr, "%s: no test named '%s' (--list shows them)\n", argv[0], exact);
      return 2;
    }
  }
  const char* env_scale = getenv("MIXCOMM_TEST_TIMEOUT_SCALE");
  if (env_scale != NULL && atof(env_scale) > 0)
    scale = atof(env_scale);

  int passed = 0, failed = 0, next = 0;
  running_t run[64];
  int nrun = 0;
  if (jobs > 64)
    jobs = 64;
  for (;;) {
    while (nrun < jobs && next < NUM_TESTS) {
      if ((filter != NULL && strstr(tests[next].name, filter) == NULL) ||
          (exact != NULL && strcmp(tests[next].name, exact) != 0)) {
        next++;
        continue;
      }
      start_test(&run[nrun], next++);
      if (run[nrun].pid < 0) {
        printf("FAIL %s (fork failed: %s)\n", tests[run[nrun].index].name, strerror(errno));
        failed++;
        continue;
      }
      nrun++;
    }
    if (nrun == 0)
      break;
    for (int k = 0; k < nrun; k++) {
      int st;
      const test_entry* t = &tests[run[k].index];
      pid_t p = waitpid(run[k].pid, &st, WNOHANG);
      double elapsed = now_s() - run[k].start;
      int finished = 0;
      if (p == run[k].pid) {
        finished = 1;
        /* Kill anything the test left behind in its process group (forked ranks). */
        kill(-run[k].pid, SIGKILL);
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
          printf("ok   %s (%.2f s)\n", t->name, elapsed);
          passed++;
        } else if (WIFEXITED(st)) {
          printf("FAIL %s (exit %d, %.2f s)\n", t->name, WEXITSTATUS(st), elapsed);
          failed++;
        } else {
          printf("FAIL %s (signal %d: %s, %.2f s)\n", t->name, WTERMSIG(st),
                 strsignal(WTERMSIG(st)), elapsed);
          failed++;
        }
      } else if (elapsed > t->timeout_s * scale) {
        finished = 1;
        kill(-run[k].pid, SIGKILL);
        waitpid(run[k].pid, &st, 0);
        printf("FAIL %s (timed out after %.0f s)\n", t->name, t->timeout_s * scale);
        failed++;
      }
      if (finished) {
        fflush(stdout);
        run[k] = run[--nrun];
        k--;
      }
    }
    usleep(2000);
  }
  printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
