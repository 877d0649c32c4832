/* SPDX-License-Identifier: Apache-2.0
 * Argument checks of mixcomm_run_epilogue that need no GPU (see validate.h): which outputs are
 * asked for and what they need, alignment, and that no output overlaps another buffer. */
#include <math.h>
#include <stdio.h>

#include "core/error.h"
#include "core/plan.h"
#include "core/topology.h"
#include "core/validate.h"

void mixcomm_epilogue_init(mixcomm_epilogue_t* e) {
  if (e == NULL)
    return;
  const mixcomm_epilogue_t init = MIXCOMM_EPILOGUE_INITIALIZER;
  *e = init;
}

int mixcomm__epilogue_requested(const mixcomm_epilogue_t* e) {
  return e != NULL &&
         (e->residual_out != NULL || e->norm_out != NULL || e->quant_out != NULL);
}

int mixcomm__epilogue_asked(const mixcomm_epilogue_t* e) {
  return e != NULL && (mixcomm__epilogue_requested(e) || e->residual_in != NULL ||
                       e->rms_gamma != NULL || e->quant_scale != NULL);
}

mixcomm_status_t mixcomm__validate_epilogue_struct(const mixcomm_epilogue_t* e) {
  if (e != NULL && e->struct_size != sizeof(mixcomm_epilogue_t))
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "epilogue.struct_size=%zu, expected %zu: initialise the struct with "
                          "mixcomm_epilogue_init or MIXCOMM_EPILOGUE_INITIALIZER",
                          e->struct_size, sizeof(mixcomm_epilogue_t));
  return MIXCOMM_SUCCESS;
}

typedef struct span {
  const char* name;
  uintptr_t at;
  uint64_t bytes;
  int output;
  int align; /* bytes */
} span_t;

/* Indices into spans[] below: the one pair allowed to be the same memory. */
enum { SPAN_RESIDUAL_IN = 2, SPAN_RESIDUAL_OUT = 3 };

static int overlap(const span_t* a, const span_t* b) {
  return a->bytes > 0 && b->bytes > 0 && a->at < b->at + b->bytes && b->at < a->at + a->bytes;
}

mixcomm_status_t mixcomm__validate_epilogue(const mixcomm_topology_t* t, mixcomm_dtype_t dtype,
                                            mixcomm_op_t op, const void* x_in, const void* x_out,
                                            int64_t rows, int64_t row_elems,
                                            const mixcomm__run_shape_t* shape,
                                            const mixcomm_epilogue_t* e) {
  MIXCOMM_CHECK(mixcomm__validate_epilogue_struct(e));
  const int norm = e->norm_out != NULL || e->quant_out != NULL;
  if (norm && e->rms_gamma == NULL)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "epilogue: %s is set but rms_gamma is NULL: RMSNorm needs its weights",
                          e->norm_out != NULL ? "norm_out" : "quant_out");
  if (!norm && e->rms_gamma != NULL)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "epilogue: rms_gamma is set but neither norm_out nor quant_out is: "
                          "give an output for the normalised rows");
  if (e->quant_out != NULL && e->quant_scale == NULL)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "epilogue: quant_out is set but quant_scale is NULL (a device pointer "
                          "to the float32 scale)");
  if (e->quant_out == NULL && e->quant_scale != NULL)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "epilogue: quant_scale is set but quant_out is NULL");
  if (e->residual_in != NULL && e->residual_out == NULL && !norm)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "epilogue: residual_in is set but no output uses it (residual_out, "
                          "norm_out or quant_out)");
  if (norm && !(isfinite(e->rms_eps) && e->rms_eps >= 0.0f))
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "epilogue: rms_eps=%g must be finite and >= 0", (double)e->rms_eps);
  if (rows == 0 && shape->in_bytes == 0 && shape->out_bytes == 0)
    return MIXCOMM_SUCCESS; /* nothing is read or written */

  const uint64_t row_bytes = (uint64_t)row_elems * mixcomm_dtype_size(dtype);
  const int gather = mixcomm__op_is_gather(op);
  /* residual rows: the input's for gather ops, the output's otherwise. */
  const uint64_t res_bytes = gather ? (uint64_t)rows * row_bytes : shape->out_bytes;
  const uint64_t quant_bytes = (uint64_t)shape->out_rows * (uint64_t)row_elems;
  const int V = MIXCOMM_VEC_BYTES;
  const span_t spans[] = {
      {"x_in", (uintptr_t)x_in, shape->in_bytes, 0, V},
      {"x_out", (uintptr_t)x_out, x_out != NULL ? shape->out_bytes : 0, 1, V},
      [SPAN_RESIDUAL_IN] = {"residual_in", (uintptr_t)e->residual_in,
                            e->residual_in != NULL ? res_bytes : 0, 0, V},
      [SPAN_RESIDUAL_OUT] = {"residual_out", (uintptr_t)e->residual_out,
                             e->residual_out != NULL ? res_bytes : 0, 1, V},
      {"rms_gamma", (uintptr_t)e->rms_gamma, e->rms_gamma != NULL ? row_bytes : 0, 0, V},
      {"norm_out", (uintptr_t)e->norm_out, e->norm_out != NULL ? shape->out_bytes : 0, 1, V},
      {"quant_out", (uintptr_t)e->quant_out, e->quant_out != NULL ? quant_bytes : 0, 1, V},
      {"quant_scale", (uintptr_t)e->quant_scale, e->quant_scale != NULL ? 4 : 0, 0, 4},
  };
  const int n = (int)(sizeof spans / sizeof spans[0]);
  for (int i = 0; i < n; i++) {
    if (spans[i].bytes > 0 && spans[i].at % (uintptr_t)spans[i].align != 0)
      return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                            "%s=%p is not %d-byte aligned (the kernels move 16-byte vectors)",
                            spans[i].name, (const void*)spans[i].at, spans[i].align);
  }
  for (int i = 0; i < n; i++) {
    for (int j = i + 1; j < n; j++) {
      if (!spans[i].output && !spans[j].output)
        continue; /* inputs may share memory */
      const int in_place = i == SPAN_RESIDUAL_IN && j == SPAN_RESIDUAL_OUT &&
                           spans[i].at == spans[j].at;
      if (in_place || !overlap(&spans[i], &spans[j]))
        continue;
      return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                            "%s [%p, +%llu B) overlaps %s [%p, +%llu B): outputs need their own "
                            "memory (only residual_out may be exactly residual_in)",
                            spans[i].name, (const void*)spans[i].at,
                            (unsigned long long)spans[i].bytes, spans[j].name,
                            (const void*)spans[j].at, (unsigned long long)spans[j].bytes);
    }
  }
  return MIXCOMM_SUCCESS;
}
