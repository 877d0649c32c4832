/* SPDX-License-Identifier: Apache-2.0
 * Multi-node fused kernel, FUSED_OPT_WAITS_UC: one exchange across nodes (NVSHMEM) then one
 * inside the node (VMM), for all five operations. Rank (n, l) is local rank l of node n; it only
 * talks across nodes with the same local rank l of the other nodes (PE = n * L + l).
 *
 * Round 1, across nodes. Rank (n, l) sends to (n', l) the input blocks node n' needs:
 *   AR, AG, AR+AG: its whole input (K = 1 block);
 *   RS:            the blocks of the ranks of node n' (K = L blocks, n' * L + k);
 *   RS+AR:         the blocks of the DP ranks of node n' (K = Ld blocks, k + idp(n') * Ld).
 * It first copies them into its own symmetric staging area for n' (the K rows from row
 * I * K + n' * K on: a put's source must be symmetric memory for network transports), packed at
 * the step's valid length nvalid (block k, vector t at k * nvalid + t), then puts the K * nvalid
 * vectors with one put-with-signal per node into the receiver's area for n (the K rows from row
 * n * K on, packed the same way): K * nvalid * 16 bytes, exactly what the receiver reads. The
 * signal word [slot][cta][0][n] of the receiver is SET to a value unique to (call, step) plus a
 * hash of (op, mode, dtype, size): never reset between calls, so an old value can never be
 * taken for a new one, and a different hash is a MISMATCH.
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
 * Bytes on the wire. Every put carries only vectors its receiver reads: here K * nvalid; in
 * BYTES1 and BYTES2 one chunk piece, cut to the vectors of the call (piece_count). Over a call
 * a rank puts (I - 1) * K * vecs * 16 bytes here; core/put_model.c derives every mode's count
 * from the geometry, and the kernels count what they put when kargs.count_puts is on (a debug
 * switch, handler/put_count.c), so tests compare the two.
 *
 * Waits across nodes. A receiver waits for every source node with one thread per node, each
 * thread taking nodes t, t + blockDim.x, ... (wait_nodes): any number of nodes whatever the
 * block size. Each local rank has one thread for itself in the node rounds (t < L), which a
 * block of at least 32 threads always has (L <= MIXCOMM_MAX_LOCAL_SIZE = 16; static_assert
 * below). After a signal is seen, one NVSHMEM test call on its word gives transports that need
 * it their consistency step (wait_signal).
 *
 * Pipelining. Every kernel here runs its steps software-pipelined (run_pipelined): produce(s)
 * starts step s up to and including its put across nodes, consume(s) finishes it; each CTA
 * runs produce(0) produce(1) consume(0) produce(2) consume(1) ... consume(S-1), so the put of
 * step s + 1 travels while step s is reduced and exchanged inside the node. (BYTES2 has a
 * third phase, relay(s), right after consume(s - 1): see bytes2_kernel.)
 *
 * Reuse. Both workspaces are rings of kRing = 4 slots; step s of a CTA (counted across calls)
 * uses slot s mod 4 of each. A fence.acq_rel.sys by every thread plus a block barrier precede
 * produce(s) for s >= 2, and a kernel boundary precedes a call's produce(0). Two facts hold in
 * every kernel, and across calls since every call is finished before the next begins:
 *   (1) whatever a rank writes for step s (node rows and tags, symmetric rows, its own staging
 *       rows, signals) comes after the fence before produce(s), which follows all its reads,
 *       waits and re-poisoning of step s - 2;
 *   (2) before that fence, the rank has received step s - 2 (or later) data from every node of
 *       its column and from every local rank: in each step every pair of nodes exchanges a
 *       signal in at least one round (a round with nothing to send still sends its signal) and
 *       every pair of local ranks exchanges data in at least one round.
 * When rank A writes a slot of rank B for step s, A holds B's data of a step s' >= s - 2,
 * which B sent, by (1), after finishing step s' - 2 >= s - 4, the slot's previous use: the
 * rows are re-poisoned (node) or read (symmetric) and B's tags and signals were consumed. By
 * (2) A also holds a step s - 2 signal of every node C, sent after C had waited for every
 * step s - 4 put addressed to it: every put of step s - 4 has landed, so its source rows
 * (staging, or in a call of another shape or packing rows at the same place) may be
 * overwritten.
 * Signal words are never reset between calls: an epoch unique to (call, step) is SET, so a
 * stale value can never satisfy a wait. The epoch comes from the CTA's call counter, so the
 * words are zeroed (0 is no epoch) whenever the counters restart: at creation and at
 * checkpoint restore (handler.c, mixcomm__protocol_reset; without it a call after a restore
 * found the word of the call of the same shape and number before it, and read that call's
 * rows). All waits are bounded (Waiter).
 *
 * Uneven rows per DP rank (waits_kernel only, kUneven; kernels/uneven.cuh). DP rank
 * d = ldp + idp * Ld; DP block d has len[d] vectors at off[d] (packed in dp order) and the
 * geometry is cut for the largest, so every rank walks the same steps. Each vector above
 * belongs to one DP block: a gather input is the sender's own block, a scatter input block is
 * inter_block(); V[j] sums only terms of one DP block (vblock), and row [l * nsend + j] of round
 * 2 holds one (row_block); the outputs are DP blocks (gather) or the rank's own (scatter).
 * Every rank knows every length, so a vector past its block's length is never loaded, stored,
 * polled or re-poisoned, by sender or receiver, and travels only where a packing needs it: a
 * gather op's put carries the sender's own rows of the step (its block is the only one it
 * sends); a scatter op's keeps the step's packing (K * nvalid of the largest block), the
 * missing vectors staged as zeros (stored, never loaded) and not read by the receiver, so a put
 * never reads memory nobody wrote. Signals and tags still go out every step (one CTA
 * of one step when every block is empty), so the reuse argument above is unchanged. The tags
 * are uneven ones (call_tag) and the signal hash mixes in the list's hash, so a rank or node
 * with another list, maximum or row length reports a MISMATCH. BYTES1 and BYTES2 take no
 * uneven calls (the host refuses them).
 */
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
template <bool kUneven>
__device__ __forceinline__ uint64_t signal_hash(const mixcomm__kargs_t& a,
                                                const Blocks<kUneven>& B) {
  uint64_t h = call_hash(a);
  if constexpr (kUneven)
    h = (uint64_t)(hash_word((uint32_t)h, (uint64_t)B.t->hash) & 0xFFFFFFu);
  return h << 40;
}

template <typename T, bool kEpilogue, bool kUneven>
__global__ void __launch_bounds__(MIXCOMM_KERNEL_MAX_THREADS)
    waits_kernel(const __grid_constant__ mixcomm__kargs_t a) {
  CallState call;
  if (!begin_call(a, call))
    return;
  const Blocks<kUneven> B = make_blocks<kUneven>(a);
  const uint32_t ring = call.ring, seq = call.seq;
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
  const int staging = I * K; /* first staging row */
  const int t = threadIdx.x;
  const CtaRange cta = cta_range(a);
  const int64_t begin = cta.begin, end = cta.end;
  const uint4* in = static_cast<const uint4*>(a.x_in);
  const uint64_t hash = signal_hash(a, B);
  /* DP blocks, which only the uneven instantiation asks about (B.has is true otherwise). DP
   * rank = local dp + inter dp * Ld. own_dp: this rank's (its gather input; its scatter
   * output). vblock(j): virtual block j as this rank computes it. row_block(l, j): what local
   * rank l wrote into this rank's row [l * nsend + j] in round 2. in_block(k, n): the k-th block
   * this rank sends to node n. */
  const int md = me / Lt, my_idp = node / It;
  const int own_dp = md + my_idp * Ld;
  auto vblock = [&](int j) {
    if (op == MIXCOMM_OP_ALLGATHER)
      return j * L + me;
    if (op == MIXCOMM_OP_ALLREDUCE_ALLGATHER)
      return md + j * Ld;
    if (op == MIXCOMM_OP_REDUCESCATTER)
      return node * L + j;
    return j + my_idp * Ld; /* RS+AR (AR has no DP block: never uneven) */
  };
  auto row_block = [&](int l, int j) {
    if (op == MIXCOMM_OP_ALLGATHER)
      return j * L + l;
    if (op == MIXCOMM_OP_ALLREDUCE_ALLGATHER)
      return l / Lt + j * Ld;
    return own_dp;
  };
  auto in_block = [&](int k, int n) { return scatter ? (int)inter_block(a, k, n) : own_dp; };
  Waiter w(a);
  bool ok = true;
  auto finish_rows = [&] {
    if constexpr (kEpilogue)
      epilogue_rows<T>(a.epi, a.vecs, gather ? Ld * Id : 1, begin, end, ok,
                       gather ? B.offsets() : nullptr, B.lengths_from(gather ? 0 : own_dp));
  };

  /* Round 1 of step s: stage and put the blocks each other node needs. */
  auto produce = [&](int s) {
    const int64_t step_base = begin + (int64_t)s * a.block;
    const int64_t idx = step_base + t;
    const int64_t nvalid = piece_count(step_base, end, a.block);
    char* ns = ns_share(a, slot_of(ring, s));
    ok = __syncthreads_and(ok); /* the block-wide put needs every thread */
    if (!ok)
      return;
    /* The K blocks for node n go packed at the step's valid length (stride nvalid) from the
     * start of its K staging rows, so the put carries exactly what the receiver reads (uneven:
     * a vector past its block's length is staged as zeros, loading nothing, and not read). */
    if (idx < end) {
      for (int n = 0; n < I; n++) {
        if (n == node)
          continue;
        uint4* dst = ns_row(a, ns, staging + n * K);
        for (int k = 0; k < K; k++)
          dst[(int64_t)k * nvalid + t] =
              B.has(in_block(k, n), idx)
                  ? load_contribution<T, kEpilogue>(a.epi, in, B.at(inter_block(a, k, n)) + idx)
                  : make_uint4(0, 0, 0, 0);
      }
    }
    __syncthreads();
    size_t bytes = (size_t)K * (size_t)nvalid * 16;
    if constexpr (kUneven) {
      /* Gather ops send one block, this rank's own: only its rows of the step travel. */
      if (gather) {
        const int64_t own_end = *B.lengths_from(own_dp) < end ? *B.lengths_from(own_dp) : end;
        bytes = (size_t)piece_count(step_base, own_end, a.block) * 16;
      }
    }
    for (int n = 0; n < I; n++) {
      if (n == node)
        continue;
      put_signal(a, ns_row(a, ns, node * K), ns_row(a, ns, staging + n * K), bytes,
                 signal_at(a, slot_of(ring, s), 0, node), hash | epoch_of(seq, s), n * L + me);
    }
  };

  /* Step s once round 1 arrived: pre-reduce across nodes, then round 2 inside the node. */
  auto consume = [&](int s) {
    const uint32_t slot = slot_of(ring, s);
    const int64_t step_base = begin + (int64_t)s * a.block;
    const int64_t idx = step_base + t;
    const int64_t nvalid = piece_count(step_base, end, a.block); /* the packing stride */
    const bool valid = idx < end;
    char* ns = ns_share(a, slot);
    ok = wait_nodes(w, a, slot, 0, hash | epoch_of(seq, s), [](int) { return true; }, ok);

    const uint4 tag = call_tag(a, B, seq, s, 0);
    char* mine = L > 1 ? slot_share(a, me, slot) : nullptr;
    if (ok && L > 1 && t < L)
      store_volatile(tag_at(slot_share(a, t, slot), me), tag);
    for (int j = 0; j < nv && ok && valid; j++) {
      /* Uneven: every term of virtual block j belongs to DP block vblock(j); past its length
       * no node sent the vector and no local rank expects it. */
      if (!B.has(vblock(j), idx))
        continue;
      Acc<T> acc;
      int terms = 0;
      uint4 first = make_uint4(0, 0, 0, 0);
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
        } else if (op == MIXCOMM_OP_REDUCESCATTER || op == MIXCOMM_OP_REDUCESCATTER_ALLREDUCE) {
          k = j;
        } else {
          k = 0;
        }
        const uint4 x =
            n == node
                ? load_contribution<T, kEpilogue>(a.epi, in, B.at(inter_block(a, k, node)) + idx)
                : load_volatile(ns_row(a, ns, n * K) + (int64_t)k * nvalid + t);
        if (terms++ == 0) {
          first = x;
          acc.set(x);
        } else {
          acc.add(x);
        }
      }
      /* A single term is copied bit for bit (AG); sums are rounded once. */
      uint4 v = terms == 1 ? first : acc.pack();
      v = canon(v);
      if (L == 1) {
        /* One GPU per node: the virtual blocks are the output. */
        const int64_t ob = gather ? (op == MIXCOMM_OP_ALLGATHER ? j : j * Ld) : 0;
        if (gather || j == 0)
          store_result_at<T, kEpilogue>(a.epi, a.x_out, B.at(ob) + idx, ob, idx, v);
        continue;
      }
      for (int r = 0; r < L; r++) {
        const int wants = !scatter ? 1 : op == MIXCOMM_OP_REDUCESCATTER ? (r == j) : (r / Lt == j);
        if (wants)
          store_volatile(row_at(a, slot_share(a, r, slot), me * nsend + (gather ? j : 0)) + t, v);
      }
    }

    /* Round 2: sum or copy the local ranks' rows into the output (uneven: only the rows of
     * vectors that exist, which every rank knows from the lengths). */
    if (L == 1)
      return;
    if (ok && t < L)
      ok = w.check_tag(mine, t, t, tag);
    if (!ok || !valid)
      return;
    if (op == MIXCOMM_OP_ALLGATHER) {
      for (int l = 0; l < L && ok; l++)
        for (int n = 0; n < I && ok; n++) {
          const int64_t ob = (int64_t)n * L + l;
          if (!B.has((int)ob, idx))
            continue;
          uint4 x;
          ok = w.poll(row_at(a, mine, l * I + n) + t, x, l, l);
          store_result_at<T, kEpilogue>(a.epi, a.x_out, B.at(ob) + idx, ob, idx, x);
        }
    } else if (op == MIXCOMM_OP_ALLREDUCE_ALLGATHER) {
      for (int ldp = 0; ldp < Ld && ok; ldp++)
        for (int i = 0; i < Id && ok; i++) {
          const int64_t ob = (int64_t)ldp + (int64_t)i * Ld;
          if (!B.has((int)ob, idx))
            continue;
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
          store_result_at<T, kEpilogue>(a.epi, a.x_out, B.at(ob) + idx, ob, idx, acc.pack());
        }
    } else if (B.has(own_dp, idx)) {
      Acc<T> acc;
      for (int l = 0; l < L && ok; l++) {
        uint4 x;
        ok = w.poll(row_at(a, mine, l) + t, x, l, l);
        if (l == 0)
          acc.set(x);
        else
          acc.add(x);
      }
      store_result_at<T, kEpilogue>(a.epi, a.x_out, B.at(0) + idx, 0, idx, acc.pack());
    }
    const int rows = L * nsend;
    for (int r = 0; r < rows; r++)
      if (B.has(row_block(r / nsend, r % nsend), idx))
        store_volatile(row_at(a, mine, r) + t, poison_vec());
  };

  run_pipelined(a, call, w, produce, consume, NoPhase(), finish_rows);
}

/* FUSED_OPT_BYTES1_UC across nodes (AR, AR+AG, RS+AR; needs local_tp_size > 1): two-shot inside
 * the node around one exchange across nodes. Chunk j of a step is owned by local TP rank j.
 *   Round 1 (node, VMM): every rank sends chunk tp(o) of its input to owner o, for the owners it
 *     contributes to (RS+AR: all local ranks, one block per inter-DP group i, block ld(o)+i*Ld;
 *     otherwise: its local DP group, block 0), into o's rows [me * Np + i]; the owner sums them
 *     in local-rank order into Np partials, stored in its symmetric staging rows [I + i].
 *   Round 2 (nodes, NVSHMEM): the owner puts partial (RS+AR: idp(n'); else 0) to the same
 *     local rank of every other node n' (rows [my node], signal round 0), then sums, in node
 *     order: AR: all nodes; AR+AG: the nodes of each inter-DP group i (Id finals); RS+AR: all
 *     nodes (its own partial idp(me) included).
 *   Round 3 (node, VMM): the owner writes canon(final f) to rows [L * Np + me * Nf + f] of every
 *     rank that needs it (RS+AR: its local DP group; otherwise all local ranks, itself
 *     included), which copy it to the output (AR: chunk tp; AR+AG: block ld + f * Ld, chunk lt;
 *     RS+AR: chunk lt).
 * produce(s) = rounds 1 and the put of round 2; consume(s) = the rest. Each chunk is reduced by
 * one owner per node, and every node sums the same partials in the same order: identical bits
 * on every rank that shares an output. */
template <typename T, bool kEpilogue>
__global__ void __launch_bounds__(MIXCOMM_KERNEL_MAX_THREADS)
    bytes1_kernel(const __grid_constant__ mixcomm__kargs_t a) {
  CallState call;
  if (!begin_call(a, call))
    return;
  const uint32_t ring = call.ring, seq = call.seq;
  const int L = a.local_size, me = a.local_rank, Lt = a.local_tp, Ld = a.local_dp;
  const int I = a.inter_size, node = a.inter_rank, It = a.inter_tp, Id = a.inter_dp;
  const int mt = me % Lt, md = me / Lt, my_idp = node / It;
  const int op = a.op;
  const bool scatter = is_scatter(op);
  const int Np = scatter ? Id : 1;                                /* partials per owner */
  const int Nf = op == MIXCOMM_OP_ALLREDUCE_ALLGATHER ? Id : 1;   /* finals per owner */
  const RankRange p1 = reduce_peers(a, md), p3 = deliver_peers(a, md); /* rounds 1 and 3 */
  const int t = threadIdx.x;
  const CtaRange cta = cta_range(a);
  const int64_t begin = cta.begin, end = cta.end;
  const uint4* in = static_cast<const uint4*>(a.x_in);
  const uint64_t hash = call_hash(a) << 40;
  Waiter w(a);
  bool ok = true;
  auto finish_rows = [&] {
    if constexpr (kEpilogue)
      epilogue_rows<T>(a.epi, a.vecs, is_gather(op) ? Ld * a.inter_dp : 1, begin, end, ok);
  };
  auto step_base = [&](int s) { return begin + (int64_t)s * a.chunks * a.block; };

  /* Round 1, then the put of round 2. */
  auto produce = [&](int s) {
    const uint32_t slot = slot_of(ring, s);
    const int64_t base = step_base(s);
    const int64_t mine_first = base + (int64_t)mt * a.block;
    const bool mine_valid = mine_first + t < end;
    const uint4 tag1 = make_tag(a, seq, s, 1);
    char* mine = slot_share(a, me, slot);
    char* ns = ns_share(a, slot);
    if (ok) {
      if (p1.has(t))
        store_volatile(tag_at(slot_share(a, t, slot), me), tag1);
      for (int o = p1.lo; o < p1.hi; o++) {
        const int64_t idx = base + (int64_t)(o % Lt) * a.block + t;
        if (idx >= end)
          continue;
        for (int i = 0; i < Np; i++) {
          const int64_t blk = scatter ? (int64_t)(o / Lt) + (int64_t)i * Ld : 0;
          store_volatile(row_at(a, slot_share(a, o, slot), me * Np + i) + t,
                         canon(load_contribution<T, kEpilogue>(a.epi, in, blk * a.vecs + idx)));
        }
      }
      if (p1.has(t))
        ok = w.check_tag(mine, t, t, tag1);
    }
    for (int i = 0; i < Np && ok && mine_valid; i++) {
      Acc<T> acc;
      ok = consume_sum<T>(w, a, mine, p1.lo, p1.hi, Np, i, t, acc);
      ns_row(a, ns, I + i)[t] = acc.pack();
    }
    ok = __syncthreads_and(ok);
    if (!ok)
      return;
    const size_t bytes = (size_t)piece_count(mine_first, end, a.block) * 16;
    for (int n = 0; n < I; n++) {
      if (n == node)
        continue;
      put_signal(a, ns_row(a, ns, node), ns_row(a, ns, I + (scatter ? n / It : 0)), bytes,
                 signal_at(a, slot, 0, node), hash | epoch_of(seq, s), n * L + me);
    }
  };

  /* Wait for round 2, sum the finals, round 3. */
  auto consume = [&](int s) {
    const uint32_t slot = slot_of(ring, s);
    const int64_t base = step_base(s);
    const bool mine_valid = base + (int64_t)mt * a.block + t < end;
    const uint4 tag2 = make_tag(a, seq, s, 2);
    char* mine = slot_share(a, me, slot);
    char* ns = ns_share(a, slot);
    ok = wait_nodes(w, a, slot, 0, hash | epoch_of(seq, s), [](int) { return true; }, ok);

    if (ok && p3.has(t))
      store_volatile(tag_at(slot_share(a, t, slot), L + me), tag2);
    for (int f = 0; f < Nf && ok && mine_valid; f++) {
      Acc<T> acc;
      int terms = 0;
      for (int n = 0; n < I; n++) {
        if (op == MIXCOMM_OP_ALLREDUCE_ALLGATHER && n / It != f)
          continue;
        const uint4 x = n == node ? ns_row(a, ns, I + (scatter ? my_idp : 0))[t]
                                  : load_volatile(ns_row(a, ns, n) + t);
        if (terms++ == 0)
          acc.set(x);
        else
          acc.add(x);
      }
      const uint4 v = canon(acc.pack());
      for (int r = p3.lo; r < p3.hi; r++)
        store_volatile(row_at(a, slot_share(a, r, slot), L * Np + me * Nf + f) + t, v);
    }
    if (ok && p3.has(t))
      ok = w.check_tag(mine, L + t, t, tag2);
    for (int r = p3.lo; r < p3.hi && ok; r++) {
      const int64_t idx = base + (int64_t)(r % Lt) * a.block + t;
      if (idx >= end)
        continue;
      for (int f = 0; f < Nf && ok; f++) {
        uint4* src = row_at(a, mine, L * Np + r * Nf + f) + t;
        uint4 x;
        ok = w.poll(src, x, r, L * Np + r);
        const int64_t blk = op == MIXCOMM_OP_ALLREDUCE_ALLGATHER ? (int64_t)(r / Lt) + (int64_t)f * Ld : 0;
        store_result<T, kEpilogue>(a.epi, a.x_out, a.vecs, blk, idx, x);
        store_volatile(src, poison_vec());
      }
    }
  };

  run_pipelined(a, call, w, produce, consume, NoPhase(), finish_rows);
}

/* FUSED_OPT_BYTES2_UC (AR, AR+AG, RS+AR; needs inter_tp_size > 1): two-shot inside and across
 * nodes. A step has tp = Lt * It chunks; chunk q = lt + itp * Lt is owned by the rank with that
 * TP rank in each DP group.
 *   Round 1 (node, VMM): rank l sends to each owner o it contributes to (RS+AR: all local ranks;
 *     otherwise its local DP group) Np pieces into o's rows [l * Np + i]: AR/AR+AG: chunk
 *     lt(o) + i * Lt of its input, i < It; RS+AR: for every node i, chunk lt(o) + itp(i) * Lt of
 *     block ld(o) + idp(i) * Ld. The owner sums each piece over the senders in rank order into
 *     partial i (symmetric staging row [2I + i]).
 *   Round 2 (nodes, NVSHMEM, signal round 0): partial i goes to node dest(i) (RS+AR: i;
 *     otherwise i + my idp * It), into its row [my node]; the owner sums what the nodes sent it
 *     (RS+AR: all nodes; otherwise its inter-DP group), in node order, into its final chunk
 *     (row [2I + Np]).
 *   Round 3 (nodes, signal round 1): the final goes to every node that needs it (AR, AR+AG: all;
 *     RS+AR: its inter-DP group), into rows [I + my node].
 *   Round 4 (node, VMM): the owner writes the Nf finals it holds (its own and the ones received)
 *     to rows [L * Np + me * Nf + f] of every local rank that needs them (RS+AR: its local DP
 *     group; otherwise all), which copy them to their output positions.
 * produce(s) = round 1 and the put of round 2; relay(s) = the rest of round 2 and the put of
 * round 3; consume(s) = the wait of round 3 and round 4. So round 2 of step s travels while
 * round 4 of step s - 1 runs, and round 3 of step s while round 1 of step s + 1 runs.
 * Each chunk is reduced once in a fixed order and then only copied: identical bits. */
template <typename T, bool kEpilogue>
__global__ void __launch_bounds__(MIXCOMM_KERNEL_MAX_THREADS)
    bytes2_kernel(const __grid_constant__ mixcomm__kargs_t a) {
  CallState call;
  if (!begin_call(a, call))
    return;
  const uint32_t ring = call.ring, seq = call.seq;
  const int L = a.local_size, me = a.local_rank, Lt = a.local_tp, Ld = a.local_dp;
  const int I = a.inter_size, node = a.inter_rank, It = a.inter_tp;
  const int mt = me % Lt, md = me / Lt, my_itp = node % It, my_idp = node / It;
  const int op = a.op;
  const bool scatter = is_scatter(op);
  const int Np = scatter ? I : It;
  const int Nf = scatter ? It : I;
  const RankRange p1 = reduce_peers(a, md), p4 = deliver_peers(a, md); /* rounds 1 and 4 */
  const int stage = 2 * I, final_row = 2 * I + Np;
  const int q_me = mt + my_itp * Lt;
  const int t = threadIdx.x;
  const CtaRange cta = cta_range(a);
  const int64_t begin = cta.begin, end = cta.end;
  const uint4* in = static_cast<const uint4*>(a.x_in);
  const uint64_t hash = call_hash(a) << 40;
  Waiter w(a);
  bool ok = true;
  auto finish_rows = [&] {
    if constexpr (kEpilogue)
      epilogue_rows<T>(a.epi, a.vecs, is_gather(op) ? Ld * a.inter_dp : 1, begin, end, ok);
  };
  auto step_base = [&](int s) { return begin + (int64_t)s * a.chunks * a.block; };
  auto count = [&](int s, int q) {
    return piece_count(step_base(s) + (int64_t)q * a.block, end, a.block);
  };

  /* Round 1, then the put of round 2. */
  auto produce = [&](int s) {
    const uint32_t slot = slot_of(ring, s);
    const int64_t base = step_base(s);
    const uint4 tag1 = make_tag(a, seq, s, 1);
    char* mine = slot_share(a, me, slot);
    char* ns = ns_share(a, slot);
    if (ok) {
      if (p1.has(t))
        store_volatile(tag_at(slot_share(a, t, slot), me), tag1);
      for (int o = p1.lo; o < p1.hi; o++) {
        for (int i = 0; i < Np; i++) {
          const int q = o % Lt + (scatter ? i % It : i) * Lt;
          const int64_t idx = base + (int64_t)q * a.block + t;
          if (idx >= end)
            continue;
          const int64_t blk = scatter ? (int64_t)(o / Lt) + (int64_t)(i / It) * Ld : 0;
          store_volatile(row_at(a, slot_share(a, o, slot), me * Np + i) + t,
                         canon(load_contribution<T, kEpilogue>(a.epi, in, blk * a.vecs + idx)));
        }
      }
      if (p1.has(t))
        ok = w.check_tag(mine, t, t, tag1);
    }
    for (int i = 0; i < Np && ok; i++) {
      const int q = mt + (scatter ? i % It : i) * Lt;
      if (t >= count(s, q))
        continue;
      Acc<T> acc;
      ok = consume_sum<T>(w, a, mine, p1.lo, p1.hi, Np, i, t, acc);
      ns_row(a, ns, stage + i)[t] = acc.pack();
    }
    ok = __syncthreads_and(ok);
    if (!ok)
      return;
    for (int i = 0; i < Np; i++) {
      const int dn = scatter ? i : i + my_idp * It;
      if (dn == node)
        continue;
      const int q = mt + (scatter ? i % It : i) * Lt;
      put_signal(a, ns_row(a, ns, node), ns_row(a, ns, stage + i), (size_t)count(s, q) * 16,
                 signal_at(a, slot, 0, node), hash | epoch_of(seq, s), dn * L + me);
    }
  };

  /* Wait for round 2, sum my chunk, put it (round 3). */
  auto relay = [&](int s) {
    const uint32_t slot = slot_of(ring, s);
    const uint64_t sig = hash | epoch_of(seq, s);
    char* ns = ns_share(a, slot);
    ok = wait_nodes(w, a, slot, 0, sig, [&](int n) { return scatter || n / It == my_idp; }, ok);
    const int64_t mine_count = count(s, q_me);
    if (ok && t < mine_count) {
      Acc<T> acc;
      int terms = 0;
      for (int n = 0; n < I; n++) {
        if (!scatter && n / It != my_idp)
          continue;
        const uint4 x = n == node ? ns_row(a, ns, stage + (scatter ? node : my_itp))[t]
                                  : load_volatile(ns_row(a, ns, n) + t);
        if (terms++ == 0)
          acc.set(x);
        else
          acc.add(x);
      }
      ns_row(a, ns, final_row)[t] = canon(acc.pack());
    }
    ok = __syncthreads_and(ok);
    if (!ok)
      return;
    for (int n = 0; n < I; n++) {
      if (n == node || (scatter && n / It != my_idp))
        continue;
      put_signal(a, ns_row(a, ns, I + node), ns_row(a, ns, final_row), (size_t)mine_count * 16,
                 signal_at(a, slot, 1, node), sig, n * L + me);
    }
  };

  /* Wait for round 3; round 4. */
  auto consume = [&](int s) {
    const uint32_t slot = slot_of(ring, s);
    const int64_t base = step_base(s);
    const uint4 tag2 = make_tag(a, seq, s, 2);
    char* mine = slot_share(a, me, slot);
    char* ns = ns_share(a, slot);
    ok = wait_nodes(w, a, slot, 1, hash | epoch_of(seq, s),
                    [&](int n) { return !scatter || n / It == my_idp; }, ok);

    if (ok && p4.has(t))
      store_volatile(tag_at(slot_share(a, t, slot), L + me), tag2);
    for (int f = 0; f < Nf && ok; f++) {
      const int nf = scatter ? f + my_idp * It : f;
      if (t >= count(s, mt + (nf % It) * Lt))
        continue;
      const uint4 v = nf == node ? ns_row(a, ns, final_row)[t]
                                 : load_volatile(ns_row(a, ns, I + nf) + t);
      for (int r = p4.lo; r < p4.hi; r++)
        store_volatile(row_at(a, slot_share(a, r, slot), L * Np + me * Nf + f) + t, v);
    }
    if (ok && p4.has(t))
      ok = w.check_tag(mine, L + t, t, tag2);
    for (int r = p4.lo; r < p4.hi && ok; r++) {
      for (int f = 0; f < Nf && ok; f++) {
        const int nf = scatter ? f + my_idp * It : f;
        const int q = r % Lt + (nf % It) * Lt;
        const int64_t idx = base + (int64_t)q * a.block + t;
        if (idx >= end)
          continue;
        uint4* src = row_at(a, mine, L * Np + r * Nf + f) + t;
        uint4 x;
        ok = w.poll(src, x, r, L * Np + r);
        const int64_t blk =
            op == MIXCOMM_OP_ALLREDUCE_ALLGATHER ? (int64_t)(r / Lt) + (int64_t)(nf / It) * Ld : 0;
        store_result<T, kEpilogue>(a.epi, a.x_out, a.vecs, blk, idx, x);
        store_volatile(src, poison_vec());
      }
    }
  };

  run_pipelined(a, call, w, produce, consume, relay, finish_rows);
}

template <typename T, bool kEpilogue, bool kUneven>
int launch_variant(const mixcomm__kargs_t* a, unsigned grid, cudaStream_t stream) {
  if (a->mode == MIXCOMM_MODE_FUSED_OPT_WAITS_UC)
    return launch_fused(waits_kernel<T, kEpilogue, kUneven>, grid, *a, stream);
  if constexpr (!kUneven) { /* uneven calls run WAITS only (run_uneven.c refuses the others) */
    if (a->mode == MIXCOMM_MODE_FUSED_OPT_BYTES1_UC)
      return launch_fused(bytes1_kernel<T, kEpilogue>, grid, *a, stream);
    if (a->mode == MIXCOMM_MODE_FUSED_OPT_BYTES2_UC)
      return launch_fused(bytes2_kernel<T, kEpilogue>, grid, *a, stream);
  }
  return (int)cudaErrorNotSupported;
}

template <typename T>
int launch_typed(const mixcomm__kargs_t* a, cudaStream_t stream) {
  const unsigned grid = fused_grid(*a);
  if (grid == 0)
    return cudaSuccess;
  return with_variant(*a, [&](auto v) {
    using V = decltype(v);
    return launch_variant<T, V::epilogue, V::uneven>(a, grid, stream);
  });
}

/* CTAs of `block` threads that fit on one SM for every kernel of dtype T (epilogue and uneven
 * variants). */
template <typename T>
int occupancy(int block, int* blocks) {
  const void* kernels[] = {(const void*)waits_kernel<T, false, false>,
                           (const void*)bytes1_kernel<T, false>,
                           (const void*)bytes2_kernel<T, false>,
                           (const void*)waits_kernel<T, true, false>,
                           (const void*)bytes1_kernel<T, true>,
                           (const void*)bytes2_kernel<T, true>,
                           (const void*)waits_kernel<T, false, true>,
                           (const void*)waits_kernel<T, true, true>};
  int fewest = 1 << 30;
  for (const void* k : kernels) {
    int n = 0;
    const cudaError_t e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, k, block, 0);
    if (e != cudaSuccess)
      return (int)e;
    fewest = n < fewest ? n : fewest;
  }
  *blocks = fewest;
  return (int)cudaSuccess;
}

}  // namespace
}  // namespace mixcomm

extern "C" int mixcomm__nvshmem_launch(const mixcomm__kargs_t* a, cudaStream_t stream) {
  return mixcomm::with_dtype(a->dtype, (int)cudaErrorInvalidValue, [&](auto tag) {
    return mixcomm::launch_typed<typename decltype(tag)::type>(a, stream);
  });
}

extern "C" int mixcomm__nvshmem_blocks_per_sm(int dtype, int block, int* blocks) {
  /* An unknown dtype is refused before any launch; float's kernels answer for it here. */
  const int as = dtype == MIXCOMM_FLOAT16 || dtype == MIXCOMM_BFLOAT16 ? dtype : MIXCOMM_FLOAT32;
  return mixcomm::with_dtype(as, (int)cudaErrorInvalidValue, [&](auto tag) {
    return mixcomm::occupancy<typename decltype(tag)::type>(block, blocks);
  });
}
