/* SPDX-License-Identifier: Apache-2.0
 * The formulas of mixcomm-perf's columns (metrics.h). With L local ranks and Lt = local TP, the
 * HBM bytes per rank of the fused unicast modes are, from the protocol in
 * src/kernels/intranode.cu:
 *   FUSED_OPT_WAITS_UC  (one-shot): in + out + 3*(L-1)*S
 *   FUSED_OPT_BYTES1_UC (two-shot): in + out + 3*(L+Lt-2)*S/Lt
 * (3 = the write into a peer's workspace, the peer's read, and its re-poisoning of the consumed
 * row), times L ranks. */
#include "perf/metrics.h"

#include <math.h>

#include "core/topology.h"

const char* perf_short_dtype(mixcomm_dtype_t d) {
  return d == MIXCOMM_FLOAT16 ? "fp16" : d == MIXCOMM_BFLOAT16 ? "bf16" : "fp32";
}

double perf_in_bytes(const mixcomm_topology_t* t, mixcomm_op_t op, double S) {
  return mixcomm__op_is_scatter(op) ? t->dp_size * S : S;
}

double perf_out_bytes(const mixcomm_topology_t* t, mixcomm_op_t op, double S) {
  return mixcomm__op_is_gather(op) ? t->dp_size * S : S;
}

double perf_bus_bytes(const mixcomm_topology_t* t, double S) {
  const double tp = t->tp_size, dp = t->dp_size;
  return (2.0 * (tp - 1.0) / tp + (dp - 1.0)) * S;
}

double perf_mem_bytes(const perf_ctx_t* c, mixcomm_op_t op, mixcomm_mode_t mode, double S) {
  const mixcomm_topology_t* t = c->topo;
  if (!c->all_one_gpu || t->inter_size != 1)
    return NAN;
  const double L = t->local_size, Lt = t->local_tp_size;
  const double io = perf_in_bytes(t, op, S) + perf_out_bytes(t, op, S);
  double per_rank;
  if (mode == MIXCOMM_MODE_FUSED_OPT_WAITS_UC)
    per_rank = io + 3.0 * (L - 1.0) * S;
  else if (mode == MIXCOMM_MODE_FUSED_OPT_BYTES1_UC)
    per_rank = io + 3.0 * (L + Lt - 2.0) * S / Lt;
  else
    return NAN;
  return L * per_rank;
}

int64_t perf_input_rows(const perf_ctx_t* c, mixcomm_op_t op, const perf_size_t* s) {
  return mixcomm__op_is_scatter(op) ? (int64_t)c->topo->dp_size * s->rows : s->rows;
}
