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

#ifdef __cplusplus
}
#endif

#endif
