/* SPDX-License-Identifier: Apache-2.0
 * The benchmark of one mixcomm-perf rank once its handler exists (tools/perf/sweep.c): the
 * work list, the ceilings, the buffers, then every (op, size, mode). */
#ifndef MIXCOMM_TOOLS_PERF_SWEEP_H_
#define MIXCOMM_TOOLS_PERF_SWEEP_H_

#include "perf/context.h"

/* Collective. 0 when the sweep ran to its end (rows may still be wrong: c->total_wrong), -1
 * when it stopped (reported; c->failed). */
int perf_sweep(perf_ctx_t* c);

/* Frees what the sweep allocated (buffers, events, launch floors, rows, device identities). */
void perf_release(perf_ctx_t* c);

#endif
