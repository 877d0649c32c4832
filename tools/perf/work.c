/* SPDX-License-Identifier: Apache-2.0
 * What one mixcomm-perf run measures (work.h): the ops and modes asked for, against what the
 * handler allows, agreed by every rank before the first case. */
#include "perf/work.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* A refusal that is the same on every rank: rank 0 says it, every rank fails the run. -1. */
static int refuse(perf_ctx_t* c, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
static int refuse(perf_ctx_t* c, const char* fmt, ...) {
  if (c->rank == 0) {
    va_list ap;
    va_start(ap, fmt);
    perf_vmsg_fail(c, fmt, ap);
    va_end(ap);
  }
  c->failed = 1;
  return -1;
}

int perf_select_work(perf_ctx_t* c, mixcomm_op_t* ops, int* n_ops, mixcomm_mode_t* modes,
                     int* n_modes) {
  const perf_options_t* o = c->o;
  mixcomm_op_t valid_ops[MIXCOMM_NUM_OPS];
  mixcomm_mode_t valid_modes[MIXCOMM_NUM_MODES];
  int nvo = 0, nvm = 0;
  mixcomm_status_t st = mixcomm_get_valid_op_list(c->h, valid_ops, MIXCOMM_NUM_OPS, &nvo);
  if (st == MIXCOMM_SUCCESS)
    st = mixcomm_get_valid_mode_list(c->h, valid_modes, MIXCOMM_NUM_MODES, &nvm);
  if (st != MIXCOMM_SUCCESS) {
    perf_lib_fail(c, "listing the valid ops and modes", st);
    return -1;
  }
  if (nvo > MIXCOMM_NUM_OPS)
    nvo = MIXCOMM_NUM_OPS;
  if (nvm > MIXCOMM_NUM_MODES)
    nvm = MIXCOMM_NUM_MODES;
  *n_ops = 0;
  if (o->op_all) {
    for (int i = 0; i < nvo; i++)
      ops[(*n_ops)++] = valid_ops[i];
  }
  for (int i = 0; i < o->n_ops; i++) {
    int valid = 0, dup = 0;
    for (int k = 0; k < nvo; k++)
      valid |= valid_ops[k] == o->ops[i];
    for (int k = 0; k < *n_ops; k++)
      dup |= ops[k] == o->ops[i];
    if (!valid)
      return refuse(c, "op %s is not valid for this handler", mixcomm_op_name(o->ops[i]));
    if (!dup)
      ops[(*n_ops)++] = o->ops[i];
  }
  *n_modes = 0;
  if (o->mode_all) {
    for (int i = 0; i < nvm; i++)
      if (valid_modes[i] >= MIXCOMM_MODE_FUSED_OPT_WAITS_MC &&
          valid_modes[i] <= MIXCOMM_MODE_FUSED_OPT_BYTES2_UC)
        modes[(*n_modes)++] = valid_modes[i];
  }
  for (int i = 0; i < o->n_modes; i++) {
    const mixcomm_mode_t m = o->modes[i];
    int dup = 0;
    for (int k = 0; k < *n_modes; k++)
      dup |= modes[k] == m;
    if (dup)
      continue;
    if (m != MIXCOMM_MODE_DEFAULT) {
      const char* why = mixcomm_mode_invalid_reason(c->h, m);
      if (why != NULL)
        return refuse(c, "mode %s is not valid here: %s", mixcomm_mode_name(m), why);
    }
    if (*n_modes < PERF_MAX_MODES)
      modes[(*n_modes)++] = m;
  }
  if (*n_modes == 0)
    return refuse(c, "no mode to run (no fused mode is valid here; name one with -m)");
  /* Every rank must run the same list. */
  uint64_t sig = 0;
  for (int i = 0; i < *n_ops; i++)
    sig = sig * 31 + (uint64_t)ops[i] + 1;
  for (int i = 0; i < *n_modes; i++)
    sig = sig * 37 + (uint64_t)(modes[i] + 2);
  uint64_t* all = calloc((size_t)c->world, sizeof *all);
  if (all == NULL) {
    perf_msg_fail(c, "out of host memory");
    return -1;
  }
  st = mixcomm__bs_allgather(c->bs, &sig, all, sizeof sig, "agreeing on the work list");
  if (st != MIXCOMM_SUCCESS) {
    free(all);
    perf_lib_fail(c, "agreeing on the work list", st);
    return -1;
  }
  for (int i = 0; i < c->world; i++) {
    if (all[i] != sig) {
      fprintf(stderr,
              PERF_TOOL ": rank %d: rank %d would run other ops or modes than this rank\n",
              c->rank, i);
      free(all);
      c->failed = 1;
      return -1;
    }
  }
  free(all);
  return 0;
}
