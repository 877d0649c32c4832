/* SPDX-License-Identifier: Apache-2.0
 * Run-argument checks that need no GPU (see validate.h). */
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "core/plan.h"
#include "core/topology.h"
#include "core/validate.h"

void mixcomm__valid_ops_text(const mixcomm_topology_t* t, char* buf, size_t size) {
  size_t n = 0;
  buf[0] = '\0';
  for (int op = 0; op < MIXCOMM_NUM_OPS; op++) {
    if (!mixcomm_topology_op_valid(t, (mixcomm_op_t)op))
      continue;
    int w = snprintf(buf + n, size - n, "%s%s", n ? ", " : "", mixcomm_op_name((mixcomm_op_t)op));
    if (w < 0 || (size_t)w >= size - n)
      break;
    n += (size_t)w;
  }
}

mixcomm_status_t mixcomm__validate_op(const mixcomm_topology_t* t, mixcomm_op_t op) {
  if (op < 0 || op >= MIXCOMM_NUM_OPS)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "op=%d is not an operation", (int)op);
  if (!mixcomm_topology_op_valid(t, op)) {
    char valid[160];
    mixcomm__valid_ops_text(t, valid, sizeof valid);
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "op %s is not valid for this topology (tp_size=%d, dp_size=%d); valid "
                          "ops: %s",
                          mixcomm_op_name(op), t->tp_size, t->dp_size, valid);
  }
  return MIXCOMM_SUCCESS;
}

static int mul_overflows(int64_t a, int64_t b, int64_t* r) {
  return __builtin_mul_overflow(a, b, r);
}

mixcomm_status_t mixcomm__validate_run(const mixcomm_topology_t* t, mixcomm_dtype_t dtype,
                                       mixcomm_op_t op, const void* x_in, const void* x_out,
                                       int64_t rows, int64_t row_elems,
                                       mixcomm__run_shape_t* shape) {
  return mixcomm__validate_run_ex(t, dtype, op, x_in, x_out, 0, rows, row_elems, shape);
}

mixcomm_status_t mixcomm__validate_run_ex(const mixcomm_topology_t* t, mixcomm_dtype_t dtype,
                                          mixcomm_op_t op, const void* x_in, const void* x_out,
                                          int x_out_optional, int64_t rows, int64_t row_elems,
                                          mixcomm__run_shape_t* shape) {
  MIXCOMM_CHECK(mixcomm__validate_op(t, op));
  if (mixcomm_dtype_size(dtype) == 0) /* before the rows: the dtype is the first thing wrong */
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "dtype=%d is not a data type",
                          (int)dtype);
  if (rows < 0)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "rows=%lld: must be >= 0",
                          (long long)rows);
  int64_t row_bytes;
  MIXCOMM_CHECK(mixcomm__validate_row(dtype, row_elems, &row_bytes));
  const int scatter = mixcomm__op_is_scatter(op), gather = mixcomm__op_is_gather(op);
  if (scatter && rows % t->dp_size != 0)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "%s: rows=%lld is not divisible by dp_size=%d (the input holds one "
                          "equal block of rows per DP rank)",
                          mixcomm_op_name(op), (long long)rows, t->dp_size);
  int64_t out_rows = rows, block_rows = rows;
  if (scatter) {
    out_rows = rows / t->dp_size;
    block_rows = out_rows;
  } else if (gather && mul_overflows(rows, (int64_t)t->dp_size, &out_rows)) {
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "rows=%lld * dp_size=%d overflows",
                          (long long)rows, t->dp_size);
  }
  int64_t in_bytes, out_bytes, numel_block;
  if (mul_overflows(rows, row_bytes, &in_bytes) || mul_overflows(out_rows, row_bytes, &out_bytes) ||
      mul_overflows(block_rows, row_elems, &numel_block))
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "rows=%lld x row_elems=%lld is too large (byte count overflows)",
                          (long long)rows, (long long)row_elems);
  shape->numel_block = numel_block;
  shape->out_rows = out_rows;
  shape->in_bytes = (uint64_t)in_bytes;
  shape->out_bytes = (uint64_t)out_bytes;
  if (rows == 0)
    return MIXCOMM_SUCCESS; /* nothing is read or written: pointers may be anything */
  if (x_in == NULL || (x_out == NULL && !x_out_optional))
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "%s is NULL with rows=%lld",
                          x_in == NULL ? "x_in" : "x_out", (long long)rows);
  return mixcomm__validate_buffers(x_in, (uint64_t)in_bytes, x_out, (uint64_t)out_bytes);
}

mixcomm_status_t mixcomm__validate_row(mixcomm_dtype_t dtype, int64_t row_elems,
                                       int64_t* row_bytes) {
  const size_t esize = mixcomm_dtype_size(dtype);
  if (esize == 0)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "dtype=%d is not a data type",
                          (int)dtype);
  if (row_elems < 1)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "row_elems=%lld: must be >= 1",
                          (long long)row_elems);
  if (mul_overflows(row_elems, (int64_t)esize, row_bytes))
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "row_elems=%lld is too large (byte count overflows)",
                          (long long)row_elems);
  if (*row_bytes % MIXCOMM_VEC_BYTES != 0)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "row_elems=%lld of %s is %lld bytes, not a multiple of the 16-byte "
                          "vector: pad rows to a multiple of %d elements",
                          (long long)row_elems, mixcomm_dtype_name(dtype), (long long)*row_bytes,
                          (int)(MIXCOMM_VEC_BYTES / esize));
  return MIXCOMM_SUCCESS;
}

mixcomm_status_t mixcomm__validate_buffers(const void* x_in, uint64_t in_bytes, const void* x_out,
                                           uint64_t out_bytes) {
  const uintptr_t in = (uintptr_t)x_in, out = (uintptr_t)x_out;
  if (in % MIXCOMM_VEC_BYTES != 0 || out % MIXCOMM_VEC_BYTES != 0)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "%s=%p is not 16-byte aligned (the kernels move 16-byte vectors)",
                          in % MIXCOMM_VEC_BYTES != 0 ? "x_in" : "x_out",
                          in % MIXCOMM_VEC_BYTES != 0 ? x_in : x_out);
  if (x_in != NULL && x_out != NULL && in_bytes > 0 && out_bytes > 0 && in < out + out_bytes &&
      out < in + in_bytes)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "x_out [%p, +%lld B) overlaps x_in [%p, +%lld B): give a separate "
                          "output buffer",
                          x_out, (long long)out_bytes, x_in, (long long)in_bytes);
  return MIXCOMM_SUCCESS;
}

mixcomm_status_t mixcomm__validate_current_device(int current, int handler_device, int world_rank,
                                                  const char* what) {
  if (current == handler_device)
    return MIXCOMM_SUCCESS;
  /* The kernels would launch on the current device and touch the handler's device memory from
   * there: at best slow peer traffic, at worst a fault or a hang. */
  return mixcomm__error(MIXCOMM_ERR_INVALID_USAGE,
                        "%s on rank %d: the current CUDA device is %d but the handler uses "
                        "device %d; select the handler's device before the call "
                        "(cudaSetDevice(%d), torch.cuda.set_device(%d))",
                        what, world_rank, current, handler_device, handler_device,
                        handler_device);
}
