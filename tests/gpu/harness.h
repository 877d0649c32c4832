/* SPDX-License-Identifier: Apache-2.0
 * Pieces shared by the GPU test programs that start their own ranks (mixcomm-fault-tests,
 * mixcomm-soak; the op classes also by mixcomm-gpu-tests): which ops gather or scatter rows, the
 * GPU and grid of a rank, memory shared between the parent and its forked ranks, a one-node
 * topology resolved without CUDA, and the message for a bad command-line argument. */
#ifndef MIXCOMM_TESTS_GPU_HARNESS_H_
#define MIXCOMM_TESTS_GPU_HARNESS_H_

#include <stddef.h>

#include "mixcomm.h"

/* Ops whose output is dp_size times their input (gather) or whose input is dp_size times their
 * output (scatter). */
static inline int is_gather(mixcomm_op_t op) {
  return op == MIXCOMM_OP_ALLGATHER || op == MIXCOMM_OP_ALLREDUCE_ALLGATHER;
}
static inline int is_scatter(mixcomm_op_t op) {
  return op == MIXCOMM_OP_REDUCESCATTER || op == MIXCOMM_OP_REDUCESCATTER_ALLREDUCE;
}

/* Make GPU host_index % (number of GPUs) current and set *grid to the grid every rank uses:
 * all CTAs of the ranks_on_host ranks sharing the GPUs must fit at once. Returns 0, or -1 with
 * why set ("no CUDA device: ..." or "CUDA setup: ..."). */
int harness_pick_device(int host_index, int ranks_on_host, int* grid, char* why, size_t size);

/* Zeroed memory shared with the processes forked after this call; NULL (after perror(who)) on
 * failure. */
void* harness_map_shared(size_t bytes, const char* who);

/* The topology of world ranks on one node with local tp size tp, resolved without a GPU. */
mixcomm_status_t harness_one_node(int world, int tp, mixcomm_topology_t* t);

/* Print "<prog>: bad argument <arg> [<value>]" and the usage; returns the exit status, 2. */
int harness_bad_argument(const char* prog, const char* arg, const char* value,
                         void (*usage)(void));

#endif
