/* SPDX-License-Identifier: Apache-2.0
 * Multi-node fused kernel, FUSED_OPT_WAITS_UC: one exchange across nodes (NVSHMEM) then one
 * inside the node (VMM), for all five operations. Rank (n, l) is local rank l of node n; it only
 * talks across nodes with the same local rank l of the other nodes (PE = n * L + l).
 *
 * Round 1, across nodes. Rank (n, l) sends to (n', l) the input blocks node n' needs:
 *   AR, AG, AR+AG: its whole input (K = 1 block);
 *   RS:            the blocks of the ranks of node n' (K = L blocks, n' * L + k);
 *   RS+AR:         the blocks of the DP ranks of node n' (K = Ld blocks, k + idp(n') * Ld).
 * It first copies them into its own symmetric staging rows [n' * K + k] (a put's source must be
 * symmetric memory for network transports), then puts them with one put-with-signal per node
 * into the receiver's rows [n * K + k]. The signal word [slot][cta][0][n] of the receiver is SET
 * to a value unique to (call, step) plus a hash of (op, mode, dtype, size): never reset, so an
 * old value can never be taken for a new one, and a different hash is a MISMATCH.
 * The receiver then pre-reduces, in node order, what can be summed over nodes, into "virtual
 * blocks" V:
 *   AR:    V[0] = sum over all nodes;              AG:    V[n] = input of node n (no sum);
 *   AR+AG: V[i] = sum over the nodes of inter-DP group i;
 *   RS:    V[k] = sum over nodes of block (my node * L + k);
 *   RS+AR: V[k] = sum over nodes of block (k + my idp * Ld).
 * Round 2, inside the node, one-shot exactly as in intranode.cu (poison convention, tags):
 * rank l writes the V blocks local rank l' needs into l''s rows [l * nv + j] (itself included):
 *   AR: V[0] to all; AG: all I blocks to all; AR+AG: all Id blocks to all;
 *   RS: V[l'] to l'; RS+AR: V[ldp(l')] to l'.
 * and every rank sums, per output block, the rows of the contributing local ranks in rank order:
 *   AR, RS, RS+AR: one output, sum over l;   AG: block n * L + l = row [l * I + n];
 *   AR+AG: block ldp + i * Ld = sum over the local ranks l of DP group ldp of row [l * Id + i].
 * Every rank of a TP group sums identical values in identical order: identical bits.
 *
 * Reuse. Symmetric rows and signals of slot s % 3 are written at step s only by nodes that
 * finished step s - 1, which needed this rank's step s - 1 data, sent after it consumed step
 * s - 2; a put's source (staging) of step s is rewritten at step s + 3 only after the peer's
 * step s + 1 data arrived, which the peer sent after receiving step s. Node workspace rows follow
 * the fence + barrier rule of intranode.cu. All waits are bounded (Waiter).
 */
#include <nvshmem.h>
#include <nvshmemx.h>

#include "kernels/device_common.cuh"

namespace mixcomm {
namespace {

constexpr uint64_t kEpochMask = (1ull << 40) - 1;
constexpr int kSignalRow = -2; /* error records: the mismatch was in a cross-node signal */

/* Bit 39 is always set, so no epoch equals the zeroed initial signal memory. */
__device__ __forceinline__ uint64_t epoch_of(uint32_t seq, int step) {
  return (1ull << 39) | ((uint64_t)(seq & 0x7FFFFFu) << 16) | ((uint32_t)step & 0xFFFFu);
}

__device__ __forceinline__ uint64_t call_hash(const mixcomm__kargs_t& a) {
  uint64_t h = 0xcbf29ce484222325ull;
  const uint64_t parts[4] = {(uint64_t)a.op, (uint64_t)a.mode, (uint64_t)a.dtype, (uint64_t)a.vecs};
#pragma unroll
  for (int i = 0; i < 4; i++) h = (h ^ parts[i]) * 0x100000001b3ull;
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
  return true;
}

/* Input block the k-th of K blocks rank (n, l) sends to node `dst` starts at. */
__device__ __forceinline__ int64_t inter_block(const mixcomm__kargs_t& a, int k, int dst) {
  if (a.op == MIXCOMM_OP_REDUCESCATTER)
    return (int64_t)dst * a.local_size + k;
  if (a.op == MIXCOMM_OP_REDUCESCATTER_ALLREDUCE)
    return k + (int64_t)(dst / a.inter_tp) * a.local_dp;
  return 0;
}

template <typename T>
__global__ void __launch_bounds__(MIXCOMM_KERNEL_MAX_THREADS)
    waits_kernel(const __grid_constant__ mixcomm__kargs_t a) {
  if (!claim_cta(a))
    return;
  const uint32_t ring = a.control->cta[blockIdx.x].ring;
  const uint32_t seq = a.control->cta[blockIdx.x].seq;
  const int L = a.local_size, me = a.local_rank, Lt = a.local_tp, Ld = a.local_dp;
  const int I = a.inter_size, node = a.inter_rank, It = a.inter_tp, Id = a.inter_dp;
  const int op = a.op;
  const bool gather = is_gather(op), scatter = is_scatter(op);
  const int K = op == MIXCOMM_OP_REDUCESCATTER ? L : op == MIXCOMM_OP_REDUCESCATTER_ALLREDUCE ? Ld : 1;
  /* Virtual blocks a rank computes (nv) and sends to each local rank (nsend). */
  const int nv = op == MIXCOMM_OP_ALLGATHER ? I
                 : op == MIXCOMM_OP_ALLREDUCE_ALLGATHER ? Id
                 : op == MIXCOMM_OP_REDUCESCATTER ? L
                 : op == MIXCOMM_OP_REDUCESCATTER_ALLREDUCE ? Ld
                                                             : 1;
  const int nsend = gather ? nv : 1;
  const int t = threadIdx.x;
  const int64_t begin = (int64_t)blockIdx.x * a.span;
  const int64_t end = begin + a.span < a.vecs ? begin + a.span : a.vecs;
  const uint4* in = static_cast<const uint4*>(a.x_in);
  uint4* out = static_cast<uint4*>(a.x_out);
  const uint64_t hash = call_hash(a) << 40;
  Waiter w(a);
  bool ok = true;

  for (int s = 0; s < a.steps; s++) {
    w.step = s;
    const uint32_t slot = (ring + (uint32_t)s) % kRing;
    const int64_t step_base = begin + (int64_t)s * a.block;
    const int64_t idx = step_base + t;
    const bool valid = idx < end;
    const int64_t nvalid = end - step_base < a.block ? end - step_base : a.block;
    const uint64_t sig = hash | epoch_of(seq, s);
    char* ns = ns_share(a, slot);
    const int staging = I * K; /* first staging row */

    /* The block-wide NVSHMEM put needs every thread: decide together whether to go on. */
    ok = __syncthreads_and(ok);
    /* Round 1: stage and put the blocks each other node needs. */
    if (ok && valid) {
      for (int n = 0; n < I; n++) {
        if (n == node)
          continue;
        for (int k = 0; k < K; k++)
          ns_row(a, ns, staging + n * K + k)[t] = load_input(in + inter_block(a, k, n) * a.vecs + idx);
      }
    }
    __syncthreads();
    if (ok && nvalid > 0) {
      for (int n = 0; n < I; n++) {
        if (n == node)
          continue;
        const size_t bytes = ((size_t)(K - 1) * a.ns_row_vecs + (size_t)nvalid) * 16;
        nvshmemx_putmem_signal_nbi_block(ns_row(a, ns, node * K), ns_row(a, ns, staging + n * K),
                                         bytes, signal_at(a, slot, 0, node), sig,
                                         NVSHMEM_SIGNAL_SET, n * L + me);
      }
    }
    if (ok && nvalid > 0 && t < I && t != node)
      ok = wait_signal(w, a, signal_at(a, slot, 0, t), sig, t);
    __syncthreads();

    /* Pre-reduce across nodes and send the virtual blocks inside the node. */
    const uint4 tag = make_tag(a, seq, s, 0);
    char* mine = L > 1 ? slot_share(a, me, slot) : nullptr;
    if (ok && L > 1 && t < L)
      store_volatile(tag_at(slot_share(a, t, slot), me), tag);
    for (int j = 0; j < nv && ok && valid; j++) {
      Acc<T> acc;
      int terms = 0, last_n = node, last_k = 0;
      for (int n = 0; n < I; n++) {
        int k;
        if (op == MIXCOMM_OP_ALLGATHER) {
          if (n != j)
            continue;
          k = 0;
        } else if (op == MIXCOMM_OP_ALLREDUCE_ALLGATHER) {
          if (n / It != j)
            continue;
          k = 0;
        } else if (op == MIXCOMM_OP_REDUCESCATTER) {
          k = j;
        } else if (op == MIXCOMM_OP_REDUCESCATTER_ALLREDUCE) {
          k = j;
        } else {
          k = 0;
        }
        const uint4 x = n == node ? load_input(in + inter_block(a, k, node) * a.vecs + idx)
                                  : load_volatile(ns_row(a, ns, n * K + k) + t);
        last_n = n;
        last_k = k;
        if (terms++ == 0)
          acc.set(x);
        else
          acc.add(x);
      }
      /* A single term is copied bit for bit (AG); sums are rounded once. */
      uint4 v = acc.pack();
      if (terms == 1)
        v = last_n == node ? load_input(in + inter_block(a, last_k, node) * a.vecs + idx)
                           : load_volatile(ns_row(a, ns, last_n * K + last_k) + t);
      v = canon(v);
      if (L == 1) {
        /* One GPU per node: the virtual blocks are the output. */
        const int64_t ob = gather ? (op == MIXCOMM_OP_ALLGATHER ? j : j * Ld) : 0;
        if (gather || j == 0)
          store_output(out + ob * a.vecs + idx, v);
        continue;
      }
      for (int r = 0; r < L; r++) {
        const int wants = !scatter ? 1 : op == MIXCOMM_OP_REDUCESCATTER ? (r == j) : (r / Lt == j);
        if (wants)
          store_volatile(row_at(a, slot_share(a, r, slot), me * nsend + (gather ? j : 0)) + t, v);
      }
    }

    /* Round 2: sum or copy the local ranks' rows into the output. */
    if (L > 1) {
      if (ok && t < L)
        ok = w.check_tag(mine, t, t, tag);
      if (ok && valid) {
        if (op == MIXCOMM_OP_ALLGATHER) {
          for (int l = 0; l < L && ok; l++)
            for (int n = 0; n < I && ok; n++) {
              uint4 x;
              ok = w.poll(row_at(a, mine, l * I + n) + t, x, l, l);
              store_output(out + ((int64_t)n * L + l) * a.vecs + idx, x);
            }
        } else if (op == MIXCOMM_OP_ALLREDUCE_ALLGATHER) {
          for (int ldp = 0; ldp < Ld && ok; ldp++)
            for (int i = 0; i < Id && ok; i++) {
              Acc<T> acc;
              for (int lt = 0; lt < Lt && ok; lt++) {
                const int l = lt + ldp * Lt;
                uint4 x;
                ok = w.poll(row_at(a, mine, l * Id + i) + t, x, l, l);
                if (lt == 0)
                  acc.set(x);
                else
                  acc.add(x);
              }
              store_output(out + ((int64_t)ldp + (int64_t)i * Ld) * a.vecs + idx, acc.pack());
            }
        } else {
          Acc<T> acc;
          for (int l = 0; l < L && ok; l++) {
            uint4 x;
            ok = w.poll(row_at(a, mine, l) + t, x, l, l);
            if (l == 0)
              acc.set(x);
            else
              acc.add(x);
          }
          store_output(out + idx, acc.pack());
        }
        const int rows = L * nsend;
        for (int r = 0; r < rows; r++)
          store_volatile(row_at(a, mine, r) + t, poison_vec());
      }
    }
    end_step(s, a.steps);
  }
  save_ring(a, ring, seq);
}

template <typename T>
int launch_typed(const mixcomm__kargs_t* a, cudaStream_t stream) {
  const unsigned grid = a->steps > 0 ? (unsigned)((a->vecs + a->span - 1) / a->span) : 0u;
  if (grid == 0)
    return cudaSuccess;
  if (a->mode != MIXCOMM_MODE_FUSED_OPT_WAITS_UC)
    return (int)cudaErrorNotSupported;
  waits_kernel<T><<<grid, (unsigned)a->block, 0, stream>>>(*a);
  return (int)cudaGetLastError();
}

template <typename T>
int occupancy(int block, int* blocks) {
  return (int)cudaOccupancyMaxActiveBlocksPerMultiprocessor(blocks, waits_kernel<T>, block, 0);
}

}  // namespace
}  // namespace mixcomm

extern "C" int mixcomm__nvshmem_launch(const mixcomm__kargs_t* a, cudaStream_t stream) {
  switch (a->dtype) {
    case MIXCOMM_FLOAT16:
      return mixcomm::launch_typed<__half>(a, stream);
    case MIXCOMM_BFLOAT16:
      return mixcomm::launch_typed<__nv_bfloat16>(a, stream);
    case MIXCOMM_FLOAT32:
      return mixcomm::launch_typed<float>(a, stream);
    default:
      return (int)cudaErrorInvalidValue;
  }
}

extern "C" int mixcomm__nvshmem_blocks_per_sm(int dtype, int block, int* blocks) {
  switch (dtype) {
    case MIXCOMM_FLOAT16:
      return mixcomm::occupancy<__half>(block, blocks);
    case MIXCOMM_BFLOAT16:
      return mixcomm::occupancy<__nv_bfloat16>(block, blocks);
    default:
      return mixcomm::occupancy<float>(block, blocks);
  }
}
