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
 * in internode_common.cuh). After a signal is seen, one NVSHMEM test call on its word gives
 * transports that need it their consistency step (wait_signal).
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
#include "kernels/launch_dispatch.cuh"
#include "nvshmem_plugin/bytes_kernels.cuh"
#include "nvshmem_plugin/waits_kernel.cuh"

namespace mixcomm {
namespace {

template <typename T, bool kEpilogue, bool kUneven>
int launch_variant(const mixcomm__kargs_t* a, unsigned grid, cudaStream_t stream) {
  if (a->mode == MIXCOMM_MODE_FUSED_OPT_WAITS_UC)
    return launch_fused(waits_kernel<T, kEpilogue, kUneven>, grid, *a, stream);
  /* Uneven calls run WAITS only (core/validate_uneven.c refuses the others). */
  if constexpr (!kUneven) {
    if (a->mode == MIXCOMM_MODE_FUSED_OPT_BYTES1_UC)
      return launch_fused(bytes1_kernel<T, kEpilogue>, grid, *a, stream);
    if (a->mode == MIXCOMM_MODE_FUSED_OPT_BYTES2_UC)
      return launch_fused(bytes2_kernel<T, kEpilogue>, grid, *a, stream);
  }
  return (int)cudaErrorNotSupported;
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
  const cudaError_t e =
      fold_fewest_blocks(kernels, (int)(sizeof kernels / sizeof kernels[0]), block, &fewest);
  if (e == cudaSuccess)
    *blocks = fewest;
  return (int)e;
}

}  // namespace
}  // namespace mixcomm

extern "C" int mixcomm__nvshmem_launch(const mixcomm__kargs_t* a, cudaStream_t stream) {
  return mixcomm::launch_call(*a, [&](auto tag, auto v, unsigned grid) {
    using T = typename decltype(tag)::type;
    using V = decltype(v);
    return mixcomm::launch_variant<T, V::epilogue, V::uneven>(a, grid, stream);
  });
}

extern "C" int mixcomm__nvshmem_blocks_per_sm(int dtype, int block, int* blocks) {
  return mixcomm::with_dtype(dtype, [&](auto tag) {
    return mixcomm::occupancy<typename decltype(tag)::type>(block, blocks);
  });
}
