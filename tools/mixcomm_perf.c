/* SPDX-License-Identifier: Apache-2.0
 *
 * mixcomm-perf: bandwidth and latency of mixcomm's collectives, in the style of nccl-tests.
 *
 *   mixcomm-perf [-n RANKS] [--local-size L] [-d bf16] [-o OP|all] [-m MODE|all]
 *                [-b 1K] [-e 16M] [-f 2] [-w 10] [-i 50] [-G [-g 10]] [--json FILE] ...
 *
 * It forks the ranks itself (or, with RANK and WORLD_SIZE in the environment, runs as that rank
 * of a job started by a launcher such as torchrun), creates a handler through the TCP bootstrap
 * and, for every (operation, size, mode): runs one checked call against the float64 reference
 * (tools/common/refdata.h), warms up, times `iters` calls one by one with CUDA event pairs (or
 * replays of a CUDA graph of K calls), takes each rank's median and reports the largest median
 * over the ranks. Rank 0 prints an nccl-tests-like table and can write the same as JSON.
 *
 * Definitions (also printed in the output header and in docs/benchmarks.md).
 *   S      = the size column: a rank's input bytes for ALLREDUCE, ALLGATHER and
 *            ALLREDUCE_ALLGATHER; a rank's OUTPUT bytes for REDUCESCATTER and
 *            REDUCESCATTER_ALLREDUCE (their input is dp*S). Rows = S / row_bytes; a size under
 *            one row is one row of S bytes. count = S / element size.
 *   t      = time_us: max over ranks of each rank's median time of one call.
 *   algbw  = in / t, in = a rank's input bytes (S, or dp*S for the reduce-scatter types).
 *   busbw  = (2(tp-1)/tp + (dp-1)) * S / t, the sum of nccl-tests' bus factors of the phases:
 *            AR (dp=1): 2(n-1)/n * S;  AG, RS (tp=1): (n-1)/n * n*S (n*S = all the data);
 *            AR+AG: TP all-reduce of S plus DP all-gather of dp*S; RS+AR: DP reduce-scatter of
 *            dp*S plus TP all-reduce of S.
 *   mem    = HBM bytes the kernels of ALL ranks must move for one call when every rank runs on
 *            this one GPU (single node only; fused unicast modes only), from the protocol in
 *            src/kernels/intranode.cu. With L local ranks, Lt = local TP, in/out as above
 *            (out = dp*S for the gather types, S otherwise), per rank:
 *              FUSED_OPT_WAITS_UC  (one-shot): in + out + 3*(L-1)*S
 *              FUSED_OPT_BYTES1_UC (two-shot): in + out + 3*(L+Lt-2)*S/Lt
 *            (3 = the write into a peer's workspace, the peer's read, and its re-poisoning of
 *            the consumed row), times L ranks. mem_GBps = mem / t; frac_copy = mem_GBps / the
 *            device copy bandwidth measured in the same run.
 *   lat_x_rtt = t / (cross-process flag round trip measured in the same run), smallest size only.
 *   floor_us  = launch floor of the call's own launch shape (CTAs x threads), measured in the
 *            same run on every rank at once: a graph of kernels of that shape whose threads
 *            load and store 16 bytes each (tools/launch_floor.cu); sizes up to 1 MiB.
 *   x_floor   = t / (floor_us + flag round trip): how far a small call is from the least any
 *            kernel of its shape plus one exchange between two processes can take.
 * With a library built with -DMIXCOMM_PHASE_STAMPS=ON, every small size also gets a
 * "# breakdown" line: the mean duration of each phase of rank 0's calls (tools/perf_latency.h).
 *
 * Exit status: 0 if every call ran and every checked element was right; 1 otherwise; 2 for bad
 * arguments.
 */
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cuda_runtime_api.h>

#include "bootstrap/bootstrap.h"
#include "core/error.h"
#include "common/args.h"
#include "common/refdata.h"
#include "common/spawn.h"
#include "mixcomm.h"
#include "kernels/launch.h"
#include "perf_latency.h"
#include "pingpong.h"
#include "transport/vmm.h"

#define TOOL "mixcomm-perf"
#define EXIT_BAD_ARGS 2
#define MAX_SIZES 128
#define MAX_LIST 16
#define HOST_NAME_CAP 64
#define DATA_SEED 0x6d6978706572660bull /* inputs: ref_fill_input(seed, world rank) */
#define COPY_MAX_BYTES (1ull << 30)
#define COPY_REPS 5
#define RTT_ROUNDS 10000
#define RTT_WARM_ROUNDS 100
#define RTT_REPS 3
#define RTT_BUDGET_S 1.0 /* shrink the round count if a round trip is very slow (no MPS) */
#define SMALL_MAX_BYTES (1u << 20) /* sizes that get a launch floor (and a breakdown) */

/* ------------------------------------------------------------------------------------------ */
/* Options                                                                                    */
/* ------------------------------------------------------------------------------------------ */

typedef struct size_case {
  size_t bytes;      /* S, after rounding to whole rows (or to 16 bytes under one row) */
  int64_t rows;      /* rows of one rank block (output rows of RS types, input rows otherwise) */
  int64_t row_elems; /* elements per row */
} size_case_t;

typedef struct options {
  int ranks, ranks_given;
  int local_size; /* 0 = ranks */
  int local_tp_size, local_dp_size, inter_tp_size, inter_dp_size;
  mixcomm_dtype_t dtype;
  int op_all, n_ops;
  mixcomm_op_t ops[MAX_LIST];
  int mode_all, n_modes;
  mixcomm_mode_t modes[MAX_LIST];
  size_t min_bytes, max_bytes, row_bytes;
  int factor;
  int warmup, iters, graph, graph_calls;
  int grid_size; /* 0 = SMs / ranks sharing the GPU */
  int max_block_size; /* 0 = the library's default */
  int timeout_ms;
  int check, autotune;
  int time_limit_s;
  int dry_run;
  const char* json_path;
  char cmdline[2048];
  int n_sizes;
  size_case_t sizes[MAX_SIZES];
} options_t;

static void usage(FILE* f) {
  fprintf(f,
          "usage: " TOOL " [options]\n"
          "\n"
          "Times mixcomm's collectives (nccl-tests style). Forks the ranks itself, or runs as\n"
          "one rank when RANK and WORLD_SIZE are set (torchrun and similar launchers).\n"
          "\n"
          "Job\n"
          "  -n, --ranks N           world size (default 2; under a launcher: WORLD_SIZE)\n"
          "      --local-size L      ranks per node (default N; under a launcher:\n"
          "                          LOCAL_WORLD_SIZE); N / L nodes, emulated on this host\n"
          "                          when forked\n"
          "      --local-tp-size N   --local-dp-size N   --inter-tp-size N   --inter-dp-size N\n"
          "                          TP x DP split per level (default: all TP; see mixcomm.h)\n"
          "What to run\n"
          "  -d, --dtype T           fp16, bf16 (default) or fp32\n"
          "  -o, --op LIST           all (default: every valid op) or comma-separated names\n"
          "                          (ALLREDUCE, ALLGATHER, REDUCESCATTER, ALLREDUCE_ALLGATHER,\n"
          "                          REDUCESCATTER_ALLREDUCE)\n"
          "  -m, --mode LIST         all (default: every valid fused mode) or comma-separated\n"
          "                          names (FUSED_OPT_WAITS_UC, ..., NCCL_ONE, NCCL_TP_DP,\n"
          "                          AUTOTUNE, DEFAULT)\n"
          "  -b, --min-bytes S       smallest size (default 1K; K, M, G suffixes = 2^10...)\n"
          "  -e, --max-bytes S       largest size (default 16M)\n"
          "  -f, --step-factor F     multiply the size by F each step (default 2)\n"
          "      --row-bytes R       bytes per row (default 8192); sizes are whole rows, a\n"
          "                          size under one row is one row of that size\n"
          "                          Sizes are a rank's input bytes (AR, AG, AR+AG) or a\n"
          "                          rank's OUTPUT bytes (RS, RS+AR), multiples of 16\n"
          "How\n"
          "  -w, --warmup N          warm-up calls (graph mode: replays) per case (default 10)\n"
          "  -i, --iters N           timed calls (graph mode: replays) per case (default 50)\n"
          "  -G, --graph             time replays of a CUDA graph of K calls (time / K)\n"
          "  -g, --graph-calls K     calls captured per graph (default 10)\n"
          "      --grid-size N       CTAs per rank (default: SMs / ranks sharing the GPU)\n"
          "      --max-block-size N  threads per CTA cap (config.max_block_size; default 0)\n"
          "      --timeout-ms N      bound on every wait for a peer (default: the library's)\n"
          "      --check 0|1         check one call per case against a float64 reference\n"
          "                          (default 1; also the graph's output with -G)\n"
          "      --autotune 0|1      use_autotune of the handler (default 0)\n"
          "      --json FILE         also write the results as JSON (rank 0)\n"
          "      --time-limit S      kill forked ranks after S seconds (default 3600)\n"
          "      --dry-run           check the options (ops and modes against the topology,\n"
          "                          the --json path), print the job and the sizes, then exit\n"
          "                          (no GPU needed)\n"
          "  -h, --help              this help\n"
          "\n"
          "Columns: size(B) count type op mode time_us algbw busbw #wrong mem_GBps frac_copy\n"
          "lat_x_rtt; the output header and docs/benchmarks.md define them. Several ranks on one\n"
          "GPU need the MPS daemon (nvidia-cuda-mps-control -d).\n"
          "Exit status: 0 all right, 1 a wrong element or an error, 2 bad arguments.\n");
}

static int bad_arg(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, TOOL ": ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n" TOOL ": see --help\n");
  va_end(ap);
  return -1;
}

static int parse_int(const char* opt, const char* s, int lo, int hi, int* out) {
  if (args_parse_int(s, lo, hi, out) != 0)
    return bad_arg("%s '%s': expected an integer in [%d, %d]", opt, s, lo, hi);
  return 0;
}

/* "4096", "4K", "4KB", "4KiB", "16M", "1G" (binary multiples). */
static int parse_size(const char* opt, const char* s, size_t* out) {
  char* end = NULL;
  if (!isdigit((unsigned char)s[0]))
    return bad_arg("%s '%s': expected a byte count such as 4096, 64K, 16M or 1G", opt, s);
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || end == s)
    return bad_arg("%s '%s': expected a byte count such as 4096, 64K, 16M or 1G", opt, s);
  unsigned long long mult = 1;
  switch (toupper((unsigned char)*end)) {
    case 'K':
      mult = 1ull << 10;
      end++;
      break;
    case 'M':
      mult = 1ull << 20;
      end++;
      break;
    case 'G':
      mult = 1ull << 30;
      end++;
      break;
    default:
      break;
  }
  if (mult > 1 && (*end == 'i' || *end == 'I'))
    end++;
  if (*end == 'B' || *end == 'b')
    end++;
  if (*end != '\0')
    return bad_arg("%s '%s': unknown suffix (use K, M or G)", opt, s);
  if (v > (1ull << 40) / mult)
    return bad_arg("%s '%s': too large (at most 1024G)", opt, s);
  *out = (size_t)(v * mult);
  return 0;
}

/* Comma-separated list of names; "all" (and "fused" for modes) sets *all. */
static int parse_list(const char* opt, const char* s, int is_mode, int* all, int* n, int* items) {
  char buf[512];
  if (strlen(s) >= sizeof buf)
    return bad_arg("%s: list too long", opt);
  strcpy(buf, s);
  *all = 0;
  *n = 0;
  char* save = NULL;
  for (char* tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
    if (!strcasecmp(tok, "all") || (is_mode && !strcasecmp(tok, "fused"))) {
      *all = 1;
      continue;
    }
    int v;
    if (is_mode) {
      mixcomm_mode_t m;
      if (mixcomm_mode_from_name(tok, &m) != MIXCOMM_SUCCESS)
        return bad_arg("%s: %s", opt, mixcomm_last_error());
      v = (int)m;
    } else {
      mixcomm_op_t o;
      if (mixcomm_op_from_name(tok, &o) != MIXCOMM_SUCCESS)
        return bad_arg("%s: %s", opt, mixcomm_last_error());
      v = (int)o;
    }
    int dup = 0;
    for (int i = 0; i < *n; i++)
      dup |= items[i] == v;
    if (dup)
      continue;
    if (*n >= MAX_LIST)
      return bad_arg("%s: too many names", opt);
    items[(*n)++] = v;
  }
  if (!*all && *n == 0)
    return bad_arg("%s '%s': empty list", opt, s);
  return 0;
}

static void build_cmdline(options_t* o, int argc, char** argv) {
  size_t used = 0;
  o->cmdline[0] = '\0';
  for (int i = 0; i < argc && used + 1 < sizeof o->cmdline; i++) {
    int w = snprintf(o->cmdline + used, sizeof o->cmdline - used, "%s%s", i ? " " : "",
                     argv[i]);
    if (w < 0)
      break;
    used += (size_t)w;
  }
  if (used >= sizeof o->cmdline)
    o->cmdline[sizeof o->cmdline - 1] = '\0';
}

/* Sizes from min to max by factor, rounded to whole rows (or 16 bytes under one row). */
static int build_sizes(options_t* o) {
  const size_t esz = mixcomm_dtype_size(o->dtype);
  o->n_sizes = 0;
  for (size_t s = o->min_bytes;;) {
    size_case_t c;
    if (s >= o->row_bytes) {
      c.rows = (int64_t)(s / o->row_bytes);
      c.row_elems = (int64_t)(o->row_bytes / esz);
      c.bytes = (size_t)c.rows * o->row_bytes;
    } else {
      c.rows = 1;
      c.bytes = s / 16 * 16;
      c.row_elems = (int64_t)(c.bytes / esz);
    }
    if (c.bytes > 0 && (o->n_sizes == 0 || o->sizes[o->n_sizes - 1].bytes != c.bytes)) {
      if (o->n_sizes >= MAX_SIZES)
        return bad_arg("more than %d sizes from -b %zu -e %zu -f %d", MAX_SIZES, o->min_bytes,
                       o->max_bytes, o->factor);
      o->sizes[o->n_sizes++] = c;
    }
    if (s >= o->max_bytes || o->factor < 2)
      break;
    if (s > o->max_bytes / (size_t)o->factor) {
      /* The next step passes max: stop (nccl-tests style, max itself only if reached). */
      break;
    }
    s *= (size_t)o->factor;
  }
  if (o->n_sizes == 0)
    return bad_arg("no size of at least 16 bytes in [%zu, %zu]", o->min_bytes, o->max_bytes);
  return 0;
}

/* Whether path can be written (checked before the run, which only writes it at the end):
 * an existing regular file we may write, or a new file in a folder we may write. Nothing is
 * created. */
static int check_output_path(const char* opt, const char* path) {
  struct stat st;
  if (stat(path, &st) == 0) {
    if (S_ISDIR(st.st_mode))
      return bad_arg("%s %s: is a directory", opt, path);
    if (access(path, W_OK) != 0)
      return bad_arg("%s %s: cannot be written: %s", opt, path, strerror(errno));
    return 0;
  }
  if (errno != ENOENT)
    return bad_arg("%s %s: %s", opt, path, strerror(errno));
  char dir[4096];
  const char* slash = strrchr(path, '/');
  if (slash == NULL)
    snprintf(dir, sizeof dir, ".");
  else if (slash == path)
    snprintf(dir, sizeof dir, "/");
  else if ((size_t)(slash - path) >= sizeof dir)
    return bad_arg("%s: the path is too long", opt);
  else
    snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
  if (stat(dir, &st) != 0)
    return bad_arg("%s %s: folder %s: %s", opt, path, dir, strerror(errno));
  if (!S_ISDIR(st.st_mode))
    return bad_arg("%s %s: %s is not a folder", opt, path, dir);
  if (access(dir, W_OK | X_OK) != 0)
    return bad_arg("%s %s: cannot create a file in %s: %s", opt, path, dir, strerror(errno));
  return 0;
}

/* A launcher's integer setting in [lo, hi]: 0 with *out (left alone when unset or empty), or
 * -1 after reporting a value that is not one. */
static int env_int(const char* name, int lo, int hi, int* out) {
  const char* v = getenv(name);
  if (v == NULL || v[0] == '\0')
    return 0;
  if (args_parse_int(v, lo, hi, out) != 0)
    return bad_arg("%s='%.64s' in the environment is not an integer in [%d, %d]", name, v, lo,
                   hi);
  return 0;
}

/* Returns 0 on success, 1 after --help, -1 on a bad argument (already reported). */
static int parse_options(int argc, char** argv, options_t* o) {
  memset(o, 0, sizeof *o);
  o->ranks = 2;
  o->dtype = MIXCOMM_BFLOAT16;
  o->op_all = 1;
  o->mode_all = 1;
  o->min_bytes = 1u << 10;
  o->max_bytes = 16u << 20;
  o->factor = 2;
  o->row_bytes = 8192;
  o->warmup = 10;
  o->iters = 50;
  o->graph_calls = 10;
  o->check = 1;
  o->time_limit_s = 3600;
  build_cmdline(o, argc, argv);

  enum {
    OPT_LOCAL_SIZE = 256,
    OPT_LTP,
    OPT_LDP,
    OPT_ITP,
    OPT_IDP,
    OPT_ROW_BYTES,
    OPT_GRID,
    OPT_MAX_BLOCK,
    OPT_TIMEOUT,
    OPT_JSON,
    OPT_CHECK,
    OPT_AUTOTUNE,
    OPT_TIME_LIMIT,
    OPT_DRY_RUN
  };
  static const struct option longopts[] = {
      {"ranks", required_argument, NULL, 'n'},
      {"local-size", required_argument, NULL, OPT_LOCAL_SIZE},
      {"local-tp-size", required_argument, NULL, OPT_LTP},
      {"local-dp-size", required_argument, NULL, OPT_LDP},
      {"inter-tp-size", required_argument, NULL, OPT_ITP},
      {"inter-dp-size", required_argument, NULL, OPT_IDP},
      {"dtype", required_argument, NULL, 'd'},
      {"op", required_argument, NULL, 'o'},
      {"mode", required_argument, NULL, 'm'},
      {"min-bytes", required_argument, NULL, 'b'},
      {"minbytes", required_argument, NULL, 'b'},
      {"max-bytes", required_argument, NULL, 'e'},
      {"maxbytes", required_argument, NULL, 'e'},
      {"step-factor", required_argument, NULL, 'f'},
      {"stepfactor", required_argument, NULL, 'f'},
      {"row-bytes", required_argument, NULL, OPT_ROW_BYTES},
      {"warmup", required_argument, NULL, 'w'},
      {"iters", required_argument, NULL, 'i'},
      {"graph", no_argument, NULL, 'G'},
      {"graph-calls", required_argument, NULL, 'g'},
      {"grid-size", required_argument, NULL, OPT_GRID},
      {"max-block-size", required_argument, NULL, OPT_MAX_BLOCK},
      {"timeout-ms", required_argument, NULL, OPT_TIMEOUT},
      {"json", required_argument, NULL, OPT_JSON},
      {"check", required_argument, NULL, OPT_CHECK},
      {"autotune", required_argument, NULL, OPT_AUTOTUNE},
      {"time-limit", required_argument, NULL, OPT_TIME_LIMIT},
      {"dry-run", no_argument, NULL, OPT_DRY_RUN},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  opterr = 0; /* we report unknown options ourselves */
  optind = 1;
  int c;
  while ((c = getopt_long(argc, argv, ":n:d:o:m:b:e:f:w:i:Gg:h", longopts, NULL)) != -1) {
    int rc = 0;
    switch (c) {
      case 'n':
        rc = parse_int("--ranks", optarg, 1, 1024, &o->ranks);
        o->ranks_given = 1;
        break;
      case OPT_LOCAL_SIZE:
        rc = parse_int("--local-size", optarg, 1, 1024, &o->local_size);
        break;
      case OPT_LTP:
        rc = parse_int("--local-tp-size", optarg, 0, 1024, &o->local_tp_size);
        break;
      case OPT_LDP:
        rc = parse_int("--local-dp-size", optarg, 0, 1024, &o->local_dp_size);
        break;
      case OPT_ITP:
        rc = parse_int("--inter-tp-size", optarg, 0, 1024, &o->inter_tp_size);
        break;
      case OPT_IDP:
        rc = parse_int("--inter-dp-size", optarg, 0, 1024, &o->inter_dp_size);
        break;
      case 'd':
        if (mixcomm_dtype_from_name(optarg, &o->dtype) != MIXCOMM_SUCCESS)
          rc = bad_arg("--dtype: %s", mixcomm_last_error());
        break;
      case 'o': {
        int items[MAX_LIST];
        rc = parse_list("--op", optarg, 0, &o->op_all, &o->n_ops, items);
        for (int i = 0; rc == 0 && i < o->n_ops; i++)
          o->ops[i] = (mixcomm_op_t)items[i];
        break;
      }
      case 'm': {
        int items[MAX_LIST];
        rc = parse_list("--mode", optarg, 1, &o->mode_all, &o->n_modes, items);
        for (int i = 0; rc == 0 && i < o->n_modes; i++)
          o->modes[i] = (mixcomm_mode_t)items[i];
        break;
      }
      case 'b':
        rc = parse_size("--min-bytes", optarg, &o->min_bytes);
        break;
      case 'e':
        rc = parse_size("--max-bytes", optarg, &o->max_bytes);
        break;
      case 'f':
        rc = parse_int("--step-factor", optarg, 1, 1 << 20, &o->factor);
        break;
      case OPT_ROW_BYTES:
        rc = parse_size("--row-bytes", optarg, &o->row_bytes);
        break;
      case 'w':
        rc = parse_int("--warmup", optarg, 0, 1000000, &o->warmup);
        break;
      case 'i':
        rc = parse_int("--iters", optarg, 1, 1000000, &o->iters);
        break;
      case 'G':
        o->graph = 1;
        break;
      case 'g':
        rc = parse_int("--graph-calls", optarg, 1, 100000, &o->graph_calls);
        break;
      case OPT_GRID:
        rc = parse_int("--grid-size", optarg, 0, 1 << 20, &o->grid_size);
        break;
      case OPT_MAX_BLOCK:
        rc = parse_int("--max-block-size", optarg, 0, 1024, &o->max_block_size);
        break;
      case OPT_TIMEOUT:
        rc = parse_int("--timeout-ms", optarg, 0, 1 << 30, &o->timeout_ms);
        break;
      case OPT_JSON:
        if (optarg[0] == '\0')
          rc = bad_arg("--json: empty file name");
        o->json_path = optarg;
        break;
      case OPT_CHECK:
        rc = parse_int("--check", optarg, 0, 1, &o->check);
        break;
      case OPT_AUTOTUNE:
        rc = parse_int("--autotune", optarg, 0, 1, &o->autotune);
        break;
      case OPT_TIME_LIMIT:
        rc = parse_int("--time-limit", optarg, 1, 1 << 30, &o->time_limit_s);
        break;
      case OPT_DRY_RUN:
        o->dry_run = 1;
        break;
      case 'h':
        usage(stdout);
        return 1;
      case ':':
        if (optopt != 0)
          rc = bad_arg("option -%c needs a value", optopt);
        else
          rc = bad_arg("option %s needs a value", argv[optind - 1]);
        break;
      case '?':
      default:
        if (optopt != 0)
          rc = bad_arg("unknown option -%c", optopt);
        else
          rc = bad_arg("unknown option %s", argv[optind - 1]);
        break;
    }
    if (rc != 0)
      return -1;
  }
  if (optind < argc)
    return bad_arg("unexpected argument '%s'", argv[optind]);

  /* The job as it will run. */
  if (spawn_under_launcher()) {
    int ws = 0, ls = 0;
    if (env_int("WORLD_SIZE", 1, 1024, &ws) != 0 ||
        env_int("LOCAL_WORLD_SIZE", 1, 1024, &ls) != 0)
      return -1;
    if (ws < 1)
      return bad_arg("WORLD_SIZE is empty in the environment");
    if (o->ranks_given && o->ranks != ws)
      return bad_arg("--ranks %d but the launcher's WORLD_SIZE is %d", o->ranks, ws);
    o->ranks = ws;
    if (ls > 0) {
      if (o->local_size && o->local_size != ls)
        return bad_arg("--local-size %d but the launcher's LOCAL_WORLD_SIZE is %d",
                       o->local_size, ls);
      o->local_size = ls;
    }
  }
  if (o->local_size == 0)
    o->local_size = o->ranks;
  if (o->local_size > o->ranks || o->ranks % o->local_size != 0)
    return bad_arg("--local-size %d must divide --ranks %d", o->local_size, o->ranks);
  mixcomm_topology_t t;
  memset(&t, 0, sizeof t);
  t.world_rank = 0;
  t.world_size = o->ranks;
  t.local_rank = 0;
  t.local_size = o->local_size;
  t.inter_rank = 0;
  t.inter_size = o->ranks / o->local_size;
  t.local_tp_size = o->local_tp_size;
  t.local_dp_size = o->local_dp_size;
  t.inter_tp_size = o->inter_tp_size;
  t.inter_dp_size = o->inter_dp_size;
  if (mixcomm_topology_resolve(&t, &t) != MIXCOMM_SUCCESS)
    return bad_arg("topology: %s", mixcomm_last_error());
  for (int i = 0; i < o->n_ops; i++)
    if (!mixcomm_topology_op_valid(&t, o->ops[i]))
      return bad_arg("--op %s is not valid for tp_size %d x dp_size %d (ALLREDUCE needs dp 1; "
                     "ALLGATHER and REDUCESCATTER need tp 1; the fused pairs need both > 1)",
                     mixcomm_op_name(o->ops[i]), t.tp_size, t.dp_size);
  /* Modes the topology (or this build, or --autotune 0) rules out, whatever the GPUs. What
   * depends on them (NCCL loading, ranks sharing a GPU) is checked once the handler exists. */
  mixcomm_caps_t caps;
  mixcomm_caps_default(&caps);
  caps.autotune = o->autotune;
  for (int i = 0; i < o->n_modes; i++) {
    const char* why = NULL;
    if (o->modes[i] != MIXCOMM_MODE_DEFAULT &&
        !mixcomm_topology_mode_valid(&t, &caps, o->modes[i], &why))
      return bad_arg("--mode %s is not valid for this job (%d node(s) x %d, tp %d x dp %d): %s",
                     mixcomm_mode_name(o->modes[i]), t.inter_size, t.local_size, t.tp_size,
                     t.dp_size, why ? why : "?");
  }
  if (o->json_path != NULL && check_output_path("--json", o->json_path) != 0)
    return -1;

  if (o->row_bytes < 16 || o->row_bytes % 16 != 0)
    return bad_arg("--row-bytes %zu: must be a positive multiple of 16", o->row_bytes);
  if (o->min_bytes < 16)
    return bad_arg("--min-bytes %zu: must be at least 16 (one 16-byte vector)", o->min_bytes);
  if (o->max_bytes < o->min_bytes)
    return bad_arg("--max-bytes %zu is smaller than --min-bytes %zu", o->max_bytes,
                   o->min_bytes);
  if (o->factor < 2 && o->max_bytes != o->min_bytes)
    return bad_arg("--step-factor %d: must be at least 2 when -b and -e differ", o->factor);
  if (build_sizes(o) != 0)
    return -1;
  return 0;
}

/* The option parser's fuzz target (tests/fuzz/fuzz_tool_args.c) includes this file with
 * MIXCOMM_PERF_OPTIONS_ONLY defined, and needs only what is above. */
#ifndef MIXCOMM_PERF_OPTIONS_ONLY

/* ------------------------------------------------------------------------------------------ */
/* Per-rank context and error reporting                                                       */
/* ------------------------------------------------------------------------------------------ */

typedef struct devinfo {
  char host[HOST_NAME_CAP];
  unsigned char uuid[16];
  int32_t device, device_count, sm_count, pad;
  char name[128];
} devinfo_t;

typedef struct row {
  mixcomm_op_t op;
  mixcomm_mode_t mode, resolved;
  size_case_t size;
  double time_us, algbw, busbw;
  int64_t wrong;
  double mem_bytes, mem_gbps, frac_copy, lat_x_rtt; /* NAN: not applicable */
  double floor_us, x_floor;                         /* NAN: not measured */
  int grid, block, steps;                           /* launch shape (0: no fused kernel) */
  int failed;
  double* rank_us; /* world_size medians */
} row_t;

typedef struct ctx {
  const options_t* o;
  const spawn_rank_t* r;
  int rank, world;
  mixcomm_bootstrap_t* bs;
  mixcomm_handler_t* h;
  const mixcomm_topology_t* topo;
  int device;
  devinfo_t* infos; /* world entries */
  int sharing;      /* ranks on the GPU of this rank (same host and UUID) */
  int all_one_gpu;  /* every rank of the job on one GPU */
  int grid;
  cudaStream_t stream;
  /* Same-run ceilings (NAN if not measured). */
  double copy_gbps, copy_bytes;
  double rtt_us, rtt_event_us;
  int rtt_rounds;
  perf_floor_cache_t floors;
  /* Buffers. */
  void *d_in, *d_out;
  size_t in_cap, out_cap;
  void* h_out;
  cudaEvent_t* ev; /* 2 * iters */
  int n_ev;
  /* Results (rank 0). */
  row_t* rows;
  int n_rows, cap_rows;
  int64_t total_wrong; /* summed over ranks */
  int64_t own_wrong;   /* this rank's */
  int failed;
} ctx_t;

static void lib_fail(ctx_t* c, const char* what, mixcomm_status_t st) {
  const char* detail = mixcomm_last_error();
  fprintf(stderr, TOOL ": rank %d: %s: %s%s%s\n", c->rank, what, mixcomm_status_name(st),
          detail[0] ? ": " : "", detail);
  fflush(stderr);
  c->failed = 1;
}

static void cuda_fail(ctx_t* c, const char* what, cudaError_t e) {
  fprintf(stderr, TOOL ": rank %d: %s: %s (%s)\n", c->rank, what, cudaGetErrorName(e),
          cudaGetErrorString(e));
  fflush(stderr);
  c->failed = 1;
}

static void msg_fail(ctx_t* c, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, TOOL ": rank %d: ", c->rank);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  fflush(stderr);
  c->failed = 1;
}

#define CUDA_OK(c, call, what)          \
  do {                                  \
    cudaError_t e_ = (call);            \
    if (e_ != cudaSuccess) {            \
      cuda_fail((c), (what), e_);       \
      return -1;                        \
    }                                   \
  } while (0)

/* Every rank says whether it is fine. Collective. Returns 0 if all are, 1 if some rank is not
 * (every rank then marks the run failed), -1 if the bootstrap itself failed. */
static int agree(ctx_t* c, int local_ok, const char* what) {
  int32_t mine = local_ok ? 1 : 0;
  int32_t* all = calloc((size_t)c->world, sizeof *all);
  if (all == NULL) {
    msg_fail(c, "%s: out of host memory", what);
    return -1;
  }
  mixcomm_status_t st = mixcomm__bs_allgather(c->bs, &mine, all, sizeof mine, what);
  if (st != MIXCOMM_SUCCESS) {
    lib_fail(c, what, st);
    free(all);
    return -1;
  }
  int first_bad = -1;
  for (int i = 0; i < c->world && first_bad < 0; i++)
    if (!all[i])
      first_bad = i;
  free(all);
  if (first_bad < 0)
    return 0;
  if (local_ok && c->rank == 0) {
    fprintf(stderr, TOOL ": rank %d: %s: rank %d failed (see its message)\n", c->rank, what,
            first_bad);
    fflush(stderr);
  }
  c->failed = 1;
  return 1;
}

static int barrier(ctx_t* c, const char* what) {
  mixcomm_status_t st = mixcomm__bs_barrier(c->bs, what);
  if (st != MIXCOMM_SUCCESS) {
    lib_fail(c, what, st);
    return -1;
  }
  return 0;
}

static int cmp_double(const void* a, const void* b) {
  const double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y ? 1 : 0;
}

static double median(double* v, int n) {
  if (n <= 0)
    return NAN;
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static const char* short_dtype(mixcomm_dtype_t d) {
  return d == MIXCOMM_FLOAT16 ? "fp16" : d == MIXCOMM_BFLOAT16 ? "bf16" : "fp32";
}

static int is_gather(mixcomm_op_t op) {
  return op == MIXCOMM_OP_ALLGATHER || op == MIXCOMM_OP_ALLREDUCE_ALLGATHER;
}
static int is_scatter(mixcomm_op_t op) {
  return op == MIXCOMM_OP_REDUCESCATTER || op == MIXCOMM_OP_REDUCESCATTER_ALLREDUCE;
}

/* ------------------------------------------------------------------------------------------ */
/* Formulas                                                                                   */
/* ------------------------------------------------------------------------------------------ */

static double in_bytes(const mixcomm_topology_t* t, mixcomm_op_t op, double S) {
  return is_scatter(op) ? t->dp_size * S : S;
}
static double out_bytes(const mixcomm_topology_t* t, mixcomm_op_t op, double S) {
  return is_gather(op) ? t->dp_size * S : S;
}

/* busbw bytes: (2(tp-1)/tp + (dp-1)) * S (see the opening comment). */
static double bus_bytes(const mixcomm_topology_t* t, double S) {
  const double tp = t->tp_size, dp = t->dp_size;
  return (2.0 * (tp - 1.0) / tp + (dp - 1.0)) * S;
}

/* HBM bytes all ranks' kernels must move, every rank on one GPU of one node; NAN when the
 * formula does not apply (another mode, several nodes, several GPUs). */
static double mem_bytes(const ctx_t* c, mixcomm_op_t op, mixcomm_mode_t mode, double S) {
  const mixcomm_topology_t* t = c->topo;
  if (!c->all_one_gpu || t->inter_size != 1)
    return NAN;
  const double L = t->local_size, Lt = t->local_tp_size;
  const double io = in_bytes(t, op, S) + out_bytes(t, op, S);
  double per_rank;
  if (mode == MIXCOMM_MODE_FUSED_OPT_WAITS_UC)
    per_rank = io + 3.0 * (L - 1.0) * S;
  else if (mode == MIXCOMM_MODE_FUSED_OPT_BYTES1_UC)
    per_rank = io + 3.0 * (L + Lt - 2.0) * S / Lt;
  else
    return NAN;
  return L * per_rank;
}

/* ------------------------------------------------------------------------------------------ */
/* Ceilings                                                                                   */
/* ------------------------------------------------------------------------------------------ */

/* Rank 0 alone: device-to-device copy bandwidth (bytes read + written per second). */
static int measure_copy(ctx_t* c) {
  size_t free_b = 0, total_b = 0;
  CUDA_OK(c, cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo (copy ceiling)");
  size_t bytes = COPY_MAX_BYTES;
  if (bytes > free_b / 4) /* source + destination within half of the free memory */
    bytes = free_b / 4;
  bytes = bytes / (2u << 20) * (2u << 20);
  if (bytes < (2u << 20)) {
    fprintf(stderr, TOOL ": rank 0: only %zu bytes free: copy ceiling not measured\n", free_b);
    return 0;
  }
  void *src = NULL, *dst = NULL;
  cudaEvent_t e0 = NULL, e1 = NULL;
  int rc = -1;
  cudaError_t e;
  double ms[COPY_REPS];
  if ((e = cudaMalloc(&src, bytes)) != cudaSuccess ||
      (e = cudaMalloc(&dst, bytes)) != cudaSuccess) {
    cuda_fail(c, "cudaMalloc (copy ceiling)", e);
    goto out;
  }
  if ((e = cudaMemsetAsync(src, 0x5A, bytes, c->stream)) != cudaSuccess ||
      (e = cudaEventCreate(&e0)) != cudaSuccess || (e = cudaEventCreate(&e1)) != cudaSuccess) {
    cuda_fail(c, "preparing the copy ceiling", e);
    goto out;
  }
  /* One untimed copy, then COPY_REPS timed ones. */
  for (int i = -1; i < COPY_REPS; i++) {
    float t = 0.f;
    if ((e = cudaEventRecord(e0, c->stream)) != cudaSuccess ||
        (e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, c->stream)) !=
            cudaSuccess ||
        (e = cudaEventRecord(e1, c->stream)) != cudaSuccess ||
        (e = cudaEventSynchronize(e1)) != cudaSuccess ||
        (e = cudaEventElapsedTime(&t, e0, e1)) != cudaSuccess) {
      cuda_fail(c, "timing the device copy", e);
      goto out;
    }
    if (i >= 0)
      ms[i] = t;
  }
  {
    const double med_ms = median(ms, COPY_REPS);
    if (med_ms > 0) {
      c->copy_bytes = (double)bytes;
      c->copy_gbps = 2.0 * (double)bytes / (med_ms * 1e-3) / 1e9;
    }
  }
  rc = 0;
out:
  if (e0)
    cudaEventDestroy(e0);
  if (e1)
    cudaEventDestroy(e1);
  if (src)
    cudaFree(src);
  if (dst)
    cudaFree(dst);
  return rc;
}

/* Ranks 0 and 1 (same host): flag round trip through a VMM page mapped by both. Collective:
 * every rank takes part in the workspace exchange and the status agreements (ranks other than
 * 0 and 1 map a page of their own and do nothing else). A failure here is an error of the run
 * (reported, exit status 1), but the benchmark goes on without the ceiling; returns -1 only if
 * the bootstrap failed (the run cannot go on). */
static int measure_rtt(ctx_t* c) {
  const int player = c->rank < 2;
  const int timeout_ms = c->o->timeout_ms > 0 ? c->o->timeout_ms : 30000;
  const unsigned long long timeout_ns = (unsigned long long)timeout_ms * 1000000ull;
  mixcomm__vmm_t v;
  memset(&v, 0, sizeof v);
  pingpong_result_t* d_res = NULL;
  cudaEvent_t e0 = NULL, e1 = NULL;
  volatile uint32_t* mine = NULL;
  volatile uint32_t* peer = NULL;
  uint32_t seq = 1; /* the flags start at 0 */
  int32_t rounds = RTT_ROUNDS;
  double us[RTT_REPS], ev_us[RTT_REPS], result[3] = {NAN, NAN, 0};
  int ok = 1, rc = 0, a;
  mixcomm_status_t st;
  for (int i = 0; i < RTT_REPS; i++)
    us[i] = ev_us[i] = NAN;

  st = mixcomm__vmm_reserve(&v, c->device, player ? c->rank : 0, player ? 2 : 1, 4096);
  if (st != MIXCOMM_SUCCESS) {
    lib_fail(c, "reserving the ping-pong page (flag round trip ceiling)", st);
    ok = 0;
  }
  if ((a = agree(c, ok, "flag round trip: reserve")) != 0) {
    rc = a < 0 ? -1 : 0;
    goto out;
  }
  st = mixcomm__vmm_map(&v, c->bs, timeout_ms, MIXCOMM_SUCCESS);
  if (st != MIXCOMM_SUCCESS) {
    lib_fail(c, "mapping the ping-pong pages (flag round trip ceiling)", st);
    ok = 0;
  }
  if (ok && player) {
    cudaError_t e;
    mine = (volatile uint32_t*)(uintptr_t)v.va[c->rank];
    peer = (volatile uint32_t*)(uintptr_t)v.va[1 - c->rank];
    if ((e = cudaMemset((void*)(uintptr_t)v.va[c->rank], 0, 4096)) != cudaSuccess ||
        (e = cudaMalloc((void**)&d_res, sizeof *d_res)) != cudaSuccess ||
        (e = cudaMemset(d_res, 0, sizeof *d_res)) != cudaSuccess ||
        (e = cudaEventCreate(&e0)) != cudaSuccess || (e = cudaEventCreate(&e1)) != cudaSuccess ||
        (e = cudaDeviceSynchronize()) != cudaSuccess) {
      cuda_fail(c, "preparing the ping-pong", e);
      ok = 0;
    }
  }
  /* After this agreement both flags are 0 and both pages mapped. */
  if ((a = agree(c, ok, "flag round trip: setup")) != 0) {
    rc = a < 0 ? -1 : 0;
    goto out;
  }

  /* Calibration: 1 + RTT_WARM_ROUNDS rounds tell rank 0 how many rounds fit the budget (a
   * round trip takes about 1 us under MPS but milliseconds when processes time-slice). */
  if (player) {
    pingpong_result_t res;
    cudaError_t e = (cudaError_t)pingpong_launch(mine, peer, c->rank == 0, seq, 1,
                                                 RTT_WARM_ROUNDS, timeout_ns, d_res, c->stream);
    if (e == cudaSuccess)
      e = cudaStreamSynchronize(c->stream);
    if (e == cudaSuccess)
      e = cudaMemcpy(&res, d_res, sizeof res, cudaMemcpyDeviceToHost);
    if (e != cudaSuccess) {
      cuda_fail(c, "ping-pong calibration", e);
      ok = 0;
    } else if (res.failed_round) {
      msg_fail(c,
               "ping-pong calibration: no answer from rank %d in round %llu within %d ms (flag "
               "was %llu); flag round trip not measured",
               1 - c->rank, res.failed_round - 1, timeout_ms, res.last_seen);
      ok = 0;
    } else if (c->rank == 0) {
      const double per_round_s = (double)res.elapsed_ns * 1e-9 / RTT_WARM_ROUNDS;
      if (per_round_s > 0 && per_round_s * RTT_ROUNDS * RTT_REPS > RTT_BUDGET_S) {
        rounds = (int32_t)(RTT_BUDGET_S / RTT_REPS / per_round_s);
        if (rounds < 100)
          rounds = 100;
      }
    }
    seq += 1 + RTT_WARM_ROUNDS;
  }
  if ((a = agree(c, ok, "flag round trip: calibration")) != 0) {
    rc = a < 0 ? -1 : 0;
    goto out;
  }
  st = mixcomm__bs_broadcast(c->bs, &rounds, sizeof rounds, 0, "flag round trip: round count");
  if (st != MIXCOMM_SUCCESS) {
    lib_fail(c, "flag round trip: round count", st);
    rc = -1;
    goto out;
  }

  /* RTT_REPS timed kernels, back to back (sequence numbers keep growing, so a kernel that
   * starts late still finds its peer's pending flag). */
  for (int rep = 0; player && ok && rep < RTT_REPS; rep++) {
    pingpong_result_t res;
    float ms = 0.f;
    cudaError_t e = cudaEventRecord(e0, c->stream);
    if (e == cudaSuccess)
      e = (cudaError_t)pingpong_launch(mine, peer, c->rank == 0, seq, RTT_WARM_ROUNDS, rounds,
                                       timeout_ns, d_res, c->stream);
    if (e == cudaSuccess)
      e = cudaEventRecord(e1, c->stream);
    if (e == cudaSuccess)
      e = cudaEventSynchronize(e1);
    if (e == cudaSuccess)
      e = cudaEventElapsedTime(&ms, e0, e1);
    if (e == cudaSuccess)
      e = cudaMemcpy(&res, d_res, sizeof res, cudaMemcpyDeviceToHost);
    if (e != cudaSuccess) {
      cuda_fail(c, "ping-pong", e);
      ok = 0;
    } else if (res.failed_round) {
      msg_fail(c, "ping-pong: no answer from rank %d in round %llu within %d ms", 1 - c->rank,
               res.failed_round - 1, timeout_ms);
      ok = 0;
    } else {
      us[rep] = (double)res.elapsed_ns * 1e-3 / rounds;
      ev_us[rep] = (double)ms * 1e3 / (RTT_WARM_ROUNDS + rounds);
    }
    seq += (uint32_t)(RTT_WARM_ROUNDS + rounds);
  }
  if ((a = agree(c, ok, "flag round trip: timing")) != 0) {
    rc = a < 0 ? -1 : 0;
    goto out;
  }
  if (c->rank == 0) {
    result[0] = median(us, RTT_REPS);
    result[1] = median(ev_us, RTT_REPS);
    result[2] = rounds;
  }
  st = mixcomm__bs_broadcast(c->bs, result, sizeof result, 0, "flag round trip: result");
  if (st != MIXCOMM_SUCCESS) {
    lib_fail(c, "flag round trip: result", st);
    rc = -1;
    goto out;
  }
  c->rtt_us = result[0];
  c->rtt_event_us = result[1];
  c->rtt_rounds = (int)result[2];
out:
  if (e0)
    cudaEventDestroy(e0);
  if (e1)
    cudaEventDestroy(e1);
  if (d_res)
    cudaFree(d_res);
  st = mixcomm__vmm_destroy(&v);
  if (st != MIXCOMM_SUCCESS)
    lib_fail(c, "releasing the ping-pong pages", st);
  return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* One case                                                                                   */
/* ------------------------------------------------------------------------------------------ */

typedef struct refcase {
  double* ref;
  double* abs_sum;
  unsigned char* neg_zero;
  size_t out_n;
} refcase_t;

static void free_ref(refcase_t* r) {
  free(r->ref);
  free(r->abs_sum);
  free(r->neg_zero);
  memset(r, 0, sizeof *r);
}

/* Input rows passed to mixcomm_run for a size case. */
static int64_t input_rows(const ctx_t* c, mixcomm_op_t op, const size_case_t* s) {
  return is_scatter(op) ? (int64_t)c->topo->dp_size * s->rows : s->rows;
}

static int make_ref(ctx_t* c, mixcomm_op_t op, const size_case_t* s, refcase_t* r) {
  const size_t esz = mixcomm_dtype_size(c->o->dtype);
  r->out_n = (size_t)out_bytes(c->topo, op, (double)s->bytes) / esz;
  r->ref = malloc(r->out_n * sizeof *r->ref);
  r->abs_sum = malloc(r->out_n * sizeof *r->abs_sum);
  r->neg_zero = malloc(r->out_n);
  if (r->ref == NULL || r->abs_sum == NULL || r->neg_zero == NULL) {
    free_ref(r);
    msg_fail(c, "%s, %zu bytes: out of host memory for the reference (use --check 0 or a "
                "smaller -e)",
             mixcomm_op_name(op), s->bytes);
    return -1;
  }
  ref_compute(c->topo, c->o->dtype, op, DATA_SEED, input_rows(c, op, s), s->row_elems, 0,
              r->ref, r->abs_sum, r->neg_zero);
  return 0;
}

/* Poison the output, run (one call, or one replay of graph), compare with the reference.
 * Returns the number of wrong elements, or -1 on an error. */
static int64_t checked_call(ctx_t* c, mixcomm_op_t op, mixcomm_mode_t mode,
                            const size_case_t* s, const refcase_t* r, cudaGraphExec_t graph) {
  const size_t esz = mixcomm_dtype_size(c->o->dtype);
  const size_t out_b = r->out_n * esz;
  char what[256];
  snprintf(what, sizeof what, "%s %s %zu bytes%s", mixcomm_op_name(op), mixcomm_mode_name(mode),
           s->bytes, graph ? " (graph replay)" : "");
  cudaError_t e = cudaMemsetAsync(c->d_out, 0xFF, out_b, c->stream);
  if (e != cudaSuccess) {
    cuda_fail(c, "poisoning the output", e);
    return -1;
  }
  if (graph) {
    e = cudaGraphLaunch(graph, c->stream);
    if (e != cudaSuccess) {
      cuda_fail(c, what, e);
      return -1;
    }
  } else {
    mixcomm_status_t st = mixcomm_run(c->h, op, c->d_in, c->d_out, input_rows(c, op, s),
                                      s->row_elems, mode, c->stream);
    if (st != MIXCOMM_SUCCESS) {
      lib_fail(c, what, st);
      return -1;
    }
  }
  e = cudaStreamSynchronize(c->stream);
  if (e != cudaSuccess) {
    cuda_fail(c, what, e);
    return -1;
  }
  int peer = -1;
  mixcomm_status_t ast = mixcomm_handler_async_error(c->h, &peer);
  if (ast != MIXCOMM_SUCCESS) {
    msg_fail(c, "%s: asynchronous error %s (peer world rank %d)", what,
             mixcomm_status_name(ast), peer);
    return -1;
  }
  e = cudaMemcpy(c->h_out, c->d_out, out_b, cudaMemcpyDeviceToHost);
  if (e != cudaSuccess) {
    cuda_fail(c, "copying the output back", e);
    return -1;
  }
  char report[512];
  const int64_t wrong = ref_check(c->o->dtype, c->h_out, r->ref, r->abs_sum, r->neg_zero,
                                  r->out_n, report, sizeof report);
  if (wrong > 0) {
    fprintf(stderr, TOOL ": rank %d: %s: %lld of %zu elements wrong: %s\n", c->rank, what,
            (long long)wrong, r->out_n, report);
    fflush(stderr);
  }
  return wrong;
}

/* Times `iters` calls (or graph replays) with event pairs; *median_us per call. */
static int time_case(ctx_t* c, mixcomm_op_t op, mixcomm_mode_t mode, const size_case_t* s,
                     cudaGraphExec_t graph, double* median_us) {
  const options_t* o = c->o;
  const int64_t rows = input_rows(c, op, s);
  char what[256];
  snprintf(what, sizeof what, "%s %s %zu bytes", mixcomm_op_name(op), mixcomm_mode_name(mode),
           s->bytes);
  for (int i = 0; i < o->warmup; i++) {
    if (graph) {
      CUDA_OK(c, cudaGraphLaunch(graph, c->stream), "warm-up graph replay");
    } else {
      mixcomm_status_t st = mixcomm_run(c->h, op, c->d_in, c->d_out, rows, s->row_elems, mode,
                                        c->stream);
      if (st != MIXCOMM_SUCCESS) {
        lib_fail(c, what, st);
        return -1;
      }
    }
  }
  for (int i = 0; i < o->iters; i++) {
    CUDA_OK(c, cudaEventRecord(c->ev[2 * i], c->stream), "cudaEventRecord");
    if (graph) {
      CUDA_OK(c, cudaGraphLaunch(graph, c->stream), "graph replay");
    } else {
      mixcomm_status_t st = mixcomm_run(c->h, op, c->d_in, c->d_out, rows, s->row_elems, mode,
                                        c->stream);
      if (st != MIXCOMM_SUCCESS) {
        lib_fail(c, what, st);
        return -1;
      }
    }
    CUDA_OK(c, cudaEventRecord(c->ev[2 * i + 1], c->stream), "cudaEventRecord");
  }
  CUDA_OK(c, cudaStreamSynchronize(c->stream), what);
  int peer = -1;
  mixcomm_status_t ast = mixcomm_handler_async_error(c->h, &peer);
  if (ast != MIXCOMM_SUCCESS) {
    msg_fail(c, "%s: asynchronous error %s (peer world rank %d)", what,
             mixcomm_status_name(ast), peer);
    return -1;
  }
  double* t = malloc((size_t)o->iters * sizeof *t);
  if (t == NULL) {
    msg_fail(c, "out of host memory");
    return -1;
  }
  for (int i = 0; i < o->iters; i++) {
    float ms = 0.f;
    cudaError_t e = cudaEventElapsedTime(&ms, c->ev[2 * i], c->ev[2 * i + 1]);
    if (e != cudaSuccess) {
      free(t);
      cuda_fail(c, "cudaEventElapsedTime", e);
      return -1;
    }
    t[i] = (double)ms * 1e3 / (graph ? o->graph_calls : 1);
  }
  *median_us = median(t, o->iters);
  free(t);
  return 0;
}

/* Capture graph_calls calls into a graph; *exec stays NULL on failure. */
static int capture(ctx_t* c, mixcomm_op_t op, mixcomm_mode_t mode, const size_case_t* s,
                   cudaGraphExec_t* exec) {
  *exec = NULL;
  cudaGraph_t g = NULL;
  CUDA_OK(c, cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeGlobal),
          "cudaStreamBeginCapture");
  mixcomm_status_t st = MIXCOMM_SUCCESS;
  for (int k = 0; k < c->o->graph_calls && st == MIXCOMM_SUCCESS; k++)
    st = mixcomm_run(c->h, op, c->d_in, c->d_out, input_rows(c, op, s), s->row_elems, mode,
                     c->stream);
  cudaError_t e = cudaStreamEndCapture(c->stream, &g);
  if (st != MIXCOMM_SUCCESS) {
    if (g)
      cudaGraphDestroy(g);
    lib_fail(c, "mixcomm_run during graph capture", st);
    return -1;
  }
  if (e != cudaSuccess) {
    if (g)
      cudaGraphDestroy(g);
    cuda_fail(c, "cudaStreamEndCapture", e);
    return -1;
  }
  e = cudaGraphInstantiate(exec, g, 0);
  cudaGraphDestroy(g);
  if (e != cudaSuccess) {
    *exec = NULL;
    cuda_fail(c, "cudaGraphInstantiate", e);
    return -1;
  }
  return 0;
}

typedef struct case_result {
  double median_us;
  int64_t wrong;
  int32_t failed;
  int32_t pad;
} case_result_t;

static int add_row(ctx_t* c, const row_t* r) {
  if (c->n_rows == c->cap_rows) {
    int cap = c->cap_rows ? 2 * c->cap_rows : 64;
    row_t* n = realloc(c->rows, (size_t)cap * sizeof *n);
    if (n == NULL)
      return -1;
    c->rows = n;
    c->cap_rows = cap;
  }
  c->rows[c->n_rows++] = *r;
  return 0;
}

static void fmt_opt(char* buf, size_t cap, const char* fmt, double v) {
  if (isnan(v))
    snprintf(buf, cap, "-");
  else
    snprintf(buf, cap, fmt, v);
}

static void print_row(const ctx_t* c, const row_t* r) {
  char mem[32], frac[32], lat[32], flo[32], xfl[32];
  fmt_opt(mem, sizeof mem, "%.1f", r->mem_gbps);
  fmt_opt(frac, sizeof frac, "%.3f", r->frac_copy);
  fmt_opt(lat, sizeof lat, "%.2f", r->lat_x_rtt);
  fmt_opt(flo, sizeof flo, "%.2f", r->floor_us);
  fmt_opt(xfl, sizeof xfl, "%.2f", r->x_floor);
  const size_t esz = mixcomm_dtype_size(c->o->dtype);
  if (r->failed)
    printf("%12zu %12zu %5s %23s %19s %10s %11s %11s %7lld %9s %9s %9s %8s %7s\n",
           r->size.bytes, r->size.bytes / esz, short_dtype(c->o->dtype), mixcomm_op_name(r->op),
           mixcomm_mode_name(r->mode), "error", "-", "-", (long long)r->wrong, "-", "-", "-", "-",
           "-");
  else
    printf("%12zu %12zu %5s %23s %19s %10.2f %11.2f %11.2f %7lld %9s %9s %9s %8s %7s\n",
           r->size.bytes, r->size.bytes / esz, short_dtype(c->o->dtype), mixcomm_op_name(r->op),
           mixcomm_mode_name(r->mode), r->time_us, r->algbw, r->busbw, (long long)r->wrong, mem,
           frac, lat, flo, xfl);
  fflush(stdout);
}

/* One (op, size, mode) on every rank. Returns -1 when the run must stop (an error anywhere). */
static int run_case(ctx_t* c, mixcomm_op_t op, mixcomm_mode_t mode, const size_case_t* s,
                    const refcase_t* ref, int smallest) {
  const options_t* o = c->o;
  case_result_t mine = {NAN, 0, 0, 0};
  cudaGraphExec_t graph = NULL;
  int ok = 1;

  if (barrier(c, "case start") != 0)
    return -1;
  if (o->check) {
    int64_t w = checked_call(c, op, mode, s, ref, NULL);
    if (w < 0)
      ok = 0;
    else
      mine.wrong += w;
  }
  /* Hosts finish their checks at different times: start timing together. */
  if (barrier(c, "after the check") != 0)
    return -1;
  if (ok && o->graph && capture(c, op, mode, s, &graph) != 0)
    ok = 0;
  if (ok && time_case(c, op, mode, s, graph, &mine.median_us) != 0)
    ok = 0;
  perf_breakdown_t bd;
  int have_bd = 0;
  if (ok && c->rank == 0 && s->bytes <= SMALL_MAX_BYTES && perf_breakdown_available(c->h)) {
    char err[256];
    const int calls = o->graph ? o->iters * o->graph_calls : o->iters;
    if (perf_breakdown_read(c->h, calls, &bd, err, sizeof err) == 0)
      have_bd = 1;
    else
      fprintf(stderr, TOOL ": rank 0: %s\n", err);
  }
  if (ok && graph && o->check) {
    int64_t w = checked_call(c, op, mode, s, ref, graph);
    if (w < 0)
      ok = 0;
    else
      mine.wrong += w;
  }
  if (graph) {
    cudaError_t e = cudaGraphExecDestroy(graph);
    if (e != cudaSuccess && ok) {
      cuda_fail(c, "cudaGraphExecDestroy", e);
      ok = 0;
    }
  }
  mine.failed = !ok;

  case_result_t* all = calloc((size_t)c->world, sizeof *all);
  if (all == NULL) {
    msg_fail(c, "out of host memory");
    return -1;
  }
  mixcomm_status_t st = mixcomm__bs_allgather(c->bs, &mine, all, sizeof mine, "case results");
  if (st != MIXCOMM_SUCCESS) {
    lib_fail(c, "gathering the results", st);
    free(all);
    return -1;
  }
  row_t r;
  memset(&r, 0, sizeof r);
  r.op = op;
  r.mode = mode;
  r.resolved = mode;
  if (mode == MIXCOMM_MODE_DEFAULT || mode == MIXCOMM_MODE_AUTOTUNE) {
    mixcomm_mode_t m;
    if (mixcomm_select_autotune_mode(c->h, op, input_rows(c, op, s), s->row_elems, &m) ==
        MIXCOMM_SUCCESS)
      r.resolved = m;
  }
  r.size = *s;
  r.time_us = 0;
  int any_failed = 0;
  for (int i = 0; i < c->world; i++) {
    any_failed |= all[i].failed != 0;
    r.wrong += all[i].wrong;
    if (!all[i].failed && all[i].median_us > r.time_us)
      r.time_us = all[i].median_us;
  }
  r.failed = any_failed;
  if (c->rank == 0) {
    r.rank_us = malloc((size_t)c->world * sizeof *r.rank_us);
    for (int i = 0; r.rank_us != NULL && i < c->world; i++)
      r.rank_us[i] = all[i].failed ? NAN : all[i].median_us;
  }
  free(all);
  const double S = (double)s->bytes;
  if (!any_failed && r.time_us > 0) {
    const double t_s = r.time_us * 1e-6;
    r.algbw = in_bytes(c->topo, op, S) / t_s / 1e9;
    r.busbw = bus_bytes(c->topo, S) / t_s / 1e9;
    r.mem_bytes = mem_bytes(c, op, r.resolved, S);
    r.mem_gbps = isnan(r.mem_bytes) ? NAN : r.mem_bytes / t_s / 1e9;
    r.frac_copy = isnan(r.mem_gbps) || isnan(c->copy_gbps) ? NAN : r.mem_gbps / c->copy_gbps;
    r.lat_x_rtt = smallest && !isnan(c->rtt_us) && c->rtt_us > 0 ? r.time_us / c->rtt_us : NAN;
  } else {
    r.time_us = r.algbw = r.busbw = NAN;
    r.mem_bytes = r.mem_gbps = r.frac_copy = r.lat_x_rtt = NAN;
  }
  r.floor_us = r.x_floor = NAN;
  if (!any_failed && s->bytes <= SMALL_MAX_BYTES &&
      mixcomm__launch_shape(c->h, op, mode, c->d_in, c->d_out, input_rows(c, op, s),
                            s->row_elems, &r.grid, &r.block, &r.steps) == MIXCOMM_SUCCESS &&
      r.grid > 0) {
    char err[256];
    if (perf_floor(&c->floors, c->bs, c->world, r.grid, r.block, o->graph ? o->graph_calls : 10,
                   c->stream, &r.floor_us, err, sizeof err) != 0) {
      msg_fail(c, "%s", err);
      free(r.rank_us);
      return -1;
    }
    if (!isnan(c->rtt_us) && r.time_us > 0)
      r.x_floor = r.time_us / (r.floor_us + c->rtt_us);
  }
  c->total_wrong += r.wrong;
  c->own_wrong += mine.wrong;
  if (c->rank == 0) {
    print_row(c, &r);
    if (have_bd)
      printf("# breakdown (rank 0, CTA 0, mean of %d calls, us): gap %.2f wait-prev %.2f claim "
             "%.2f produce %.2f relay %.2f consume %.2f finish %.2f exit %.2f | shape %d x %d, "
             "%d step(s)\n",
             bd.calls, bd.gap, bd.resolve, bd.claim, bd.produce, bd.relay, bd.consume, bd.finish,
             bd.exit, r.grid, r.block, r.steps);
    if (add_row(c, &r) != 0) {
      free(r.rank_us);
      msg_fail(c, "out of host memory");
      return -1;
    }
  }
  if (any_failed) {
    c->failed = 1;
    return -1;
  }
  return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Output                                                                                     */
/* ------------------------------------------------------------------------------------------ */

static void json_str(FILE* f, const char* s) {
  fputc('"', f);
  for (const unsigned char* p = (const unsigned char*)s; *p; p++) {
    if (*p == '"' || *p == '\\')
      fprintf(f, "\\%c", *p);
    else if (*p == '\n')
      fputs("\\n", f);
    else if (*p < 0x20)
      fprintf(f, "\\u%04x", *p);
    else
      fputc(*p, f);
  }
  fputc('"', f);
}

static void json_num(FILE* f, double v) {
  if (isnan(v) || isinf(v))
    fputs("null", f);
  else
    fprintf(f, "%.10g", v);
}

static const char* const k_def_size =
    "S = size: a rank's input bytes (ALLREDUCE, ALLGATHER, ALLREDUCE_ALLGATHER) or OUTPUT bytes "
    "(REDUCESCATTER, REDUCESCATTER_ALLREDUCE); count = S / element size";
static const char* const k_def_time =
    "time_us = max over ranks of each rank's median time of one call (CUDA events; graph "
    "mode: replay time / calls per graph)";
static const char* const k_def_algbw =
    "algbw = a rank's input bytes / time (S; dp*S for the reduce-scatter types)";
static const char* const k_def_busbw =
    "busbw = (2(tp-1)/tp + (dp-1)) * S / time: AR 2(n-1)/n*S, AG and RS (n-1)/n*(n*S), AR+AG "
    "and RS+AR the sum of the TP all-reduce and DP gather/scatter phases";
static const char* const k_def_mem =
    "mem = HBM bytes all ranks' kernels must move when every rank runs on this GPU (one node): "
    "per rank in + out + 3*(L-1)*S (WAITS_UC, one-shot) or in + out + 3*(L+Lt-2)*S/Lt "
    "(BYTES1_UC, two-shot); in = dp*S for RS types else S, out = dp*S for AG types else S; 3 = "
    "peer write + read + re-poison of each consumed workspace row; times L ranks";
static const char* const k_def_frac =
    "mem_GBps = mem / time; frac_copy = mem_GBps / device copy bandwidth (same run)";
static const char* const k_def_lat =
    "lat_x_rtt = time / cross-process flag round trip (same run), smallest size only";
static const char* const k_def_floor =
    "floor_us = launch floor of the call's launch shape (same run, every rank at once: a graph "
    "of kernels of that grid and block whose threads load and store 16 bytes), sizes <= 1 MiB; "
    "x_floor = time / (floor_us + flag round trip)";

static void print_left_out(const ctx_t* c) {
  if (c->rank != 0 || !c->o->mode_all)
    return;
  for (int m = MIXCOMM_MODE_FUSED_OPT_WAITS_MC; m <= MIXCOMM_MODE_FUSED_OPT_BYTES2_UC; m++) {
    const char* why = mixcomm_mode_invalid_reason(c->h, (mixcomm_mode_t)m);
    if (why != NULL)
      printf("# left out: %s: %s\n", mixcomm_mode_name((mixcomm_mode_t)m), why);
  }
}

static void print_header(const ctx_t* c) {
  const options_t* o = c->o;
  const mixcomm_topology_t* t = c->topo;
  char date[64];
  time_t now = time(NULL);
  struct tm tmv;
  localtime_r(&now, &tmv);
  strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S %Z", &tmv);
  printf("# " TOOL " (mixcomm %d.%d.%d)  %s  host %s\n", mixcomm_version() / 10000,
         mixcomm_version() / 100 % 100, mixcomm_version() % 100, date, c->infos[0].host);
  printf("# command: %s\n", o->cmdline);
  printf("# device (rank 0): %s, device %d of %d, %d SMs; %d rank(s) on this GPU%s\n",
         c->infos[0].name, c->infos[0].device, c->infos[0].device_count, c->infos[0].sm_count,
         c->sharing, c->all_one_gpu ? " (all ranks)" : "");
  printf("# world %d = %d node(s) x %d local; tp %d (local %d x inter %d), dp %d (local %d x "
         "inter %d)\n",
         t->world_size, t->inter_size, t->local_size, t->tp_size, t->local_tp_size,
         t->inter_tp_size, t->dp_size, t->local_dp_size, t->inter_dp_size);
  printf("# dtype %s; grid %d CTAs per rank, blocks of <= %d threads; row %zu B; warm-up %d, "
         "timed %d %s; check %s; autotune %s\n",
         mixcomm_dtype_name(o->dtype), c->grid, mixcomm_handler_plan(c->h)->max_block_size,
         o->row_bytes, o->warmup, o->iters,
         o->graph ? "graph replays" : "calls", o->check ? "on" : "off",
         o->autotune ? "on" : "off");
  if (o->graph)
    printf("# graph mode: %d calls captured per graph; time per call = replay time / %d\n",
           o->graph_calls, o->graph_calls);
  if (!isnan(c->copy_gbps))
    printf("# ceiling: device copy %.1f GB/s (read + write; %.0f MiB D2D memcpy, median of %d, "
           "rank 0 alone)\n",
           c->copy_gbps, c->copy_bytes / (1 << 20), COPY_REPS);
  else
    printf("# ceiling: device copy not measured\n");
  if (!isnan(c->rtt_us))
    printf("# ceiling: flag round trip %.3f us (ranks 0 <-> 1 through a VMM page; %d round "
           "trips after %d warm, median of %d, in-kernel %%globaltimer; with events around "
           "the kernel: %.3f us)\n",
           c->rtt_us, c->rtt_rounds, RTT_WARM_ROUNDS, RTT_REPS, c->rtt_event_us);
  else
    printf("# ceiling: flag round trip not measured (needs ranks 0 and 1 on one host)\n");
  if (!isnan(c->rtt_us) && c->rtt_us > 50.0)
    printf("# WARNING: a flag round trip of %.0f us means the processes time-slice the GPU: "
           "start the MPS daemon (nvidia-cuda-mps-control -d) before running several ranks on "
           "one GPU\n",
           c->rtt_us);
  print_left_out(c);
  printf("# %s\n# %s\n# %s\n# %s\n# %s\n# %s\n# %s\n# %s\n", k_def_size, k_def_time,
         k_def_algbw, k_def_busbw, k_def_mem, k_def_frac, k_def_lat, k_def_floor);
  printf("# GB/s = 1e9 bytes per second; '-' = not applicable\n#\n");
  printf("# %10s %12s %5s %23s %19s %10s %11s %11s %7s %9s %9s %9s %8s %7s\n", "size(B)",
         "count", "type", "op", "mode", "time_us", "algbw(GB/s)", "busbw(GB/s)", "#wrong",
         "mem_GBps", "frac_copy", "lat_x_rtt", "floor_us", "x_floor");
  fflush(stdout);
}

static int write_json(const ctx_t* c, const char* path) {
  FILE* f = fopen(path, "w");
  if (f == NULL) {
    fprintf(stderr, TOOL ": rank 0: cannot write %s: %s\n", path, strerror(errno));
    return -1;
  }
  const options_t* o = c->o;
  const mixcomm_topology_t* t = c->topo;
  char date[64];
  time_t now = time(NULL);
  struct tm tmv;
  gmtime_r(&now, &tmv);
  strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tmv);
  fprintf(f, "{\n  \"header\": {\n    \"tool\": \"" TOOL "\",\n    \"mixcomm_version\": %d,\n",
          mixcomm_version());
  fprintf(f, "    \"date\": \"%s\",\n    \"host\": ", date);
  json_str(f, c->infos[0].host);
  fprintf(f, ",\n    \"command\": ");
  json_str(f, o->cmdline);
  fprintf(f, ",\n    \"device\": ");
  json_str(f, c->infos[0].name);
  fprintf(f, ",\n    \"sm_count\": %d,\n    \"ranks_on_gpu\": %d,\n    \"all_ranks_one_gpu\": %s,\n",
          c->infos[0].sm_count, c->sharing, c->all_one_gpu ? "true" : "false");
  fprintf(f,
          "    \"world_size\": %d,\n    \"local_size\": %d,\n    \"inter_size\": %d,\n"
          "    \"tp_size\": %d,\n    \"dp_size\": %d,\n    \"local_tp_size\": %d,\n"
          "    \"local_dp_size\": %d,\n    \"inter_tp_size\": %d,\n    \"inter_dp_size\": %d,\n",
          t->world_size, t->local_size, t->inter_size, t->tp_size, t->dp_size, t->local_tp_size,
          t->local_dp_size, t->inter_tp_size, t->inter_dp_size);
  fprintf(f,
          "    \"dtype\": \"%s\",\n    \"grid_size\": %d,\n    \"row_bytes\": %zu,\n"
          "    \"warmup\": %d,\n    \"iters\": %d,\n    \"graph\": %s,\n    \"graph_calls\": %d,\n"
          "    \"check\": %s,\n    \"autotune\": %s,\n",
          mixcomm_dtype_name(o->dtype), c->grid, o->row_bytes, o->warmup, o->iters,
          o->graph ? "true" : "false", o->graph_calls, o->check ? "true" : "false",
          o->autotune ? "true" : "false");
  fprintf(f, "    \"ceilings\": {\"copy_GBps\": ");
  json_num(f, c->copy_gbps);
  fprintf(f, ", \"copy_bytes\": ");
  json_num(f, c->copy_bytes);
  fprintf(f, ", \"copy_reps\": %d, \"flag_rtt_us\": ", COPY_REPS);
  json_num(f, c->rtt_us);
  fprintf(f, ", \"flag_rtt_event_us\": ");
  json_num(f, c->rtt_event_us);
  fprintf(f, ", \"flag_rtt_round_trips\": %d},\n", c->rtt_rounds);
  fprintf(f, "    \"definitions\": {\n      \"size\": ");
  json_str(f, k_def_size);
  fprintf(f, ",\n      \"time_us\": ");
  json_str(f, k_def_time);
  fprintf(f, ",\n      \"algbw\": ");
  json_str(f, k_def_algbw);
  fprintf(f, ",\n      \"busbw\": ");
  json_str(f, k_def_busbw);
  fprintf(f, ",\n      \"mem\": ");
  json_str(f, k_def_mem);
  fprintf(f, ",\n      \"frac_copy\": ");
  json_str(f, k_def_frac);
  fprintf(f, ",\n      \"lat_x_rtt\": ");
  json_str(f, k_def_lat);
  fprintf(f, ",\n      \"floor_us\": ");
  json_str(f, k_def_floor);
  fprintf(f, "\n    }\n  },\n  \"rows\": [");
  const size_t esz = mixcomm_dtype_size(o->dtype);
  for (int i = 0; i < c->n_rows; i++) {
    const row_t* r = &c->rows[i];
    fprintf(f, "%s\n    {\"size\": %zu, \"count\": %zu, \"rows\": %lld, \"row_elems\": %lld, "
               "\"type\": \"%s\", \"op\": \"%s\", \"mode\": \"%s\", \"resolved_mode\": \"%s\", "
               "\"ok\": %s, \"time_us\": ",
            i ? "," : "", r->size.bytes, r->size.bytes / esz, (long long)r->size.rows,
            (long long)r->size.row_elems, short_dtype(o->dtype), mixcomm_op_name(r->op),
            mixcomm_mode_name(r->mode), mixcomm_mode_name(r->resolved),
            r->failed ? "false" : "true");
    json_num(f, r->time_us);
    fprintf(f, ", \"algbw_GBps\": ");
    json_num(f, r->algbw);
    fprintf(f, ", \"busbw_GBps\": ");
    json_num(f, r->busbw);
    fprintf(f, ", \"wrong\": %lld, \"mem_bytes\": ", (long long)r->wrong);
    json_num(f, r->mem_bytes);
    fprintf(f, ", \"mem_GBps\": ");
    json_num(f, r->mem_gbps);
    fprintf(f, ", \"frac_copy\": ");
    json_num(f, r->frac_copy);
    fprintf(f, ", \"lat_x_rtt\": ");
    json_num(f, r->lat_x_rtt);
    fprintf(f, ", \"floor_us\": ");
    json_num(f, r->floor_us);
    fprintf(f, ", \"x_floor\": ");
    json_num(f, r->x_floor);
    fprintf(f, ", \"grid\": %d, \"block\": %d, \"steps\": %d", r->grid, r->block, r->steps);
    fprintf(f, ", \"rank_median_us\": [");
    for (int k = 0; r->rank_us != NULL && k < c->world; k++) {
      if (k)
        fputs(", ", f);
      json_num(f, r->rank_us[k]);
    }
    fprintf(f, "]}");
  }
  fprintf(f, "\n  ],\n  \"total_wrong\": %lld,\n  \"ok\": %s\n}\n", (long long)c->total_wrong,
          (c->failed || c->total_wrong) ? "false" : "true");
  int bad = ferror(f);
  if (fclose(f) != 0 || bad) {
    fprintf(stderr, TOOL ": rank 0: error writing %s\n", path);
    return -1;
  }
  return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* One rank                                                                                   */
/* ------------------------------------------------------------------------------------------ */

static int gather_devices(ctx_t* c) {
  devinfo_t me;
  memset(&me, 0, sizeof me);
  if (gethostname(me.host, sizeof me.host - 1) != 0)
    snprintf(me.host, sizeof me.host, "unknown");
  struct cudaDeviceProp prop;
  CUDA_OK(c, cudaGetDeviceProperties(&prop, c->device), "cudaGetDeviceProperties");
  memcpy(me.uuid, &prop.uuid, sizeof me.uuid);
  me.device = c->device;
  me.sm_count = prop.multiProcessorCount;
  int n = 0;
  CUDA_OK(c, cudaGetDeviceCount(&n), "cudaGetDeviceCount");
  me.device_count = n;
  memcpy(me.name, prop.name, sizeof me.name - 1); /* me is zeroed: stays terminated */
  c->infos = calloc((size_t)c->world, sizeof *c->infos);
  if (c->infos == NULL) {
    msg_fail(c, "out of host memory");
    return -1;
  }
  mixcomm_status_t st =
      mixcomm__bs_allgather(c->bs, &me, c->infos, sizeof me, "sharing device identities");
  if (st != MIXCOMM_SUCCESS) {
    lib_fail(c, "sharing device identities", st);
    return -1;
  }
  /* Ranks on each rank's GPU; the default grid must fit the most crowded GPU (the handler
   * requires the same grid on every rank). */
  int grid = 0;
  c->sharing = 0;
  for (int i = 0; i < c->world; i++) {
    int on_i = 0;
    for (int j = 0; j < c->world; j++)
      on_i += !strncmp(c->infos[i].host, c->infos[j].host, HOST_NAME_CAP) &&
              !memcmp(c->infos[i].uuid, c->infos[j].uuid, 16);
    if (i == c->rank)
      c->sharing = on_i;
    if (i == 0)
      c->all_one_gpu = on_i == c->world;
    const int g = c->infos[i].sm_count / on_i;
    if (i == 0 || g < grid)
      grid = g;
  }
  c->grid = c->o->grid_size > 0 ? c->o->grid_size : (grid > 0 ? grid : 1);
  return 0;
}

/* The ops and modes to run; identical on every rank (checked). */
static int select_work(ctx_t* c, mixcomm_op_t* ops, int* n_ops, mixcomm_mode_t* modes,
                       int* n_modes) {
  const options_t* o = c->o;
  mixcomm_op_t valid_ops[MIXCOMM_NUM_OPS];
  mixcomm_mode_t valid_modes[MIXCOMM_NUM_MODES];
  int nvo = 0, nvm = 0;
  mixcomm_status_t st = mixcomm_get_valid_op_list(c->h, valid_ops, MIXCOMM_NUM_OPS, &nvo);
  if (st == MIXCOMM_SUCCESS)
    st = mixcomm_get_valid_mode_list(c->h, valid_modes, MIXCOMM_NUM_MODES, &nvm);
  if (st != MIXCOMM_SUCCESS) {
    lib_fail(c, "listing the valid ops and modes", st);
    return -1;
  }
  if (nvo > MIXCOMM_NUM_OPS)
    nvo = MIXCOMM_NUM_OPS;
  if (nvm > MIXCOMM_NUM_MODES)
    nvm = MIXCOMM_NUM_MODES;
  *n_ops = 0;
  if (o->op_all) {
    for (int i = 0; i < nvo; i++)
      ops[(*n_ops)++] = valid_ops[i];
  }
  for (int i = 0; i < o->n_ops; i++) {
    int valid = 0, dup = 0;
    for (int k = 0; k < nvo; k++)
      valid |= valid_ops[k] == o->ops[i];
    for (int k = 0; k < *n_ops; k++)
      dup |= ops[k] == o->ops[i];
    if (!valid) { /* the same on every rank: rank 0 says it */
      if (c->rank == 0)
        fprintf(stderr, TOOL ": rank %d: op %s is not valid for this handler\n", c->rank,
                mixcomm_op_name(o->ops[i]));
      c->failed = 1;
      return -1;
    }
    if (!dup)
      ops[(*n_ops)++] = o->ops[i];
  }
  *n_modes = 0;
  if (o->mode_all) {
    for (int i = 0; i < nvm; i++)
      if (valid_modes[i] >= MIXCOMM_MODE_FUSED_OPT_WAITS_MC &&
          valid_modes[i] <= MIXCOMM_MODE_FUSED_OPT_BYTES2_UC)
        modes[(*n_modes)++] = valid_modes[i];
  }
  for (int i = 0; i < o->n_modes; i++) {
    const mixcomm_mode_t m = o->modes[i];
    int dup = 0;
    for (int k = 0; k < *n_modes; k++)
      dup |= modes[k] == m;
    if (dup)
      continue;
    if (m != MIXCOMM_MODE_DEFAULT) {
      const char* why = mixcomm_mode_invalid_reason(c->h, m);
      if (why != NULL) { /* the same on every rank: rank 0 says it */
        if (c->rank == 0)
          fprintf(stderr, TOOL ": rank %d: mode %s is not valid here: %s\n", c->rank,
                  mixcomm_mode_name(m), why);
        c->failed = 1;
        return -1;
      }
    }
    if (*n_modes < MAX_LIST + MIXCOMM_NUM_MODES)
      modes[(*n_modes)++] = m;
  }
  if (*n_modes == 0) {
    if (c->rank == 0)
      fprintf(stderr,
              TOOL ": rank %d: no mode to run (no fused mode is valid here; name one with -m)\n",
              c->rank);
    c->failed = 1;
    return -1;
  }
  /* Every rank must run the same list. */
  uint64_t sig = 0;
  for (int i = 0; i < *n_ops; i++)
    sig = sig * 31 + (uint64_t)ops[i] + 1;
  for (int i = 0; i < *n_modes; i++)
    sig = sig * 37 + (uint64_t)(modes[i] + 2);
  uint64_t* all = calloc((size_t)c->world, sizeof *all);
  if (all == NULL) {
    msg_fail(c, "out of host memory");
    return -1;
  }
  st = mixcomm__bs_allgather(c->bs, &sig, all, sizeof sig, "agreeing on the work list");
  if (st != MIXCOMM_SUCCESS) {
    free(all);
    lib_fail(c, "agreeing on the work list", st);
    return -1;
  }
  for (int i = 0; i < c->world; i++) {
    if (all[i] != sig) {
      fprintf(stderr, TOOL ": rank %d: rank %d would run other ops or modes than this rank\n",
              c->rank, i);
      free(all);
      c->failed = 1;
      return -1;
    }
  }
  free(all);
  return 0;
}

static int bench(ctx_t* c) {
  const options_t* o = c->o;
  mixcomm_op_t ops[MIXCOMM_NUM_OPS + MAX_LIST];
  mixcomm_mode_t modes[MAX_LIST + MIXCOMM_NUM_MODES];
  int n_ops = 0, n_modes = 0;
  if (select_work(c, ops, &n_ops, modes, &n_modes) != 0)
    return -1;

  /* Ceilings, before the benchmark buffers take memory. */
  int ok = 1;
  if (c->rank == 0)
    measure_copy(c); /* a failure is reported and fails the run; the benchmark goes on */
  if (agree(c, 1, "device copy ceiling") != 0) /* the others wait here meanwhile */
    return -1;
  double copy[2] = {c->copy_gbps, c->copy_bytes};
  mixcomm_status_t st = mixcomm__bs_broadcast(c->bs, copy, sizeof copy, 0, "copy ceiling");
  if (st != MIXCOMM_SUCCESS) {
    lib_fail(c, "sharing the copy ceiling", st);
    return -1;
  }
  c->copy_gbps = copy[0];
  c->copy_bytes = copy[1];
  if (c->world >= 2 && !strncmp(c->infos[0].host, c->infos[1].host, HOST_NAME_CAP) &&
      measure_rtt(c) != 0)
    return -1;

  /* Buffers for the largest size: inputs up to dp*S (RS types), outputs up to dp*S (AG
   * types). */
  const size_t esz = mixcomm_dtype_size(o->dtype);
  const size_t smax = o->sizes[o->n_sizes - 1].bytes;
  c->in_cap = c->out_cap = (size_t)c->topo->dp_size * smax;
  cudaError_t e;
  void* h_in = malloc(c->in_cap);
  c->h_out = malloc(c->out_cap);
  if (h_in == NULL || c->h_out == NULL) {
    msg_fail(c, "out of host memory for %zu-byte buffers", c->in_cap);
    ok = 0;
  } else if ((e = cudaMalloc(&c->d_in, c->in_cap)) != cudaSuccess ||
             (e = cudaMalloc(&c->d_out, c->out_cap)) != cudaSuccess) {
    cuda_fail(c, "allocating the benchmark buffers", e);
    ok = 0;
  } else {
    ref_fill_input(o->dtype, DATA_SEED, c->rank, h_in, c->in_cap / esz, 0);
    /* Legacy-stream copies do not order with the non-blocking benchmark stream: wait. */
    if ((e = cudaMemcpy(c->d_in, h_in, c->in_cap, cudaMemcpyHostToDevice)) != cudaSuccess ||
        (e = cudaMemset(c->d_out, 0xFF, c->out_cap)) != cudaSuccess ||
        (e = cudaDeviceSynchronize()) != cudaSuccess) {
      cuda_fail(c, "filling the input", e);
      ok = 0;
    }
  }
  free(h_in);
  c->ev = calloc((size_t)2 * o->iters, sizeof *c->ev);
  if (ok && c->ev == NULL) {
    msg_fail(c, "out of host memory");
    ok = 0;
  }
  for (int i = 0; ok && i < 2 * o->iters; i++) {
    if ((e = cudaEventCreate(&c->ev[i])) != cudaSuccess) {
      cuda_fail(c, "cudaEventCreate", e);
      ok = 0;
    } else {
      c->n_ev++;
    }
  }
  if (agree(c, ok, "allocating the benchmark buffers") != 0)
    return -1;

  if (c->rank == 0)
    print_header(c);

  for (int oi = 0; oi < n_ops; oi++) {
    for (int si = 0; si < o->n_sizes; si++) {
      const size_case_t* s = &o->sizes[si];
      refcase_t ref;
      memset(&ref, 0, sizeof ref);
      ok = 1;
      if (o->check && make_ref(c, ops[oi], s, &ref) != 0)
        ok = 0;
      if (agree(c, ok, "reference") != 0) {
        free_ref(&ref);
        return -1;
      }
      for (int mi = 0; mi < n_modes; mi++) {
        if (run_case(c, ops[oi], modes[mi], s, &ref, si == 0) != 0) {
          free_ref(&ref);
          return -1;
        }
      }
      free_ref(&ref);
    }
  }
  return 0;
}

static void release(ctx_t* c) {
  for (int i = 0; i < c->n_ev; i++)
    cudaEventDestroy(c->ev[i]);
  free(c->ev);
  c->ev = NULL;
  if (c->d_in)
    cudaFree(c->d_in);
  if (c->d_out)
    cudaFree(c->d_out);
  c->d_in = c->d_out = NULL;
  perf_floor_free(&c->floors);
  free(c->h_out);
  c->h_out = NULL;
  for (int i = 0; i < c->n_rows; i++)
    free(c->rows[i].rank_us);
  free(c->rows);
  c->rows = NULL;
  free(c->infos);
  c->infos = NULL;
}

static int rank_main(const spawn_rank_t* r, void* arg) {
  const options_t* o = arg;
  ctx_t c;
  memset(&c, 0, sizeof c);
  c.o = o;
  c.r = r;
  c.rank = r->rank;
  c.world = r->world_size;
  c.copy_gbps = c.copy_bytes = NAN;
  c.rtt_us = c.rtt_event_us = NAN;

  int n_dev = 0;
  cudaError_t e = cudaGetDeviceCount(&n_dev);
  if (e != cudaSuccess || n_dev < 1) {
    if (e == cudaSuccess)
      e = cudaErrorNoDevice;
    const char* missing = mixcomm__cuda_missing_reason((int)e);
    if (missing == NULL)
      cuda_fail(&c, "cudaGetDeviceCount", e);
    else
      fprintf(stderr, TOOL ": rank %d: %s (%s)\n", c.rank, missing, cudaGetErrorName(e));
    return 1;
  }
  c.device = r->host_rank % n_dev; /* emulated nodes on distinct GPUs when there are enough */
  e = cudaSetDevice(c.device);
  if (e != cudaSuccess) {
    cuda_fail(&c, "cudaSetDevice", e);
    return 1;
  }

  mixcomm_tcp_options_t tcp = r->tcp;
  /* Ranks wait for each other's host work (references of large sizes) in bootstrap calls:
   * allow more than the default minute unless the user chose. */
  const char* bto = getenv("MIXCOMM_BOOTSTRAP_TIMEOUT_MS");
  if (tcp.timeout_ms == 0 && (bto == NULL || bto[0] == '\0'))
    tcp.timeout_ms = 600000;
  mixcomm_status_t st = mixcomm_bootstrap_tcp_create(&tcp, r->rank, r->world_size, &c.bs);
  if (st != MIXCOMM_SUCCESS) {
    lib_fail(&c, "creating the TCP bootstrap", st);
    return 1;
  }
  if (gather_devices(&c) != 0)
    goto done;
  e = cudaStreamCreateWithFlags(&c.stream, cudaStreamNonBlocking);
  if (e != cudaSuccess) {
    cuda_fail(&c, "cudaStreamCreate", e);
    goto done;
  }

  mixcomm_config_t cfg;
  mixcomm_config_init(&cfg);
  cfg.world_rank = r->rank;
  cfg.world_size = r->world_size;
  cfg.local_rank = r->local_rank;
  cfg.local_size = r->local_size;
  cfg.inter_rank = r->rank / r->local_size;
  cfg.inter_size = r->world_size / r->local_size;
  cfg.local_tp_size = o->local_tp_size;
  cfg.local_dp_size = o->local_dp_size;
  cfg.inter_tp_size = o->inter_tp_size;
  cfg.inter_dp_size = o->inter_dp_size;
  cfg.dtype = o->dtype;
  cfg.device = c.device;
  cfg.grid_size = c.grid;
  cfg.max_block_size = o->max_block_size;
  cfg.use_autotune = o->autotune;
  cfg.timeout_ms = o->timeout_ms;
  st = mixcomm_handler_create(&cfg, c.bs, &c.h);
  if (st != MIXCOMM_SUCCESS) {
    lib_fail(&c, "mixcomm_handler_create", st);
    c.h = NULL;
    goto done;
  }
  c.topo = mixcomm_handler_topology(c.h);
  if (c.topo == NULL) {
    msg_fail(&c, "mixcomm_handler_topology returned NULL");
    goto done;
  }
  bench(&c);

  if (c.rank == 0) {
    if (c.n_rows > 0 || c.failed)
      printf("# %s; total #wrong %lld\n",
             c.failed ? "FAILED (see the errors above)" : "done", (long long)c.total_wrong);
    if (o->json_path != NULL && write_json(&c, o->json_path) != 0)
      c.failed = 1;
    fflush(stdout);
  }

done:
  if (c.h != NULL) {
    if (c.stream)
      cudaStreamSynchronize(c.stream);
    st = mixcomm_handler_shutdown(c.h);
    if (st != MIXCOMM_SUCCESS)
      lib_fail(&c, "mixcomm_handler_shutdown", st);
  }
  release(&c);
  if (c.stream)
    cudaStreamDestroy(c.stream);
  mixcomm_bootstrap_destroy(c.bs);
  /* Rank 0 answers for the whole job's results, the others for their own. */
  return (c.failed || (c.rank == 0 ? c.total_wrong : c.own_wrong) != 0) ? 1 : 0;
}

/* What would run, without touching CUDA (ops and modes depend on the GPUs: listed as asked). */
static void dry_run(const options_t* o) {
  mixcomm_topology_t t;
  memset(&t, 0, sizeof t);
  t.world_size = o->ranks;
  t.local_size = o->local_size;
  t.inter_size = o->ranks / o->local_size;
  t.local_tp_size = o->local_tp_size;
  t.local_dp_size = o->local_dp_size;
  t.inter_tp_size = o->inter_tp_size;
  t.inter_dp_size = o->inter_dp_size;
  if (mixcomm_topology_resolve(&t, &t) != MIXCOMM_SUCCESS) /* checked by parse_options */
    return;
  printf("# dry run: world %d = %d node(s) x %d local; tp %d (local %d x inter %d), dp %d "
         "(local %d x inter %d); dtype %s; %s\n",
         t.world_size, t.inter_size, t.local_size, t.tp_size, t.local_tp_size, t.inter_tp_size,
         t.dp_size, t.local_dp_size, t.inter_dp_size, mixcomm_dtype_name(o->dtype),
         spawn_under_launcher() ? "this process is one rank of a launcher's job"
                                : "ranks forked by this process");
  printf("# ops:");
  for (int op = 0; op < MIXCOMM_NUM_OPS; op++) {
    int asked = o->op_all;
    for (int i = 0; i < o->n_ops; i++)
      asked |= o->ops[i] == (mixcomm_op_t)op;
    if (asked && mixcomm_topology_op_valid(&t, (mixcomm_op_t)op))
      printf(" %s", mixcomm_op_name((mixcomm_op_t)op));
  }
  printf("\n# modes: %s", o->mode_all ? "every valid fused mode" : "");
  for (int i = 0; i < o->n_modes; i++)
    printf("%s%s", (i || o->mode_all) ? ", " : "", mixcomm_mode_name(o->modes[i]));
  printf("\n# warm-up %d, timed %d %s; check %s\n", o->warmup, o->iters,
         o->graph ? "graph replays" : "calls", o->check ? "on" : "off");
  printf("# %10s %12s %10s %10s\n", "size(B)", "count", "rows", "row_elems");
  const size_t esz = mixcomm_dtype_size(o->dtype);
  for (int i = 0; i < o->n_sizes; i++)
    printf("%12zu %12zu %10lld %10lld\n", o->sizes[i].bytes, o->sizes[i].bytes / esz,
           (long long)o->sizes[i].rows, (long long)o->sizes[i].row_elems);
}

/* Whether the CUDA driver library loads, asked in a child process so that this one (which forks
 * the ranks) never touches the driver. 1 when it cannot tell (the ranks then find out). */
static int cuda_driver_loads(void) {
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0)
    return 1;
  if (pid == 0)
    _exit(dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL) != NULL ? 0 : 1);
  int st = 0;
  if (waitpid(pid, &st, 0) != pid)
    return 1;
  return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

int main(int argc, char** argv) {
  static options_t o; /* large: not on the stack */
  int rc = parse_options(argc, argv, &o);
  if (rc > 0)
    return 0;
  if (rc < 0)
    return EXIT_BAD_ARGS;
  if (o.dry_run) {
    dry_run(&o);
    return 0;
  }
  if (!cuda_driver_loads()) { /* said once, not by every rank */
    fprintf(stderr, TOOL ": no CUDA driver or GPU found: libcuda.so.1 cannot be loaded (install "
                    "the NVIDIA driver; mixcomm needs an NVIDIA GPU of compute capability 9.0 "
                    "or newer); --dry-run shows the job without a GPU\n");
    return 1;
  }
  int failed = spawn_ranks(o.ranks, o.local_size, o.time_limit_s, rank_main, &o);
  if (failed != 0 && !spawn_under_launcher())
    fprintf(stderr, TOOL ": %d rank(s) exited with a failure (errors or wrong elements above)\n",
            failed);
  return failed ? 1 : 0;
}

#endif /* MIXCOMM_PERF_OPTIONS_ONLY */
