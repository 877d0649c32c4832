/* SPDX-License-Identifier: Apache-2.0
 * GPU tests of uneven rows per DP rank (mixcomm_run_v, mixcomm_run_v_device): for every valid op
 * with a DP group and every valid mode, lists of counts with zeros, one large and many small,
 * a single non-empty block and all equal, against a float64 reference computed here from every
 * rank's input (regenerated per rank); outputs poisoned before the call, and the poison past the
 * written rows must survive (nothing written out of bounds); TP ranks must agree bit for bit,
 * the host and device forms and every fused mode must give the same bits, an all-equal list must
 * give the bits of the equal-size call; the epilogue with uneven rows; CUDA graph replay of the
 * device form with counts changed between replays; a list that differs on one rank (one node:
 * MISMATCH naming it) or on one whole node (across nodes: every rank reports MISMATCH from the
 * signals, naming a rank of the other side) and a device count above max_rows
 * (INVALID_ARGUMENT, nothing written). Across nodes FUSED_OPT_WAITS_UC must pass every check
 * a single node does; FUSED_OPT_BYTES1_UC and BYTES2_UC must refuse the call with
 * MIXCOMM_ERR_UNSUPPORTED before enqueuing anything, and DEFAULT must then pick a mode that
 * takes uneven rows (only a job without the NVSHMEM plugin or NCCL may have none). The calls
 * that must be refused or fail are in uneven_errors.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "common/refdata.h"
#include "gpu/uneven.h"

static int64_t uv_sum(const int64_t* rows, int n) {
  int64_t s = 0;
  for (int i = 0; i < n; i++) s += rows[i];
  return s;
}
static int64_t uv_prefix(const int64_t* rows, int k) { return uv_sum(rows, k); }

/* Input rows of world rank w's call. */
static int64_t uv_in_rows(const mixcomm_topology_t* t, mixcomm_op_t op, const int64_t* rows,
                          int w) {
  mixcomm_topology_t q;
  mixcomm_topology_for_rank(t, w, &q);
  return is_gather(op) ? rows[q.dp_rank] : uv_sum(rows, t->dp_size);
}

/* float64 reference of this rank's output from every rank's input, regenerated here:
 *   gather ops: block d = sum over the ranks of DP group d of their whole input;
 *   scatter ops: the output = sum over every rank of its input block dp_rank. */
static void uv_reference(gpu_rank_t* g, uv_buffers_t* b, mixcomm_op_t op, const int64_t* rows,
                         int64_t E, uint64_t seed, unsigned specials) {
  const mixcomm_topology_t* t = &g->topo;
  const int gather = is_gather(op);
  const int64_t out_rows = gather ? uv_sum(rows, t->dp_size) : rows[t->dp_rank];
  const size_t n_out = (size_t)(out_rows * E);
  for (size_t i = 0; i < n_out; i++) {
    b->ref[i] = 0.0;
    b->abs[i] = 0.0;
    b->nz[i] = 1;
  }
  for (int w = 0; w < t->world_size; w++) {
    mixcomm_topology_t q;
    mixcomm_topology_for_rank(t, w, &q);
    const size_t n_in = (size_t)(uv_in_rows(t, op, rows, w) * E);
    ref_fill_input(g->dtype, seed, w, b->h_peer, n_in, specials);
    size_t from, to, len;
    if (gather) {
      from = 0;
      to = (size_t)(uv_prefix(rows, q.dp_rank) * E);
      len = n_in;
    } else {
      from = (size_t)(uv_prefix(rows, t->dp_rank) * E);
      to = 0;
      len = n_out;
    }
    for (size_t i = 0; i < len; i++) {
      const double v = ref_to_double(g->dtype, b->h_peer, from + i);
      b->ref[to + i] += v;
      b->abs[to + i] += fabs(v);
      b->nz[to + i] = b->nz[to + i] && v == 0.0 && signbit(v);
    }
  }
}

typedef struct uv_report {
  int32_t status, dp_rank;
  uint64_t hash;
} uv_report_t;

/* Exchange results: a failed rank makes everyone abandon the handler; ranks sharing an output
 * (all for gather ops, a TP group for scatter ops) must hold the same bits. */
static int uv_agree(gpu_rank_t* g, const uv_report_t* mine, mixcomm_op_t op, const char* what) {
  const int W = g->topo.world_size;
  uv_report_t* all = exchange_reports(g, mine, sizeof *mine, "uneven report", what);
  if (all == NULL)
    return 1;
  int bad = 0;
  for (int w = 0; w < W && mine->status == 0 && !bad; w++) {
    if (all[w].status != 0)
      continue;
    const int shares = is_gather(op) || all[w].dp_rank == mine->dp_rank;
    if (shares && all[w].hash != mine->hash) {
      failf(g, "%s: output differs bitwise from rank %d's (which must be identical)", what, w);
      bad = 1;
    }
  }
  free(all);
  return bad;
}

/* The end of a case: report a failure (why), then agree with the other ranks on the output's
 * hash; a case passes if it succeeded here and agreed. */
static void uv_conclude(gpu_rank_t* g, uv_report_t* rep, uint64_t hash, mixcomm_op_t op,
                        const char* what, const char* why) {
  if (rep->status != 0)
    failf(g, "%s: %s", what, why);
  rep->hash = hash;
  if (uv_agree(g, rep, op, what) == 0 && rep->status == 0)
    g->passed++;
}

/* Bytes of x_out past `written` that must still hold the poison. */
int uv_guard_intact(gpu_rank_t* g, const char* dev, size_t written, char* why, size_t n) {
  unsigned char guard[UV_GUARD_BYTES];
  if (download(g, guard, dev + written, sizeof guard) != cudaSuccess) {
    snprintf(why, n, "downloading the guard bytes failed");
    return 0;
  }
  for (size_t i = 0; i < sizeof guard; i++)
    if (guard[i] != 0xFF) {
      snprintf(why, n, "byte %zu past the %zu written bytes was overwritten", i, written);
      return 0;
    }
  return 1;
}

enum { UV_HOST = 0, UV_DEVICE = 1, UV_PLAIN = 2 };

/* One call in one form; on success the output (and its hash) is in host_out. Returns 0 or a
 * status (>0), -1 for a wrong result (why says what). */
static int uv_call(gpu_rank_t* g, uv_buffers_t* b, mixcomm_op_t op, mixcomm_mode_t mode,
                   const int64_t* rows, int64_t E, int form, int64_t max_rows, uint64_t seed,
                   unsigned specials, char* host_out, uint64_t* hash, char* why, size_t n) {
  const mixcomm_topology_t* t = &g->topo;
  const size_t es = mixcomm_dtype_size(g->dtype);
  const int gather = is_gather(op);
  const int64_t total = uv_sum(rows, t->dp_size);
  const int64_t in_rows = uv_in_rows(t, op, rows, t->world_rank);
  const int64_t out_rows = gather ? total : rows[t->dp_rank];
  const size_t in_bytes = (size_t)(in_rows * E) * es, out_bytes = (size_t)(out_rows * E) * es;
  if (in_bytes > b->in_cap || out_bytes + UV_GUARD_BYTES > b->out_cap) {
    snprintf(why, n, "test buffers too small");
    return -1;
  }
  ref_fill_input(g->dtype, seed, t->world_rank, b->h_in, (size_t)(in_rows * E), specials);
  if (upload(g, b->in, b->h_in, in_bytes) != cudaSuccess ||
      cudaMemsetAsync(b->out, 0xFF, b->out_cap, g->stream) != cudaSuccess) {
    snprintf(why, n, "upload failed");
    return MIXCOMM_ERR_CUDA;
  }
  mixcomm_status_t st;
  if (form == UV_PLAIN) {
    st = mixcomm_run(g->h, op, b->in, b->out, gather ? rows[0] : rows[0] * t->dp_size, E, mode,
                     g->stream);
  } else if (form == UV_DEVICE) {
    int32_t r32[MIXCOMM_MAX_DP_SIZE];
    for (int k = 0; k < t->dp_size; k++) r32[k] = (int32_t)rows[k];
    if (upload(g, b->rows_dev, r32, sizeof(int32_t) * (size_t)t->dp_size) != cudaSuccess) {
      snprintf(why, n, "count upload failed");
      return MIXCOMM_ERR_CUDA;
    }
    st = mixcomm_run_v_device(g->h, op, b->in, b->out, b->rows_dev, max_rows, E, NULL, mode,
                              g->stream);
  } else {
    st = mixcomm_run_v(g->h, op, b->in, b->out, rows, E, NULL, mode, g->stream);
  }
  if (st != MIXCOMM_SUCCESS) {
    snprintf(why, n, "call: %s: %s", mixcomm_status_name(st), mixcomm_last_error());
    return st;
  }
  st = settle(g, why, n);
  if (st != MIXCOMM_SUCCESS)
    return st;
  if (download(g, host_out, b->out, out_bytes) != cudaSuccess) {
    snprintf(why, n, "download failed");
    return MIXCOMM_ERR_CUDA;
  }
  *hash = ref_hash(host_out, out_bytes);
  if (!uv_guard_intact(g, b->out, out_bytes, why, n))
    return -1;
  uv_reference(g, b, op, rows, E, seed, specials);
  char report[400];
  const int64_t wrong = ref_check(g->dtype, host_out, b->ref, b->abs, b->nz,
                                  (size_t)(out_rows * E), report, sizeof report);
  if (wrong) {
    snprintf(why, n, "%lld of %lld elements wrong: %s", (long long)wrong,
             (long long)(out_rows * E), report);
    return -1;
  }
  return 0;
}

static void uv_describe(char* what, size_t n, mixcomm_op_t op, mixcomm_mode_t mode,
                        const int64_t* rows, int dp, int64_t E, const char* form) {
  int used = snprintf(what, n, "uneven %s %s %s E=%lld rows=[", form, mixcomm_op_name(op),
                      mixcomm_mode_name(mode), (long long)E);
  for (int k = 0; k < dp && used > 0 && (size_t)used < n; k++)
    used += snprintf(what + used, n - (size_t)used, "%s%lld", k ? "," : "", (long long)rows[k]);
  if (used > 0 && (size_t)used < n)
    snprintf(what + used, n - (size_t)used, "]");
}

/* Lists of counts for dp DP ranks: index c of the cases below. */
static int uv_lists(int dp, int64_t lists[][MIXCOMM_MAX_DP_SIZE], uint64_t seed) {
  int n = 0;
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (int c = 0; c < 3; c++, n++) /* random with zeros */
    for (int k = 0; k < dp; k++) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      const int r = (int)((x >> 33) % 40);
      lists[n][k] = r < 8 ? 0 : r;
    }
  for (int k = 0; k < dp; k++) lists[n][k] = k == dp / 2 ? UV_MAX_ROWS : 1 + k % 3; /* skewed */
  n++;
  for (int k = 0; k < dp; k++) lists[n][k] = k == dp - 1 ? 5 : 0; /* one non-empty block */
  n++;
  for (int k = 0; k < dp; k++) lists[n][k] = 1 + (k == 0); /* [2,1,1,...] */
  n++;
  return n;
}

static void uv_case(gpu_rank_t* g, uv_buffers_t* b, mixcomm_op_t op, mixcomm_mode_t mode,
                    const int64_t* rows, int64_t E, uint64_t seed, int fused) {
  const int dp = g->topo.dp_size;
  const unsigned specials = REF_SPECIAL_NEG_ZERO | REF_SPECIAL_POISON;
  char what[400], why[1200] = "";
  uv_describe(what, sizeof what, op, mode, rows, dp, E, "host");
  uint64_t h_host = 0, h_dev = 0;
  uv_report_t rep = {0, g->topo.dp_rank, 0};
  rep.status = uv_call(g, b, op, mode, rows, E, UV_HOST, 0, seed, specials, b->h_out, &h_host,
                       why, sizeof why);
  uv_conclude(g, &rep, h_host, op, what, why);
  if (!fused || g->dead)
    return;
  /* The device form with room to spare: the same bits as the host form. */
  int64_t max = 0;
  for (int k = 0; k < dp; k++) max = rows[k] > max ? rows[k] : max;
  uv_describe(what, sizeof what, op, mode, rows, dp, E, "device");
  rep.status = uv_call(g, b, op, mode, rows, E, UV_DEVICE, max + 3, seed, specials, b->h_out2,
                       &h_dev, why, sizeof why);
  if (rep.status == 0 && h_dev != h_host) {
    snprintf(why, sizeof why, "the device form's bits differ from the host form's");
    rep.status = -1;
  }
  uv_conclude(g, &rep, h_dev, op, what, why);
}

/* All equal: the host form is the equal-size call; so is the device form's result. */
static void uv_equal(gpu_rank_t* g, uv_buffers_t* b, mixcomm_op_t op, mixcomm_mode_t mode,
                     int64_t E, int fused) {
  int64_t rows[MIXCOMM_MAX_DP_SIZE];
  for (int k = 0; k < g->topo.dp_size; k++) rows[k] = 37;
  const unsigned specials = REF_SPECIAL_NEG_ZERO;
  char what[400], why[1200] = "";
  uv_describe(what, sizeof what, op, mode, rows, g->topo.dp_size, E, "all-equal");
  uint64_t hp = 0, hv = 0, hd = 0;
  uv_report_t rep = {0, g->topo.dp_rank, 0};
  rep.status = uv_call(g, b, op, mode, rows, E, UV_PLAIN, 0, 11, specials, b->h_out, &hp, why,
                       sizeof why);
  if (rep.status == 0)
    rep.status = uv_call(g, b, op, mode, rows, E, UV_HOST, 0, 11, specials, b->h_out2, &hv, why,
                         sizeof why);
  if (rep.status == 0 && hv != hp) {
    snprintf(why, sizeof why, "mixcomm_run_v's bits differ from mixcomm_run's");
    rep.status = -1;
  }
  if (rep.status == 0 && fused) {
    rep.status = uv_call(g, b, op, mode, rows, E, UV_DEVICE, 64, 11, specials, b->h_out2, &hd,
                         why, sizeof why);
    if (rep.status == 0 && hd != hp) {
      snprintf(why, sizeof why, "mixcomm_run_v_device's bits differ from mixcomm_run's");
      rep.status = -1;
    }
  }
  uv_conclude(g, &rep, hp, op, what, why);
}

/* Every block empty, device form (the host form is the equal-size call of 0 rows): with
 * max_rows 0 the kernel still runs one CTA of one step, so tags and signals meet; with room to
 * spare every vector is skipped. Nothing may be written, and the call must end. */
static void uv_empty(gpu_rank_t* g, uv_buffers_t* b, mixcomm_op_t op, mixcomm_mode_t mode) {
  int64_t rows[MIXCOMM_MAX_DP_SIZE];
  for (int k = 0; k < g->topo.dp_size; k++) rows[k] = 0;
  for (int cap = 0; cap <= 7 && !g->dead; cap += 7) {
    char what[400], why[1200] = "";
    uv_describe(what, sizeof what, op, mode, rows, g->topo.dp_size, 64,
                cap ? "empty, device form, max_rows 7" : "empty, device form, max_rows 0");
    uint64_t h = 0;
    uv_report_t rep = {0, g->topo.dp_rank, 0};
    rep.status = uv_call(g, b, op, mode, rows, 64, UV_DEVICE, cap, 31, 0, b->h_out, &h, why,
                         sizeof why);
    uv_conclude(g, &rep, h, op, what, why);
  }
}

/* The epilogue with uneven rows: norm_out of the gathered / scattered rows must equal RMSNorm of
 * mixcomm_run_v's own output computed here (the residual is covered by tests/gpu/epilogue.c;
 * this checks the per-block offsets and lengths of the row pass). */
static void uv_epilogue(gpu_rank_t* g, uv_buffers_t* b, mixcomm_op_t op, mixcomm_mode_t mode,
                        const int64_t* rows, int64_t E) {
  const mixcomm_topology_t* t = &g->topo;
  const size_t es = mixcomm_dtype_size(g->dtype);
  const int64_t out_rows = is_gather(op) ? uv_sum(rows, t->dp_size) : rows[t->dp_rank];
  const size_t out_bytes = (size_t)(out_rows * E) * es;
  char what[400], why[1200] = "";
  uv_describe(what, sizeof what, op, mode, rows, t->dp_size, E, "epilogue");
  uv_report_t rep = {0, t->dp_rank, 0};
  uint64_t hash = 0;
  rep.status = uv_call(g, b, op, mode, rows, E, UV_HOST, 0, 21, 0, b->h_out, &hash, why,
                       sizeof why);
  char* gamma = NULL;
  char* h_gamma = malloc((size_t)E * es);
  if (rep.status == 0 && (h_gamma == NULL || cudaMalloc((void**)&gamma, (size_t)E * es) != cudaSuccess)) {
    snprintf(why, sizeof why, "allocation failed");
    rep.status = MIXCOMM_ERR_CUDA;
  }
  if (rep.status == 0) {
    ref_fill_input(g->dtype, 77, 9999, h_gamma, (size_t)E, 0);
    upload(g, gamma, h_gamma, (size_t)E * es);
    cudaMemsetAsync(b->out2, 0xFF, b->out_cap, g->stream);
    mixcomm_epilogue_t e = MIXCOMM_EPILOGUE_INITIALIZER;
    e.rms_gamma = gamma;
    e.norm_out = b->out2;
    mixcomm_status_t st = mixcomm_run_v(g->h, op, b->in, NULL, rows, E, &e, mode, g->stream);
    if (st != MIXCOMM_SUCCESS) {
      snprintf(why, sizeof why, "run_v with epilogue: %s: %s", mixcomm_status_name(st),
               mixcomm_last_error());
      rep.status = st;
    } else if ((st = settle(g, why, sizeof why)) != MIXCOMM_SUCCESS) {
      rep.status = st;
    } else if (download(g, b->h_out2, b->out2, out_bytes) != cudaSuccess) {
      rep.status = MIXCOMM_ERR_CUDA;
    } else if (!uv_guard_intact(g, b->out2, out_bytes, why, sizeof why)) {
      rep.status = -1;
    } else {
      const double tol = ref_tolerance(g->dtype);
      int64_t wrong = 0;
      for (int64_t r = 0; r < out_rows && wrong < 1; r++) {
        double ms = 0.0;
        for (int64_t i = 0; i < E; i++) {
          const double s = ref_to_double(g->dtype, b->h_out, (size_t)(r * E + i));
          ms += s * s;
        }
        const double inv = 1.0 / sqrt(ms / (double)E + (double)1e-6f);
        for (int64_t i = 0; i < E && wrong < 1; i++) {
          const double s = ref_to_double(g->dtype, b->h_out, (size_t)(r * E + i));
          const double want_v = s * inv * ref_to_double(g->dtype, h_gamma, (size_t)i);
          const double got = ref_to_double(g->dtype, b->h_out2, (size_t)(r * E + i));
          if (!(fabs(got - want_v) <= 4.0 * tol * (fabs(want_v) + 1e-3))) {
            snprintf(why, sizeof why, "norm row %lld elem %lld: got %.7g want %.7g",
                     (long long)r, (long long)i, got, want_v);
            wrong++;
          }
        }
      }
      if (wrong)
        rep.status = -1;
      rep.hash = ref_hash(b->h_out2, out_bytes);
    }
  }
  cudaFree(gamma);
  free(h_gamma);
  uv_conclude(g, &rep, rep.hash, op, what, why);
}

/* Graph of the device form: captured once with max_rows, replayed with new counts and inputs. */
static void uv_graph(gpu_rank_t* g, uv_buffers_t* b, mixcomm_op_t op) {
  const mixcomm_topology_t* t = &g->topo;
  const int dp = t->dp_size, replays = g->opt->quick ? 3 : 6;
  const int64_t E = 1000, max_rows = 50;
  const size_t es = mixcomm_dtype_size(g->dtype);
  const int gather = is_gather(op);
  char what[200], why[1200] = "";
  snprintf(what, sizeof what, "uneven graph %s", mixcomm_op_name(op));
  /* The input buffer holds the largest input; each replay writes its own rows into it. */
  cudaGraph_t graph = NULL;
  cudaGraphExec_t exec = NULL;
  int ok = 1;
  if (cudaStreamBeginCapture(g->stream, cudaStreamCaptureModeGlobal) != cudaSuccess) {
    failf(g, "%s: cudaStreamBeginCapture failed", what);
    return;
  }
  mixcomm_status_t st = mixcomm_run_v_device(g->h, op, b->in, b->out, b->rows_dev, max_rows, E,
                                             NULL, MIXCOMM_MODE_DEFAULT, g->stream);
  const cudaError_t ce = cudaStreamEndCapture(g->stream, &graph);
  if (st != MIXCOMM_SUCCESS || ce != cudaSuccess ||
      cudaGraphInstantiate(&exec, graph, 0) != cudaSuccess) {
    failf(g, "%s: capture: %s", what, st != MIXCOMM_SUCCESS ? mixcomm_last_error() : "CUDA");
    if (graph)
      cudaGraphDestroy(graph);
    g->dead = 1;
    return;
  }
  for (int r = 0; r < replays && ok && !g->dead; r++) {
    int64_t rows[MIXCOMM_MAX_DP_SIZE];
    int32_t r32[MIXCOMM_MAX_DP_SIZE];
    for (int k = 0; k < dp; k++) {
      rows[k] = (r * 7 + k * 13) % (max_rows + 1);
      if ((r + k) % 4 == 0)
        rows[k] = 0;
      if (r == replays - 1)
        rows[k] = max_rows;
      r32[k] = (int32_t)rows[k];
    }
    const uint64_t seed = 900 + (uint64_t)r;
    const int64_t in_rows = uv_in_rows(t, op, rows, t->world_rank);
    const int64_t out_rows = gather ? uv_sum(rows, dp) : rows[t->dp_rank];
    ref_fill_input(g->dtype, seed, t->world_rank, b->h_in, (size_t)(in_rows * E),
                   REF_SPECIAL_NEG_ZERO);
    upload(g, b->in, b->h_in, (size_t)(in_rows * E) * es);
    upload(g, b->rows_dev, r32, sizeof(int32_t) * (size_t)dp);
    cudaMemsetAsync(b->out, 0xFF, b->out_cap, g->stream);
    if (cudaGraphLaunch(exec, g->stream) != cudaSuccess) {
      snprintf(why, sizeof why, "replay %d: launch failed", r);
      ok = 0;
      break;
    }
    if (settle(g, why, sizeof why) != MIXCOMM_SUCCESS) {
      g->dead = 1;
      ok = 0;
      break;
    }
    const size_t out_bytes = (size_t)(out_rows * E) * es;
    download(g, b->h_out, b->out, out_bytes);
    if (!uv_guard_intact(g, b->out, out_bytes, why, sizeof why)) {
      ok = 0;
      break;
    }
    uv_reference(g, b, op, rows, E, seed, REF_SPECIAL_NEG_ZERO);
    char report[400];
    const int64_t wrong = ref_check(g->dtype, b->h_out, b->ref, b->abs, b->nz,
                                    (size_t)(out_rows * E), report, sizeof report);
    if (wrong) {
      snprintf(why, sizeof why, "replay %d: %lld wrong: %s", r, (long long)wrong, report);
      ok = 0;
    }
  }
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  if (!ok)
    failf(g, "%s: %s", what, why);
  uv_report_t rep = {ok ? 0 : -1, t->dp_rank, 0};
  if (uv_agree(g, &rep, MIXCOMM_OP_REDUCESCATTER, what) == 0 && ok)
    g->passed++;
}

static int uv_alloc(gpu_rank_t* g, uv_buffers_t* b) {
  const int dp = g->topo.dp_size;
  const size_t es = mixcomm_dtype_size(g->dtype);
  /* Largest case: the skewed list (one UV_MAX_ROWS block plus up to 3 rows each) of E = 1000,
   * whose device form gives the buffers a capacity of max_rows = UV_MAX_ROWS rows per DP rank
   * (the scatter ops' input: dp of them), or the graph's dp * 50 rows of 1000; 7168-element
   * rows only with few rows. */
  const size_t rows_cap = (size_t)dp * ((size_t)UV_MAX_ROWS + 3u + 64u);
  b->in_cap = rows_cap * 1000u * es;
  b->out_cap = b->in_cap + UV_GUARD_BYTES;
  const size_t elems = b->out_cap / es;
  b->h_in = malloc(b->out_cap);
  b->h_peer = malloc(b->out_cap);
  b->h_out = malloc(b->out_cap);
  b->h_out2 = malloc(b->out_cap);
  b->ref = malloc(elems * sizeof(double));
  b->abs = malloc(elems * sizeof(double));
  b->nz = malloc(elems);
  if (!b->h_in || !b->h_peer || !b->h_out || !b->h_out2 || !b->ref || !b->abs || !b->nz ||
      cudaMalloc((void**)&b->in, b->in_cap) != cudaSuccess ||
      cudaMalloc((void**)&b->out, b->out_cap) != cudaSuccess ||
      cudaMalloc((void**)&b->out2, b->out_cap) != cudaSuccess ||
      cudaMalloc((void**)&b->rows_dev, sizeof(int32_t) * MIXCOMM_MAX_DP_SIZE) != cudaSuccess)
    return -1;
  return 0;
}

static void uv_free(uv_buffers_t* b) {
  cudaFree(b->in);
  cudaFree(b->out);
  cudaFree(b->out2);
  cudaFree(b->rows_dev);
  free(b->h_in);
  free(b->h_peer);
  free(b->h_out);
  free(b->h_out2);
  free(b->ref);
  free(b->abs);
  free(b->nz);
}

static int uv_mode_fused(mixcomm_mode_t m) {
  return m >= MIXCOMM_MODE_FUSED_OPT_WAITS_MC && m <= MIXCOMM_MODE_FUSED_OPT_BYTES2_UC;
}

/* Whether mode must take an uneven call on this topology: every mode of one node; across
 * nodes the NCCL modes and FUSED_OPT_WAITS_UC, not the two-shot fused modes. */
static int uv_mode_takes_uneven(const gpu_rank_t* g, mixcomm_mode_t m) {
  return g->topo.inter_size == 1 || !uv_mode_fused(m) || m == MIXCOMM_MODE_FUSED_OPT_WAITS_UC;
}

void test_uneven(gpu_rank_t* g) {
  mixcomm_op_t ops[MIXCOMM_NUM_OPS];
  const int nops = valid_ops(g, ops);
  uv_buffers_t b;
  memset(&b, 0, sizeof b);
  if (uv_alloc(g, &b) != 0) {
    failf(g, "uneven: allocation failed");
    uv_free(&b);
    return;
  }
  mixcomm_mode_t modes[MIXCOMM_NUM_MODES];
  int nmodes = 0;
  mixcomm_get_valid_mode_list(g->h, modes, MIXCOMM_NUM_MODES, &nmodes);
  /* The device form (graphs, bad counts) needs a fused mode that takes uneven rows. */
  int waits = 0, any_uneven = 0;
  for (int m = 0; m < nmodes; m++) {
    waits |= modes[m] == MIXCOMM_MODE_FUSED_OPT_WAITS_UC;
    any_uneven |= modes[m] != MIXCOMM_MODE_AUTOTUNE && uv_mode_takes_uneven(g, modes[m]);
  }
  const int device_form = g->topo.inter_size == 1 || waits;
  int last_op = -1;
  for (int i = 0; i < nops && !g->dead; i++) {
    const mixcomm_op_t op = ops[i];
    if (!is_gather(op) && op != MIXCOMM_OP_REDUCESCATTER &&
        op != MIXCOMM_OP_REDUCESCATTER_ALLREDUCE)
      continue;
    last_op = op;
    uv_errors(g, &b, op);
    for (int m = 0; m < nmodes && !g->dead; m++) {
      const mixcomm_mode_t mode = modes[m];
      if (mode == MIXCOMM_MODE_AUTOTUNE)
        continue;
      int64_t probe[MIXCOMM_MAX_DP_SIZE];
      for (int k = 0; k < g->topo.dp_size; k++) probe[k] = k == 0 ? 2 : 1;
      /* Modes that cannot take uneven rows here must say so up front. */
      mixcomm_status_t st = mixcomm_run_v(g->h, op, b.in, b.out, probe, 64, NULL, mode,
                                          g->stream);
      const int takes = uv_mode_takes_uneven(g, mode);
      if (st == MIXCOMM_ERR_UNSUPPORTED) {
        if (takes && uv_mode_fused(mode))
          failf(g, "uneven %s %s refused (%d node(s)): %s", mixcomm_op_name(op),
                mixcomm_mode_name(mode), g->topo.inter_size, mixcomm_last_error());
        else
          g->passed++;
        continue;
      }
      if (!takes) {
        failf(g, "uneven %s %s across nodes: got %s, want UNSUPPORTED", mixcomm_op_name(op),
              mixcomm_mode_name(mode), mixcomm_status_name(st));
        g->dead = 1; /* an enqueued call of a mode that should not take it: stop here */
        break;
      }
      char why[1200];
      if (st != MIXCOMM_SUCCESS || settle(g, why, sizeof why) != MIXCOMM_SUCCESS) {
        failf(g, "uneven probe %s %s: %s", mixcomm_op_name(op), mixcomm_mode_name(mode),
              st != MIXCOMM_SUCCESS ? mixcomm_last_error() : why);
        g->dead = 1;
        break;
      }
      const int fused = uv_mode_fused(mode);
      int64_t lists[8][MIXCOMM_MAX_DP_SIZE];
      const int nl = uv_lists(g->topo.dp_size, lists, 100 + (uint64_t)op * 10 + (uint64_t)m);
      for (int c = 0; c < nl && !g->dead; c++) {
        /* 7168-element rows only for the lists with few rows (the buffers' bound). */
        const int64_t E = c >= 4 ? UV_MAX_ELEMS : c == 1 ? 40 : 1000;
        uv_case(g, &b, op, mode, lists[c], E, 1000 + (uint64_t)c, fused);
      }
      if (!g->dead)
        uv_equal(g, &b, op, mode, 1000, fused);
      if (!g->dead && fused)
        uv_empty(g, &b, op, mode);
      if (!g->dead)
        uv_epilogue(g, &b, op, mode, lists[0], 1000);
    }
    /* DEFAULT must resolve to a mode that takes uneven rows. */
    if (!g->dead) {
      int64_t rows[MIXCOMM_MAX_DP_SIZE];
      for (int k = 0; k < g->topo.dp_size; k++) rows[k] = k % 3 == 1 ? 0 : 17 + k;
      mixcomm_status_t st = mixcomm_run_v(g->h, op, b.in, b.out, rows, 64, NULL,
                                          MIXCOMM_MODE_DEFAULT, g->stream);
      if (st == MIXCOMM_SUCCESS)
        uv_case(g, &b, op, MIXCOMM_MODE_DEFAULT, rows, 64, 3000, 0);
      else if (st != MIXCOMM_ERR_UNSUPPORTED || any_uneven)
        failf(g, "uneven DEFAULT %s: %s", mixcomm_op_name(op), mixcomm_last_error());
      else
        g->passed++;
    }
    if (!g->dead && device_form)
      uv_graph(g, &b, op);
  }
  if (last_op >= 0 && !g->dead && device_form && g->topo.world_size > 1) {
    if (g->dtype == MIXCOMM_BFLOAT16)
      uv_bad_count(g, &b, (mixcomm_op_t)last_op);
    else if (g->topo.inter_size > 1)
      uv_mismatch_nodes(g, &b, (mixcomm_op_t)last_op);
    else
      uv_mismatch(g, &b, (mixcomm_op_t)last_op);
  }
  uv_free(&b);
}
