/* SPDX-License-Identifier: Apache-2.0
 * NVSHMEM transport for jobs across nodes: the loader of the plugin (see nvshmem_loader.c; the
 * plugin: nvshmem_plugin/plugin.h). */
#ifndef MIXCOMM_TRANSPORT_NVSHMEM_LOADER_H_
#define MIXCOMM_TRANSPORT_NVSHMEM_LOADER_H_

#include <cuda_runtime_api.h>

#include "kernels/launch.h"
#include "mixcomm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 if the NVSHMEM plugin loads; otherwise the reason. */
int mixcomm__nvshmem_available(void);
const char* mixcomm__nvshmem_unavailable_reason(void);
/* COLLECTIVE: start or find NVSHMEM, check PEs, allocate the symmetric workspace. */
mixcomm_status_t mixcomm__nvshmem_setup(mixcomm_handler_t* h);
/* Free the workspace and finalize NVSHMEM if mixcomm started it (collective); with
 * peers_alive = 0 nothing collective is attempted. */
void mixcomm__nvshmem_teardown(mixcomm_handler_t* h, int peers_alive);
/* See mixcomm_nvshmem_finalize. */
mixcomm_status_t mixcomm__nvshmem_finalize(void);
/* The plugin's multi-node kernel launch and occupancy (cudaError_t values). */
int mixcomm__nvshmem_launch(const mixcomm__kargs_t* a, cudaStream_t stream);
int mixcomm__nvshmem_blocks_per_sm(int dtype, int block, int* blocks);

#ifdef __cplusplus
}
#endif

#endif
