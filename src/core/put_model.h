/* SPDX-License-Identifier: Apache-2.0
 * What one rank puts across nodes in one fused call, derived from the geometry alone: the model
 * the kernels' debug count (kargs count_puts) is tested against. */
#ifndef MIXCOMM_CORE_PUT_MODEL_H_
#define MIXCOMM_CORE_PUT_MODEL_H_

#include <stdint.h>

#include "core/plan.h"
#include "mixcomm.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mixcomm__put_count {
  uint64_t bytes; /* data bytes put to other nodes */
  uint64_t puts;  /* network operations: a put-with-signal, or a signal alone */
} mixcomm__put_count_t;

/* Bytes and operations rank t->world_rank puts in a call of (op, mode) with geometry g, step by
 * step and CTA by CTA as src/nvshmem_plugin/internode.cu does. Zero on one node. */
mixcomm_status_t mixcomm__put_model(const mixcomm_topology_t* t, mixcomm_op_t op,
                                    mixcomm_mode_t mode, const mixcomm__geometry_t* g,
                                    mixcomm__put_count_t* out);

#ifdef __cplusplus
}
#endif

#endif
