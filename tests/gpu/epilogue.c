/* SPDX-License-Identifier: Apache-2.0
 * GPU tests of the fused epilogue (mixcomm_run_epilogue): for every valid op and fused mode
 * (and, with one rank, the stand-alone epilogue kernel), outputs alone and together, the residual
 * in place and out of place, rows 0, 1, odd and many, rows of 1 to 512 vectors, -0.0 and NaN
 * inputs, against a float64 reference computed here from every rank's inputs; TP ranks must agree
 * bit for bit and a repeated call must give the same bits; CUDA graph replay with new inputs; and
 * the argument errors seen through the public API. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "common/refdata.h"
#include "gpu/gpu_suite.h"

#define EPI_MAX_BLOCK_ELEMS (1u << 19) /* elements of one rank block, largest case */
#define EPI_SCALE 0.006f               /* FP8 scale: |norm| > 2.7 saturates */

typedef struct epi_case {
  mixcomm_op_t op;
  mixcomm_mode_t mode;
  int64_t rows, row_elems; /* output rows of one block (R) and row length */
  int x, residual, in_place, res_out, norm, quant;
  unsigned specials;
  uint64_t seed;
  float eps; /* 0 here means the default 1e-6 */
} epi_case_t;

static double case_eps(const epi_case_t* c) { return c->eps != 0.0f ? (double)c->eps : 1e-6; }

typedef struct epi_buffers {
  size_t bytes;                                          /* capacity of each big buffer */
  char *in, *x, *res_in, *res_out, *gamma, *norm, *quant; /* device */
  float* scale;
  char *h_in, *h_res, *h_gamma, *h_x, *h_res_out, *h_norm, *h_quant; /* host */
  double *s, *abs, *p, *p_abs, *norm_ref, *norm_tol;
  unsigned char *nz, *p_nz;
} epi_buffers_t;

/* ---- reference -------------------------------------------------------------------------- */

/* The residual of DP rank d: identical on the ranks of a TP group, as engines have it. Its
 * "rank" differs from every input's, but the positions where every input holds -0.0 are shared
 * (they depend on the seed only), so -0.0 + -0.0 is tested too. */
static void fill_residual(mixcomm_dtype_t dtype, uint64_t seed, int dp_rank, void* buf, size_t n) {
  ref_fill_input(dtype, seed, 5000 + dp_rank, buf, n, REF_SPECIAL_NEG_ZERO);
}

static double fp8_e4m3_to_double(uint8_t b) {
  const int sign = b >> 7, exp = (b >> 3) & 0xF, man = b & 7;
  if (exp == 15 && man == 7)
    return NAN;
  const double v = exp == 0 ? ldexp(man, -9) : ldexp(8 + man, exp - 10);
  return sign ? -v : v;
}

/* One step of e4m3 at the magnitude of x. */
static double fp8_e4m3_ulp(double x) {
  x = fabs(x);
  if (x < ldexp(1.0, -6))
    return ldexp(1.0, -9);
  int e;
  frexp(x, &e); /* x in [2^(e-1), 2^e) */
  return ldexp(1.0, e - 1 - 3);
}

/* P, RMSNorm(P) and tolerances for every output row, in float64 from the inputs. */
static void epi_reference(gpu_rank_t* g, const epi_case_t* c, epi_buffers_t* b, int64_t rows_in,
                          int64_t out_rows) {
  const mixcomm_topology_t* t = &g->topo;
  const size_t E = (size_t)c->row_elems, R = (size_t)c->rows;
  ref_compute(t, g->dtype, c->op, c->seed, rows_in, c->row_elems, c->specials, b->s, b->abs,
              b->nz);
  const int gather = is_gather(c->op);
  const int blocks = gather ? t->dp_size : 1;
  for (int k = 0; k < blocks; k++) {
    const size_t off = (size_t)k * R * E;
    if (c->residual)
      fill_residual(g->dtype, c->seed, gather ? k : t->dp_rank, b->h_res, R * E);
    for (size_t i = 0; i < R * E; i++) {
      const double r = c->residual ? ref_to_double(g->dtype, b->h_res, i) : 0.0;
      b->p[off + i] = b->s[off + i] + r;
      /* P's error budget, in units of the dtype's rounding, beyond the rounding of P itself:
       * added at the output, S's budget (|S| + the terms) plus the rounding of S + r; added at
       * the source (gather ops), round(input + r) is one more term whose magnitude is at most
       * |input| + |r|, and across nodes each local rank's partial (its own contribution plus
       * the same local rank's of the other nodes) is rounded before the local sum, the
       * partials adding up to at most the terms and |r| again: 2 (terms + |r|). */
      b->p_abs[off + i] = 2.0 * (b->abs[off + i] + fabs(r)) + fabs(b->s[off + i]);
      b->p_nz[off + i] = b->nz[off + i] && (!c->residual || (r == 0.0 && signbit(r)));
    }
  }
  ref_fill_input(g->dtype, c->seed + 7, 9999, b->h_gamma, E, 0);
  const double tol = ref_tolerance(g->dtype);
  for (size_t row = 0; row < (size_t)out_rows; row++) {
    const double* p = b->p + row * E;
    const double* pa = b->p_abs + row * E;
    double ms = 0.0, cross = 0.0;
    for (size_t i = 0; i < E; i++) {
      ms += p[i] * p[i];
      cross += fabs(p[i]) * pa[i];
    }
    ms /= (double)E;
    cross /= (double)E;
    const double eps = (double)(float)case_eps(c);
    const double inv = 1.0 / sqrt(ms + eps);
    /* The GPU's P is off by ~2 roundings per element; the rms follows from those. */
    const double rel_inv = 2.0 * tol * cross / (ms + eps);
    for (size_t i = 0; i < E; i++) {
      const double gm = ref_to_double(g->dtype, b->h_gamma, i);
      const double v = p[i] * inv * gm;
      b->norm_ref[row * E + i] = v;
      b->norm_tol[row * E + i] =
          3.0 * (tol * fabs(gm) * inv * pa[i] + fabs(v) * (tol + rel_inv)) + ldexp(1.0, -24);
    }
  }
}

static int64_t check_norm(gpu_rank_t* g, const epi_buffers_t* b, size_t n, char* report,
                          size_t size) {
  int64_t wrong = 0;
  size_t used = 0;
  report[0] = '\0';
  for (size_t i = 0; i < n; i++) {
    const double r = b->norm_ref[i], got = ref_to_double(g->dtype, b->h_norm, i);
    const int ok = isnan(r) ? isnan(got) : !isnan(got) && fabs(got - r) <= b->norm_tol[i];
    if (!ok && wrong++ < 3 && used + 1 < size)
      used += (size_t)snprintf(report + used, size - used, "norm[%zu] got %.7g want %.7g; ", i, got, r);
  }
  return wrong;
}

static int64_t check_quant(const epi_buffers_t* b, size_t n, char* report, size_t size) {
  int64_t wrong = 0;
  size_t used = strlen(report);
  for (size_t i = 0; i < n; i++) {
    const double r = b->norm_ref[i] / (double)EPI_SCALE;
    const double want = isnan(r) ? r : fmax(-448.0, fmin(448.0, r));
    const double got = fp8_e4m3_to_double((uint8_t)b->h_quant[i]);
    const double tol = fp8_e4m3_ulp(want) + b->norm_tol[i] / (double)EPI_SCALE;
    const int ok = isnan(want) ? isnan(got) : !isnan(got) && fabs(got - want) <= tol;
    if (!ok && wrong++ < 3 && used + 1 < size)
      used += (size_t)snprintf(report + used, size - used, "quant[%zu] got %.5g want %.5g; ", i,
                               got, want);
  }
  return wrong;
}

/* ---- one case ----------------------------------------------------------------------------- */

typedef struct epi_report {
  int32_t status, dp_rank;
  uint64_t shared[2]; /* x_out, norm_out, quant_out: identical where the op's output is */
  uint64_t own[2];    /* residual_out: identical inside a TP group (same dp rank) */
} epi_report_t;

static int epi_agree(gpu_rank_t* g, const epi_report_t* mine, mixcomm_op_t op, const char* what) {
  const int W = g->topo.world_size;
  epi_report_t* all = exchange_reports(g, mine, sizeof *mine, "epilogue report", what);
  if (all == NULL)
    return 1;
  int bad = 0;
  if (mine->status == 0 && (mine->shared[0] != mine->shared[1] || mine->own[0] != mine->own[1])) {
    failf(g, "%s: a repeated call gave different bits", what);
    bad = 1;
  }
  for (int w = 0; w < W && mine->status == 0 && !bad; w++) {
    if (all[w].status != 0)
      continue;
    const int same_dp = all[w].dp_rank == mine->dp_rank;
    const int shares = is_scatter(op) ? same_dp : 1;
    if ((shares && all[w].shared[0] != mine->shared[0]) ||
        (same_dp && all[w].own[0] != mine->own[0])) {
      failf(g, "%s: outputs differ bitwise from rank %d's (which must be identical)", what, w);
      bad = 1;
    }
  }
  free(all);
  return bad;
}

static void describe(const epi_case_t* c, gpu_rank_t* g, char* what, size_t size) {
  snprintf(what, size,
           "epilogue %s %s %s R=%lld E=%lld x=%d residual=%d%s res_out=%d norm=%d quant=%d "
           "eps=%g specials=%u",
           mixcomm_op_name(c->op), mixcomm_mode_name(c->mode), mixcomm_dtype_name(g->dtype),
           (long long)c->rows, (long long)c->row_elems, c->x, c->residual,
           c->in_place ? " (in place)" : "", c->res_out, c->norm, c->quant, case_eps(c),
           c->specials);
}

static mixcomm_epilogue_t epi_args(const epi_case_t* c, const epi_buffers_t* b) {
  mixcomm_epilogue_t e;
  mixcomm_epilogue_init(&e);
  e.residual_in = c->residual ? b->res_in : NULL;
  e.residual_out = c->res_out ? (c->in_place ? b->res_in : b->res_out) : NULL;
  e.rms_gamma = c->norm || c->quant ? b->gamma : NULL;
  e.norm_out = c->norm ? b->norm : NULL;
  e.quant_out = c->quant ? b->quant : NULL;
  e.quant_scale = c->quant ? b->scale : NULL;
  e.rms_eps = (float)case_eps(c);
  return e;
}

/* Upload the case's input, residual and weights; poison every output. */
static cudaError_t epi_prepare(gpu_rank_t* g, const epi_case_t* c, epi_buffers_t* b,
                               size_t n_in, size_t n_res, size_t n_out) {
  const size_t es = mixcomm_dtype_size(g->dtype), E = (size_t)c->row_elems;
  ref_fill_input(g->dtype, c->seed, g->topo.world_rank, b->h_in, n_in, c->specials);
  fill_residual(g->dtype, c->seed, g->topo.dp_rank, b->h_res, n_res);
  ref_fill_input(g->dtype, c->seed + 7, 9999, b->h_gamma, E, 0);
  cudaError_t e = upload(g, b->in, b->h_in, n_in * es);
  if (e == cudaSuccess)
    e = upload(g, b->res_in, b->h_res, n_res * es);
  if (e == cudaSuccess)
    e = upload(g, b->gamma, b->h_gamma, E * es);
  char* outs[] = {b->x, b->res_out, b->norm, b->quant};
  const size_t sizes[] = {n_out * es, n_res * es, n_out * es, n_out};
  for (int i = 0; i < 4 && e == cudaSuccess; i++)
    e = cudaMemsetAsync(outs[i], 0xFF, sizes[i], g->stream);
  return e == cudaSuccess ? cudaStreamSynchronize(g->stream) : e;
}

/* Download the outputs the case asked for and hash them into the report's slot `pass`. */
static cudaError_t epi_collect(gpu_rank_t* g, const epi_case_t* c, epi_buffers_t* b, size_t n_res,
                               size_t n_out, epi_report_t* rep, int pass) {
  const size_t es = mixcomm_dtype_size(g->dtype);
  cudaError_t e = cudaSuccess;
  uint64_t h = 0x1234;
  if (c->x && e == cudaSuccess && (e = download(g, b->h_x, b->x, n_out * es)) == cudaSuccess)
    h ^= ref_hash(b->h_x, n_out * es);
  if (c->norm && e == cudaSuccess && (e = download(g, b->h_norm, b->norm, n_out * es)) == cudaSuccess)
    h ^= ref_hash(b->h_norm, n_out * es) * 3;
  if (c->quant && e == cudaSuccess && (e = download(g, b->h_quant, b->quant, n_out)) == cudaSuccess)
    h ^= ref_hash(b->h_quant, n_out) * 5;
  rep->shared[pass] = h;
  rep->own[pass] = 0x4321;
  if (c->res_out && e == cudaSuccess &&
      (e = download(g, b->h_res_out, c->in_place ? b->res_in : b->res_out, n_res * es)) ==
          cudaSuccess)
    rep->own[pass] = ref_hash(b->h_res_out, n_res * es);
  return e;
}

/* Compare what was collected with the reference; returns the number of wrong elements. */
static int64_t epi_check(gpu_rank_t* g, const epi_case_t* c, epi_buffers_t* b, size_t n_res,
                         size_t n_out, char* report, size_t size) {
  const int gather = is_gather(c->op);
  int64_t wrong = 0;
  report[0] = '\0';
  char part[400];
  if (c->x) {
    const int64_t w = ref_check(g->dtype, b->h_x, b->s, b->abs, b->nz, n_out, part, sizeof part);
    if (w)
      snprintf(report, size, "x_out: %s", part);
    wrong += w;
  }
  if (c->res_out) {
    const size_t own = gather ? (size_t)g->topo.dp_rank * n_res : 0;
    const int64_t w = ref_check(g->dtype, b->h_res_out, b->p + own, b->p_abs + own, b->p_nz + own,
                                n_res, part, sizeof part);
    if (w)
      snprintf(report + strlen(report), size - strlen(report), "residual_out: %s", part);
    wrong += w;
  }
  if (c->norm || c->quant) {
    size_t used = strlen(report);
    char* tail = report + used;
    tail[0] = '\0';
    if (c->norm)
      wrong += check_norm(g, b, n_out, tail, size - used);
    if (c->quant)
      wrong += check_quant(b, n_out, tail, size - used);
  }
  return wrong;
}

static void epi_case(gpu_rank_t* g, epi_buffers_t* b, const epi_case_t* c) {
  const mixcomm_topology_t* t = &g->topo;
  const size_t E = (size_t)c->row_elems;
  const int64_t rows_in = is_scatter(c->op) ? c->rows * t->dp_size : c->rows;
  const int64_t out_rows = is_gather(c->op) ? c->rows * t->dp_size : c->rows;
  const size_t n_in = (size_t)rows_in * E, n_out = (size_t)out_rows * E;
  const size_t n_res = (size_t)c->rows * E;
  const size_t es = mixcomm_dtype_size(g->dtype);
  char what[320], why[1600] = "";
  describe(c, g, what, sizeof what);
  epi_report_t rep = {0, t->dp_rank, {0, 0}, {0, 0}};
  if (n_in * es > b->bytes || n_out * es > b->bytes) {
    failf(g, "%s: test buffers too small", what);
    rep.status = -1;
    epi_agree(g, &rep, c->op, what);
    return;
  }
  const mixcomm_epilogue_t e = epi_args(c, b);
  cudaError_t ce = cudaSuccess;
  for (int pass = 0; pass < 2 && rep.status == 0; pass++) {
    ce = epi_prepare(g, c, b, n_in, n_res, n_out);
    if (ce != cudaSuccess)
      break;
    mixcomm_status_t st = mixcomm_run_epilogue(g->h, c->op, b->in, c->x ? b->x : NULL, rows_in,
                                               c->row_elems, &e, c->mode, g->stream);
    if (st != MIXCOMM_SUCCESS) {
      snprintf(why, sizeof why, "mixcomm_run_epilogue: %s: %s", mixcomm_status_name(st),
               mixcomm_last_error());
      rep.status = st;
      break;
    }
    if ((st = settle(g, why, sizeof why)) != MIXCOMM_SUCCESS) {
      rep.status = st;
      break;
    }
    if ((ce = epi_collect(g, c, b, n_res, n_out, &rep, pass)) != cudaSuccess)
      break;
  }
  if (ce != cudaSuccess && rep.status == 0) {
    snprintf(why, sizeof why, "CUDA: %s", cudaGetErrorString(ce));
    rep.status = MIXCOMM_ERR_CUDA;
  }
  if (rep.status == 0 && c->rows > 0) {
    epi_reference(g, c, b, rows_in, out_rows);
    char report[1200];
    const int64_t wrong = epi_check(g, c, b, n_res, n_out, report, sizeof report);
    if (wrong) {
      snprintf(why, sizeof why, "%lld elements wrong: %s", (long long)wrong, report);
      rep.status = -1;
    }
  }
  if (rep.status != 0)
    failf(g, "%s: %s", what, why);
  if (epi_agree(g, &rep, c->op, what) == 0 && rep.status == 0)
    g->passed++;
}

/* ---- CUDA graph: one capture, replays with new inputs ------------------------------------ */

static void epi_graph(gpu_rank_t* g, epi_buffers_t* b, epi_case_t c) {
  const mixcomm_topology_t* t = &g->topo;
  const size_t E = (size_t)c.row_elems;
  const int64_t rows_in = is_scatter(c.op) ? c.rows * t->dp_size : c.rows;
  const int64_t out_rows = is_gather(c.op) ? c.rows * t->dp_size : c.rows;
  const size_t n_in = (size_t)rows_in * E, n_out = (size_t)out_rows * E, n_res = (size_t)c.rows * E;
  char what[320], why[1600] = "";
  describe(&c, g, what, sizeof what);
  strncat(what, " (graph replay)", sizeof what - strlen(what) - 1);
  const mixcomm_epilogue_t e = epi_args(&c, b);
  cudaGraph_t graph = NULL;
  cudaGraphExec_t exec = NULL;
  epi_report_t rep = {0, t->dp_rank, {0, 0}, {0, 0}};
  cudaError_t ce = cudaStreamBeginCapture(g->stream, cudaStreamCaptureModeThreadLocal);
  if (ce == cudaSuccess) {
    mixcomm_status_t st = mixcomm_run_epilogue(g->h, c.op, b->in, c.x ? b->x : NULL, rows_in,
                                               c.row_elems, &e, c.mode, g->stream);
    ce = cudaStreamEndCapture(g->stream, &graph);
    if (st != MIXCOMM_SUCCESS) {
      snprintf(why, sizeof why, "capture: %s", mixcomm_last_error());
      rep.status = st;
    }
  }
  if (ce == cudaSuccess && rep.status == 0)
    ce = cudaGraphInstantiate(&exec, graph, 0);
  for (int replay = 0; replay < 3 && ce == cudaSuccess && rep.status == 0; replay++) {
    c.seed += 17; /* new data in the same buffers */
    ce = epi_prepare(g, &c, b, n_in, n_res, n_out);
    if (ce == cudaSuccess)
      ce = cudaGraphLaunch(exec, g->stream);
    if (ce != cudaSuccess)
      break;
    mixcomm_status_t st = settle(g, why, sizeof why);
    if (st != MIXCOMM_SUCCESS) {
      rep.status = st;
      break;
    }
    if ((ce = epi_collect(g, &c, b, n_res, n_out, &rep, 0)) != cudaSuccess)
      break;
    rep.shared[1] = rep.shared[0];
    rep.own[1] = rep.own[0];
    epi_reference(g, &c, b, rows_in, out_rows);
    char report[1200];
    const int64_t wrong = epi_check(g, &c, b, n_res, n_out, report, sizeof report);
    if (wrong) {
      snprintf(why, sizeof why, "replay %d: %lld elements wrong: %s", replay, (long long)wrong,
               report);
      rep.status = -1;
    }
  }
  if (ce != cudaSuccess && rep.status == 0) {
    snprintf(why, sizeof why, "CUDA: %s", cudaGetErrorString(ce));
    rep.status = MIXCOMM_ERR_CUDA;
  }
  if (exec != NULL)
    cudaGraphExecDestroy(exec);
  if (graph != NULL)
    cudaGraphDestroy(graph);
  if (rep.status != 0)
    failf(g, "%s: %s", what, why);
  if (epi_agree(g, &rep, c.op, what) == 0 && rep.status == 0)
    g->passed++;
}

/* ---- errors through the public API (local: no collective is entered) --------------------- */

static void epi_errors(gpu_rank_t* g, epi_buffers_t* b, mixcomm_op_t op) {
  const int64_t E = 64, rows = is_scatter(op) ? g->topo.dp_size : 1;
  mixcomm_epilogue_t e;
  struct {
    const char* needle;
    mixcomm_status_t status;
  } expect[4] = {{"rms_gamma is NULL", MIXCOMM_ERR_INVALID_ARGUMENT},
                 {"not device memory", MIXCOMM_ERR_INVALID_ARGUMENT},
                 {"no output uses it", MIXCOMM_ERR_INVALID_ARGUMENT},
                 {"overlaps", MIXCOMM_ERR_INVALID_ARGUMENT}};
  char host[4096] __attribute__((aligned(16)));
  for (int k = 0; k < 4; k++) {
    mixcomm_epilogue_init(&e);
    void* x_out = NULL;
    if (k == 0) {
      e.norm_out = b->norm;
    } else if (k == 1) {
      e.rms_gamma = b->gamma;
      e.norm_out = host;
    } else if (k == 2) {
      e.residual_in = b->res_in; /* a residual but no output, not even x_out */
    } else {
      e.residual_in = b->res_in;
      e.residual_out = b->res_out;
      e.rms_gamma = b->gamma;
      e.norm_out = b->res_in;
    }
    mixcomm_status_t st = mixcomm_run_epilogue(g->h, op, b->in, x_out, rows, E, &e,
                                               MIXCOMM_MODE_DEFAULT, g->stream);
    if (st != expect[k].status || strstr(mixcomm_last_error(), expect[k].needle) == NULL)
      failf(g, "epilogue error case %d: got %s \"%s\", expected \"%s\"", k,
            mixcomm_status_name(st), mixcomm_last_error(), expect[k].needle);
    else
      g->passed++;
  }
  /* Zero rows: accepted with NULL pointers, nothing written. */
  mixcomm_epilogue_init(&e);
  e.residual_out = b->res_out;
  char why[512];
  if (cudaMemsetAsync(b->res_out, 0xA5, 256, g->stream) != cudaSuccess ||
      mixcomm_run_epilogue(g->h, op, NULL, NULL, 0, E, &e, MIXCOMM_MODE_DEFAULT, g->stream) !=
          MIXCOMM_SUCCESS ||
      settle(g, why, sizeof why) != MIXCOMM_SUCCESS ||
      download(g, host, b->res_out, 256) != cudaSuccess) {
    failf(g, "epilogue with zero rows: %s", mixcomm_last_error());
    return;
  }
  for (int i = 0; i < 256; i++) {
    if ((unsigned char)host[i] != 0xA5) {
      failf(g, "epilogue with zero rows wrote to residual_out");
      return;
    }
  }
  g->passed++;
}

/* ---- the test ------------------------------------------------------------------------------ */

static int epi_alloc(gpu_rank_t* g, epi_buffers_t* b) {
  memset(b, 0, sizeof *b);
  const int dp = g->topo.dp_size;
  b->bytes = (size_t)EPI_MAX_BLOCK_ELEMS * 4 * (size_t)dp;
  char** dev[] = {&b->in, &b->x, &b->res_in, &b->res_out, &b->gamma, &b->norm, &b->quant};
  for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++)
    if (cudaMalloc((void**)dev[i], b->bytes) != cudaSuccess)
      return -1;
  if (cudaMalloc((void**)&b->scale, 16) != cudaSuccess)
    return -1;
  const float scale = EPI_SCALE;
  if (upload(g, b->scale, &scale, sizeof scale) != cudaSuccess)
    return -1;
  char** host[] = {&b->h_in, &b->h_res, &b->h_gamma, &b->h_x, &b->h_res_out, &b->h_norm, &b->h_quant};
  for (size_t i = 0; i < sizeof host / sizeof host[0]; i++)
    if ((*host[i] = malloc(b->bytes)) == NULL)
      return -1;
  const size_t elems = b->bytes / 2;
  double** dbl[] = {&b->s, &b->abs, &b->p, &b->p_abs, &b->norm_ref, &b->norm_tol};
  for (size_t i = 0; i < sizeof dbl / sizeof dbl[0]; i++)
    if ((*dbl[i] = malloc(elems * sizeof(double))) == NULL)
      return -1;
  b->nz = malloc(elems);
  b->p_nz = malloc(elems);
  return b->nz && b->p_nz ? 0 : -1;
}

static void epi_free(epi_buffers_t* b) {
  char* dev[] = {b->in, b->x, b->res_in, b->res_out, b->gamma, b->norm, b->quant};
  for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++)
    cudaFree(dev[i]);
  cudaFree(b->scale);
  void* host[] = {b->h_in, b->h_res, b->h_gamma, b->h_x, b->h_res_out, b->h_norm, b->h_quant,
                  b->s, b->abs, b->p, b->p_abs, b->norm_ref, b->norm_tol, b->nz, b->p_nz};
  for (size_t i = 0; i < sizeof host / sizeof host[0]; i++)
    free(host[i]);
}

/* Which outputs a case asks for, cycled through the cases. */
static const int kVariants[][6] = {
    /* x, residual, in_place, res_out, norm, quant */
    {1, 1, 1, 1, 1, 1}, /* everything, residual in place */
    {0, 1, 1, 1, 1, 0}, /* the engine call: residual in place + RMSNorm */
    {0, 1, 0, 1, 0, 0}, /* residual_out alone, out of place */
    {0, 1, 0, 0, 1, 0}, /* norm_out alone */
    {0, 1, 0, 0, 0, 1}, /* quant_out alone (a temporary holds P) */
    {0, 0, 0, 0, 1, 1}, /* no residual: RMSNorm of S, norm and FP8 */
    {1, 1, 0, 1, 0, 1}, /* x_out + residual_out out of place + FP8 */
    {1, 0, 0, 1, 0, 0}, /* x_out + residual_out = S */
};
#define NUM_VARIANTS ((int)(sizeof kVariants / sizeof kVariants[0]))

void test_epilogue(gpu_rank_t* g) {
  epi_buffers_t b;
  if (epi_alloc(g, &b) != 0) {
    failf(g, "epilogue: allocating test buffers failed");
    epi_free(&b);
    return;
  }
  mixcomm_op_t ops[MIXCOMM_NUM_OPS];
  mixcomm_mode_t modes[MIXCOMM_NUM_MODES];
  const int nops = valid_ops(g, ops);
  int nmodes = valid_fused_modes(g, modes);
  /* The NCCL modes where they can run (one GPU per rank): exchange, then the epilogue kernel. */
  for (int m = MIXCOMM_MODE_NCCL_ONE; m <= MIXCOMM_MODE_NCCL_TP_DP; m++)
    if (mixcomm_mode_invalid_reason(g->h, (mixcomm_mode_t)m) == NULL)
      modes[nmodes++] = (mixcomm_mode_t)m;
  if (g->topo.world_size == 1) { /* the stand-alone epilogue kernel */
    modes[0] = MIXCOMM_MODE_DEFAULT;
    nmodes = 1;
  }
  /* Rows (output rows of a block) and row lengths in 16-byte vectors. */
  static const int64_t rows_full[] = {1, 3, 7, 64, 200};
  static const int64_t vecs_full[] = {1, 3, 125, 512, 1024};
  const int quick = g->opt->quick;
  const int nr = quick ? 3 : 5, nv = quick ? 3 : 5;
  const int64_t es = (int64_t)mixcomm_dtype_size(g->dtype);
  int index = 0;
  for (int oi = 0; oi < nops && !g->dead; oi++) {
    for (int mi = 0; mi < nmodes && !g->dead; mi++) {
      for (int ri = 0; ri < nr && !g->dead; ri++) {
        for (int vi = 0; vi < nv && !g->dead; vi++) {
          const int64_t E = vecs_full[vi] * 16 / es;
          if (rows_full[ri] * E > (int64_t)EPI_MAX_BLOCK_ELEMS)
            continue;
          const int* v = kVariants[index % NUM_VARIANTS];
          /* A large eps every other case: an epilogue that ignored it would be off by ~1.5x. */
          epi_case_t c = {ops[oi], modes[mi], rows_full[ri], E, v[0], v[1], v[2], v[3], v[4], v[5],
                          REF_SPECIAL_NEG_ZERO | (index % 3 == 2 ? REF_SPECIAL_POISON : 0),
                          40000 + (uint64_t)index, index % 2 ? 0.25f : 0.0f};
          epi_case(g, &b, &c);
          index++;
        }
      }
      /* Every variant once at a decode shape, and one graph per op and mode. */
      for (int k = 0; k < NUM_VARIANTS && !g->dead && !quick; k++) {
        const int* v = kVariants[k];
        epi_case_t c = {ops[oi], modes[mi], 5, 4096, v[0], v[1], v[2], v[3], v[4], v[5],
                        REF_SPECIAL_NEG_ZERO, 50000 + (uint64_t)index++, 0.0f};
        epi_case(g, &b, &c);
      }
      if (!g->dead) {
        const int* v = kVariants[(oi + mi) % 2 ? 4 : 0];
        epi_case_t c = {ops[oi], modes[mi], 6, 1024, v[0], v[1], v[2], v[3], v[4], v[5],
                        REF_SPECIAL_NEG_ZERO, 60000 + (uint64_t)index++, 1e-5f};
        epi_graph(g, &b, c);
      }
    }
    if (!g->dead)
      epi_errors(g, &b, ops[oi]);
  }
  epi_free(&b);
}
