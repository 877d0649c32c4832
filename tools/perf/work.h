/* SPDX-License-Identifier: Apache-2.0
 * The ops and modes one mixcomm-perf run measures (tools/perf/work.c). */
#ifndef MIXCOMM_TOOLS_PERF_WORK_H_
#define MIXCOMM_TOOLS_PERF_WORK_H_

#include "perf/context.h"

/* The largest lists perf_select_work writes. */
#define PERF_MAX_OPS (MIXCOMM_NUM_OPS + PERF_MAX_LIST)
#define PERF_MAX_MODES (PERF_MAX_LIST + MIXCOMM_NUM_MODES)

/* The ops (every valid one for -o all, then those named) and the modes (every valid fused
 * one for -m all, then those named) to run; identical on every rank (checked: collective).
 * 0, or -1 reported (a name not valid for this handler, no mode at all, ranks that differ). */
int perf_select_work(perf_ctx_t* c, mixcomm_op_t* ops, int* n_ops, mixcomm_mode_t* modes,
                     int* n_modes);

#endif
