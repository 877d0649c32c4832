/* SPDX-License-Identifier: Apache-2.0
 * Which modes are valid for a topology and what the machine offers, with a reason for each
 * excluded mode. */
#include <stddef.h>

#include "core/build_config.h"
#include "core/error.h"
#include "core/plan.h"
#include "core/topology.h"

void mixcomm_caps_default(mixcomm_caps_t* caps) {
  if (caps == NULL)
    return;
  caps->multicast = 0;
  caps->nccl = MIXCOMM_HAVE_NCCL;
  caps->nvshmem = MIXCOMM_HAVE_NVSHMEM;
  caps->autotune = 1;
  caps->ranks_share_gpu = 0;
}

static int fail(const char** reason, const char* why) {
  if (reason != NULL)
    *reason = why;
  return 0;
}

/* Conditions every fused mode shares: kernels exist for this node size; across nodes, the
 * NVSHMEM transport is built in and one step fits the bounded workspace (core/plan.h: the plan
 * holds a 32-thread step of every mode that passes here, so a valid mode runs for every size). */
static int fused_common(const mixcomm_topology_t* t, const mixcomm_caps_t* c, mixcomm_mode_t mode,
                        const char** reason) {
  if (t->local_size > MIXCOMM_MAX_LOCAL_SIZE)
    return fail(reason, "fused kernels support at most 16 ranks per node (MIXCOMM_MAX_LOCAL_SIZE)");
  if (t->inter_size > 1 && !c->nvshmem)
    return fail(reason,
                "fused modes across nodes need mixcomm's NVSHMEM plugin, which is not "
                "available (built without NVSHMEM, or NVSHMEM 3.4.5 missing at run time: "
                "see docs/install.md)");
  if (t->inter_size > 1 && mixcomm__mode_step_rows(t, mode) > MIXCOMM_MAX_STEP_ROWS)
    return fail(reason,
                "at this many nodes one step of this mode needs more than 1024 workspace rows "
                "per CTA (MIXCOMM_MAX_STEP_ROWS; they grow with inter_size x local_size), "
                "which would make the workspace unbounded: use another fused mode or NCCL");
  return 1;
}

int mixcomm_topology_mode_valid(const mixcomm_topology_t* t, const mixcomm_caps_t* caps,
                                mixcomm_mode_t mode, const char** reason) {
  mixcomm_caps_t defaults;
  if (caps == NULL) {
    mixcomm_caps_default(&defaults);
    caps = &defaults;
  }
  if (reason != NULL)
    *reason = NULL;
  if (t == NULL)
    return fail(reason, "no topology");
  switch (mode) {
    case MIXCOMM_MODE_FUSED_OPT_WAITS_MC:
    case MIXCOMM_MODE_FUSED_OPT_BYTES1_MC:
    case MIXCOMM_MODE_FUSED_OPT_BYTES2_MC:
      return fail(reason,
                  "NVLink multicast modes are not built: mixcomm never creates multicast objects "
                  "(they can take shared GPU hosts out of service); use the _UC twin of this mode");
    case MIXCOMM_MODE_FUSED_OPT_WAITS_UC:
      return fused_common(t, caps, mode, reason);
    case MIXCOMM_MODE_FUSED_OPT_BYTES1_UC:
      if (t->local_tp_size <= 1)
        return fail(reason, "OPT_BYTES1 is two-shot inside the node: needs local_tp_size > 1");
      return fused_common(t, caps, mode, reason);
    case MIXCOMM_MODE_FUSED_OPT_BYTES2_UC:
      if (t->inter_tp_size <= 1)
        return fail(reason,
                    "OPT_BYTES2 is two-shot inside and across nodes: needs inter_tp_size > 1");
      return fused_common(t, caps, mode, reason);
    case MIXCOMM_MODE_NCCL_ONE:
    case MIXCOMM_MODE_NCCL_TP_DP:
      if (mode == MIXCOMM_MODE_NCCL_TP_DP && !(t->tp_size > 1 && t->dp_size > 1))
        return fail(reason, "NCCL_TP_DP needs both tp_size > 1 and dp_size > 1");
      if (caps->ranks_share_gpu)
        return fail(reason,
                    "several ranks share one GPU, which NCCL refuses (one rank per GPU is needed)");
      if (!caps->nccl)
        return fail(reason, "NCCL is not available (libnccl.so.2 could not be loaded)");
      return 1;
    case MIXCOMM_MODE_AUTOTUNE:
      if (!caps->autotune)
        return fail(reason, "autotune is off (use_autotune = 0)");
      return 1;
    default:
      return fail(reason, "not a mode");
  }
}

int mixcomm__mode_is_fused(mixcomm_mode_t mode) {
  return mode >= MIXCOMM_MODE_FUSED_OPT_WAITS_MC && mode <= MIXCOMM_MODE_FUSED_OPT_BYTES2_UC;
}
