/* SPDX-License-Identifier: Apache-2.0
 * Message-size buckets of the autotune table: per-rank bytes 8 KiB * 2^k, as in FlashInfer's
 * autotune. A message is put in the bucket whose size is nearest on a log scale, computed in integers so
 * that the same bytes give the same bucket on every rank and every compiler. */
#include "tune/tune.h"

int mixcomm__tune_num_buckets(int dp_size) {
  int floor_log2 = 0;
  /* floor(log2(dp)) for dp >= 1; a non-positive dp is treated as 1. */
  for (unsigned v = dp_size > 1 ? (unsigned)dp_size : 1u; v > 1; v >>= 1)
    floor_log2++;
  int n = 15 - floor_log2;
  if (n < 1)
    n = 1;
  if (n > MIXCOMM_TUNE_BUCKETS)
    n = MIXCOMM_TUNE_BUCKETS;
  return n;
}

/* round(log2(bytes / 8 KiB)), clamped. Bucket k covers (8K * 2^(k-0.5), 8K * 2^(k+0.5)]: the
 * boundary between k and k+1 is the geometric midpoint lo * sqrt(2) with lo = 8 KiB * 2^k, and
 * bytes lies above it exactly when bytes^2 > 2 * lo^2, which is compared in integers. Equality
 * is impossible for integer bytes (sqrt(2) is irrational); it would go down. Clamping first keeps
 * bytes below 2^27, so the squares fit in 64 bits. */
int mixcomm__tune_bucket(uint64_t bytes_per_rank, int num_buckets) {
  if (num_buckets < 1)
    num_buckets = 1;
  if (num_buckets > MIXCOMM_TUNE_BUCKETS)
    num_buckets = MIXCOMM_TUNE_BUCKETS;
  int last = num_buckets - 1;
  if (bytes_per_rank <= MIXCOMM_TUNE_BASE_BYTES)
    return 0;
  if (bytes_per_rank >= (MIXCOMM_TUNE_BASE_BYTES << last))
    return last;
  int k = 0; /* largest k with 8 KiB * 2^k <= bytes (k < last here) */
  while ((MIXCOMM_TUNE_BASE_BYTES << (k + 1)) <= bytes_per_rank)
    k++;
  uint64_t lo = MIXCOMM_TUNE_BASE_BYTES << k;
  return bytes_per_rank * bytes_per_rank > 2 * lo * lo ? k + 1 : k;
}

uint64_t mixcomm__tune_bucket_bytes(int bucket) {
  if (bucket < 0 || bucket >= MIXCOMM_TUNE_BUCKETS)
    return 0;
  return MIXCOMM_TUNE_BASE_BYTES << bucket;
}
