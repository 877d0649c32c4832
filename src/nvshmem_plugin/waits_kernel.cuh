/* SPDX-License-Identifier: Apache-2.0
 * FUSED_OPT_WAITS_UC across nodes (every op, plain, epilogue and uneven rows): the one-shot
 * kernel whose rounds, reuse and uneven rules internode.cu describes. Included once, by
 * internode.cu.
 */
#ifndef MIXCOMM_NVSHMEM_PLUGIN_WAITS_KERNEL_CUH_
#define MIXCOMM_NVSHMEM_PLUGIN_WAITS_KERNEL_CUH_

#include "nvshmem_plugin/internode_common.cuh"

namespace mixcomm {
namespace {

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

}  // namespace
}  // namespace mixcomm

#endif
