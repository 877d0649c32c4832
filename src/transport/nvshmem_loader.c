/* SPDX-License-Identifier: Apache-2.0
 * NVSHMEM for jobs across nodes: the loader of the plugin libmixcomm_nvshmem.so
 * (src/nvshmem_plugin/, interface in nvshmem_plugin/plugin.h).
 *
 * Plugin lookup: $MIXCOMM_NVSHMEM_PLUGIN, else libmixcomm_nvshmem.so next to the binary that
 * holds libmixcomm (dladdr), else the loader's search path.
 * Start-up (COLLECTIVE, every step taken by every rank so that a failure anywhere becomes an
 * error everywhere instead of a rank left waiting):
 *   1. environment defaults, never overriding the user: NVSHMEM_IB_ENABLE_IBGDA from
 *      config.ib_enable_ibgda (false on a host without InfiniBand devices, where IBGDA cannot
 *      start and NVSHMEM would only print its failure), NVSHMEM_DISABLE_NVLS=1 (mixcomm never
 *      uses NVLink multicast);
 *   2. should_init_nvshmem: rank 0 creates a unique id, the bootstrap broadcasts it, every rank
 *      initialises; otherwise the application's NVSHMEM must already be running;
 *   3. every rank checks PE = world rank, PE count = world size, and that its node group lies
 *      inside one NVSHMEM node team (several "nodes" may share a host when emulated);
 *   4. the symmetric workspace of the plan is allocated (collective nvshmem_malloc).
 * Statuses of steps 2 and 3 are exchanged, so every rank reports the first failing rank. */
#include <dirent.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bootstrap/bootstrap.h"
#include "core/error.h"
#include "core/log.h"
#include "handler/handler.h"
#include "nvshmem_plugin/plugin.h"
#include "transport/nvshmem_loader.h"

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static const mixcomm__nvshmem_api_t* api;
static char load_error[768];
static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static int init_users; /* handlers using an NVSHMEM that mixcomm started */
static int started;    /* mixcomm started NVSHMEM in this process */

static void load(void) {
  char path[4096];
  const char* env = getenv("MIXCOMM_NVSHMEM_PLUGIN");
  Dl_info info;
  if (env != NULL && *env) {
    snprintf(path, sizeof path, "%s", env);
  } else if (dladdr((void*)&mixcomm__nvshmem_available, &info) && info.dli_fname != NULL) {
    const char* slash = strrchr(info.dli_fname, '/');
    if (slash != NULL)
      snprintf(path, sizeof path, "%.*s/libmixcomm_nvshmem.so", (int)(slash - info.dli_fname),
               info.dli_fname);
    else
      snprintf(path, sizeof path, "libmixcomm_nvshmem.so");
  } else {
    snprintf(path, sizeof path, "libmixcomm_nvshmem.so");
  }
  void* lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL && env == NULL)
    lib = dlopen("libmixcomm_nvshmem.so", RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL) {
    const char* e = dlerror();
    /* The usual cause: NVSHMEM itself is missing (the plugin needs its libnvshmem_host.so.3). */
    const int no_nvshmem = e != NULL && strstr(e, "libnvshmem_host") != NULL;
    snprintf(load_error, sizeof load_error, "could not load the NVSHMEM plugin %.200s: %.150s%s",
             path, e ? e : "?",
             no_nvshmem ? " (NVSHMEM 3.4.5 is needed: pip install \"mixcomm[nvshmem]\" or "
                          "nvidia-nvshmem-cu13==3.4.5, or put NVSHMEM's lib/ on LD_LIBRARY_PATH)"
                        : "");
    return;
  }
  mixcomm__nvshmem_plugin_fn fn = (mixcomm__nvshmem_plugin_fn)dlsym(lib, MIXCOMM_NVSHMEM_PLUGIN_SYMBOL);
  if (fn == NULL || (api = fn(MIXCOMM_NVSHMEM_PLUGIN_VERSION)) == NULL) {
    snprintf(load_error, sizeof load_error, "%.400s is not a compatible mixcomm NVSHMEM plugin", path);
    dlclose(lib);
    return;
  }
}

int mixcomm__nvshmem_available(void) {
  pthread_once(&load_once, load);
  return api != NULL;
}

const char* mixcomm__nvshmem_unavailable_reason(void) {
  pthread_once(&load_once, load);
  return api != NULL ? NULL : load_error;
}

/* Per-rank outcome of a start-up step, exchanged so all ranks fail together. */
typedef struct step_report {
  int32_t failed;
  char message[380];
} step_report_t;

static mixcomm_status_t agree_step(mixcomm_handler_t* h, const char* step, int failed,
                                   const char* message) {
  step_report_t mine;
  memset(&mine, 0, sizeof mine);
  mine.failed = failed;
  snprintf(mine.message, sizeof mine.message, "%s", message ? message : "");
  const int W = h->topo.world_size;
  step_report_t* all = calloc((size_t)W, sizeof *all);
  if (all == NULL)
    return mixcomm__error(MIXCOMM_ERR_OUT_OF_MEMORY, "NVSHMEM start-up: %d reports", W);
  mixcomm_status_t st = mixcomm__bs_allgather(h->bs, &mine, all, sizeof mine, step);
  for (int r = 0; st == MIXCOMM_SUCCESS && r < W; r++) {
    if (all[r].failed) {
      st = mixcomm__error(MIXCOMM_ERR_NVSHMEM, "%s failed on rank %d: %s", step, r,
                          all[r].message);
      break;
    }
  }
  free(all);
  return st;
}

/* Whether the kernel lists any InfiniBand (or RoCE) device: IBGDA needs one. */
static int infiniband_present(void) {
  DIR* d = opendir("/sys/class/infiniband");
  if (d == NULL)
    return 0;
  int found = 0;
  for (struct dirent* e = readdir(d); e != NULL && !found; e = readdir(d))
    found = e->d_name[0] != '.';
  closedir(d);
  return found;
}

mixcomm_status_t mixcomm__nvshmem_setup(mixcomm_handler_t* h) {
  if (!mixcomm__nvshmem_available())
    return mixcomm__error(MIXCOMM_ERR_UNSUPPORTED, "%s", load_error);
  char err[380] = "";
  if (getenv("NVSHMEM_IB_ENABLE_IBGDA") == NULL) {
    int ibgda = h->config.ib_enable_ibgda;
    if (ibgda && !infiniband_present()) {
      MIXCOMM_INFO("ib_enable_ibgda: no device in /sys/class/infiniband, IBGDA left off");
      ibgda = 0;
    }
    setenv("NVSHMEM_IB_ENABLE_IBGDA", ibgda ? "true" : "false", 0);
  }
  if (getenv("NVSHMEM_DISABLE_NVLS") == NULL)
    setenv("NVSHMEM_DISABLE_NVLS", "1", 0);

  /* 2. Start (or find) NVSHMEM. */
  int failed = 0;
  pthread_mutex_lock(&init_lock);
  const int running = api->is_initialized();
  if (h->config.should_init_nvshmem && !running) {
    struct {
      int32_t failed;
      char uid[MIXCOMM_NVSHMEM_UID_BYTES];
    } id;
    memset(&id, 0, sizeof id);
    if (h->topo.world_rank == 0)
      id.failed = api->get_uniqueid(id.uid, err, sizeof err) != 0;
    mixcomm_status_t st = mixcomm__bs_broadcast(h->bs, &id, sizeof id, 0, "NVSHMEM unique id");
    if (st != MIXCOMM_SUCCESS) {
      pthread_mutex_unlock(&init_lock);
      return st;
    }
    if (id.failed) {
      failed = 1;
      if (h->topo.world_rank != 0)
        snprintf(err, sizeof err, "rank 0 could not create the NVSHMEM unique id");
    } else if (api->init(id.uid, h->topo.world_rank, h->topo.world_size, err, sizeof err) != 0) {
      failed = 1;
    } else {
      h->nvshmem_owner = 1;
      init_users++;
      started = 1;
    }
  } else if (!running) {
    failed = 1;
    snprintf(err, sizeof err,
             "should_init_nvshmem is 0 but NVSHMEM is not initialized: start it before creating "
             "the handler, or set should_init_nvshmem");
  } else if (h->config.should_init_nvshmem && started) {
    h->nvshmem_owner = 1; /* started by an earlier handler of this process */
    init_users++;
  }
  pthread_mutex_unlock(&init_lock);
  MIXCOMM_CHECK(agree_step(h, "NVSHMEM initialization", failed, err));

  /* 3. PE numbering and node team. */
  int my_pe = -1, n_pes = -1, node_pe = -1, node_size = -1;
  failed = api->query(&my_pe, &n_pes, &node_pe, &node_size, err, sizeof err) != 0;
  const mixcomm_topology_t* t = &h->topo;
  if (!failed && (my_pe != t->world_rank || n_pes != t->world_size)) {
    failed = 1;
    snprintf(err, sizeof err,
             "NVSHMEM PE %d of %d, but world_rank %d of world_size %d (PEs must be numbered as "
             "world ranks)",
             my_pe, n_pes, t->world_rank, t->world_size);
  } else if (!failed && (node_size % t->local_size != 0 || node_pe % t->local_size != t->local_rank)) {
    failed = 1;
    snprintf(err, sizeof err,
             "NVSHMEM node team: PE %d of %d on this host, but local_rank %d of local_size %d (a "
             "node's ranks must be consecutive PEs of one host)",
             node_pe, node_size, t->local_rank, t->local_size);
  }
  MIXCOMM_CHECK(agree_step(h, "NVSHMEM PE check", failed, err));

  /* 4. Symmetric workspace. */
  void* ws = NULL;
  failed = api->alloc(h->plan.nvshmem_bytes, &ws, err, sizeof err) != 0;
  MIXCOMM_CHECK(agree_step(h, "NVSHMEM workspace allocation", failed, err));
  h->nvshmem_ws = ws;
  MIXCOMM_INFO("rank %d: NVSHMEM PE %d of %d (node team %d of %d), workspace %zu B",
               t->world_rank, my_pe, n_pes, node_pe, node_size, h->plan.nvshmem_bytes);
  return MIXCOMM_SUCCESS;
}

void mixcomm__nvshmem_teardown(mixcomm_handler_t* h, int peers_alive) {
  if (api == NULL)
    return;
  /* nvshmem_free and nvshmem_finalize are collective: with a dead peer they would block
   * forever, so a failed handler leaves them (the process is expected to exit). */
  if (!peers_alive) {
    if (h->nvshmem_ws != NULL || h->nvshmem_owner)
      MIXCOMM_WARN("rank %d: NVSHMEM workspace not freed (a peer failed)", h->topo.world_rank);
    return;
  }
  if (h->nvshmem_ws != NULL)
    api->free(h->nvshmem_ws);
  h->nvshmem_ws = NULL;
  /* An NVSHMEM that mixcomm started stays up for the next handler of the process instead of
   * being finalized: a start/finalize cycle of NVSHMEM 3.4.5 kept about 2 MiB of GPU memory per
   * process each time (measured, docs/reliability.md), and starting it again costs seconds.
   * mixcomm_nvshmem_finalize() ends it when the application wants it gone. */
  pthread_mutex_lock(&init_lock);
  if (h->nvshmem_owner)
    init_users--;
  h->nvshmem_owner = 0;
  pthread_mutex_unlock(&init_lock);
}

mixcomm_status_t mixcomm__nvshmem_finalize(void) {
  pthread_mutex_lock(&init_lock);
  mixcomm_status_t st = MIXCOMM_SUCCESS;
  if (init_users > 0)
    st = mixcomm__error(MIXCOMM_ERR_INVALID_USAGE,
                        "nvshmem_finalize: %d handler(s) still use NVSHMEM; shut them down first",
                        init_users);
  else if (started && api != NULL && api->is_initialized())
    api->finalize();
  started = 0;
  pthread_mutex_unlock(&init_lock);
  return st;
}

int mixcomm__nvshmem_launch(const mixcomm__kargs_t* a, cudaStream_t stream) {
  return api != NULL ? api->launch(a, stream) : (int)cudaErrorNotSupported;
}

int mixcomm__nvshmem_blocks_per_sm(int dtype, int block, int* blocks) {
  return api != NULL ? api->blocks_per_sm(dtype, block, blocks) : (int)cudaErrorNotSupported;
}
