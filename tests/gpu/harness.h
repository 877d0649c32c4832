/* SPDX-License-Identifier: Apache-2.0
 * Pieces shared by the GPU test programs that start their own ranks (mixcomm-fault-tests,
 * mixcomm-soak; the op classes and the clock also by mixcomm-gpu-tests): which ops gather or
 * scatter rows, the monotonic clock, the GPU and grid of a rank, memory shared between the parent and its forked ranks, a one-node
 * topology resolved without CUDA, and the message for a bad command-line argument. */
#ifndef MIXCOMM_TESTS_GPU_HARNESS_H_
#define MIXCOMM_TESTS_GPU_HARNESS_H_

#include <stddef.h>
#include <time.h>

#include "mixcomm.h"

/* Ops whose output is dp_size times their input (gather) or whose input is dp_size times their
 * output (scatter). */
static inline int is_gather(mixcomm_op_t op) {
  return op == MIXCOMM_OP_ALLGATHER || op == MIXCOMM_OP_ALLREDUCE_ALLGATHER;
}
static inline int is_scatter(mixcomm_op_t op) {
  return op == MIXCOMM_OP_REDUCESCATTER || op == MIXCOMM_OP_REDUCESCATTER_ALLREDUCE;
}

/* Seconds on the monotonic clock. */
static inline double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
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

/* One option of a test program's command line. */
enum harness_option_kind {
  HARNESS_FLAG,      /* no value: sets *value to 1 */
  HARNESS_STOP_FLAG, /* the same, and the arguments after it are not read (--list) */
  HARNESS_INT,       /* an integer in [lo, hi] (args_parse_int) into *value, dflt until given */
  HARNESS_VALUE      /* a value handed to the program's value function */
};
typedef struct harness_option {
  const char* name;
  enum harness_option_kind kind;
  int* value;
  int lo, hi, dflt;
} harness_option_t;

/* Read argv[1..argc) by the table options[0..n); a HARNESS_VALUE option's value goes to
 * value_fn(ctx, name, value), which returns 0 if it is good. Returns -1 when every argument
 * was taken; for an unknown argument, a missing value or a bad one, the exit status of
 * harness_bad_argument(prog, ..., usage). */
int harness_parse_args(int argc, char** argv, const harness_option_t* options, int n,
                       int (*value_fn)(void* ctx, const char* name, const char* value),
                       void* ctx, const char* prog, void (*usage)(void));

/* A comma-separated list (its first 127 characters) of at most max items, each read by
 * item(ctx, index, text), which returns 0 if it is good. Returns the number of items, or -1
 * if there is none, more than max, or a bad one. */
int harness_parse_list(const char* v, int max, int (*item)(void* ctx, int index, const char* text),
                       void* ctx);

#endif
