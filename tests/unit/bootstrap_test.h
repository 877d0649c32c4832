/* SPDX-License-Identifier: Apache-2.0
 * Helpers shared by the bootstrap tests (tests/unit/test_bootstrap_*.c, test_fd_exchange.c):
 * ranks as forked processes over a loopback port (tcp_arg_t, tcp_bs, run_tcp_ranks), random
 * payloads, a callback-filled fake bootstrap, and counts of open descriptors and directory
 * entries for the leak checks. */
#ifndef MIXCOMM_TEST_UNIT_BOOTSTRAP_TEST_H_
#define MIXCOMM_TEST_UNIT_BOOTSTRAP_TEST_H_

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bootstrap/bootstrap.h"
#include "harness/ranks.h"
#include "harness/task.h"

static inline long long ms_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void sleep_ms(int ms) {
  usleep((useconds_t)ms * 1000);
}

static inline void clear_bootstrap_env(void) {
  const char* vars[] = {"MIXCOMM_ADDR",
                        "MASTER_ADDR",
                        "MIXCOMM_PORT",
                        "MASTER_PORT",
                        "MIXCOMM_JOB_TOKEN",
                        "TORCHELASTIC_RUN_ID",
                        "MIXCOMM_BOOTSTRAP_TIMEOUT_MS"};
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
    unsetenv(vars[i]);
}

static inline void set_options(mixcomm_tcp_options_t* o, const char* addr, int port, int timeout_ms,
                               const char* token) {
  memset(o, 0, sizeof *o);
  if (addr != NULL)
    snprintf(o->addr, sizeof o->addr, "%s", addr);
  o->port = port;
  o->timeout_ms = timeout_ms;
  if (token != NULL)
    snprintf(o->token, sizeof o->token, "%s", token);
}

static inline mixcomm_bootstrap_t* tcp_bs(int rank, int n, int port, int timeout_ms,
                                          const char* token) {
  mixcomm_tcp_options_t o;
  set_options(&o, "127.0.0.1", port, timeout_ms, token);
  mixcomm_bootstrap_t* bs = NULL;
  ASSERT_OK(mixcomm_bootstrap_tcp_create(&o, rank, n, &bs));
  ASSERT(bs != NULL);
  ASSERT_EQ(bs->rank, rank);
  ASSERT_EQ(bs->size, n);
  ASSERT(bs->allgather != NULL && bs->barrier != NULL && bs->destroy != NULL);
  return bs;
}

/* Deterministic pseudo-random bytes, distinct per (seed, rank, round). */
static inline void fill(unsigned char* p, size_t n, uint64_t seed, int rank, int round) {
  uint64_t s = seed ^ ((uint64_t)(rank + 1) * 0x9e3779b97f4a7c15ull) ^
               ((uint64_t)(round + 1) * 0xbf58476d1ce4e5b9ull);
  for (size_t i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    p[i] = (unsigned char)(s >> 24);
  }
}

static inline uint64_t random_seed(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 40);
}

static inline int count_open_fds(void) {
  DIR* d = opendir("/proc/self/fd");
  if (d == NULL)
    return -1;
  int n = 0;
  struct dirent* e;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.')
      n++;
  closedir(d);
  return n - 1; /* the DIR's own descriptor */
}

static inline int count_entries(const char* dir) {
  DIR* d = opendir(dir);
  if (d == NULL)
    return -1;
  int n = 0;
  struct dirent* e;
  while ((e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, ".."))
      n++;
  closedir(d);
  return n;
}

typedef struct {
  int port;
  int timeout_ms;
  uint64_t seed;
  int extra; /* test-specific */
} tcp_arg_t;

static inline tcp_arg_t tcp_arg(int timeout_ms) {
  tcp_arg_t a;
  memset(&a, 0, sizeof a);
  a.port = free_tcp_port();
  ASSERT(a.port > 0);
  a.timeout_ms = timeout_ms;
  a.seed = random_seed();
  return a;
}

/* Run fn as n ranks of a bootstrap on a fresh loopback port (a->extra = extra), each rank with
 * the bootstrap timeout timeout_ms; the test fails unless every rank succeeds within
 * limit_ms. */
static inline int run_tcp_ranks(int n, rank_fn fn, int timeout_ms, int extra, int limit_ms) {
  tcp_arg_t a = tcp_arg(timeout_ms);
  a.extra = extra;
  ASSERT_EQ(run_ranks(n, fn, &a, limit_ms, NULL), 0);
  return 0;
}

typedef struct {
  int fail;      /* allgather returns this when non-zero */
  int destroyed; /* times destroy ran */
  int gathers;
} fake_ctx_t;

/* Pretends to be rank 1 of 3: rank r's piece is its own bytes with r added to each. */
static inline int fake_allgather(void* ctx, const void* send, void* recv, size_t bytes) {
  fake_ctx_t* f = (fake_ctx_t*)ctx;
  f->gathers++;
  if (f->fail)
    return f->fail;
  for (int r = 0; r < 3; r++)
    for (size_t i = 0; i < bytes; i++)
      ((unsigned char*)recv)[(size_t)r * bytes + i] =
          (unsigned char)(((const unsigned char*)send)[i] + (r - 1));
  return 0;
}

static inline void fake_destroy(void* ctx) {
  ((fake_ctx_t*)ctx)->destroyed++;
}

#endif
