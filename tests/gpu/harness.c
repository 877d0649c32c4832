/* SPDX-License-Identifier: Apache-2.0
 * Pieces shared by the GPU test programs that start their own ranks (see harness.h). */
#include "gpu/harness.h"

#include "common/args.h"

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

int harness_parse_args(int argc, char** argv, const harness_option_t* options, int n,
                       int (*value_fn)(void* ctx, const char* name, const char* value),
                       void* ctx, const char* prog, void (*usage)(void)) {
  for (int k = 0; k < n; k++)
    if (options[k].kind == HARNESS_INT)
      *options[k].value = options[k].dflt;
  for (int i = 1; i < argc; i++) {
    const char* a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : NULL;
    const harness_option_t* opt = NULL;
    for (int k = 0; k < n && opt == NULL; k++)
      if (strcmp(a, options[k].name) == 0)
        opt = &options[k];
    if (opt != NULL && (opt->kind == HARNESS_FLAG || opt->kind == HARNESS_STOP_FLAG)) {
      *opt->value = 1;
      if (opt->kind == HARNESS_STOP_FLAG)
        return -1;
      continue;
    }
    int bad;
    if (opt == NULL || v == NULL)
      bad = 1;
    else if (opt->kind == HARNESS_INT)
      bad = args_parse_int(v, opt->lo, opt->hi, opt->value) != 0;
    else
      bad = value_fn(ctx, a, v) != 0;
    if (bad)
      return harness_bad_argument(prog, a, v, usage);
    i++;
  }
  return -1;
}

int harness_parse_list(const char* v, int max, int (*item)(void* ctx, int index, const char* text),
                       void* ctx) {
  char buf[128];
  snprintf(buf, sizeof buf, "%s", v);
  int n = 0;
  for (char* tok = strtok(buf, ","); tok != NULL; tok = strtok(NULL, ",")) {
    if (n >= max || item(ctx, n, tok) != 0)
      return -1;
    n++;
  }
  return n > 0 ? n : -1;
}
