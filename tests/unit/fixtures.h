/* SPDX-License-Identifier: Apache-2.0
 * Inputs that several unit test files build the same way (tests/unit/fixtures.c): resolved
 * topologies and the sweep over every way of describing one, workspace-plan configs, the
 * reference autotune key, fake device addresses and a seeded random number generator. */
#ifndef MIXCOMM_TEST_FIXTURES_H_
#define MIXCOMM_TEST_FIXTURES_H_

#include <stddef.h>
#include <stdint.h>

#include "mixcomm.h"
#include "tune/tune.h"

/* Fake device addresses: validation never dereferences them. */
#define ADDR(x) ((void*)(uintptr_t)(x))
static const uintptr_t BASE = (uintptr_t)1 << 40;

/* Case `index` of a table of argument checks: st must be MIXCOMM_SUCCESS where needle is NULL,
 * else MIXCOMM_ERR_INVALID_ARGUMENT with a last error containing needle. */
void expect_argument_check(size_t index, mixcomm_status_t st, const char* needle);

/* Whether hay contains needle, ignoring case (NULL hay: no). */
int contains_ci(const char* hay, const char* needle);

/* ---------------------------------------------------------------------------------------- */
/* Topologies                                                                                */
/* ---------------------------------------------------------------------------------------- */

/* The topology of world_size ranks, local_size per node, with the tp/dp sizes given (0 = not
 * given), resolved from rank 0's view; fails the test if it does not resolve. */
mixcomm_topology_t resolved_topology(int world_size, int local_size, int ltp, int ldp, int itp,
                                     int idp);

/* The same with only the tp sizes given inside and across nodes (0 = not given); the dp sizes
 * follow from them. */
mixcomm_topology_t tp_topology(int world_size, int local_size, int ltp, int itp);

/* One way of describing a level (node or inter-node) of n ranks: the tp/dp sizes passed in
 * (0 = not given) and the sizes the default rules give for them. */
typedef struct level_form {
  int tp_in, dp_in;
  int tp, dp;
} level_form_t;

#define MAX_FORMS (1 + 3 * 64)

/* Every form for a level of n ranks (at most MAX_FORMS, n <= 64): neither given; and for each
 * divisor d of n, both given (d, n/d), only tp given (d), only dp given (d). */
int level_forms(int n, level_form_t* f);

/* The unresolved input of world rank world_rank for a job of world_size ranks, local_size per
 * node, described by lf inside a node and inf across nodes; the derived fields hold garbage
 * that resolving must overwrite. */
mixcomm_topology_t topology_input(int world_size, int local_size, int world_rank,
                                  const level_form_t* lf, const level_form_t* inf);

/* One description of a job: W ranks, L per node, form lf (index a) inside a node and inf
 * (index b) across nodes. */
typedef void (*topology_form_fn)(int W, int L, const level_form_t* lf, int a,
                                 const level_form_t* inf, int b, void* ctx);

/* Calls fn for every world size 1..max_world, every local size dividing it and every form of
 * both levels. */
void for_each_topology_form(int max_world, topology_form_fn fn, void* ctx);

/* ---------------------------------------------------------------------------------------- */
/* Workspace plans                                                                           */
/* ---------------------------------------------------------------------------------------- */

/* The config of world rank `rank` of a job of W ranks, L per node, with the given tp/dp sizes
 * (0 = not given), dtype and launch limits; everything else the initializer's. */
mixcomm_config_t plan_config(int W, int L, int ltp, int ldp, int itp, int idp, int rank,
                             mixcomm_dtype_t dtype, int grid, int max_block, int min_block);

/* ---------------------------------------------------------------------------------------- */
/* Autotune keys                                                                             */
/* ---------------------------------------------------------------------------------------- */

/* The inputs of an autotune key, with the topology they point to. */
typedef struct key_case {
  mixcomm_topology_t topo;
  mixcomm__tune_key_fields_t f;
} key_case_t;

/* The reference inputs: two nodes of TP4 x DP2, inter TP2, bf16 on an H100. */
void base_key_case(key_case_t* k);

/* The key of k (its field pointer is set to its own topology first, since copies move it). */
void key_text(key_case_t* k, mixcomm__tune_key_t* key);

/* ---------------------------------------------------------------------------------------- */
/* Random numbers                                                                            */
/* ---------------------------------------------------------------------------------------- */

/* xorshift64: a fixed seed gives each test the same cases on every run. */
typedef struct test_rng {
  uint64_t state;
} test_rng_t;

uint64_t rng_next(test_rng_t* r);
int64_t rng_range(test_rng_t* r, int64_t lo, int64_t hi); /* inclusive */

#endif
