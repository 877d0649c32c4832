/* SPDX-License-Identifier: Apache-2.0
 * The NVSHMEM plugin's interface. Everything that touches NVSHMEM (its host library, its device
 * library linked into the multi-node kernels) lives in libmixcomm_nvshmem.so, which libmixcomm
 * loads with dlopen only for jobs spanning several nodes. So libmixcomm itself needs no NVSHMEM
 * to build, load or run on one node, and an application that already uses NVSHMEM keeps control
 * of it (should_init_nvshmem = 0). */
#ifndef MIXCOMM_NVSHMEM_PLUGIN_H_
#define MIXCOMM_NVSHMEM_PLUGIN_H_

#include <stddef.h>

#include <cuda_runtime_api.h>

#include "kernels/launch.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MIXCOMM_NVSHMEM_PLUGIN_VERSION 4 /* 2: kernel arguments carry the epilogue; 3: and the
                                          * debug put count (count_puts) and uneven rows
                                          * per DP rank; 4: the one-shot kernel runs uneven
                                          * calls (a version 3 plugin would ignore them) */
#define MIXCOMM_NVSHMEM_UID_BYTES 128

typedef struct mixcomm__nvshmem_api {
  int version;
  /* Every call returns 0 on success, else writes a message into err (errlen bytes). */
  int (*get_uniqueid)(void* uid, char* err, size_t errlen);
  /* Start NVSHMEM as PE `rank` of `size` from rank 0's unique id (COLLECTIVE). */
  int (*init)(const void* uid, int rank, int size, char* err, size_t errlen);
  /* 1 if NVSHMEM is initialised in this process (by us or by the application). */
  int (*is_initialized)(void);
  /* PE numbering and node team: my_pe, n_pes, node-team my_pe and n_pes. */
  int (*query)(int* my_pe, int* n_pes, int* node_pe, int* node_size, char* err, size_t errlen);
  /* COLLECTIVE symmetric allocation / free; zero-filled. */
  int (*alloc)(size_t bytes, void** out, char* err, size_t errlen);
  void (*free)(void* p);
  void (*finalize)(void);
  /* The multi-node fused kernel for a->op / a->mode. Returns a cudaError_t value. */
  int (*launch)(const mixcomm__kargs_t* a, cudaStream_t stream);
  /* CTAs of up to `block` threads of the multi-node kernels that fit on one SM. */
  int (*blocks_per_sm)(int dtype, int block, int* blocks);
} mixcomm__nvshmem_api_t;

/* The plugin's only exported symbol. NULL if version is not supported. */
typedef const mixcomm__nvshmem_api_t* (*mixcomm__nvshmem_plugin_fn)(int version);
#define MIXCOMM_NVSHMEM_PLUGIN_SYMBOL "mixcomm_nvshmem_plugin"

#ifdef __cplusplus
}
#endif

#endif
