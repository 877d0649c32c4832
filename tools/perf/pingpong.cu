/* SPDX-License-Identifier: Apache-2.0
 * Flag ping-pong between two processes of a node, for mixcomm-perf's latency ceiling.
 *
 * Protocol. Two ranks, a leader (world rank 0) and a follower (world rank 1), each own one
 * 32-bit flag in a page of node workspace memory (CUDA VMM, mapped by both processes through
 * the library's fd exchange). Both flags start at 0 (each rank clears its own, then a bootstrap
 * barrier). A single thread on each side runs rounds i = 0, 1, ... with seq = seq0 + i:
 *   leader:   store seq into the follower's flag, then spin until its own flag == seq;
 *   follower: spin until its own flag == seq, then store seq into the leader's flag.
 * So one round is one flag write seen by the peer and one written back: a round trip. Stores
 * are volatile (st.volatile, no fence: nothing else is published with a flag) and the spins use
 * volatile loads, which go to L2 (or across NVLink for a peer GPU) on every iteration.
 * Sequence numbers only grow across kernels (the host passes seq0), so successive kernels need
 * no reset and a late-starting follower still sees the leader's pending flag.
 *
 * Timing. The first warm_rounds rounds are untimed: they absorb the skew between the two
 * processes' kernel launches and warm the path. The leader reads %globaltimer (nanoseconds)
 * before and after the timed rounds and writes the difference to its result.
 *
 * Bounded waits. A spin that sees no change of its flag for timeout_ns gives up: the kernel
 * records 1 + the round in failed_round and returns (the peer then times out too), so a dead or
 * missing peer never hangs the benchmark. %globaltimer is read once every 256 spins.
 */
#include <stdint.h>

#include <cuda_runtime.h>

#include "perf/pingpong.h"

namespace {

__device__ __forceinline__ unsigned long long global_ns() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

__device__ __forceinline__ uint32_t load_flag(volatile uint32_t* p) {
  uint32_t v;
  asm volatile("ld.volatile.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
  return v;
}

__device__ __forceinline__ void store_flag(volatile uint32_t* p, uint32_t v) {
  asm volatile("st.volatile.global.u32 [%0], %1;" ::"l"(p), "r"(v) : "memory");
}

/* Spin until *p == want; false if it did not arrive within timeout_ns. */
__device__ bool wait_flag(volatile uint32_t* p, uint32_t want, unsigned long long timeout_ns,
                          uint32_t* seen) {
  unsigned long long start = 0;
  for (unsigned spins = 0;; spins++) {
    const uint32_t v = load_flag(p);
    if (v == want)
      return true;
    if ((spins & 255u) == 0) {
      const unsigned long long now = global_ns();
      if (start == 0)
        start = now;
      else if (now - start > timeout_ns) {
        *seen = v;
        return false;
      }
    }
  }
}

__global__ void pingpong_kernel(volatile uint32_t* my_flag, volatile uint32_t* peer_flag,
                                int leader, uint32_t seq0, int warm_rounds, int rounds,
                                unsigned long long timeout_ns, pingpong_result_t* result) {
  if (threadIdx.x != 0 || blockIdx.x != 0)
    return;
  const int total = warm_rounds + rounds;
  unsigned long long t0 = global_ns();
  uint32_t seen = 0;
  for (int i = 0; i < total; i++) {
    if (i == warm_rounds)
      t0 = global_ns();
    const uint32_t seq = seq0 + (uint32_t)i;
    bool ok;
    if (leader) {
      store_flag(peer_flag, seq);
      ok = wait_flag(my_flag, seq, timeout_ns, &seen);
    } else {
      ok = wait_flag(my_flag, seq, timeout_ns, &seen);
      if (ok)
        store_flag(peer_flag, seq);
    }
    if (!ok) {
      result->elapsed_ns = 0;
      result->failed_round = (unsigned long long)i + 1;
      result->last_seen = seen;
      return;
    }
  }
  const unsigned long long t1 = global_ns();
  result->elapsed_ns = t1 - t0;
  result->failed_round = 0;
  result->last_seen = seq0 + (uint32_t)total - 1u;
}

}  // namespace

extern "C" int pingpong_launch(volatile uint32_t* my_flag, volatile uint32_t* peer_flag,
                               int leader, uint32_t seq0, int warm_rounds, int rounds,
                               unsigned long long timeout_ns, pingpong_result_t* result,
                               cudaStream_t stream) {
  if (my_flag == NULL || peer_flag == NULL || result == NULL || warm_rounds < 0 || rounds < 0)
    return (int)cudaErrorInvalidValue;
  pingpong_kernel<<<1, 32, 0, stream>>>(my_flag, peer_flag, leader, seq0, warm_rounds, rounds,
                                        timeout_ns, result);
  return (int)cudaGetLastError();
}
