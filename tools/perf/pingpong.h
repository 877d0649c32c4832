/* SPDX-License-Identifier: Apache-2.0
 * Cross-process flag ping-pong used by mixcomm-perf to measure the flag round trip between two
 * ranks of a node (the latency floor of any fused collective). See tools/perf/pingpong.cu for the
 * protocol. */
#ifndef MIXCOMM_TOOLS_PINGPONG_H_
#define MIXCOMM_TOOLS_PINGPONG_H_

#include <stdint.h>

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Written by the kernel (device memory). */
typedef struct pingpong_result {
  unsigned long long elapsed_ns; /* %globaltimer time of the timed rounds (leader only) */
  unsigned long long failed_round; /* 0 = every round completed; else 1 + the round that timed out */
  unsigned long long last_seen;    /* value of my flag when it timed out (diagnostics) */
  unsigned long long pad;
} pingpong_result_t;

/* Enqueue one ping-pong kernel (one thread) on stream.
 *   my_flag:   a 32-bit word in memory this process owns (the peer writes it);
 *   peer_flag: a 32-bit word in the peer's memory, mapped here (this process writes it);
 *   leader:    1 on the rank that starts each round (rank 0), 0 on the other (rank 1);
 *   seq0:      sequence number of the first round; round i uses seq0 + i (never 0: the flags
 *              start at 0). Both ranks must pass the same seq0, warm_rounds and rounds;
 *   warm_rounds untimed rounds (they also absorb the launch skew between the processes), then
 *   rounds timed ones; timeout_ns bounds each wait (no progress for that long: give up).
 * Returns a cudaError_t value (the launch's). */
int pingpong_launch(volatile uint32_t* my_flag, volatile uint32_t* peer_flag, int leader,
                    uint32_t seq0, int warm_rounds, int rounds, unsigned long long timeout_ns,
                    pingpong_result_t* result, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
