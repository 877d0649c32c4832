/* SPDX-License-Identifier: Apache-2.0
 *
 * mixcomm-info: what mixcomm would do for a topology, without a GPU.
 *
 *   mixcomm-info --world-size W --local-size L [--local-tp-size N] [--local-dp-size N]
 *                [--inter-tp-size N] [--inter-dp-size N] [--dtype fp16|bf16|fp32]
 *                [--grid-size N] [--max-block-size N] [--min-block-size N]
 *                [--no-autotune] [--ranks-share-gpu] [--json]
 *
 * For the job of W ranks, L per node (so W / L nodes), it prints every world rank's derived
 * ranks (local/inter TP and DP ranks, TP and DP ranks), the operations and modes that are
 * valid, the reason each other mode is left out, and the workspace a handler would allocate
 * per GPU. --json prints the same as one JSON object, for scripts.
 *
 * Everything comes from the library's own functions (mixcomm_topology_resolve and friends,
 * mixcomm_workspace_plan), so the tool shows exactly what a handler will decide. No GPU is
 * queried: the grid size defaults to 132 CTAs (the SM count of an H100), which the output
 * states as an assumption; pass --grid-size for another GPU.
 *
 * Bounded output: at most MAX_WORLD_SIZE ranks (one table line each), and the first write that
 * fails (full disk, closed pipe) ends the program.
 *
 * Exit status: 0 on success, 1 when writing the output failed, 2 for bad arguments or a
 * topology the library rejects (the message goes to stderr).
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mixcomm.h"

#define TOOL "mixcomm-info"
#define DEFAULT_GRID_SIZE 132 /* SMs of an H100 SXM */
#define EXIT_BAD_ARGS 2
#define EXIT_WRITE_FAILED 1
/* Largest job described: 1024 nodes of 16 ranks. A line per rank keeps the output under a few
 * MiB; a larger (or absurd) size is refused rather than printed. */
#define MAX_WORLD_SIZE 16384
#define MAX_GRID_SIZE 4096 /* CTAs per GPU: many times the SM count of any GPU */
#define NAMES_CAP ((int)MIXCOMM_NUM_OPS + (int)MIXCOMM_NUM_MODES) /* room for either list */

typedef struct options {
  int world_size, local_size; /* 0 = not given */
  int local_tp_size, local_dp_size, inter_tp_size, inter_dp_size;
  mixcomm_dtype_t dtype;
  int grid_size; /* 0 = not given */
  int max_block_size, min_block_size;
  int no_autotune, ranks_share_gpu, json;
} options_t;

/* Everything the tool reports, computed once and then printed as text or JSON. */
typedef struct report {
  options_t opt;
  int inter_size;
  int grid_size;
  mixcomm_topology_t topo; /* rank 0's, resolved */
  mixcomm_caps_t caps;
  mixcomm_workspace_plan_t plan;
} report_t;

static void usage(FILE* f) {
  fprintf(f,
          "usage: " TOOL " --world-size W --local-size L [options]\n"
          "\n"
          "Shows, without a GPU, how mixcomm splits W ranks (L per node) into TP and DP groups,\n"
          "the valid operations and modes (and why the others are left out) and the\n"
          "workspace a handler allocates per GPU.\n"
          "\n"
          "  --world-size W        ranks in the job (required; at most %d)\n"
          "  --local-size L        ranks per node; must divide W (required)\n"
          "  --local-tp-size N     TP size inside a node   (default: see below)\n"
          "  --local-dp-size N     DP size inside a node\n"
          "  --inter-tp-size N     TP size across nodes\n"
          "  --inter-dp-size N     DP size across nodes\n"
          "                        per level: neither given -> all TP; one given -> the other\n"
          "                        is level size / given; both given -> product = level size\n"
          "  --dtype T             fp16, bf16 (default) or fp32\n"
          "  --grid-size N         CTAs per GPU (default %d, the SM count of an H100; at most\n"
          "                        %d)\n"
          "  --max-block-size N    cap on threads per CTA (multiple of 32; default: no cap)\n"
          "  --min-block-size N    smallest CTA when a call takes several steps (default 256)\n"
          "  --no-autotune         as with use_autotune = 0 (AUTOTUNE is left out)\n"
          "  --ranks-share-gpu     several ranks of a node use one GPU (NCCL modes left out)\n"
          "  --json                print one JSON object instead of tables\n"
          "  --help                print this help\n"
          "Options take their value as the next argument or after '=' (--world-size=8).\n",
          MAX_WORLD_SIZE, DEFAULT_GRID_SIZE, MAX_GRID_SIZE);
}

static void die(const char* fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, TOOL ": ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(EXIT_BAD_ARGS);
}

/* A library call failed: its last error says what and why. */
static void die_library(void) __attribute__((noreturn));
static void die_library(void) {
  const char* msg = mixcomm_last_error();
  fprintf(stderr, TOOL ": %s\n", (msg != NULL && msg[0] != '\0') ? msg : "invalid input");
  exit(EXIT_BAD_ARGS);
}

/* Output: every write is checked and the first one that fails ends the program, so a full
 * disk or a closed pipe never keeps the tool printing. */
static void write_failed(void) __attribute__((noreturn));
static void write_failed(void) {
  const int e = errno;
  fprintf(stderr, TOOL ": writing the output failed: %s\n", e ? strerror(e) : "stream error");
  exit(EXIT_WRITE_FAILED);
}

static void out(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  const int n = vprintf(fmt, ap);
  va_end(ap);
  if (n < 0 || ferror(stdout))
    write_failed();
}

static void out_char(int c) {
  if (putchar(c) == EOF)
    write_failed();
}

static void out_str(const char* s) {
  if (fputs(s, stdout) == EOF)
    write_failed();
}

/* The whole of text as a decimal int (an optional sign, then digits, nothing else). */
static int parse_int(const char* option, const char* text) {
  const char* p = text;
  if (*p == '+' || *p == '-')
    p++;
  if (*p < '0' || *p > '9')
    die("%s expects an integer, got '%s'", option, text);
  errno = 0;
  char* end = NULL;
  long v = strtol(text, &end, 10);
  if (*end != '\0')
    die("%s expects an integer, got '%s' (trailing '%s')", option, text, end);
  if (errno == ERANGE || v < INT_MIN || v > INT_MAX)
    die("%s=%s is out of range", option, text);
  return (int)v;
}

static void parse_args(int argc, char** argv, options_t* o) {
  memset(o, 0, sizeof *o);
  o->dtype = MIXCOMM_BFLOAT16;
  o->min_block_size = 256;
  int have_world = 0, have_local = 0;
  for (int i = 1; i < argc; i++) {
    const char* arg = argv[i];
    if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
      usage(stdout);
      if (fflush(stdout) != 0 || ferror(stdout))
        write_failed();
      exit(0);
    }
    if (!strcmp(arg, "--json")) {
      o->json = 1;
      continue;
    }
    if (!strcmp(arg, "--no-autotune")) {
      o->no_autotune = 1;
      continue;
    }
    if (!strcmp(arg, "--ranks-share-gpu")) {
      o->ranks_share_gpu = 1;
      continue;
    }
    if (strncmp(arg, "--", 2) != 0)
      die("unexpected argument '%s' (try --help)", arg);

    /* Options with a value: "--name value" or "--name=value". */
    char name[64];
    const char* value = NULL;
    const char* eq = strchr(arg, '=');
    size_t len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
    if (len >= sizeof name)
      die("unknown option '%s' (try --help)", arg);
    memcpy(name, arg, len);
    name[len] = '\0';

    static const char* const with_value[] = {
        "--world-size",    "--local-size",    "--local-tp-size", "--local-dp-size",
        "--inter-tp-size", "--inter-dp-size", "--dtype",         "--grid-size",
        "--max-block-size", "--min-block-size"};
    int known = 0;
    for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++)
      known |= !strcmp(name, with_value[k]);
    if (!known) {
      if (!strcmp(name, "--json") || !strcmp(name, "--no-autotune") ||
          !strcmp(name, "--ranks-share-gpu") || !strcmp(name, "--help"))
        die("%s takes no value", name);
      die("unknown option '%s' (try --help)", arg);
    }
    if (eq != NULL) {
      value = eq + 1;
    } else {
      if (i + 1 >= argc)
        die("%s needs a value", name);
      value = argv[++i];
    }
    if (value[0] == '\0')
      die("%s needs a value", name);

    if (!strcmp(name, "--dtype")) {
      if (mixcomm_dtype_from_name(value, &o->dtype) != MIXCOMM_SUCCESS)
        die_library();
      continue;
    }
    int v = parse_int(name, value);
    if (!strcmp(name, "--world-size")) {
      o->world_size = v;
      have_world = 1;
    } else if (!strcmp(name, "--local-size")) {
      o->local_size = v;
      have_local = 1;
    } else if (!strcmp(name, "--local-tp-size")) {
      o->local_tp_size = v;
    } else if (!strcmp(name, "--local-dp-size")) {
      o->local_dp_size = v;
    } else if (!strcmp(name, "--inter-tp-size")) {
      o->inter_tp_size = v;
    } else if (!strcmp(name, "--inter-dp-size")) {
      o->inter_dp_size = v;
    } else if (!strcmp(name, "--grid-size")) {
      if (v < 1)
        die("--grid-size=%d: must be >= 1 (this tool never asks a GPU for its SM count)", v);
      if (v > MAX_GRID_SIZE)
        die("--grid-size=%d: at most %d CTAs per GPU", v, MAX_GRID_SIZE);
      o->grid_size = v;
    } else if (!strcmp(name, "--max-block-size")) {
      o->max_block_size = v;
    } else if (!strcmp(name, "--min-block-size")) {
      o->min_block_size = v;
    }
  }
  if (!have_world)
    die("--world-size is required (try --help)");
  if (!have_local)
    die("--local-size is required (try --help)");
  if (o->world_size < 1)
    die("--world-size=%d: must be >= 1", o->world_size);
  if (o->world_size > MAX_WORLD_SIZE)
    die("--world-size=%d: at most %d ranks (1024 nodes of 16) are described", o->world_size,
        MAX_WORLD_SIZE);
  if (o->local_size < 1)
    die("--local-size=%d: must be >= 1", o->local_size);
  if (o->world_size % o->local_size != 0)
    die("--world-size=%d is not a multiple of --local-size=%d (every node has the same number "
        "of ranks)",
        o->world_size, o->local_size);
}

static void build_report(const options_t* o, report_t* r) {
  memset(r, 0, sizeof *r);
  r->opt = *o;
  r->inter_size = o->world_size / o->local_size;
  r->grid_size = o->grid_size > 0 ? o->grid_size : DEFAULT_GRID_SIZE;

  mixcomm_topology_t in = {0};
  in.world_size = o->world_size;
  in.local_size = o->local_size;
  in.inter_size = r->inter_size;
  in.local_tp_size = o->local_tp_size;
  in.local_dp_size = o->local_dp_size;
  in.inter_tp_size = o->inter_tp_size;
  in.inter_dp_size = o->inter_dp_size;
  if (mixcomm_topology_resolve(&in, &r->topo) != MIXCOMM_SUCCESS)
    die_library();

  mixcomm_caps_default(&r->caps);
  if (o->no_autotune)
    r->caps.autotune = 0;
  if (o->ranks_share_gpu)
    r->caps.ranks_share_gpu = 1;

  mixcomm_config_t cfg = MIXCOMM_CONFIG_INITIALIZER;
  cfg.world_size = in.world_size;
  cfg.local_size = in.local_size;
  cfg.inter_size = in.inter_size;
  cfg.local_tp_size = in.local_tp_size;
  cfg.local_dp_size = in.local_dp_size;
  cfg.inter_tp_size = in.inter_tp_size;
  cfg.inter_dp_size = in.inter_dp_size;
  cfg.dtype = o->dtype;
  cfg.grid_size = r->grid_size;
  cfg.max_block_size = o->max_block_size;
  cfg.min_block_size = o->min_block_size;
  cfg.use_autotune = !o->no_autotune;
  if (mixcomm_workspace_plan(&cfg, r->grid_size, &r->plan) != MIXCOMM_SUCCESS)
    die_library();
}

/* The topology of world rank w (the library derives it; it cannot fail for a valid rank). */
static void rank_topology(const report_t* r, int w, mixcomm_topology_t* t) {
  if (mixcomm_topology_for_rank(&r->topo, w, t) != MIXCOMM_SUCCESS)
    die_library();
}

static int mode_valid(const report_t* r, int mode, const char** reason) {
  return mixcomm_topology_mode_valid(&r->topo, &r->caps, (mixcomm_mode_t)mode, reason);
}

/* The names of the valid ops (modes = 0) or modes (modes = 1), in enum order; how many. */
static int valid_names(const report_t* r, int modes, const char* names[], int cap) {
  const int count = modes ? MIXCOMM_NUM_MODES : MIXCOMM_NUM_OPS;
  int n = 0;
  for (int i = 0; i < count && n < cap; i++) {
    if (modes ? mode_valid(r, i, NULL) : mixcomm_topology_op_valid(&r->topo, (mixcomm_op_t)i))
      names[n++] = modes ? mixcomm_mode_name((mixcomm_mode_t)i) : mixcomm_op_name((mixcomm_op_t)i);
  }
  return n;
}

/* The assumptions behind the report, as sentences. Returns how many were written. */
static int assumptions(const report_t* r, char out[][192], int max) {
  int n = 0;
  if (n < max) {
    if (r->opt.grid_size > 0)
      snprintf(out[n++], 192, "grid_size %d CTAs per GPU, as given by --grid-size",
               r->grid_size);
    else
      snprintf(out[n++], 192,
               "grid_size %d CTAs per GPU assumed (the SM count of an H100; no GPU was "
               "queried, pass --grid-size for another GPU)",
               r->grid_size);
  }
  if (n < max)
    snprintf(out[n++], 192, "%s",
             r->caps.ranks_share_gpu
                 ? "several ranks of a node share one GPU (--ranks-share-gpu)"
                 : "one GPU per rank");
  if (n < max)
    snprintf(out[n++], 192, "%s",
             r->caps.nccl ? "NCCL available (this build has NCCL support; libnccl.so.2 must "
                            "load at run time)"
                          : "NCCL not available (this build has no NCCL support)");
  if (n < max && r->inter_size > 1)
    snprintf(out[n++], 192, "%s",
             r->caps.nvshmem ? "NVSHMEM built in (fused modes across nodes)"
                             : "NVSHMEM not built in (no fused modes across nodes)");
  if (n < max)
    snprintf(out[n++], 192, "no NVLink multicast (mixcomm never creates multicast objects)");
  return n;
}

/* ---------------------------------------------------------------------------------------- */
/* Text output                                                                               */
/* ---------------------------------------------------------------------------------------- */

static void print_bytes(const char* label, size_t bytes) {
  out("  %-34s %14zu B", label, bytes);
  if (bytes >= (size_t)1 << 20)
    out("  (%.2f MiB)", (double)bytes / (1 << 20));
  else if (bytes >= 1024)
    out("  (%.2f KiB)", (double)bytes / 1024);
  out("\n");
}

static void print_text(const report_t* r) {
  const mixcomm_topology_t* t = &r->topo;
  out("mixcomm %d.%d.%d: world_size %d = %d node%s x local_size %d, dtype %s\n\n",
         MIXCOMM_VERSION_MAJOR, MIXCOMM_VERSION_MINOR, MIXCOMM_VERSION_PATCH, t->world_size,
         t->inter_size, t->inter_size == 1 ? "" : "s", t->local_size,
         mixcomm_dtype_name(r->opt.dtype));

  out("Groups            tp   dp\n");
  out("  inside a node  %3d  %3d\n", t->local_tp_size, t->local_dp_size);
  out("  across nodes   %3d  %3d\n", t->inter_tp_size, t->inter_dp_size);
  out("  total          %3d  %3d\n\n", t->tp_size, t->dp_size);

  out("Ranks\n");
  out("  %6s %6s %6s %9s %9s %9s %9s %6s %6s\n", "world", "local", "inter", "local_tp",
         "local_dp", "inter_tp", "inter_dp", "tp", "dp");
  for (int w = 0; w < t->world_size; w++) {
    mixcomm_topology_t rt;
    rank_topology(r, w, &rt);
    out("  %6d %6d %6d %9d %9d %9d %9d %6d %6d\n", rt.world_rank, rt.local_rank,
           rt.inter_rank, rt.local_tp_rank, rt.local_dp_rank, rt.inter_tp_rank, rt.inter_dp_rank,
           rt.tp_rank, rt.dp_rank);
  }

  static const char* const heads[2] = {"\nValid ops:  ", "Valid modes: "};
  for (int modes = 0; modes < 2; modes++) {
    const char* names[NAMES_CAP];
    const int n = valid_names(r, modes, names, NAMES_CAP);
    out_str(heads[modes]);
    for (int i = 0; i < n; i++)
      out("%s%s", i ? ", " : "", names[i]);
    out("%s\n", n ? "" : "(none)");
  }

  out("Excluded modes:\n");
  for (int m = 0; m < MIXCOMM_NUM_MODES; m++) {
    const char* why = NULL;
    if (!mode_valid(r, m, &why))
      out("  %-20s %s\n", mixcomm_mode_name((mixcomm_mode_t)m), why ? why : "");
  }

  const mixcomm_workspace_plan_t* p = &r->plan;
  out("\nWorkspace per GPU (grid_size %d CTAs, blocks up to %d threads, %d ring slots)\n",
         p->grid_size, p->max_block_size, p->ring_slots);
  out("  %-34s %14d\n", "node rows per CTA slot", p->vmm_rows);
  print_bytes("node slot share per CTA", p->vmm_slot_bytes);
  print_bytes("node workspace (VMM)", p->vmm_bytes);
  if (p->nvshmem_bytes > 0) {
    out("  %-34s %14d\n", "symmetric-heap rows per CTA slot", p->nvshmem_rows);
    print_bytes("symmetric-heap slot share per CTA", p->nvshmem_slot_bytes);
    print_bytes("symmetric heap (NVSHMEM)", p->nvshmem_bytes);
  } else {
    out("  %-34s %14s\n", "symmetric heap (NVSHMEM)", "none (one node)");
  }
  print_bytes("control words", p->control_bytes);
  if (t->local_size > 1)
    out("  (every GPU also maps the node workspaces of its %d local peers)\n",
           t->local_size - 1);

  char notes[8][192];
  int n = assumptions(r, notes, 8);
  out("\nAssumptions\n");
  for (int i = 0; i < n; i++)
    out("  - %s\n", notes[i]);
}

/* ---------------------------------------------------------------------------------------- */
/* JSON output                                                                               */
/* ---------------------------------------------------------------------------------------- */

static void json_string(const char* s) {
  out_char('"');
  for (const unsigned char* p = (const unsigned char*)s; *p != '\0'; p++) {
    switch (*p) {
      case '"':
        out_str("\\\"");
        break;
      case '\\':
        out_str("\\\\");
        break;
      case '\n':
        out_str("\\n");
        break;
      case '\t':
        out_str("\\t");
        break;
      case '\r':
        out_str("\\r");
        break;
      default:
        if (*p < 0x20)
          out("\\u%04x", *p);
        else
          out_char(*p);
    }
  }
  out_char('"');
}

static void print_json(const report_t* r) {
  const mixcomm_topology_t* t = &r->topo;
  const mixcomm_workspace_plan_t* p = &r->plan;
  out("{\n");
  out("  \"version\": \"%d.%d.%d\",\n", MIXCOMM_VERSION_MAJOR, MIXCOMM_VERSION_MINOR,
         MIXCOMM_VERSION_PATCH);
  out("  \"dtype\": ");
  json_string(mixcomm_dtype_name(r->opt.dtype));
  out(",\n");
  out("  \"world_size\": %d,\n  \"local_size\": %d,\n  \"inter_size\": %d,\n", t->world_size,
         t->local_size, t->inter_size);
  out("  \"local_tp_size\": %d,\n  \"local_dp_size\": %d,\n", t->local_tp_size,
         t->local_dp_size);
  out("  \"inter_tp_size\": %d,\n  \"inter_dp_size\": %d,\n", t->inter_tp_size,
         t->inter_dp_size);
  out("  \"tp_size\": %d,\n  \"dp_size\": %d,\n", t->tp_size, t->dp_size);

  out("  \"ranks\": [");
  for (int w = 0; w < t->world_size; w++) {
    mixcomm_topology_t rt;
    rank_topology(r, w, &rt);
    out("%s\n    {\"world_rank\": %d, \"local_rank\": %d, \"inter_rank\": %d, "
           "\"local_tp_rank\": %d, \"local_dp_rank\": %d, \"inter_tp_rank\": %d, "
           "\"inter_dp_rank\": %d, \"tp_rank\": %d, \"dp_rank\": %d}",
           w ? "," : "", rt.world_rank, rt.local_rank, rt.inter_rank, rt.local_tp_rank,
           rt.local_dp_rank, rt.inter_tp_rank, rt.inter_dp_rank, rt.tp_rank, rt.dp_rank);
  }
  out("\n  ],\n");

  static const char* const keys[2] = {"valid_ops", "valid_modes"};
  for (int modes = 0; modes < 2; modes++) {
    const char* names[NAMES_CAP];
    const int n = valid_names(r, modes, names, NAMES_CAP);
    out("  \"%s\": [", keys[modes]);
    for (int i = 0; i < n; i++) {
      out("%s", i ? ", " : "");
      json_string(names[i]);
    }
    out("],\n");
  }

  out("  \"excluded_modes\": {");
  int first = 1;
  for (int m = 0; m < MIXCOMM_NUM_MODES; m++) {
    const char* why = NULL;
    if (!mode_valid(r, m, &why)) {
      out("%s\n    ", first ? "" : ",");
      json_string(mixcomm_mode_name((mixcomm_mode_t)m));
      out(": ");
      json_string(why ? why : "");
      first = 0;
    }
  }
  out("%s},\n", first ? "" : "\n  ");

  out("  \"caps\": {\"multicast\": %s, \"nccl\": %s, \"nvshmem\": %s, \"autotune\": %s, "
         "\"ranks_share_gpu\": %s},\n",
         r->caps.multicast ? "true" : "false", r->caps.nccl ? "true" : "false",
         r->caps.nvshmem ? "true" : "false", r->caps.autotune ? "true" : "false",
         r->caps.ranks_share_gpu ? "true" : "false");

  out("  \"workspace\": {\n");
  out("    \"grid_size\": %d,\n    \"max_block_size\": %d,\n    \"ring_slots\": %d,\n",
         p->grid_size, p->max_block_size, p->ring_slots);
  out("    \"vmm_rows\": %d,\n    \"nvshmem_rows\": %d,\n", p->vmm_rows, p->nvshmem_rows);
  out("    \"vmm_slot_bytes\": %zu,\n    \"vmm_bytes\": %zu,\n", p->vmm_slot_bytes,
         p->vmm_bytes);
  out("    \"nvshmem_slot_bytes\": %zu,\n    \"nvshmem_bytes\": %zu,\n",
         p->nvshmem_slot_bytes, p->nvshmem_bytes);
  out("    \"control_bytes\": %zu\n  },\n", p->control_bytes);

  char notes[8][192];
  int n = assumptions(r, notes, 8);
  out("  \"assumptions\": [");
  for (int i = 0; i < n; i++) {
    out("%s\n    ", i ? "," : "");
    json_string(notes[i]);
  }
  out("\n  ]\n}\n");
}

int main(int argc, char** argv) {
  options_t opt;
  report_t report;
  parse_args(argc, argv, &opt);
  build_report(&opt, &report);
  if (opt.json)
    print_json(&report);
  else
    print_text(&report);
  if (fflush(stdout) != 0 || ferror(stdout))
    write_failed();
  return 0;
}
