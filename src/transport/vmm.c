/* SPDX-License-Identifier: Apache-2.0
 * Node workspace through CUDA VMM (see vmm.h). Each allocation is pinned device memory with a
 * POSIX file descriptor handle (and GPUDirect RDMA capable where the device supports it), so it
 * can be mapped by the other processes of the node and registered for the network. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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

#define BUS_ID_BYTES 32

/* The test hook MIXCOMM_DEBUG_FAIL_MAP=<world rank> (docs/reliability.md): that rank's mapping
 * fails after it mapped what it could, as a failed cuMemSetAccess would. */
static int map_failure_injected(int world_rank) {
  const char* v = getenv("MIXCOMM_DEBUG_FAIL_MAP");
  if (v == NULL || v[0] == '\0')
    return 0;
  char* end;
  long r = strtol(v, &end, 10);
  return *end == '\0' && r == world_rank;
}

/* Every other GPU of the node (bus[i] is local rank i's PCI bus id; "" if it could not say)
 * must be able to access this rank's GPU directly; ranks on the same GPU need nothing. Also
 * says, when logging is on, which peers are reached over PCIe rather than NVLink. */
static mixcomm_status_t check_peer_access(const mixcomm__driver_t* d, const mixcomm__vmm_t* v,
                                          CUdevice mine, const char (*bus)[BUS_ID_BYTES]) {
  const int me = v->local_rank;
  for (int i = 0; i < v->local_size; i++) {
    if (i == me || bus[i][0] == '\0' || strncmp(bus[i], bus[me], BUS_ID_BYTES) == 0)
      continue;
    CUdevice peer;
    CUresult r = d->cuDeviceGetByPCIBusId(&peer, bus[i]);
    if (r != CUDA_SUCCESS)
      return mixcomm__error(MIXCOMM_ERR_UNSUPPORTED,
                            "local rank %d's GPU (PCI %s) is not visible to local rank %d (device "
                            "%d, PCI %s), so this rank cannot map its node workspace: make every "
                            "GPU of the node visible to every rank of the node (the same "
                            "CUDA_VISIBLE_DEVICES on all of them) and pick each rank's GPU with "
                            "cudaSetDevice or config.device",
                            i, bus[i], me, v->device, bus[me]);
    int can = 0;
    r = d->cuDeviceCanAccessPeer(&can, mine, peer);
    if (r != CUDA_SUCCESS)
      return mixcomm__cu_error(r, "checking peer access between the node's GPUs "
                                  "(cuDeviceCanAccessPeer)");
    if (!can)
      return mixcomm__error(MIXCOMM_ERR_UNSUPPORTED,
                            "GPU %d (PCI %s, local rank %d) cannot access GPU %d (PCI %s, local "
                            "rank %d) directly (cuDeviceCanAccessPeer says no), so these ranks "
                            "cannot share a node workspace: give the ranks of one node GPUs "
                            "with peer access (NVLink, or one PCIe switch with peer-to-peer "
                            "allowed; see nvidia-smi topo -m), or describe them as separate "
                            "nodes (local_size / inter_size)",
                            v->device, bus[me], me, (int)peer, bus[i], i);
    /* Native atomics across the link stand in for "NVLink": PCIe peer links do not offer
     * them, NVLink does (the performance rank is not comparable across systems). */
    int atomics = 0;
    if (d->cuDeviceGetP2PAttribute(&atomics, CU_DEVICE_P2P_ATTRIBUTE_NATIVE_ATOMIC_SUPPORTED,
                                   mine, peer) == CUDA_SUCCESS &&
        !atomics)
      MIXCOMM_INFO("node workspace: local rank %d's GPU %d (PCI %s) reaches local rank %d's GPU "
                   "%d (PCI %s) without native atomics, i.e. over PCIe rather than NVLink: "
                   "expect lower bandwidth",
                   me, v->device, bus[me], i, (int)peer, bus[i]);
  }
  return MIXCOMM_SUCCESS;
}

mixcomm_status_t mixcomm__vmm_map(mixcomm__vmm_t* v, mixcomm_bootstrap_t* bs, int timeout_ms,
                                  mixcomm_status_t prior) {
  const int L = v->local_size, me = v->local_rank;
  const mixcomm__driver_t* d = NULL;
  mixcomm_status_t st = prior;
  if (st == MIXCOMM_SUCCESS)
    st = mixcomm__driver(&d);
  if (st == MIXCOMM_SUCCESS && (!v->reserved || v->mapped))
    st = mixcomm__error(MIXCOMM_ERR_INTERNAL, "vmm_map: reserved=%d mapped=%d", v->reserved,
                        v->mapped);
  CUmemGenericAllocationHandle own = 0;
  int have_own = 0, my_fd = -1;
  int fds[MIXCOMM_MAX_LOCAL_SIZE];
  int mapped[MIXCOMM_MAX_LOCAL_SIZE] = {0};
  for (int i = 0; i < MIXCOMM_MAX_LOCAL_SIZE; i++)
    fds[i] = -1;

  /* 1. Every rank's GPU (PCI bus id), then, on each rank, whether it can reach the GPUs of its
   * node and its own allocation; all ranks agree on the outcome before anything is mapped, so
   * a problem on one rank fails every rank at once, naming it. */
  CUdevice dev = 0;
  char(*bus)[BUS_ID_BYTES] = calloc((size_t)bs->size, BUS_ID_BYTES);
  if (bus == NULL)
    return mixcomm__error(MIXCOMM_ERR_OUT_OF_MEMORY, "vmm_map: out of host memory");
  char my_bus[BUS_ID_BYTES] = "";
  if (st == MIXCOMM_SUCCESS)
    MIXCOMM_CU_CHECK_GOTO(d->cuDeviceGet(&dev, v->device), "cuDeviceGet", st, gathered);
  if (st == MIXCOMM_SUCCESS)
    MIXCOMM_CU_CHECK_GOTO(d->cuDeviceGetPCIBusId(my_bus, BUS_ID_BYTES - 1, dev),
                          "reading the GPU's PCI bus id", st, gathered);
gathered:;
  /* Keep the local failure's message across the collective (it clears the last error). */
  char why[1024] = "";
  if (st != MIXCOMM_SUCCESS)
    snprintf(why, sizeof why, "%s", mixcomm_last_error());
  mixcomm_status_t bst =
      mixcomm__bs_allgather(bs, my_bus, bus, BUS_ID_BYTES, "node workspace: GPU identities");
  if (bst != MIXCOMM_SUCCESS) {
    free(bus);
    return bst;
  }
  if (st != MIXCOMM_SUCCESS)
    mixcomm__error(st, "%s", why);
  const int first = bs->rank - me; /* world rank of local rank 0 */
  if (st == MIXCOMM_SUCCESS && (first < 0 || first + L > bs->size))
    st = mixcomm__error(MIXCOMM_ERR_INTERNAL, "vmm_map: local ranks %d..%d outside the world",
                        first, first + L - 1);
  if (st == MIXCOMM_SUCCESS)
    st = check_peer_access(d, v, dev, (const char(*)[BUS_ID_BYTES])(bus + first));
  free(bus);
  if (st == MIXCOMM_SUCCESS) {
    CUmemAllocationProp prop;
    alloc_prop(d, v->device, &prop);
    MIXCOMM_CU_CHECK_GOTO(d->cuMemCreate(&own, v->bytes, &prop, 0),
                          "allocating the node workspace (cuMemCreate)", st, agree);
    have_own = 1;
    MIXCOMM_CU_CHECK_GOTO(d->cuMemExportToShareableHandle(
                              &my_fd, own, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0),
                          "exporting the node workspace as a file descriptor", st, agree);
  }
agree:
  MIXCOMM_CHECK_GOTO(mixcomm__bs_agree(bs, st, "node workspace: peer access and allocation"),
                     st, out);

  /* 2. Descriptors to the node (agreed inside), then every mapping; agreed again. */
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
          "importing a peer's node workspace", st, mapped_all);
    }
    CUresult r = d->cuMemMap((CUdeviceptr)v->va[i], v->bytes, 0, h, 0);
    if (i != me)
      d->cuMemRelease(h); /* the mapping keeps the allocation alive */
    MIXCOMM_CU_CHECK_GOTO(r, "mapping a node workspace (cuMemMap)", st, mapped_all);
    mapped[i] = 1;
    MIXCOMM_CU_CHECK_GOTO(d->cuMemSetAccess((CUdeviceptr)v->va[i], v->bytes, &access, 1),
                          "granting access to a node workspace (cuMemSetAccess)", st,
                          mapped_all);
  }
  if (map_failure_injected(bs->rank))
    st = mixcomm__error(MIXCOMM_ERR_CUDA,
                        "granting access to a node workspace: failure injected by "
                        "MIXCOMM_DEBUG_FAIL_MAP=%d (a test hook: unset it)",
                        bs->rank);
mapped_all:
  MIXCOMM_CHECK_GOTO(mixcomm__bs_agree(bs, st, "node workspace: mapping"), st, out);
  v->mapped = 1;
  MIXCOMM_DEBUG("node workspace mapped: %d x %zu bytes on device %d", L, v->bytes, v->device);
out:
  if (st != MIXCOMM_SUCCESS && d != NULL)
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
