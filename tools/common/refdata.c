/* SPDX-License-Identifier: Apache-2.0
 * Host-side inputs, float64 reference and checker (see refdata.h). Nothing here uses the
 * library's algorithms: the reference is the definition of each operation (README.md's
 * table) summed in float64. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/refdata.h"

static uint64_t splitmix(uint64_t* s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static uint64_t mix(uint64_t a, uint64_t b) {
  uint64_t s = a * 0x2545F4914F6CDD1Dull ^ b;
  return splitmix(&s);
}

/* ---- fp16 / bf16 conversions --------------------------------------------------------- */

static double half_to_double(uint16_t h) {
  const int sign = h >> 15, exp = (h >> 10) & 0x1F, man = h & 0x3FF;
  double v;
  if (exp == 0)
    v = ldexp((double)man, -24);
  else if (exp == 31)
    v = man ? NAN : INFINITY;
  else
    v = ldexp((double)(man | 0x400), exp - 25);
  return sign ? -v : v;
}

static uint16_t double_to_half(double v) {
  if (isnan(v))
    return 0x7E00;
  const uint16_t sign = signbit(v) ? 0x8000 : 0;
  double a = fabs(v);
  if (a >= 65520.0)
    return sign | 0x7C00;
  if (a < ldexp(1.0, -25))
    return sign; /* below half the smallest subnormal: rounds to zero */
  int e;
  frexp(a, &e); /* a = f * 2^e, f in [0.5, 1) */
  int exp = e - 1 + 15;
  if (exp < 1) { /* subnormal: units of 2^-24 */
    double q = nearbyint(a * ldexp(1.0, 24));
    return sign | (uint16_t)q;
  }
  double q = nearbyint(a * ldexp(1.0, 10 - (e - 1))); /* in [1024, 2048] */
  if (q >= 2048.0) {
    q /= 2;
    exp++;
  }
  if (exp >= 31)
    return sign | 0x7C00;
  return sign | (uint16_t)(exp << 10) | ((uint16_t)q & 0x3FF);
}

static double bf16_to_double(uint16_t b) {
  uint32_t u = (uint32_t)b << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

static uint16_t double_to_bf16(double v) {
  float f = (float)v;
  uint32_t u;
  memcpy(&u, &f, 4);
  if (isnan(f))
    return 0x7FC0;
  u += 0x7FFF + ((u >> 16) & 1); /* round to nearest even */
  return (uint16_t)(u >> 16);
}

double ref_to_double(mixcomm_dtype_t dtype, const void* elems, size_t i) {
  switch (dtype) {
    case MIXCOMM_FLOAT16:
      return half_to_double(((const uint16_t*)elems)[i]);
    case MIXCOMM_BFLOAT16:
      return bf16_to_double(((const uint16_t*)elems)[i]);
    default:
      return ((const float*)elems)[i];
  }
}

void ref_from_double(mixcomm_dtype_t dtype, void* elems, size_t i, double v) {
  switch (dtype) {
    case MIXCOMM_FLOAT16:
      ((uint16_t*)elems)[i] = double_to_half(v);
      break;
    case MIXCOMM_BFLOAT16:
      ((uint16_t*)elems)[i] = double_to_bf16(v);
      break;
    default:
      ((float*)elems)[i] = (float)v;
      break;
  }
}

static void set_all_ones(mixcomm_dtype_t dtype, void* elems, size_t i) {
  if (dtype == MIXCOMM_FLOAT32)
    ((uint32_t*)elems)[i] = 0xFFFFFFFFu;
  else
    ((uint16_t*)elems)[i] = 0xFFFF;
}

/* Positions where every rank holds -0.0 (their exact sum is -0.0). */
static int common_neg_zero(uint64_t seed, size_t i) { return mix(seed, i) % 89 == 7; }

void ref_fill_input(mixcomm_dtype_t dtype, uint64_t seed, int rank, void* elems, size_t count,
                    unsigned specials) {
  uint64_t s = mix(seed, 0x1000u + (uint64_t)rank);
  for (size_t i = 0; i < count; i++) {
    const uint64_t r = splitmix(&s);
    const double u = (double)(r >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0;
    ref_from_double(dtype, elems, i, u);
    if (specials & REF_SPECIAL_NEG_ZERO) {
      if (common_neg_zero(seed, i) || (r & 0x3F) == 0x15)
        ref_from_double(dtype, elems, i, -0.0);
    }
  }
  if (specials & REF_SPECIAL_POISON) {
    /* A 32-bit word of all ones (two adjacent 16-bit elements, or one fp32). */
    const size_t step = dtype == MIXCOMM_FLOAT32 ? 1 : 2;
    for (size_t i = 0; i + step <= count; i += step) {
      if (mix(seed ^ 0xABCDEFull, i + (size_t)rank * 7919u) % 263 != 3)
        continue;
      for (size_t k = 0; k < step; k++)
        set_all_ones(dtype, elems, i + k);
    }
  }
}

static int world_of(const mixcomm_topology_t* t, int tp_rank, int dp_rank) {
  const int ltp = tp_rank % t->local_tp_size, itp = tp_rank / t->local_tp_size;
  const int ldp = dp_rank % t->local_dp_size, idp = dp_rank / t->local_dp_size;
  return (itp + idp * t->inter_tp_size) * t->local_size + ltp + ldp * t->local_tp_size;
}

static int is_neg_zero(double v) { return v == 0.0 && signbit(v); }

/* Add rank w's input elements [from, from + n) into out[0..n). */
static void accumulate(mixcomm_dtype_t dtype, const void* x, size_t from, size_t n, double* out,
                       double* abs_sum, unsigned char* nz) {
  for (size_t i = 0; i < n; i++) {
    const double v = ref_to_double(dtype, x, from + i);
    out[i] += v;
    if (abs_sum)
      abs_sum[i] += fabs(v);
    if (nz && !is_neg_zero(v))
      nz[i] = 0;
  }
}

void ref_compute(const mixcomm_topology_t* t, mixcomm_dtype_t dtype, mixcomm_op_t op,
                 uint64_t seed, int64_t rows, int64_t row_elems, unsigned specials, double* out,
                 double* abs_sum, unsigned char* all_neg_zero) {
  const size_t esize = mixcomm_dtype_size(dtype);
  const size_t n = (size_t)rows * (size_t)row_elems; /* input elements per rank */
  const int gather = op == MIXCOMM_OP_ALLGATHER || op == MIXCOMM_OP_ALLREDUCE_ALLGATHER;
  const int scatter = op == MIXCOMM_OP_REDUCESCATTER || op == MIXCOMM_OP_REDUCESCATTER_ALLREDUCE;
  const size_t out_n = gather ? n * (size_t)t->dp_size : scatter ? n / (size_t)t->dp_size : n;
  for (size_t i = 0; i < out_n; i++) {
    out[i] = 0.0;
    if (abs_sum)
      abs_sum[i] = 0.0;
    if (all_neg_zero)
      all_neg_zero[i] = 1;
  }
  if (n == 0)
    return;
  void* x = malloc(n * esize);
  if (x == NULL) {
    fprintf(stderr, "ref_compute: out of host memory\n");
    exit(3);
  }
  if (gather) {
    /* Block d = sum over the TP group of dp rank d (AG: tp = 1, the block of rank d). */
    for (int d = 0; d < t->dp_size; d++) {
      for (int tp = 0; tp < t->tp_size; tp++) {
        ref_fill_input(dtype, seed, world_of(t, tp, d), x, n, specials);
        accumulate(dtype, x, 0, n, out + (size_t)d * n, abs_sum ? abs_sum + (size_t)d * n : NULL,
                    all_neg_zero ? all_neg_zero + (size_t)d * n : NULL);
      }
    }
  } else {
    /* One output: sum over all ranks (of their block dp_rank for scatter ops). */
    const size_t from = scatter ? (size_t)t->dp_rank * out_n : 0;
    for (int w = 0; w < t->world_size; w++) {
      ref_fill_input(dtype, seed, w, x, n, specials);
      accumulate(dtype, x, from, out_n, out, abs_sum, all_neg_zero);
    }
  }
  free(x);
}

double ref_tolerance(mixcomm_dtype_t dtype) {
  switch (dtype) {
    case MIXCOMM_FLOAT16:
      return ldexp(1.0, -10);
    case MIXCOMM_BFLOAT16:
      return ldexp(1.0, -8);
    default:
      return ldexp(1.0, -20);
  }
}

int64_t ref_check(mixcomm_dtype_t dtype, const void* got, const double* ref,
                  const double* abs_sum, const unsigned char* all_neg_zero, size_t count,
                  char* report, size_t report_size) {
  const double tol = ref_tolerance(dtype);
  const double tiny = dtype == MIXCOMM_FLOAT16 ? ldexp(1.0, -24) : ldexp(1.0, -126);
  int64_t wrong = 0;
  size_t used = 0;
  if (report_size)
    report[0] = '\0';
  for (size_t i = 0; i < count; i++) {
    const double g = ref_to_double(dtype, got, i), r = ref[i];
    int ok;
    if (isnan(r))
      ok = isnan(g);
    else if (isnan(g))
      ok = 0;
    else
      ok = fabs(g - r) <= tol * (fabs(r) + (abs_sum ? abs_sum[i] : 0.0)) + tiny;
    if (ok && all_neg_zero && all_neg_zero[i] && !(g == 0.0 && signbit(g)))
      ok = 0;
    if (!ok) {
      if (wrong < 4 && used + 1 < report_size) {
        int w = snprintf(report + used, report_size - used, "[%zu] got %.9g want %.9g%s; ", i,
                         g, r, all_neg_zero && all_neg_zero[i] ? " (-0.0)" : "");
        if (w > 0)
          used += (size_t)w < report_size - used ? (size_t)w : report_size - used - 1;
      }
      wrong++;
    }
  }
  return wrong;
}

uint64_t ref_hash(const void* data, size_t bytes) {
  const unsigned char* p = data;
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < bytes; i++) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}
