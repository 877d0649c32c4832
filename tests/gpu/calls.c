/* SPDX-License-Identifier: Apache-2.0
 * GPU suite tests of the collective calls themselves: the matrix of ops, fused modes
 * and shapes, edge cases, argument errors, bursts without synchronisation, CUDA graphs, and the
 * put count across nodes. */
#include <stdio.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "common/refdata.h"
#include "gpu/gpu_suite.h"
#include "handler/handler.h" /* the debug put count (handler/put_count.c) */

void test_matrix(gpu_rank_t* g) {
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

void test_edge(gpu_rank_t* g) {
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

void test_errors(gpu_rank_t* g) {
  mixcomm_op_t ops[MIXCOMM_NUM_OPS];
  valid_ops(g, ops);
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
}

/* Back-to-back calls with no host synchronisation between them: the ring wraps around many
 * times, one-shot and two-shot steps interleave; the last call into each of 8 output slots is
 * checked. */
void test_burst(gpu_rank_t* g) {
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
    /* The input slot holds max_in elements; a call reads the first rows_in * elems of them,
     * which is what ref_fill_input produces for that count (the generator is sequential). */
    char report[512];
    const int64_t wrong = check_device_output(g, g->d_out + k * slot_bytes, L->op, L->seed, rows_in,
                                              L->elems, REF_SPECIAL_NEG_ZERO, report,
                                              sizeof report);
    if (wrong) {
      failf(g, "burst: slot %d (%s %s rows %lld x %lld): %lld wrong: %s", k,
            mixcomm_op_name(L->op), mixcomm_mode_name(L->mode), (long long)rows_in,
            (long long)L->elems, (long long)wrong, report);
      ok = 0;
    }
  }
  if (g->spawn.rank == 0)
    printf("  burst: %d calls in %.3f s (%.1f us per call incl. enqueue)\n", calls, dt,
           dt * 1e6 / calls);
  conclude_test(g, ok, "burst");
}

/* Capture several calls into a CUDA graph, replay it with new inputs each time (and eager
 * calls in between, so graph and eager calls share the ring), check every replay. */
void test_graph(gpu_rank_t* g) {
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
      char report[512];
      const int64_t wrong =
          check_device_output(g, g->d_out + c * slot, calls[c].op, 7000 + r * 16 + c,
                              calls[c].rows_in, calls[c].elems,
                              REF_SPECIAL_NEG_ZERO | REF_SPECIAL_POISON, report, sizeof report);
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
  conclude_test(g, ok, "graph");
}

/* Across nodes: the kernels' count of the bytes and network operations they put equals the
 * model of the call (core/put_model.c), for every op, fused mode and size; the model itself is
 * checked against closed forms on the CPU (tests/unit/test_wire.c). Each case runs twice
 * (run_case repeats the call), so twice the model is expected. */
void test_put_count(gpu_rank_t* g) {
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
