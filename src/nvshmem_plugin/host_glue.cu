/* SPDX-License-Identifier: Apache-2.0
 * NVSHMEM host calls of the plugin (plugin.h). This is host code, but it is compiled with the
 * CUDA toolchain for two reasons: NVSHMEM's headers are C++, and its initialisation must be
 * called from the module that links NVSHMEM's device library, so that the device state of this
 * module's kernels gets set up. No NVSHMEM helper that can exit() the process is used: the
 * inline nvshmemx_init_attr exits on failure, so nvshmemi_init_thread is called directly and its
 * status returned. Protocol: none across ranks here; the unique id travels over mixcomm's own
 * bootstrap (transport/nvshmem_loader.c). */
#include <stdio.h>
#include <string.h>

#include <nvshmem.h>
#include <nvshmemx.h>

#include "nvshmem_plugin/plugin.h"

#define MIXCOMM_PLUGIN_API extern "C" __attribute__((visibility("default")))

namespace {

int get_uniqueid(void* uid, char* err, size_t errlen) {
  static_assert(sizeof(nvshmemx_uniqueid_t) == MIXCOMM_NVSHMEM_UID_BYTES, "unique id size");
  nvshmemx_uniqueid_t id = NVSHMEMX_UNIQUEID_INITIALIZER;
  const int r = nvshmemx_get_uniqueid(&id);
  if (r != 0) {
    snprintf(err, errlen, "nvshmemx_get_uniqueid failed (status %d)", r);
    return r;
  }
  memcpy(uid, &id, sizeof id);
  return 0;
}

int init(const void* uid, int rank, int size, char* err, size_t errlen) {
  nvshmemx_uniqueid_t id;
  memcpy(&id, uid, sizeof id);
  nvshmemx_init_attr_t attr = NVSHMEMX_INIT_ATTR_INITIALIZER;
  int r = nvshmemx_set_attr_uniqueid_args(rank, size, &id, &attr);
  if (r != 0) {
    snprintf(err, errlen, "nvshmemx_set_attr_uniqueid_args(%d, %d) failed (status %d)", rank,
             size, r);
    return r;
  }
  nvshmemx_init_init_attr_ver_only(attr);
  nvshmemi_version_t version = {NVSHMEM_VENDOR_MAJOR_VERSION, NVSHMEM_VENDOR_MINOR_VERSION,
                                NVSHMEM_VENDOR_PATCH_VERSION};
  int provided = 0;
  r = nvshmemi_init_thread(NVSHMEM_THREAD_SERIALIZED, &provided, NVSHMEMX_INIT_WITH_UNIQUEID,
                           &attr, version);
  if (r != 0)
    snprintf(err, errlen,
             "NVSHMEM failed to initialize (nvshmemi_init_thread status %d); set NVSHMEM_DEBUG=INFO "
             "for its reasons",
             r);
  return r;
}

int is_initialized(void) { return nvshmemx_init_status() >= NVSHMEM_STATUS_IS_INITIALIZED; }

int query(int* my_pe, int* n_pes, int* node_pe, int* node_size, char* err, size_t errlen) {
  if (!is_initialized()) {
    snprintf(err, errlen, "NVSHMEM is not initialized");
    return 1;
  }
  *my_pe = nvshmem_my_pe();
  *n_pes = nvshmem_n_pes();
  *node_pe = nvshmem_team_my_pe(NVSHMEMX_TEAM_NODE);
  *node_size = nvshmem_team_n_pes(NVSHMEMX_TEAM_NODE);
  return 0;
}

int alloc(size_t bytes, void** out, char* err, size_t errlen) {
  void* p = nvshmem_malloc(bytes);
  if (p == NULL) {
    snprintf(err, errlen,
             "nvshmem_malloc(%zu) failed: the symmetric heap is too small (raise "
             "NVSHMEM_SYMMETRIC_SIZE) or a peer failed",
             bytes);
    return 1;
  }
  cudaError_t e = cudaMemset(p, 0, bytes);
  if (e == cudaSuccess)
    e = cudaDeviceSynchronize();
  if (e != cudaSuccess) {
    snprintf(err, errlen, "clearing the symmetric workspace: %s", cudaGetErrorString(e));
    nvshmem_free(p);
    return 1;
  }
  nvshmem_barrier_all();
  *out = p;
  return 0;
}

void free_(void* p) { nvshmem_free(p); }

void finalize(void) { nvshmem_finalize(); }

}  // namespace

extern "C" int mixcomm__nvshmem_launch(const mixcomm__kargs_t* a, cudaStream_t stream);
extern "C" int mixcomm__nvshmem_blocks_per_sm(int dtype, int block, int* blocks);

MIXCOMM_PLUGIN_API const mixcomm__nvshmem_api_t* mixcomm_nvshmem_plugin(int version) {
  static const mixcomm__nvshmem_api_t api = {
      MIXCOMM_NVSHMEM_PLUGIN_VERSION, get_uniqueid, init, is_initialized, query, alloc, free_,
      finalize, mixcomm__nvshmem_launch, mixcomm__nvshmem_blocks_per_sm};
  return version == MIXCOMM_NVSHMEM_PLUGIN_VERSION ? &api : nullptr;
}
