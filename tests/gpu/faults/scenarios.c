/* SPDX-License-Identifier: Apache-2.0
 * The table of fault scenarios, in the order they run and --list shows them: name,
 * description, when a topology skips it, the roles, the rank side and the judge. */
#include <stddef.h>

#include "gpu/faults/faults.h"

static void assign_victim(const topo_info_t* ti, shared_t* sh) {
  sh->r[ti->victim].role = ROLE_VICTIM;
}
static void assign_sleeper(const topo_info_t* ti, shared_t* sh) {
  sh->r[ti->victim].role = ROLE_SLEEPER;
}
static void assign_diverger(const topo_info_t* ti, shared_t* sh) {
  sh->r[ti->victim].role = ROLE_DIVERGER;
}
static void assign_none(const topo_info_t* ti, shared_t* sh) {
  (void)ti;
  (void)sh;
}

/* ---- the scenario table ---------------------------------------------------------------------- */

static const char* skip_never(const topo_info_t* ti) {
  (void)ti;
  return NULL;
}
static const char* skip_one_op(const topo_info_t* ti) {
  return ti->nops < 2 ? "only one valid op for this topology" : NULL;
}
static const char* skip_no_twoshot(const topo_info_t* ti) {
  return ti->twoshot ? NULL : "FUSED_OPT_BYTES1_UC needs local_tp_size > 1";
}

const scenario_t k_scenarios[] = {
    {"kill-before-create", "a rank is SIGKILLed right before mixcomm_handler_create", skip_never,
     assign_victim, rank_kill_before_create, judge_kill_before_create},
    {"kill-in-create", "a rank is SIGKILLed half-way through mixcomm_handler_create", skip_never,
     assign_victim, rank_kill_in_create, judge_kill_in_create},
    {"kill-in-autotune", "a rank is SIGKILLed while autotune measures (empty cache)", skip_never,
     assign_victim, rank_kill_in_autotune, judge_kill_in_autotune},
    {"kill-mid-stream", "a rank is SIGKILLed between calls of a checked stream", skip_never,
     assign_victim, rank_kill_mid_stream, judge_kill_mid_stream},
    {"diverge-op", "one rank calls another op", skip_one_op, assign_diverger, rank_diverge_op,
     judge_diverge_strict},
    {"diverge-rows", "one rank calls with another row count", skip_never, assign_diverger,
     rank_diverge_rows, judge_diverge_strict},
    {"diverge-mode", "one rank calls two-shot while the others call one-shot", skip_no_twoshot,
     assign_diverger, rank_diverge_mode, judge_diverge_lenient},
    {"never-calls", "one rank never makes a one-shot call", skip_never, assign_sleeper,
     rank_never_calls_1shot, judge_never_calls_strict},
    {"never-calls-2shot", "one rank never makes a two-shot call", skip_no_twoshot, assign_sleeper,
     rank_never_calls_2shot, judge_never_calls_lenient},
    {"abort", "a second thread aborts while the main thread waits on a stuck kernel", skip_never,
     assign_sleeper, rank_abort, judge_abort},
    {"two-streams", "one handler used from two streams at once", skip_never, assign_none,
     rank_two_streams, judge_two_streams},
    {"after-shutdown", "run, shutdown, async_error and abort after shutdown", skip_never,
     assign_none, rank_after_shutdown, judge_misuse},
    {"checkpointed", "run while a checkpoint has released the workspace", skip_never, assign_none,
     rank_checkpointed, judge_misuse},
    {"kill-detected", "a rank is SIGKILLed while the others wait for it (default timeout)",
     skip_never, assign_victim, rank_kill_detected, judge_kill_detected},
    {"late-peer", "a rank starts a call --late-ms after the others (default timeout)",
     skip_never, assign_sleeper, rank_late_peer, judge_late_peer},
    {"map-fails", "one rank's node-workspace mapping fails (MIXCOMM_DEBUG_FAIL_MAP)", skip_never,
     assign_diverger, rank_map_fails, judge_map_fails},
};
const int k_num_scenarios = (int)(sizeof k_scenarios / sizeof k_scenarios[0]);
