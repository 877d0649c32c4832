/* SPDX-License-Identifier: Apache-2.0
 * FUSED_OPT_BYTES1_UC and FUSED_OPT_BYTES2_UC across nodes: the two-shot kernels, each with
 * its rounds described above it; signals, reuse and waits as internode.cu describes them.
 * Included once, by internode.cu.
 */
#ifndef MIXCOMM_NVSHMEM_PLUGIN_BYTES_KERNELS_CUH_
#define MIXCOMM_NVSHMEM_PLUGIN_BYTES_KERNELS_CUH_

#include "nvshmem_plugin/internode_common.cuh"

namespace mixcomm {
namespace {

/* Vector 0 of chunk 0 of step s of this CTA (a two-shot step is chunks x block vectors). */
__device__ __forceinline__ int64_t twoshot_step_base(const mixcomm__kargs_t& a, int64_t begin,
                                                     int s) {
  return begin + (int64_t)s * a.chunks * a.block;
}

/* The epilogue's row pass over this CTA's rows of every output block (gather ops: one per DP
 * rank, Ld of each node's Id groups); run_pipelined's finish. */
template <typename T, bool kEpilogue>
__device__ __forceinline__ void twoshot_rows(const mixcomm__kargs_t& a, int op, int Ld,
                                             int64_t begin, int64_t end, bool ok) {
  if constexpr (kEpilogue)
    epilogue_rows<T>(a.epi, a.vecs, is_gather(op) ? Ld * a.inter_dp : 1, begin, end, ok);
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
  const uint64_t hash = signal_hash(a);
  Waiter w(a);
  bool ok = true;
  auto finish_rows = [&] { twoshot_rows<T, kEpilogue>(a, op, Ld, begin, end, ok); };
  auto step_base = [&](int s) { return twoshot_step_base(a, begin, s); };

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
  const uint64_t hash = signal_hash(a);
  Waiter w(a);
  bool ok = true;
  auto finish_rows = [&] { twoshot_rows<T, kEpilogue>(a, op, Ld, begin, end, ok); };
  auto step_base = [&](int s) { return twoshot_step_base(a, begin, s); };
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

}  // namespace
}  // namespace mixcomm

#endif
