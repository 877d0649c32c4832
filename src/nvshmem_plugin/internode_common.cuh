/* SPDX-License-Identifier: Apache-2.0
 * The pieces every cross-node kernel shares (internode.cu describes the protocol): signal
 * epochs and hashes, the symmetric staging rows, bounded waits for a node's signal, block-wide
 * puts with a signal, sums of local rows, and the input block a rank sends to a node. Included
 * by the kernel headers (waits_kernel.cuh, bytes_kernels.cuh), all of them by internode.cu only:
 * one translation unit holds every cross-node kernel.
 */
#ifndef MIXCOMM_NVSHMEM_PLUGIN_INTERNODE_COMMON_CUH_
#define MIXCOMM_NVSHMEM_PLUGIN_INTERNODE_COMMON_CUH_

#include <nvshmem.h>
#include <nvshmemx.h>

#include "kernels/epilogue.cuh"
#include "kernels/uneven.cuh"

namespace mixcomm {
namespace {

/* The node rounds give each local rank one thread (t < L), and a block is at least one warp. */
static_assert(MIXCOMM_MAX_LOCAL_SIZE <= 32, "node rounds need a thread per local rank");

constexpr uint64_t kEpochMask = (1ull << 40) - 1;
constexpr int kSignalRow = -2; /* error records: the mismatch was in a cross-node signal */

/* Bit 39 is always set, so no epoch equals the zeroed initial signal memory. */
__device__ __forceinline__ uint64_t epoch_of(uint32_t seq, int step) {
  return (1ull << 39) | ((uint64_t)(seq & 0x7FFFFFu) << 16) | ((uint32_t)step & 0xFFFFu);
}

__device__ __forceinline__ uint64_t call_hash(const mixcomm__kargs_t& a) {
  uint64_t h = 0xcbf29ce484222325ull;
  const uint64_t parts[5] = {(uint64_t)a.op, (uint64_t)a.mode, (uint64_t)a.dtype, (uint64_t)a.vecs,
                             (uint64_t)row_shape_hash(a)};
#pragma unroll
  for (int i = 0; i < 5; i++) h = (h ^ parts[i]) * 0x100000001b3ull;
  return (h ^ (h >> 24)) & 0xFFFFFFull;
}

__device__ __forceinline__ char* ns_share(const mixcomm__kargs_t& a, uint32_t slot) {
  return a.ns_base + ((uint64_t)slot * a.plan_grid + blockIdx.x) * a.ns_slot_bytes;
}

__device__ __forceinline__ uint4* ns_row(const mixcomm__kargs_t& a, char* share, int row) {
  return reinterpret_cast<uint4*>(share) + (uint64_t)row * a.ns_row_vecs;
}

__device__ __forceinline__ uint64_t* signal_at(const mixcomm__kargs_t& a, uint32_t slot, int round,
                                               int node) {
  return a.ns_signals + (((uint64_t)slot * a.plan_grid + blockIdx.x) * 2 + round) * a.inter_size +
         node;
}

__device__ __forceinline__ uint64_t load_acquire(const uint64_t* p) {
  uint64_t v;
  asm volatile("ld.acquire.sys.global.u64 %0, [%1];" : "=l"(v) : "l"(p) : "memory");
  return v;
}

/* Wait until node `node` signalled `expected` (epoch and hash) in `word`. */
__device__ bool wait_signal(Waiter& w, const mixcomm__kargs_t& a, const uint64_t* word,
                            uint64_t expected, int node) {
  const int peer = (node - a.inter_rank) * a.local_size + a.local_rank; /* from world_rank_base */
  w.start_wait(); /* the timeout bounds this wait from its start */
  uint64_t v = load_acquire(word);
  int spins = 0;
  while ((v & kEpochMask) != (expected & kEpochMask)) {
    if (++spins == kSpinsPerCheck) {
      spins = 0;
      if (!w.keep_waiting(peer, -1))
        return false;
    }
    v = load_acquire(word);
  }
  if (v != expected) {
    const uint4 want = make_uint4((uint32_t)expected, (uint32_t)(expected >> 32), 0, 0);
    const uint4 got = make_uint4((uint32_t)v, (uint32_t)(v >> 32), 0, 0);
    record_error(a, MIXCOMM_ERR_MISMATCH, peer, w.step, kSignalRow, &want, &got);
    return false;
  }
  /* The poll above reads the word directly, so NVSHMEM never saw the wait. A transport whose
   * data may become visible after its signal (IBRC without GDRCopy: the proxy thread writes
   * both) needs NVSHMEM's consistency step once a signal is seen; the test API runs it when the
   * test succeeds (nvshmem_signal_wait_until does not, in NVSHMEM 3.4). The word holds v until
   * this rank has finished the step, so the test succeeds at once. */
  nvshmem_uint64_test(const_cast<uint64_t*>(word), NVSHMEM_CMP_EQ, v);
  return true;
}

/* Wait, one thread per source node and as many nodes per thread as it takes (any number of
 * nodes, any block size), for the signal of round `round` of every node n != me for which
 * want(n); then agree across the block. Every thread must call it. */
template <typename Want>
__device__ __forceinline__ bool wait_nodes(Waiter& w, const mixcomm__kargs_t& a, uint32_t slot,
                                           int round, uint64_t expected, Want want, bool ok) {
  for (int n = threadIdx.x; ok && n < a.inter_size; n += blockDim.x)
    if (n != a.inter_rank && want(n))
      ok = wait_signal(w, a, signal_at(a, slot, round, n), expected, n);
  return __syncthreads_and(ok);
}

/* Block-wide put of `bytes` bytes with a signal; with nothing to send, the signal alone goes,
 * so every step still orders the two ranks (the ring-reuse argument needs an exchange in
 * every step). Every thread of the block must call it. With a.count_puts (a debug switch,
 * handler/put_count.c) thread 0 also adds the put to the handler's counters, which tests
 * compare with the host's model of the call (core/put_model.c). */
__device__ __forceinline__ void put_signal(const mixcomm__kargs_t& a, void* dst, const void* src,
                                           size_t bytes, uint64_t* sig, uint64_t value, int pe) {
  if (a.count_puts && threadIdx.x == 0) {
    atomicAdd(&a.control->put_bytes, (unsigned long long)bytes);
    atomicAdd(&a.control->puts, 1ull);
  }
  if (bytes > 0)
    nvshmemx_putmem_signal_nbi_block(dst, src, bytes, sig, value, NVSHMEM_SIGNAL_SET, pe);
  else if (threadIdx.x == 0)
    nvshmemx_signal_op(sig, value, NVSHMEM_SIGNAL_SET, pe);
}

/* Sum, in sender order, vector t of rows [l * stride + offset] for senders l in [lo, hi), and
 * re-poison each row once read (round 1 of the two-shot kernels). */
template <typename T>
__device__ __forceinline__ bool consume_sum(Waiter& w, const mixcomm__kargs_t& a, char* share,
                                            int lo, int hi, int stride, int offset, int t,
                                            Acc<T>& acc) {
  bool ok = true;
  for (int l = lo; l < hi && ok; l++) {
    uint4* row = row_at(a, share, l * stride + offset) + t;
    uint4 x;
    ok = w.poll(row, x, l, l);
    if (l == lo)
      acc.set(x);
    else
      acc.add(x);
    store_volatile(row, poison_vec());
  }
  return ok;
}

/* Input block the k-th of K blocks rank (n, l) sends to node `dst` starts at. */
__device__ __forceinline__ int64_t inter_block(const mixcomm__kargs_t& a, int k, int dst) {
  if (a.op == MIXCOMM_OP_REDUCESCATTER)
    return (int64_t)dst * a.local_size + k;
  if (a.op == MIXCOMM_OP_REDUCESCATTER_ALLREDUCE)
    return k + (int64_t)(dst / a.inter_tp) * a.local_dp;
  return 0;
}

/* The hash in the signal value: of the call, and for an uneven call also of its list (the
 * table's hash, uneven.cuh), so that a node with another list, maximum or row length is a
 * MISMATCH. The plain instantiation keeps the call's hash alone. */
__device__ __forceinline__ uint64_t signal_hash(const mixcomm__kargs_t& a) {
  return call_hash(a) << 40;
}

template <bool kUneven>
__device__ __forceinline__ uint64_t signal_hash(const mixcomm__kargs_t& a,
                                                const Blocks<kUneven>& B) {
  if constexpr (kUneven)
    return (uint64_t)(hash_word((uint32_t)call_hash(a), (uint64_t)B.t->hash) & 0xFFFFFFu) << 40;
  else
    return signal_hash(a);
}

}  // namespace
}  // namespace mixcomm

#endif
