/* SPDX-License-Identifier: Apache-2.0
 * Names of ops, modes and dtypes as FlashInfer's MixedCommHandler spells them, and their
 * inverse lookups. */
#include <stddef.h>
#include <strings.h>

#include "core/error.h"

static const char* const op_names[MIXCOMM_NUM_OPS] = {
    "ALLREDUCE", "ALLGATHER", "REDUCESCATTER", "ALLREDUCE_ALLGATHER", "REDUCESCATTER_ALLREDUCE"};

static const char* const mode_names[MIXCOMM_NUM_MODES] = {
    "FUSED_OPT_WAITS_MC",  "FUSED_OPT_WAITS_UC",  "FUSED_OPT_BYTES1_MC",
    "FUSED_OPT_BYTES1_UC", "FUSED_OPT_BYTES2_MC", "FUSED_OPT_BYTES2_UC",
    "NCCL_ONE",            "NCCL_TP_DP",          "AUTOTUNE"};

static const char* const dtype_names[MIXCOMM_NUM_DTYPES] = {"float16", "bfloat16", "float32"};

const char* mixcomm_op_name(mixcomm_op_t op) {
  return (op >= 0 && op < MIXCOMM_NUM_OPS) ? op_names[op] : NULL;
}

const char* mixcomm_mode_name(mixcomm_mode_t mode) {
  if (mode == MIXCOMM_MODE_DEFAULT)
    return "DEFAULT";
  return (mode >= 0 && mode < MIXCOMM_NUM_MODES) ? mode_names[mode] : NULL;
}

const char* mixcomm_dtype_name(mixcomm_dtype_t dtype) {
  return (dtype >= 0 && dtype < MIXCOMM_NUM_DTYPES) ? dtype_names[dtype] : NULL;
}

size_t mixcomm_dtype_size(mixcomm_dtype_t dtype) {
  switch (dtype) {
    case MIXCOMM_FLOAT16:
    case MIXCOMM_BFLOAT16:
      return 2;
    case MIXCOMM_FLOAT32:
      return 4;
    default:
      return 0;
  }
}

/* The error for a name that is none of its kind's; `expected` says what would have been. */
static mixcomm_status_t unknown_name(const char* kind, const char* name, const char* expected) {
  return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "unknown %s '%s' (expected %s)", kind,
                        name ? name : "(null)", expected);
}

/* *index = the position of name (any case) in names[0..n), else the error for a `kind` name. */
static mixcomm_status_t lookup(const char* kind, const char* name, const char* const* names, int n,
                               const char* expected, int* index) {
  for (int i = 0; name != NULL && i < n; i++) {
    if (!strcasecmp(name, names[i])) {
      *index = i;
      return MIXCOMM_SUCCESS;
    }
  }
  return unknown_name(kind, name, expected);
}

mixcomm_status_t mixcomm_op_from_name(const char* name, mixcomm_op_t* op) {
  int i = 0;
  MIXCOMM_CHECK(lookup("op", name, op_names, MIXCOMM_NUM_OPS,
                       "ALLREDUCE, ALLGATHER, REDUCESCATTER, ALLREDUCE_ALLGATHER or "
                       "REDUCESCATTER_ALLREDUCE",
                       &i));
  *op = (mixcomm_op_t)i;
  return MIXCOMM_SUCCESS;
}

mixcomm_status_t mixcomm_mode_from_name(const char* name, mixcomm_mode_t* mode) {
  if (name != NULL && !strcasecmp(name, "DEFAULT")) { /* not one of mode_names */
    *mode = MIXCOMM_MODE_DEFAULT;
    return MIXCOMM_SUCCESS;
  }
  int i = 0;
  MIXCOMM_CHECK(lookup("mode", name, mode_names, MIXCOMM_NUM_MODES,
                       "a mode name such as FUSED_OPT_WAITS_UC, NCCL_TP_DP, AUTOTUNE, or DEFAULT",
                       &i));
  *mode = (mixcomm_mode_t)i;
  return MIXCOMM_SUCCESS;
}

mixcomm_status_t mixcomm_dtype_from_name(const char* name, mixcomm_dtype_t* dtype) {
  static const struct {
    const char* name;
    mixcomm_dtype_t dtype;
  } aliases[] = {{"float16", MIXCOMM_FLOAT16}, {"fp16", MIXCOMM_FLOAT16},
                 {"half", MIXCOMM_FLOAT16},    {"bfloat16", MIXCOMM_BFLOAT16},
                 {"bf16", MIXCOMM_BFLOAT16},   {"float32", MIXCOMM_FLOAT32},
                 {"fp32", MIXCOMM_FLOAT32},    {"float", MIXCOMM_FLOAT32}};
  for (size_t i = 0; name != NULL && i < sizeof aliases / sizeof aliases[0]; i++) {
    if (!strcasecmp(name, aliases[i].name)) {
      *dtype = aliases[i].dtype;
      return MIXCOMM_SUCCESS;
    }
  }
  return unknown_name("dtype", name, "fp16, bf16 or fp32");
}
