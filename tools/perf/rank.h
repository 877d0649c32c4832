/* SPDX-License-Identifier: Apache-2.0
 * The life of one mixcomm-perf rank (tools/perf/rank.c): its GPU, the TCP bootstrap, the
 * device identities of all ranks, the handler, the sweep, the summary, the cleanup. */
#ifndef MIXCOMM_TOOLS_PERF_RANK_H_
#define MIXCOMM_TOOLS_PERF_RANK_H_

#include "common/spawn.h"

/* A spawn_fn: arg is the perf_options_t. Returns the rank's exit status: 0, or 1 after an
 * error or a wrong element (rank 0 answers for the whole job's results, the others for their
 * own). */
int perf_rank_main(const spawn_rank_t* r, void* arg);

#endif
