/* SPDX-License-Identifier: Apache-2.0
 * mixcomm-perf's same-run ceilings (tools/perf/ceilings.c): the device copy bandwidth (rank 0
 * alone) and the cross-process flag round trip between ranks 0 and 1 (tools/perf/pingpong.cu),
 * which the table's mem_GBps / frac_copy and lat_x_rtt / x_floor columns are measured against. */
#ifndef MIXCOMM_TOOLS_PERF_CEILINGS_H_
#define MIXCOMM_TOOLS_PERF_CEILINGS_H_

#include "perf/context.h"

#define PERF_COPY_REPS 5
#define PERF_RTT_WARM_ROUNDS 100
#define PERF_RTT_REPS 3

/* Rank 0 alone: c->copy_gbps and c->copy_bytes (left NAN when too little memory is free).
 * 0, or -1 reported (the run is then failed but may go on). */
int perf_measure_copy(perf_ctx_t* c);

/* Ranks 0 and 1 (same host): c->rtt_us, c->rtt_event_us and c->rtt_rounds on every rank.
 * Collective: every rank takes part in the workspace exchange and the status agreements (ranks
 * other than 0 and 1 map a page of their own and do nothing else). A failure here is an error
 * of the run (reported, exit status 1), but the benchmark goes on without the ceiling; returns
 * -1 only if the bootstrap failed (the run cannot go on). */
int perf_measure_rtt(perf_ctx_t* c);

#endif
