/* SPDX-License-Identifier: Apache-2.0
 * Node workspace in CUDA virtual memory: one allocation per local rank, exported as a POSIX
 * file descriptor, passed to the other processes of the node (bootstrap/fd_exchange.c) and
 * mapped by every one of them. Addresses are reserved once and survive unmap/map (checkpoint). */
#ifndef MIXCOMM_TRANSPORT_VMM_H_
#define MIXCOMM_TRANSPORT_VMM_H_

#include <stddef.h>

#include "mixcomm.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mixcomm__vmm {
  int device;
  int local_rank, local_size;
  size_t bytes;       /* per allocation, a multiple of the granularity */
  size_t granularity;
  unsigned long long va[MIXCOMM_MAX_LOCAL_SIZE]; /* CUdeviceptr of each local rank's mapping */
  int reserved;       /* the address ranges exist */
  int mapped;         /* physical memory is mapped at them */
} mixcomm__vmm_t;

/* Reserve address ranges for local_size workspaces of at least `bytes` bytes on device. */
mixcomm_status_t mixcomm__vmm_reserve(mixcomm__vmm_t* v, int device, int local_rank,
                                      int local_size, size_t bytes);
/* COLLECTIVE over the world (uses the bootstrap): check that the node's GPUs can access each
 * other, create this rank's allocation, exchange descriptors with the node, map every local
 * rank's allocation at its reserved address. `prior` is a failure this rank already had (its
 * reservation, say; its message in mixcomm_last_error()) or MIXCOMM_SUCCESS: a failing rank
 * still takes part in every collective step, and all ranks agree after the checks and after
 * the mapping, so that a failure anywhere fails every rank at once, naming the rank. */
mixcomm_status_t mixcomm__vmm_map(mixcomm__vmm_t* v, mixcomm_bootstrap_t* bs, int timeout_ms,
                                  mixcomm_status_t prior);
/* Unmap every mapping; the physical memory is freed once every process of the node did so.
 * The address ranges stay reserved. */
mixcomm_status_t mixcomm__vmm_unmap(mixcomm__vmm_t* v);
/* Unmap if mapped and release the address ranges. Returns the first error but always frees. */
mixcomm_status_t mixcomm__vmm_destroy(mixcomm__vmm_t* v);

#ifdef __cplusplus
}
#endif

#endif
