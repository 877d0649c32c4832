/* SPDX-License-Identifier: Apache-2.0
 * Tests of the public names and defaults: op, mode and dtype names and their parsing, status
 * names and strings, the version, and the config initializer. Expected names and defaults are
 * written out here. */
#include <stdio.h>
#include <string.h>

#include "harness/task.h"

/* ---------------------------------------------------------------------------------------- */
/* Names and status strings                                                                   */
/* ---------------------------------------------------------------------------------------- */

TEST_IMPL(core_names) {
  static const char* const ops[] = {"ALLREDUCE", "ALLGATHER", "REDUCESCATTER",
                                    "ALLREDUCE_ALLGATHER", "REDUCESCATTER_ALLREDUCE"};
  static const char* const modes[] = {
      "FUSED_OPT_WAITS_MC",  "FUSED_OPT_WAITS_UC", "FUSED_OPT_BYTES1_MC",
      "FUSED_OPT_BYTES1_UC", "FUSED_OPT_BYTES2_MC", "FUSED_OPT_BYTES2_UC",
      "NCCL_ONE",            "NCCL_TP_DP",          "AUTOTUNE"};
  static const char* const dtypes[] = {"float16", "bfloat16", "float32"};
  ASSERT_EQ(sizeof ops / sizeof ops[0], MIXCOMM_NUM_OPS);
  ASSERT_EQ(sizeof modes / sizeof modes[0], MIXCOMM_NUM_MODES);
  ASSERT_EQ(sizeof dtypes / sizeof dtypes[0], MIXCOMM_NUM_DTYPES);

  for (int i = 0; i < MIXCOMM_NUM_OPS; i++) {
    ASSERT_STR_EQ(mixcomm_op_name((mixcomm_op_t)i), ops[i]);
    mixcomm_op_t op = (mixcomm_op_t)-7;
    ASSERT_OK(mixcomm_op_from_name(ops[i], &op));
    ASSERT_EQ(op, i);
    char lower[64];
    snprintf(lower, sizeof lower, "%s", ops[i]);
    for (char* p = lower; *p; p++)
      *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
    op = (mixcomm_op_t)-7;
    ASSERT_OK(mixcomm_op_from_name(lower, &op));
    ASSERT_EQ(op, i);
  }
  for (int i = 0; i < MIXCOMM_NUM_MODES; i++) {
    ASSERT_STR_EQ(mixcomm_mode_name((mixcomm_mode_t)i), modes[i]);
    mixcomm_mode_t m = (mixcomm_mode_t)-7;
    ASSERT_OK(mixcomm_mode_from_name(modes[i], &m));
    ASSERT_EQ(m, i);
  }
  mixcomm_mode_t m = MIXCOMM_MODE_AUTOTUNE;
  ASSERT_OK(mixcomm_mode_from_name("nccl_tp_dp", &m));
  ASSERT_EQ(m, MIXCOMM_MODE_NCCL_TP_DP);
  ASSERT_OK(mixcomm_mode_from_name(mixcomm_mode_name(MIXCOMM_MODE_DEFAULT), &m));
  ASSERT_EQ(m, MIXCOMM_MODE_DEFAULT);
  for (int i = 0; i < MIXCOMM_NUM_DTYPES; i++) {
    ASSERT_STR_EQ(mixcomm_dtype_name((mixcomm_dtype_t)i), dtypes[i]);
    mixcomm_dtype_t d = (mixcomm_dtype_t)-7;
    ASSERT_OK(mixcomm_dtype_from_name(dtypes[i], &d));
    ASSERT_EQ(d, i);
  }
  static const struct {
    const char* alias;
    mixcomm_dtype_t dtype;
    size_t size;
  } aliases[] = {{"fp16", MIXCOMM_FLOAT16, 2},  {"FP16", MIXCOMM_FLOAT16, 2},
                 {"half", MIXCOMM_FLOAT16, 2},  {"bf16", MIXCOMM_BFLOAT16, 2},
                 {"BFloat16", MIXCOMM_BFLOAT16, 2}, {"fp32", MIXCOMM_FLOAT32, 4},
                 {"float", MIXCOMM_FLOAT32, 4}, {"Float32", MIXCOMM_FLOAT32, 4}};
  for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++) {
    mixcomm_dtype_t d = (mixcomm_dtype_t)-7;
    ASSERT_OK(mixcomm_dtype_from_name(aliases[i].alias, &d));
    ASSERT_EQ(d, aliases[i].dtype);
    ASSERT_EQ(mixcomm_dtype_size(d), aliases[i].size);
  }

  /* Unknown names fail, name themselves and leave the output alone. */
  static const char* const unknown[] = {"", "ALLREDUCE2", "ALL_REDUCE", " ALLREDUCE", "fp64",
                                        "int8", "FUSED_OPT_WAITS", "NCCL"};
  for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
    mixcomm_op_t op = (mixcomm_op_t)-7;
    mixcomm_mode_t md = (mixcomm_mode_t)-7;
    mixcomm_dtype_t d = (mixcomm_dtype_t)-7;
    ASSERT_EQ(mixcomm_op_from_name(unknown[i], &op), MIXCOMM_ERR_INVALID_ARGUMENT);
    ASSERT_EQ((int)op, -7);
    ASSERT_EQ(mixcomm_mode_from_name(unknown[i], &md), MIXCOMM_ERR_INVALID_ARGUMENT);
    ASSERT_EQ((int)md, -7);
    ASSERT_EQ(mixcomm_dtype_from_name(unknown[i], &d), MIXCOMM_ERR_INVALID_ARGUMENT);
    ASSERT_EQ((int)d, -7);
    char quoted[64];
    snprintf(quoted, sizeof quoted, "'%s'", unknown[i]);
    ASSERT_CONTAINS(mixcomm_last_error(), quoted);
  }
  mixcomm_op_t op;
  mixcomm_dtype_t d;
  ASSERT_EQ(mixcomm_op_from_name(NULL, &op), MIXCOMM_ERR_INVALID_ARGUMENT);
  ASSERT_EQ(mixcomm_mode_from_name(NULL, &m), MIXCOMM_ERR_INVALID_ARGUMENT);
  ASSERT_EQ(mixcomm_dtype_from_name(NULL, &d), MIXCOMM_ERR_INVALID_ARGUMENT);

  /* Out-of-range values have no name. */
  ASSERT(mixcomm_op_name((mixcomm_op_t)-1) == NULL);
  ASSERT(mixcomm_op_name(MIXCOMM_NUM_OPS) == NULL);
  ASSERT(mixcomm_mode_name(MIXCOMM_NUM_MODES) == NULL);
  ASSERT(mixcomm_mode_name((mixcomm_mode_t)-2) == NULL);
  ASSERT(mixcomm_dtype_name(MIXCOMM_NUM_DTYPES) == NULL);
  ASSERT(mixcomm_dtype_name((mixcomm_dtype_t)-1) == NULL);

  ASSERT_EQ(mixcomm_dtype_size(MIXCOMM_FLOAT16), 2);
  ASSERT_EQ(mixcomm_dtype_size(MIXCOMM_BFLOAT16), 2);
  ASSERT_EQ(mixcomm_dtype_size(MIXCOMM_FLOAT32), 4);
  ASSERT_EQ(mixcomm_dtype_size(MIXCOMM_NUM_DTYPES), 0);
  ASSERT_EQ(mixcomm_dtype_size((mixcomm_dtype_t)-1), 0);
  return 0;
}

TEST_IMPL(core_status_strings) {
  ASSERT_EQ(MIXCOMM_SUCCESS, 0);
  ASSERT_STR_EQ(mixcomm_status_name(MIXCOMM_SUCCESS), "MIXCOMM_SUCCESS");
  ASSERT_STR_EQ(mixcomm_status_name(MIXCOMM_ERR_TIMEOUT), "MIXCOMM_ERR_TIMEOUT");
  ASSERT_STR_EQ(mixcomm_status_name(MIXCOMM_ERR_INVALID_ARGUMENT),
                "MIXCOMM_ERR_INVALID_ARGUMENT");
  ASSERT(MIXCOMM_NUM_STATUS >= 14);
  for (int i = 0; i < MIXCOMM_NUM_STATUS; i++) {
    const char* s = mixcomm_status_string((mixcomm_status_t)i);
    const char* n = mixcomm_status_name((mixcomm_status_t)i);
    ASSERT(s != NULL && s[0] != '\0');
    ASSERT(n != NULL && strncmp(n, "MIXCOMM_", 8) == 0 && strlen(n) > 8);
    for (int j = 0; j < i; j++) {
      if (!strcmp(s, mixcomm_status_string((mixcomm_status_t)j)))
        FAIL("status %d and %d share the string \"%s\"", i, j, s);
      if (!strcmp(n, mixcomm_status_name((mixcomm_status_t)j)))
        FAIL("status %d and %d share the name \"%s\"", i, j, n);
    }
  }
  /* Unknown values still give text. */
  const char* s = mixcomm_status_string((mixcomm_status_t)999);
  ASSERT(s != NULL && s[0] != '\0');
  s = mixcomm_status_name((mixcomm_status_t)-5);
  ASSERT(s != NULL && s[0] != '\0');
  ASSERT_EQ(mixcomm_version(), MIXCOMM_VERSION_CODE);
  ASSERT_EQ(MIXCOMM_VERSION_CODE,
            MIXCOMM_VERSION_MAJOR * 10000 + MIXCOMM_VERSION_MINOR * 100 + MIXCOMM_VERSION_PATCH);
  /* A failed call leaves a message. */
  mixcomm_op_t op;
  ASSERT_EQ(mixcomm_op_from_name("nope", &op), MIXCOMM_ERR_INVALID_ARGUMENT);
  ASSERT(mixcomm_last_error() != NULL && mixcomm_last_error()[0] != '\0');
  return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Config initializer                                                                         */
/* ---------------------------------------------------------------------------------------- */

TEST_IMPL(core_config_initializer) {
  const mixcomm_config_t a = MIXCOMM_CONFIG_INITIALIZER;
  mixcomm_config_t b;
  memset(&b, 0xa5, sizeof b);
  mixcomm_config_init(&b);
#define SAME(field) ASSERT_EQ(a.field, b.field)
  SAME(struct_size);
  SAME(version);
  SAME(world_rank);
  SAME(world_size);
  SAME(local_rank);
  SAME(local_size);
  SAME(inter_rank);
  SAME(inter_size);
  SAME(local_tp_size);
  SAME(local_dp_size);
  SAME(inter_tp_size);
  SAME(inter_dp_size);
  SAME(dtype);
  SAME(device);
  SAME(grid_size);
  SAME(max_block_size);
  SAME(min_block_size);
  SAME(min_num_steps);
  SAME(ib_enable_ibgda);
  SAME(should_init_nvshmem);
  SAME(use_autotune);
  SAME(timeout_ms);
#undef SAME
  ASSERT(a.autotune_cache_dir == b.autotune_cache_dir);

  /* The defaults (FlashInfer MixedCommHandler's where it has the field). */
  ASSERT_EQ(a.struct_size, sizeof(mixcomm_config_t));
  ASSERT_EQ(a.version, MIXCOMM_VERSION_CODE);
  ASSERT_EQ(a.world_rank, 0);
  ASSERT_EQ(a.world_size, 1);
  ASSERT_EQ(a.local_rank, 0);
  ASSERT_EQ(a.local_size, 1);
  ASSERT_EQ(a.inter_rank, 0);
  ASSERT_EQ(a.inter_size, 1);
  ASSERT_EQ(a.local_tp_size, 0);
  ASSERT_EQ(a.local_dp_size, 0);
  ASSERT_EQ(a.inter_tp_size, 0);
  ASSERT_EQ(a.inter_dp_size, 0);
  ASSERT_EQ(a.dtype, MIXCOMM_BFLOAT16);
  ASSERT_EQ(a.device, -1);
  ASSERT_EQ(a.grid_size, 0);
  ASSERT_EQ(a.max_block_size, 0);
  ASSERT_EQ(a.min_block_size, 256);
  ASSERT_EQ(a.min_num_steps, 4);
  ASSERT_EQ(a.ib_enable_ibgda, 1);
  ASSERT_EQ(a.should_init_nvshmem, 1);
  ASSERT_EQ(a.use_autotune, 1);
  ASSERT_EQ(a.timeout_ms, 0);
  ASSERT(a.autotune_cache_dir == NULL);

  /* The default config is a valid one-rank job whose workspace can be planned. */
  mixcomm_workspace_plan_t plan;
  ASSERT_OK(mixcomm_workspace_plan(&a, 100, &plan));
  ASSERT_EQ(plan.grid_size, 100);
  mixcomm_config_init(NULL); /* no crash */
  return 0;
}
