/* SPDX-License-Identifier: Apache-2.0
 * Uneven rows per DP rank (mixcomm_run_v, mixcomm_run_v_device) on the device side: the per-DP-
 * block layout the fused kernels address blocks through, and the tag of an uneven call.
 *
 * Layout. DP block k has len[k] = rows[k] * row_vecs vectors and starts at off[k] = the sum of the
 * lengths before it (packed in dp order). The geometry is cut for the largest block allowed
 * (kargs vecs = max_rows * row_vecs), so every rank, whatever its own count, walks the same
 * spans and steps; vector idx of block k exists iff idx < len[k]. Every rank knows every length,
 * so senders and receivers agree on which vectors travel: a sender skips a vector that does not
 * exist (loads and stores nothing), its receiver skips polling it and leaves its workspace row as
 * it is (still poison). Tags still go out every step, so the ring-reuse argument of the kernels
 * (every pair of ranks meets in every step) is unchanged.
 *
 * Loading. Every CTA builds the table in shared memory at its start: thread 0 reads the counts
 * (from the kernel arguments, or for the device form from the device array the caller filled
 * before the launch in stream order), checks 0 <= count <= max_rows, forms the prefix sums and a
 * hash of the list. A count out of range is recorded as MIXCOMM_ERR_INVALID_ARGUMENT (the entry
 * in `step`, row -3, value and bound in the tag words) and every length is taken as 0, so nothing
 * is written out of bounds; the CTA still sends its tags, which carry the hash of the raw list,
 * so a peer with another list reports a MISMATCH naming this rank instead of waiting.
 *
 * Tag. An uneven call's tag has bit 15 of word x set (the op field is 7 bits) and holds in word
 * y a 31-bit hash of (dp_size, every count, max_rows, row_vecs) instead of the block size, and
 * no size bits in word w: two ranks with different lists, maxima or row lengths disagree on the
 * tag (handler/async_error.c describe_tag decodes it). Equal-size calls keep their plain tag. */
#ifndef MIXCOMM_KERNELS_UNEVEN_CUH_
#define MIXCOMM_KERNELS_UNEVEN_CUH_

#include "kernels/device_common.cuh"

namespace mixcomm {

constexpr uint32_t kUnevenTagBit = 0x8000u;
constexpr int kUnevenErrorRow = -3;

struct BlockTable {
  int64_t off[MIXCOMM_MAX_DP_SIZE + 1];
  int64_t len[MIXCOMM_MAX_DP_SIZE];
  uint32_t hash;
};

__device__ __forceinline__ uint32_t hash_word(uint32_t h, uint64_t v) {
  /* FNV-1a over the 8 bytes of v. */
#pragma unroll
  for (int i = 0; i < 8; i++) {
    h ^= (uint32_t)(v >> (8 * i)) & 0xFFu;
    h *= 0x01000193u;
  }
  return h;
}

/* The shared table of an uneven kernel (nullptr for the plain instantiation, which declares no
 * shared memory for it). */
template <bool kUneven>
__device__ __forceinline__ BlockTable* block_table_storage() {
  if constexpr (kUneven) {
    __shared__ BlockTable table;
    return &table;
  } else {
    return nullptr;
  }
}

/* Fill the table (every thread calls it; ends with a block barrier). */
static __device__ __noinline__ void load_block_table(const mixcomm__kargs_t& a, BlockTable* t) {
  if (threadIdx.x == 0) {
    const mixcomm__uneven_t& u = a.uneven;
    uint32_t h = hash_word(0x811C9DC5u, (uint64_t)u.blocks);
    int bad = -1;
    int64_t bad_value = 0, off = 0;
    for (int k = 0; k < u.blocks; k++) {
      const int64_t r = u.rows_dev != nullptr ? (int64_t)u.rows_dev[k] : u.rows[k];
      h = hash_word(h, (uint64_t)r);
      if ((r < 0 || r > u.max_rows) && bad < 0) {
        bad = k;
        bad_value = r;
      }
      t->len[k] = r * u.row_vecs;
    }
    h = hash_word(hash_word(h, (uint64_t)u.max_rows), (uint64_t)u.row_vecs);
    for (int k = 0; k < u.blocks; k++) {
      if (bad >= 0)
        t->len[k] = 0;
      t->off[k] = off;
      off += t->len[k];
    }
    t->off[u.blocks] = off;
    t->hash = h & 0x7FFFFFFFu;
    if (bad >= 0) {
      const uint4 bound = make_uint4((uint32_t)u.max_rows, (uint32_t)(u.max_rows >> 32), 0, 0);
      const uint4 value = make_uint4((uint32_t)bad_value, (uint32_t)(bad_value >> 32), 0, 0);
      record_error(a, MIXCOMM_ERR_INVALID_ARGUMENT, kNoPeer, bad, kUnevenErrorRow, &bound,
                   &value);
    }
  }
  __syncthreads();
}

/* Where DP block k lies: plainly at k * vecs with vecs vectors, or from the table. */
template <bool kUneven>
struct Blocks {
  int64_t vecs;
  const BlockTable* t;
  __device__ __forceinline__ int64_t at(int64_t k) const { return kUneven ? t->off[k] : k * vecs; }
  __device__ __forceinline__ bool has(int64_t k, int64_t idx) const {
    return !kUneven || idx < t->len[k];
  }
  __device__ __forceinline__ const int64_t* offsets() const { return kUneven ? t->off : nullptr; }
  /* Lengths of the blocks from block k on (an op with one output block passes its own). */
  __device__ __forceinline__ const int64_t* lengths_from(int k) const {
    return kUneven ? t->len + k : nullptr;
  }
};

template <bool kUneven>
__device__ __forceinline__ Blocks<kUneven> make_blocks(const mixcomm__kargs_t& a) {
  BlockTable* t = block_table_storage<kUneven>();
  if constexpr (kUneven)
    load_block_table(a, t);
  return Blocks<kUneven>{a.vecs, t};
}

/* The tag of step `step`: the plain one, or for an uneven call the list hash in place of the
 * size (see the file comment). */
template <bool kUneven>
__device__ __forceinline__ uint4 call_tag(const mixcomm__kargs_t& a, const Blocks<kUneven>& b,
                                          uint32_t seq, int step, int phase) {
  uint4 t = make_tag(a, seq, step, phase);
  if constexpr (kUneven) {
    t.x |= kUnevenTagBit;
    t.y = b.t->hash;
    t.w &= ~(0x1FFu << 16);
  }
  return t;
}

}  // namespace mixcomm

#endif
