/* SPDX-License-Identifier: Apache-2.0
 * NCCL modes (NCCL_ONE, NCCL_TP_DP): the fallback and the reference. libnccl.so.2 is loaded at
 * run time, so mixcomm builds and loads without it; without it the modes are invalid. */
#ifndef MIXCOMM_TRANSPORT_NCCL_H_
#define MIXCOMM_TRANSPORT_NCCL_H_

#include <stdint.h>

#include <cuda_runtime_api.h>

#include "kernels/launch.h"
#include "mixcomm.h"

#ifdef __cplusplus
extern "C" {
#endif

struct mixcomm__nccl;

/* 1 if libnccl.so.2 (or $MIXCOMM_NCCL_LIBRARY) loads and has every function mixcomm needs. */
int mixcomm__nccl_available(void);

/* COLLECTIVE. Communicators for the world, and for the TP and DP groups when both are > 1
 * (split from the world, keyed so that group rank = tp_rank / dp_rank). */
mixcomm_status_t mixcomm__nccl_setup(mixcomm_handler_t* h, struct mixcomm__nccl** out);
/* Destroy (abort = 1: without waiting for peers). Safe on NULL. */
void mixcomm__nccl_teardown(struct mixcomm__nccl* n, int abort);

/* Enqueue op in NCCL_ONE or NCCL_TP_DP (the fused ops' semantics and row order). */
mixcomm_status_t mixcomm__nccl_run(mixcomm_handler_t* h, mixcomm_op_t op, mixcomm_mode_t mode,
                                   const void* x_in, void* x_out, int64_t numel_block,
                                   cudaStream_t stream);

/* The same with uneven rows per DP rank (host counts in u->rows):
 * gather-v and scatter-v from grouped ncclSend / ncclRecv, reductions on this GPU. */
mixcomm_status_t mixcomm__nccl_run_v(mixcomm_handler_t* h, mixcomm_op_t op, mixcomm_mode_t mode,
                                     const void* x_in, void* x_out, const mixcomm__uneven_t* u,
                                     cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
