/* SPDX-License-Identifier: Apache-2.0
 * The TCP bootstrap's collectives on healthy ranks (forked processes over loopback): allgather
 * of random data at many sizes (0 bytes, odd sizes, beyond a socket buffer, in place), barrier
 * (it really waits for a late rank) and broadcast from every root. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bootstrap_test.h"

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
  return run_tcp_ranks(n, allgather_rank, 10000, 0, 15000);
}

TEST_IMPL(bootstrap_tcp_allgather_1) {
  /* size 1: no socket, no port needed. */
  clear_bootstrap_env();
  return run_allgather(1);
}
TEST_IMPL(bootstrap_tcp_allgather_2) {
  return run_allgather(2);
}
TEST_IMPL(bootstrap_tcp_allgather_4) {
  return run_allgather(4);
}
TEST_IMPL(bootstrap_tcp_allgather_7) {
  return run_allgather(7);
}

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
  return run_tcp_ranks(4, barrier_rank, 5000, 0, 10000);
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
  return run_tcp_ranks(4, broadcast_rank, 5000, 0, 10000);
}
