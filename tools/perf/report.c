/* SPDX-License-Identifier: Apache-2.0
 * What mixcomm-perf prints (report.h): the header with the job, the ceilings and the column
 * definitions, one line per case, the JSON file, and the plan of a dry run. */
#include "perf/report.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/spawn.h"
#include "perf/ceilings.h"
#include "perf/metrics.h"

static void fmt_opt(char* buf, size_t cap, const char* fmt, double v) {
  if (isnan(v))
    snprintf(buf, cap, "-");
  else
    snprintf(buf, cap, fmt, v);
}

void perf_print_row(const perf_ctx_t* c, const perf_row_t* r) {
  char t[32] = "error", alg[32] = "-", bus[32] = "-";
  char mem[32] = "-", frac[32] = "-", lat[32] = "-", flo[32] = "-", xfl[32] = "-";
  if (!r->failed) {
    /* NAN prints as nan here (a call that took no time), as "-" in the optional columns. */
    snprintf(t, sizeof t, "%.2f", r->time_us);
    snprintf(alg, sizeof alg, "%.2f", r->algbw);
    snprintf(bus, sizeof bus, "%.2f", r->busbw);
    fmt_opt(mem, sizeof mem, "%.1f", r->mem_gbps);
    fmt_opt(frac, sizeof frac, "%.3f", r->frac_copy);
    fmt_opt(lat, sizeof lat, "%.2f", r->lat_x_rtt);
    fmt_opt(flo, sizeof flo, "%.2f", r->floor_us);
    fmt_opt(xfl, sizeof xfl, "%.2f", r->x_floor);
  }
  const size_t esz = mixcomm_dtype_size(c->o->dtype);
  printf("%12zu %12zu %5s %23s %19s %10s %11s %11s %7lld %9s %9s %9s %8s %7s\n", r->size.bytes,
         r->size.bytes / esz, perf_short_dtype(c->o->dtype), mixcomm_op_name(r->op),
         mixcomm_mode_name(r->mode), t, alg, bus, (long long)r->wrong, mem, frac, lat, flo, xfl);
  fflush(stdout);
}

void perf_print_breakdown(const perf_row_t* r, const perf_breakdown_t* bd) {
  printf("# breakdown (rank 0, CTA 0, mean of %d calls, us): gap %.2f wait-prev %.2f claim "
         "%.2f produce %.2f relay %.2f consume %.2f finish %.2f exit %.2f | shape %d x %d, "
         "%d step(s)\n",
         bd->calls, bd->gap, bd->resolve, bd->claim, bd->produce, bd->relay, bd->consume,
         bd->finish, bd->exit, r->grid, r->block, r->steps);
}

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

/* ", "key": v" after the previous field of an object. */
static void json_field(FILE* f, const char* key, double v) {
  fprintf(f, ", \"%s\": ", key);
  json_num(f, v);
}

/* The definitions of the columns: in the table's header and in the JSON header. */
static const struct {
  const char* key;
  const char* text;
} k_defs[] = {
    {"size",
     "S = size: a rank's input bytes (ALLREDUCE, ALLGATHER, ALLREDUCE_ALLGATHER) or OUTPUT bytes "
     "(REDUCESCATTER, REDUCESCATTER_ALLREDUCE); count = S / element size"},
    {"time_us",
     "time_us = max over ranks of each rank's median time of one call (CUDA events; graph "
     "mode: replay time / calls per graph)"},
    {"algbw",
     "algbw = a rank's input bytes / time (S; dp*S for the reduce-scatter types)"},
    {"busbw",
     "busbw = (2(tp-1)/tp + (dp-1)) * S / time: AR 2(n-1)/n*S, AG and RS (n-1)/n*(n*S), AR+AG "
     "and RS+AR the sum of the TP all-reduce and DP gather/scatter phases"},
    {"mem",
     "mem = HBM bytes all ranks' kernels must move when every rank runs on this GPU (one node): "
     "per rank in + out + 3*(L-1)*S (WAITS_UC, one-shot) or in + out + 3*(L+Lt-2)*S/Lt "
     "(BYTES1_UC, two-shot); in = dp*S for RS types else S, out = dp*S for AG types else S; 3 = "
     "peer write + read + re-poison of each consumed workspace row; times L ranks"},
    {"frac_copy",
     "mem_GBps = mem / time; frac_copy = mem_GBps / device copy bandwidth (same run)"},
    {"lat_x_rtt",
     "lat_x_rtt = time / cross-process flag round trip (same run), smallest size only"},
    {"floor_us",
     "floor_us = launch floor of the call's launch shape (same run, every rank at once: a graph "
     "of kernels of that grid and block whose threads load and store 16 bytes), sizes <= 1 MiB; "
     "x_floor = time / (floor_us + flag round trip)"},
};
#define N_DEFS (sizeof k_defs / sizeof k_defs[0])

/* Now, as local time with its zone (the table's header) or in UTC, ISO 8601 (the JSON). */
static void format_now(char* buf, size_t cap, int utc) {
  const time_t now = time(NULL);
  struct tm tmv;
  if (utc)
    gmtime_r(&now, &tmv);
  else
    localtime_r(&now, &tmv);
  strftime(buf, cap, utc ? "%Y-%m-%dT%H:%M:%SZ" : "%Y-%m-%d %H:%M:%S %Z", &tmv);
}

static void print_left_out(const perf_ctx_t* c) {
  if (c->rank != 0 || !c->o->mode_all)
    return;
  for (int m = MIXCOMM_MODE_FUSED_OPT_WAITS_MC; m <= MIXCOMM_MODE_FUSED_OPT_BYTES2_UC; m++) {
    const char* why = mixcomm_mode_invalid_reason(c->h, (mixcomm_mode_t)m);
    if (why != NULL)
      printf("# left out: %s: %s\n", mixcomm_mode_name((mixcomm_mode_t)m), why);
  }
}

void perf_print_header(const perf_ctx_t* c) {
  const perf_options_t* o = c->o;
  const mixcomm_topology_t* t = c->topo;
  char date[64];
  format_now(date, sizeof date, 0);
  printf("# " PERF_TOOL " (mixcomm %d.%d.%d)  %s  host %s\n", mixcomm_version() / 10000,
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
           c->copy_gbps, c->copy_bytes / (1 << 20), PERF_COPY_REPS);
  else
    printf("# ceiling: device copy not measured\n");
  if (!isnan(c->rtt_us))
    printf("# ceiling: flag round trip %.3f us (ranks 0 <-> 1 through a VMM page; %d round "
           "trips after %d warm, median of %d, in-kernel %%globaltimer; with events around "
           "the kernel: %.3f us)\n",
           c->rtt_us, c->rtt_rounds, PERF_RTT_WARM_ROUNDS, PERF_RTT_REPS, c->rtt_event_us);
  else
    printf("# ceiling: flag round trip not measured (needs ranks 0 and 1 on one host)\n");
  if (!isnan(c->rtt_us) && c->rtt_us > 50.0)
    printf("# WARNING: a flag round trip of %.0f us means the processes time-slice the GPU: "
           "start the MPS daemon (nvidia-cuda-mps-control -d) before running several ranks on "
           "one GPU\n",
           c->rtt_us);
  print_left_out(c);
  for (size_t i = 0; i < N_DEFS; i++)
    printf("# %s\n", k_defs[i].text);
  printf("# GB/s = 1e9 bytes per second; '-' = not applicable\n#\n");
  printf("# %10s %12s %5s %23s %19s %10s %11s %11s %7s %9s %9s %9s %8s %7s\n", "size(B)",
         "count", "type", "op", "mode", "time_us", "algbw(GB/s)", "busbw(GB/s)", "#wrong",
         "mem_GBps", "frac_copy", "lat_x_rtt", "floor_us", "x_floor");
  fflush(stdout);
}

int perf_write_json(const perf_ctx_t* c, const char* path) {
  FILE* f = fopen(path, "w");
  if (f == NULL) {
    fprintf(stderr, PERF_TOOL ": rank 0: cannot write %s: %s\n", path, strerror(errno));
    return -1;
  }
  const perf_options_t* o = c->o;
  const mixcomm_topology_t* t = c->topo;
  char date[64];
  format_now(date, sizeof date, 1);
  fprintf(f, "{\n  \"header\": {\n    \"tool\": \"" PERF_TOOL "\",\n    \"mixcomm_version\": %d,\n",
          mixcomm_version());
  fprintf(f, "    \"date\": \"%s\",\n    \"host\": ", date);
  json_str(f, c->infos[0].host);
  fprintf(f, ",\n    \"command\": ");
  json_str(f, o->cmdline);
  fprintf(f, ",\n    \"device\": ");
  json_str(f, c->infos[0].name);
  fprintf(f,
          ",\n    \"sm_count\": %d,\n    \"ranks_on_gpu\": %d,\n    \"all_ranks_one_gpu\": %s,\n",
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
  json_field(f, "copy_bytes", c->copy_bytes);
  fprintf(f, ", \"copy_reps\": %d", PERF_COPY_REPS);
  json_field(f, "flag_rtt_us", c->rtt_us);
  json_field(f, "flag_rtt_event_us", c->rtt_event_us);
  fprintf(f, ", \"flag_rtt_round_trips\": %d},\n", c->rtt_rounds);
  fprintf(f, "    \"definitions\": {");
  for (size_t i = 0; i < N_DEFS; i++) {
    fprintf(f, "%s\n      \"%s\": ", i ? "," : "", k_defs[i].key);
    json_str(f, k_defs[i].text);
  }
  fprintf(f, "\n    }\n  },\n  \"rows\": [");
  const size_t esz = mixcomm_dtype_size(o->dtype);
  for (int i = 0; i < c->n_rows; i++) {
    const perf_row_t* r = &c->rows[i];
    fprintf(f, "%s\n    {\"size\": %zu, \"count\": %zu, \"rows\": %lld, \"row_elems\": %lld, "
               "\"type\": \"%s\", \"op\": \"%s\", \"mode\": \"%s\", \"resolved_mode\": \"%s\", "
               "\"ok\": %s",
            i ? "," : "", r->size.bytes, r->size.bytes / esz, (long long)r->size.rows,
            (long long)r->size.row_elems, perf_short_dtype(o->dtype), mixcomm_op_name(r->op),
            mixcomm_mode_name(r->mode), mixcomm_mode_name(r->resolved),
            r->failed ? "false" : "true");
    json_field(f, "time_us", r->time_us);
    json_field(f, "algbw_GBps", r->algbw);
    json_field(f, "busbw_GBps", r->busbw);
    fprintf(f, ", \"wrong\": %lld", (long long)r->wrong);
    const struct {
      const char* key;
      double v;
    } extra[] = {{"mem_bytes", r->mem_bytes}, {"mem_GBps", r->mem_gbps},
                 {"frac_copy", r->frac_copy}, {"lat_x_rtt", r->lat_x_rtt},
                 {"floor_us", r->floor_us},   {"x_floor", r->x_floor}};
    for (size_t k = 0; k < sizeof extra / sizeof extra[0]; k++)
      json_field(f, extra[k].key, extra[k].v);
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
    fprintf(stderr, PERF_TOOL ": rank 0: error writing %s\n", path);
    return -1;
  }
  return 0;
}

void perf_print_dry_run(const perf_options_t* o) {
  mixcomm_topology_t t;
  if (perf_job_topology(o, &t) != MIXCOMM_SUCCESS) /* checked by perf_parse_options */
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
