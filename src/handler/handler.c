/* SPDX-License-Identifier: Apache-2.0
 * Handler lifetime: creation (cross-rank checks, device, node workspace, autotune), shutdown,
 * and the init_* methods (as FlashInfer's MixedCommHandler has them). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cuda_runtime_api.h>

#include "bootstrap/bootstrap.h"
#include "bootstrap/peer_watch.h"
#include "core/build_config.h"
#include "core/env.h"
#include "core/error.h"
#include "core/log.h"
#include "core/topology.h"
#include "handler/handler.h"
#include "tune/tune.h"
#include "transport/nccl.h"
#include "transport/nvshmem_loader.h"

/* As generous as PyTorch's NCCL process-group default (10 minutes): ranks are legitimately far
 * apart at the first call after weight loading or compilation, and a dead peer is detected
 * through its closed connection (peer_watch.c), not by this bound. */
#define MIXCOMM_DEFAULT_TIMEOUT_MS 600000

/* What every rank announces at creation; all fields but the per-rank ones must agree. */
typedef struct rank_info {
  int32_t version;
  int32_t world_rank, world_size, local_rank, local_size, inter_rank, inter_size;
  int32_t local_tp, local_dp, inter_tp, inter_dp;
  int32_t dtype, grid, max_block, min_block, min_steps, use_autotune;
  /* per rank */
  int32_t pid, device, sm_count, nccl, nvshmem;
  mixcomm__cost_params_t cost; /* DEFAULT picks a mode from these: they must agree */
  char host[64];
  unsigned char uuid[16];
} rank_info_t;

static mixcomm_status_t check_config(const mixcomm_config_t* c) {
  if (c->struct_size != sizeof(mixcomm_config_t) || c->version / 100 != MIXCOMM_VERSION_CODE / 100)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "config was not initialised by this mixcomm version (struct_size=%zu, "
                          "version=%d; expected %zu, %d): use mixcomm_config_init",
                          c->struct_size, c->version, sizeof(mixcomm_config_t),
                          MIXCOMM_VERSION_CODE);
  if (mixcomm_dtype_size(c->dtype) == 0)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "dtype=%d: expected MIXCOMM_FLOAT16, MIXCOMM_BFLOAT16 or "
                          "MIXCOMM_FLOAT32",
                          (int)c->dtype);
  if (c->min_num_steps < 1)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "min_num_steps=%d: must be >= 1",
                          c->min_num_steps);
  if (c->timeout_ms < 0)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "timeout_ms=%d: must be >= 1, or 0 for the default", c->timeout_ms);
  if (c->grid_size < 0)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "grid_size=%d: must be >= 1, or 0 for the number of SMs", c->grid_size);
  return MIXCOMM_SUCCESS;
}

/* Programmatic dependent launch lets a fused kernel's launch overlap the previous kernel's
 * tail; MIXCOMM_DISABLE_PDL=1 turns it off (plain stream-ordered launches). */
static int pdl_from_env(void) {
  const char* v = getenv("MIXCOMM_DISABLE_PDL");
  return v == NULL || v[0] == '\0' || strcmp(v, "0") == 0;
}

static void fill_info(const mixcomm_handler_t* h, rank_info_t* r) {
  const mixcomm_config_t* c = &h->config;
  const mixcomm_topology_t* t = &h->topo;
  memset(r, 0, sizeof *r);
  r->version = MIXCOMM_VERSION_CODE;
  r->world_rank = t->world_rank;
  r->world_size = t->world_size;
  r->local_rank = t->local_rank;
  r->local_size = t->local_size;
  r->inter_rank = t->inter_rank;
  r->inter_size = t->inter_size;
  r->local_tp = t->local_tp_size;
  r->local_dp = t->local_dp_size;
  r->inter_tp = t->inter_tp_size;
  r->inter_dp = t->inter_dp_size;
  r->dtype = (int32_t)c->dtype;
  r->grid = h->plan.grid_size; /* resolved: 0 became the SM count */
  r->max_block = c->max_block_size;
  r->min_block = c->min_block_size;
  r->min_steps = c->min_num_steps;
  r->use_autotune = c->use_autotune;
  r->pid = (int32_t)getpid();
  r->device = h->device;
  r->sm_count = h->sm_count;
  r->nccl = h->caps.nccl;
  r->nvshmem = h->caps.nvshmem;
  mixcomm__cost_params_default(&r->cost);
  if (gethostname(r->host, sizeof r->host - 1) != 0)
    snprintf(r->host, sizeof r->host, "?");
}

#define SAME_FIELD(f, name)                                                                   \
  if (all[i].f != me->f)                                                                      \
    return mixcomm__error(MIXCOMM_ERR_MISMATCH,                                               \
                          "rank %d was created with %s=%d but rank %d with %s=%d: every rank " \
                          "must pass the same configuration",                                 \
                          i, name, (int)all[i].f, me->world_rank, name, (int)me->f);

/* Every rank must describe the same job, and sit where its world rank says. */
static mixcomm_status_t check_agreement(mixcomm_handler_t* h, const rank_info_t* all) {
  const rank_info_t* me = &all[h->topo.world_rank];
  for (int i = 0; i < h->topo.world_size; i++) {
    if (all[i].world_rank != i)
      return mixcomm__error(MIXCOMM_ERR_MISMATCH,
                            "the bootstrap's rank %d was created as world_rank=%d: the "
                            "bootstrap rank must equal world_rank",
                            i, all[i].world_rank);
    SAME_FIELD(version, "mixcomm version");
    SAME_FIELD(world_size, "world_size");
    SAME_FIELD(local_size, "local_size");
    SAME_FIELD(inter_size, "inter_size");
    SAME_FIELD(local_tp, "local_tp_size (resolved)");
    SAME_FIELD(local_dp, "local_dp_size (resolved)");
    SAME_FIELD(inter_tp, "inter_tp_size (resolved)");
    SAME_FIELD(inter_dp, "inter_dp_size (resolved)");
    SAME_FIELD(dtype, "dtype");
    SAME_FIELD(max_block, "max_block_size");
    SAME_FIELD(min_block, "min_block_size");
    SAME_FIELD(min_steps, "min_num_steps");
    SAME_FIELD(use_autotune, "use_autotune");
    SAME_FIELD(grid, "grid_size (resolved)");
    if (!all[i].nccl)
      h->caps.nccl = 0; /* NCCL modes need NCCL on every rank */
    if (!all[i].nvshmem)
      h->caps.nvshmem = 0; /* so do fused modes across nodes with NVSHMEM */
    if (memcmp(&all[i].cost, &me->cost, sizeof me->cost) != 0)
      return mixcomm__error(MIXCOMM_ERR_MISMATCH,
                            "rank %d and rank %d have different MIXCOMM_COST_* settings, so they "
                            "could choose different modes for the same call: set them the same "
                            "on every rank",
                            i, me->world_rank);
  }
  /* Ranks of a node must share a host, since they map each other's memory. Whether ranks
   * share a GPU is decided from every node's records, so every rank reaches the same answer
   * (and the same list of valid modes). */
  int sharing = 0;
  for (int i = 0; i < h->topo.world_size; i++) {
    const int first = i - all[i].local_rank;
    for (int j = first; j < i; j++) {
      if (strncmp(all[j].host, all[i].host, sizeof all[i].host) != 0)
        return mixcomm__error(MIXCOMM_ERR_MISMATCH,
                              "world ranks %d (host %s) and %d (host %s) are local ranks of node "
                              "%d but run on different hosts: ranks of one node must share a "
                              "host (check local_size and the rank numbering)",
                              j, all[j].host, i, all[i].host, all[i].inter_rank);
    }
    /* Any two ranks of one host on one GPU (also across emulated nodes) rule out NCCL. */
    for (int j = 0; j < i; j++)
      if (strncmp(all[j].host, all[i].host, sizeof all[i].host) == 0 &&
          memcmp(all[j].uuid, all[i].uuid, sizeof all[i].uuid) == 0)
        h->caps.ranks_share_gpu = 1;
    /* Ranks of other (emulated) nodes on this host may use this GPU too. */
    if (strncmp(all[i].host, me->host, sizeof me->host) == 0 &&
        memcmp(all[i].uuid, me->uuid, sizeof me->uuid) == 0)
      sharing++;
  }
  /* Fused kernels spin on their peers: all CTAs of the ranks sharing a GPU must fit at once. */
  const long long capacity = (long long)h->sm_count * h->blocks_per_sm;
  if ((long long)h->plan.grid_size * sharing > capacity)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "%d rank(s) use GPU %d; grid_size=%d x %d = %lld CTAs exceed the %lld "
                          "that can run at once (%d SMs x %d CTAs of %d threads), so the ranks' "
                          "kernels could not all be resident: set grid_size <= %lld (or a smaller "
                          "max_block_size)",
                          sharing, h->device, h->plan.grid_size, sharing,
                          (long long)h->plan.grid_size * sharing, capacity, h->sm_count,
                          h->blocks_per_sm, h->plan.max_block_size, capacity / sharing);
  return MIXCOMM_SUCCESS;
}

static mixcomm_status_t setup_device(mixcomm_handler_t* h, rank_info_t* info) {
  int dev = h->config.device;
  if (dev < 0)
    MIXCOMM_CUDA_CHECK(cudaGetDevice(&dev), "finding the current CUDA device");
  else
    MIXCOMM_CUDA_CHECK(cudaSetDevice(dev), "selecting the CUDA device (config.device)");
  h->device = dev;
  MIXCOMM_CUDA_CHECK(cudaDeviceGetAttribute(&h->sm_count, cudaDevAttrMultiProcessorCount, dev),
                     "reading the SM count");
  int major = 0;
  MIXCOMM_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev),
                     "reading the compute capability");
  if (major < 9)
    return mixcomm__error(MIXCOMM_ERR_UNSUPPORTED,
                          "device %d has compute capability %d.x: mixcomm is built for sm_90 "
                          "(Hopper) and newer",
                          dev, major);
  int grid = h->config.grid_size ? h->config.grid_size : h->sm_count;
  MIXCOMM_CHECK(mixcomm__plan_for_topology(&h->topo, grid, h->config.max_block_size,
                                           h->config.min_block_size, &h->plan));
  int e = mixcomm__intranode_blocks_per_sm((int)h->config.dtype, h->plan.max_block_size,
                                           &h->blocks_per_sm);
  if (e == cudaSuccess && h->topo.inter_size > 1 && mixcomm__nvshmem_available()) {
    int across = 0;
    e = mixcomm__nvshmem_blocks_per_sm((int)h->config.dtype, h->plan.max_block_size, &across);
    if (e == cudaSuccess && across < h->blocks_per_sm)
      h->blocks_per_sm = across;
  }
  if (e != cudaSuccess)
    return mixcomm__cuda_error(e, "querying how many kernel CTAs fit on an SM");
  if (h->blocks_per_sm < 1)
    return mixcomm__error(MIXCOMM_ERR_UNSUPPORTED,
                          "no CTA of %d threads of the fused kernels fits on an SM of device %d",
                          h->plan.max_block_size, dev);
  fill_info(h, info);
  struct cudaDeviceProp prop;
  MIXCOMM_CUDA_CHECK(cudaGetDeviceProperties(&prop, dev), "reading device properties");
  memcpy(info->uuid, &prop.uuid, sizeof info->uuid);

  size_t control = h->plan.control_bytes + sizeof(mixcomm__control_t);
  const size_t stamps = MIXCOMM_PHASE_STAMPS ? MIXCOMM_STAMP_CALLS * sizeof(mixcomm__stamp_call_t)
                                             : 0;
  MIXCOMM_CUDA_CHECK(cudaMalloc((void**)&h->control, control + stamps),
                     "allocating the control block");
  MIXCOMM_CUDA_CHECK(cudaMemset(h->control, 0, control + stamps), "clearing the control block");
  if (stamps > 0)
    h->stamps = (mixcomm__stamp_call_t*)((char*)h->control + control);
  MIXCOMM_CUDA_CHECK(cudaHostAlloc((void**)&h->host, sizeof *h->host, cudaHostAllocMapped),
                     "allocating host-mapped error flags");
  memset((void*)h->host, 0, sizeof *h->host);
  MIXCOMM_CUDA_CHECK(cudaHostGetDevicePointer((void**)&h->host_dev, h->host, 0),
                     "mapping the error flags for the device");
  return MIXCOMM_SUCCESS;
}

mixcomm_status_t mixcomm__protocol_reset(mixcomm_handler_t* h) {
  cudaStream_t s;
  MIXCOMM_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking),
                     "creating a setup stream");
  mixcomm_status_t st = MIXCOMM_SUCCESS;
  MIXCOMM_CUDA_CHECK_GOTO(
      cudaMemsetAsync((void*)(uintptr_t)h->vmm.va[h->topo.local_rank], 0xFF, h->vmm.bytes, s),
      "poisoning the node workspace", st, out);
  MIXCOMM_CUDA_CHECK_GOTO(
      cudaMemsetAsync(h->control, 0, h->plan.control_bytes + sizeof(mixcomm__control_t), s),
      "clearing the ring state", st, out);
  /* The call counters restart at 0, so the epochs the cross-node kernels SET in the signal
   * words repeat: a word left by the call of the same shape, CTA and number before the reset
   * would satisfy the new call's wait at once and let it read the old rows
   * (nvshmem_plugin/internode.cu). Zero them, as nvshmem_malloc's caller did at creation (0 is no
   * epoch). No peer writes into them before the agreement that follows this reset. */
  if (h->nvshmem_ws != NULL)
    MIXCOMM_CUDA_CHECK_GOTO(cudaMemsetAsync(h->nvshmem_ws, 0, h->plan.nvshmem_bytes, s),
                            "clearing the symmetric workspace and its signal words", st, out);
  MIXCOMM_CUDA_CHECK_GOTO(cudaStreamSynchronize(s), "waiting for workspace initialisation", st,
                          out);
out:
  cudaStreamDestroy(s);
  return st;
}

mixcomm_status_t mixcomm_init_virtual_memory(mixcomm_handler_t* h) {
  MIXCOMM_CHECK(mixcomm__handler_usable(h, "init_virtual_memory"));
  if (h->vmm_ready)
    return MIXCOMM_SUCCESS;
  /* A node workspace is needed to talk inside the node, and by the two-shot kernels across
   * nodes even with one GPU per node (they stage through the rank's own rows). */
  if ((h->topo.local_size > 1 || h->topo.inter_size > 1) &&
      h->topo.local_size <= MIXCOMM_MAX_LOCAL_SIZE) {
    /* A rank that fails to reserve still takes part in the mapping's collective steps, so
     * that every rank fails at once (naming it) instead of waiting for it. */
    mixcomm_status_t st = mixcomm__vmm_reserve(&h->vmm, h->device, h->topo.local_rank,
                                               h->topo.local_size, h->plan.vmm_bytes);
    st = mixcomm__vmm_map(&h->vmm, h->bs, h->timeout_ms, st); /* fails on every rank or none */
    /* No rank may write into a peer's workspace before the peer has poisoned it: this
     * agreement is the barrier, and fails every rank if one could not reset. */
    if (st == MIXCOMM_SUCCESS)
      st = mixcomm__bs_agree(h->bs, mixcomm__protocol_reset(h), "init_virtual_memory");
    if (st != MIXCOMM_SUCCESS) {
      mixcomm__vmm_destroy(&h->vmm);
      return mixcomm__error_context(st, "init_virtual_memory");
    }
  } else {
    MIXCOMM_CHECK(mixcomm__bs_barrier(h->bs, "init_virtual_memory"));
  }
  h->vmm_ready = 1;
  return MIXCOMM_SUCCESS;
}

mixcomm_status_t mixcomm_init_nvshmem(mixcomm_handler_t* h) {
  MIXCOMM_CHECK(mixcomm__handler_usable(h, "init_nvshmem"));
  if (h->topo.inter_size == 1 || h->nvshmem_ws != NULL)
    return MIXCOMM_SUCCESS; /* NVSHMEM only carries traffic between nodes */
  if (!h->caps.nvshmem)
    return mixcomm__error(MIXCOMM_ERR_UNSUPPORTED,
                          "NVSHMEM is unavailable on some rank (%s), so fused modes across %d "
                          "nodes are unavailable (NCCL modes still work)",
                          mixcomm__nvshmem_available() ? "another rank"
                                                       : mixcomm__nvshmem_unavailable_reason(),
                          h->topo.inter_size);
  return mixcomm__nvshmem_setup(h);
}

/* The watch thread saw a peer's connection close: make the kernels stop waiting (they poll
 * host->peer_lost) and calls report it. */
static void on_peer_lost(void* arg, int lost, int via) {
  mixcomm_handler_t* h = arg;
  h->lost_via = via;
  __sync_synchronize();
  if (h->host->peer_lost == 0)
    h->host->peer_lost = lost + 1;
  __sync_synchronize();
}

static mixcomm_status_t create(const mixcomm_config_t* config, mixcomm_bootstrap_t* bs,
                               mixcomm_handler_t* h) {
  MIXCOMM_CHECK(check_config(config));
  h->config = *config;
  h->bs = bs;
  MIXCOMM_CHECK(mixcomm__env_timeout_ms(config->timeout_ms, MIXCOMM_DEFAULT_TIMEOUT_MS,
                                       &h->timeout_ms));
  h->pdl = pdl_from_env();
  mixcomm_topology_t t;
  mixcomm__topology_from_config(config, &t);
  MIXCOMM_CHECK(mixcomm_topology_resolve(&t, &h->topo));
  if (bs == NULL || bs->allgather == NULL || bs->barrier == NULL)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "bootstrap is NULL or lacks allgather/barrier: pass one from "
                          "mixcomm_bootstrap_tcp_create or fill the callbacks");
  if (bs->rank != t.world_rank || bs->size != t.world_size)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "bootstrap has rank %d of %d but the config says world_rank=%d of "
                          "world_size=%d",
                          bs->rank, bs->size, t.world_rank, t.world_size);
  mixcomm_caps_default(&h->caps);
  h->caps.autotune = config->use_autotune != 0;
  h->caps.nccl = mixcomm__nccl_available();
  h->caps.nvshmem = t.inter_size > 1 && mixcomm__nvshmem_available();

  rank_info_t mine;
  MIXCOMM_CHECK(setup_device(h, &mine));
  /* From here a peer that dies stops this rank's kernels within a second (peer_watch.c). */
  MIXCOMM_CHECK(mixcomm__peer_watch_start(bs, on_peer_lost, h, &h->watch));
  rank_info_t* all = calloc((size_t)t.world_size, sizeof *all);
  if (all == NULL)
    return mixcomm__error(MIXCOMM_ERR_OUT_OF_MEMORY, "allocating %d rank records", t.world_size);
  mixcomm_status_t st = mixcomm__bs_allgather(bs, &mine, all, sizeof mine, "handler creation");
  if (st == MIXCOMM_SUCCESS)
    st = check_agreement(h, all);
  free(all);
  MIXCOMM_CHECK(st);
  /* Every rank computes the same caps from the same records: the valid modes agree. */
  MIXCOMM_INFO("rank %d: topology local %dx%d inter %dx%d, grid %d, block <= %d, workspace %zu B, "
               "ranks share GPU: %d",
               t.world_rank, h->topo.local_tp_size, h->topo.local_dp_size, h->topo.inter_tp_size,
               h->topo.inter_dp_size, h->plan.grid_size, h->plan.max_block_size,
               h->plan.vmm_bytes, h->caps.ranks_share_gpu);
  MIXCOMM_CHECK(mixcomm_init_virtual_memory(h));
  if (h->topo.inter_size > 1) {
    st = mixcomm_init_nvshmem(h);
    if (st == MIXCOMM_ERR_UNSUPPORTED)
      h->caps.nvshmem = 0; /* fused modes across nodes become invalid, with that reason */
    else
      MIXCOMM_CHECK(st);
  }
  if (mixcomm_topology_mode_valid(&h->topo, &h->caps, MIXCOMM_MODE_NCCL_ONE, NULL))
    MIXCOMM_CHECK(mixcomm__nccl_setup(h, &h->nccl));
  h->state = MIXCOMM_STATE_READY;
  if (config->use_autotune)
    MIXCOMM_CHECK(mixcomm__tune_at_creation(h));
  return MIXCOMM_SUCCESS;
}

static void release(mixcomm_handler_t* h) {
  mixcomm__peer_watch_stop(h->watch); /* first: it writes into h->host */
  h->watch = NULL;
  mixcomm__nvshmem_teardown(h, h->state == MIXCOMM_STATE_READY ||
                                   h->state == MIXCOMM_STATE_CHECKPOINTED);
  mixcomm__nccl_teardown(h->nccl, h->state != MIXCOMM_STATE_READY);
  h->nccl = NULL;
  if (h->vmm.reserved)
    mixcomm__vmm_destroy(&h->vmm);
  if (h->control != NULL)
    cudaFree(h->control);
  if (h->host != NULL)
    cudaFreeHost(h->host);
  h->state = MIXCOMM_STATE_SHUT_DOWN;
  free(h);
}

mixcomm_status_t mixcomm_handler_create(const mixcomm_config_t* config,
                                        mixcomm_bootstrap_t* bootstrap, mixcomm_handler_t** out) {
  if (config == NULL || out == NULL)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "handler_create: NULL %s",
                          config == NULL ? "config" : "out");
  *out = NULL;
  mixcomm_handler_t* h = calloc(1, sizeof *h);
  if (h == NULL)
    return mixcomm__error(MIXCOMM_ERR_OUT_OF_MEMORY, "allocating the handler");
  h->state = MIXCOMM_STATE_CREATING;
  if (!mixcomm__handler_register(h)) {
    free(h);
    return mixcomm__error(MIXCOMM_ERR_OUT_OF_MEMORY, "registering the handler");
  }
  mixcomm_status_t st = create(config, bootstrap, h);
  if (st != MIXCOMM_SUCCESS) {
    mixcomm__error_context(st, "creating the handler (rank %d)", config->world_rank);
    mixcomm__handler_unregister(h);
    release(h);
    return st;
  }
  mixcomm__error_clear();
  *out = h;
  return MIXCOMM_SUCCESS;
}

mixcomm_status_t mixcomm_handler_shutdown(mixcomm_handler_t* h) {
  if (h == NULL)
    return MIXCOMM_SUCCESS;
  if (!mixcomm__handler_live(h))
    return mixcomm__error(MIXCOMM_ERR_INVALID_USAGE,
                          "shutdown: not a live handler (already shut down?)");
  mixcomm__handler_unregister(h);
  mixcomm_status_t st = MIXCOMM_SUCCESS;
  /* Kernels end within the timeout even if a peer is gone, so this wait is bounded. */
  cudaError_t e = cudaDeviceSynchronize();
  if (e != cudaSuccess)
    st = mixcomm__cuda_error((int)e, "shutdown: waiting for the handler's kernels");
  /* Stop watching before the barrier: once any rank is past it, it may close its bootstrap,
   * and every watch must be gone by then so that this is not taken for a death. A rank that
   * dies from here on is seen by the barrier itself. */
  mixcomm__peer_watch_stop(h->watch);
  h->watch = NULL;
  /* Peers may still be reading or writing my workspace until they pass this barrier. */
  if (st == MIXCOMM_SUCCESS)
    st = mixcomm__bs_barrier(h->bs, "shutdown");
  if (h->vmm.reserved) {
    mixcomm_status_t s2 = mixcomm__vmm_destroy(&h->vmm);
    if (st == MIXCOMM_SUCCESS)
      st = s2;
  }
  release(h);
  if (st == MIXCOMM_SUCCESS)
    mixcomm__error_clear();
  return st;
}

const mixcomm_topology_t* mixcomm_handler_topology(const mixcomm_handler_t* h) {
  return h != NULL && mixcomm__handler_live(h) ? &h->topo : NULL;
}

const mixcomm_caps_t* mixcomm_handler_caps(const mixcomm_handler_t* h) {
  return h != NULL && mixcomm__handler_live(h) ? &h->caps : NULL;
}

const mixcomm_workspace_plan_t* mixcomm_handler_plan(const mixcomm_handler_t* h) {
  return h != NULL && mixcomm__handler_live(h) ? &h->plan : NULL;
}

mixcomm_status_t mixcomm_nvshmem_finalize(void) { return mixcomm__nvshmem_finalize(); }

void mixcomm_config_init(mixcomm_config_t* config) {
  if (config == NULL)
    return;
  const mixcomm_config_t defaults = MIXCOMM_CONFIG_INITIALIZER;
  *config = defaults;
}
