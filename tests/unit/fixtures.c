/* SPDX-License-Identifier: Apache-2.0
 * The shared test inputs of tests/unit/fixtures.h. */
#include "fixtures.h"

#include <string.h>
#include <strings.h>

#include "harness/task.h"

/* A job's sizes, ranks and given tp/dp sizes: the same fields in a topology and a config. */
#define SET_JOB_FIELDS(s, W, L, rank, ltp, ldp, itp, idp) \
  do {                                                    \
    (s).world_size = (W);                                 \
    (s).local_size = (L);                                 \
    (s).inter_size = (W) / (L);                           \
    (s).world_rank = (rank);                              \
    (s).local_rank = (rank) % (L);                        \
    (s).inter_rank = (rank) / (L);                        \
    (s).local_tp_size = (ltp);                            \
    (s).local_dp_size = (ldp);                            \
    (s).inter_tp_size = (itp);                            \
    (s).inter_dp_size = (idp);                            \
  } while (0)

void expect_argument_check(size_t index, mixcomm_status_t st, const char* needle) {
  if (needle == NULL && st != MIXCOMM_SUCCESS)
    FAIL("case %zu: %s (%s), expected success", index, mixcomm_status_name(st),
         mixcomm_last_error());
  if (needle != NULL &&
      (st != MIXCOMM_ERR_INVALID_ARGUMENT || strstr(mixcomm_last_error(), needle) == NULL))
    FAIL("case %zu: %s (%s), expected MIXCOMM_ERR_INVALID_ARGUMENT naming \"%s\"", index,
         mixcomm_status_name(st), mixcomm_last_error(), needle);
}

int contains_ci(const char* hay, const char* needle) {
  if (hay == NULL)
    return 0;
  size_t n = strlen(needle);
  for (const char* p = hay; *p != '\0'; p++)
    if (strncasecmp(p, needle, n) == 0)
      return 1;
  return 0;
}

mixcomm_topology_t resolved_topology(int world_size, int local_size, int ltp, int ldp, int itp,
                                     int idp) {
  mixcomm_topology_t t = {0};
  SET_JOB_FIELDS(t, world_size, local_size, 0, ltp, ldp, itp, idp);
  mixcomm_status_t st = mixcomm_topology_resolve(&t, &t);
  if (st != MIXCOMM_SUCCESS)
    FAIL("topology %d/%d %d,%d,%d,%d: %s: %s", world_size, local_size, ltp, ldp, itp, idp,
         mixcomm_status_name(st), mixcomm_last_error());
  return t;
}

mixcomm_topology_t tp_topology(int world_size, int local_size, int ltp, int itp) {
  return resolved_topology(world_size, local_size, ltp, 0, itp, 0);
}

int level_forms(int n, level_form_t* f) {
  int k = 0;
  f[k++] = (level_form_t){0, 0, n, 1};
  for (int d = 1; d <= n; d++) {
    if (n % d != 0)
      continue;
    f[k++] = (level_form_t){d, n / d, d, n / d};
    f[k++] = (level_form_t){d, 0, d, n / d};
    f[k++] = (level_form_t){0, d, n / d, d};
  }
  return k;
}

mixcomm_topology_t topology_input(int world_size, int local_size, int world_rank,
                                  const level_form_t* lf, const level_form_t* inf) {
  mixcomm_topology_t t;
  memset(&t, 0x7b, sizeof t); /* derived fields must be overwritten, not trusted */
  SET_JOB_FIELDS(t, world_size, local_size, world_rank, lf->tp_in, lf->dp_in, inf->tp_in,
                 inf->dp_in);
  return t;
}

void for_each_topology_form(int max_world, topology_form_fn fn, void* ctx) {
  static level_form_t lforms[MAX_FORMS], iforms[MAX_FORMS];
  for (int W = 1; W <= max_world; W++) {
    for (int L = 1; L <= W; L++) {
      if (W % L != 0)
        continue;
      const int nl = level_forms(L, lforms), ni = level_forms(W / L, iforms);
      for (int a = 0; a < nl; a++)
        for (int b = 0; b < ni; b++)
          fn(W, L, &lforms[a], a, &iforms[b], b, ctx);
    }
  }
}

mixcomm_config_t plan_config(int W, int L, int ltp, int ldp, int itp, int idp, int rank,
                             mixcomm_dtype_t dtype, int grid, int max_block, int min_block) {
  mixcomm_config_t c = MIXCOMM_CONFIG_INITIALIZER;
  SET_JOB_FIELDS(c, W, L, rank, ltp, ldp, itp, idp);
  c.dtype = dtype;
  c.grid_size = grid;
  c.max_block_size = max_block;
  c.min_block_size = min_block;
  return c;
}

void base_key_case(key_case_t* k) {
  memset(k, 0, sizeof *k);
  k->topo = resolved_topology(16, 8, 4, 2, 2, 1);
  k->f.topo = &k->topo;
  k->f.dtype = MIXCOMM_BFLOAT16;
  k->f.gpu_name = "NVIDIA H100 80GB HBM3";
  k->f.driver_version = 13000;
  k->f.library_version = 100;
  k->f.grid_size = 132;
  k->f.max_block_size = 1024;
  k->f.min_block_size = 256;
  k->f.min_num_steps = 4;
  k->f.ranks_share_gpu = 0;
  k->f.valid_modes_mask = 0x1aa;
}

void key_text(key_case_t* k, mixcomm__tune_key_t* key) {
  k->f.topo = &k->topo;
  memset(key->text, 'Z', sizeof key->text);
  mixcomm__tune_key(&k->f, key);
}

uint64_t rng_next(test_rng_t* r) {
  r->state ^= r->state << 13;
  r->state ^= r->state >> 7;
  r->state ^= r->state << 17;
  return r->state;
}

int64_t rng_range(test_rng_t* r, int64_t lo, int64_t hi) {
  return lo + (int64_t)(rng_next(r) % (uint64_t)(hi - lo + 1));
}
