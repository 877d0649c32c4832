/* SPDX-License-Identifier: Apache-2.0
 * The formulas of mixcomm-perf's columns (tools/perf/metrics.c; docs/benchmarks.md defines
 * them): which bytes a call reads and writes, the bus bytes of busbw, the HBM bytes of mem. */
#ifndef MIXCOMM_TOOLS_PERF_METRICS_H_
#define MIXCOMM_TOOLS_PERF_METRICS_H_

#include <stdint.h>

#include "perf/context.h"

/* "fp16", "bf16" or "fp32": the table's type column. */
const char* perf_short_dtype(mixcomm_dtype_t d);

/* A rank's input and output bytes for the size column S. */
double perf_in_bytes(const mixcomm_topology_t* t, mixcomm_op_t op, double S);
double perf_out_bytes(const mixcomm_topology_t* t, mixcomm_op_t op, double S);

/* busbw bytes: (2(tp-1)/tp + (dp-1)) * S. */
double perf_bus_bytes(const mixcomm_topology_t* t, double S);

/* HBM bytes all ranks' kernels must move, every rank on one GPU of one node; NAN when the
 * formula does not apply (another mode, several nodes, several GPUs). */
double perf_mem_bytes(const perf_ctx_t* c, mixcomm_op_t op, mixcomm_mode_t mode, double S);

/* Input rows passed to mixcomm_run for a size case. */
int64_t perf_input_rows(const perf_ctx_t* c, mixcomm_op_t op, const perf_size_t* s);

#endif
