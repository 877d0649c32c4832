/* SPDX-License-Identifier: Apache-2.0
 * GPU test suite: for each topology, forks one process per rank (they share the GPU under MPS,
 * or use one GPU each when there are enough) and checks every valid op and fused mode against
 * a float64 reference computed on the host (tools/common/refdata.c), plus TP-rank bitwise
 * consistency, repeatability, -0.0 and poison-pattern inputs, zero rows, misaligned offsets,
 * thousands of back-to-back calls (ring wrap-around), CUDA graph capture and replay, the
 * argument errors, and autotune with its cache. Ends with "N passed, N failed" per topology and
 * overall.
 *
 *   mixcomm-gpu-tests [--sizes 2,3,4,6,8] [--nodes 1] [--dtypes fp16,bf16,fp32] [--quick]
 *                     [--only TEST] [--grid N] [--timeout-ms MS] [--inter-tp 1,2]
 *                     [--late-rank R] [--late-ms MS]
 * --inter-tp keeps only the topologies with those inter tp sizes (many emulated nodes have many
 * factorisations); --late-rank R makes world rank R start every handler's calls --late-ms
 * (default 3000) late, so the others' kernels wait for it (every call must still succeed).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cuda_runtime_api.h>

#include "bootstrap/bootstrap.h"
#include "common/args.h"
#include "common/refdata.h"
#include "common/spawn.h"
#include "gpu/gpu_suite.h"

/* ---- options --------------------------------------------------------------------------- */

/* A comma-separated list of at most max positive integers: its length, or -1. */
static int parse_list(const char* s, int* out, int max) {
  int n = 0;
  char bad[32];
  return args_parse_int_list(s, 256, 1, 1 << 20, out, max, &n, bad, sizeof bad) == 0 ? n : -1;
}

static void usage(void) {
  fprintf(stderr,
          "usage: mixcomm-gpu-tests [--sizes 2,3,4,6,8] [--nodes N[,N...]] "
          "[--dtypes fp16,bf16,fp32]\n"
          "                         [--quick] [--only TEST] [--grid N] [--timeout-ms MS]\n"
          "                         [--inter-tp N[,N...]] [--late-rank R] [--late-ms MS]\n"
          "tests: matrix, edge, errors, burst, graph, default_mode, autotune, checkpoint, "
          "lifecycle, putcount, epilogue, uneven\n");
}

/* ---- per-topology driver ---------------------------------------------------------------- */

static int inter_tp_wanted(const gpu_options_t* opt, int it) {
  for (int k = 0; k < opt->ninter_tp; k++)
    if (opt->inter_tp[k] == it)
      return 1;
  return opt->ninter_tp == 0;
}

typedef struct topo_job {
  const gpu_options_t* opt;
  int local_size, local_tp, inter_size, inter_tp;
} topo_job_t;

static int rank_main(const spawn_rank_t* r, void* arg) {
  const topo_job_t* job = arg;
  gpu_rank_t g;
  memset(&g, 0, sizeof g);
  g.opt = job->opt;
  g.spawn = *r;
  g.local_size = job->local_size;
  g.local_tp = job->local_tp;
  g.inter_size = job->inter_size;
  g.inter_tp = job->inter_tp;
  return gpu_rank_run(&g);
}

int main(int argc, char** argv) {
  gpu_options_t opt;
  memset(&opt, 0, sizeof opt);
  int sizes[16] = {2, 3, 4, 6, 8}, nsizes = 5;
  int nodes[8] = {1}, nnodes = 1;
  opt.ndtypes = 3;
  opt.dtypes[0] = MIXCOMM_FLOAT16;
  opt.dtypes[1] = MIXCOMM_BFLOAT16;
  opt.dtypes[2] = MIXCOMM_FLOAT32;
  opt.timeout_ms = 10000;
  opt.late_rank = -1;
  opt.late_ms = 3000;
  const args_int_option_t numbers[] = {
      {"--grid", 0, 4096, &opt.grid},
      {"--timeout-ms", 0, 24 * 3600 * 1000, &opt.timeout_ms},
      {"--late-rank", -1, 1 << 20, &opt.late_rank},
      {"--late-ms", 0, 3600 * 1000, &opt.late_ms},
  };
  int number = 0;
  for (int i = 1; i < argc; i++) {
    const char* a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--sizes") && v) {
      nsizes = parse_list(v, sizes, 16);
      i++;
    } else if (!strcmp(a, "--nodes") && v) {
      nnodes = parse_list(v, nodes, 8);
      i++;
    } else if (!strcmp(a, "--dtypes") && v) {
      char buf[128];
      snprintf(buf, sizeof buf, "%s", v);
      opt.ndtypes = 0;
      for (char* tok = strtok(buf, ","); tok && opt.ndtypes < 3; tok = strtok(NULL, ",")) {
        if (mixcomm_dtype_from_name(tok, &opt.dtypes[opt.ndtypes]) != MIXCOMM_SUCCESS) {
          fprintf(stderr, "unknown dtype %s\n", tok);
          return 2;
        }
        opt.ndtypes++;
      }
      i++;
    } else if (!strcmp(a, "--quick")) {
      opt.quick = 1;
    } else if (!strcmp(a, "--only") && v) {
      snprintf(opt.only, sizeof opt.only, "%s", v);
      i++;
    } else if (v && (number = args_int_option(numbers, sizeof numbers / sizeof numbers[0], a,
                                              v)) != 0) {
      if (number < 0) {
        usage();
        return 2;
      }
      i++;
    } else if (!strcmp(a, "--inter-tp") && v) {
      opt.ninter_tp = parse_list(v, opt.inter_tp, 8);
      if (opt.ninter_tp < 1) {
        usage();
        return 2;
      }
      i++;
    } else {
      usage();
      return 2;
    }
  }
  if (nsizes < 1 || nnodes < 1 || opt.ndtypes < 1 || opt.late_ms < 0) {
    usage();
    return 2;
  }
  int topo_pass = 0, topo_fail = 0;
  const time_t t0 = time(NULL);
  for (int ni = 0; ni < nnodes; ni++) {
    const int I = nodes[ni];
    for (int si = 0; si < nsizes; si++) {
      const int L = sizes[si];
      for (int lt = 1; lt <= L; lt++) {
        if (L % lt)
          continue;
        for (int it = 1; it <= I; it++) {
          if (I % it || !inter_tp_wanted(&opt, it))
            continue;
          topo_job_t job = {&opt, L, lt, I, it};
          printf("== topology: %d node(s) x %d ranks, local tp %d x dp %d, inter tp %d x dp %d\n",
                 I, L, lt, L / lt, it, I / it);
          fflush(stdout);
          const int failed = spawn_ranks(L * I, L, 900, rank_main, &job);
          printf("== %s: local %dx%d inter %dx%d (%d rank(s) failed)\n",
                 failed ? "FAIL" : "ok  ", lt, L / lt, it, I / it, failed);
          fflush(stdout);
          if (failed)
            topo_fail++;
          else
            topo_pass++;
        }
      }
    }
  }
  printf("%d passed, %d failed (topologies; %ld s)\n", topo_pass, topo_fail,
         (long)(time(NULL) - t0));
  return topo_fail ? 1 : 0;
}
