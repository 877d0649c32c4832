/* SPDX-License-Identifier: Apache-2.0
 * Launch floors and phase breakdowns for mixcomm-perf (tools/perf/latency.h). */
#include "perf/latency.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/launch.h"
#include "perf/launch_floor.h"

#define FLOOR_WARMUP 20
#define FLOOR_ITERS 50

int perf_floor(perf_floor_cache_t* cache, mixcomm_bootstrap_t* bs, int world, int grid,
               int block, int calls, cudaStream_t stream, double* us, char* err, size_t errcap) {
  for (int i = 0; i < cache->n; i++) {
    if (cache->grid[i] == grid && cache->block[i] == block) {
      *us = cache->us[i];
      return 0;
    }
  }
  int ok = 1;
  double mine = NAN;
  const size_t need = (size_t)2 * grid * block * 16;
  if (need > cache->scratch_bytes) {
    if (cache->scratch != NULL)
      cudaFree(cache->scratch);
    cache->scratch = NULL;
    cache->scratch_bytes = 0;
    cudaError_t e = cudaMalloc(&cache->scratch, need);
    if (e != cudaSuccess) {
      snprintf(err, errcap, "allocating %zu bytes for the launch floor: %s", need,
               cudaGetErrorString(e));
      ok = 0;
    } else {
      cache->scratch_bytes = need;
      e = cudaMemset(cache->scratch, 0x3C, need);
      if (e == cudaSuccess)
        e = cudaDeviceSynchronize();
      if (e != cudaSuccess) {
        snprintf(err, errcap, "clearing the launch floor buffer: %s", cudaGetErrorString(e));
        ok = 0;
      }
    }
  }
  /* Every rank measures at the same time, as the collectives run. */
  mixcomm_status_t st = mixcomm__bs_barrier(bs, "launch floor start");
  if (st != MIXCOMM_SUCCESS) {
    snprintf(err, errcap, "launch floor: barrier: %s", mixcomm_last_error());
    return -1;
  }
  if (ok) {
    const int e = launch_floor_us(grid, block, calls, FLOOR_WARMUP, FLOOR_ITERS, cache->scratch,
                                  stream, &mine);
    if (e != cudaSuccess) {
      snprintf(err, errcap, "launch floor of %d x %d: %s", grid, block,
               cudaGetErrorString((cudaError_t)e));
      ok = 0;
    }
  }
  double* all = calloc((size_t)world, sizeof *all);
  if (all == NULL) {
    snprintf(err, errcap, "launch floor: out of host memory");
    return -1;
  }
  if (!ok)
    mine = -1.0; /* tells the others */
  st = mixcomm__bs_allgather(bs, &mine, all, sizeof mine, "launch floor results");
  if (st != MIXCOMM_SUCCESS) {
    snprintf(err, errcap, "launch floor: gathering results: %s", mixcomm_last_error());
    free(all);
    return -1;
  }
  double worst = 0.0;
  int bad = -1;
  for (int i = 0; i < world; i++) {
    if (all[i] < 0 && bad < 0)
      bad = i;
    if (all[i] > worst)
      worst = all[i];
  }
  free(all);
  if (bad >= 0) {
    if (ok)
      snprintf(err, errcap, "launch floor failed on rank %d (see its message)", bad);
    return -1;
  }
  if (cache->n < PERF_FLOOR_SHAPES) {
    cache->grid[cache->n] = grid;
    cache->block[cache->n] = block;
    cache->us[cache->n] = worst;
    cache->n++;
  }
  *us = worst;
  return 0;
}

void perf_floor_free(perf_floor_cache_t* cache) {
  if (cache->scratch != NULL)
    cudaFree(cache->scratch);
  memset(cache, 0, sizeof *cache);
}

int perf_breakdown_available(mixcomm_handler_t* h) { return MIXCOMM_PHASE_STAMPS && h != NULL; }

static double delta_us(unsigned long long later, unsigned long long earlier) {
  return ((double)later - (double)earlier) * 1e-3;
}

int perf_breakdown_read(mixcomm_handler_t* h, int calls, perf_breakdown_t* out, char* err,
                        size_t errcap) {
  memset(out, 0, sizeof *out);
  mixcomm__stamp_call_t* s = malloc(MIXCOMM_STAMP_CALLS * sizeof *s);
  if (s == NULL) {
    snprintf(err, errcap, "breakdown: out of host memory");
    return -1;
  }
  if (mixcomm__debug_stamps(h, s) != MIXCOMM_SUCCESS) {
    snprintf(err, errcap, "breakdown: %s", mixcomm_last_error());
    free(s);
    return -1;
  }
  /* The newest call is the one with the largest call number; walk back from it over calls
   * whose predecessor is also recorded (for the gap). */
  int newest = -1;
  for (int i = 0; i < MIXCOMM_STAMP_CALLS; i++)
    if (s[i].t[MIXCOMM_STAMP_SEQ] != 0 &&
        (newest < 0 || s[i].t[MIXCOMM_STAMP_SEQ] > s[newest].t[MIXCOMM_STAMP_SEQ]))
      newest = i;
  if (calls > MIXCOMM_STAMP_CALLS - 1)
    calls = MIXCOMM_STAMP_CALLS - 1;
  perf_breakdown_t sum;
  memset(&sum, 0, sizeof sum);
  for (int k = 0; newest >= 0 && k < calls; k++) {
    const unsigned long long seq = s[newest].t[MIXCOMM_STAMP_SEQ] - (unsigned long long)k;
    if (seq < 2)
      break;
    const mixcomm__stamp_call_t* c = &s[(seq - 1) % MIXCOMM_STAMP_CALLS];
    const mixcomm__stamp_call_t* p = &s[(seq - 2) % MIXCOMM_STAMP_CALLS];
    if (c->t[MIXCOMM_STAMP_SEQ] != seq || p->t[MIXCOMM_STAMP_SEQ] != seq - 1)
      break;
    const unsigned long long* t = c->t;
    sum.gap += delta_us(t[MIXCOMM_STAMP_ENTRY], p->t[MIXCOMM_STAMP_EXIT]);
    sum.resolve += delta_us(t[MIXCOMM_STAMP_RESOLVED], t[MIXCOMM_STAMP_ENTRY]);
    sum.claim += delta_us(t[MIXCOMM_STAMP_CLAIMED], t[MIXCOMM_STAMP_RESOLVED]);
    sum.produce += delta_us(t[MIXCOMM_STAMP_PRODUCED], t[MIXCOMM_STAMP_CLAIMED]);
    sum.relay += delta_us(t[MIXCOMM_STAMP_RELAYED], t[MIXCOMM_STAMP_PRODUCED]);
    sum.consume += delta_us(t[MIXCOMM_STAMP_CONSUMED], t[MIXCOMM_STAMP_RELAYED]);
    sum.finish += delta_us(t[MIXCOMM_STAMP_FINISHED], t[MIXCOMM_STAMP_CONSUMED]);
    sum.exit += delta_us(t[MIXCOMM_STAMP_EXIT], t[MIXCOMM_STAMP_FINISHED]);
    sum.calls++;
  }
  free(s);
  if (sum.calls == 0) {
    snprintf(err, errcap, "breakdown: no consecutive calls recorded");
    return -1;
  }
  const double n = sum.calls;
  out->calls = sum.calls;
  out->gap = sum.gap / n;
  out->resolve = sum.resolve / n;
  out->claim = sum.claim / n;
  out->produce = sum.produce / n;
  out->relay = sum.relay / n;
  out->consume = sum.consume / n;
  out->finish = sum.finish / n;
  out->exit = sum.exit / n;
  return 0;
}
