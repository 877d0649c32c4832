/* SPDX-License-Identifier: Apache-2.0
 * The mode a call runs in: an explicit mode checked for validity, DEFAULT and AUTOTUNE resolved
 * through the autotune table (when measured or read from the cache) or the cost model. */
#include <stdint.h>

#include "core/error.h"
#include "core/topology.h"
#include "handler/handler.h"
#include "tune/tune.h"

const char* mixcomm__mode_invalid_reason(const mixcomm_handler_t* h, mixcomm_mode_t mode) {
  const char* why = NULL;
  if (mixcomm_topology_mode_valid(&h->topo, &h->caps, mode, &why))
    return NULL;
  return why;
}

/* The mode DEFAULT and AUTOTUNE stand for, for a checked handler, op and shape: the autotune
 * table's entry for the call's bucket (rank block bytes) when the handler is tuned, else the
 * cost model's pick. */
static mixcomm_mode_t pick_mode(const mixcomm_handler_t* h, mixcomm_op_t op, int64_t rows,
                                int64_t row_elems, int epilogue) {
  uint64_t bytes = (uint64_t)rows * (uint64_t)row_elems * mixcomm_dtype_size(h->config.dtype);
  if (mixcomm__op_is_scatter(op))
    bytes /= (uint64_t)h->topo.dp_size;
  if (h->tuned) {
    const int b = mixcomm__tune_bucket(bytes, h->tune_buckets);
    return epilogue ? h->tune_table_epilogue[op][b] : h->tune_table[op][b];
  }
  return mixcomm__cost_model_choose(&h->topo, &h->caps, op, bytes, epilogue);
}

/* Called after the call's checks (handler usable, op valid for the topology, rows and
 * row_elems >= 0), which pick_mode relies on. */
mixcomm_status_t mixcomm__resolve_mode(mixcomm_handler_t* h, mixcomm_op_t op, int64_t rows,
                                      int64_t row_elems, int epilogue, mixcomm_mode_t* mode) {
  mixcomm_mode_t m = *mode;
  if (m == MIXCOMM_MODE_DEFAULT || m == MIXCOMM_MODE_AUTOTUNE) {
    if (m == MIXCOMM_MODE_AUTOTUNE &&
        !mixcomm_topology_mode_valid(&h->topo, &h->caps, m, NULL))
      return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                            "mode AUTOTUNE is not valid: %s", mixcomm__mode_invalid_reason(h, m));
    m = pick_mode(h, op, rows, row_elems, epilogue);
  } else if (m < 0 || m >= MIXCOMM_NUM_MODES) {
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "mode=%d is not a mode", (int)m);
  } else if (!mixcomm_topology_mode_valid(&h->topo, &h->caps, m, NULL)) {
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "mode %s is not valid here: %s",
                          mixcomm_mode_name(m), mixcomm__mode_invalid_reason(h, m));
  }
  *mode = m;
  return MIXCOMM_SUCCESS;
}

mixcomm_status_t mixcomm_select_autotune_mode(const mixcomm_handler_t* h, mixcomm_op_t op,
                                              int64_t rows, int64_t row_elems,
                                              mixcomm_mode_t* mode) {
  return mixcomm__select_mode(h, op, rows, row_elems, 0, mode);
}

mixcomm_status_t mixcomm__select_mode(const mixcomm_handler_t* h, mixcomm_op_t op, int64_t rows,
                                      int64_t row_elems, int epilogue, mixcomm_mode_t* mode) {
  MIXCOMM_CHECK(mixcomm__handler_usable(h, "select_autotune_mode"));
  if (mode == NULL)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "select_autotune_mode: mode is NULL");
  if (op < 0 || op >= MIXCOMM_NUM_OPS || !mixcomm_topology_op_valid(&h->topo, op))
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "select_autotune_mode: op %d is not valid for this topology", (int)op);
  if (rows < 0 || row_elems < 0)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "select_autotune_mode: rows=%lld, row_elems=%lld must be >= 0",
                          (long long)rows, (long long)row_elems);
  *mode = pick_mode(h, op, rows, row_elems, epilogue);
  return MIXCOMM_SUCCESS;
}
