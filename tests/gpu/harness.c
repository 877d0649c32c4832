/* SPDX-License-Identifier: Apache-2.0
 * Pieces shared by the GPU test programs that start their own ranks (see harness.h). */
#include "gpu/harness.h"

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include <cuda_runtime_api.h>

int harness_pick_device(int host_index, int ranks_on_host, int* grid, char* why, size_t size) {
  int ndev = 0;
  cudaError_t e = cudaGetDeviceCount(&ndev);
  if (e != cudaSuccess || ndev < 1) {
    snprintf(why, size, "no CUDA device: %s", cudaGetErrorString(e));
    return -1;
  }
  const int dev = host_index % ndev;
  int sms = 0;
  if ((e = cudaSetDevice(dev)) != cudaSuccess ||
      (e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev)) != cudaSuccess) {
    snprintf(why, size, "CUDA setup: %s", cudaGetErrorString(e));
    return -1;
  }
  const int sharing = (ranks_on_host + ndev - 1) / ndev;
  *grid = sms / sharing;
  if (*grid > 32 && sharing > 1)
    *grid = 32;
  return 0;
}

void* harness_map_shared(size_t bytes, const char* who) {
  void* p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    perror(who);
    return NULL;
  }
  memset(p, 0, bytes);
  return p;
}

mixcomm_status_t harness_one_node(int world, int tp, mixcomm_topology_t* t) {
  mixcomm_topology_t in;
  memset(&in, 0, sizeof in);
  in.world_size = in.local_size = world;
  in.inter_size = 1;
  in.local_tp_size = tp;
  return mixcomm_topology_resolve(&in, t);
}

int harness_bad_argument(const char* prog, const char* arg, const char* value,
                         void (*usage)(void)) {
  fprintf(stderr, "%s: bad argument %s%s%s\n", prog, arg, value ? " " : "", value ? value : "");
  usage();
  return 2;
}
