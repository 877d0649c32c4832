/* SPDX-License-Identifier: Apache-2.0
 * Single-node fused kernels over the node workspace (CUDA VMM memory every local rank maps):
 * FUSED_OPT_WAITS_UC (one-shot) and FUSED_OPT_BYTES1_UC (two-shot), for all five operations.
 *
 * Work split. The flat vector space of one rank block (plan.h) is cut into per-CTA spans; a CTA
 * walks its span in `steps` steps of chunks x block vectors; thread t handles vector t of each
 * chunk. Every rank computes the same geometry, so CTA b of every rank handles the same
 * vectors, and thread t of every rank the same vector of each chunk.
 *
 * Ranks of the node: local rank r has tp(r) = r % Lt, dp(r) = r / Lt. "gather" ops (AG, AR+AG)
 * write one output block per local DP group, "scatter" ops (RS, RS+AR) read one input block per
 * local DP group; block k starts at k * vecs. Uneven rows per DP rank (kUneven, uneven.cuh):
 * block k starts at the table's offset, and a vector past its length is neither sent nor polled.
 *
 * One-shot (WAITS), one exchange per step:
 *   every rank r writes canon(its input block (scatter ? dp(d) : 0)) into row r of every other
 *   rank d's slot, plus a tag in tag r. Rank d then sums, for each output block, the rows of
 *   the contributing ranks in ascending rank order (its own value taken from its input):
 *     gather: output block k = sum over the ranks of DP group k (AG: a plain copy);
 *     others: the single output = sum over all L ranks.
 *   Every rank of a TP group sums the same values in the same order: identical bits.
 * Two-shot (BYTES1, Lt > 1), two exchanges per step, chunk j of a step owned by tp rank j:
 *   phase 1: rank r sends chunk tp(o) of input block (scatter ? dp(o) : 0) to owner o, into o's
 *   row r, for every o it contributes to (scatter: all ranks; otherwise: its own DP group);
 *   the owner reduces its contributors in ascending rank order.
 *   phase 2: the owner writes canon(result) to its output position (block gather ? dp(o) : 0,
 *   chunk tp(o)) and into row L + o of every rank that needs it (scatter: its DP group;
 *   otherwise: all ranks), which copy it to the same output position.
 *   Each chunk is reduced once and broadcast: identical bits on every rank.
 *
 * Publication: data is its own flag (poison convention, device_common.cuh); rows are polled
 * until no word is poison. Tags (one 16-byte vector per sender and row) carry op, mode, dtype,
 * size, call number and step; a different tag is a MISMATCH error naming the sender.
 *
 * Pipelining. Steps run software-pipelined (run_pipelined, device_common.cuh): the sends of
 * step s + 1 are written before step s is received, so a peer's data is usually there when
 * it is polled. One-shot: produce(s) = send, consume(s) = receive. Two-shot: produce(s) =
 * phase 1 send, relay(s) = phase 1 receive and phase 2 send, consume(s) = phase 2 receive,
 * in the order produce(s) consume(s - 1) relay(s).
 *
 * Reuse. The ring has kRing = 4 slots; step s of a call uses slot (ring + s) % 4, ring being
 * the CTA's position kept in device memory across calls. A receiver re-poisons exactly the
 * rows and tags it consumed, right after consuming them. Every thread issues
 * fence.acq_rel.sys, then the block synchronises, before produce(s) for s >= 2 (and a kernel
 * boundary precedes a call's produce(0)), so (1) every write of step s is ordered after all
 * the rank's receiving and re-poisoning of step s - 2; and (2) before that fence the rank has
 * received step s - 2 or later data (a tag at least) from every local rank: one-shot receives
 * from all in each step; two-shot from its phase 1 senders in relay(s - 1) and its phase 2
 * senders in consume(s - 2), and every pair of ranks meets in one of the two phases. So when
 * rank A writes slot s of rank B, B had sent A data of a step s' >= s - 2 after finishing step
 * s' - 2 >= s - 4, the slot's previous use: it is clean. The ordering follows from the fences
 * (release/acquire at system scope), not from timing.
 *
 * Waits are bounded (device_common.cuh Waiter): on timeout, abort or a foreign tag, the first
 * failing thread records the error for the host and every thread of the handler stops waiting.
 */
#include "kernels/epilogue.cuh"
#include "kernels/launch_dispatch.cuh"
#include "kernels/uneven.cuh"

namespace mixcomm {
namespace {

/* Every kernel is built twice: for blocks of up to kSmallBlock threads, which small calls get
 * (plan.c's per-CTA floor keeps them there), with the registers a 1024-thread bound would
 * take away (at 1024 threads a thread may hold 64 registers and these kernels spill), and for
 * any block up to MIXCOMM_KERNEL_MAX_THREADS. The small build prefetches its first input under
 * the ring claim (small calls are where that latency shows), and so does the one-shot kernel's
 * general build (measured 1-4% faster at 4-256 MiB); the two-shot kernel's general build does
 * not (its step loop has no registers to spare at 1024 threads: measured 2-3% slower at 256
 * MiB with it). Uneven calls (kUneven) use the general build only and never prefetch. */
constexpr int kSmallBlock = 256;

/* The small build is also bounded to 2 CTAs per SM: ptxas then may give a thread up to 128
 * registers, where bounded by its block alone it kept most kernels at 64-80 and they spilled in
 * the step loop (now 78-108 registers, no spills; calls up to 1 MiB 0-6% faster, measured in
 * docs/results/latency-h200.md). blocks_per_sm below counts the bound for the co-residency
 * check. 0 for the general build: no second bound, so its code is what the block alone gives
 * (64 registers at 1024 threads). */
constexpr int min_blocks_of(int max_threads) { return max_threads <= kSmallBlock ? 2 : 0; }

/* begin_call, with the step-0 prefetch in plain calls of the small build, and of the general
 * build too where kAlways (the one-shot kernel). */
template <bool kUneven, int kMaxThreads, bool kAlways = false, typename Prefetch>
__device__ __forceinline__ bool begin_call_of(const mixcomm__kargs_t& a, CallState& call,
                                              Prefetch prefetch) {
  if constexpr (!kUneven && (kAlways || kMaxThreads <= kSmallBlock))
    return begin_call(a, call, prefetch);
  else
    return begin_call(a, call);
}

template <typename T, bool kEpilogue, bool kUneven, int kMaxThreads>
__global__ void __launch_bounds__(kMaxThreads, min_blocks_of(kMaxThreads))
    oneshot_kernel(const __grid_constant__ mixcomm__kargs_t a) {
  const int t = threadIdx.x;
  const CtaRange cta = cta_range(a);
  const int64_t begin = cta.begin, end = cta.end;
  const bool scatter = is_scatter(a.op);
  CallState call;
  /* Step 0 loads vector begin + t of every input block this rank reads. */
  auto prefetch = [&] {
    if (begin + t < end)
      for (int k = 0; k < (scatter ? a.local_dp : 1); k++)
        prefetch_input(a, k, begin + t);
  };
  if (!begin_call_of<kUneven, kMaxThreads, true>(a, call, prefetch))
    return;
  const Blocks<kUneven> B = make_blocks<kUneven>(a);
  const uint32_t ring = call.ring, seq = call.seq;
  const int L = a.local_size, me = a.local_rank, Lt = a.local_tp;
  const int md = me / Lt;
  const bool gather = is_gather(a.op);
  const int group = gather ? Lt : L;         /* ranks summed into one output block */
  const int outputs = gather ? a.local_dp : 1;
  const uint4* in = static_cast<const uint4*>(a.x_in);
  const int64_t own_block = scatter ? B.at(md) : 0;
  Waiter w(a);
  bool ok = true;

  /* Send: my tag and my input (the destination's block for scatter ops) to every peer. */
  auto produce = [&](int s) {
    if (!ok)
      return;
    const uint32_t slot = slot_of(ring, s);
    const int64_t idx = begin + (int64_t)s * a.block + t;
    if (t < L && t != me)
      store_volatile(tag_at(slot_share(a, t, slot), me), call_tag(a, B, seq, s, 0));
    if (idx >= end)
      return;
    /* Uneven: my own block's vector may not exist (gather: the only one I send). */
    const bool own_ok = B.has(md, idx);
    if (!scatter && !own_ok)
      return;
    const uint4 own = own_ok ? canon(load_contribution<T, kEpilogue>(a.epi, in, own_block + idx))
                             : make_uint4(0, 0, 0, 0);
    for (int r = 0; r < L; r++) {
      if (r == me || (scatter && !B.has(r / Lt, idx)))
        continue;
      const uint4 v = scatter ? canon(load_input(in + B.at(r / Lt) + idx)) : own;
      store_volatile(row_at(a, slot_share(a, r, slot), me) + t, v);
    }
  };

  /* Receive: check the peers' tags, reduce their rows in rank order, re-poison them. */
  auto consume = [&](int s) {
    const uint32_t slot = slot_of(ring, s);
    const int64_t idx = begin + (int64_t)s * a.block + t;
    char* mine = slot_share(a, me, slot);
    /* Issued before the wait, so that its latency hides behind the peers'. */
    const uint4 own =
        idx < end && B.has(md, idx) ? canon(load_contribution<T, kEpilogue>(a.epi, in, own_block + idx)) : make_uint4(0, 0, 0, 0);
    if (ok && t < L && t != me)
      ok = w.check_tag(mine, t, t, call_tag(a, B, seq, s, 0));
    if (!ok || idx >= end)
      return;
    for (int k = 0; k < outputs; k++) {
      if (!B.has(gather ? k : md, idx))
        continue; /* uneven: nobody sent this vector */
      const int first = gather ? k * Lt : 0;
      uint4 v;
      if (group == 1) {
        v = own;
        if (first != me)
          ok = ok && w.poll(row_at(a, mine, first) + t, v, first, first);
      } else {
        Acc<T> acc;
        ok = reduce_rows<T>(w, a, mine, 0, first, group, me, own, t, acc) && ok;
        v = acc.pack();
      }
      store_result_at<T, kEpilogue>(a.epi, a.x_out, (gather ? B.at(k) : 0) + idx, k, idx, v);
    }
    for (int r = 0; r < L; r++)
      if (r != me && B.has(scatter ? md : r / Lt, idx))
        store_volatile(row_at(a, mine, r) + t, poison_vec());
  };

  auto finish = [&] {
    if constexpr (kEpilogue)
      epilogue_rows<T>(a.epi, a.vecs, outputs, begin, end, ok,
                       gather ? B.offsets() : nullptr, B.lengths_from(gather ? 0 : md));
  };
  run_pipelined(a, call, w, produce, consume, NoPhase(), finish);
}

template <typename T, bool kEpilogue, bool kUneven, int kMaxThreads>
__global__ void __launch_bounds__(kMaxThreads, min_blocks_of(kMaxThreads))
    twoshot_kernel(const __grid_constant__ mixcomm__kargs_t a) {
  const int t = threadIdx.x;
  const CtaRange cta = cta_range(a);
  const int64_t begin = cta.begin, end = cta.end;
  const bool scatter = is_scatter(a.op);
  CallState call;
  /* Step 0 loads vector t of every chunk of every input block this rank reads. */
  auto prefetch = [&] {
    for (int j = 0; j < a.chunks; j++) {
      const int64_t idx = begin + (int64_t)j * a.block + t;
      if (idx < end)
        for (int k = 0; k < (scatter ? a.local_dp : 1); k++)
          prefetch_input(a, k, idx);
    }
  };
  if (!begin_call_of<kUneven, kMaxThreads>(a, call, prefetch))
    return;
  const Blocks<kUneven> B = make_blocks<kUneven>(a);
  const uint32_t ring = call.ring, seq = call.seq;
  const int L = a.local_size, me = a.local_rank, Lt = a.local_tp;
  const int mt = me % Lt, md = me / Lt;
  const bool gather = is_gather(a.op);
  /* Ranks I contribute to / receive phase 1 from, and receive phase 2 from / send it to. */
  const RankRange p1 = reduce_peers(a, md), p2 = deliver_peers(a, md);
  const uint4* in = static_cast<const uint4*>(a.x_in);
  /* The deadline in a register in the general build: measured faster there (device_common.cuh);
   * the small build has registers to spare and measured faster with the member form. */
  BasicWaiter<(kMaxThreads > kSmallBlock)> w(a);
  bool ok = true;
  /* Vector t of chunk 0 of step s. */
  auto base_of = [&](int s) { return begin + (int64_t)s * a.chunks * a.block + t; };

  /* Phase 1 send: my input chunks to their owners. */
  auto produce = [&](int s) {
    if (!ok)
      return;
    const uint32_t slot = slot_of(ring, s);
    const int64_t base = base_of(s);
    if (p1.has(t) && t != me)
      store_volatile(tag_at(slot_share(a, t, slot), me), call_tag(a, B, seq, s, 1));
    for (int o = p1.lo; o < p1.hi; o++) {
      const int64_t idx = base + (int64_t)(o % Lt) * a.block;
      if (o == me || idx >= end || !B.has(scatter ? o / Lt : md, idx))
        continue;
      const uint4 v =
          canon(load_contribution<T, kEpilogue>(a.epi, in, (scatter ? B.at(o / Lt) : 0) + idx));
      store_volatile(row_at(a, slot_share(a, o, slot), me) + t, v);
    }
  };

  /* Phase 1 receive: reduce my chunk; phase 2 send: the result to every rank that needs it. */
  auto relay = [&](int s) {
    const uint32_t slot = slot_of(ring, s);
    const int64_t mine_idx = base_of(s) + (int64_t)mt * a.block;
    const bool mine_valid = mine_idx < end && B.has(md, mine_idx);
    char* mine = slot_share(a, me, slot);
    /* Issued before the wait, so that its latency hides behind the peers'. */
    const uint4 own = mine_valid
                          ? canon(load_contribution<T, kEpilogue>(a.epi, in,
                                                       (scatter ? B.at(md) : 0) + mine_idx))
                          : make_uint4(0, 0, 0, 0);
    if (ok && p1.has(t) && t != me)
      ok = w.check_tag(mine, t, t, call_tag(a, B, seq, s, 1));
    uint4 result = make_uint4(0, 0, 0, 0);
    if (ok && mine_valid) {
      Acc<T> acc;
      ok = reduce_rows<T>(w, a, mine, 0, p1.lo, p1.hi - p1.lo, me, own, t, acc);
      result = canon(acc.pack());
      for (int r = p1.lo; r < p1.hi; r++)
        if (r != me)
          store_volatile(row_at(a, mine, r) + t, poison_vec());
    }
    if (!ok)
      return;
    if (p2.has(t) && t != me)
      store_volatile(tag_at(slot_share(a, t, slot), L + me), call_tag(a, B, seq, s, 2));
    if (mine_valid) {
      for (int r = p2.lo; r < p2.hi; r++)
        if (r != me)
          store_volatile(row_at(a, slot_share(a, r, slot), L + me) + t, result);
      store_result_at<T, kEpilogue>(a.epi, a.x_out, (gather ? B.at(md) : 0) + mine_idx,
                                    gather ? md : 0, mine_idx, result);
    }
  };

  /* Phase 2 receive: the other owners' chunks to my output. */
  auto consume = [&](int s) {
    const uint32_t slot = slot_of(ring, s);
    const int64_t base = base_of(s);
    char* mine = slot_share(a, me, slot);
    if (ok && p2.has(t) && t != me)
      ok = w.check_tag(mine, L + t, t, call_tag(a, B, seq, s, 2));
    for (int r = p2.lo; r < p2.hi && ok; r++) {
      const int64_t idx = base + (int64_t)(r % Lt) * a.block;
      if (r == me || idx >= end || !B.has(gather ? r / Lt : md, idx))
        continue;
      uint4* src = row_at(a, mine, L + r) + t;
      uint4 v;
      ok = w.poll(src, v, r, L + r);
      if (!ok)
        break;
      store_result_at<T, kEpilogue>(a.epi, a.x_out, (gather ? B.at(r / Lt) : 0) + idx,
                                    gather ? r / Lt : 0, idx, v);
      store_volatile(src, poison_vec());
    }
  };

  auto finish = [&] {
    if constexpr (kEpilogue)
      epilogue_rows<T>(a.epi, a.vecs, gather ? a.local_dp : 1, begin, end, ok,
                       gather ? B.offsets() : nullptr, B.lengths_from(gather ? 0 : md));
  };
  run_pipelined(a, call, w, produce, consume, relay, finish);
}

template <typename T, bool kEpilogue, bool kUneven, int kMaxThreads>
int launch_bounded(const mixcomm__kargs_t* a, unsigned grid, cudaStream_t stream) {
  if (a->mode == MIXCOMM_MODE_FUSED_OPT_BYTES1_UC)
    return launch_fused(twoshot_kernel<T, kEpilogue, kUneven, kMaxThreads>, grid, *a, stream);
  return launch_fused(oneshot_kernel<T, kEpilogue, kUneven, kMaxThreads>, grid, *a, stream);
}

template <typename T, bool kEpilogue, bool kUneven>
int launch_variant(const mixcomm__kargs_t* a, unsigned grid, cudaStream_t stream) {
  if (!kUneven && a->block <= kSmallBlock)
    return launch_bounded<T, kEpilogue, false, kSmallBlock>(a, grid, stream);
  return launch_bounded<T, kEpilogue, kUneven, MIXCOMM_KERNEL_MAX_THREADS>(a, grid, stream);
}

/* CTAs of `block` threads that fit on one SM for every kernel of dtype T that a call with that
 * block may run (epilogue and uneven variants; the small-block build for blocks it serves, and
 * the general one at `block`), so the co-residency bound of the handler holds for either. */
template <typename T>
cudaError_t blocks_per_sm(int block, int* blocks) {
  constexpr int kMax = MIXCOMM_KERNEL_MAX_THREADS;
  const void* general[] = {(const void*)oneshot_kernel<T, false, false, kMax>,
                           (const void*)twoshot_kernel<T, false, false, kMax>,
                           (const void*)oneshot_kernel<T, true, false, kMax>,
                           (const void*)twoshot_kernel<T, true, false, kMax>,
                           (const void*)oneshot_kernel<T, false, true, kMax>,
                           (const void*)twoshot_kernel<T, false, true, kMax>,
                           (const void*)oneshot_kernel<T, true, true, kMax>,
                           (const void*)twoshot_kernel<T, true, true, kMax>};
  const void* small[] = {(const void*)oneshot_kernel<T, false, false, kSmallBlock>,
                         (const void*)twoshot_kernel<T, false, false, kSmallBlock>,
                         (const void*)oneshot_kernel<T, true, false, kSmallBlock>,
                         (const void*)twoshot_kernel<T, true, false, kSmallBlock>};
  int fewest = 1 << 30;
  cudaError_t e = fold_fewest_blocks(general, (int)(sizeof general / sizeof general[0]), block,
                                     &fewest);
  if (e == cudaSuccess)
    e = fold_fewest_blocks(small, (int)(sizeof small / sizeof small[0]),
                           block < kSmallBlock ? block : kSmallBlock, &fewest);
  if (e == cudaSuccess)
    *blocks = fewest;
  return e;
}

}  // namespace
}  // namespace mixcomm

extern "C" int mixcomm__intranode_blocks_per_sm(int dtype, int block, int* blocks) {
  return mixcomm::with_dtype(dtype, [&](auto tag) {
    return (int)mixcomm::blocks_per_sm<typename decltype(tag)::type>(block, blocks);
  });
}

extern "C" int mixcomm__launch_intranode(const mixcomm__kargs_t* a, cudaStream_t stream) {
  return mixcomm::launch_call(*a, [&](auto tag, auto v, unsigned grid) {
    using T = typename decltype(tag)::type;
    using V = decltype(v);
    return mixcomm::launch_variant<T, V::epilogue, V::uneven>(a, grid, stream);
  });
}
