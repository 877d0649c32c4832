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
#include "core/topology.h"
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

/* ---- uneven rows per DP rank (mixcomm_run_v with an NCCL mode) ---------------------------- */

/* Bytes of DP block k, and bytes before it (blocks packed in dp order). */
static size_t v_bytes(const mixcomm__uneven_t* u, int k) {
  return (size_t)u->rows[k] * (size_t)u->row_vecs * 16u;
}
static size_t v_offset(const mixcomm__uneven_t* u, int k) {
  size_t off = 0;
  for (int i = 0; i < k; i++) off += v_bytes(u, i);
  return off;
}

/* What member p of a communicator of n sends this rank and receives from it. */
typedef struct v_peer {
  const void* send;
  size_t send_bytes;
  void* recv;
  size_t recv_bytes;
} v_peer_t;

/* One grouped exchange: ncclSend / ncclRecv with every other member (nothing for an empty piece;
 * both sides know every size), the own piece copied on the stream. */
static mixcomm_status_t v_exchange(mixcomm_handler_t* h, ncclComm_t comm, int n, int me,
                                   const v_peer_t* p, cudaStream_t s, const char* what) {
  const ncclDataType_t type = nccl_type(h->config.dtype);
  const size_t esize = mixcomm_dtype_size(h->config.dtype);
  if (p[me].send_bytes > 0 && p[me].send != p[me].recv)
    MIXCOMM_CUDA_CHECK(cudaMemcpyAsync(p[me].recv, p[me].send, p[me].send_bytes,
                                       cudaMemcpyDeviceToDevice, s),
                       "copying the own block (uneven NCCL exchange)");
  ncclResult_t r = api.ncclGroupStart();
  for (int w = 0; w < n && r == ncclSuccess; w++) {
    if (w == me)
      continue;
    if (p[w].send_bytes > 0)
      r = api.ncclSend(p[w].send, p[w].send_bytes / esize, type, w, comm, s);
    if (r == ncclSuccess && p[w].recv_bytes > 0)
      r = api.ncclRecv(p[w].recv, p[w].recv_bytes / esize, type, w, comm, s);
  }
  const ncclResult_t r2 = api.ncclGroupEnd();
  if (r == ncclSuccess)
    r = r2;
  if (r != ncclSuccess)
    return nccl_error(r, what);
  return MIXCOMM_SUCCESS;
}

/* dst = sum of `terms` consecutive blocks of vecs vectors at src, in order (sum_blocks.cu). */
static mixcomm_status_t v_sum(mixcomm_handler_t* h, const void* src, void* dst, size_t bytes,
                              int terms, cudaStream_t s) {
  if (bytes == 0)
    return MIXCOMM_SUCCESS;
  mixcomm__sum_args_t a;
  memset(&a, 0, sizeof a);
  a.src = src;
  a.dst = dst;
  a.vecs = (int64_t)(bytes / 16);
  a.tp_major = 0;
  a.local_size = terms;
  a.local_tp = terms;
  a.local_dp = 1;
  a.inter_tp = 1;
  a.inter_dp = 1;
  a.dtype = (int)h->config.dtype;
  const int e = mixcomm__launch_sum_blocks(&a, s);
  if (e != cudaSuccess)
    return mixcomm__cuda_error(e, "launching the reduction after the uneven NCCL exchange");
  return MIXCOMM_SUCCESS;
}

static mixcomm_status_t v_alloc(void** p, size_t bytes, cudaStream_t s) {
  *p = NULL;
  if (bytes == 0)
    return MIXCOMM_SUCCESS;
  MIXCOMM_CUDA_CHECK(cudaMallocAsync(p, bytes, s), "allocating the uneven NCCL temporary");
  return MIXCOMM_SUCCESS;
}

static void v_free(void* p, cudaStream_t s, mixcomm_status_t* st) {
  if (p == NULL)
    return;
  const cudaError_t e = cudaFreeAsync(p, s);
  if (e != cudaSuccess && *st == MIXCOMM_SUCCESS)
    *st = mixcomm__cuda_error((int)e, "freeing the uneven NCCL temporary");
}

/* Gather ops. ALLGATHER (tp = 1) and AR+AG in NCCL_TP_DP (after an all-reduce over TP into this
 * rank's block) gather-v the blocks into x_out; AR+AG in NCCL_ONE gathers every rank's input
 * into a temporary laid out [dp block d][tp rank t] and sums each block over t in order. */
static mixcomm_status_t v_gather(mixcomm_handler_t* h, mixcomm_op_t op, mixcomm_mode_t mode,
                                 const void* in, void* out, const mixcomm__uneven_t* u,
                                 v_peer_t* p, cudaStream_t s) {
  const mixcomm_topology_t* t = &h->topo;
  const int me = t->dp_rank;
  char* o = (char*)out;
  if (op == MIXCOMM_OP_ALLGATHER || mode == MIXCOMM_MODE_NCCL_TP_DP) {
    const void* mine = in;
    ncclComm_t comm = h->nccl->world;
    if (op == MIXCOMM_OP_ALLREDUCE_ALLGATHER) {
      char* own = o + v_offset(u, me);
      if (v_bytes(u, me) > 0)
        NCCL_CHECK(api.ncclAllReduce(in, own, v_bytes(u, me) / mixcomm_dtype_size(h->config.dtype),
                                     nccl_type(h->config.dtype), ncclSum, h->nccl->tp, s),
                   "ncclAllReduce (TP group, uneven rows)");
      mine = own;
      comm = h->nccl->dp;
    }
    for (int d = 0; d < t->dp_size; d++) {
      p[d].send = mine;
      p[d].send_bytes = v_bytes(u, me);
      p[d].recv = o + v_offset(u, d);
      p[d].recv_bytes = v_bytes(u, d);
    }
    return v_exchange(h, comm, t->dp_size, me, p, s, "uneven all-gather (grouped send/recv)");
  }
  /* AR+AG, NCCL_ONE. */
  const int tp = t->tp_size;
  void* tmp = NULL;
  MIXCOMM_CHECK(v_alloc(&tmp, v_offset(u, t->dp_size) * (size_t)tp, s));
  char* base = (char*)tmp;
  for (int w = 0; w < t->world_size; w++) {
    mixcomm_topology_t q;
    mixcomm_topology_for_rank(t, w, &q);
    p[w].send = in;
    p[w].send_bytes = v_bytes(u, me);
    p[w].recv = base + v_offset(u, q.dp_rank) * (size_t)tp + (size_t)q.tp_rank * v_bytes(u, q.dp_rank);
    p[w].recv_bytes = v_bytes(u, q.dp_rank);
  }
  mixcomm_status_t st = v_exchange(h, h->nccl->world, t->world_size, t->world_rank, p, s,
                                    "uneven all-gather over the world (grouped send/recv)");
  for (int d = 0; d < t->dp_size && st == MIXCOMM_SUCCESS; d++)
    st = v_sum(h, base + v_offset(u, d) * (size_t)tp, o + v_offset(u, d), v_bytes(u, d), tp, s);
  v_free(tmp, s, &st);
  return st;
}

/* Scatter ops: every member of the exchange sends this rank its input block dp_rank; the pieces
 * land in a temporary (one per member, in member order) and are summed in that order.
 * REDUCESCATTER (tp = 1) and RS+AR in NCCL_ONE exchange over the world; RS+AR in NCCL_TP_DP over
 * the DP group, then all-reduces the result over TP. */
static mixcomm_status_t v_scatter(mixcomm_handler_t* h, mixcomm_op_t op, mixcomm_mode_t mode,
                                  const void* in, void* out, const mixcomm__uneven_t* u,
                                  v_peer_t* p, cudaStream_t s) {
  const mixcomm_topology_t* t = &h->topo;
  const int over_dp = op == MIXCOMM_OP_REDUCESCATTER_ALLREDUCE && mode == MIXCOMM_MODE_NCCL_TP_DP;
  const int n = over_dp ? t->dp_size : t->world_size;
  const int me = over_dp ? t->dp_rank : t->world_rank;
  const size_t mine = v_bytes(u, t->dp_rank);
  void* tmp = NULL;
  MIXCOMM_CHECK(v_alloc(&tmp, mine * (size_t)n, s));
  for (int w = 0; w < n; w++) {
    int dp = w;
    if (!over_dp) {
      mixcomm_topology_t q;
      mixcomm_topology_for_rank(t, w, &q);
      dp = q.dp_rank;
    }
    p[w].send = (const char*)in + v_offset(u, dp);
    p[w].send_bytes = v_bytes(u, dp);
    p[w].recv = (char*)tmp + (size_t)w * mine;
    p[w].recv_bytes = mine;
  }
  mixcomm_status_t st = v_exchange(h, over_dp ? h->nccl->dp : h->nccl->world, n, me, p, s,
                                    "uneven reduce-scatter exchange (grouped send/recv)");
  if (st == MIXCOMM_SUCCESS)
    st = v_sum(h, tmp, out, mine, n, s);
  if (st == MIXCOMM_SUCCESS && over_dp && mine > 0) {
    const ncclResult_t r =
        api.ncclAllReduce(out, out, mine / mixcomm_dtype_size(h->config.dtype),
                          nccl_type(h->config.dtype), ncclSum, h->nccl->tp, s);
    if (r != ncclSuccess)
      st = nccl_error(r, "ncclAllReduce (TP group, uneven rows)");
  }
  v_free(tmp, s, &st);
  return st;
}

mixcomm_status_t mixcomm__nccl_run_v(mixcomm_handler_t* h, mixcomm_op_t op, mixcomm_mode_t mode,
                                     const void* in, void* out, const mixcomm__uneven_t* u,
                                     cudaStream_t s) {
  if (h->nccl == NULL)
    return mixcomm__error(MIXCOMM_ERR_INTERNAL, "NCCL mode without NCCL communicators");
  if (u == NULL || u->rows_dev != NULL || u->blocks != h->topo.dp_size)
    return mixcomm__error(MIXCOMM_ERR_INTERNAL, "uneven NCCL run without host counts");
  v_peer_t* p = calloc((size_t)h->topo.world_size, sizeof *p);
  if (p == NULL)
    return mixcomm__error(MIXCOMM_ERR_OUT_OF_MEMORY, "allocating the uneven NCCL peer table");
  mixcomm_status_t st;
  if (mixcomm__op_is_gather(op))
    st = v_gather(h, op, mode, in, out, u, p, s);
  else if (mixcomm__op_is_scatter(op))
    st = v_scatter(h, op, mode, in, out, u, p, s);
  else
    st = mixcomm__error(MIXCOMM_ERR_INTERNAL, "uneven NCCL run of %s", mixcomm_op_name(op));
  free(p);
  return st;
}
