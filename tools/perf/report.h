/* SPDX-License-Identifier: Apache-2.0
 * What mixcomm-perf prints, on rank 0 (tools/perf/report.c): an nccl-tests-like table with a
 * header that defines its columns, and the same results as JSON. */
#ifndef MIXCOMM_TOOLS_PERF_REPORT_H_
#define MIXCOMM_TOOLS_PERF_REPORT_H_

#include "perf/context.h"
#include "perf/latency.h"

/* The job, the device, the ceilings, the modes left out and the column definitions. */
void perf_print_header(const perf_ctx_t* c);

/* One line of the table ("error" and "-" for a case that failed). */
void perf_print_row(const perf_ctx_t* c, const perf_row_t* r);

/* The "# breakdown" line of a small case (builds with phase stamps). */
void perf_print_breakdown(const perf_row_t* r, const perf_breakdown_t* bd);

/* The header and every row as one JSON object; 0, or -1 reported. */
int perf_write_json(const perf_ctx_t* c, const char* path);

/* What would run, without touching CUDA (ops and modes depend on the GPUs: listed as asked). */
void perf_print_dry_run(const perf_options_t* o);

#endif
