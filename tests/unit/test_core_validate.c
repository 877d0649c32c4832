/* SPDX-License-Identifier: Apache-2.0
 * Tests of the run-argument checks (mixcomm__validate_run): ops valid for the topology, row
 * shapes, output sizes, pointers (NULL, alignment, overlap) and overflow, on fake device
 * addresses. Expected sizes are computed here from the op's definition. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/validate.h"
#include "fixtures.h"
#include "harness/task.h"

/* ---------------------------------------------------------------------------------------- */
/* Run validation                                                                             */
/* ---------------------------------------------------------------------------------------- */

typedef struct named_topology {
  const char* name;
  int W, L, ltp, ldp, itp, idp;
} named_topology_t;

static const named_topology_t kTopos[] = {
    {"pure TP", 4, 4, 0, 0, 0, 0},        {"pure DP", 4, 4, 1, 0, 0, 0},
    {"mixed", 8, 4, 2, 0, 0, 0},          {"world 1", 1, 1, 0, 0, 0, 0},
    {"mixed 2 nodes", 12, 6, 3, 0, 0, 0}, {"dp across nodes", 8, 2, 2, 0, 1, 0},
};
#define NUM_TOPOS ((int)(sizeof kTopos / sizeof kTopos[0]))

static mixcomm_topology_t topo_of(const named_topology_t* n) {
  return resolved_topology(n->W, n->L, n->ltp, n->ldp, n->itp, n->idp);
}

static int is_gather(int op) {
  return op == MIXCOMM_OP_ALLGATHER || op == MIXCOMM_OP_ALLREDUCE_ALLGATHER;
}
static int is_scatter(int op) {
  return op == MIXCOMM_OP_REDUCESCATTER || op == MIXCOMM_OP_REDUCESCATTER_ALLREDUCE;
}

TEST_IMPL(core_validate_op) {
  mixcomm__run_shape_t shape;
  const void* in = ADDR(BASE);
  void* out = ADDR(BASE + (1 << 20));
  static const struct {
    int topo; /* index into kTopos */
    mixcomm_dtype_t dtype;
    int op;
    const char* needles[3]; /* the message names each of them */
  } refused[] = {
      /* Pure TP: only ALLREDUCE; the message names the op and the valid one. */
      {0, MIXCOMM_FLOAT16, MIXCOMM_OP_ALLGATHER, {"ALLGATHER", "ALLREDUCE", NULL}},
      {0, MIXCOMM_FLOAT16, MIXCOMM_OP_REDUCESCATTER_ALLREDUCE,
       {"REDUCESCATTER_ALLREDUCE", "tp_size=4", NULL}},
      /* Pure DP: the valid ops are listed. */
      {1, MIXCOMM_FLOAT16, MIXCOMM_OP_ALLREDUCE, {"ALLGATHER", "REDUCESCATTER", "dp_size=4"}},
      /* Mixed: both fused ops listed. */
      {2, MIXCOMM_FLOAT16, MIXCOMM_OP_ALLREDUCE,
       {"ALLREDUCE_ALLGATHER", "REDUCESCATTER_ALLREDUCE", NULL}},
      {2, MIXCOMM_FLOAT16, MIXCOMM_OP_ALLGATHER, {"ALLREDUCE_ALLGATHER", NULL, NULL}},
      /* Not ops at all; not a dtype. */
      {2, MIXCOMM_FLOAT16, 5, {"op=5", NULL, NULL}},
      {2, MIXCOMM_FLOAT16, -1, {"op=-1", NULL, NULL}},
      {2, (mixcomm_dtype_t)9, MIXCOMM_OP_ALLREDUCE_ALLGATHER, {"dtype=9", NULL, NULL}},
  };
  mixcomm_topology_t t;
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
    t = topo_of(&kTopos[refused[i].topo]);
    mixcomm_status_t st = mixcomm__validate_run(&t, refused[i].dtype, (mixcomm_op_t)refused[i].op,
                                                in, out, 4, 8, &shape);
    if (st != MIXCOMM_ERR_INVALID_ARGUMENT)
      FAIL("case %zu: %s (%s), expected MIXCOMM_ERR_INVALID_ARGUMENT", i,
           mixcomm_status_name(st), mixcomm_last_error());
    for (int k = 0; k < 3; k++)
      if (refused[i].needles[k] != NULL)
        ASSERT_CONTAINS(mixcomm_last_error(), refused[i].needles[k]);
  }
  /* Every (topology, op) pair: accepted exactly when the op table says the op is valid. */
  for (int k = 0; k < NUM_TOPOS; k++) {
    t = topo_of(&kTopos[k]);
    const int tp = t.tp_size, dp = t.dp_size;
    for (int op = 0; op < MIXCOMM_NUM_OPS; op++) {
      const int valid = op == MIXCOMM_OP_ALLREDUCE ? dp == 1
                        : (op == MIXCOMM_OP_ALLGATHER || op == MIXCOMM_OP_REDUCESCATTER)
                            ? tp == 1
                            : tp > 1 && dp > 1;
      mixcomm_status_t st = mixcomm__validate_run(&t, MIXCOMM_FLOAT32, (mixcomm_op_t)op, in,
                                                  out, (int64_t)dp * 2, 4, &shape);
      if ((st == MIXCOMM_SUCCESS) != valid)
        FAIL("%s op %d: %s (%s)", kTopos[k].name, op, mixcomm_status_name(st),
             mixcomm_last_error());
      if (!valid)
        ASSERT_CONTAINS(mixcomm_last_error(), mixcomm_op_name((mixcomm_op_t)op));
    }
  }
  return 0;
}

TEST_IMPL(core_validate_shapes) {
  mixcomm__run_shape_t shape;
  /* Row bytes must be whole 16-byte vectors, for every dtype. */
  mixcomm_topology_t t = topo_of(&kTopos[0]);
  for (int d = 0; d < MIXCOMM_NUM_DTYPES; d++) {
    const int64_t esize = d == MIXCOMM_FLOAT32 ? 4 : 2;
    for (int64_t re = 1; re <= 80; re++) {
      const void* in = ADDR(BASE);
      void* out = ADDR(BASE + (1 << 20));
      mixcomm_status_t st = mixcomm__validate_run(&t, (mixcomm_dtype_t)d, MIXCOMM_OP_ALLREDUCE,
                                                  in, out, 3, re, &shape);
      const int ok = (re * esize) % 16 == 0;
      if ((st == MIXCOMM_SUCCESS) != ok)
        FAIL("dtype %d, row_elems %lld: %s (%s)", d, (long long)re, mixcomm_status_name(st),
             mixcomm_last_error());
      if (!ok) {
        char needle[32];
        snprintf(needle, sizeof needle, "row_elems=%lld", (long long)re);
        ASSERT_CONTAINS(mixcomm_last_error(), needle);
      }
    }
  }
  const void* in = ADDR(BASE);
  void* out = ADDR(BASE + (1 << 24));
  ASSERT_OK(mixcomm__validate_run(&t, MIXCOMM_FLOAT32, MIXCOMM_OP_ALLREDUCE, in, out, 1, 4,
                                  &shape));
  ASSERT_ERR(mixcomm__validate_run(&t, MIXCOMM_FLOAT32, MIXCOMM_OP_ALLREDUCE, in, out, 1, 2,
                                   &shape),
             MIXCOMM_ERR_INVALID_ARGUMENT, "row_elems=2");
  ASSERT_OK(mixcomm__validate_run(&t, MIXCOMM_FLOAT16, MIXCOMM_OP_ALLREDUCE, in, out, 1, 8,
                                  &shape));
  ASSERT_ERR(mixcomm__validate_run(&t, MIXCOMM_FLOAT16, MIXCOMM_OP_ALLREDUCE, in, out, 1, 12,
                                   &shape),
             MIXCOMM_ERR_INVALID_ARGUMENT, "row_elems=12");
  ASSERT_ERR(mixcomm__validate_run(&t, MIXCOMM_BFLOAT16, MIXCOMM_OP_ALLREDUCE, in, out, 1, 12,
                                   &shape),
             MIXCOMM_ERR_INVALID_ARGUMENT, "row_elems=12");
  /* rows < 0, row_elems < 1. */
  ASSERT_ERR(mixcomm__validate_run(&t, MIXCOMM_FLOAT16, MIXCOMM_OP_ALLREDUCE, in, out, -1, 8,
                                   &shape),
             MIXCOMM_ERR_INVALID_ARGUMENT, "rows=-1");
  ASSERT_ERR(mixcomm__validate_run(&t, MIXCOMM_FLOAT16, MIXCOMM_OP_ALLREDUCE, in, out, 4, 0,
                                   &shape),
             MIXCOMM_ERR_INVALID_ARGUMENT, "row_elems=0");
  ASSERT_ERR(mixcomm__validate_run(&t, MIXCOMM_FLOAT16, MIXCOMM_OP_ALLREDUCE, in, out, 4, -8,
                                   &shape),
             MIXCOMM_ERR_INVALID_ARGUMENT, "row_elems=-8");

  /* RS-type ops need rows divisible by dp_size. */
  t = topo_of(&kTopos[1]); /* dp 4 */
  ASSERT_ERR(mixcomm__validate_run(&t, MIXCOMM_FLOAT16, MIXCOMM_OP_REDUCESCATTER, in, out, 6, 8,
                                   &shape),
             MIXCOMM_ERR_INVALID_ARGUMENT, "rows=6");
  ASSERT_CONTAINS(mixcomm_last_error(), "dp_size=4");
  ASSERT_OK(mixcomm__validate_run(&t, MIXCOMM_FLOAT16, MIXCOMM_OP_REDUCESCATTER, in, out, 8, 8,
                                  &shape));
  ASSERT_OK(mixcomm__validate_run(&t, MIXCOMM_FLOAT16, MIXCOMM_OP_ALLGATHER, in, out, 3, 8,
                                  &shape));
  t = topo_of(&kTopos[2]); /* tp 4 x dp 2 */
  ASSERT_ERR(mixcomm__validate_run(&t, MIXCOMM_FLOAT16, MIXCOMM_OP_REDUCESCATTER_ALLREDUCE, in,
                                   out, 3, 8, &shape),
             MIXCOMM_ERR_INVALID_ARGUMENT, "rows=3");
  ASSERT_OK(mixcomm__validate_run(&t, MIXCOMM_FLOAT16, MIXCOMM_OP_ALLREDUCE_ALLGATHER, in, out,
                                  3, 8, &shape));

  /* Output rows and byte counts, every topology, op, dtype and a few row counts. */
  for (int k = 0; k < NUM_TOPOS; k++) {
    t = topo_of(&kTopos[k]);
    const int dp = t.dp_size;
    for (int op = 0; op < MIXCOMM_NUM_OPS; op++) {
      if (!mixcomm_topology_op_valid(&t, (mixcomm_op_t)op))
        continue;
      for (int d = 0; d < MIXCOMM_NUM_DTYPES; d++) {
        const int64_t esize = d == MIXCOMM_FLOAT32 ? 4 : 2;
        for (int64_t rows = 0; rows <= 5 * dp; rows += dp) {
          const int64_t re = 16 / esize * 3;
          memset(&shape, 0x6d, sizeof shape);
          ASSERT_OK(mixcomm__validate_run(&t, (mixcomm_dtype_t)d, (mixcomm_op_t)op, in, out,
                                          rows, re, &shape));
          const int64_t out_rows = is_gather(op) ? rows * dp : is_scatter(op) ? rows / dp : rows;
          const int64_t block_rows = is_scatter(op) ? out_rows : rows;
          if (shape.out_rows != out_rows || shape.in_bytes != (uint64_t)(rows * re * esize) ||
              shape.out_bytes != (uint64_t)(out_rows * re * esize) ||
              shape.numel_block != block_rows * re)
            FAIL("%s %s rows %lld: out_rows %lld in %llu out %llu numel_block %lld", kTopos[k].name,
                 mixcomm_op_name((mixcomm_op_t)op), (long long)rows, (long long)shape.out_rows,
                 (unsigned long long)shape.in_bytes, (unsigned long long)shape.out_bytes,
                 (long long)shape.numel_block);
        }
      }
    }
  }
  return 0;
}

TEST_IMPL(core_validate_pointers) {
  mixcomm__run_shape_t shape;
  for (int k = 0; k < NUM_TOPOS; k++) {
    mixcomm_topology_t t = topo_of(&kTopos[k]);
    const int dp = t.dp_size;
    for (int op = 0; op < MIXCOMM_NUM_OPS; op++) {
      if (!mixcomm_topology_op_valid(&t, (mixcomm_op_t)op))
        continue;
      const mixcomm_op_t o = (mixcomm_op_t)op;
      const int64_t rows = 2 * dp, re = 64; /* fp32: 256 bytes per row */
      const uintptr_t ib = (uintptr_t)rows * re * 4;
      const uintptr_t ob = (uintptr_t)(is_gather(op)    ? rows * dp
                                       : is_scatter(op) ? rows / dp
                                                        : rows) *
                           re * 4;
      const uintptr_t in = BASE;
      /* NULL with rows > 0 fails; with rows == 0 it is fine. */
      ASSERT_ERR(mixcomm__validate_run(&t, MIXCOMM_FLOAT32, o, NULL, ADDR(in + ib), rows, re,
                                       &shape),
                 MIXCOMM_ERR_INVALID_ARGUMENT, "x_in");
      ASSERT_ERR(mixcomm__validate_run(&t, MIXCOMM_FLOAT32, o, ADDR(in), NULL, rows, re, &shape),
                 MIXCOMM_ERR_INVALID_ARGUMENT, "x_out");
      ASSERT_ERR(mixcomm__validate_run(&t, MIXCOMM_FLOAT32, o, NULL, NULL, dp, re, &shape),
                 MIXCOMM_ERR_INVALID_ARGUMENT, "NULL");
      ASSERT_ERR(mixcomm__validate_run(&t, MIXCOMM_FLOAT32, o, ADDR(in + 8), ADDR(in + 4 * ib),
                                       dp, re, &shape),
                 MIXCOMM_ERR_INVALID_ARGUMENT, "x_in");
      ASSERT_OK(mixcomm__validate_run(&t, MIXCOMM_FLOAT32, o, NULL, NULL, 0, re, &shape));
      ASSERT_EQ(shape.out_rows, 0);
      ASSERT_EQ(shape.in_bytes, 0);
      ASSERT_EQ(shape.out_bytes, 0);
      /* Misalignment by 1, 2, 4, 8 bytes of either pointer. */
      static const int offs[] = {1, 2, 4, 8, 12};
      for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
        const uintptr_t far = in + 4 * (ib + ob) + 4096;
        ASSERT_ERR(mixcomm__validate_run(&t, MIXCOMM_FLOAT32, o, ADDR(in + offs[i]), ADDR(far),
                                         rows, re, &shape),
                   MIXCOMM_ERR_INVALID_ARGUMENT, "x_in");
        ASSERT_CONTAINS(mixcomm_last_error(), "16");
        ASSERT_ERR(mixcomm__validate_run(&t, MIXCOMM_FLOAT32, o, ADDR(in), ADDR(far + offs[i]),
                                         rows, re, &shape),
                   MIXCOMM_ERR_INVALID_ARGUMENT, "x_out");
        ASSERT_CONTAINS(mixcomm_last_error(), "16");
      }
      /* Overlaps: identical, out starting inside in, out ending inside in, one inside the
       * other. */
      const uintptr_t overlapping[] = {in, in + ib - 16, in - ob + 16, in + 16, in - 16};
      for (size_t i = 0; i < sizeof overlapping / sizeof overlapping[0]; i++) {
        mixcomm_status_t st = mixcomm__validate_run(&t, MIXCOMM_FLOAT32, o, ADDR(in),
                                                    ADDR(overlapping[i]), rows, re, &shape);
        if (st != MIXCOMM_ERR_INVALID_ARGUMENT || !contains_ci(mixcomm_last_error(), "overlap"))
          FAIL("%s %s: out at in%+lld: %s (%s), expected an overlap error", kTopos[k].name,
               mixcomm_op_name(o), (long long)(overlapping[i] - in), mixcomm_status_name(st),
               mixcomm_last_error());
      }
      /* Adjacent buffers, both orders: accepted. */
      ASSERT_OK(mixcomm__validate_run(&t, MIXCOMM_FLOAT32, o, ADDR(in), ADDR(in + ib), rows, re,
                                      &shape));
      ASSERT_OK(mixcomm__validate_run(&t, MIXCOMM_FLOAT32, o, ADDR(in), ADDR(in - ob), rows, re,
                                      &shape));
      /* Real host buffers as well. */
      unsigned char* buf = aligned_alloc(16, (size_t)(ib + ob + 64));
      ASSERT(buf != NULL);
      ASSERT_OK(mixcomm__validate_run(&t, MIXCOMM_FLOAT32, o, buf, buf + ib, rows, re, &shape));
      ASSERT_EQ(mixcomm__validate_run(&t, MIXCOMM_FLOAT32, o, buf, buf + ib - 16, rows, re,
                                      &shape),
                MIXCOMM_ERR_INVALID_ARGUMENT);
      free(buf);
    }
  }
  return 0;
}

TEST_IMPL(core_validate_overflow) {
  mixcomm__run_shape_t shape;
  const void* in = ADDR(BASE);
  void* out = ADDR(BASE * 2);
  mixcomm_topology_t t = topo_of(&kTopos[0]);
  /* rows x row bytes overflows int64. */
  ASSERT_EQ(mixcomm__validate_run(&t, MIXCOMM_FLOAT32, MIXCOMM_OP_ALLREDUCE, in, out,
                                  INT64_MAX / 8, 64, &shape),
            MIXCOMM_ERR_INVALID_ARGUMENT);
  ASSERT_CONTAINS(mixcomm_last_error(), "rows=");
  /* row_elems x element size overflows. */
  ASSERT_EQ(mixcomm__validate_run(&t, MIXCOMM_FLOAT32, MIXCOMM_OP_ALLREDUCE, in, out, 1,
                                  INT64_MAX / 2 + 1, &shape),
            MIXCOMM_ERR_INVALID_ARGUMENT);
  /* rows x dp_size overflows for a gather. */
  t = topo_of(&kTopos[1]);
  ASSERT_EQ(mixcomm__validate_run(&t, MIXCOMM_FLOAT16, MIXCOMM_OP_ALLGATHER, in, out,
                                  INT64_MAX / 2 + 1, 8, &shape),
            MIXCOMM_ERR_INVALID_ARGUMENT);
  ASSERT_EQ(mixcomm__validate_run(&t, MIXCOMM_FLOAT16, MIXCOMM_OP_ALLGATHER, in, out,
                                  INT64_MAX / 64, 8, &shape),
            MIXCOMM_ERR_INVALID_ARGUMENT);
  /* A large but representable call passes. */
  ASSERT_OK(mixcomm__validate_run(&t, MIXCOMM_FLOAT16, MIXCOMM_OP_ALLGATHER, in, out,
                                  (int64_t)1 << 20, 8, &shape));
  ASSERT_EQ(shape.out_rows, (int64_t)4 << 20);
  return 0;
}
