/* SPDX-License-Identifier: Apache-2.0
 * Uneven rows per DP rank: mixcomm_run_v (counts in a host array) and mixcomm_run_v_device
 * (counts in a device array, for CUDA graphs). Semantics in mixcomm.h, kernels in
 * kernels/uneven.cuh. An all-equal host list is the equal-size call itself (dispatch.c, as
 * mixcomm_run_epilogue does it, which is mixcomm_run without an epilogue), so it gives today's
 * bits; every other call runs the fused kernels with a per-block table (single node: both;
 * across nodes: the one-shot FUSED_OPT_WAITS_UC), or the NCCL modes from grouped point-to-point
 * calls (host counts only). Nothing here synchronises the host. */
#include <string.h>

#include <cuda_runtime_api.h>

#include "core/error.h"
#include "core/topology.h"
#include "core/validate.h"
#include "handler/handler.h"
#include "transport/nccl.h"

/* The concrete mode of an uneven call. DEFAULT and AUTOTUNE are resolved as for an equal-size
 * call of the same total size (eq_rows input rows), then moved to a mode that takes uneven rows
 * if the pick does not (core/validate_uneven.c); an explicit mode that cannot is an error. */
static mixcomm_status_t resolve_mode_v(mixcomm_handler_t* h, mixcomm_op_t op, int64_t eq_rows,
                                       int64_t row_elems, int epilogue, int device_counts,
                                       mixcomm_mode_t* mode) {
  const mixcomm_mode_t asked = *mode;
  mixcomm_mode_t m = asked;
  MIXCOMM_CHECK(mixcomm__resolve_mode(h, op, eq_rows, row_elems, epilogue, &m));
  return mixcomm__uneven_mode(&h->topo, &h->caps, asked, m, device_counts, mode);
}

/* Everything after the form-specific checks: shapes, mode, pointers, dispatch. own_rows: this
 * rank's rows (the device form: max_rows, the capacity); eq_rows: the equal-size call of the same
 * total that mode selection is asked about. */
static mixcomm_status_t run_uneven(mixcomm_handler_t* h, mixcomm_op_t op, const void* x_in,
                                   void* x_out, const mixcomm__uneven_t* u, int64_t in_rows,
                                   int64_t out_rows, int64_t own_rows, int64_t eq_rows,
                                   int64_t row_elems, const mixcomm_epilogue_t* epilogue,
                                   mixcomm_mode_t mode, cudaStream_t stream) {
  const int epi = mixcomm__epilogue_asked(epilogue);
  const int device_counts = u->rows_dev != NULL;
  mixcomm__run_shape_t shape;
  MIXCOMM_CHECK(mixcomm__validate_run_v(h->config.dtype, x_in, x_out, epi, in_rows, out_rows,
                                        row_elems, &shape));
  shape.numel_block = u->max_rows * row_elems;
  if (epi) {
    MIXCOMM_CHECK(mixcomm__validate_epilogue(&h->topo, h->config.dtype, op, x_in, x_out,
                                             own_rows, row_elems, &shape, epilogue));
    if (x_out == NULL && !mixcomm__epilogue_requested(epilogue))
      return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                            "run_v: no output: give x_out, residual_out, norm_out or quant_out");
    if (device_counts && h->topo.world_size == 1)
      return mixcomm__error(MIXCOMM_ERR_UNSUPPORTED,
                            "run_v_device: an epilogue in a world of one rank is not supported "
                            "(the rows are not known on the host): use mixcomm_run_v");
  }
  /* An epilogue call checks every one of its pointers itself (epilogue_call.c). */
  if (!epi && x_in != NULL)
    MIXCOMM_CHECK(mixcomm__check_device_pointer(h, x_in, "x_in"));
  if (!epi && x_out != NULL)
    MIXCOMM_CHECK(mixcomm__check_device_pointer(h, x_out, "x_out"));
  if (device_counts)
    MIXCOMM_CHECK(mixcomm__check_device_pointer(h, u->rows_dev, "dp_rows_dev"));
  MIXCOMM_CHECK(resolve_mode_v(h, op, eq_rows, row_elems, epi, device_counts, &mode));
  if (epi)
    return mixcomm__run_epilogue_call(h, op, mode, x_in, x_out, row_elems, &shape, epilogue, u,
                                      stream);
  if (mixcomm__mode_is_fused(mode) || h->topo.world_size == 1)
    return mixcomm__run_fused_v(h, op, mode, x_in, x_out, shape.numel_block, row_elems, NULL, u,
                                stream);
  return mixcomm__nccl_run_v(h, op, mode, x_in, x_out, u, stream);
}

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* The checks both forms start with: the handler's state, the epilogue struct, the op. */
static mixcomm_status_t admit_uneven(mixcomm_handler_t* h, mixcomm_op_t op,
                                     const mixcomm_epilogue_t* epilogue) {
  MIXCOMM_CHECK(mixcomm__run_admit(h));
  MIXCOMM_CHECK(mixcomm__validate_epilogue_struct(epilogue));
  return mixcomm__validate_uneven_op(&h->topo, op);
}

/* The per-block table of a call whose largest block has max_rows rows (the counts themselves
 * are the caller's to fill: host form). */
static void uneven_init(const mixcomm_handler_t* h, int64_t max_rows, int64_t row_elems,
                        mixcomm__uneven_t* u) {
  memset(u, 0, sizeof *u);
  u->on = 1;
  u->blocks = h->topo.dp_size;
  u->max_rows = max_rows;
  const size_t esize = mixcomm_dtype_size(h->config.dtype);
  u->row_vecs = row_elems > 0 ? row_elems * (int64_t)esize / 16 : 0;
}

mixcomm_status_t mixcomm_run_v(mixcomm_handler_t* h, mixcomm_op_t op, const void* x_in,
                               void* x_out, const int64_t* dp_rows, int64_t row_elems,
                               const mixcomm_epilogue_t* epilogue, mixcomm_mode_t mode,
                               cudaStream_t stream) {
  MIXCOMM_CHECK(admit_uneven(h, op, epilogue));
  const mixcomm_topology_t* t = &h->topo;
  mixcomm__dp_rows_info_t info;
  MIXCOMM_CHECK(mixcomm__validate_dp_rows(t, dp_rows, &info));
  const int gather = mixcomm__op_is_gather(op);
  if (info.all_equal) {
    /* Exactly the equal-size call: the same kernels, tags and bits. */
    const int64_t rows = gather ? info.own : info.own * t->dp_size;
    return mixcomm__dispatch_admitted(h, op, x_in, x_out, rows, row_elems, epilogue, mode,
                                      stream);
  }
  mixcomm__uneven_t u;
  uneven_init(h, info.max, row_elems, &u);
  for (int k = 0; k < t->dp_size; k++)
    u.rows[k] = dp_rows[k];
  const int64_t eq = ceil_div(info.total, t->dp_size);
  return run_uneven(h, op, x_in, x_out, &u, gather ? info.own : info.total,
                    gather ? info.total : info.own, info.own, gather ? eq : eq * t->dp_size,
                    row_elems, epilogue, mode, stream);
}

mixcomm_status_t mixcomm_run_v_device(mixcomm_handler_t* h, mixcomm_op_t op, const void* x_in,
                                      void* x_out, const int32_t* dp_rows_dev, int64_t max_rows,
                                      int64_t row_elems, const mixcomm_epilogue_t* epilogue,
                                      mixcomm_mode_t mode, cudaStream_t stream) {
  MIXCOMM_CHECK(admit_uneven(h, op, epilogue));
  const mixcomm_topology_t* t = &h->topo;
  if (dp_rows_dev == NULL)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "dp_rows_dev is NULL: pass a device array of dp_size=%d int32 counts",
                          t->dp_size);
  if ((uintptr_t)dp_rows_dev % sizeof(int32_t) != 0)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "dp_rows_dev=%p is not 4-byte aligned", (const void*)dp_rows_dev);
  if (max_rows < 0 || max_rows > INT32_MAX)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "max_rows=%lld: must be in [0, %d] (the counts are int32)",
                          (long long)max_rows, INT32_MAX);
  const int gather = mixcomm__op_is_gather(op);
  int64_t all_rows;
  if (__builtin_mul_overflow(max_rows, (int64_t)t->dp_size, &all_rows))
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "max_rows=%lld * dp_size=%d overflows",
                          (long long)max_rows, t->dp_size);
  mixcomm__uneven_t u;
  uneven_init(h, max_rows, row_elems, &u);
  u.rows_dev = dp_rows_dev;
  /* The buffers are checked for their capacity (max_rows per DP rank); mode selection is asked
   * about the largest call they allow, as the counts are not known here. */
  return run_uneven(h, op, x_in, x_out, &u, gather ? max_rows : all_rows,
                    gather ? all_rows : max_rows, max_rows, gather ? max_rows : all_rows,
                    row_elems, epilogue, mode, stream);
}
