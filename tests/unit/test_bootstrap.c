/* SPDX-License-Identifier: Apache-2.0
 * Bootstrap tests: the TCP rendezvous and its collectives (ranks are forked processes talking
 * over loopback), the helpers of bootstrap.h on callback-filled structs, and the node-local
 * file descriptor exchange (memfds passed between forked "local ranks").
 *
 * Failure scenarios use short timeouts (1-1.5 s) and check both the status and that the message
 * names the rank at fault. Each rank asserts on its own; run_ranks reports any rank that
 * failed, crashed or hung.
 */
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bootstrap/bootstrap.h"
#include "harness/ranks.h"
#include "harness/task.h"

/* ------------------------------------------------------------------------------------------ */
/* Helpers                                                                                    */
/* ------------------------------------------------------------------------------------------ */

static long long ms_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms) { usleep((useconds_t)ms * 1000); }

static void clear_bootstrap_env(void) {
  const char* vars[] = {"MIXCOMM_ADDR",      "MASTER_ADDR",         "MIXCOMM_PORT",
                        "MASTER_PORT",       "MIXCOMM_JOB_TOKEN",   "TORCHELASTIC_RUN_ID",
                        "MIXCOMM_BOOTSTRAP_TIMEOUT_MS"};
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
    unsetenv(vars[i]);
}

static void set_options(mixcomm_tcp_options_t* o, const char* addr, int port, int timeout_ms,
                        const char* token) {
  memset(o, 0, sizeof *o);
  if (addr != NULL)
    snprintf(o->addr, sizeof o->addr, "%s", addr);
  o->port = port;
  o->timeout_ms = timeout_ms;
  if (token != NULL)
    snprintf(o->token, sizeof o->token, "%s", token);
}

static mixcomm_bootstrap_t* tcp_bs(int rank, int n, int port, int timeout_ms, const char* token) {
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
static void fill(unsigned char* p, size_t n, uint64_t seed, int rank, int round) {
  uint64_t s = seed ^ ((uint64_t)(rank + 1) * 0x9e3779b97f4a7c15ull) ^
               ((uint64_t)(round + 1) * 0xbf58476d1ce4e5b9ull);
  for (size_t i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    p[i] = (unsigned char)(s >> 24);
  }
}

static uint64_t random_seed(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 40);
}

static int count_open_fds(void) {
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

static int count_entries(const char* dir) {
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

static tcp_arg_t tcp_arg(int timeout_ms) {
  tcp_arg_t a;
  memset(&a, 0, sizeof a);
  a.port = free_tcp_port();
  ASSERT(a.port > 0);
  a.timeout_ms = timeout_ms;
  a.seed = random_seed();
  return a;
}

/* ------------------------------------------------------------------------------------------ */
/* TCP allgather                                                                              */
/* ------------------------------------------------------------------------------------------ */

static const size_t k_sizes[] = {8, 0, 1, 13, 4096, 100000, 1u << 20, 3};

static int allgather_rank(int rank, int n, void* varg) {
  const tcp_arg_t* a = (const tcp_arg_t*)varg;
  mixcomm_bootstrap_t* bs = tcp_bs(rank, n, a->port, a->timeout_ms, "job");
  for (int round = 0; round < (int)(sizeof k_sizes / sizeof k_sizes[0]); round++) {
    const size_t bytes = k_sizes[round];
    unsigned char* send = malloc(bytes + 1);
    unsigned char* recv = malloc((size_t)n * bytes + 1);
    unsigned char* want = malloc(bytes + 1);
    ASSERT(send && recv && want);
    fill(send, bytes, a->seed, rank, round);
    memset(recv, 0xa5, (size_t)n * bytes);
    ASSERT_OK(mixcomm__bs_allgather(bs, send, recv, bytes, "test allgather"));
    for (int r = 0; r < n; r++) {
      fill(want, bytes, a->seed, r, round);
      if (memcmp(recv + (size_t)r * bytes, want, bytes) != 0)
        FAIL("round %d (%zu bytes): rank %d's piece is wrong on rank %d", round, bytes, r, rank);
    }
    free(send);
    free(recv);
    free(want);
  }
  /* In place: the contribution already sits at its offset in recv. */
  {
    const size_t bytes = 777;
    unsigned char* recv = malloc((size_t)n * bytes);
    unsigned char* want = malloc(bytes);
    ASSERT(recv && want);
    memset(recv, 0, (size_t)n * bytes);
    fill(recv + (size_t)rank * bytes, bytes, a->seed, rank, 99);
    ASSERT_EQ(bs->allgather(bs->ctx, recv + (size_t)rank * bytes, recv, bytes), 0);
    for (int r = 0; r < n; r++) {
      fill(want, bytes, a->seed, r, 99);
      ASSERT(memcmp(recv + (size_t)r * bytes, want, bytes) == 0);
    }
    free(recv);
    free(want);
  }
  ASSERT_OK(mixcomm__bs_barrier(bs, "test barrier"));
  mixcomm_bootstrap_destroy(bs);
  return 0;
}

static int run_allgather(int n) {
  tcp_arg_t a = tcp_arg(10000);
  ASSERT_EQ(run_ranks(n, allgather_rank, &a, 15000, NULL), 0);
  return 0;
}

TEST_IMPL(bootstrap_tcp_allgather_1) {
  /* size 1: no socket, no port needed. */
  clear_bootstrap_env();
  return run_allgather(1);
}
TEST_IMPL(bootstrap_tcp_allgather_2) { return run_allgather(2); }
TEST_IMPL(bootstrap_tcp_allgather_4) { return run_allgather(4); }
TEST_IMPL(bootstrap_tcp_allgather_7) { return run_allgather(7); }

/* ------------------------------------------------------------------------------------------ */
/* Barrier, broadcast                                                                         */
/* ------------------------------------------------------------------------------------------ */

static int barrier_rank(int rank, int n, void* varg) {
  const tcp_arg_t* a = (const tcp_arg_t*)varg;
  mixcomm_bootstrap_t* bs = tcp_bs(rank, n, a->port, a->timeout_ms, NULL);
  for (int i = 0; i < 20; i++)
    ASSERT_OK(mixcomm__bs_barrier(bs, "test barrier"));
  /* The barrier really waits: the last rank arrives 300 ms late. */
  long long t0 = ms_now();
  if (rank == n - 1)
    sleep_ms(300);
  ASSERT_EQ(bs->barrier(bs->ctx), 0);
  long long waited = ms_now() - t0;
  if (waited < 250)
    FAIL("rank %d left the barrier after %lld ms, before the late rank arrived", rank, waited);
  mixcomm_bootstrap_destroy(bs);
  return 0;
}

TEST_IMPL(bootstrap_tcp_barrier) {
  tcp_arg_t a = tcp_arg(5000);
  ASSERT_EQ(run_ranks(4, barrier_rank, &a, 10000, NULL), 0);
  return 0;
}

static int broadcast_rank(int rank, int n, void* varg) {
  const tcp_arg_t* a = (const tcp_arg_t*)varg;
  mixcomm_bootstrap_t* bs = tcp_bs(rank, n, a->port, a->timeout_ms, NULL);
  for (int root = n - 1; root >= 0; root--) {
    unsigned char buf[3000], want[3000];
    fill(want, sizeof want, a->seed, root, 7);
    if (rank == root)
      memcpy(buf, want, sizeof buf);
    else
      fill(buf, sizeof buf, a->seed, rank, 8);
    ASSERT_OK(mixcomm__bs_broadcast(bs, buf, sizeof buf, root, "test broadcast"));
    if (memcmp(buf, want, sizeof buf) != 0)
      FAIL("broadcast from root %d: wrong data on rank %d", root, rank);
  }
  ASSERT_ERR(mixcomm__bs_broadcast(bs, &rank, sizeof rank, n, "bad root"),
             MIXCOMM_ERR_INVALID_ARGUMENT, "root");
  mixcomm_bootstrap_destroy(bs);
  return 0;
}

TEST_IMPL(bootstrap_tcp_broadcast) {
  tcp_arg_t a = tcp_arg(5000);
  ASSERT_EQ(run_ranks(4, broadcast_rank, &a, 10000, NULL), 0);
  return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Environment                                                                                */
/* ------------------------------------------------------------------------------------------ */

static int env_master_rank(int rank, int n, void* varg) {
  const tcp_arg_t* a = (const tcp_arg_t*)varg;
  char port[16];
  snprintf(port, sizeof port, "%d", a->port);
  clear_bootstrap_env();
  setenv("MASTER_ADDR", "127.0.0.1", 1);
  setenv("MASTER_PORT", port, 1);
  setenv("TORCHELASTIC_RUN_ID", "elastic-42", 1);
  setenv("MIXCOMM_BOOTSTRAP_TIMEOUT_MS", "5000", 1);
  mixcomm_bootstrap_t* bs = NULL;
  ASSERT_OK(mixcomm_bootstrap_tcp_create(NULL, rank, n, &bs));
  int v = rank * 10, all[3];
  ASSERT_OK(mixcomm__bs_allgather(bs, &v, all, sizeof v, "env allgather"));
  for (int r = 0; r < n; r++)
    ASSERT_EQ(all[r], r * 10);
  mixcomm_bootstrap_destroy(bs);
  return 0;
}

TEST_IMPL(bootstrap_tcp_env_master) {
  tcp_arg_t a = tcp_arg(5000);
  ASSERT_EQ(run_ranks(3, env_master_rank, &a, 10000, NULL), 0);
  return 0;
}

static int env_precedence_rank(int rank, int n, void* varg) {
  const tcp_arg_t* a = (const tcp_arg_t*)varg;
  char port[16], bad_port[16], run_id[32];
  snprintf(port, sizeof port, "%d", a->port);
  snprintf(bad_port, sizeof bad_port, "%d", a->extra);
  snprintf(run_id, sizeof run_id, "run-of-rank-%d", rank);
  clear_bootstrap_env();
  /* MIXCOMM_* win over MASTER_* / TORCHELASTIC_RUN_ID: the losers here would fail. */
  setenv("MIXCOMM_ADDR", "127.0.0.1", 1);
  setenv("MASTER_ADDR", "no-such-host.invalid", 1);
  setenv("MIXCOMM_PORT", port, 1);
  setenv("MASTER_PORT", bad_port, 1);
  setenv("MIXCOMM_JOB_TOKEN", "shared-token", 1);
  setenv("TORCHELASTIC_RUN_ID", run_id, 1); /* differs per rank */
  mixcomm_tcp_options_t o;
  set_options(&o, NULL, 0, 5000, NULL); /* only the timeout given */
  mixcomm_bootstrap_t* bs = NULL;
  ASSERT_OK(mixcomm_bootstrap_tcp_create(&o, rank, n, &bs));
  ASSERT_OK(mixcomm__bs_barrier(bs, "env barrier"));
  mixcomm_bootstrap_destroy(bs);
  return 0;
}

TEST_IMPL(bootstrap_tcp_env_precedence) {
  tcp_arg_t a = tcp_arg(5000);
  a.extra = free_tcp_port(); /* nobody listens there */
  ASSERT(a.extra > 0 && a.extra != a.port);
  ASSERT_EQ(run_ranks(3, env_precedence_rank, &a, 10000, NULL), 0);
  return 0;
}

TEST_IMPL(bootstrap_tcp_env_timeout) {
  /* MIXCOMM_BOOTSTRAP_TIMEOUT_MS bounds rank 0's wait for a rank that never comes. */
  clear_bootstrap_env();
  char port[16];
  snprintf(port, sizeof port, "%d", free_tcp_port());
  setenv("MIXCOMM_PORT", port, 1);
  setenv("MIXCOMM_BOOTSTRAP_TIMEOUT_MS", "400", 1);
  mixcomm_bootstrap_t* bs = (mixcomm_bootstrap_t*)1;
  long long t0 = ms_now();
  ASSERT_ERR(mixcomm_bootstrap_tcp_create(NULL, 0, 2, &bs), MIXCOMM_ERR_TIMEOUT,
             "rank 1 of 2 never connected");
  long long took = ms_now() - t0;
  ASSERT_CONTAINS(mixcomm_last_error(), "400 ms");
  ASSERT(bs == NULL);
  ASSERT(took >= 350 && took < 2000);
  return 0;
}

static int ipv6_rank(int rank, int n, void* varg) {
  const tcp_arg_t* a = (const tcp_arg_t*)varg;
  (void)a;
  mixcomm_bootstrap_t* bs = NULL;
  ASSERT_OK(mixcomm_bootstrap_tcp_create(NULL, rank, n, &bs)); /* [::1] from the environment */
  int v = rank, all[3];
  ASSERT_OK(mixcomm__bs_allgather(bs, &v, all, sizeof v, "ipv6"));
  for (int r = 0; r < n; r++)
    ASSERT_EQ(all[r], r);
  mixcomm_bootstrap_destroy(bs);
  return 0;
}

TEST_IMPL(bootstrap_tcp_ipv6) {
  int probe = socket(AF_INET6, SOCK_STREAM, 0);
  struct sockaddr_in6 sa;
  memset(&sa, 0, sizeof sa);
  sa.sin6_family = AF_INET6;
  sa.sin6_addr = in6addr_loopback;
  if (probe < 0 || bind(probe, (struct sockaddr*)&sa, sizeof sa) != 0) {
    printf("  (no IPv6 loopback here: skipped)\n");
    if (probe >= 0)
      close(probe);
    return 0;
  }
  close(probe);
  tcp_arg_t a = tcp_arg(5000);
  clear_bootstrap_env();
  setenv("MIXCOMM_ADDR", "::1", 1);
  char port[16];
  snprintf(port, sizeof port, "%d", a.port);
  setenv("MASTER_PORT", port, 1);
  ASSERT_EQ(run_ranks(3, ipv6_rank, &a, 10000, NULL), 0);
  return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Strays and missing ranks                                                                   */
/* ------------------------------------------------------------------------------------------ */

/* Processes 0..3 are the job (token "job-A"); process 4 claims rank 1 with another token. */
static int wrong_token_rank(int rank, int n, void* varg) {
  const tcp_arg_t* a = (const tcp_arg_t*)varg;
  (void)n;
  if (rank == 4) {
    mixcomm_tcp_options_t o;
    set_options(&o, "127.0.0.1", a->port, 3000, "job-B");
    mixcomm_bootstrap_t* bs = NULL;
    ASSERT_ERR(mixcomm_bootstrap_tcp_create(&o, 1, 4, &bs), MIXCOMM_ERR_BOOTSTRAP,
               "wrong job token");
    ASSERT(strstr(mixcomm_last_error(), "job-A") == NULL); /* the secret is not echoed */
    ASSERT(bs == NULL);
    return 0;
  }
  if (rank > 0)
    sleep_ms(500); /* let the stray knock first */
  mixcomm_bootstrap_t* bs = tcp_bs(rank, 4, a->port, a->timeout_ms, "job-A");
  int v = rank + 100, all[4];
  ASSERT_OK(mixcomm__bs_allgather(bs, &v, all, sizeof v, "after stray"));
  for (int r = 0; r < 4; r++)
    ASSERT_EQ(all[r], r + 100);
  mixcomm_bootstrap_destroy(bs);
  return 0;
}

TEST_IMPL(bootstrap_tcp_wrong_token) {
  tcp_arg_t a = tcp_arg(5000);
  ASSERT_EQ(run_ranks(5, wrong_token_rank, &a, 10000, NULL), 0);
  return 0;
}

/* Process 4 claims rank 1 again (right token) after the real rank 1 joined. */
static int duplicate_rank(int rank, int n, void* varg) {
  const tcp_arg_t* a = (const tcp_arg_t*)varg;
  (void)n;
  if (rank == 4) {
    sleep_ms(500);
    mixcomm_tcp_options_t o;
    set_options(&o, "127.0.0.1", a->port, 3000, "tok");
    mixcomm_bootstrap_t* bs = NULL;
    ASSERT_ERR(mixcomm_bootstrap_tcp_create(&o, 1, 4, &bs), MIXCOMM_ERR_BOOTSTRAP,
               "rank 1 already joined");
    return 0;
  }
  if (rank == 3)
    sleep_ms(1500); /* keep rank 0 waiting while the duplicate knocks */
  mixcomm_bootstrap_t* bs = tcp_bs(rank, 4, a->port, a->timeout_ms, "tok");
  ASSERT_OK(mixcomm__bs_barrier(bs, "after duplicate"));
  mixcomm_bootstrap_destroy(bs);
  return 0;
}

TEST_IMPL(bootstrap_tcp_duplicate_rank) {
  tcp_arg_t a = tcp_arg(6000);
  ASSERT_EQ(run_ranks(5, duplicate_rank, &a, 10000, NULL), 0);
  return 0;
}

static int missing_rank(int rank, int n, void* varg) {
  const tcp_arg_t* a = (const tcp_arg_t*)varg;
  if (rank == a->extra)
    return 0; /* never arrives */
  mixcomm_tcp_options_t o;
  set_options(&o, "127.0.0.1", a->port, a->timeout_ms, NULL);
  mixcomm_bootstrap_t* bs = (mixcomm_bootstrap_t*)1;
  char name[32], where[64];
  snprintf(name, sizeof name, "rank %d", a->extra);
  snprintf(where, sizeof where, "127.0.0.1:%d", a->port);
  long long t0 = ms_now();
  mixcomm_status_t st = mixcomm_bootstrap_tcp_create(&o, rank, n, &bs);
  long long took = ms_now() - t0;
  ASSERT_EQ(st, MIXCOMM_ERR_TIMEOUT);
  ASSERT(bs == NULL);
  ASSERT_CONTAINS(mixcomm_last_error(), name);
  ASSERT_CONTAINS(mixcomm_last_error(), where);
  if (took > a->timeout_ms + 2500)
    FAIL("rank %d needed %lld ms to give up (timeout %d ms)", rank, took, a->timeout_ms);
  return 0;
}

TEST_IMPL(bootstrap_tcp_rank_missing) {
  tcp_arg_t a = tcp_arg(1500);
  a.extra = 2;
  ASSERT_EQ(run_ranks(4, missing_rank, &a, 8000, NULL), 0);
  return 0;
}

TEST_IMPL(bootstrap_tcp_root_missing) {
  tcp_arg_t a = tcp_arg(1000);
  a.extra = 0;
  ASSERT_EQ(run_ranks(4, missing_rank, &a, 8000, NULL), 0);
  return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Failures after setup                                                                       */
/* ------------------------------------------------------------------------------------------ */

/* extra = the rank that dies after the first allgather. */
static int peer_dies_rank(int rank, int n, void* varg) {
  const tcp_arg_t* a = (const tcp_arg_t*)varg;
  mixcomm_bootstrap_t* bs = tcp_bs(rank, n, a->port, a->timeout_ms, NULL);
  size_t bytes = 50000;
  unsigned char* send = calloc(1, bytes);
  unsigned char* recv = calloc((size_t)n, bytes);
  ASSERT(send && recv);
  ASSERT_OK(mixcomm__bs_allgather(bs, send, recv, bytes, "first"));
  if (rank == a->extra)
    _exit(0); /* dies without a word */
  char name[32];
  snprintf(name, sizeof name, "rank %d", a->extra);
  long long t0 = ms_now();
  mixcomm_status_t st = mixcomm__bs_allgather(bs, send, recv, bytes, "second");
  ASSERT(st == MIXCOMM_ERR_BOOTSTRAP || st == MIXCOMM_ERR_TIMEOUT);
  ASSERT_CONTAINS(mixcomm_last_error(), name);
  ASSERT_CONTAINS(mixcomm_last_error(), "closed the connection");
  ASSERT(ms_now() - t0 < a->timeout_ms); /* noticed at once, not by timing out */
  /* Unusable from now on, at once. */
  t0 = ms_now();
  ASSERT_NE(mixcomm__bs_barrier(bs, "third"), MIXCOMM_SUCCESS);
  ASSERT_CONTAINS(mixcomm_last_error(), name);
  ASSERT(ms_now() - t0 < 500);
  free(send);
  free(recv);
  mixcomm_bootstrap_destroy(bs);
  return 0;
}

TEST_IMPL(bootstrap_tcp_peer_dies) {
  tcp_arg_t a = tcp_arg(3000);
  a.extra = 3;
  ASSERT_EQ(run_ranks(4, peer_dies_rank, &a, 10000, NULL), 0);
  return 0;
}

TEST_IMPL(bootstrap_tcp_root_dies) {
  tcp_arg_t a = tcp_arg(3000);
  a.extra = 0;
  ASSERT_EQ(run_ranks(4, peer_dies_rank, &a, 10000, NULL), 0);
  return 0;
}

/* Rank 3 stalls in the second allgather: the others time out naming it. */
static int peer_stalls_rank(int rank, int n, void* varg) {
  const tcp_arg_t* a = (const tcp_arg_t*)varg;
  mixcomm_bootstrap_t* bs = tcp_bs(rank, n, a->port, a->timeout_ms, NULL);
  ASSERT_OK(mixcomm__bs_barrier(bs, "first"));
  if (rank == 3) {
    sleep_ms(a->timeout_ms + 1000); /* the others give up meanwhile */
    mixcomm_bootstrap_destroy(bs);
    return 0;
  }
  long long t0 = ms_now();
  ASSERT_ERR(mixcomm__bs_barrier(bs, "second"), MIXCOMM_ERR_TIMEOUT, "rank 3");
  long long took = ms_now() - t0;
  if (took < a->timeout_ms - 100 || took > a->timeout_ms + 2500)
    FAIL("rank %d gave up after %lld ms (timeout %d ms)", rank, took, a->timeout_ms);
  mixcomm_bootstrap_destroy(bs);
  return 0;
}

TEST_IMPL(bootstrap_tcp_peer_stalls) {
  tcp_arg_t a = tcp_arg(1000);
  ASSERT_EQ(run_ranks(4, peer_stalls_rank, &a, 9000, NULL), 0);
  return 0;
}

/* Rank 2 passes a different size: everyone gets MISMATCH naming rank 2. */
static int size_mismatch_rank(int rank, int n, void* varg) {
  const tcp_arg_t* a = (const tcp_arg_t*)varg;
  mixcomm_bootstrap_t* bs = tcp_bs(rank, n, a->port, a->timeout_ms, NULL);
  unsigned char send[64] = {0}, recv[64 * 4];
  size_t bytes = rank == 2 ? 48 : 32;
  mixcomm_status_t st = mixcomm__bs_allgather(bs, send, recv, bytes, "uneven");
  ASSERT_EQ(st, MIXCOMM_ERR_MISMATCH);
  ASSERT_CONTAINS(mixcomm_last_error(), "rank 2");
  ASSERT_CONTAINS(mixcomm_last_error(), "48");
  mixcomm_bootstrap_destroy(bs);
  return 0;
}

TEST_IMPL(bootstrap_tcp_size_mismatch) {
  tcp_arg_t a = tcp_arg(3000);
  ASSERT_EQ(run_ranks(4, size_mismatch_rank, &a, 10000, NULL), 0);
  return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Arguments                                                                                  */
/* ------------------------------------------------------------------------------------------ */

TEST_IMPL(bootstrap_tcp_invalid_args) {
  clear_bootstrap_env();
  mixcomm_tcp_options_t o;
  mixcomm_bootstrap_t* bs = (mixcomm_bootstrap_t*)1;
  set_options(&o, NULL, 29500, 1000, NULL);
  ASSERT_ERR(mixcomm_bootstrap_tcp_create(&o, 0, 2, NULL), MIXCOMM_ERR_INVALID_ARGUMENT, "out");
  ASSERT_ERR(mixcomm_bootstrap_tcp_create(&o, 0, 0, &bs), MIXCOMM_ERR_INVALID_ARGUMENT,
             "size=0");
  ASSERT(bs == NULL);
  ASSERT_ERR(mixcomm_bootstrap_tcp_create(&o, -1, 2, &bs), MIXCOMM_ERR_INVALID_ARGUMENT,
             "rank=-1");
  ASSERT_ERR(mixcomm_bootstrap_tcp_create(&o, 2, 2, &bs), MIXCOMM_ERR_INVALID_ARGUMENT,
             "rank=2");
  /* No port anywhere. */
  set_options(&o, NULL, 0, 1000, NULL);
  ASSERT_ERR(mixcomm_bootstrap_tcp_create(&o, 0, 2, &bs), MIXCOMM_ERR_INVALID_ARGUMENT,
             "MIXCOMM_PORT");
  ASSERT_CONTAINS(mixcomm_last_error(), "MASTER_PORT");
  ASSERT_ERR(mixcomm_bootstrap_tcp_create(NULL, 1, 2, &bs), MIXCOMM_ERR_INVALID_ARGUMENT,
             "MASTER_PORT");
  setenv("MIXCOMM_PORT", "abc", 1);
  ASSERT_ERR(mixcomm_bootstrap_tcp_create(&o, 0, 2, &bs), MIXCOMM_ERR_INVALID_ARGUMENT,
             "MIXCOMM_PORT='abc'");
  unsetenv("MIXCOMM_PORT");
  setenv("MASTER_PORT", "70000", 1);
  ASSERT_ERR(mixcomm_bootstrap_tcp_create(&o, 0, 2, &bs), MIXCOMM_ERR_INVALID_ARGUMENT,
             "MASTER_PORT='70000'");
  unsetenv("MASTER_PORT");
  set_options(&o, NULL, 70000, 1000, NULL);
  ASSERT_ERR(mixcomm_bootstrap_tcp_create(&o, 0, 2, &bs), MIXCOMM_ERR_INVALID_ARGUMENT,
             "options.port=70000");
  set_options(&o, NULL, 29500, -5, NULL);
  ASSERT_ERR(mixcomm_bootstrap_tcp_create(&o, 0, 2, &bs), MIXCOMM_ERR_INVALID_ARGUMENT,
             "timeout_ms=-5");
  set_options(&o, NULL, 29500, 0, NULL);
  setenv("MIXCOMM_BOOTSTRAP_TIMEOUT_MS", "soon", 1);
  ASSERT_ERR(mixcomm_bootstrap_tcp_create(&o, 0, 2, &bs), MIXCOMM_ERR_INVALID_ARGUMENT,
             "MIXCOMM_BOOTSTRAP_TIMEOUT_MS");
  unsetenv("MIXCOMM_BOOTSTRAP_TIMEOUT_MS");
  char long_token[200];
  memset(long_token, 'x', sizeof long_token - 1);
  long_token[sizeof long_token - 1] = '\0';
  setenv("MIXCOMM_JOB_TOKEN", long_token, 1);
  ASSERT_ERR(mixcomm_bootstrap_tcp_create(&o, 0, 2, &bs), MIXCOMM_ERR_INVALID_ARGUMENT,
             "MIXCOMM_JOB_TOKEN");
  unsetenv("MIXCOMM_JOB_TOKEN");
  memset(o.token, 'y', sizeof o.token); /* not terminated */
  ASSERT_ERR(mixcomm_bootstrap_tcp_create(&o, 0, 2, &bs), MIXCOMM_ERR_INVALID_ARGUMENT,
             "options.token");
  ASSERT(bs == NULL);
  /* A port taken by someone else. */
  int busy = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa;
  socklen_t sl = sizeof sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT(busy >= 0 && bind(busy, (struct sockaddr*)&sa, sizeof sa) == 0 && listen(busy, 1) == 0);
  ASSERT(getsockname(busy, (struct sockaddr*)&sa, &sl) == 0);
  set_options(&o, "127.0.0.1", ntohs(sa.sin_port), 1000, NULL);
  ASSERT_ERR(mixcomm_bootstrap_tcp_create(&o, 0, 2, &bs), MIXCOMM_ERR_BOOTSTRAP, "in use");
  close(busy);
  /* Size 1 needs no port and does not touch the network. */
  ASSERT_OK(mixcomm_bootstrap_tcp_create(NULL, 0, 1, &bs));
  ASSERT(bs != NULL && bs->size == 1 && bs->rank == 0);
  uint64_t v = 42, all = 0;
  ASSERT_OK(mixcomm__bs_allgather(bs, &v, &all, sizeof v, "single"));
  ASSERT_EQ(all, 42);
  ASSERT_OK(mixcomm__bs_barrier(bs, "single"));
  ASSERT_OK(mixcomm__bs_broadcast(bs, &v, sizeof v, 0, "single"));
  ASSERT_ERR(mixcomm__bs_allgather(bs, NULL, &all, sizeof v, "null send"),
             MIXCOMM_ERR_INVALID_ARGUMENT, "null send");
  mixcomm_bootstrap_destroy(bs);
  mixcomm_bootstrap_destroy(NULL);
  return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Helpers on a callback-filled bootstrap                                                     */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
  int fail;      /* allgather returns this when non-zero */
  int destroyed; /* times destroy ran */
  int gathers;
} fake_ctx_t;

/* Pretends to be rank 1 of 3: rank r's piece is its own bytes with r added to each. */
static int fake_allgather(void* ctx, const void* send, void* recv, size_t bytes) {
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

static void fake_destroy(void* ctx) { ((fake_ctx_t*)ctx)->destroyed++; }

TEST_IMPL(bootstrap_callbacks) {
  fake_ctx_t f = {0, 0, 0};
  mixcomm_bootstrap_t bs = {&f, fake_allgather, NULL, fake_destroy, 1, 3};
  unsigned char send[4] = {10, 20, 30, 40}, recv[12];
  ASSERT_OK(mixcomm__bs_allgather(&bs, send, recv, 4, "fake"));
  ASSERT_EQ(recv[0], 9);
  ASSERT_EQ(recv[11], 41);
  /* No barrier callback: an allgather stands in. */
  ASSERT_OK(mixcomm__bs_barrier(&bs, "fake barrier"));
  ASSERT_EQ(f.gathers, 2);
  /* Broadcast keeps the root's piece. */
  unsigned char buf[4] = {1, 2, 3, 4};
  ASSERT_OK(mixcomm__bs_broadcast(&bs, buf, 4, 2, "fake broadcast"));
  ASSERT_EQ(buf[0], 2);
  ASSERT_EQ(buf[3], 5);
  ASSERT_ERR(mixcomm__bs_broadcast(&bs, buf, 4, -1, "neg root"), MIXCOMM_ERR_INVALID_ARGUMENT,
             "root -1");
  /* A failing callback: BOOTSTRAP naming what we were doing. */
  f.fail = -3;
  ASSERT_ERR(mixcomm__bs_allgather(&bs, send, recv, 4, "sharing handles"), MIXCOMM_ERR_BOOTSTRAP,
             "sharing handles");
  ASSERT_CONTAINS(mixcomm_last_error(), "-3");
  f.fail = (int)MIXCOMM_ERR_TIMEOUT; /* a plain number without a message is still BOOTSTRAP */
  ASSERT_ERR(mixcomm__bs_barrier(&bs, "fake barrier"), MIXCOMM_ERR_BOOTSTRAP, "fake barrier");
  /* Broken structs. */
  ASSERT_ERR(mixcomm__bs_allgather(NULL, send, recv, 4, "nothing"), MIXCOMM_ERR_INVALID_ARGUMENT,
             "NULL");
  mixcomm_bootstrap_t no_cb = {&f, NULL, NULL, NULL, 0, 1};
  ASSERT_ERR(mixcomm__bs_barrier(&no_cb, "no callbacks"), MIXCOMM_ERR_INVALID_ARGUMENT,
             "allgather callback");
  mixcomm_bootstrap_t bad_rank = {&f, fake_allgather, NULL, NULL, 3, 3};
  ASSERT_ERR(mixcomm__bs_allgather(&bad_rank, send, recv, 4, "bad rank"),
             MIXCOMM_ERR_INVALID_ARGUMENT, "rank 3 of size 3");
  /* destroy runs the user's callback and leaves the user's struct alone. */
  mixcomm_bootstrap_destroy(&bs);
  ASSERT_EQ(f.destroyed, 1);
  ASSERT(bs.ctx == &f && bs.size == 3);
  mixcomm_bootstrap_destroy(&no_cb); /* no destroy callback: nothing happens */
  ASSERT_EQ(f.destroyed, 1);
  return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* fd exchange                                                                                */
/* ------------------------------------------------------------------------------------------ */

/* Counts the bootstrap calls the exchange makes, and can act after the k-th one:
 * fd_exchange makes three (records, "listening", "done"); after the second every local socket
 * exists. */
typedef struct {
  mixcomm_bootstrap_t* inner;
  int calls;
  int die_after;   /* _exit after this call (0: never) */
  int check_after; /* inspect the socket directory after this call (0: never) */
  const char* base;
  int local_size, nodes;
  int checked;
} wrap_t;

static void wrap_after(wrap_t* w) {
  if (w->calls == w->die_after)
    _exit(0);
  if (w->calls != w->check_after)
    return;
  DIR* d = opendir(w->base);
  ASSERT(d != NULL);
  struct dirent* e;
  int dirs = 0, complete = 0;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    char path[512];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s", w->base, e->d_name);
    ASSERT(lstat(path, &sb) == 0);
    ASSERT(S_ISDIR(sb.st_mode));
    if ((sb.st_mode & 0777) != 0700)
      FAIL("socket directory %s has mode %04o, expected 0700", path, sb.st_mode & 0777);
    ASSERT_EQ(sb.st_uid, getuid());
    /* Rank 0's node cannot finish before rank 0 sends its fd, so all its sockets exist now;
     * other nodes may already have finished and removed theirs. */
    int socks = 0;
    for (int i = 0; i < w->local_size; i++) {
      char sock[600];
      snprintf(sock, sizeof sock, "%s/r%d", path, i);
      if (lstat(sock, &sb) == 0 && S_ISSOCK(sb.st_mode))
        socks++;
    }
    complete += socks == w->local_size;
    dirs++;
  }
  closedir(d);
  ASSERT_EQ(dirs, w->nodes);
  ASSERT(complete >= 1);
  w->checked = 1;
}

static int wrap_allgather(void* ctx, const void* send, void* recv, size_t bytes) {
  wrap_t* w = (wrap_t*)ctx;
  int rc = w->inner->allgather(w->inner->ctx, send, recv, bytes);
  w->calls++;
  if (rc == 0)
    wrap_after(w);
  return rc;
}

static int wrap_barrier(void* ctx) {
  wrap_t* w = (wrap_t*)ctx;
  int rc = w->inner->barrier(w->inner->ctx);
  w->calls++;
  if (rc == 0)
    wrap_after(w);
  return rc;
}

typedef struct {
  int port;
  int local_size;
  int bs_timeout_ms, fdx_timeout_ms;
  int bad_rank;   /* world rank that misbehaves (-1: none) */
  int bad_mode;   /* 1: never calls the exchange, 2: dies after the listening step */
  char base[256]; /* MIXCOMM_SOCKET_DIR */
  uint64_t seed;
} fdx_arg_t;

static int make_memfd(int world_rank, uint64_t seed, char* text, size_t cap) {
  snprintf(text, cap, "world rank %d says %llx", world_rank, (unsigned long long)seed);
  int fd = memfd_create("mixcomm-test", MFD_CLOEXEC);
  ASSERT(fd >= 0);
  ASSERT_EQ(write(fd, text, strlen(text)), (long long)strlen(text));
  return fd;
}

static int fdx_rank(int rank, int n, void* varg) {
  const fdx_arg_t* a = (const fdx_arg_t*)varg;
  const int local_size = a->local_size, local_rank = rank % local_size;
  const int first = rank - local_rank;
  mixcomm_bootstrap_t* tcp = tcp_bs(rank, n, a->port, a->bs_timeout_ms, NULL);
  if (rank == a->bad_rank && a->bad_mode == 1) {
    sleep_ms(a->bs_timeout_ms + 1000); /* never calls the exchange */
    mixcomm_bootstrap_destroy(tcp);
    return 0;
  }
  wrap_t w;
  memset(&w, 0, sizeof w);
  w.inner = tcp;
  w.die_after = rank == a->bad_rank && a->bad_mode == 2 ? 2 : 0;
  w.check_after = rank == 0 && a->bad_rank < 0 ? 2 : 0;
  w.base = a->base;
  w.local_size = local_size;
  w.nodes = n / local_size;
  mixcomm_bootstrap_t bs = {&w, wrap_allgather, wrap_barrier, NULL, rank, n};

  char mine[128];
  int fd = make_memfd(rank, a->seed, mine, sizeof mine);
  int peer_fds[MIXCOMM_MAX_LOCAL_SIZE];
  const int fds_before = count_open_fds();
  long long t0 = ms_now();
  mixcomm_status_t st =
      mixcomm__fd_exchange(&bs, local_rank, local_size, fd, a->fdx_timeout_ms, peer_fds);
  long long took = ms_now() - t0;
  if (a->bad_rank >= 0) {
    char name[64];
    const int bad_first = a->bad_rank - a->bad_rank % local_size;
    if (a->bad_mode == 2 && first == bad_first) {
      /* Its node peers time out in the exchange itself. */
      ASSERT_EQ(st, MIXCOMM_ERR_TIMEOUT);
      snprintf(name, sizeof name, "local rank %d (world rank %d)", a->bad_rank % local_size,
               a->bad_rank);
    } else if (a->bad_mode == 2) {
      /* Other nodes learn it in the final step, from the bootstrap. */
      ASSERT(st == MIXCOMM_ERR_TIMEOUT || st == MIXCOMM_ERR_BOOTSTRAP);
      snprintf(name, sizeof name, "rank %d", a->bad_rank);
    } else {
      ASSERT_EQ(st, MIXCOMM_ERR_TIMEOUT);
      snprintf(name, sizeof name, "rank %d", a->bad_rank);
    }
    ASSERT_CONTAINS(mixcomm_last_error(), name);
    for (int i = 0; i < local_size; i++)
      ASSERT_EQ(peer_fds[i], -1);
    ASSERT_EQ(count_open_fds(), fds_before); /* nothing leaked */
    if (took > a->fdx_timeout_ms + a->bs_timeout_ms + 3000)
      FAIL("rank %d needed %lld ms to fail", rank, took);
  } else {
    ASSERT_OK(st);
    ASSERT_EQ(w.calls, 3);
    ASSERT(w.checked || rank != 0);
    for (int i = 0; i < local_size; i++) {
      char want[128], got[128];
      ASSERT(peer_fds[i] >= 0);
      snprintf(want, sizeof want, "world rank %d says %llx", first + i,
               (unsigned long long)a->seed);
      memset(got, 0, sizeof got);
      ssize_t r = pread(peer_fds[i], got, sizeof got - 1, 0);
      ASSERT_EQ(r, (long long)strlen(want));
      if (strcmp(got, want) != 0)
        FAIL("rank %d: the fd from local rank %d holds \"%s\", expected \"%s\"", rank, i, got,
             want);
      if (i != local_rank)
        ASSERT_NE(peer_fds[i], fd);
    }
    ASSERT_NE(peer_fds[local_rank], fd); /* a dup, owned by the caller */
    for (int i = 0; i < local_size; i++)
      close(peer_fds[i]);
    ASSERT_EQ(count_open_fds(), fds_before);
  }
  /* Every rank is past the final step: the directories are gone. (Rank 0 waits for the
   * leaders through one more barrier.) */
  if (a->bad_rank < 0) {
    ASSERT_OK(mixcomm__bs_barrier(tcp, "after exchange"));
    ASSERT_EQ(count_entries(a->base), 0);
  }
  close(fd);
  mixcomm_bootstrap_destroy(tcp);
  return 0;
}

static void fdx_setup(fdx_arg_t* a, int local_size, int bad_rank, int bad_mode) {
  memset(a, 0, sizeof *a);
  a->port = free_tcp_port();
  ASSERT(a->port > 0);
  a->local_size = local_size;
  a->bs_timeout_ms = 5000;
  a->fdx_timeout_ms = 5000;
  a->bad_rank = bad_rank;
  a->bad_mode = bad_mode;
  a->seed = random_seed();
  snprintf(a->base, sizeof a->base, "/tmp/mixcomm-test-XXXXXX");
  ASSERT(mkdtemp(a->base) != NULL);
  setenv("MIXCOMM_SOCKET_DIR", a->base, 1);
}

static int fdx_finish(fdx_arg_t* a) {
  int left = count_entries(a->base);
  if (left != 0)
    FAIL("%d entries left behind in %s", left, a->base);
  ASSERT(rmdir(a->base) == 0);
  return 0;
}

static int run_fdx(int world, int local_size) {
  fdx_arg_t a;
  fdx_setup(&a, local_size, -1, 0);
  ASSERT_EQ(run_ranks(world, fdx_rank, &a, 10000, NULL), 0);
  return fdx_finish(&a);
}

TEST_IMPL(bootstrap_fd_exchange_2) { return run_fdx(2, 2); }
TEST_IMPL(bootstrap_fd_exchange_3) { return run_fdx(3, 3); }
TEST_IMPL(bootstrap_fd_exchange_4) { return run_fdx(4, 4); }
TEST_IMPL(bootstrap_fd_exchange_two_nodes) { return run_fdx(4, 2); }
TEST_IMPL(bootstrap_fd_exchange_one_per_node) { return run_fdx(3, 1); }

TEST_IMPL(bootstrap_fd_exchange_rank_missing) {
  /* Rank 2 joins the bootstrap but never calls the exchange: the first collective of the
   * exchange times out naming it. */
  fdx_arg_t a;
  fdx_setup(&a, 4, 2, 1);
  a.bs_timeout_ms = 1500;
  a.fdx_timeout_ms = 1500;
  ASSERT_EQ(run_ranks(4, fdx_rank, &a, 10000, NULL), 0);
  return fdx_finish(&a);
}

TEST_IMPL(bootstrap_fd_exchange_rank_dies) {
  /* Local rank 1 of node 1 (world rank 3) dies once its socket exists: its node peer times out
   * naming it; node 0, whose exchange went fine, hears about it in the final step. */
  fdx_arg_t a;
  fdx_setup(&a, 2, 3, 2);
  a.bs_timeout_ms = 2000;
  a.fdx_timeout_ms = 1000;
  ASSERT_EQ(run_ranks(4, fdx_rank, &a, 10000, NULL), 0);
  return fdx_finish(&a);
}

TEST_IMPL(bootstrap_fd_exchange_invalid_args) {
  fake_ctx_t f = {0, 0, 0};
  mixcomm_bootstrap_t bs = {&f, fake_allgather, NULL, NULL, 1, 3};
  int fds[4] = {7, 7, 7, 7};
  ASSERT_ERR(mixcomm__fd_exchange(NULL, 0, 1, 0, 1000, fds), MIXCOMM_ERR_INVALID_ARGUMENT,
             "bootstrap");
  ASSERT_ERR(mixcomm__fd_exchange(&bs, 0, 1, 0, 1000, NULL), MIXCOMM_ERR_INVALID_ARGUMENT,
             "peer_fds");
  ASSERT_ERR(mixcomm__fd_exchange(&bs, 2, 2, 0, 1000, fds), MIXCOMM_ERR_INVALID_ARGUMENT,
             "local rank 2 of local size 2");
  ASSERT_ERR(mixcomm__fd_exchange(&bs, 0, 3, 0, 1000, fds), MIXCOMM_ERR_INVALID_ARGUMENT,
             "consecutive");
  ASSERT_ERR(mixcomm__fd_exchange(&bs, 1, 2, -1, 1000, fds), MIXCOMM_ERR_INVALID_ARGUMENT,
             "my_fd");
  ASSERT_ERR(mixcomm__fd_exchange(&bs, 1, 2, 0, 0, fds), MIXCOMM_ERR_INVALID_ARGUMENT,
             "timeout_ms");
  ASSERT_EQ(fds[0], -1);
  ASSERT_EQ(fds[1], -1);
  ASSERT_EQ(f.gathers, 0); /* nothing collective started */
  return 0;
}
