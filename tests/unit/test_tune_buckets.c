/* SPDX-License-Identifier: Apache-2.0
 * Tests of the autotune size buckets: how many a DP size gets, their sizes, and which bucket a
 * message falls in. Expected values come from the formulas in src/tune/tune.h and
 * docs/mode-selection.md, computed here independently (integer square roots for the bucket
 * boundaries, round(log2) in long double for a random sweep). */
#include <math.h>
#include <stdint.h>

#include "fixtures.h"
#include "harness/task.h"
#include "tune/tune.h"

/* ---------------------------------------------------------------------------------------- */
/* Buckets                                                                                   */
/* ---------------------------------------------------------------------------------------- */

/* floor(sqrt(x)) by bisection (no floating point). */
static uint64_t isqrt_u64(uint64_t x) {
  uint64_t lo = 0, hi = 1ull << 32;
  while (hi - lo > 1) {
    uint64_t mid = lo + (hi - lo) / 2;
    if (mid * mid <= x)
      lo = mid;
    else
      hi = mid;
  }
  return lo;
}

TEST_IMPL(tune_num_buckets) {
  ASSERT_EQ(mixcomm__tune_num_buckets(1), 15);
  ASSERT_EQ(mixcomm__tune_num_buckets(2), 14);
  ASSERT_EQ(mixcomm__tune_num_buckets(3), 14);
  ASSERT_EQ(mixcomm__tune_num_buckets(4), 13);
  ASSERT_EQ(mixcomm__tune_num_buckets(7), 13);
  ASSERT_EQ(mixcomm__tune_num_buckets(8), 12);
  ASSERT_EQ(mixcomm__tune_num_buckets(16), 11);
  ASSERT_EQ(mixcomm__tune_num_buckets(1 << 13), 2);
  ASSERT_EQ(mixcomm__tune_num_buckets(1 << 14), 1);
  ASSERT_EQ(mixcomm__tune_num_buckets(1 << 20), 1);
  ASSERT_EQ(mixcomm__tune_num_buckets(0x7fffffff), 1);
  /* dp * largest bucket stays <= 128 MiB for powers of two and < 256 MiB otherwise. */
  for (int dp = 1; dp <= 4096; dp++) {
    int nb = mixcomm__tune_num_buckets(dp);
    ASSERT(nb >= 1 && nb <= MIXCOMM_TUNE_BUCKETS);
    uint64_t total = (uint64_t)dp * mixcomm__tune_bucket_bytes(nb - 1);
    if (nb > 1 && (dp & (dp - 1)) == 0)
      ASSERT(total <= (128ull << 20));
    if (nb > 1)
      ASSERT(total < (256ull << 20));
  }
  return 0;
}

TEST_IMPL(tune_bucket_mapping) {
  for (int k = 0; k < MIXCOMM_TUNE_BUCKETS; k++)
    ASSERT_EQ(mixcomm__tune_bucket_bytes(k), 8192ull << k);
  ASSERT_EQ(mixcomm__tune_bucket_bytes(-1), 0);
  ASSERT_EQ(mixcomm__tune_bucket_bytes(MIXCOMM_TUNE_BUCKETS), 0);

  /* 0 bytes and anything up to 8 KiB: bucket 0. */
  ASSERT_EQ(mixcomm__tune_bucket(0, 15), 0);
  ASSERT_EQ(mixcomm__tune_bucket(1, 15), 0);
  ASSERT_EQ(mixcomm__tune_bucket(8191, 15), 0);
  ASSERT_EQ(mixcomm__tune_bucket(8192, 15), 0);
  /* Hand-checked boundary: 8192 * sqrt(2) = 11585.24 */
  ASSERT_EQ(mixcomm__tune_bucket(11585, 15), 0);
  ASSERT_EQ(mixcomm__tune_bucket(11586, 15), 1);
  ASSERT_EQ(mixcomm__tune_bucket(16384, 15), 1);
  /* 1 MiB = 8 KiB * 2^7 */
  ASSERT_EQ(mixcomm__tune_bucket(1u << 20, 15), 7);

  for (int nb = 1; nb <= MIXCOMM_TUNE_BUCKETS; nb++) {
    for (int k = 0; k < nb; k++) {
      uint64_t p = 8192ull << k;
      /* Exact powers and their neighbours. */
      ASSERT_EQ(mixcomm__tune_bucket(p, nb), k);
      ASSERT_EQ(mixcomm__tune_bucket(p - 1, nb), k);
      ASSERT_EQ(mixcomm__tune_bucket(p + 1, nb), k);
      /* Geometric midpoint to the next power: floor(p * sqrt 2) stays, one more goes up. */
      uint64_t mid = isqrt_u64(2 * p * p);
      ASSERT(mid * mid < 2 * p * p && (mid + 1) * (mid + 1) > 2 * p * p);
      int up = k + 1 < nb ? k + 1 : nb - 1;
      ASSERT_EQ(mixcomm__tune_bucket(mid - 1, nb), k);
      ASSERT_EQ(mixcomm__tune_bucket(mid, nb), k);
      ASSERT_EQ(mixcomm__tune_bucket(mid + 1, nb), up);
      ASSERT_EQ(mixcomm__tune_bucket(mid + 2, nb), up);
    }
    /* Huge messages: the last bucket. */
    ASSERT_EQ(mixcomm__tune_bucket(8192ull << 20, nb), nb - 1);
    ASSERT_EQ(mixcomm__tune_bucket(UINT64_MAX, nb), nb - 1);
    ASSERT_EQ(mixcomm__tune_bucket(UINT64_MAX / 2 + 1, nb), nb - 1);
  }
  /* Bad bucket counts are clamped to [1, 15]. */
  ASSERT_EQ(mixcomm__tune_bucket(1u << 30, 0), 0);
  ASSERT_EQ(mixcomm__tune_bucket(1u << 30, -3), 0);
  ASSERT_EQ(mixcomm__tune_bucket(UINT64_MAX, 99), MIXCOMM_TUNE_BUCKETS - 1);

  /* A sweep against round(log2(bytes / 8 KiB)) in long double, away from midpoints. */
  test_rng_t gen = {88172645463325252ull};
  for (int i = 0; i < 200000; i++) {
    uint64_t bytes = rng_next(&gen) % (300ull << 20);
    long double c = log2l((long double)bytes / 8192.0L);
    long double frac = c - floorl(c);
    if (bytes != 0 && fabsl(frac - 0.5L) < 1e-6L)
      continue;
    int want = bytes <= 8192 ? 0 : (int)llroundl(c);
    if (want > 14)
      want = 14;
    if (want < 0)
      want = 0;
    int got = mixcomm__tune_bucket(bytes, 15);
    if (got != want)
      FAIL("bucket(%llu) = %d, round(log2) gives %d", (unsigned long long)bytes, got, want);
  }
  return 0;
}
