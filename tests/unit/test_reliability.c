/* SPDX-License-Identifier: Apache-2.0
 * Lost peers (bootstrap/peer_watch.c over the TCP bootstrap, ranks as forked processes, one of
 * them SIGKILLed), the agreement on one rank's failure (mixcomm__bs_agree), and the check that
 * a call runs on the handler's device. No GPU needed. */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "bootstrap/bootstrap.h"
#include "bootstrap/peer_watch.h"
#include "core/error.h"
#include "core/validate.h"
#include "harness/ranks.h"
#include "harness/task.h"

static double ms_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts); /* one clock for every process of the host */
  return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static void sleep_ms(int ms) { usleep((useconds_t)ms * 1000); }

typedef struct shared {
  int port, timeout_ms, victim;
  int root_in_collective; /* rank 0 enters a barrier right after the kill, racing its watch */
  unsigned seed;
  volatile double killed_at_ms;
} shared_t;

static shared_t* shared_new(int timeout_ms, int victim) {
  shared_t* s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT(s != MAP_FAILED);
  memset((void*)s, 0, sizeof *s);
  s->port = free_tcp_port();
  ASSERT(s->port > 0);
  s->timeout_ms = timeout_ms;
  s->victim = victim;
  s->seed = (unsigned)time(NULL) ^ (unsigned)getpid();
  return s;
}

/* Run fn as 4 ranks sharing a fresh shared_t; the test fails unless every rank succeeds
 * within limit_ms. */
static void run_shared(rank_fn fn, int timeout_ms, int victim, int limit_ms) {
  shared_t* s = shared_new(timeout_ms, victim);
  ASSERT_EQ(run_ranks(4, fn, s, limit_ms, NULL), 0);
  munmap(s, sizeof *s);
}

static mixcomm_bootstrap_t* tcp_bs(const shared_t* s, int rank, int n) {
  mixcomm_tcp_options_t o;
  memset(&o, 0, sizeof o);
  snprintf(o.addr, sizeof o.addr, "127.0.0.1");
  o.port = s->port;
  o.timeout_ms = s->timeout_ms;
  snprintf(o.token, sizeof o.token, "reliability-%d", s->port);
  mixcomm_bootstrap_t* bs = NULL;
  ASSERT_OK(mixcomm_bootstrap_tcp_create(&o, rank, n, &bs));
  return bs;
}

/* What the watch reported, written on its thread. */
typedef struct seen {
  volatile int lost, via, calls;
  volatile double at_ms;
} seen_t;

static void on_lost(void* arg, int lost, int via) {
  seen_t* s = arg;
  s->at_ms = ms_now();
  s->via = via;
  s->calls++;
  __sync_synchronize();
  s->lost = lost;
}

/* A watch on bs that reports into *seen (reset first). */
static mixcomm__peer_watch_t* watch(mixcomm_bootstrap_t* bs, seen_t* seen) {
  *seen = (seen_t){-1, -1, 0, 0};
  mixcomm__peer_watch_t* w = NULL;
  ASSERT_OK(mixcomm__peer_watch_start(bs, on_lost, seen, &w));
  ASSERT(w != NULL);
  return w;
}

static void wait_seen(const seen_t* s, int max_ms) {
  const double end = ms_now() + max_ms;
  while (s->lost < 0 && ms_now() < end)
    sleep_ms(2);
}

/* Pseudo-random bytes, distinct per (seed, rank, round). */
static void fill(unsigned char* p, size_t n, unsigned seed, int rank, int round) {
  uint32_t x = seed * 2654435761u ^ (uint32_t)rank * 40503u ^ (uint32_t)round * 977u;
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    p[i] = (unsigned char)(x >> 7);
  }
}

/* One checked allgather of `bytes` bytes per rank. */
static void checked_allgather(mixcomm_bootstrap_t* bs, unsigned seed, int round, size_t bytes) {
  const int n = bs->size;
  unsigned char* send = malloc(bytes + 1);
  unsigned char* recv = malloc((size_t)n * bytes + 1);
  unsigned char* want = malloc(bytes + 1);
  ASSERT(send && recv && want);
  fill(send, bytes, seed, bs->rank, round);
  memset(recv, 0x5a, (size_t)n * bytes);
  ASSERT_OK(mixcomm__bs_allgather(bs, send, recv, bytes, "watched allgather"));
  for (int r = 0; r < n; r++) {
    fill(want, bytes, seed, r, round);
    if (memcmp(recv + (size_t)r * bytes, want, bytes) != 0)
      FAIL("round %d (%zu bytes): rank %d's piece is wrong", round, bytes, r);
  }
  free(send);
  free(recv);
  free(want);
}

/* ---- a killed rank is reported by every other rank, fast ---------------------------------- */

static int killed_rank(int rank, int n, void* varg) {
  shared_t* s = varg;
  mixcomm_bootstrap_t* bs = tcp_bs(s, rank, n);
  seen_t seen;
  mixcomm__peer_watch_t* w = watch(bs, &seen);
  /* Traffic on the watched sockets first: the watch must neither take nor disturb it. */
  for (int round = 0; round < 6; round++)
    checked_allgather(bs, s->seed, round, (size_t)1 << (round * 3));
  ASSERT_EQ(seen.lost, -1); /* before the barrier: the victim is alive until everyone is here */
  ASSERT_OK(mixcomm__bs_barrier(bs, "before the kill"));
  if (rank == s->victim) {
    s->killed_at_ms = ms_now();
    __sync_synchronize();
    kill(getpid(), SIGKILL); /* no goodbye: the kernel closes the sockets */
    for (;;)
      pause();
  }
  if (rank == 0 && s->root_in_collective) {
    /* Rank 0's own collective finds the closed connection too; its notice must still name
     * the victim, so that the other ranks' watches blame it and not rank 0. */
    char victim[32];
    snprintf(victim, sizeof victim, "rank %d", s->victim);
    ASSERT_NE(mixcomm__bs_barrier(bs, "racing the watch"), MIXCOMM_SUCCESS);
    ASSERT_CONTAINS(mixcomm_last_error(), victim);
  }
  wait_seen(&seen, 5000);
  if (seen.lost < 0)
    FAIL("rank %d: the watch reported nothing within 5 s of rank %d's death", rank, s->victim);
  ASSERT_EQ(seen.lost, s->victim);
  ASSERT_EQ(seen.calls, 1);
  /* Rank 0 sees the victim's own connection close; the others learn it from rank 0. */
  ASSERT_EQ(seen.via, rank == 0 ? s->victim : 0);
  const double took = seen.at_ms - s->killed_at_ms;
  if (took > 1000)
    FAIL("rank %d: rank %d's death was reported after %.0f ms (limit 1000)", rank, s->victim,
         took);
  /* The bootstrap is unusable from now on, at once, naming the victim. */
  char name[32];
  snprintf(name, sizeof name, "rank %d", s->victim);
  const double t0 = ms_now();
  mixcomm_status_t st = mixcomm__bs_barrier(bs, "after the kill");
  ASSERT_NE(st, MIXCOMM_SUCCESS);
  if (s->victim != 0 && !s->root_in_collective)
    ASSERT_EQ(st, MIXCOMM_ERR_PEER_LOST);
  else /* rank 0's own collective may have seen the close first ("closed the connection") */
    ASSERT(st == MIXCOMM_ERR_PEER_LOST || st == MIXCOMM_ERR_BOOTSTRAP);
  ASSERT_CONTAINS(mixcomm_last_error(), name);
  ASSERT(ms_now() - t0 < 1000);
  mixcomm__peer_watch_stop(w);
  mixcomm_bootstrap_destroy(bs);
  return 0;
}

static void run_killed(int victim, int root_in_collective) {
  const int n = 4;
  shared_t* s = shared_new(10000, victim);
  s->root_in_collective = root_in_collective;
  int statuses[4];
  const int failed = run_ranks(n, killed_rank, s, 15000, statuses);
  for (int r = 0; r < n; r++) {
    if (r == victim && statuses[r] != 128 + SIGKILL)
      FAIL("victim rank %d ended with %d, expected SIGKILL", r, statuses[r]);
    if (r != victim && statuses[r] != 0)
      FAIL("rank %d failed (exit %d)", r, statuses[r]);
  }
  ASSERT_EQ(failed, 1);
  munmap(s, sizeof *s);
}

TEST_IMPL(peer_watch_nonroot_killed) {
  run_killed(2, 0);
  return 0;
}

TEST_IMPL(peer_watch_root_killed) {
  run_killed(0, 0);
  return 0;
}

TEST_IMPL(peer_watch_killed_during_collective) {
  for (int i = 0; i < 3; i++) /* the race between rank 0's barrier and its watch, 3 times */
    run_killed(3, 1);
  return 0;
}

/* ---- the watch leaves the bootstrap's collectives alone ------------------------------------ */

static int undisturbed_rank(int rank, int n, void* varg) {
  shared_t* s = varg;
  mixcomm_bootstrap_t* bs = tcp_bs(s, rank, n);
  seen_t seen;
  mixcomm__peer_watch_t* w = watch(bs, &seen);
  /* Sizes from 0 bytes to beyond a socket buffer, ranks arriving at different times. */
  for (int round = 0; round < 60; round++) {
    if ((round + rank) % 7 == 0)
      sleep_ms(5 * rank);
    const size_t bytes = round % 10 == 9 ? 300000 : (size_t)((round * 2654435761u) % 5000);
    checked_allgather(bs, s->seed, round, bytes);
    if (round % 13 == 0)
      ASSERT_OK(mixcomm__bs_barrier(bs, "watched barrier"));
  }
  /* A second watch on the same bootstrap (two handlers) changes nothing either. */
  seen_t seen2 = {-1, -1, 0, 0};
  mixcomm__peer_watch_t* w2 = NULL;
  ASSERT_OK(mixcomm__peer_watch_start(bs, on_lost, &seen2, &w2));
  checked_allgather(bs, s->seed, 100, 4096);
  mixcomm__peer_watch_stop(w2);
  /* The shutdown order of a handler: stop watching, then the last barrier, then close. */
  mixcomm__peer_watch_stop(w);
  ASSERT_OK(mixcomm__bs_barrier(bs, "last"));
  ASSERT_EQ(seen.lost, -1);
  ASSERT_EQ(seen.calls, 0);
  ASSERT_EQ(seen2.calls, 0);
  mixcomm_bootstrap_destroy(bs);
  return 0;
}

TEST_IMPL(peer_watch_collectives_undisturbed) {
  run_shared(undisturbed_rank, 10000, -1, 25000);
  return 0;
}

/* ---- nothing to watch -------------------------------------------------------------------- */

static int fake_allgather(void* ctx, const void* send, void* recv, size_t bytes) {
  (void)ctx;
  memcpy(recv, send, bytes);
  return 0;
}
static int fake_barrier(void* ctx) {
  (void)ctx;
  return 0;
}

TEST_IMPL(peer_watch_nothing_to_watch) {
  seen_t seen = {-1, -1, 0, 0};
  /* A framework's callbacks: no connection mixcomm can see. */
  mixcomm_bootstrap_t cb;
  memset(&cb, 0, sizeof cb);
  cb.allgather = fake_allgather;
  cb.barrier = fake_barrier;
  cb.rank = 1;
  cb.size = 2;
  mixcomm__peer_watch_t* w = (mixcomm__peer_watch_t*)&cb;
  ASSERT_OK(mixcomm__peer_watch_start(&cb, on_lost, &seen, &w));
  ASSERT(w == NULL);
  ASSERT_EQ(mixcomm__tcp_links(&cb, NULL, NULL, 0), 0);
  ASSERT_EQ(mixcomm__tcp_lost_rank(&cb), -1);
  mixcomm__tcp_report_lost(&cb, 1); /* not ours: nothing happens */
  /* One rank: no connections at all. */
  mixcomm_tcp_options_t o;
  memset(&o, 0, sizeof o);
  mixcomm_bootstrap_t* one = NULL;
  ASSERT_OK(mixcomm_bootstrap_tcp_create(&o, 0, 1, &one));
  w = (mixcomm__peer_watch_t*)&cb;
  ASSERT_OK(mixcomm__peer_watch_start(one, on_lost, &seen, &w));
  ASSERT(w == NULL);
  mixcomm__peer_watch_stop(w); /* NULL is fine */
  mixcomm_bootstrap_destroy(one);
  ASSERT_EQ(seen.calls, 0);
  return 0;
}

/* ---- agreement on one rank's failure ------------------------------------------------------- */

/* victim: -1 none, else it fails; victim + 10: ranks 1 and 3 fail. */
static int agree_rank(int rank, int n, void* varg) {
  shared_t* s = varg;
  mixcomm_bootstrap_t* bs = tcp_bs(s, rank, n);
  const int two = s->victim >= 10;
  const int fails = two ? (rank == 1 || rank == 3) : rank == s->victim;
  mixcomm_status_t mine = MIXCOMM_SUCCESS;
  if (fails) {
    if (rank == 1)
      sleep_ms(300); /* arrives late: the others wait for it, not for a timeout */
    mine = mixcomm__error(rank == 3 ? MIXCOMM_ERR_OUT_OF_MEMORY : MIXCOMM_ERR_CUDA,
                          "cuMemSetAccess said no on this rank (test %d)", rank);
  }
  const double t0 = ms_now();
  mixcomm_status_t st = mixcomm__bs_agree(bs, mine, "mapping the node workspace");
  const double took = ms_now() - t0;
  if (took > 2000)
    FAIL("rank %d: the agreement took %.0f ms", rank, took);
  if (s->victim < 0) {
    ASSERT_OK(st);
  } else {
    const int first = two ? 1 : s->victim;
    char name[64];
    snprintf(name, sizeof name, "rank %d%s failed (%d of %d ranks failed)", first,
             rank == first ? " (this rank)" : "", two ? 2 : 1, n);
    ASSERT_ERR(st, two ? MIXCOMM_ERR_CUDA : MIXCOMM_ERR_CUDA, name);
    ASSERT_CONTAINS(mixcomm_last_error(), "mapping the node workspace");
    char why[64];
    snprintf(why, sizeof why, "cuMemSetAccess said no on this rank (test %d)", first);
    ASSERT_CONTAINS(mixcomm_last_error(), why);
  }
  /* The bootstrap stays usable after an agreed failure. */
  ASSERT_OK(mixcomm__bs_barrier(bs, "after the agreement"));
  mixcomm_bootstrap_destroy(bs);
  return 0;
}

TEST_IMPL(bs_agree_all_succeed) {
  run_shared(agree_rank, 10000, -1, 12000);
  return 0;
}

TEST_IMPL(bs_agree_one_fails) {
  for (int victim = 0; victim < 4; victim += 2)
    run_shared(agree_rank, 10000, victim, 12000);
  return 0;
}

TEST_IMPL(bs_agree_failure_is_prompt) {
  run_shared(agree_rank, 10000, 10, 12000); /* ranks 1 (late) and 3 fail; rank 1 is named */
  return 0;
}

/* ---- the device of a call ------------------------------------------------------------------ */

TEST_IMPL(current_device_check) {
  ASSERT_OK(mixcomm__validate_current_device(3, 3, 0, "run"));
  ASSERT_ERR(mixcomm__validate_current_device(0, 1, 5, "run"), MIXCOMM_ERR_INVALID_USAGE,
             "the current CUDA device is 0 but the handler uses device 1");
  ASSERT_CONTAINS(mixcomm_last_error(), "rank 5");
  ASSERT_CONTAINS(mixcomm_last_error(), "cudaSetDevice(1)");
  ASSERT_CONTAINS(mixcomm_last_error(), "torch.cuda.set_device(1)");
  ASSERT_ERR(mixcomm__validate_current_device(2, 0, 1, "run_epilogue"),
             MIXCOMM_ERR_INVALID_USAGE, "run_epilogue on rank 1");
  return 0;
}
