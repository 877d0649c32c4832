/* SPDX-License-Identifier: Apache-2.0
 * Test and benchmark data, computed on the host independently of the library: deterministic
 * random inputs per (seed, rank), a float64 reference of every operation, and a checker.
 * Used by the GPU test suite and mixcomm-perf; it never calls into the library's kernels. */
#ifndef MIXCOMM_TOOLS_REFDATA_H_
#define MIXCOMM_TOOLS_REFDATA_H_

#include <stddef.h>
#include <stdint.h>

#include "mixcomm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Host conversions (round to nearest even; NaN and infinities kept). */
double ref_to_double(mixcomm_dtype_t dtype, const void* elems, size_t i);
void ref_from_double(mixcomm_dtype_t dtype, void* elems, size_t i, double v);

/* Special values sprinkled into inputs (besides uniform(-1, 1) numbers). */
enum {
  REF_SPECIAL_NEG_ZERO = 1, /* some elements -0.0, and some positions -0.0 on every rank */
  REF_SPECIAL_POISON = 2    /* some elements whose bits are all ones (a NaN): must not hang */
};

/* Fill `count` elements of rank `rank`'s input for test case `seed` (same on every process). */
void ref_fill_input(mixcomm_dtype_t dtype, uint64_t seed, int rank, void* elems, size_t count,
                    unsigned specials);

/* Reference output of op on this rank, in float64, computed from every rank's input (each
 * regenerated with ref_fill_input). rows = input rows of this rank; out gets out_rows *
 * row_elems doubles. Also sets all_neg_zero[i] = 1 where every summed term is -0.0 (the exact
 * result is then -0.0), if all_neg_zero is not NULL. */
void ref_compute(const mixcomm_topology_t* t, mixcomm_dtype_t dtype, mixcomm_op_t op,
                 uint64_t seed, int64_t rows, int64_t row_elems, unsigned specials, double* out,
                 double* abs_sum, unsigned char* all_neg_zero);

/* Compare a GPU output (out_rows * row_elems elements of dtype) with the reference.
 * An element passes when both are NaN, or |got - ref| <= tol(dtype) * (|ref| + abs_sum) plus
 * the smallest subnormal, and where all_neg_zero is set the bits must be exactly -0.0.
 * Returns the number of wrong elements; the first few are described in `report`. */
int64_t ref_check(mixcomm_dtype_t dtype, const void* got, const double* ref,
                  const double* abs_sum, const unsigned char* all_neg_zero, size_t count,
                  char* report, size_t report_size);

/* Relative tolerance per dtype (2^-8 bf16, 2^-10 fp16, 2^-20 fp32). */
double ref_tolerance(mixcomm_dtype_t dtype);

/* FNV-1a 64-bit hash of bytes (bitwise output comparisons between ranks and runs). */
uint64_t ref_hash(const void* data, size_t bytes);

#ifdef __cplusplus
}
#endif

#endif
