/* SPDX-License-Identifier: Apache-2.0
 * The helpers of bootstrap.h (allgather, barrier, broadcast, destroy) on a bootstrap made of a
 * framework's callbacks: results, failures turned into statuses, broken structs. */
#include <stdint.h>
#include <string.h>

#include "bootstrap_test.h"

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
