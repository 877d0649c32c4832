/* SPDX-License-Identifier: Apache-2.0
 * NCCL modes (see nccl.h). libnccl.so.2 is opened with dlopen the first time it is needed; its
 * functions go into one table. Semantics, row order as the fused kernels:
 *   NCCL_ONE   AR: all-reduce over the world.  AG: all-gather over the world (world order is
 *              dp order when tp = 1).  RS: reduce-scatter over the world.
 *              AR+AG: all-gather every rank's input into a temporary, then sum each dp block
 *              over its tp ranks on this GPU (sum_blocks.cu).
 *              RS+AR: all-to-all sending input block dp(w) to each rank w, then sum the world
 *              blocks received.
 *   NCCL_TP_DP AR+AG: all-reduce over TP into this rank's block of x_out, then in-place
 *              all-gather over DP.  RS+AR: reduce-scatter over DP into x_out, then in-place
 *              all-reduce over TP.
 * Temporaries come from cudaMallocAsync on the call's stream (graph capturable). */
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* The parts of NCCL's stable C ABI that mixcomm uses (values as in nccl.h since NCCL 2.x), so
 * that building needs no NCCL header at all. */
typedef struct ncclComm* ncclComm_t;
typedef struct ncclConfig ncclConfig_t; /* only ever passed as NULL */
typedef struct {
  char internal[128];
} ncclUniqueId;
typedef int ncclResult_t;
typedef int ncclDataType_t;
typedef int ncclRedOp_t;
enum { ncclSuccess = 0 };
enum { ncclSum = 0 };
enum { ncclFloat16 = 6, ncclFloat32 = 7, ncclBfloat16 = 9 };

#include "bootstrap/bootstrap.h"
#include "core/error.h"
#include "core/log.h"
#include "handler/handler.h"
#include "kernels/launch.h"
#include "transport/nccl.h"

#define MIXCOMM_NCCL_FUNCTIONS(X)                                                                 \
  X(ncclGetUniqueId, ncclResult_t, (ncclUniqueId*))                                               \
  X(ncclCommInitRank, ncclResult_t, (ncclComm_t*, int, ncclUniqueId, int))                        \
  X(ncclCommSplit, ncclResult_t, (ncclComm_t, int, int, ncclComm_t*, ncclConfig_t*))              \
  X(ncclCommDestroy, ncclResult_t, (ncclComm_t))                                                  \
  X(ncclCommAbort, ncclResult_t, (ncclComm_t))                                                    \
  X(ncclAllReduce, ncclResult_t,                                                                  \
    (const void*, void*, size_t, ncclDataType_t, ncclRedOp_t, ncclComm_t, cudaStream_t))          \
  X(ncclAllGather, ncclResult_t,                                                                  \
    (const void*, void*, size_t, ncclDataType_t, ncclComm_t, cudaStream_t))                       \
  X(ncclReduceScatter, ncclResult_t,                                                              \
    (const void*, void*, size_t, ncclDataType_t, ncclRedOp_t, ncclComm_t, cudaStream_t))          \
  X(ncclSend, ncclResult_t, (const void*, size_t, ncclDataType_t, int, ncclComm_t, cudaStream_t)) \
  X(ncclRecv, ncclResult_t, (void*, size_t, ncclDataType_t, int, ncclComm_t, cudaStream_t))       \
  X(ncclGroupStart, ncclResult_t, (void))                                                         \
  X(ncclGroupEnd, ncclResult_t, (void))                                                           \
  X(ncclGetErrorString, const char*, (ncclResult_t))

typedef struct nccl_api {
#define X_FIELD(name, ret, args) ret(*name) args;
  MIXCOMM_NCCL_FUNCTIONS(X_FIELD)
#undef X_FIELD
} nccl_api_t;

struct mixcomm__nccl {
  ncclComm_t world, tp, dp;
};

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static nccl_api_t api;
static int loaded;

static void load(void) {
  const char* path = getenv("MIXCOMM_NCCL_LIBRARY");
  void* lib = dlopen(path != NULL && *path ? path : "libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL)
    return;
#define X_LOAD(name, ret, args)                 \
  api.name = (ret(*) args)dlsym(lib, #name);    \
  if (api.name == NULL) {                       \
    dlclose(lib);                               \
    return;                                     \
  }
  MIXCOMM_NCCL_FUNCTIONS(X_LOAD)
#undef X_LOAD
  loaded = 1;
}

int mixcomm__nccl_available(void) {
  pthread_once(&load_once, load);
  return loaded;
}

static mixcomm_status_t nccl_error(ncclResult_t r, const char* what) {
  return mixcomm__error(MIXCOMM_ERR_NCCL, "%s: %s", what,
                        api.ncclGetErrorString ? api.ncclGetErrorString(r) : "NCCL error");
}

#define NCCL_CHECK(call, what)          \
  do {                                  \
    ncclResult_t r_ = (call);           \
    if (r_ != ncclSuccess)              \
      return nccl_error(r_, what);      \
  } while (0)

mixcomm_status_t mixcomm__nccl_setup(mixcomm_handler_t* h, struct mixcomm__nccl** out) {
  *out = NULL;
  if (!mixcomm__nccl_available())
    return mixcomm__error(MIXCOMM_ERR_UNSUPPORTED, "NCCL (libnccl.so.2) could not be loaded");
  struct mixcomm__nccl* n = calloc(1, sizeof *n);
  if (n == NULL)
    return mixcomm__error(MIXCOMM_ERR_OUT_OF_MEMORY, "allocating NCCL state");
  ncclUniqueId id;
  memset(&id, 0, sizeof id);
  mixcomm_status_t st = MIXCOMM_SUCCESS;
  ncclResult_t r = ncclSuccess;
  if (h->topo.world_rank == 0 && (r = api.ncclGetUniqueId(&id)) != ncclSuccess)
    st = nccl_error(r, "ncclGetUniqueId");
  /* Every rank joins the broadcast even if rank 0 failed, so nobody is left waiting. */
  int failed = st != MIXCOMM_SUCCESS;
  if (mixcomm__bs_broadcast(h->bs, &failed, sizeof failed, 0, "NCCL setup") != MIXCOMM_SUCCESS ||
      failed ||
      mixcomm__bs_broadcast(h->bs, &id, sizeof id, 0, "NCCL unique id") != MIXCOMM_SUCCESS) {
    if (st == MIXCOMM_SUCCESS && failed)
      st = mixcomm__error(MIXCOMM_ERR_NCCL, "rank 0 could not create the NCCL unique id");
    else if (st == MIXCOMM_SUCCESS)
      st = MIXCOMM_ERR_BOOTSTRAP;
    free(n);
    return st;
  }
  r = api.ncclCommInitRank(&n->world, h->topo.world_size, id, h->topo.world_rank);
  if (r != ncclSuccess) {
    free(n);
    return nccl_error(r, "ncclCommInitRank (world)");
  }
  if (h->topo.tp_size > 1 && h->topo.dp_size > 1) {
    r = api.ncclCommSplit(n->world, h->topo.dp_rank, h->topo.tp_rank, &n->tp, NULL);
    if (r == ncclSuccess)
      r = api.ncclCommSplit(n->world, h->topo.tp_rank, h->topo.dp_rank, &n->dp, NULL);
    if (r != ncclSuccess) {
      st = nccl_error(r, "ncclCommSplit (TP / DP groups)");
      mixcomm__nccl_teardown(n, 1);
      return st;
    }
  }
  *out = n;
  return MIXCOMM_SUCCESS;
}

void mixcomm__nccl_teardown(struct mixcomm__nccl* n, int abort) {
  if (n == NULL)
    return;
  ncclComm_t comms[3] = {n->tp, n->dp, n->world};
  for (int i = 0; i < 3; i++) {
    if (comms[i] == NULL)
      continue;
    if (abort)
      api.ncclCommAbort(comms[i]);
    else
      api.ncclCommDestroy(comms[i]);
  }
  free(n);
}

static ncclDataType_t nccl_type(mixcomm_dtype_t d) {
  return d == MIXCOMM_FLOAT16 ? ncclFloat16 : d == MIXCOMM_BFLOAT16 ? ncclBfloat16 : ncclFloat32;
}

/* AR+AG or RS+AR in NCCL_ONE: one exchange over the world into a temporary, then a local sum. */
static mixcomm_status_t one_fused(mixcomm_handler_t* h, mixcomm_op_t op, const void* in,
                                  void* out, int64_t count, cudaStream_t s) {
  const mixcomm_topology_t* t = &h->topo;
  const ncclDataType_t type = nccl_type(h->config.dtype);
  const size_t esize = mixcomm_dtype_size(h->config.dtype);
  const size_t block = (size_t)count * esize;
  void* tmp = NULL;
  MIXCOMM_CUDA_CHECK(cudaMallocAsync(&tmp, block * (size_t)t->world_size, s),
                     "allocating the NCCL_ONE temporary");
  mixcomm_status_t st = MIXCOMM_SUCCESS;
  ncclResult_t r;
  if (op == MIXCOMM_OP_ALLREDUCE_ALLGATHER) {
    r = api.ncclAllGather(in, tmp, (size_t)count, type, h->nccl->world, s);
  } else {
    r = api.ncclGroupStart();
    for (int w = 0; w < t->world_size && r == ncclSuccess; w++) {
      mixcomm_topology_t peer;
      mixcomm_topology_for_rank(t, w, &peer);
      r = api.ncclSend((const char*)in + (size_t)peer.dp_rank * block, (size_t)count, type, w,
                       h->nccl->world, s);
      if (r == ncclSuccess)
        r = api.ncclRecv((char*)tmp + (size_t)w * block, (size_t)count, type, w, h->nccl->world,
                         s);
    }
    ncclResult_t r2 = api.ncclGroupEnd();
    if (r == ncclSuccess)
      r = r2;
  }
  if (r != ncclSuccess) {
    st = nccl_error(r, op == MIXCOMM_OP_ALLREDUCE_ALLGATHER ? "ncclAllGather" : "all-to-all");
  } else {
    mixcomm__sum_args_t a;
    a.src = tmp;
    a.dst = out;
    a.vecs = (int64_t)block / 16;
    a.tp_major = op == MIXCOMM_OP_ALLREDUCE_ALLGATHER;
    a.local_size = t->local_size;
    a.local_tp = t->local_tp_size;
    a.local_dp = t->local_dp_size;
    a.inter_tp = t->inter_tp_size;
    a.inter_dp = t->inter_dp_size;
    a.dtype = (int)h->config.dtype;
    int e = mixcomm__launch_sum_blocks(&a, s);
    if (e != cudaSuccess)
      st = mixcomm__cuda_error(e, "launching the NCCL_ONE reduction");
  }
  cudaError_t e = cudaFreeAsync(tmp, s);
  if (e != cudaSuccess && st == MIXCOMM_SUCCESS)
    st = mixcomm__cuda_error((int)e, "freeing the NCCL_ONE temporary");
  return st;
}

mixcomm_status_t mixcomm__nccl_run(mixcomm_handler_t* h, mixcomm_op_t op, mixcomm_mode_t mode,
                                   const void* in, void* out, int64_t count, cudaStream_t s) {
  if (h->nccl == NULL)
    return mixcomm__error(MIXCOMM_ERR_INTERNAL, "NCCL mode without NCCL communicators");
  const ncclDataType_t type = nccl_type(h->config.dtype);
  const size_t esize = mixcomm_dtype_size(h->config.dtype);
  const mixcomm_topology_t* t = &h->topo;
  switch (op) {
    case MIXCOMM_OP_ALLREDUCE:
      NCCL_CHECK(api.ncclAllReduce(in, out, (size_t)count, type, ncclSum, h->nccl->world, s),
                 "ncclAllReduce");
      return MIXCOMM_SUCCESS;
    case MIXCOMM_OP_ALLGATHER:
      NCCL_CHECK(api.ncclAllGather(in, out, (size_t)count, type, h->nccl->world, s),
                 "ncclAllGather");
      return MIXCOMM_SUCCESS;
    case MIXCOMM_OP_REDUCESCATTER:
      NCCL_CHECK(api.ncclReduceScatter(in, out, (size_t)count, type, ncclSum, h->nccl->world, s),
                 "ncclReduceScatter");
      return MIXCOMM_SUCCESS;
    case MIXCOMM_OP_ALLREDUCE_ALLGATHER:
      if (mode == MIXCOMM_MODE_NCCL_ONE)
        return one_fused(h, op, in, out, count, s);
      {
        char* mine = (char*)out + (size_t)t->dp_rank * (size_t)count * esize;
        NCCL_CHECK(api.ncclAllReduce(in, mine, (size_t)count, type, ncclSum, h->nccl->tp, s),
                   "ncclAllReduce (TP group)");
        NCCL_CHECK(api.ncclAllGather(mine, out, (size_t)count, type, h->nccl->dp, s),
                   "ncclAllGather (DP group)");
      }
      return MIXCOMM_SUCCESS;
    case MIXCOMM_OP_REDUCESCATTER_ALLREDUCE:
      if (mode == MIXCOMM_MODE_NCCL_ONE)
        return one_fused(h, op, in, out, count, s);
      NCCL_CHECK(api.ncclReduceScatter(in, out, (size_t)count, type, ncclSum, h->nccl->dp, s),
                 "ncclReduceScatter (DP group)");
      NCCL_CHECK(api.ncclAllReduce(out, out, (size_t)count, type, ncclSum, h->nccl->tp, s),
                 "ncclAllReduce (TP group)");
      return MIXCOMM_SUCCESS;
    default:
      return mixcomm__error(MIXCOMM_ERR_INTERNAL, "NCCL run: op %d", (int)op);
  }
}
