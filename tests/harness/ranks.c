/* SPDX-License-Identifier: Apache-2.0
 * Forked ranks for tests (see ranks.h). Children never return into the caller. */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness/ranks.h"

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int run_ranks(int n, rank_fn fn, void* arg, int timeout_ms, int* statuses) {
  pid_t pids[256];
  int done[256] = {0};
  if (n > 256)
    return n;
  fflush(stdout);
  fflush(stderr);
  for (int r = 0; r < n; r++) {
    pids[r] = fork();
    if (pids[r] < 0) {
      perror("fork");
      for (int k = 0; k < r; k++)
        kill(pids[k], SIGKILL);
      return n;
    }
    if (pids[r] == 0) {
      int rc = fn(r, n, arg);
      fflush(stdout);
      fflush(stderr);
      _exit(rc == 0 ? 0 : (rc > 0 && rc < 128 ? rc : 1));
    }
  }
  int failed = 0, remaining = n;
  long long deadline = now_ms() + timeout_ms;
  while (remaining > 0) {
    int st;
    pid_t p = waitpid(-1, &st, WNOHANG);
    if (p > 0) {
      for (int r = 0; r < n; r++) {
        if (pids[r] == p && !done[r]) {
          done[r] = 1;
          remaining--;
          int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
          if (statuses)
            statuses[r] = code;
          if (code != 0)
            failed++;
        }
      }
      continue;
    }
    if (p < 0 && errno != EINTR && errno != ECHILD)
      break;
    if (now_ms() > deadline) {
      for (int r = 0; r < n; r++) {
        if (!done[r]) {
          fprintf(stderr, "  rank %d timed out after %d ms; killing it\n", r, timeout_ms);
          kill(pids[r], SIGKILL);
          waitpid(pids[r], NULL, 0);
          done[r] = 1;
          if (statuses)
            statuses[r] = -1;
          failed++;
        }
      }
      break;
    }
    usleep(2000);
  }
  return failed;
}

int free_tcp_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return -1;
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  int port = -1;
  if (bind(fd, (struct sockaddr*)&a, sizeof a) == 0 &&
      getsockname(fd, (struct sockaddr*)&a, &len) == 0)
    port = ntohs(a.sin_port);
  close(fd);
  return port;
}
