/* SPDX-License-Identifier: Apache-2.0
 * The collective autotune decision. Every rank times every (op, bucket, mode) with the
 * handler's timer; then, one allgather per op, every rank learns every rank's times, replaces
 * each by its maximum over the ranks and picks the fastest mode per bucket. Because all ranks
 * compute the choice from the same gathered numbers, they end with the same table: a rank that
 * chose differently would run a different algorithm than its peers and hang them.
 *
 * Failures are agreed on as well: what a rank sends for an op starts with a header (its status,
 * where it failed, and what it was asked to measure), so a rank whose timer fails still takes
 * part in every allgather and every rank returns the same kind of error naming it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bootstrap/bootstrap.h"
#include "core/error.h"
#include "core/log.h"
#include "tune/tune.h"

/* Header of one rank's contribution (doubles hold these small integers exactly). */
enum {
  HDR_STATUS,      /* MIXCOMM_SUCCESS, or the status of the failed measurement */
  HDR_FAIL_MODE,   /* mode being timed when it failed (-1 if none) */
  HDR_FAIL_BUCKET, /* bucket being timed when it failed (-1 if none) */
  HDR_OP,          /* what this rank measures: must be the same on every rank */
  HDR_BUCKETS,
  HDR_NMODES,
  HDR_MODES_HASH,  /* 32-bit hash of the mode list */
  HDR_WORDS
};

/* Status used when the timer returned success but a time that is not a finite number >= 0. */
#define BAD_TIME_STATUS MIXCOMM_ERR_INTERNAL

static uint32_t modes_hash(const mixcomm_mode_t* modes, int nmodes) {
  uint32_t h = 2166136261u;
  for (int i = 0; i < nmodes; i++) {
    h ^= (uint32_t)(modes[i] + 1);
    h *= 16777619u;
  }
  return h;
}

static mixcomm_status_t check_args(mixcomm_bootstrap_t* bs, const mixcomm_op_t* ops, int nops,
                                   const mixcomm_mode_t* modes, int nmodes, int num_buckets,
                                   mixcomm__tune_timer_fn timer, mixcomm__tune_table_t table) {
  if (bs == NULL || bs->size < 1 || bs->rank < 0 || bs->rank >= bs->size)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "autotune: no usable bootstrap");
  if (nops < 0 || (nops > 0 && ops == NULL))
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "autotune: bad op list (%d ops)", nops);
  if (nmodes < 1 || nmodes > MIXCOMM_NUM_MODES || modes == NULL)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "autotune: bad mode list (%d modes; 1 to %d expected)", nmodes,
                          (int)MIXCOMM_NUM_MODES);
  if (num_buckets < 1 || num_buckets > MIXCOMM_TUNE_BUCKETS)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "autotune: %d buckets (1 to %d expected)", num_buckets,
                          MIXCOMM_TUNE_BUCKETS);
  if (timer == NULL || table == NULL)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "autotune: no timer or no table");
  for (int i = 0; i < nops; i++) {
    if (ops[i] < 0 || ops[i] >= MIXCOMM_NUM_OPS)
      return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "autotune: op %d is not an op",
                            (int)ops[i]);
  }
  for (int i = 0; i < nmodes; i++) {
    if (modes[i] < 0 || modes[i] >= MIXCOMM_MODE_AUTOTUNE)
      return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                            "autotune: mode %d cannot be measured (a fused or NCCL mode is "
                            "expected)",
                            (int)modes[i]);
    for (int j = 0; j < i; j++) {
      if (modes[j] == modes[i])
        return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "autotune: mode %s listed twice",
                              mixcomm_mode_name(modes[i]));
    }
  }
  return MIXCOMM_SUCCESS;
}

/* Time every (bucket, mode) of op on this rank into hdr and times[bucket * nmodes + m]. Stops
 * at the first failure (the state of the GPU may be broken) and records it in the header;
 * `detail` receives the timer's message. */
static void measure_op(mixcomm_op_t op, const mixcomm_mode_t* modes, int nmodes,
                       int num_buckets, mixcomm__tune_timer_fn timer, void* ctx, double* hdr,
                       double* times, char* detail, size_t detail_size) {
  hdr[HDR_STATUS] = MIXCOMM_SUCCESS;
  hdr[HDR_FAIL_MODE] = -1;
  hdr[HDR_FAIL_BUCKET] = -1;
  for (int i = 0; i < num_buckets * nmodes; i++)
    times[i] = 0.0;
  for (int b = 0; b < num_buckets; b++) {
    for (int m = 0; m < nmodes; m++) {
      double us = NAN;
      mixcomm_status_t st = timer(ctx, op, modes[m], b, &us);
      if (st == MIXCOMM_SUCCESS && !(isfinite(us) && us >= 0.0)) {
        snprintf(detail, detail_size, "the timer returned %g us, not a finite time >= 0", us);
        st = BAD_TIME_STATUS;
      } else if (st != MIXCOMM_SUCCESS) {
        snprintf(detail, detail_size, "%s", mixcomm_last_error());
      }
      if (st != MIXCOMM_SUCCESS) {
        hdr[HDR_STATUS] = st;
        hdr[HDR_FAIL_MODE] = modes[m];
        hdr[HDR_FAIL_BUCKET] = b;
        return;
      }
      times[b * nmodes + m] = us;
    }
  }
}

/* Message and status when one or more ranks failed to measure op. The status returned is that
 * of the first failing rank whose failure is not a timeout (a timeout is usually a consequence
 * of another rank's failure), else the first failing rank's. */
static mixcomm_status_t report_failures(mixcomm_bootstrap_t* bs, mixcomm_op_t op,
                                        const double* all, size_t words, const char* detail) {
  int first = -1, cause = -1, count = 0;
  for (int r = 0; r < bs->size; r++) {
    const double* h = all + (size_t)r * words;
    if (h[HDR_STATUS] == MIXCOMM_SUCCESS)
      continue;
    count++;
    if (first < 0)
      first = r;
    if (cause < 0 && h[HDR_STATUS] != MIXCOMM_ERR_TIMEOUT)
      cause = r;
  }
  if (cause < 0)
    cause = first;
  const double* h = all + (size_t)cause * words;
  int st = (int)h[HDR_STATUS];
  if (st <= 0 || st >= MIXCOMM_NUM_STATUS)
    st = MIXCOMM_ERR_INTERNAL;
  int mode = (int)h[HDR_FAIL_MODE], bucket = (int)h[HDR_FAIL_BUCKET];
  const char* mode_name = mixcomm_mode_name((mixcomm_mode_t)mode);
  char others[64] = "";
  if (count > 1)
    snprintf(others, sizeof others, " (%d ranks failed in all)", count);
  if (cause == bs->rank) {
    return mixcomm__error((mixcomm_status_t)st,
                          "autotune of %s: rank %d (this rank) failed timing %s at %llu bytes "
                          "per rank%s: %s",
                          mixcomm_op_name(op), cause, mode_name ? mode_name : "?",
                          (unsigned long long)mixcomm__tune_bucket_bytes(bucket), others,
                          detail);
  }
  return mixcomm__error((mixcomm_status_t)st,
                        "autotune of %s: rank %d failed timing %s at %llu bytes per rank (%s)%s; "
                        "no mode was chosen",
                        mixcomm_op_name(op), cause, mode_name ? mode_name : "?",
                        (unsigned long long)mixcomm__tune_bucket_bytes(bucket),
                        mixcomm_status_name((mixcomm_status_t)st), others);
}

mixcomm_status_t mixcomm__tune_measure_and_agree(mixcomm_bootstrap_t* bs, const mixcomm_op_t* ops,
                                                 int nops, const mixcomm_mode_t* modes, int nmodes,
                                                 int num_buckets, mixcomm__tune_timer_fn timer,
                                                 void* ctx, mixcomm__tune_table_t table) {
  MIXCOMM_CHECK(check_args(bs, ops, nops, modes, nmodes, num_buckets, timer, table));
  size_t words = HDR_WORDS + (size_t)num_buckets * (size_t)nmodes;
  double* mine = calloc(words, sizeof(double));
  double* all = calloc(words * (size_t)bs->size, sizeof(double));
  if (mine == NULL || all == NULL) {
    free(mine);
    free(all);
    return mixcomm__error(MIXCOMM_ERR_OUT_OF_MEMORY,
                          "autotune: out of host memory for %d ranks' timings", bs->size);
  }
  mixcomm__tune_table_t result;
  memcpy(result, table, sizeof result);
  uint32_t mhash = modes_hash(modes, nmodes);
  mixcomm_status_t st = MIXCOMM_SUCCESS;

  for (int i = 0; i < nops && st == MIXCOMM_SUCCESS; i++) {
    mixcomm_op_t op = ops[i];
    char detail[512] = "";
    mine[HDR_OP] = op;
    mine[HDR_BUCKETS] = num_buckets;
    mine[HDR_NMODES] = nmodes;
    mine[HDR_MODES_HASH] = mhash;
    measure_op(op, modes, nmodes, num_buckets, timer, ctx, mine, mine + HDR_WORDS, detail,
               sizeof detail);
    char what[96];
    snprintf(what, sizeof what, "autotune of %s: exchanging timings", mixcomm_op_name(op));
    st = mixcomm__bs_allgather(bs, mine, all, words * sizeof(double), what);
    if (st != MIXCOMM_SUCCESS)
      break;
    for (int r = 0; r < bs->size && st == MIXCOMM_SUCCESS; r++) {
      const double* h = all + (size_t)r * words;
      if (h[HDR_OP] != op || h[HDR_BUCKETS] != num_buckets || h[HDR_NMODES] != nmodes ||
          h[HDR_MODES_HASH] != mhash)
        st = mixcomm__error(MIXCOMM_ERR_MISMATCH,
                            "autotune: rank %d measures op %d over %d buckets and %d modes "
                            "(mode list hash %08x) but rank %d measures %s over %d buckets and "
                            "%d modes (hash %08x): the ranks' valid op or mode lists differ",
                            r, (int)h[HDR_OP], (int)h[HDR_BUCKETS], (int)h[HDR_NMODES],
                            (unsigned)h[HDR_MODES_HASH], bs->rank, mixcomm_op_name(op),
                            num_buckets, nmodes, (unsigned)mhash);
    }
    if (st != MIXCOMM_SUCCESS)
      break;
    int failed = 0;
    for (int r = 0; r < bs->size; r++)
      failed |= all[(size_t)r * words + HDR_STATUS] != MIXCOMM_SUCCESS;
    if (failed) {
      st = report_failures(bs, op, all, words, detail);
      break;
    }
    for (int b = 0; b < num_buckets; b++) {
      int best = 0;
      double best_us = 0.0;
      for (int m = 0; m < nmodes; m++) {
        double worst = 0.0; /* the slowest rank decides how long a collective takes */
        for (int r = 0; r < bs->size; r++) {
          double t = all[(size_t)r * words + HDR_WORDS + (size_t)b * nmodes + m];
          if (t > worst)
            worst = t;
        }
        if (m == 0 || worst < best_us) {
          best = m;
          best_us = worst;
        }
      }
      result[op][b] = modes[best];
      MIXCOMM_DEBUG("autotune: %s at %llu bytes per rank -> %s (%.2f us over %d ranks)",
                    mixcomm_op_name(op), (unsigned long long)mixcomm__tune_bucket_bytes(b),
                    mixcomm_mode_name(modes[best]), best_us, bs->size);
    }
  }
  free(mine);
  free(all);
  if (st == MIXCOMM_SUCCESS)
    memcpy(table, result, sizeof result);
  return st;
}
