/* SPDX-License-Identifier: Apache-2.0
 * One rank of the GPU test suite (see gpu_tests.c). Every rank makes the same sequence of
 * collective calls; after each checked case the ranks exchange {status, output hashes} through
 * the bootstrap, so TP-rank consistency is checked and a failure on one rank makes every rank
 * abandon the handler together instead of waiting for a peer that left. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cuda_runtime_api.h>

#include "bootstrap/bootstrap.h"
#include "common/refdata.h"
#include "gpu/gpu_suite.h"
#include "handler/handler.h" /* the debug put count (handler/put_count.c) */

#define MAX_BLOCK_ELEMS (1u << 20) /* elements of one rank block, largest case */
#define SLACK 256

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void failf(gpu_rank_t* g, const char* fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "  rank %d FAIL [%s]: %s\n", g->spawn.rank, mixcomm_dtype_name(g->dtype), msg);
  fflush(stderr);
  g->failed++;
}

int want(const gpu_rank_t* g, const char* test) {
  return g->opt->only[0] == '\0' || strcmp(g->opt->only, test) == 0;
}

static int is_gather(mixcomm_op_t op) {
  return op == MIXCOMM_OP_ALLGATHER || op == MIXCOMM_OP_ALLREDUCE_ALLGATHER;
}
static int is_scatter(mixcomm_op_t op) {
  return op == MIXCOMM_OP_REDUCESCATTER || op == MIXCOMM_OP_REDUCESCATTER_ALLREDUCE;
}

#define CUDA_OR_FAIL(call)                                                            \
  do {                                                                                \
    cudaError_t e_ = (call);                                                          \
    if (e_ != cudaSuccess) {                                                          \
      failf(g, "%s: %s", #call, cudaGetErrorString(e_));                              \
      return -1;                                                                      \
    }                                                                                 \
  } while (0)

/* Copies and fills go through the test's own stream: a plain cudaMemcpy from pageable memory
 * may return before its DMA lands, and the legacy default stream does not order work on a
 * non-blocking stream, so a kernel could read half-uploaded input. */
cudaError_t upload(gpu_rank_t* g, void* dst, const void* src, size_t bytes) {
  cudaError_t e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, g->stream);
  return e != cudaSuccess ? e : cudaStreamSynchronize(g->stream);
}

cudaError_t download(gpu_rank_t* g, void* dst, const void* src, size_t bytes) {
  cudaError_t e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, g->stream);
  return e != cudaSuccess ? e : cudaStreamSynchronize(g->stream);
}

static void sleep_ms(int ms) {
  struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&t, &t) != 0 && errno == EINTR) {
  }
}

static cudaError_t fill(gpu_rank_t* g, void* dst, int value, size_t bytes) {
  cudaError_t e = cudaMemsetAsync(dst, value, bytes, g->stream);
  return e != cudaSuccess ? e : cudaStreamSynchronize(g->stream);
}

/* Status of everything enqueued so far: CUDA errors and the handler's asynchronous error. */
mixcomm_status_t settle(gpu_rank_t* g, char* why, size_t size) {
  cudaError_t e = cudaStreamSynchronize(g->stream);
  if (e != cudaSuccess) {
    snprintf(why, size, "cudaStreamSynchronize: %s", cudaGetErrorString(e));
    return MIXCOMM_ERR_CUDA;
  }
  int peer = -1;
  mixcomm_status_t st = mixcomm_handler_async_error(g->h, &peer);
  if (st != MIXCOMM_SUCCESS) {
    /* The next call turns the record into a full message. */
    mixcomm_status_t st2 = mixcomm_run(g->h, MIXCOMM_OP_ALLREDUCE, NULL, NULL, 0, 8,
                                       MIXCOMM_MODE_DEFAULT, g->stream);
    snprintf(why, size, "asynchronous %s (peer %d): %s", mixcomm_status_name(st), peer,
             st2 != MIXCOMM_SUCCESS ? mixcomm_last_error() : "");
  }
  return st;
}

typedef struct case_report {
  int32_t status; /* 0 ok, else a mixcomm status or -1 for a wrong result */
  int32_t dp_rank;
  uint64_t hash1, hash2;
} case_report_t;

/* Exchange reports; check repeatability and TP-group bitwise consistency; decide together
 * whether the handler is still usable. Returns 0 if every check passed on this rank. */
static int agree(gpu_rank_t* g, const case_report_t* mine, mixcomm_op_t op, const char* what) {
  const int W = g->topo.world_size;
  case_report_t* all = calloc((size_t)W, sizeof *all);
  int bad = 0;
  if (mixcomm__bs_allgather(g->bs, mine, all, sizeof *mine, "test report") != MIXCOMM_SUCCESS) {
    failf(g, "%s: exchanging reports: %s", what, mixcomm_last_error());
    free(all);
    g->dead = 1;
    return -1;
  }
  for (int w = 0; w < W; w++) {
    if (all[w].status > 0)
      g->dead = 1; /* a rank's handler failed: everyone moves on */
  }
  if (mine->status == 0 && mine->hash1 != mine->hash2) {
    failf(g, "%s: a repeated run gave different bits", what);
    bad = 1;
  }
  for (int w = 0; w < W && mine->status == 0; w++) {
    if (all[w].status != 0)
      continue;
    /* Ranks that must hold identical outputs: all of them, except RS-type ops where only the
     * ranks of one DP group (the TP group) share an output block. */
    const int same = is_scatter(op) ? all[w].dp_rank == mine->dp_rank : 1;
    if (same && all[w].hash1 != mine->hash1) {
      failf(g, "%s: output differs bitwise from rank %d's (which must be identical)", what, w);
      bad = 1;
      break;
    }
  }
  free(all);
  return bad;
}

/* One checked call: op/mode on rows_unit rows (input rows are dp*rows_unit for RS types). */
static void run_case(gpu_rank_t* g, mixcomm_op_t op, mixcomm_mode_t mode, int64_t rows_unit,
                     int64_t row_elems, uint64_t seed, unsigned specials, size_t in_off,
                     size_t out_off) {
  const mixcomm_topology_t* t = &g->topo;
  const size_t es = mixcomm_dtype_size(g->dtype);
  const int64_t rows_in = is_scatter(op) ? rows_unit * t->dp_size : rows_unit;
  const int64_t rows_out = is_gather(op) ? rows_unit * t->dp_size : rows_unit;
  const size_t n_in = (size_t)rows_in * (size_t)row_elems;
  const size_t n_out = (size_t)rows_out * (size_t)row_elems;
  char what[256];
  snprintf(what, sizeof what, "%s %s rows=%lld row_elems=%lld specials=%u offsets=%zu/%zu",
           mixcomm_op_name(op), mixcomm_mode_name(mode), (long long)rows_in,
           (long long)row_elems, specials, in_off, out_off);
  case_report_t rep = {0, t->dp_rank, 0, 1};
  char why[1200] = "";
  if (n_in * es + in_off > g->cap_bytes + SLACK || n_out * es + out_off > g->cap_bytes + SLACK) {
    failf(g, "%s: test buffers too small", what);
    rep.status = -1;
    agree(g, &rep, op, what);
    return;
  }
  ref_fill_input(g->dtype, seed, t->world_rank, g->h_in, n_in, specials);
  cudaError_t e = upload(g, g->d_in + in_off, g->h_in, n_in * es);
  for (int pass = 0; pass < 2 && rep.status == 0 && e == cudaSuccess; pass++) {
    /* Poison the output (all-ones: NaN) so an element never written is caught. */
    e = cudaMemsetAsync(g->d_out, 0xFF, n_out * es + out_off, g->stream);
    if (e != cudaSuccess)
      break;
    if (g->late_node_ms > 0 && t->inter_rank == 0)
      sleep_ms(g->late_node_ms);
    mixcomm_status_t st = mixcomm_run(g->h, op, g->d_in + in_off, g->d_out + out_off, rows_in,
                                      row_elems, mode, g->stream);
    if (st != MIXCOMM_SUCCESS) {
      snprintf(why, sizeof why, "mixcomm_run: %s: %s", mixcomm_status_name(st),
               mixcomm_last_error());
      rep.status = st;
      break;
    }
    st = settle(g, why, sizeof why);
    if (st != MIXCOMM_SUCCESS) {
      rep.status = st;
      break;
    }
    char* host = pass == 0 ? g->h_out : g->h_out2;
    e = download(g, host, g->d_out + out_off, n_out * es);
    if (e != cudaSuccess)
      break;
    if (pass == 0)
      rep.hash1 = ref_hash(host, n_out * es);
    else
      rep.hash2 = ref_hash(host, n_out * es);
  }
  if (e != cudaSuccess && rep.status == 0) {
    snprintf(why, sizeof why, "CUDA: %s", cudaGetErrorString(e));
    rep.status = MIXCOMM_ERR_CUDA;
  }
  if (rep.status == 0) {
    ref_compute(t, g->dtype, op, seed, rows_in, row_elems, specials, g->ref, g->abs_sum,
                g->neg_zero);
    char report[512];
    const int64_t wrong = ref_check(g->dtype, g->h_out, g->ref, g->abs_sum, g->neg_zero, n_out,
                                    report, sizeof report);
    if (wrong) {
      snprintf(why, sizeof why, "%lld of %zu elements wrong: %s", (long long)wrong, n_out,
               report);
      rep.status = -1;
    }
  }
  if (rep.status != 0)
    failf(g, "%s: %s", what, why);
  const int bad = agree(g, &rep, op, what);
  if (rep.status == 0 && !bad)
    g->passed++;
}

int valid_fused_modes(const gpu_rank_t* g, mixcomm_mode_t* modes) {
  int n = 0;
  for (int m = MIXCOMM_MODE_FUSED_OPT_WAITS_MC; m <= MIXCOMM_MODE_FUSED_OPT_BYTES2_UC; m++)
    if (mixcomm_mode_invalid_reason(g->h, (mixcomm_mode_t)m) == NULL)
      modes[n++] = (mixcomm_mode_t)m;
  return n;
}

int valid_ops(const gpu_rank_t* g, mixcomm_op_t* ops) {
  int n = 0;
  mixcomm_get_valid_op_list(g->h, ops, MIXCOMM_NUM_OPS, &n);
  return n;
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_matrix(gpu_rank_t* g) {
  static const int64_t rows_full[] = {1, 2, 3, 7, 100, 1000, 4096, -1, -2};
  static const int64_t rows_quick[] = {1, 3, 100};
  static const int64_t elems_full[] = {8, 24, 4096, 8192};
  static const int64_t elems_quick[] = {8, 4096};
  const int quick = g->opt->quick;
  const int64_t* rows = quick ? rows_quick : rows_full;
  const int nrows = quick ? 3 : 9;
  const int64_t* elems = quick ? elems_quick : elems_full;
  const int nelems = quick ? 2 : 4;
  mixcomm_op_t ops[MIXCOMM_NUM_OPS];
  mixcomm_mode_t modes[MIXCOMM_NUM_MODES];
  const int nops = valid_ops(g, ops), nmodes = valid_fused_modes(g, modes);
  uint64_t rng = 0x5EED0000ull + (uint64_t)g->topo.world_size * 131 + g->topo.local_tp_size * 7 +
                 (uint64_t)g->dtype;
  int index = 0;
  for (int oi = 0; oi < nops; oi++) {
    for (int mi = 0; mi < nmodes; mi++) {
      for (int ei = 0; ei < nelems; ei++) {
        for (int ri = 0; ri < nrows && !g->dead; ri++) {
          int64_t r = rows[ri];
          if (r < 0) { /* random row counts, the same on every rank */
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            r = 1 + (int64_t)((rng >> 33) % 2048);
          }
          if ((uint64_t)r * (uint64_t)elems[ei] > (1u << 19))
            continue;
          const unsigned specials = REF_SPECIAL_NEG_ZERO | (index % 2 ? REF_SPECIAL_POISON : 0);
          const size_t in_off = index % 4 == 3 ? 16 : 0, out_off = index % 4 == 3 ? 48 : 0;
          run_case(g, ops[oi], modes[mi], r, elems[ei], 1000 + index, specials, in_off, out_off);
          index++;
        }
      }
      /* One message long enough for many steps per CTA. */
      if (!quick && !g->dead)
        run_case(g, ops[oi], modes[mi], 4, 262144, 999, REF_SPECIAL_NEG_ZERO, 0, 0);
    }
  }
}

static void test_edge(gpu_rank_t* g) {
  mixcomm_op_t ops[MIXCOMM_NUM_OPS];
  mixcomm_mode_t modes[MIXCOMM_NUM_MODES];
  const int nops = valid_ops(g, ops), nmodes = valid_fused_modes(g, modes);
  for (int oi = 0; oi < nops && !g->dead; oi++) {
    for (int mi = 0; mi < nmodes; mi++) {
      /* Zero rows: accepted, nothing written, also with NULL pointers. */
      if (fill(g, g->d_out, 0xA5, 4096) != cudaSuccess) {
        failf(g, "cudaMemset failed");
        return;
      }
      mixcomm_status_t st =
          mixcomm_run(g->h, ops[oi], g->d_in, g->d_out, 0, 4096, modes[mi], g->stream);
      mixcomm_status_t st2 = mixcomm_run(g->h, ops[oi], NULL, NULL, 0, 8, modes[mi], g->stream);
      char why[512];
      if (st != MIXCOMM_SUCCESS || st2 != MIXCOMM_SUCCESS ||
          settle(g, why, sizeof why) != MIXCOMM_SUCCESS) {
        failf(g, "zero rows %s %s: %s", mixcomm_op_name(ops[oi]), mixcomm_mode_name(modes[mi]),
              mixcomm_last_error());
        continue;
      }
      unsigned char buf[4096];
      download(g, buf, g->d_out, sizeof buf);
      int touched = 0;
      for (size_t i = 0; i < sizeof buf; i++)
        touched |= buf[i] != 0xA5;
      if (touched)
        failf(g, "zero rows %s wrote to the output", mixcomm_op_name(ops[oi]));
      else
        g->passed++;
    }
    /* One row; the smallest row (one 16-byte vector); default mode. */
    const int64_t one_vec = 16 / (int64_t)mixcomm_dtype_size(g->dtype);
    run_case(g, ops[oi], MIXCOMM_MODE_DEFAULT, 1, one_vec, 77, REF_SPECIAL_NEG_ZERO, 0, 0);
    run_case(g, ops[oi], MIXCOMM_MODE_DEFAULT, 5, one_vec, 78, REF_SPECIAL_POISON, 16, 0);
  }
}

#define EXPECT_ERR(call, status, needle)                                                       \
  do {                                                                                         \
    mixcomm_status_t st_ = (call);                                                             \
    if (st_ != (status) || strstr(mixcomm_last_error(), needle) == NULL)                       \
      failf(g, "%s: got %s \"%s\", expected %s containing \"%s\"", #call,                      \
            mixcomm_status_name(st_), mixcomm_last_error(), mixcomm_status_name(status), needle); \
    else                                                                                       \
      g->passed++;                                                                             \
  } while (0)

static void test_errors(gpu_rank_t* g) {
  mixcomm_op_t ops[MIXCOMM_NUM_OPS];
  const int nops = valid_ops(g, ops);
  const mixcomm_op_t op = ops[0];
  const int64_t re = 64;
  const int64_t rows = is_scatter(op) ? g->topo.dp_size : 1;
  EXPECT_ERR(mixcomm_run(g->h, op, g->d_in + 2, g->d_out, rows, re, MIXCOMM_MODE_DEFAULT,
                         g->stream),
             MIXCOMM_ERR_INVALID_ARGUMENT, "16-byte aligned");
  EXPECT_ERR(mixcomm_run(g->h, op, g->d_in, g->d_out + 8, rows, re, MIXCOMM_MODE_DEFAULT,
                         g->stream),
             MIXCOMM_ERR_INVALID_ARGUMENT, "16-byte aligned");
  EXPECT_ERR(mixcomm_run(g->h, op, g->d_in, g->d_in + 16, rows, re, MIXCOMM_MODE_DEFAULT,
                         g->stream),
             MIXCOMM_ERR_INVALID_ARGUMENT, "overlaps");
  EXPECT_ERR(mixcomm_run(g->h, op, g->d_in, g->d_out, rows, 3, MIXCOMM_MODE_DEFAULT, g->stream),
             MIXCOMM_ERR_INVALID_ARGUMENT, "multiple of the 16-byte");
  EXPECT_ERR(mixcomm_run(g->h, op, g->h_in, g->d_out, rows, re, MIXCOMM_MODE_DEFAULT, g->stream),
             MIXCOMM_ERR_INVALID_ARGUMENT, "not device memory");
  EXPECT_ERR(mixcomm_run(g->h, op, g->d_in, g->d_out, rows, re, MIXCOMM_MODE_FUSED_OPT_WAITS_MC,
                         g->stream),
             MIXCOMM_ERR_INVALID_ARGUMENT, "multicast");
  EXPECT_ERR(mixcomm_run(g->h, op, g->d_in, g->d_out, rows, re, (mixcomm_mode_t)42, g->stream),
             MIXCOMM_ERR_INVALID_ARGUMENT, "not a mode");
  if (g->topo.local_tp_size == 1)
    EXPECT_ERR(mixcomm_run(g->h, op, g->d_in, g->d_out, rows, re,
                           MIXCOMM_MODE_FUSED_OPT_BYTES1_UC, g->stream),
               MIXCOMM_ERR_INVALID_ARGUMENT, "local_tp_size > 1");
  if (g->topo.dp_size > 1) {
    mixcomm_op_t rs = g->topo.tp_size > 1 ? MIXCOMM_OP_REDUCESCATTER_ALLREDUCE
                                          : MIXCOMM_OP_REDUCESCATTER;
    EXPECT_ERR(mixcomm_run(g->h, rs, g->d_in, g->d_out, g->topo.dp_size + 1, re,
                           MIXCOMM_MODE_DEFAULT, g->stream),
               MIXCOMM_ERR_INVALID_ARGUMENT, "divisible by dp_size");
    EXPECT_ERR(mixcomm_run(g->h, MIXCOMM_OP_ALLREDUCE, g->d_in, g->d_out, 1, re,
                           MIXCOMM_MODE_DEFAULT, g->stream),
               MIXCOMM_ERR_INVALID_ARGUMENT, "not valid for this topology");
  }
  EXPECT_ERR(mixcomm_run(g->h, op, g->d_in, g->d_out, -1, re, MIXCOMM_MODE_DEFAULT, g->stream),
             MIXCOMM_ERR_INVALID_ARGUMENT, "rows=-1");
  /* A call made while another GPU is current is refused before anything is enqueued (only
   * testable with two GPUs or more); the handler stays usable. */
  int ndev = 0, cur = -1;
  if (cudaGetDeviceCount(&ndev) == cudaSuccess && ndev >= 2 && cudaGetDevice(&cur) == cudaSuccess) {
    if (cudaSetDevice((cur + 1) % ndev) == cudaSuccess) {
      EXPECT_ERR(mixcomm_run(g->h, op, g->d_in, g->d_out, rows, re, MIXCOMM_MODE_DEFAULT,
                             g->stream),
                 MIXCOMM_ERR_INVALID_USAGE, "but the handler uses device");
      cudaSetDevice(cur);
    }
  }
  (void)nops;
}

/* Back-to-back calls with no host synchronisation between them: the ring wraps around many
 * times, one-shot and two-shot steps interleave; the last call into each of 8 output slots is
 * checked. */
static void test_burst(gpu_rank_t* g) {
  mixcomm_op_t ops[MIXCOMM_NUM_OPS];
  mixcomm_mode_t modes[MIXCOMM_NUM_MODES];
  const int nops = valid_ops(g, ops), nmodes = valid_fused_modes(g, modes);
  const int slots = 8, calls = g->opt->quick ? 600 : 3000;
  const size_t es = mixcomm_dtype_size(g->dtype);
  const size_t slot_bytes = (g->cap_bytes / slots) / 256 * 256;
  static const int64_t rows_cycle[] = {1, 5, 17, 64, 3};
  static const int64_t elems_cycle[] = {8, 128, 2048};
  struct last {
    mixcomm_op_t op;
    mixcomm_mode_t mode;
    int64_t rows_unit, elems;
    uint64_t seed;
  } last[8];
  /* Inputs: slot k holds the input of seed 5000 + k, at the largest shape. */
  const size_t max_in = (size_t)64 * (size_t)g->topo.dp_size * 2048;
  if (max_in * es > slot_bytes) {
    failf(g, "burst: buffers too small");
    return;
  }
  for (int k = 0; k < slots; k++) {
    ref_fill_input(g->dtype, 5000 + k, g->topo.world_rank, g->h_in, max_in, REF_SPECIAL_NEG_ZERO);
    if (upload(g, g->d_in + k * slot_bytes, g->h_in, max_in * es) !=
        cudaSuccess) {
      failf(g, "burst: upload failed");
      return;
    }
  }
  const double t0 = now_s();
  for (int c = 0; c < calls; c++) {
    const int k = c % slots;
    struct last L = {ops[c % nops], modes[(c / nops) % nmodes], rows_cycle[c % 5],
                     elems_cycle[(c / 5) % 3], 5000 + k};
    const int64_t rows_in = is_scatter(L.op) ? L.rows_unit * g->topo.dp_size : L.rows_unit;
    mixcomm_status_t st = mixcomm_run(g->h, L.op, g->d_in + k * slot_bytes,
                                      g->d_out + k * slot_bytes, rows_in, L.elems, L.mode,
                                      g->stream);
    if (st != MIXCOMM_SUCCESS) {
      failf(g, "burst call %d: %s", c, mixcomm_last_error());
      g->dead = 1;
      break;
    }
    last[k] = L;
  }
  char why[1200];
  if (settle(g, why, sizeof why) != MIXCOMM_SUCCESS) {
    failf(g, "burst: %s", why);
    g->dead = 1;
  }
  const double dt = now_s() - t0;
  int ok = !g->dead;
  for (int k = 0; k < slots && ok; k++) {
    const struct last* L = &last[k];
    const int64_t rows_in = is_scatter(L->op) ? L->rows_unit * g->topo.dp_size : L->rows_unit;
    const int64_t rows_out = is_gather(L->op) ? L->rows_unit * g->topo.dp_size : L->rows_unit;
    const size_t n_out = (size_t)rows_out * (size_t)L->elems;
    /* The input slot holds max_in elements; a call reads the first rows_in * elems of them,
     * which is what ref_fill_input produces for that count (the generator is sequential). */
    download(g, g->h_out, g->d_out + k * slot_bytes, n_out * es);
    ref_compute(&g->topo, g->dtype, L->op, L->seed, rows_in, L->elems, REF_SPECIAL_NEG_ZERO,
                g->ref, g->abs_sum, g->neg_zero);
    char report[512];
    const int64_t wrong = ref_check(g->dtype, g->h_out, g->ref, g->abs_sum, g->neg_zero, n_out,
                                    report, sizeof report);
    if (wrong) {
      failf(g, "burst: slot %d (%s %s rows %lld x %lld): %lld wrong: %s", k,
            mixcomm_op_name(L->op), mixcomm_mode_name(L->mode), (long long)rows_in,
            (long long)L->elems, (long long)wrong, report);
      ok = 0;
    }
  }
  if (ok)
    g->passed++;
  if (g->spawn.rank == 0)
    printf("  burst: %d calls in %.3f s (%.1f us per call incl. enqueue)\n", calls, dt,
           dt * 1e6 / calls);
  case_report_t rep = {ok ? 0 : -1, g->topo.dp_rank, 0, 0};
  agree(g, &rep, MIXCOMM_OP_REDUCESCATTER, "burst");
}

/* Capture several calls into a CUDA graph, replay it with new inputs each time (and eager
 * calls in between, so graph and eager calls share the ring), check every replay. */
static void test_graph(gpu_rank_t* g) {
  mixcomm_op_t ops[MIXCOMM_NUM_OPS];
  mixcomm_mode_t modes[MIXCOMM_NUM_MODES];
  const int nops = valid_ops(g, ops), nmodes = valid_fused_modes(g, modes);
  const int ncalls = 4, replays = g->opt->quick ? 3 : 10;
  const size_t es = mixcomm_dtype_size(g->dtype);
  const size_t slot = (g->cap_bytes / (ncalls + 1)) / 256 * 256;
  struct call {
    mixcomm_op_t op;
    mixcomm_mode_t mode;
    int64_t rows_in, elems;
  } calls[4];
  for (int c = 0; c < ncalls; c++) {
    calls[c].op = ops[c % nops];
    calls[c].mode = modes[(c / nops + c) % nmodes];
    calls[c].elems = c % 2 ? 4096 : 40;
    const int64_t unit = c == 3 ? 33 : 2 + c;
    calls[c].rows_in = is_scatter(calls[c].op) ? unit * g->topo.dp_size : unit;
  }
  cudaGraph_t graph = NULL;
  cudaGraphExec_t exec = NULL;
  if (cudaStreamBeginCapture(g->stream, cudaStreamCaptureModeGlobal) != cudaSuccess) {
    failf(g, "graph: cudaStreamBeginCapture failed");
    return;
  }
  int capture_ok = 1;
  for (int c = 0; c < ncalls; c++) {
    if (mixcomm_run(g->h, calls[c].op, g->d_in + c * slot, g->d_out + c * slot, calls[c].rows_in,
                    calls[c].elems, calls[c].mode, g->stream) != MIXCOMM_SUCCESS) {
      failf(g, "graph: run during capture: %s", mixcomm_last_error());
      capture_ok = 0;
    }
  }
  cudaError_t e = cudaStreamEndCapture(g->stream, &graph);
  if (e != cudaSuccess || !capture_ok) {
    failf(g, "graph: capture failed: %s", cudaGetErrorString(e));
    if (graph)
      cudaGraphDestroy(graph);
    g->dead = 1;
    return;
  }
  if (cudaGraphInstantiate(&exec, graph, 0) != cudaSuccess) {
    failf(g, "graph: instantiate failed");
    cudaGraphDestroy(graph);
    return;
  }
  int ok = 1;
  for (int r = 0; r < replays && ok && !g->dead; r++) {
    for (int c = 0; c < ncalls; c++) {
      const size_t n_in = (size_t)calls[c].rows_in * (size_t)calls[c].elems;
      ref_fill_input(g->dtype, 7000 + r * 16 + c, g->topo.world_rank, g->h_in, n_in,
                     REF_SPECIAL_NEG_ZERO | REF_SPECIAL_POISON);
      upload(g, g->d_in + c * slot, g->h_in, n_in * es);
      fill(g, g->d_out + c * slot, 0xFF, slot);
    }
    if (cudaGraphLaunch(exec, g->stream) != cudaSuccess) {
      failf(g, "graph: launch failed");
      ok = 0;
      break;
    }
    /* An eager call between replays (into the spare slot). */
    const int64_t eager_rows = is_scatter(ops[0]) ? g->topo.dp_size : 1;
    if (mixcomm_run(g->h, ops[0], g->d_in, g->d_out + ncalls * slot, eager_rows, 64,
                    MIXCOMM_MODE_DEFAULT, g->stream) != MIXCOMM_SUCCESS) {
      failf(g, "graph: eager call: %s", mixcomm_last_error());
      ok = 0;
    }
    char why[1200];
    if (settle(g, why, sizeof why) != MIXCOMM_SUCCESS) {
      failf(g, "graph replay %d: %s", r, why);
      g->dead = 1;
      ok = 0;
      break;
    }
    for (int c = 0; c < ncalls && ok; c++) {
      const int64_t rows_out = is_gather(calls[c].op) ? calls[c].rows_in * g->topo.dp_size
                               : is_scatter(calls[c].op) ? calls[c].rows_in / g->topo.dp_size
                                                         : calls[c].rows_in;
      const size_t n_out = (size_t)rows_out * (size_t)calls[c].elems;
      download(g, g->h_out, g->d_out + c * slot, n_out * es);
      ref_compute(&g->topo, g->dtype, calls[c].op, 7000 + r * 16 + c, calls[c].rows_in,
                  calls[c].elems, REF_SPECIAL_NEG_ZERO | REF_SPECIAL_POISON, g->ref, g->abs_sum,
                  g->neg_zero);
      char report[512];
      const int64_t wrong = ref_check(g->dtype, g->h_out, g->ref, g->abs_sum, g->neg_zero,
                                      n_out, report, sizeof report);
      if (wrong) {
        failf(g, "graph replay %d call %d (%s %s): %lld wrong: %s", r, c,
              mixcomm_op_name(calls[c].op), mixcomm_mode_name(calls[c].mode), (long long)wrong,
              report);
        ok = 0;
      }
    }
  }
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  if (ok)
    g->passed++;
  case_report_t rep = {ok ? 0 : -1, g->topo.dp_rank, 0, 0};
  agree(g, &rep, MIXCOMM_OP_REDUCESCATTER, "graph");
}

/* Release and restore the workspace: runs are refused in between, a graph captured before
 * replays correctly after, and the memory really went away. */
static void test_checkpoint(gpu_rank_t* g) {
  mixcomm_op_t ops[MIXCOMM_NUM_OPS];
  valid_ops(g, ops);
  const mixcomm_op_t op = ops[0];
  const int64_t rows_in = is_scatter(op) ? 8 * g->topo.dp_size : 8;
  const int64_t elems = 1024;
  const size_t es = mixcomm_dtype_size(g->dtype);
  cudaGraph_t graph = NULL;
  cudaGraphExec_t exec = NULL;
  if (cudaStreamBeginCapture(g->stream, cudaStreamCaptureModeGlobal) != cudaSuccess) {
    failf(g, "checkpoint: capture failed");
    return;
  }
  mixcomm_status_t st =
      mixcomm_run(g->h, op, g->d_in, g->d_out, rows_in, elems, MIXCOMM_MODE_DEFAULT, g->stream);
  if (cudaStreamEndCapture(g->stream, &graph) != cudaSuccess || st != MIXCOMM_SUCCESS ||
      cudaGraphInstantiate(&exec, graph, 0) != cudaSuccess) {
    failf(g, "checkpoint: capturing the graph: %s", mixcomm_last_error());
    g->dead = 1;
    return;
  }
  size_t free0 = 0, free1 = 0, free2 = 0, total = 0;
  mixcomm__bs_barrier(g->bs, "checkpoint test");
  cudaMemGetInfo(&free0, &total);
  st = mixcomm_checkpoint_prepare(g->h);
  if (st != MIXCOMM_SUCCESS) {
    failf(g, "checkpoint_prepare: %s", mixcomm_last_error());
    g->dead = 1;
    return;
  }
  mixcomm__bs_barrier(g->bs, "checkpoint test");
  cudaMemGetInfo(&free1, &total);
  EXPECT_ERR(mixcomm_run(g->h, op, g->d_in, g->d_out, rows_in, elems, MIXCOMM_MODE_DEFAULT,
                         g->stream),
             MIXCOMM_ERR_INVALID_USAGE, "checkpoint_restore");
  st = mixcomm_checkpoint_restore(g->h);
  if (st != MIXCOMM_SUCCESS) {
    failf(g, "checkpoint_restore: %s", mixcomm_last_error());
    g->dead = 1;
    return;
  }
  mixcomm__bs_barrier(g->bs, "checkpoint test");
  cudaMemGetInfo(&free2, &total);
  const size_t ws = mixcomm_handler_plan(g->h)->vmm_bytes;
  if (g->spawn.rank == 0)
    printf("  checkpoint: free GPU memory %.1f MiB -> %.1f MiB after prepare -> %.1f MiB after "
           "restore (node workspace %.1f MiB per rank, %d ranks on this GPU)\n",
           free0 / 1048576.0, free1 / 1048576.0, free2 / 1048576.0, ws / 1048576.0,
           g->topo.local_size);
  /* Every rank of the node released its workspace; at least this rank's must show. */
  if (g->topo.local_size > 1 && free1 < free0 + ws / 2)
    failf(g, "checkpoint: only %.1f MiB freed, expected at least %.1f MiB",
          ((double)free1 - (double)free0) / 1048576.0, ws / 2 / 1048576.0);
  const size_t n_in = (size_t)rows_in * (size_t)elems;
  ref_fill_input(g->dtype, 4242, g->topo.world_rank, g->h_in, n_in, REF_SPECIAL_NEG_ZERO);
  upload(g, g->d_in, g->h_in, n_in * es);
  fill(g, g->d_out, 0xFF, g->cap_bytes);
  cudaGraphLaunch(exec, g->stream);
  char why[1200];
  int ok = 1;
  if (settle(g, why, sizeof why) != MIXCOMM_SUCCESS) {
    failf(g, "checkpoint: replay after restore: %s", why);
    g->dead = 1;
    ok = 0;
  } else {
    const int64_t rows_out = is_gather(op)    ? rows_in * g->topo.dp_size
                             : is_scatter(op) ? rows_in / g->topo.dp_size
                                              : rows_in;
    const size_t n_out = (size_t)rows_out * (size_t)elems;
    download(g, g->h_out, g->d_out, n_out * es);
    ref_compute(&g->topo, g->dtype, op, 4242, rows_in, elems, REF_SPECIAL_NEG_ZERO, g->ref,
                g->abs_sum, g->neg_zero);
    char report[512];
    const int64_t wrong =
        ref_check(g->dtype, g->h_out, g->ref, g->abs_sum, g->neg_zero, n_out, report, sizeof report);
    if (wrong) {
      failf(g, "checkpoint: graph replay after restore: %lld wrong: %s", (long long)wrong, report);
      ok = 0;
    }
  }
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  if (ok)
    g->passed++;
  case_report_t rep = {ok ? 0 : -1, g->topo.dp_rank, 0, 0};
  agree(g, &rep, MIXCOMM_OP_REDUCESCATTER, "checkpoint");
}

/* Across nodes, a restore restarts the call counters, which the epochs of the signal words
 * come from: a call after it must not take a signal left by the call of the same shape and
 * number before it (it would read that call's rows). Two restores put the counters back to 0
 * around one call; the same call after the second, with other data and node 0 late (node 1's
 * kernels run while only the old signals are there), must get the new data. Many CTAs, so that
 * every CTA's words are checked. */
static void test_checkpoint_signals(gpu_rank_t* g) {
  const mixcomm_mode_t mode = MIXCOMM_MODE_FUSED_OPT_WAITS_UC;
  if (g->topo.inter_size == 1 || mixcomm_mode_invalid_reason(g->h, mode) != NULL)
    return;
  mixcomm_op_t ops[MIXCOMM_NUM_OPS];
  valid_ops(g, ops);
  const int64_t elems = 8192 / (int64_t)mixcomm_dtype_size(g->dtype); /* 8 KiB rows */
  for (int round = 0; round < 2 && !g->dead; round++) {
    if (mixcomm_checkpoint_prepare(g->h) != MIXCOMM_SUCCESS ||
        mixcomm_checkpoint_restore(g->h) != MIXCOMM_SUCCESS) {
      failf(g, "checkpoint signals: prepare/restore: %s", mixcomm_last_error());
      g->dead = 1;
      return;
    }
    g->late_node_ms = round == 1 ? 300 : 0;
    run_case(g, ops[0], mode, 100, elems, 7100 + (uint64_t)round, REF_SPECIAL_NEG_ZERO, 0, 0);
    g->late_node_ms = 0;
  }
}

/* Across nodes: the kernels' count of the bytes and network operations they put equals the
 * model of the call (core/put_model.c), for every op, fused mode and size; the model itself is
 * checked against closed forms on the CPU (tests/unit/test_wire.c). Each case runs twice
 * (run_case repeats the call), so twice the model is expected. */
static void test_put_count(gpu_rank_t* g) {
  if (g->topo.inter_size == 1)
    return;
  static const int64_t shapes[][2] = {/* rows per DP rank, row elements */
                                      {1, 8}, {3, 24}, {7, 1024}, {1, 8192}, {100, 4096},
                                      {4, 65536}};
  const size_t es = mixcomm_dtype_size(g->dtype);
  mixcomm_op_t ops[MIXCOMM_NUM_OPS];
  mixcomm_mode_t modes[MIXCOMM_NUM_MODES];
  const int nops = valid_ops(g, ops), nmodes = valid_fused_modes(g, modes);
  mixcomm__put_count_t got, model;
  if (mixcomm__put_count_enable(g->h, 1) != MIXCOMM_SUCCESS ||
      mixcomm__put_count_take(g->h, g->stream, &got) != MIXCOMM_SUCCESS) {
    failf(g, "put count: %s", mixcomm_last_error());
    return;
  }
  int index = 0;
  for (int oi = 0; oi < nops; oi++) {
    for (int mi = 0; mi < nmodes; mi++) {
      for (size_t si = 0; si < sizeof shapes / sizeof shapes[0] && !g->dead; si++) {
        const int64_t rows = shapes[si][0], elems = shapes[si][1] * 2 / (int64_t)es;
        run_case(g, ops[oi], modes[mi], rows, elems, 8000 + index++, 0, 0, 0);
        if (g->dead)
          break;
        if (mixcomm__put_count_take(g->h, g->stream, &got) != MIXCOMM_SUCCESS ||
            mixcomm__put_count_model(g->h, ops[oi], modes[mi], rows * elems, 0, &model) !=
                MIXCOMM_SUCCESS) {
          failf(g, "put count: %s", mixcomm_last_error());
          continue;
        }
        if (got.bytes != 2 * model.bytes || got.puts != 2 * model.puts) {
          failf(g, "put count %s %s, %lld x %lld: the kernels put %llu bytes in %llu operations "
                   "over two calls, the model says %llu in %llu per call",
                mixcomm_op_name(ops[oi]), mixcomm_mode_name(modes[mi]), (long long)rows,
                (long long)elems, (unsigned long long)got.bytes, (unsigned long long)got.puts,
                (unsigned long long)model.bytes, (unsigned long long)model.puts);
          continue;
        }
        g->passed++;
        if (g->spawn.rank == 0 && si == 3)
          printf("  put count: %s %s, %lld-byte rank block: %llu bytes in %llu puts per call "
                 "(rank 0)\n",
                 mixcomm_op_name(ops[oi]), mixcomm_mode_name(modes[mi]),
                 (long long)(rows * elems * (int64_t)es), (unsigned long long)model.bytes,
                 (unsigned long long)model.puts);
      }
    }
  }
  mixcomm__put_count_enable(g->h, 0);
}

/* ---- handler lifetime ------------------------------------------------------------------- */

static mixcomm_status_t create_handler(gpu_rank_t* g, mixcomm_dtype_t dtype, int autotune,
                                       const char* cache_dir) {
  mixcomm_config_t c;
  mixcomm_config_init(&c);
  c.world_rank = g->spawn.rank;
  c.world_size = g->local_size * g->inter_size;
  c.local_rank = g->spawn.rank % g->local_size;
  c.local_size = g->local_size;
  c.inter_rank = g->spawn.rank / g->local_size;
  c.inter_size = g->inter_size;
  c.local_tp_size = g->local_tp;
  c.inter_tp_size = g->inter_tp;
  c.dtype = dtype;
  c.grid_size = g->grid;
  c.timeout_ms = g->opt->timeout_ms;
  c.use_autotune = autotune;
  c.autotune_cache_dir = cache_dir;
  c.should_init_nvshmem = !g->reuse_nvshmem;
  g->dtype = dtype;
  mixcomm_status_t st = mixcomm_handler_create(&c, g->bs, &g->h);
  if (st == MIXCOMM_SUCCESS)
    g->topo = *mixcomm_handler_topology(g->h);
  g->dead = 0;
  return st;
}

static void destroy_handler(gpu_rank_t* g) {
  if (g->h == NULL)
    return;
  if (mixcomm_handler_shutdown(g->h) != MIXCOMM_SUCCESS && !g->dead)
    failf(g, "shutdown: %s", mixcomm_last_error());
  g->h = NULL;
}

/* Creation and shutdown in a loop must leak nothing. */
static void test_lifecycle(gpu_rank_t* g) {
  size_t free0 = 0, free_first = 0, free1 = 0, total;
  mixcomm__bs_barrier(g->bs, "lifecycle");
  cudaMemGetInfo(&free0, &total);
  const int loops = g->opt->quick ? 3 : 10;
  for (int i = 0; i < loops; i++) {
    if (create_handler(g, MIXCOMM_BFLOAT16, 0, NULL) != MIXCOMM_SUCCESS) {
      failf(g, "lifecycle create %d: %s", i, mixcomm_last_error());
      return;
    }
    mixcomm_op_t ops[MIXCOMM_NUM_OPS];
    valid_ops(g, ops);
    run_case(g, ops[0], MIXCOMM_MODE_DEFAULT, 3, 64, 300 + i, 0, 0, 0);
    destroy_handler(g);
    if (i == 0) {
      /* What the first cycle keeps (run-time and NVSHMEM state that lives as long as the
       * process) is not a leak; growth over the later cycles is. */
      mixcomm__bs_barrier(g->bs, "lifecycle");
      cudaMemGetInfo(&free_first, &total);
    }
  }
  mixcomm__bs_barrier(g->bs, "lifecycle");
  cudaMemGetInfo(&free1, &total);
  const double first = ((double)free0 - (double)free_first) / 1048576.0;
  const double growth = ((double)free_first - (double)free1) / 1048576.0;
  if (g->spawn.rank == 0)
    printf("  lifecycle: %d create/shutdown cycles on a GPU shared by %d ranks: %.1f MiB kept "
           "after the first, %.1f MiB more over the other %d\n",
           loops, g->topo.world_size, first, growth, loops - 1);
  /* Across nodes: a handler that uses the NVSHMEM already running in the process
   * (should_init_nvshmem = 0), as an application that started NVSHMEM itself would. */
  if (g->topo.inter_size > 1) {
    g->reuse_nvshmem = 1;
    if (create_handler(g, MIXCOMM_BFLOAT16, 0, NULL) != MIXCOMM_SUCCESS) {
      failf(g, "should_init_nvshmem = 0: %s", mixcomm_last_error());
    } else {
      mixcomm_op_t ops[MIXCOMM_NUM_OPS];
      valid_ops(g, ops);
      run_case(g, ops[0], MIXCOMM_MODE_FUSED_OPT_WAITS_UC, 5, 256, 333, 0, 0, 0);
      destroy_handler(g);
    }
    g->reuse_nvshmem = 0;
  }
  if (growth > 16.0)
    failf(g, "lifecycle: GPU memory in use grew by %.1f MiB over %d create/shutdown cycles",
          growth, loops - 1);
  else
    g->passed++;
}

/* Autotune with an on-disk cache: the first creation measures, the second reads the file. */
static void test_autotune(gpu_rank_t* g) {
  char dir[256];
  snprintf(dir, sizeof dir, "/tmp/mixcomm-gpu-tests-cache-%d", g->spawn.tcp.port);
  const double t0 = now_s();
  if (create_handler(g, MIXCOMM_BFLOAT16, 1, dir) != MIXCOMM_SUCCESS) {
    failf(g, "autotune: creation: %s", mixcomm_last_error());
    return;
  }
  const double t1 = now_s();
  uint32_t choices[MIXCOMM_NUM_OPS * 16];
  int n = 0;
  mixcomm_op_t ops[MIXCOMM_NUM_OPS];
  const int nops = valid_ops(g, ops);
  for (int oi = 0; oi < nops; oi++) {
    for (int k = 0; k < 15; k++) {
      mixcomm_mode_t m;
      if (mixcomm_select_autotune_mode(g->h, ops[oi], (int64_t)1 << k, 4096, &m) != MIXCOMM_SUCCESS ||
          mixcomm_mode_invalid_reason(g->h, m) != NULL || m == MIXCOMM_MODE_AUTOTUNE) {
        failf(g, "autotune: bucket %d of %s chose an invalid mode", k, mixcomm_op_name(ops[oi]));
        break;
      }
      choices[n++] = (uint32_t)m;
    }
  }
  run_case(g, ops[0], MIXCOMM_MODE_AUTOTUNE, 100, 4096, 55, REF_SPECIAL_NEG_ZERO, 0, 0);
  case_report_t rep = {0, 0, ref_hash(choices, n * sizeof choices[0]),
                       ref_hash(choices, n * sizeof choices[0])};
  if (agree(g, &rep, MIXCOMM_OP_ALLREDUCE, "autotune choices (identical on every rank)") == 0)
    g->passed++;
  destroy_handler(g);
  const double t2 = now_s();
  if (create_handler(g, MIXCOMM_BFLOAT16, 1, dir) != MIXCOMM_SUCCESS) {
    failf(g, "autotune: second creation: %s", mixcomm_last_error());
    return;
  }
  const double t3 = now_s();
  run_case(g, ops[0], MIXCOMM_MODE_DEFAULT, 100, 4096, 56, REF_SPECIAL_NEG_ZERO, 0, 0);
  destroy_handler(g);
  if (g->spawn.rank == 0) {
    printf("  autotune: creation with tuning %.2f s, with the cache %.3f s\n", t1 - t0, t3 - t2);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "ls %s/autotune-*.txt > /dev/null 2>&1", dir);
    if (system(cmd) != 0)
      failf(g, "autotune: no cache file in %s", dir);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
      failf(g, "autotune: could not remove %s", dir);
  }
  if (t3 - t2 > 1.0)
    failf(g, "autotune: creation with a warm cache took %.2f s (target < 1 s)", t3 - t2);
  else
    g->passed++;
}

/* ---- one rank ----------------------------------------------------------------------------- */

static int setup(gpu_rank_t* g) {
  int ndev = 0;
  CUDA_OR_FAIL(cudaGetDeviceCount(&ndev));
  CUDA_OR_FAIL(cudaSetDevice(g->spawn.host_rank % ndev));
  int sms = 0;
  CUDA_OR_FAIL(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount,
                                      g->spawn.host_rank % ndev));
  /* Every rank of the job runs on this host (nodes are emulated): they share the GPUs. */
  const int world = g->local_size * g->inter_size;
  const int sharing = (world + ndev - 1) / ndev;
  g->grid = g->opt->grid ? g->opt->grid : sms / sharing;
  if (g->grid > 32 && sharing > 1)
    g->grid = 32;
  CUDA_OR_FAIL(cudaStreamCreateWithFlags(&g->stream, cudaStreamNonBlocking));
  const int dp_max = g->local_size * g->inter_size;
  g->cap_bytes = (size_t)MAX_BLOCK_ELEMS * 4 * (size_t)dp_max;
  CUDA_OR_FAIL(cudaMalloc((void**)&g->d_in, g->cap_bytes + SLACK));
  CUDA_OR_FAIL(cudaMalloc((void**)&g->d_out, g->cap_bytes + SLACK));
  const size_t elems = g->cap_bytes / 2 + SLACK;
  g->h_in = malloc(g->cap_bytes + SLACK);
  g->h_out = malloc(g->cap_bytes + SLACK);
  g->h_out2 = malloc(g->cap_bytes + SLACK);
  g->ref = malloc(elems * sizeof(double));
  g->abs_sum = malloc(elems * sizeof(double));
  g->neg_zero = malloc(elems);
  if (!g->h_in || !g->h_out || !g->h_out2 || !g->ref || !g->abs_sum || !g->neg_zero) {
    failf(g, "host allocation failed");
    return -1;
  }
  mixcomm_tcp_options_t tcp = g->spawn.tcp;
  tcp.timeout_ms = 120000;
  if (mixcomm_bootstrap_tcp_create(&tcp, g->spawn.rank, g->spawn.world_size, &g->bs) !=
      MIXCOMM_SUCCESS) {
    failf(g, "bootstrap: %s", mixcomm_last_error());
    return -1;
  }
  return 0;
}

int gpu_rank_run(gpu_rank_t* g) {
  if (setup(g) != 0)
    return 1;
  for (int d = 0; d < g->opt->ndtypes; d++) {
    if (create_handler(g, g->opt->dtypes[d], 0, NULL) != MIXCOMM_SUCCESS) {
      failf(g, "handler creation: %s", mixcomm_last_error());
      break;
    }
    if (g->spawn.rank == g->opt->late_rank) {
      /* Start late: every other rank's first kernels wait for this one. */
      printf("  rank %d starts its calls %d ms late\n", g->spawn.rank, g->opt->late_ms);
      fflush(stdout);
      struct timespec late = {g->opt->late_ms / 1000, (long)(g->opt->late_ms % 1000) * 1000000L};
      while (nanosleep(&late, &late) != 0 && errno == EINTR) {
      }
    }
    if (want(g, "matrix") && !g->dead)
      test_matrix(g);
    if (want(g, "edge") && !g->dead)
      test_edge(g);
    if (want(g, "errors") && !g->dead)
      test_errors(g);
    if (want(g, "burst") && !g->dead)
      test_burst(g);
    if (want(g, "graph") && !g->dead)
      test_graph(g);
    if (want(g, "checkpoint") && !g->dead)
      test_checkpoint(g);
    if (want(g, "checkpoint") && !g->dead)
      test_checkpoint_signals(g);
    if (want(g, "epilogue") && !g->dead)
      test_epilogue(g);
    if (want(g, "putcount") && !g->dead)
      test_put_count(g);
    /* Last: it ends with the checks that leave the handler unusable. */
    if (want(g, "uneven") && !g->dead)
      test_uneven(g);
    destroy_handler(g);
  }
  if (want(g, "lifecycle"))
    test_lifecycle(g);
  if (want(g, "autotune"))
    test_autotune(g);
  printf("  rank %d: %d passed, %d failed\n", g->spawn.rank, g->passed, g->failed);
  fflush(stdout);
  mixcomm_bootstrap_destroy(g->bs);
  return g->failed ? 1 : 0;
}
