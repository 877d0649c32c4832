/* SPDX-License-Identifier: Apache-2.0
 * One mixcomm-perf rank from start to end (rank.h). */
#include "perf/rank.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "perf/context.h"
#include "perf/report.h"
#include "perf/sweep.h"

/* Every rank's host, GPU and SM count: which ranks share a GPU, and the grid (the same on every
 * rank) when --grid-size does not give one. 0, or -1 reported. */
static int gather_devices(perf_ctx_t* c) {
  perf_devinfo_t me;
  memset(&me, 0, sizeof me);
  if (gethostname(me.host, sizeof me.host - 1) != 0)
    snprintf(me.host, sizeof me.host, "unknown");
  struct cudaDeviceProp prop;
  PERF_CUDA_OK(c, cudaGetDeviceProperties(&prop, c->device), "cudaGetDeviceProperties");
  memcpy(me.uuid, &prop.uuid, sizeof me.uuid);
  me.device = c->device;
  me.sm_count = prop.multiProcessorCount;
  int n = 0;
  PERF_CUDA_OK(c, cudaGetDeviceCount(&n), "cudaGetDeviceCount");
  me.device_count = n;
  memcpy(me.name, prop.name, sizeof me.name - 1); /* me is zeroed: stays terminated */
  c->infos = calloc((size_t)c->world, sizeof *c->infos);
  if (c->infos == NULL) {
    perf_msg_fail(c, "out of host memory");
    return -1;
  }
  mixcomm_status_t st =
      mixcomm__bs_allgather(c->bs, &me, c->infos, sizeof me, "sharing device identities");
  if (st != MIXCOMM_SUCCESS) {
    perf_lib_fail(c, "sharing device identities", st);
    return -1;
  }
  /* Ranks on each rank's GPU; the default grid must fit the most crowded GPU (the handler
   * requires the same grid on every rank). */
  int grid = 0;
  c->sharing = 0;
  for (int i = 0; i < c->world; i++) {
    int on_i = 0;
    for (int j = 0; j < c->world; j++)
      on_i += !strncmp(c->infos[i].host, c->infos[j].host, PERF_HOST_NAME_CAP) &&
              !memcmp(c->infos[i].uuid, c->infos[j].uuid, 16);
    if (i == c->rank)
      c->sharing = on_i;
    if (i == 0)
      c->all_one_gpu = on_i == c->world;
    const int g = c->infos[i].sm_count / on_i;
    if (i == 0 || g < grid)
      grid = g;
  }
  c->grid = c->o->grid_size > 0 ? c->o->grid_size : (grid > 0 ? grid : 1);
  return 0;
}


/* This rank's GPU (host_rank % devices: emulated nodes on distinct GPUs when there are
 * enough). 0, or -1 reported (no driver or GPU: said the way the library says it). */
static int pick_gpu(perf_ctx_t* c) {
  int n_dev = 0;
  cudaError_t e = cudaGetDeviceCount(&n_dev);
  if (e != cudaSuccess || n_dev < 1) {
    if (e == cudaSuccess)
      e = cudaErrorNoDevice;
    const char* missing = mixcomm__cuda_missing_reason((int)e);
    if (missing == NULL)
      perf_cuda_fail(c, "cudaGetDeviceCount", e);
    else
      fprintf(stderr, PERF_TOOL ": rank %d: %s (%s)\n", c->rank, missing, cudaGetErrorName(e));
    return -1;
  }
  c->device = c->r->host_rank % n_dev;
  PERF_CUDA_OK(c, cudaSetDevice(c->device), "cudaSetDevice");
  return 0;
}

/* The bootstrap for this rank's place in the job. 0, or -1 reported. */
static int join_job(perf_ctx_t* c) {
  mixcomm_tcp_options_t tcp = c->r->tcp;
  /* Ranks wait for each other's host work (references of large sizes) in bootstrap calls:
   * allow more than the default minute unless the user chose. */
  const char* bto = getenv("MIXCOMM_BOOTSTRAP_TIMEOUT_MS");
  if (tcp.timeout_ms == 0 && (bto == NULL || bto[0] == '\0'))
    tcp.timeout_ms = 600000;
  mixcomm_status_t st = mixcomm_bootstrap_tcp_create(&tcp, c->rank, c->world, &c->bs);
  if (st != MIXCOMM_SUCCESS) {
    perf_lib_fail(c, "creating the TCP bootstrap", st);
    return -1;
  }
  return 0;
}

/* The handler, as the options describe it. 0, or -1 reported (c->h stays NULL on failure). */
static int create_handler(perf_ctx_t* c) {
  const perf_options_t* o = c->o;
  const spawn_rank_t* r = c->r;
  mixcomm_config_t cfg;
  mixcomm_config_init(&cfg);
  cfg.world_rank = r->rank;
  cfg.world_size = r->world_size;
  cfg.local_rank = r->local_rank;
  cfg.local_size = r->local_size;
  cfg.inter_rank = r->rank / r->local_size;
  cfg.inter_size = r->world_size / r->local_size;
  cfg.local_tp_size = o->local_tp_size;
  cfg.local_dp_size = o->local_dp_size;
  cfg.inter_tp_size = o->inter_tp_size;
  cfg.inter_dp_size = o->inter_dp_size;
  cfg.dtype = o->dtype;
  cfg.device = c->device;
  cfg.grid_size = c->grid;
  cfg.max_block_size = o->max_block_size;
  cfg.use_autotune = o->autotune;
  cfg.timeout_ms = o->timeout_ms;
  mixcomm_status_t st = mixcomm_handler_create(&cfg, c->bs, &c->h);
  if (st != MIXCOMM_SUCCESS) {
    perf_lib_fail(c, "mixcomm_handler_create", st);
    c->h = NULL;
    return -1;
  }
  c->topo = mixcomm_handler_topology(c->h);
  if (c->topo == NULL) {
    perf_msg_fail(c, "mixcomm_handler_topology returned NULL");
    return -1;
  }
  return 0;
}

/* Rank 0: the closing line of the table and the JSON file. */
static void summarize(perf_ctx_t* c) {
  if (c->n_rows > 0 || c->failed)
    printf("# %s; total #wrong %lld\n", c->failed ? "FAILED (see the errors above)" : "done",
           (long long)c->total_wrong);
  if (c->o->json_path != NULL && perf_write_json(c, c->o->json_path) != 0)
    c->failed = 1;
  fflush(stdout);
}

int perf_rank_main(const spawn_rank_t* r, void* arg) {
  perf_ctx_t c;
  memset(&c, 0, sizeof c);
  c.o = arg;
  c.r = r;
  c.rank = r->rank;
  c.world = r->world_size;
  c.copy_gbps = c.copy_bytes = NAN;
  c.rtt_us = c.rtt_event_us = NAN;
  if (pick_gpu(&c) != 0 || join_job(&c) != 0)
    return 1;
  if (gather_devices(&c) == 0) {
    cudaError_t e = cudaStreamCreateWithFlags(&c.stream, cudaStreamNonBlocking);
    if (e != cudaSuccess) {
      perf_cuda_fail(&c, "cudaStreamCreate", e);
    } else if (create_handler(&c) == 0) {
      perf_sweep(&c);
      if (c.rank == 0)
        summarize(&c);
    }
  }
  if (c.h != NULL) {
    if (c.stream)
      cudaStreamSynchronize(c.stream);
    mixcomm_status_t st = mixcomm_handler_shutdown(c.h);
    if (st != MIXCOMM_SUCCESS)
      perf_lib_fail(&c, "mixcomm_handler_shutdown", st);
  }
  perf_release(&c);
  if (c.stream)
    cudaStreamDestroy(c.stream);
  mixcomm_bootstrap_destroy(c.bs);
  return (c.failed || (c.rank == 0 ? c.total_wrong : c.own_wrong) != 0) ? 1 : 0;
}
