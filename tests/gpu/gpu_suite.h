/* SPDX-License-Identifier: Apache-2.0
 * Shared declarations of the GPU test suite (gpu_tests.c drives topologies, gpu_rank.c runs one
 * rank's tests, checked_case.c holds what the tests share). */
#ifndef MIXCOMM_TESTS_GPU_SUITE_H_
#define MIXCOMM_TESTS_GPU_SUITE_H_

#include <stdint.h>

#include <cuda_runtime_api.h>

#include "common/spawn.h"
#include "gpu/harness.h"
#include "mixcomm.h"

#define SLACK 256 /* bytes past cap_bytes in every test buffer, for offsets */

typedef struct gpu_options {
  mixcomm_dtype_t dtypes[3];
  int ndtypes;
  int quick;
  char only[32];
  int grid;
  int timeout_ms;
  int inter_tp[8]; /* --inter-tp: only these inter tp sizes (ninter_tp 0: every divisor) */
  int ninter_tp;
  int late_rank;   /* --late-rank: this world rank waits late_ms before each handler's first
                      call (-1: nobody), which the others' kernels must wait out */
  int late_ms;
} gpu_options_t;

typedef struct gpu_rank {
  const gpu_options_t* opt;
  spawn_rank_t spawn;
  int local_size, local_tp, inter_size, inter_tp;
  mixcomm_bootstrap_t* bs;
  mixcomm_handler_t* h;
  mixcomm_topology_t topo;
  mixcomm_dtype_t dtype;
  int grid;
  cudaStream_t stream;
  /* Device buffers (capacity cap_bytes each, plus 256 B of slack for offsets). */
  char *d_in, *d_out;
  size_t cap_bytes;
  /* Host buffers. */
  char *h_in, *h_out, *h_out2;
  double *ref, *abs_sum;
  unsigned char* neg_zero;
  int passed, failed;
  int dead; /* the handler hit an asynchronous error: skip to the next handler */
  int reuse_nvshmem; /* create handlers with should_init_nvshmem = 0 */
  int late_node_ms;  /* run_case: node 0's ranks wait this long before each call (0: none) */
} gpu_rank_t;

int gpu_rank_run(gpu_rank_t* g);

/* ---- what the tests share (checked_case.c) ------------------------------------------------ */

void failf(gpu_rank_t* g, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
int want(const gpu_rank_t* g, const char* test);
/* Stream-ordered copies and fills and the status of everything enqueued (CUDA and the
 * handler's). */
cudaError_t upload(gpu_rank_t* g, void* dst, const void* src, size_t bytes);
cudaError_t download(gpu_rank_t* g, void* dst, const void* src, size_t bytes);
cudaError_t fill(gpu_rank_t* g, void* dst, int value, size_t bytes);
mixcomm_status_t settle(gpu_rank_t* g, char* why, size_t size);

/* Every rank's report after a case. A report's first member is an int32 status (0 ok, > 0 a
 * mixcomm status: that rank's handler failed, < 0 a wrong result). */
typedef struct case_report {
  int32_t status; /* 0 ok, else a mixcomm status or -1 for a wrong result */
  int32_t dp_rank;
  uint64_t hash1, hash2;
} case_report_t;
/* Allgather every rank's report of `size` bytes (calloc'd array, world_size entries); marks
 * the handler dead if any rank's status is > 0. NULL (failed, handler dead) if the exchange
 * failed. */
void* exchange_reports(gpu_rank_t* g, const void* mine, size_t size, const char* tag,
                       const char* what);
/* Exchange reports; check repeatability and TP-group bitwise consistency; decide together
 * whether the handler is still usable. Returns 0 if every check passed on this rank. */
int agree(gpu_rank_t* g, const case_report_t* mine, mixcomm_op_t op, const char* what);
/* End of a test checked as a whole: count it if ok, and tell the other ranks (a failed test
 * fails every rank's agreement). */
void conclude_test(gpu_rank_t* g, int ok, const char* what);
/* One checked call: op/mode on rows_unit rows (input rows are dp*rows_unit for RS types). */
void run_case(gpu_rank_t* g, mixcomm_op_t op, mixcomm_mode_t mode, int64_t rows_unit,
              int64_t row_elems, uint64_t seed, unsigned specials, size_t in_off, size_t out_off);
/* Wrong elements of the n_out elements in g->h_out against the float64 reference of the call
 * (op on rows_in rows of elems from inputs of seed and specials); report says which. */
int64_t check_host_output(gpu_rank_t* g, mixcomm_op_t op, uint64_t seed, int64_t rows_in,
                          int64_t elems, unsigned specials, size_t n_out, char* report,
                          size_t size);
/* The same for the call's output at dev, downloaded into g->h_out first. */
int64_t check_device_output(gpu_rank_t* g, const void* dev, mixcomm_op_t op, uint64_t seed,
                            int64_t rows_in, int64_t elems, unsigned specials, char* report,
                            size_t size);
/* The handler's valid fused modes and ops, in enum order. */
int valid_fused_modes(const gpu_rank_t* g, mixcomm_mode_t* modes);
int valid_ops(const gpu_rank_t* g, mixcomm_op_t* ops);

/* A call that must fail with status and a message containing needle; counts a pass. */
#define EXPECT_ERR(call, status, needle)                                                       \
  do {                                                                                         \
    mixcomm_status_t st_ = (call);                                                             \
    if (st_ != (status) || strstr(mixcomm_last_error(), needle) == NULL)                       \
      failf(g, "%s: got %s \"%s\", expected %s containing \"%s\"", #call,                      \
            mixcomm_status_name(st_), mixcomm_last_error(), mixcomm_status_name(status), needle); \
    else                                                                                       \
      g->passed++;                                                                             \
  } while (0)

/* ---- the tests, in the order a handler runs them ------------------------------------------ */

/* calls.c: ops x fused modes x shapes; zero rows, one row, the smallest row; argument errors;
 * thousands of calls without synchronisation (ring wrap-around); CUDA graph replay; across
 * nodes the kernels' put count against the model. */
void test_matrix(gpu_rank_t* g);
void test_edge(gpu_rank_t* g);
void test_errors(gpu_rank_t* g);
void test_burst(gpu_rank_t* g);
void test_graph(gpu_rank_t* g);
void test_put_count(gpu_rank_t* g);

/* checkpoint.c: release and restore the workspace; across nodes, no stale signal after a
 * restore. */
void test_checkpoint(gpu_rank_t* g);
void test_checkpoint_signals(gpu_rank_t* g);

/* The fused epilogue (tests/gpu/epilogue.c): every op and fused mode, every output alone and
 * together, against a float64 reference; CUDA graph replay; argument errors. */
void test_epilogue(gpu_rank_t* g);

/* Uneven rows per DP rank (tests/gpu/uneven.c): host and device forms, every DP op and valid
 * mode, graphs with changing counts, mismatched lists, out-of-range device counts. Leaves the
 * handler unusable (g->dead) after its last check. */
void test_uneven(gpu_rank_t* g);

#endif
