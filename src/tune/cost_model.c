/* SPDX-License-Identifier: Apache-2.0
 * A latency-bandwidth cost model of every mode, used to pick a mode when nothing was measured
 * (autotune off, or asked before it ran). It is deliberately simple: per GPU, the number of
 * synchronisation rounds inside and across nodes times a latency, plus the bytes the GPU sends
 * inside and across nodes over a bandwidth. The rounds and bytes follow the algorithms of the
 * fused kernels and of ring-style NCCL collectives; docs/mode-selection.md lists the formulas.
 * The figures are rough Hopper NVLink / InfiniBand numbers and can be overridden from the
 * environment; the model only has to rank one-shot against two-shot against NCCL sensibly. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>

#include "core/env.h"
#include "core/log.h"
#include "tune/tune.h"

#define DEFAULT_INTRA_LAT_US 2.0
#define DEFAULT_INTRA_GBPS 300.0
#define DEFAULT_INTER_LAT_US 6.0
#define DEFAULT_INTER_GBPS 40.0
#define DEFAULT_NCCL_LAT_US 20.0
#define DEFAULT_KERNEL_LAUNCH_US 3.0

/* Allowed ranges. Beyond them a prediction can become infinite (a bandwidth of 1e-300 GB/s),
 * and then no mode is cheaper than another. */
#define MAX_LAT_US 1e9 /* about 17 minutes */
#define MIN_GBPS 1e-3
#define MAX_GBPS 1e6

/* Overwrite *v with the value of env variable `name` if it is a number in the allowed range
 * (latencies in [0, MAX_LAT_US], bandwidths in [MIN_GBPS, MAX_GBPS]); otherwise keep *v and,
 * if it was set, warn. */
static void env_override(const char* name, double* v, int bandwidth) {
  const char* s = getenv(name);
  if (s == NULL || s[0] == '\0')
    return;
  char* end = NULL;
  double x = strtod(s, &end);
  int converted = end != NULL && end != s;
  while (converted && (*end == ' ' || *end == '\t'))
    end++;
  const double lo = bandwidth ? MIN_GBPS : 0.0, hi = bandwidth ? MAX_GBPS : MAX_LAT_US;
  int ok = converted && *end == '\0' && isfinite(x) && x >= lo && x <= hi;
  if (!ok) {
    char shown[68];
    mixcomm__printable(s, shown, sizeof shown);
    MIXCOMM_WARN("%s='%s' ignored: expected a number in [%g, %g]; using %g", name, shown, lo, hi,
                 *v);
    return;
  }
  *v = x;
}

void mixcomm__cost_params_default(mixcomm__cost_params_t* p) {
  if (p == NULL)
    return;
  const struct {
    double* value;
    double fallback;
    const char* env;
    int bandwidth;
  } params[] = {
      {&p->intra_latency_us, DEFAULT_INTRA_LAT_US, "MIXCOMM_COST_INTRA_LAT_US", 0},
      {&p->intra_gbps, DEFAULT_INTRA_GBPS, "MIXCOMM_COST_INTRA_GBPS", 1},
      {&p->inter_latency_us, DEFAULT_INTER_LAT_US, "MIXCOMM_COST_INTER_LAT_US", 0},
      {&p->inter_gbps, DEFAULT_INTER_GBPS, "MIXCOMM_COST_INTER_GBPS", 1},
      {&p->nccl_latency_us, DEFAULT_NCCL_LAT_US, "MIXCOMM_COST_NCCL_LAT_US", 0},
      {&p->kernel_launch_us, DEFAULT_KERNEL_LAUNCH_US, "MIXCOMM_COST_KERNEL_US", 0},
  };
  for (size_t i = 0; i < sizeof params / sizeof params[0]; i++) {
    *params[i].value = params[i].fallback;
    env_override(params[i].env, params[i].value, params[i].bandwidth);
  }
}

/* Microseconds to send `bytes` at `gbps` GB/s (1 GB = 1e9 bytes). */
static double xfer_us(double bytes, double gbps) {
  return bytes / (gbps * 1e3);
}

/* Rounds and bytes sent by one GPU for a fused mode. */
typedef struct traffic {
  int intra_rounds, inter_rounds;
  double intra_bytes, inter_bytes;
} traffic_t;

/* Gather-type ops (AR, AG, AR+AG; AR has Ld = Id = 1, AG has Lt = It = 1). n = input bytes. */
static traffic_t gather_traffic(const mixcomm_topology_t* t, int kind, double n) {
  double L = t->local_size, I = t->inter_size, Lt = t->local_tp_size, Ld = t->local_dp_size;
  double Id = t->inter_dp_size, It = t->inter_tp_size, tp = t->tp_size;
  int multi = t->inter_size > 1;
  traffic_t r = {0, 0, 0.0, 0.0};
  if (kind == 0) { /* WAITS: broadcast raw input (or the node/inter-dp partials) */
    r.intra_rounds = 1;
    r.intra_bytes = (L - 1) * n;
    if (multi) {
      r.inter_rounds = 1;
      r.inter_bytes = (I - 1) * n;
      if (Ld > 1) /* inter-node first, then every inter-dp group's block to the node */
        r.intra_bytes = Id * (L - 1) * n;
    }
  } else if (kind == 1) { /* BYTES1: TP reduce-scatter in the node, then all-gather */
    r.intra_rounds = 2;
    r.intra_bytes = (Lt - 1) / Lt * n + Id * (L - 1) * n / Lt;
    if (multi) {
      r.inter_rounds = 1;
      r.inter_bytes = (I - 1) * n / Lt;
    }
  } else { /* BYTES2: reduce-scatter over the whole TP group, inside and across nodes */
    r.intra_rounds = 2;
    r.inter_rounds = 2;
    r.intra_bytes = (Lt - 1) / Lt * n + I * (L - 1) * n / tp;
    r.inter_bytes = (It - 1) * n / tp + (I - 1) * n / tp;
  }
  return r;
}

/* Scatter-type ops (RS, RS+AR; RS has Lt = It = 1). n = output bytes (input is dp * n). */
static traffic_t scatter_traffic(const mixcomm_topology_t* t, int kind, double n) {
  double L = t->local_size, I = t->inter_size, Lt = t->local_tp_size, Ld = t->local_dp_size;
  double Id = t->inter_dp_size, It = t->inter_tp_size, tp = t->tp_size;
  int multi = t->inter_size > 1;
  traffic_t r = {0, 0, 0.0, 0.0};
  if (kind == 0) { /* WAITS: each input block straight to the ranks that reduce it */
    r.intra_rounds = 1;
    r.intra_bytes = (L - 1) * n;
    if (multi) {
      r.inter_rounds = 1;
      r.inter_bytes = (I - 1) * n;
      if (Ld > 1) /* node first, for every inter-dp group */
        r.intra_bytes = Id * (L - 1) * n;
    }
  } else if (kind == 1) { /* BYTES1: node reduce-scatter, then TP all-gather */
    r.intra_rounds = 2;
    r.intra_bytes = Id * (L - 1) * n / Lt + (Lt - 1) * n / Lt;
    if (multi) {
      r.inter_rounds = 1;
      r.inter_bytes = (I - 1) * n / Lt;
    }
  } else { /* BYTES2: node reduce-scatter at tp-chunk granularity, two exchanges across nodes */
    r.intra_rounds = 2;
    r.inter_rounds = 2;
    r.intra_bytes = I * (L - 1) * n / tp + It * (Lt - 1) * n / tp;
    r.inter_bytes = (I - 1) * n / tp + (It - 1) * n / tp;
  }
  return r;
}

/* Bandwidth of an NCCL collective over a group that spans nodes or not. */
static double nccl_gbps(const mixcomm__cost_params_t* p, int spans_nodes) {
  return spans_nodes && p->inter_gbps < p->intra_gbps ? p->inter_gbps : p->intra_gbps;
}

/* Bytes one rank sends in a ring all-reduce / all-gather / reduce-scatter of a group of g. */
static double ring_allreduce(double g, double n) {
  return g > 1 ? 2.0 * (g - 1) / g * n : 0.0;
}
static double ring_gather(double g, double n) { /* n = one rank's block */
  return (g - 1) * n;
}

double mixcomm__cost_predict_us(const mixcomm__cost_params_t* p, const mixcomm_topology_t* t,
                                mixcomm_op_t op, mixcomm_mode_t mode, uint64_t bytes) {
  if (p == NULL || t == NULL || op < 0 || op >= MIXCOMM_NUM_OPS)
    return HUGE_VAL;
  double n = (double)bytes, W = t->world_size;
  int multi = t->inter_size > 1;
  int scatter = op == MIXCOMM_OP_REDUCESCATTER || op == MIXCOMM_OP_REDUCESCATTER_ALLREDUCE;
  switch (mode) {
    case MIXCOMM_MODE_NCCL_ONE: {
      /* AR: ring all-reduce on the world. AG, RS: ring all-gather / reduce-scatter of W blocks.
       * AR+AG: all-gather of every full input; RS+AR: all-to-all of one block per peer. */
      double sent = op == MIXCOMM_OP_ALLREDUCE ? ring_allreduce(W, n) : ring_gather(W, n);
      return p->nccl_latency_us + xfer_us(sent, nccl_gbps(p, multi));
    }
    case MIXCOMM_MODE_NCCL_TP_DP: {
      /* AR on the TP group and AG (or RS) on the DP group, two NCCL calls. */
      int tp_spans = t->inter_tp_size > 1, dp_spans = t->inter_dp_size > 1;
      return 2.0 * p->nccl_latency_us +
             xfer_us(ring_allreduce(t->tp_size, n), nccl_gbps(p, tp_spans)) +
             xfer_us(ring_gather(t->dp_size, n), nccl_gbps(p, dp_spans));
    }
    case MIXCOMM_MODE_FUSED_OPT_WAITS_MC:
    case MIXCOMM_MODE_FUSED_OPT_WAITS_UC:
    case MIXCOMM_MODE_FUSED_OPT_BYTES1_MC:
    case MIXCOMM_MODE_FUSED_OPT_BYTES1_UC:
    case MIXCOMM_MODE_FUSED_OPT_BYTES2_MC:
    case MIXCOMM_MODE_FUSED_OPT_BYTES2_UC: {
      /* MC modes are predicted like their UC twins (they are never built or chosen). */
      int kind = (int)mode / 2;
      traffic_t r = scatter ? scatter_traffic(t, kind, n) : gather_traffic(t, kind, n);
      return r.intra_rounds * p->intra_latency_us + r.inter_rounds * p->inter_latency_us +
             xfer_us(r.intra_bytes, p->intra_gbps) + xfer_us(r.inter_bytes, p->inter_gbps);
    }
    default:
      return HUGE_VAL; /* AUTOTUNE, DEFAULT and non-modes have no cost of their own */
  }
}

/* The environment is read once: mixcomm__cost_model_choice may run on every call. */
static pthread_once_t params_once = PTHREAD_ONCE_INIT;
static mixcomm__cost_params_t params_cached;

static void params_init(void) {
  mixcomm__cost_params_default(&params_cached);
}

mixcomm_mode_t mixcomm__cost_model_choice(const mixcomm_topology_t* t, const mixcomm_caps_t* c,
                                          mixcomm_op_t op, uint64_t bytes) {
  return mixcomm__cost_model_choose(t, c, op, bytes, 0);
}

double mixcomm__cost_predict_epilogue_us(const mixcomm__cost_params_t* p,
                                         const mixcomm_topology_t* t, mixcomm_op_t op,
                                         mixcomm_mode_t mode, uint64_t bytes) {
  const double us = mixcomm__cost_predict_us(p, t, op, mode, bytes);
  /* The fused kernels do the epilogue in the same launch (its memory passes are the same for
   * every mode); the NCCL modes need a kernel of their own after the exchange. */
  if (mode == MIXCOMM_MODE_NCCL_ONE || mode == MIXCOMM_MODE_NCCL_TP_DP)
    return us + p->kernel_launch_us;
  return us;
}

mixcomm_mode_t mixcomm__cost_model_choose(const mixcomm_topology_t* t, const mixcomm_caps_t* c,
                                          mixcomm_op_t op, uint64_t bytes, int epilogue) {
  if (t == NULL || !mixcomm_topology_op_valid(t, op)) {
    return t != NULL && mixcomm_topology_mode_valid(t, c, MIXCOMM_MODE_FUSED_OPT_WAITS_UC, NULL)
               ? MIXCOMM_MODE_FUSED_OPT_WAITS_UC
               : MIXCOMM_MODE_NCCL_ONE;
  }
  pthread_once(&params_once, params_init);
  mixcomm_mode_t best = MIXCOMM_MODE_NCCL_ONE; /* if nothing is valid: the run will say why */
  double best_us = HUGE_VAL;
  for (int m = 0; m < MIXCOMM_MODE_AUTOTUNE; m++) {
    mixcomm_mode_t mode = (mixcomm_mode_t)m;
    if (mode == MIXCOMM_MODE_FUSED_OPT_WAITS_MC || mode == MIXCOMM_MODE_FUSED_OPT_BYTES1_MC ||
        mode == MIXCOMM_MODE_FUSED_OPT_BYTES2_MC)
      continue;
    if (!mixcomm_topology_mode_valid(t, c, mode, NULL))
      continue;
    double us = epilogue ? mixcomm__cost_predict_epilogue_us(&params_cached, t, op, mode, bytes)
                         : mixcomm__cost_predict_us(&params_cached, t, op, mode, bytes);
    if (us < best_us) {
      best = mode;
      best_us = us;
    }
  }
  return best;
}
