/* SPDX-License-Identifier: Apache-2.0
 * Node workspace through CUDA VMM (see vmm.h). Each allocation is pinned device memory with a
 * POSIX file descriptor handle (and GPUDirect RDMA capable where the device supports it), so it
 * can be mapped by the other processes of the node and registered for the network. */
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "bootstrap/bootstrap.h"
#include "core/error.h"
#include "core/log.h"
#include "transport/cuda_driver.h"
#include "transport/vmm.h"

static void alloc_prop(const mixcomm__driver_t* d, int device, CUmemAllocationProp* prop) {
  memset(prop, 0, sizeof *prop);
  prop->type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop->location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  prop->location.id = device;
  prop->requestedHandleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
  CUdevice dev;
  int rdma = 0;
  if (d->cuDeviceGet(&dev, device) == CUDA_SUCCESS &&
      d->cuDeviceGetAttribute(&rdma, CU_DEVICE_ATTRIBUTE_GPU_DIRECT_RDMA_WITH_CUDA_VMM_SUPPORTED,
                              dev) == CUDA_SUCCESS &&
      rdma)
    prop->allocFlags.gpuDirectRDMACapable = 1;
}

mixcomm_status_t mixcomm__vmm_reserve(mixcomm__vmm_t* v, int device, int local_rank,
                                      int local_size, size_t bytes) {
  const mixcomm__driver_t* d;
  MIXCOMM_CHECK(mixcomm__driver(&d));
  memset(v, 0, sizeof *v);
  v->device = device;
  v->local_rank = local_rank;
  v->local_size = local_size;
  CUdevice dev;
  int supported = 0, posix = 0;
  mixcomm_status_t st = MIXCOMM_SUCCESS;
  MIXCOMM_CU_CHECK_GOTO(d->cuDeviceGet(&dev, device), "cuDeviceGet", st, fail);
  MIXCOMM_CU_CHECK_GOTO(d->cuDeviceGetAttribute(
                            &supported, CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED, dev),
                        "querying VMM support", st, fail);
  MIXCOMM_CU_CHECK_GOTO(
      d->cuDeviceGetAttribute(&posix, CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR_SUPPORTED,
                              dev),
      "querying POSIX handle support", st, fail);
  if (!supported || !posix)
    return mixcomm__error(MIXCOMM_ERR_UNSUPPORTED,
                          "device %d does not support CUDA virtual memory with POSIX file "
                          "descriptor handles (needed for the node workspace)",
                          device);
  CUmemAllocationProp prop;
  alloc_prop(d, device, &prop);
  size_t gran = 0;
  MIXCOMM_CU_CHECK_GOTO(d->cuMemGetAllocationGranularity(&gran, &prop,
                                                         CU_MEM_ALLOC_GRANULARITY_RECOMMENDED),
                        "cuMemGetAllocationGranularity", st, fail);
  if (gran == 0)
    gran = 2u << 20;
  v->granularity = gran;
  v->bytes = (bytes + gran - 1) / gran * gran;
  for (int i = 0; i < local_size; i++) {
    CUdeviceptr p = 0;
    MIXCOMM_CU_CHECK_GOTO(d->cuMemAddressReserve(&p, v->bytes, gran, 0, 0),
                          "reserving addresses for the node workspace (cuMemAddressReserve)", st,
                          fail);
    v->va[i] = p;
  }
  v->reserved = 1;
  return MIXCOMM_SUCCESS;
fail:
  for (int i = 0; i < local_size; i++)
    if (v->va[i] != 0)
      d->cuMemAddressFree((CUdeviceptr)v->va[i], v->bytes);
  memset(v->va, 0, sizeof v->va);
  return st;
}

static void unmap_range(const mixcomm__driver_t* d, mixcomm__vmm_t* v, int count,
                        const int* done) {
  for (int i = 0; i < count; i++)
    if (done[i])
      d->cuMemUnmap((CUdeviceptr)v->va[i], v->bytes);
}

mixcomm_status_t mixcomm__vmm_map(mixcomm__vmm_t* v, mixcomm_bootstrap_t* bs, int timeout_ms) {
  const mixcomm__driver_t* d;
  MIXCOMM_CHECK(mixcomm__driver(&d));
  if (!v->reserved || v->mapped)
    return mixcomm__error(MIXCOMM_ERR_INTERNAL, "vmm_map: reserved=%d mapped=%d", v->reserved,
                          v->mapped);
  const int L = v->local_size, me = v->local_rank;
  mixcomm_status_t st = MIXCOMM_SUCCESS;
  CUmemGenericAllocationHandle own = 0;
  int have_own = 0, my_fd = -1;
  int fds[MIXCOMM_MAX_LOCAL_SIZE];
  int mapped[MIXCOMM_MAX_LOCAL_SIZE] = {0};
  for (int i = 0; i < L; i++)
    fds[i] = -1;

  CUmemAllocationProp prop;
  alloc_prop(d, v->device, &prop);
  MIXCOMM_CU_CHECK_GOTO(d->cuMemCreate(&own, v->bytes, &prop, 0),
                        "allocating the node workspace (cuMemCreate)", st, out);
  have_own = 1;
  MIXCOMM_CU_CHECK_GOTO(d->cuMemExportToShareableHandle(
                            &my_fd, own, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0),
                        "exporting the node workspace as a file descriptor", st, out);
  MIXCOMM_CHECK_GOTO(mixcomm__fd_exchange(bs, me, L, my_fd, timeout_ms, fds), st, out);

  CUmemAccessDesc access;
  memset(&access, 0, sizeof access);
  access.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  access.location.id = v->device;
  access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
  for (int i = 0; i < L; i++) {
    CUmemGenericAllocationHandle h = own;
    if (i != me) {
      MIXCOMM_CU_CHECK_GOTO(
          d->cuMemImportFromShareableHandle(&h, (void*)(uintptr_t)fds[i],
                                            CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR),
          "importing a peer's node workspace", st, out);
    }
    CUresult r = d->cuMemMap((CUdeviceptr)v->va[i], v->bytes, 0, h, 0);
    if (i != me)
      d->cuMemRelease(h); /* the mapping keeps the allocation alive */
    MIXCOMM_CU_CHECK_GOTO(r, "mapping a node workspace (cuMemMap)", st, out);
    mapped[i] = 1;
    MIXCOMM_CU_CHECK_GOTO(d->cuMemSetAccess((CUdeviceptr)v->va[i], v->bytes, &access, 1),
                          "granting access to a node workspace (cuMemSetAccess)", st, out);
  }
  v->mapped = 1;
  MIXCOMM_DEBUG("node workspace mapped: %d x %zu bytes on device %d", L, v->bytes, v->device);
out:
  if (st != MIXCOMM_SUCCESS)
    unmap_range(d, v, L, mapped);
  if (have_own)
    d->cuMemRelease(own);
  if (my_fd >= 0)
    close(my_fd);
  for (int i = 0; i < L; i++)
    if (fds[i] >= 0)
      close(fds[i]);
  return st;
}

mixcomm_status_t mixcomm__vmm_unmap(mixcomm__vmm_t* v) {
  const mixcomm__driver_t* d;
  MIXCOMM_CHECK(mixcomm__driver(&d));
  mixcomm_status_t st = MIXCOMM_SUCCESS;
  if (!v->mapped)
    return st;
  for (int i = 0; i < v->local_size; i++) {
    CUresult r = d->cuMemUnmap((CUdeviceptr)v->va[i], v->bytes);
    if (r != CUDA_SUCCESS && st == MIXCOMM_SUCCESS)
      st = mixcomm__cu_error(r, "unmapping a node workspace (cuMemUnmap)");
  }
  v->mapped = 0;
  return st;
}

mixcomm_status_t mixcomm__vmm_destroy(mixcomm__vmm_t* v) {
  if (!v->reserved)
    return MIXCOMM_SUCCESS;
  const mixcomm__driver_t* d;
  MIXCOMM_CHECK(mixcomm__driver(&d));
  mixcomm_status_t st = mixcomm__vmm_unmap(v);
  for (int i = 0; i < v->local_size; i++) {
    CUresult r = d->cuMemAddressFree((CUdeviceptr)v->va[i], v->bytes);
    if (r != CUDA_SUCCESS && st == MIXCOMM_SUCCESS)
      st = mixcomm__cu_error(r, "freeing node workspace addresses (cuMemAddressFree)");
  }
  memset(v->va, 0, sizeof v->va);
  v->reserved = 0;
  return st;
}
