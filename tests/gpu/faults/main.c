/* SPDX-License-Identifier: Apache-2.0
 * Fault-injection tests (mixcomm-fault-tests): ranks that die, diverge, never call or are
 * aborted, and misuse of a handler. See docs/reliability.md. This file: the options and the
 * loop over topologies and scenarios; the scenarios are grouped in creation.c, dead_peer.c,
 * stuck_peer.c and misuse.c (their table: scenarios.c), driver.c forks and judges one.
 *
 * Each scenario forks its own set of ranks on one node (they share the GPU under MPS, or use
 * one GPU each when there are enough). Unlike tools/common/spawn.c, a rank that dies does not
 * take the others down: every rank records what it saw (the status, the peer it names, the
 * message, how long detection and shutdown took) in memory shared with the parent, which judges
 * the scenario once every rank has exited or the scenario's hard limit has passed (then the
 * remaining ranks are killed and the scenario fails). The parent never touches CUDA.
 *
 *   mixcomm-fault-tests [--ranks 4[,2,...]] [--tp T] [--victim R] [--only NAME[,NAME...]]
 *                       [--list] [--timeout-ms 2000] [--bootstrap-timeout-ms 10000]
 *                       [--margin-ms 3000] [--limit-s 60] [--total-limit-s 540] [--calls 40]
 *                       [--late-ms 60000] [--dtype bf16] [--verbose]
 *
 * Output: one line per scenario, "fault <name>: ok (<who reported what, how long it took>)" or
 * "fault <name>: FAIL (<why> | <what each rank reported>)", then "faults injected N, survived
 * N" and "N passed, N failed". Exit status 0 when nothing failed.
 *
 * Who is expected to name whom. A rank that waits for a dead or silent peer directly names it.
 * In the one-shot mode (FUSED_OPT_WAITS_UC) every rank exchanges data with every other rank at
 * every step and sends before it waits, so a survivor only ever waits for the culprit: the
 * scenarios that require every survivor to name the culprit run one-shot calls where the fault
 * hits. In the two-shot mode (and during autotune, which measures both) a survivor may instead
 * wait for another survivor that is itself stuck on the culprit, and name that one; those
 * scenarios require every survivor to fail with a named peer and at least one to name the
 * culprit, and list who named whom.
 *
 * With the default timeout (10 minutes): kill-detected requires every survivor to report the
 * killed rank as MIXCOMM_ERR_PEER_LOST within 2 s of its death (the watch on the bootstrap's
 * connections, not the timeout); late-peer requires a call to succeed on every rank although
 * one rank starts it --late-ms after the others. map-fails injects a mapping failure on the
 * culprit (MIXCOMM_DEBUG_FAIL_MAP) and requires every rank's creation to fail naming it, well
 * before the bootstrap timeout.
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/args.h"
#include "gpu/faults/faults.h"
#include "gpu/harness.h"

static void usage(void) {
  fprintf(stderr,
          "usage: mixcomm-fault-tests [--ranks 4[,2,...]] [--tp T] [--victim R]\n"
          "                           [--only NAME[,NAME...]] [--list] [--timeout-ms 2000]\n"
          "                           [--bootstrap-timeout-ms 10000] [--margin-ms 3000]\n"
          "                           [--limit-s 60] [--total-limit-s 540] [--calls 40]\n"
          "                           [--late-ms 60000] [--dtype bf16] [--verbose]\n");
}

static int wanted(const options_t* o, const char* name) {
  if (o->only[0] == '\0')
    return 1;
  const size_t n = strlen(name);
  for (const char* p = o->only; (p = strstr(p, name)) != NULL; p += n) {
    const int start = p == o->only || p[-1] == ',';
    const int end = p[n] == '\0' || p[n] == ',';
    if (start && end)
      return 1;
  }
  return 0;
}

static int take_rank_count(void* ctx, int index, const char* text) {
  options_t* o = ctx;
  return args_parse_int(text, 2, MAX_RANKS, &o->ranks[index]);
}

/* The options with a value of their own kind: --ranks, --only, --dtype. */
static int take_value(void* ctx, const char* name, const char* v) {
  options_t* o = ctx;
  if (!strcmp(name, "--ranks")) {
    o->nranks = harness_parse_list(v, 8, take_rank_count, o);
    return o->nranks < 0;
  }
  if (!strcmp(name, "--only")) {
    snprintf(o->only, sizeof o->only, "%s", v);
    return 0;
  }
  return mixcomm_dtype_from_name(v, &o->dtype) != MIXCOMM_SUCCESS;
}

int main(int argc, char** argv) {
  options_t o;
  memset(&o, 0, sizeof o);
  o.ranks[0] = 4;
  o.nranks = 1;
  o.abort_timeout_ms = 20000;
  o.abort_delay_ms = 300;
  o.abort_limit_ms = 5000;
  o.dtype = MIXCOMM_BFLOAT16;
  const harness_option_t options[] = {
      {"--list", HARNESS_STOP_FLAG, &o.list, 0, 0, 0},
      {"--verbose", HARNESS_FLAG, &o.verbose, 0, 0, 0},
      {"--ranks", HARNESS_VALUE, NULL, 0, 0, 0},
      {"--tp", HARNESS_INT, &o.tp, 1, MAX_RANKS, 0},
      {"--victim", HARNESS_INT, &o.victim, 0, MAX_RANKS - 1, -1},
      {"--only", HARNESS_VALUE, NULL, 0, 0, 0},
      {"--timeout-ms", HARNESS_INT, &o.timeout_ms, 100, 600000, 2000},
      {"--bootstrap-timeout-ms", HARNESS_INT, &o.bs_timeout_ms, 100, 600000, 10000},
      {"--margin-ms", HARNESS_INT, &o.margin_ms, 0, 600000, 3000},
      {"--limit-s", HARNESS_INT, &o.limit_s, 5, 3600, 60},
      {"--total-limit-s", HARNESS_INT, &o.total_limit_s, 10, 86400, 540},
      {"--calls", HARNESS_INT, &o.calls, 1, 100000, 40},
      {"--late-ms", HARNESS_INT, &o.late_ms, 0, 3600000, 60000},
      {"--dtype", HARNESS_VALUE, NULL, 0, 0, 0},
  };
  const int rc = harness_parse_args(argc, argv, options, (int)(sizeof options / sizeof options[0]),
                                    take_value, &o, "mixcomm-fault-tests", usage);
  if (rc >= 0)
    return rc;
  if (o.list) {
    for (int k = 0; k < NUM_SCENARIOS; k++)
      printf("%-20s %s\n", k_scenarios[k].name, k_scenarios[k].what);
    return 0;
  }
  if (o.only[0] != '\0') {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", o.only);
    for (char* tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
      int found = 0;
      for (int k = 0; k < NUM_SCENARIOS; k++)
        found |= strcmp(tok, k_scenarios[k].name) == 0;
      if (!found) {
        fprintf(stderr, "mixcomm-fault-tests: unknown scenario %s (see --list)\n", tok);
        return 2;
      }
    }
  }
  char tmpdir[] = "/tmp/mixcomm-faults-XXXXXX";
  if (mkdtemp(tmpdir) == NULL) {
    perror("mixcomm-fault-tests: mkdtemp");
    return 2;
  }
  int passed = 0, failed = 0, injected = 0, survived = 0;
  const double t0 = now_ms();
  for (int n = 0; n < o.nranks; n++) {
    topo_info_t ti;
    memset(&ti, 0, sizeof ti);
    ti.world = o.ranks[n];
    ti.tp = o.tp ? o.tp : (ti.world >= 4 && ti.world % 2 == 0 ? 2 : ti.world);
    if (ti.world % ti.tp != 0) {
      fprintf(stderr, "mixcomm-fault-tests: --tp %d does not divide %d ranks\n", ti.tp, ti.world);
      failed++;
      continue;
    }
    ti.victim = o.victim >= 0 ? o.victim : ti.world - 1;
    if (ti.victim >= ti.world) {
      fprintf(stderr, "mixcomm-fault-tests: --victim %d is not a rank of %d\n", ti.victim,
              ti.world);
      failed++;
      continue;
    }
    mixcomm_topology_t t;
    if (harness_one_node(ti.world, ti.tp, &t) != MIXCOMM_SUCCESS) {
      fprintf(stderr, "mixcomm-fault-tests: topology: %s\n", mixcomm_last_error());
      failed++;
      continue;
    }
    ti.dp = t.dp_size;
    for (int op = 0; op < MIXCOMM_NUM_OPS; op++)
      if (mixcomm_topology_op_valid(&t, (mixcomm_op_t)op))
        ti.ops[ti.nops++] = (mixcomm_op_t)op;
    ti.twoshot = mixcomm_topology_mode_valid(&t, NULL, MIXCOMM_MODE_FUSED_OPT_BYTES1_UC, NULL);
    printf("== faults: %d ranks, local tp %d x dp %d, %s, culprit rank %d, kernel timeout %d ms, "
           "bootstrap timeout %d ms, margin %d ms\n",
           ti.world, ti.tp, ti.dp, mixcomm_dtype_name(o.dtype), ti.victim, o.timeout_ms,
           o.bs_timeout_ms, o.margin_ms);
    fflush(stdout);
    for (int k = 0; k < NUM_SCENARIOS; k++) {
      const scenario_t* sc = &k_scenarios[k];
      if (!wanted(&o, sc->name))
        continue;
      const char* why = sc->skip(&ti);
      if (why != NULL) {
        printf("fault %s: skipped (%s)\n", sc->name, why);
        continue;
      }
      if (now_ms() - t0 + scenario_limit_s(&o, sc) * 1000.0 > o.total_limit_s * 1000.0) {
        printf("fault %s: FAIL (not run: it could end after the %d s total limit)\n", sc->name,
               o.total_limit_s);
        failed++;
        continue;
      }
      injected++;
      if (run_scenario(&o, &ti, sc, tmpdir)) {
        passed++;
        survived++;
      } else {
        failed++;
      }
    }
  }
  nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  printf("faults injected %d, survived %d\n", injected, survived);
  printf("%d passed, %d failed (%.1f s)\n", passed, failed, (now_ms() - t0) / 1000.0);
  return failed ? 1 : 0;
}
