/* SPDX-License-Identifier: Apache-2.0
 * mixcomm-perf's command line: the options, the sizes they give and the job's topology
 * (tools/perf/options.c). Nothing here touches CUDA, so the CPU tests and the fuzz target
 * (tests/fuzz/tool_perf.c) use the same parser as the tool. */
#ifndef MIXCOMM_TOOLS_PERF_OPTIONS_H_
#define MIXCOMM_TOOLS_PERF_OPTIONS_H_

#include <stddef.h>
#include <stdint.h>

#include "mixcomm.h"

#define PERF_TOOL "mixcomm-perf"
#define PERF_EXIT_BAD_ARGS 2
#define PERF_MAX_SIZES 128
#define PERF_MAX_LIST 16

typedef struct perf_size {
  size_t bytes;      /* S, after rounding to whole rows (or to 16 bytes under one row) */
  int64_t rows;      /* rows of one rank block (output rows of RS types, input rows otherwise) */
  int64_t row_elems; /* elements per row */
} perf_size_t;

typedef struct perf_options {
  int ranks, ranks_given;
  int local_size; /* 0 = ranks */
  int local_tp_size, local_dp_size, inter_tp_size, inter_dp_size;
  mixcomm_dtype_t dtype;
  int op_all, n_ops;
  mixcomm_op_t ops[PERF_MAX_LIST];
  int mode_all, n_modes;
  mixcomm_mode_t modes[PERF_MAX_LIST];
  size_t min_bytes, max_bytes, row_bytes;
  int factor;
  int warmup, iters, graph, graph_calls;
  int grid_size;      /* 0 = SMs / ranks sharing the GPU */
  int max_block_size; /* 0 = the library's default */
  int timeout_ms;
  int check, autotune;
  int time_limit_s;
  int dry_run;
  const char* json_path;
  char cmdline[2048];
  int n_sizes;
  perf_size_t sizes[PERF_MAX_SIZES];
} perf_options_t;

/* Parses and checks the command line (and a launcher's WORLD_SIZE / LOCAL_WORLD_SIZE). Returns
 * 0 on success, 1 after --help (printed), -1 on a bad argument (reported on stderr). */
int perf_parse_options(int argc, char** argv, perf_options_t* o);

/* The job's topology as world rank 0 sees it (the split of every level resolved). */
mixcomm_status_t perf_job_topology(const perf_options_t* o, mixcomm_topology_t* t);

#endif
