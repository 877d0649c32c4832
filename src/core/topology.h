/* SPDX-License-Identifier: Apache-2.0
 * Internal helpers on a resolved topology. */
#ifndef MIXCOMM_CORE_TOPOLOGY_H_
#define MIXCOMM_CORE_TOPOLOGY_H_

#include "mixcomm.h"

#ifdef __cplusplus
extern "C" {
#endif

int mixcomm__world_rank_of(const mixcomm_topology_t* t, int inter_rank, int local_rank);
int mixcomm__local_rank_of(const mixcomm_topology_t* t, int local_tp_rank, int local_dp_rank);
int mixcomm__inter_rank_of(const mixcomm_topology_t* t, int inter_tp_rank, int inter_dp_rank);
/* AG-type ops (ALLGATHER, ALLREDUCE_ALLGATHER) write dp_size blocks of output. */
int mixcomm__op_is_gather(mixcomm_op_t op);
/* RS-type ops (REDUCESCATTER, REDUCESCATTER_ALLREDUCE) read dp_size blocks of input. */
int mixcomm__op_is_scatter(mixcomm_op_t op);
/* The fused modes (FUSED_OPT_*): run by mixcomm's own kernels, not by NCCL. */
int mixcomm__mode_is_fused(mixcomm_mode_t mode);

/* Output rows of a call of op on `rows` input rows (mixcomm_output_rows): -1 when rows < 0, op
 * is not valid for t, or a scatter op's rows do not split into dp_size blocks. */
int64_t mixcomm__output_rows(const mixcomm_topology_t* t, mixcomm_op_t op, int64_t rows);

/* The topology a config asks for, before mixcomm_topology_resolve: the rank and size fields
 * and the four group sizes copied from c, every other field zero. */
void mixcomm__topology_from_config(const mixcomm_config_t* c, mixcomm_topology_t* t);

#ifdef __cplusplus
}
#endif

#endif
