/* SPDX-License-Identifier: Apache-2.0
 * Soak test (mixcomm-soak): a long random stream of collectives, every result checked against
 * the float64 reference of tools/common/refdata.c. See docs/reliability.md.
 *
 *   mixcomm-soak [--ranks 4] [--tp T] [--calls 100000] [--seed S] [--dtypes bf16,fp16,fp32]
 *                [--batch 64] [--graph-percent 2] [--max-rows 512] [--max-elems 8192]
 *                [--timeout-ms 10000] [--limit-s 570] [--all-modes] [--dry-run] [--verbose]
 *
 * Every rank draws the same random sequence (shared seed), so all ranks make the same calls:
 * each call picks a valid op, a fused mode or DEFAULT (--all-modes: also the NCCL modes when
 * they are valid; autotune is off in the soak's handlers), a shape
 * (rows 1..max-rows per output block, sometimes 0; row_elems a multiple of the 16-byte vector
 * from 8 to max-elems, mostly small so the host-side reference keeps up), special values (-0.0,
 * all-ones words) and one of two streams. The handler is never used on two streams at once:
 * when the stream changes, the next one waits for an event recorded on the previous one.
 * Sometimes a group of 2-6 calls is captured into a CUDA graph and replayed 1-3 times.
 *
 * Calls are batched: up to --batch calls are enqueued into distinct slots of one input and one
 * output buffer (inputs uploaded and outputs poisoned first, the ranks meeting at a bootstrap
 * barrier before each batch), then the host synchronises once,
 * downloads every output and checks each call against its reference. The calls are split
 * evenly over the dtypes, one handler per dtype. Each rank counts calls, checked calls, wrong
 * elements and errors in memory shared with the parent, which prints
 *   soak: calls N, checked N, wrong elements N, errors N, seconds S
 * (calls: collective calls each rank made, each with its own output; checked: calls whose
 * output every rank verified; wrong elements and errors: summed over ranks) and exits non-zero
 * if anything was wrong, an error occurred, a rank failed, or not every call was checked.
 *
 * --dry-run: no GPU and no ranks; this process plans every call of rank 0 and computes inputs
 * and references on the host, to check the plan and measure the host-side cost per call.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "common/args.h"
#include "common/spawn.h"
#include "gpu/harness.h"
#include "gpu/soak/soak.h"

void print_mix(const char* label, const counts_t* k) {
  printf("%s ops", label);
  for (int op = 0; op < MIXCOMM_NUM_OPS; op++)
    if (k->per_op[op])
      printf(" %s %lld", mixcomm_op_name((mixcomm_op_t)op), k->per_op[op]);
  printf("; modes");
  for (int m = 0; m <= MIXCOMM_NUM_MODES; m++)
    if (k->per_mode[m])
      printf(" %s %lld", m == 0 ? "DEFAULT" : mixcomm_mode_name((mixcomm_mode_t)(m - 1)),
             k->per_mode[m]);
  printf("\n");
}

static void usage(void) {
  fprintf(stderr,
          "usage: mixcomm-soak [--ranks 4] [--tp T] [--calls 100000] [--seed S]\n"
          "                    [--dtypes bf16,fp16,fp32] [--batch 64] [--graph-percent 2]\n"
          "                    [--max-rows 512] [--max-elems 8192] [--timeout-ms 10000]\n"
          "                    [--limit-s 570] [--all-modes] [--dry-run] [--verbose]\n");
}

static int take_dtype(void* ctx, int index, const char* text) {
  options_t* o = ctx;
  return mixcomm_dtype_from_name(text, &o->dtypes[index]) != MIXCOMM_SUCCESS;
}

/* The options with a value of their own kind: --calls, --seed, --dtypes. */
static int take_value(void* ctx, const char* name, const char* v) {
  options_t* o = ctx;
  if (!strcmp(name, "--calls"))
    return args_parse_ll(v, 1, 1000000000LL, &o->calls);
  if (!strcmp(name, "--seed")) {
    long long s;
    const int bad = args_parse_ll(v, 0, 0x7FFFFFFFFFFFFFFFLL, &s);
    o->seed = (uint64_t)s;
    return bad;
  }
  o->ndtypes = harness_parse_list(v, 3, take_dtype, o);
  return o->ndtypes < 0;
}

int main(int argc, char** argv) {
  options_t o;
  memset(&o, 0, sizeof o);
  o.calls = 100000;
  o.seed = 20261124;
  o.dtypes[0] = MIXCOMM_BFLOAT16;
  o.dtypes[1] = MIXCOMM_FLOAT16;
  o.dtypes[2] = MIXCOMM_FLOAT32;
  o.ndtypes = 3;
  const harness_option_t options[] = {
      {"--all-modes", HARNESS_FLAG, &o.all_modes, 0, 0, 0},
      {"--dry-run", HARNESS_FLAG, &o.dry_run, 0, 0, 0},
      {"--verbose", HARNESS_FLAG, &o.verbose, 0, 0, 0},
      {"--ranks", HARNESS_INT, &o.ranks, 2, MAX_RANKS, 4},
      {"--tp", HARNESS_INT, &o.tp, 1, MAX_RANKS, 0},
      {"--calls", HARNESS_VALUE, NULL, 0, 0, 0},
      {"--seed", HARNESS_VALUE, NULL, 0, 0, 0},
      {"--dtypes", HARNESS_VALUE, NULL, 0, 0, 0},
      {"--batch", HARNESS_INT, &o.batch, MAX_GROUP, 4096, 64},
      {"--graph-percent", HARNESS_INT, &o.graph_percent, 0, 100, 2},
      {"--max-rows", HARNESS_INT, &o.max_rows, 1, 1 << 16, 512},
      {"--max-elems", HARNESS_INT, &o.max_elems, 8, 1 << 20, 8192},
      {"--timeout-ms", HARNESS_INT, &o.timeout_ms, 100, 3600000, 10000},
      {"--limit-s", HARNESS_INT, &o.limit_s, 10, 86400, 570},
  };
  const int rc = harness_parse_args(argc, argv, options, (int)(sizeof options / sizeof options[0]),
                                    take_value, &o, "mixcomm-soak", usage);
  if (rc >= 0)
    return rc;
  if (o.tp == 0)
    o.tp = o.ranks >= 4 && o.ranks % 2 == 0 ? 2 : o.ranks;
  mixcomm_topology_t t;
  if (harness_one_node(o.ranks, o.tp, &t) != MIXCOMM_SUCCESS) {
    fprintf(stderr, "mixcomm-soak: topology: %s\n", mixcomm_last_error());
    return 2;
  }
  char dts[64] = "";
  for (int d = 0; d < o.ndtypes; d++)
    snprintf(dts + strlen(dts), sizeof dts - strlen(dts), "%s%s", d ? "," : "",
             mixcomm_dtype_name(o.dtypes[d]));
  printf("== soak: %d ranks, local tp %d x dp %d, %lld calls (%s), seed %llu, batch %d, graphs "
         "%d%%, rows <= %d, row_elems <= %d, kernel timeout %d ms, limit %d s\n",
         o.ranks, t.local_tp_size, t.local_dp_size, o.calls, dts, (unsigned long long)o.seed,
         o.batch, o.graph_percent, o.max_rows, o.max_elems, o.timeout_ms, o.limit_s);
  fflush(stdout);
  if (o.dry_run)
    return dry_run(&o, &t);

  shared_t* sh = harness_map_shared(sizeof *sh, "mixcomm-soak: mmap");
  if (sh == NULL)
    return 2;
  job_t job = {&o, sh, t.dp_size};
  const double t0 = now_s();
  const int failed_ranks = spawn_ranks(o.ranks, o.ranks, o.limit_s, soak_rank_main, &job);
  const double dt = now_s() - t0;
  const int W = spawn_under_launcher() ? 1 : o.ranks;
  long long calls = -1, checked = -1, wrong = 0, errors = 0, executions = 0, graphs = 0,
            graph_calls = 0, switches = 0, zero = 0, elements = 0;
  for (int r = 0; r < W; r++) {
    const counts_t* k = &sh->r[spawn_under_launcher() ? 0 : r];
    if (calls < 0 || k->calls < calls)
      calls = k->calls;
    if (checked < 0 || k->checked < checked)
      checked = k->checked;
    wrong += k->wrong;
    errors += k->errors;
    executions += k->executions;
    graphs += k->graphs;
    graph_calls += k->graph_calls;
    switches += k->switches;
    zero += k->zero_rows;
    elements += k->elements;
    if (k->first_error[0])
      printf("  rank %d first error: %s\n", r, k->first_error);
    if (k->first_wrong[0])
      printf("  rank %d first wrong call: %s\n", r, k->first_wrong);
  }
  const counts_t* k0 = &sh->r[0];
  printf("soak: per rank: %lld executions (graph replays included), %lld calls in %lld graphs, "
         "%lld stream switches, %lld zero-row calls; %lld elements checked over all ranks\n",
         executions / W, graph_calls / W, graphs / W, switches / W, zero / W, elements);
  print_mix("soak:", k0);
  if (failed_ranks)
    printf("soak: %d rank(s) failed or were killed (limit %d s)\n", failed_ranks, o.limit_s);
  printf("soak: calls %lld, checked %lld, wrong elements %lld, errors %lld, seconds %.1f\n", calls,
         checked, wrong, errors, dt);
  fflush(stdout);
  const int bad = failed_ranks || wrong || errors || calls != o.calls || checked != o.calls;
  munmap(sh, sizeof *sh);
  return bad ? 1 : 0;
}
