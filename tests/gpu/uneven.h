/* SPDX-License-Identifier: Apache-2.0
 * Shared declarations of the uneven-rows tests of the GPU suite (uneven.c: the cases that must
 * succeed; uneven_errors.c: the calls that must be refused or fail). */
#ifndef MIXCOMM_TESTS_GPU_UNEVEN_H_
#define MIXCOMM_TESTS_GPU_UNEVEN_H_

#include <stddef.h>
#include <stdint.h>

#include "gpu/gpu_suite.h"

#define UV_MAX_ROWS 600 /* rows of the largest block of a case */
#define UV_MAX_ELEMS 7168
#define UV_GUARD_BYTES 4096 /* poisoned bytes past every output, checked after the call */

typedef struct uv_buffers {
  size_t in_cap, out_cap; /* bytes */
  char *in, *out, *out2;  /* device */
  int32_t* rows_dev;
  char *h_in, *h_peer, *h_out, *h_out2;
  double *ref, *abs;
  unsigned char* nz;
} uv_buffers_t;

/* Bytes of x_out past `written` that must still hold the poison. */
int uv_guard_intact(gpu_rank_t* g, const char* dev, size_t written, char* why, size_t n);

/* uneven_errors.c. Argument errors, before anything is enqueued. */
void uv_errors(gpu_rank_t* g, uv_buffers_t* b, mixcomm_op_t op);
/* A list that differs on the last world rank: MISMATCH naming it. Leaves the handler
 * unusable. */
void uv_mismatch(gpu_rank_t* g, uv_buffers_t* b, mixcomm_op_t op);
/* Across nodes, the last node's list differs: MISMATCH naming a rank of the other side. Leaves
 * the handler unusable. */
void uv_mismatch_nodes(gpu_rank_t* g, uv_buffers_t* b, mixcomm_op_t op);
/* A device count above max_rows: INVALID_ARGUMENT, nothing written. Leaves the handler
 * unusable. */
void uv_bad_count(gpu_rank_t* g, uv_buffers_t* b, mixcomm_op_t op);

#endif
