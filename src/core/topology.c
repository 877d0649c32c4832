/* SPDX-License-Identifier: Apache-2.0
 * The topology (FlashInfer's ParallelInfo): resolve tp/dp defaults per level, derive every rank, check every
 * rule with a message naming the values. TP varies fastest at both levels. */
#include <string.h>

#include "core/error.h"
#include "core/topology.h"

/* Split one level (local or inter) of `size` ranks into tp x dp, applying the defaults. */
static mixcomm_status_t split_level(const char* level, int size, int* tp, int* dp) {
  if (*tp < 0 || *dp < 0)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "%s_tp_size=%d and %s_dp_size=%d: sizes must be >= 1, or 0 for the "
                          "default",
                          level, *tp, level, *dp);
  if (*tp == 0 && *dp == 0) {
    *tp = size;
    *dp = 1;
  } else if (*tp == 0) {
    if (size % *dp != 0)
      return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                            "%s_dp_size=%d does not divide %s_size=%d", level, *dp, level, size);
    *tp = size / *dp;
  } else if (*dp == 0) {
    if (size % *tp != 0)
      return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                            "%s_tp_size=%d does not divide %s_size=%d", level, *tp, level, size);
    *dp = size / *tp;
  } else if ((long long)*tp * *dp != size) {
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "%s_tp_size=%d * %s_dp_size=%d = %lld, but %s_size=%d (the product "
                          "must equal the number of ranks at that level)",
                          level, *tp, level, *dp, (long long)*tp * *dp, level, size);
  }
  return MIXCOMM_SUCCESS;
}

mixcomm_status_t mixcomm_topology_resolve(const mixcomm_topology_t* in, mixcomm_topology_t* out) {
  if (in == NULL || out == NULL)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "topology: NULL argument");
  mixcomm_topology_t t = *in;
  if (t.world_size < 1 || t.local_size < 1 || t.inter_size < 1)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "world_size=%d, local_size=%d, inter_size=%d: every size must be >= 1",
                          t.world_size, t.local_size, t.inter_size);
  if ((long long)t.inter_size * t.local_size != t.world_size)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "world_size=%d but inter_size=%d * local_size=%d = %lld (world_size "
                          "must be inter_size * local_size)",
                          t.world_size, t.inter_size, t.local_size,
                          (long long)t.inter_size * t.local_size);
  if (t.world_rank < 0 || t.world_rank >= t.world_size)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "world_rank=%d is outside [0, %d)",
                          t.world_rank, t.world_size);
  if (t.local_rank < 0 || t.local_rank >= t.local_size)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "local_rank=%d is outside [0, %d)",
                          t.local_rank, t.local_size);
  if (t.inter_rank < 0 || t.inter_rank >= t.inter_size)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "inter_rank=%d is outside [0, %d)",
                          t.inter_rank, t.inter_size);
  if (t.world_rank != t.inter_rank * t.local_size + t.local_rank)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "world_rank=%d but inter_rank=%d * local_size=%d + local_rank=%d = %d "
                          "(ranks are numbered node by node)",
                          t.world_rank, t.inter_rank, t.local_size, t.local_rank,
                          t.inter_rank * t.local_size + t.local_rank);
  MIXCOMM_CHECK(split_level("local", t.local_size, &t.local_tp_size, &t.local_dp_size));
  MIXCOMM_CHECK(split_level("inter", t.inter_size, &t.inter_tp_size, &t.inter_dp_size));

  t.local_tp_rank = t.local_rank % t.local_tp_size;
  t.local_dp_rank = t.local_rank / t.local_tp_size;
  t.inter_tp_rank = t.inter_rank % t.inter_tp_size;
  t.inter_dp_rank = t.inter_rank / t.inter_tp_size;
  t.tp_size = t.local_tp_size * t.inter_tp_size;
  t.dp_size = t.local_dp_size * t.inter_dp_size;
  t.tp_rank = t.local_tp_rank + t.inter_tp_rank * t.local_tp_size;
  t.dp_rank = t.local_dp_rank + t.inter_dp_rank * t.local_dp_size;
  *out = t;
  return MIXCOMM_SUCCESS;
}

mixcomm_status_t mixcomm_topology_for_rank(const mixcomm_topology_t* resolved, int world_rank,
                                           mixcomm_topology_t* out) {
  if (resolved == NULL || out == NULL)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "topology: NULL argument");
  if (world_rank < 0 || world_rank >= resolved->world_size)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "world_rank=%d is outside [0, %d)",
                          world_rank, resolved->world_size);
  mixcomm_topology_t t = *resolved;
  t.world_rank = world_rank;
  t.local_rank = world_rank % t.local_size;
  t.inter_rank = world_rank / t.local_size;
  return mixcomm_topology_resolve(&t, out);
}

int mixcomm_topology_op_valid(const mixcomm_topology_t* t, mixcomm_op_t op) {
  if (t == NULL)
    return 0;
  switch (op) {
    case MIXCOMM_OP_ALLREDUCE:
      return t->dp_size == 1;
    case MIXCOMM_OP_ALLGATHER:
    case MIXCOMM_OP_REDUCESCATTER:
      return t->tp_size == 1;
    case MIXCOMM_OP_ALLREDUCE_ALLGATHER:
    case MIXCOMM_OP_REDUCESCATTER_ALLREDUCE:
      return t->tp_size > 1 && t->dp_size > 1;
    default:
      return 0;
  }
}

int mixcomm__world_rank_of(const mixcomm_topology_t* t, int inter_rank, int local_rank) {
  return inter_rank * t->local_size + local_rank;
}

int mixcomm__local_rank_of(const mixcomm_topology_t* t, int local_tp_rank, int local_dp_rank) {
  return local_tp_rank + local_dp_rank * t->local_tp_size;
}

int mixcomm__inter_rank_of(const mixcomm_topology_t* t, int inter_tp_rank, int inter_dp_rank) {
  return inter_tp_rank + inter_dp_rank * t->inter_tp_size;
}

int mixcomm__op_is_gather(mixcomm_op_t op) {
  return op == MIXCOMM_OP_ALLGATHER || op == MIXCOMM_OP_ALLREDUCE_ALLGATHER;
}

int mixcomm__op_is_scatter(mixcomm_op_t op) {
  return op == MIXCOMM_OP_REDUCESCATTER || op == MIXCOMM_OP_REDUCESCATTER_ALLREDUCE;
}

int64_t mixcomm__output_rows(const mixcomm_topology_t* t, mixcomm_op_t op, int64_t rows) {
  if (rows < 0 || !mixcomm_topology_op_valid(t, op))
    return -1;
  if (mixcomm__op_is_gather(op))
    return rows * t->dp_size;
  if (mixcomm__op_is_scatter(op))
    return rows % t->dp_size == 0 ? rows / t->dp_size : -1;
  return rows;
}

void mixcomm__topology_from_config(const mixcomm_config_t* c, mixcomm_topology_t* t) {
  memset(t, 0, sizeof *t);
  t->world_rank = c->world_rank;
  t->world_size = c->world_size;
  t->local_rank = c->local_rank;
  t->local_size = c->local_size;
  t->inter_rank = c->inter_rank;
  t->inter_size = c->inter_size;
  t->local_tp_size = c->local_tp_size;
  t->local_dp_size = c->local_dp_size;
  t->inter_tp_size = c->inter_tp_size;
  t->inter_dp_size = c->inter_dp_size;
}
