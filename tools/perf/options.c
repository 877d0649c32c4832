/* SPDX-License-Identifier: Apache-2.0
 * mixcomm-perf's command line (options.h): the help, the parsers of numbers, sizes and name
 * lists, and the checks that refuse a job that cannot run before anything starts. */
#include "perf/options.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/args.h"
#include "common/spawn.h"

static void usage(FILE* f) {
  fprintf(f,
          "usage: " PERF_TOOL " [options]\n"
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
  fprintf(stderr, PERF_TOOL ": ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n" PERF_TOOL ": see --help\n");
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
    if (*n >= PERF_MAX_LIST)
      return bad_arg("%s: too many names", opt);
    items[(*n)++] = v;
  }
  if (!*all && *n == 0)
    return bad_arg("%s '%s': empty list", opt, s);
  return 0;
}

static void build_cmdline(perf_options_t* o, int argc, char** argv) {
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
static int build_sizes(perf_options_t* o) {
  const size_t esz = mixcomm_dtype_size(o->dtype);
  o->n_sizes = 0;
  for (size_t s = o->min_bytes;;) {
    perf_size_t c;
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
      if (o->n_sizes >= PERF_MAX_SIZES)
        return bad_arg("more than %d sizes from -b %zu -e %zu -f %d", PERF_MAX_SIZES, o->min_bytes,
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

static const struct option k_longopts[] = {
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

/* The options that take an integer in [lo, hi], or a byte count (lo = hi = 0), stored at
 * `offset` in perf_options_t. */
typedef struct number_option {
  int id;
  const char* name;
  int lo, hi;
  size_t offset;
} number_option_t;

#define INT_OPT(id, name, lo, hi, field) {id, name, lo, hi, offsetof(perf_options_t, field)}
#define SIZE_OPT(id, name, field) {id, name, 0, 0, offsetof(perf_options_t, field)}
static const number_option_t k_number_options[] = {
    INT_OPT('n', "--ranks", 1, 1024, ranks),
    INT_OPT(OPT_LOCAL_SIZE, "--local-size", 1, 1024, local_size),
    INT_OPT(OPT_LTP, "--local-tp-size", 0, 1024, local_tp_size),
    INT_OPT(OPT_LDP, "--local-dp-size", 0, 1024, local_dp_size),
    INT_OPT(OPT_ITP, "--inter-tp-size", 0, 1024, inter_tp_size),
    INT_OPT(OPT_IDP, "--inter-dp-size", 0, 1024, inter_dp_size),
    SIZE_OPT('b', "--min-bytes", min_bytes),
    SIZE_OPT('e', "--max-bytes", max_bytes),
    INT_OPT('f', "--step-factor", 1, 1 << 20, factor),
    SIZE_OPT(OPT_ROW_BYTES, "--row-bytes", row_bytes),
    INT_OPT('w', "--warmup", 0, 1000000, warmup),
    INT_OPT('i', "--iters", 1, 1000000, iters),
    INT_OPT('g', "--graph-calls", 1, 100000, graph_calls),
    INT_OPT(OPT_GRID, "--grid-size", 0, 1 << 20, grid_size),
    INT_OPT(OPT_MAX_BLOCK, "--max-block-size", 0, 1024, max_block_size),
    INT_OPT(OPT_TIMEOUT, "--timeout-ms", 0, 1 << 30, timeout_ms),
    INT_OPT(OPT_CHECK, "--check", 0, 1, check),
    INT_OPT(OPT_AUTOTUNE, "--autotune", 0, 1, autotune),
    INT_OPT(OPT_TIME_LIMIT, "--time-limit", 1, 1 << 30, time_limit_s),
};
#undef INT_OPT
#undef SIZE_OPT

/* Option c if it takes a number: 0 (value stored) or -1 (reported); 1 if c takes no number. */
static int parse_number_option(int c, const char* value, perf_options_t* o) {
  for (size_t k = 0; k < sizeof k_number_options / sizeof k_number_options[0]; k++) {
    const number_option_t* n = &k_number_options[k];
    if (n->id != c)
      continue;
    char* field = (char*)o + n->offset;
    if (n->lo == 0 && n->hi == 0)
      return parse_size(n->name, value, (size_t*)(void*)field);
    return parse_int(n->name, value, n->lo, n->hi, (int*)(void*)field);
  }
  return 1;
}

/* One option other than a number (c from getopt_long): 0, 1 after --help, -1 reported. */
static int parse_other_option(int c, char** argv, perf_options_t* o) {
  switch (c) {
    case 'd':
      if (mixcomm_dtype_from_name(optarg, &o->dtype) != MIXCOMM_SUCCESS)
        return bad_arg("--dtype: %s", mixcomm_last_error());
      return 0;
    case 'o': {
      int items[PERF_MAX_LIST];
      const int rc = parse_list("--op", optarg, 0, &o->op_all, &o->n_ops, items);
      for (int i = 0; rc == 0 && i < o->n_ops; i++)
        o->ops[i] = (mixcomm_op_t)items[i];
      return rc;
    }
    case 'm': {
      int items[PERF_MAX_LIST];
      const int rc = parse_list("--mode", optarg, 1, &o->mode_all, &o->n_modes, items);
      for (int i = 0; rc == 0 && i < o->n_modes; i++)
        o->modes[i] = (mixcomm_mode_t)items[i];
      return rc;
    }
    case 'G':
      o->graph = 1;
      return 0;
    case OPT_JSON:
      o->json_path = optarg;
      if (optarg[0] == '\0')
        return bad_arg("--json: empty file name");
      return 0;
    case OPT_DRY_RUN:
      o->dry_run = 1;
      return 0;
    case 'h':
      usage(stdout);
      return 1;
    case ':':
      if (optopt != 0)
        return bad_arg("option -%c needs a value", optopt);
      return bad_arg("option %s needs a value", argv[optind - 1]);
    case '?':
    default:
      if (optopt != 0)
        return bad_arg("unknown option -%c", optopt);
      return bad_arg("unknown option %s", argv[optind - 1]);
  }
}

/* The defaults, then every option in turn: 0, 1 after --help, -1 reported. */
static int parse_command_line(int argc, char** argv, perf_options_t* o) {
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

  opterr = 0; /* we report unknown options ourselves */
  optind = 1;
  int c;
  while ((c = getopt_long(argc, argv, ":n:d:o:m:b:e:f:w:i:Gg:h", k_longopts, NULL)) != -1) {
    if (c == 'n')
      o->ranks_given = 1;
    int rc = parse_number_option(c, optarg, o);
    if (rc == 1)
      rc = parse_other_option(c, argv, o);
    if (rc == 1)
      return 1;
    if (rc != 0)
      return -1;
  }
  if (optind < argc)
    return bad_arg("unexpected argument '%s'", argv[optind]);
  return 0;
}

/* Under a launcher, its world (and ranks per node) is the job's; they must agree with the
 * options given. 0, or -1 reported. */
static int apply_launcher(perf_options_t* o) {
  if (!spawn_under_launcher())
    return 0;
  int ws = 0, ls = 0;
  if (env_int("WORLD_SIZE", 1, 1024, &ws) != 0 || env_int("LOCAL_WORLD_SIZE", 1, 1024, &ls) != 0)
    return -1;
  if (ws < 1)
    return bad_arg("WORLD_SIZE is empty in the environment");
  if (o->ranks_given && o->ranks != ws)
    return bad_arg("--ranks %d but the launcher's WORLD_SIZE is %d", o->ranks, ws);
  o->ranks = ws;
  if (ls > 0) {
    if (o->local_size && o->local_size != ls)
      return bad_arg("--local-size %d but the launcher's LOCAL_WORLD_SIZE is %d", o->local_size,
                     ls);
    o->local_size = ls;
  }
  return 0;
}

mixcomm_status_t perf_job_topology(const perf_options_t* o, mixcomm_topology_t* t) {
  memset(t, 0, sizeof *t);
  t->world_size = o->ranks;
  t->local_size = o->local_size;
  t->inter_size = o->ranks / o->local_size;
  t->local_tp_size = o->local_tp_size;
  t->local_dp_size = o->local_dp_size;
  t->inter_tp_size = o->inter_tp_size;
  t->inter_dp_size = o->inter_dp_size;
  return mixcomm_topology_resolve(t, t);
}

/* The ops and modes asked for, against what the topology allows. 0, or -1 reported. */
static int check_job(const perf_options_t* o) {
  mixcomm_topology_t t;
  if (perf_job_topology(o, &t) != MIXCOMM_SUCCESS)
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
  return 0;
}

/* The size options, then the sizes they give. 0, or -1 reported. */
static int check_sizes(perf_options_t* o) {
  if (o->row_bytes < 16 || o->row_bytes % 16 != 0)
    return bad_arg("--row-bytes %zu: must be a positive multiple of 16", o->row_bytes);
  if (o->min_bytes < 16)
    return bad_arg("--min-bytes %zu: must be at least 16 (one 16-byte vector)", o->min_bytes);
  if (o->max_bytes < o->min_bytes)
    return bad_arg("--max-bytes %zu is smaller than --min-bytes %zu", o->max_bytes,
                   o->min_bytes);
  if (o->factor < 2 && o->max_bytes != o->min_bytes)
    return bad_arg("--step-factor %d: must be at least 2 when -b and -e differ", o->factor);
  return build_sizes(o);
}

int perf_parse_options(int argc, char** argv, perf_options_t* o) {
  const int rc = parse_command_line(argc, argv, o);
  if (rc != 0)
    return rc;
  if (apply_launcher(o) != 0)
    return -1;
  if (o->local_size == 0)
    o->local_size = o->ranks;
  if (o->local_size > o->ranks || o->ranks % o->local_size != 0)
    return bad_arg("--local-size %d must divide --ranks %d", o->local_size, o->ranks);
  if (check_job(o) != 0)
    return -1;
  if (o->json_path != NULL && check_output_path("--json", o->json_path) != 0)
    return -1;
  return check_sizes(o);
}
