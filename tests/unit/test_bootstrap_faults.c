/* SPDX-License-Identifier: Apache-2.0
 * The TCP bootstrap when something goes wrong: a stray process of another job, a duplicate
 * rank, a rank or rank 0 that never comes, a rank that dies, stalls or passes another size
 * after setup. Short timeouts (1-3 s); each scenario checks the status and that the message
 * names the rank at fault, on every rank. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bootstrap_test.h"

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
  return run_tcp_ranks(5, wrong_token_rank, 5000, 0, 10000);
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
  return run_tcp_ranks(5, duplicate_rank, 6000, 0, 10000);
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
  return run_tcp_ranks(4, missing_rank, 1500, 2, 8000);
}

TEST_IMPL(bootstrap_tcp_root_missing) {
  return run_tcp_ranks(4, missing_rank, 1000, 0, 8000);
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
  return run_tcp_ranks(4, peer_dies_rank, 3000, 3, 10000);
}

TEST_IMPL(bootstrap_tcp_root_dies) {
  return run_tcp_ranks(4, peer_dies_rank, 3000, 0, 10000);
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
  return run_tcp_ranks(4, peer_stalls_rank, 1000, 0, 9000);
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
  return run_tcp_ranks(4, size_mismatch_rank, 3000, 0, 10000);
}
