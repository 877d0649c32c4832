/* SPDX-License-Identifier: Apache-2.0
 * Rank spawning for tools and GPU tests (see spawn.h). The parent never touches CUDA; it waits
 * for its children, kills them all as soon as one fails or the time limit passes (so one dead
 * rank never leaves the others spinning), and reports. */
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/spawn.h"

/* A launcher's integer setting in [lo, hi], or fallback when unset or empty; -1 after
 * reporting a value that is not one. */
static int env_int(const char* name, int fallback, int lo, int hi, int* out) {
  const char* v = getenv(name);
  *out = fallback;
  if (v == NULL || v[0] == '\0')
    return 0;
  char* end = NULL;
  errno = 0;
  const long x = strtol(v, &end, 10);
  if (errno == 0 && end != v && *end == '\0' && !isspace((unsigned char)v[0]) && x >= lo &&
      x <= hi) {
    *out = (int)x;
    return 0;
  }
  fprintf(stderr, "spawn: %s='%.64s' in the environment is not an integer in [%d, %d]\n", name,
          v, lo, hi);
  return -1;
}

int spawn_under_launcher(void) { return getenv("RANK") != NULL && getenv("WORLD_SIZE") != NULL; }

void spawn_loopback_address(struct sockaddr_in* a, int port) {
  memset(a, 0, sizeof *a);
  a->sin_family = AF_INET;
  a->sin_port = htons((uint16_t)port);
  a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

int spawn_free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return -1;
  struct sockaddr_in a;
  spawn_loopback_address(&a, 0);
  socklen_t len = sizeof a;
  int port = -1;
  if (bind(fd, (struct sockaddr*)&a, sizeof a) == 0 &&
      getsockname(fd, (struct sockaddr*)&a, &len) == 0)
    port = ntohs(a.sin_port);
  close(fd);
  return port;
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int spawn_children(const spawn_children_t* c) {
  const int n = c->n;
  pid_t* pids = calloc((size_t)(n > 0 ? n : 1), sizeof *pids);
  if (pids == NULL)
    return n;
  fflush(stdout);
  fflush(stderr);
  for (int i = 0; i < n; i++) {
    pid_t p = fork();
    if (p < 0) {
      perror(c->fork_what);
      for (int k = 0; k < i; k++)
        kill(pids[k], SIGKILL);
      free(pids);
      return n;
    }
    if (p == 0) {
      const int code = c->child(i, c->arg);
      fflush(stdout);
      fflush(stderr);
      _exit(code);
    }
    pids[i] = p;
  }
  /* pids[i] = 0 once child i is reaped. */
  int failed = 0, remaining = n;
  const long long deadline = now_ms() + c->timeout_ms;
  while (remaining > 0) {
    int st;
    pid_t p = waitpid(-1, &st, WNOHANG);
    if (p > 0) {
      for (int i = 0; i < n; i++) {
        if (pids[i] != p)
          continue;
        pids[i] = 0;
        remaining--;
        if (c->on_end != NULL)
          c->on_end(i, st, c->arg);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
          failed++;
          /* One failed child: the others may wait for it until their timeouts; end them now. */
          for (int k = 0; c->end_all_on_failure && k < n; k++)
            if (pids[k] > 0)
              kill(pids[k], SIGTERM);
        }
      }
      continue;
    }
    if (p < 0 && errno != EINTR) {
      /* Nothing left to wait for (the children were reaped elsewhere): those not seen ending
       * cannot count as passed. */
      failed += remaining;
      break;
    }
    if (now_ms() > deadline) {
      for (int k = 0; k < n; k++) {
        if (pids[k] > 0) {
          if (c->on_end != NULL)
            c->on_end(k, -1, c->arg);
          kill(pids[k], SIGKILL);
          waitpid(pids[k], NULL, 0);
          pids[k] = 0;
          failed++;
          remaining--;
        }
      }
      break;
    }
    usleep(2000);
  }
  free(pids);
  return failed;
}

/* A forked rank: its place in the job, then the tool's function. */
typedef struct forked_rank {
  spawn_rank_t r;
  spawn_fn fn;
  void* arg;
  int timeout_s;
} forked_rank_t;

static int forked_rank_main(int index, void* arg) {
  forked_rank_t* f = arg;
  f->r.rank = index;
  f->r.local_rank = index % f->r.local_size;
  f->r.host_rank = index;
  return f->fn(&f->r, f->arg) == 0 ? 0 : 1;
}

static void forked_rank_end(int index, int wait_status, void* arg) {
  const forked_rank_t* f = arg;
  if (wait_status == -1)
    fprintf(stderr, "spawn: rank %d still running after %d s; killing it\n", index, f->timeout_s);
  else if (WIFSIGNALED(wait_status))
    fprintf(stderr, "spawn: rank %d killed by signal %d\n", index, WTERMSIG(wait_status));
}

int spawn_ranks(int world_size, int local_size, int timeout_s, spawn_fn fn, void* arg) {
  forked_rank_t f;
  memset(&f, 0, sizeof f);
  spawn_rank_t* r = &f.r;
  if (spawn_under_launcher()) {
    if (env_int("WORLD_SIZE", 1, 1, 1 << 20, &r->world_size) != 0 ||
        env_int("RANK", 0, 0, r->world_size - 1, &r->rank) != 0 ||
        env_int("LOCAL_WORLD_SIZE", local_size, 1, r->world_size, &r->local_size) != 0 ||
        env_int("LOCAL_RANK", r->rank % local_size, 0, r->local_size - 1, &r->local_rank) != 0)
      return 1;
    const char* lr = getenv("LOCAL_RANK");
    r->host_rank = lr != NULL && lr[0] != '\0' ? r->local_rank : r->rank;
    return fn(r, arg); /* mixcomm reads MASTER_ADDR / MASTER_PORT itself */
  }
  if (world_size < 1 || world_size > 1024 || local_size < 1 || world_size % local_size) {
    fprintf(stderr, "spawn: bad world_size %d / local_size %d\n", world_size, local_size);
    return world_size;
  }
  const int port = spawn_free_port();
  if (port < 0) {
    perror("spawn: finding a free port");
    return world_size;
  }
  snprintf(r->tcp.token, sizeof r->tcp.token, "spawn-%d-%d", (int)getpid(), port);
  snprintf(r->tcp.addr, sizeof r->tcp.addr, "127.0.0.1");
  r->tcp.port = port;
  r->world_size = world_size;
  r->local_size = local_size;
  f.fn = fn;
  f.arg = arg;
  f.timeout_s = timeout_s;
  const spawn_children_t children = {world_size, forked_rank_main, &f, timeout_s * 1000LL, 1,
                                     forked_rank_end, "spawn: fork"};
  return spawn_children(&children);
}
