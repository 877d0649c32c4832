/* SPDX-License-Identifier: Apache-2.0
 * One (op, size, mode) of mixcomm-perf on every rank (tools/perf/case.c): each rank checks and
 * times its calls, the ranks gather their results, rank 0 prints the line and keeps the row. */
#ifndef MIXCOMM_TOOLS_PERF_CASE_H_
#define MIXCOMM_TOOLS_PERF_CASE_H_

#include "perf/calls.h"
#include "perf/context.h"

/* Collective. `smallest`: the first size of the sweep (it gets the lat_x_rtt column). Returns
 * -1 when the run must stop (an error on any rank), else 0. */
int perf_run_case(perf_ctx_t* c, mixcomm_op_t op, mixcomm_mode_t mode, const perf_size_t* s,
                  const perf_ref_t* ref, int smallest);

#endif
