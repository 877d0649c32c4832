/* SPDX-License-Identifier: Apache-2.0
 * Argument checks of the uneven calls (mixcomm_run_v, mixcomm_run_v_device) that need no GPU:
 * the op, the host list of rows per DP rank, buffer shapes, alignment and overlap; and which
 * modes take uneven rows. */
#include <stdint.h>

#include "core/error.h"
#include "core/plan.h"
#include "core/topology.h"
#include "core/validate.h"

mixcomm_status_t mixcomm__validate_uneven_op(const mixcomm_topology_t* t, mixcomm_op_t op) {
  MIXCOMM_CHECK(mixcomm__validate_op(t, op));
  if (!mixcomm__op_is_gather(op) && !mixcomm__op_is_scatter(op))
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "%s has no DP group, so rows per DP rank mean nothing: use mixcomm_run "
                          "(uneven rows take ALLGATHER, ALLREDUCE_ALLGATHER, REDUCESCATTER and "
                          "REDUCESCATTER_ALLREDUCE)",
                          mixcomm_op_name(op));
  if (t->dp_size > MIXCOMM_MAX_DP_SIZE)
    return mixcomm__error(MIXCOMM_ERR_UNSUPPORTED,
                          "dp_size=%d: uneven rows support at most MIXCOMM_MAX_DP_SIZE=%d DP ranks",
                          t->dp_size, MIXCOMM_MAX_DP_SIZE);
  return MIXCOMM_SUCCESS;
}

mixcomm_status_t mixcomm__validate_dp_rows(const mixcomm_topology_t* t, const int64_t* dp_rows,
                                           mixcomm__dp_rows_info_t* info) {
  if (dp_rows == NULL)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "dp_rows is NULL: pass dp_size=%d row counts, one per DP rank",
                          t->dp_size);
  info->total = 0;
  info->max = 0;
  info->all_equal = 1;
  for (int k = 0; k < t->dp_size; k++) {
    if (dp_rows[k] < 0)
      return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "dp_rows[%d]=%lld: must be >= 0", k,
                            (long long)dp_rows[k]);
    if (__builtin_add_overflow(info->total, dp_rows[k], &info->total))
      return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                            "dp_rows: the sum of the counts overflows (at dp_rows[%d]=%lld)", k,
                            (long long)dp_rows[k]);
    if (dp_rows[k] > info->max)
      info->max = dp_rows[k];
    if (dp_rows[k] != dp_rows[0])
      info->all_equal = 0;
  }
  info->own = dp_rows[t->dp_rank];
  return MIXCOMM_SUCCESS;
}

mixcomm_status_t mixcomm__validate_run_v(mixcomm_dtype_t dtype, const void* x_in,
                                         const void* x_out, int x_out_optional, int64_t in_rows,
                                         int64_t out_rows, int64_t row_elems,
                                         mixcomm__run_shape_t* shape) {
  int64_t row_bytes, in_bytes, out_bytes;
  MIXCOMM_CHECK(mixcomm__validate_row(dtype, row_elems, &row_bytes));
  if (__builtin_mul_overflow(in_rows, row_bytes, &in_bytes) ||
      __builtin_mul_overflow(out_rows, row_bytes, &out_bytes))
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "%lld input / %lld output rows of row_elems=%lld are too large (byte "
                          "count overflows)",
                          (long long)in_rows, (long long)out_rows, (long long)row_elems);
  shape->out_rows = out_rows;
  shape->in_bytes = (uint64_t)in_bytes;
  shape->out_bytes = (uint64_t)out_bytes;
  if (in_rows > 0 && x_in == NULL)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "x_in is NULL with %lld input rows",
                          (long long)in_rows);
  if (out_rows > 0 && x_out == NULL && !x_out_optional)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "x_out is NULL with %lld output rows",
                          (long long)out_rows);
  return mixcomm__validate_buffers(x_in, (uint64_t)in_bytes, x_out, (uint64_t)out_bytes);
}

const char* mixcomm__uneven_mode_unsupported(const mixcomm_topology_t* t, mixcomm_mode_t mode,
                                             int device_counts) {
  if (t->world_size == 1)
    return NULL;
  if (mixcomm__mode_is_fused(mode) && t->inter_size > 1 && mode != MIXCOMM_MODE_FUSED_OPT_WAITS_UC)
    return "across nodes only the one-shot fused mode FUSED_OPT_WAITS_UC takes uneven rows per DP "
           "rank (the two-shot kernels do not): use it, an NCCL mode, or pad the rows and call "
           "mixcomm_run";
  if (!mixcomm__mode_is_fused(mode) && device_counts)
    return "the NCCL modes need the row counts on the host: use mixcomm_run_v, or a fused mode "
           "with mixcomm_run_v_device";
  return NULL;
}

mixcomm_status_t mixcomm__uneven_mode(const mixcomm_topology_t* t, const mixcomm_caps_t* caps,
                                      mixcomm_mode_t asked, mixcomm_mode_t picked,
                                      int device_counts, mixcomm_mode_t* mode) {
  const char* why = mixcomm__uneven_mode_unsupported(t, picked, device_counts);
  if (why == NULL) {
    *mode = picked;
    return MIXCOMM_SUCCESS;
  }
  if (asked != MIXCOMM_MODE_DEFAULT && asked != MIXCOMM_MODE_AUTOTUNE)
    return mixcomm__error(MIXCOMM_ERR_UNSUPPORTED, "mode %s with uneven rows: %s",
                          mixcomm_mode_name(picked), why);
  static const mixcomm_mode_t fallbacks[] = {
      MIXCOMM_MODE_FUSED_OPT_WAITS_UC, MIXCOMM_MODE_FUSED_OPT_BYTES1_UC,
      MIXCOMM_MODE_NCCL_TP_DP, MIXCOMM_MODE_NCCL_ONE};
  for (size_t i = 0; i < sizeof fallbacks / sizeof fallbacks[0]; i++) {
    if (mixcomm_topology_mode_valid(t, caps, fallbacks[i], NULL) &&
        mixcomm__uneven_mode_unsupported(t, fallbacks[i], device_counts) == NULL) {
      *mode = fallbacks[i];
      return MIXCOMM_SUCCESS;
    }
  }
  return mixcomm__error(MIXCOMM_ERR_UNSUPPORTED,
                        "no mode of this handler takes uneven rows per DP rank here: %s", why);
}
