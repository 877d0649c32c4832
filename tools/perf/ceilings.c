/* SPDX-License-Identifier: Apache-2.0
 * The same-run ceilings of mixcomm-perf (ceilings.h): a timed device-to-device copy, and a
 * flag ping-pong through a VMM page that ranks 0 and 1 both map. */
#include "perf/ceilings.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "perf/pingpong.h"
#include "transport/vmm.h"

#define COPY_MAX_BYTES (1ull << 30)
#define RTT_ROUNDS 10000
#define RTT_BUDGET_S 1.0 /* shrink the round count if a round trip is very slow (no MPS) */
/* Rank 0 alone: device-to-device copy bandwidth (bytes read + written per second). */
int perf_measure_copy(perf_ctx_t* c) {
  size_t free_b = 0, total_b = 0;
  PERF_CUDA_OK(c, cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo (copy ceiling)");
  size_t bytes = COPY_MAX_BYTES;
  if (bytes > free_b / 4) /* source + destination within half of the free memory */
    bytes = free_b / 4;
  bytes = bytes / (2u << 20) * (2u << 20);
  if (bytes < (2u << 20)) {
    fprintf(stderr, PERF_TOOL ": rank 0: only %zu bytes free: copy ceiling not measured\n", free_b);
    return 0;
  }
  void *src = NULL, *dst = NULL;
  cudaEvent_t e0 = NULL, e1 = NULL;
  int rc = -1;
  cudaError_t e;
  double ms[PERF_COPY_REPS];
  if ((e = cudaMalloc(&src, bytes)) != cudaSuccess ||
      (e = cudaMalloc(&dst, bytes)) != cudaSuccess) {
    perf_cuda_fail(c, "cudaMalloc (copy ceiling)", e);
    goto out;
  }
  if ((e = cudaMemsetAsync(src, 0x5A, bytes, c->stream)) != cudaSuccess ||
      (e = cudaEventCreate(&e0)) != cudaSuccess || (e = cudaEventCreate(&e1)) != cudaSuccess) {
    perf_cuda_fail(c, "preparing the copy ceiling", e);
    goto out;
  }
  /* One untimed copy, then PERF_COPY_REPS timed ones. */
  for (int i = -1; i < PERF_COPY_REPS; i++) {
    float t = 0.f;
    if ((e = cudaEventRecord(e0, c->stream)) != cudaSuccess ||
        (e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, c->stream)) !=
            cudaSuccess ||
        (e = cudaEventRecord(e1, c->stream)) != cudaSuccess ||
        (e = cudaEventSynchronize(e1)) != cudaSuccess ||
        (e = cudaEventElapsedTime(&t, e0, e1)) != cudaSuccess) {
      perf_cuda_fail(c, "timing the device copy", e);
      goto out;
    }
    if (i >= 0)
      ms[i] = t;
  }
  {
    const double med_ms = perf_median(ms, PERF_COPY_REPS);
    if (med_ms > 0) {
      c->copy_bytes = (double)bytes;
      c->copy_gbps = 2.0 * (double)bytes / (med_ms * 1e-3) / 1e9;
    }
  }
  rc = 0;
out:
  if (e0)
    cudaEventDestroy(e0);
  if (e1)
    cudaEventDestroy(e1);
  if (src)
    cudaFree(src);
  if (dst)
    cudaFree(dst);
  return rc;
}

/* The ping-pong of one rank: its page, its flag and its peer's, and the kernel's result. */
typedef struct pingpong {
  int player; /* rank 0 or 1 */
  int timeout_ms;
  unsigned long long timeout_ns;
  mixcomm__vmm_t v;
  pingpong_result_t* d_res;
  cudaEvent_t e0, e1;
  volatile uint32_t* mine;
  volatile uint32_t* peer;
  uint32_t seq; /* the next round's sequence number */
} pingpong_t;

/* Every rank's verdict on a step: 0 to go on; otherwise *rc = -1 if the bootstrap failed, 0 if
 * a rank failed (the run goes on without the ceiling). */
static int step_agreed(perf_ctx_t* c, int ok, const char* what, int* rc) {
  const int a = perf_agree(c, ok, what);
  if (a != 0)
    *rc = a < 0 ? -1 : 0;
  return a;
}

/* Rank 0's value to every rank; 0, or -1 reported. */
static int share(perf_ctx_t* c, void* buf, size_t size, const char* what) {
  const mixcomm_status_t st = mixcomm__bs_broadcast(c->bs, buf, size, 0, what);
  if (st != MIXCOMM_SUCCESS) {
    perf_lib_fail(c, what, st);
    return -1;
  }
  return 0;
}

/* The pages (every rank), then the players' flags, result and events: 1 if this rank is ready. */
static int pingpong_setup(perf_ctx_t* c, pingpong_t* p, int* rc) {
  int ok = 1;
  mixcomm_status_t st =
      mixcomm__vmm_reserve(&p->v, c->device, p->player ? c->rank : 0, p->player ? 2 : 1, 4096);
  if (st != MIXCOMM_SUCCESS) {
    perf_lib_fail(c, "reserving the ping-pong page (flag round trip ceiling)", st);
    ok = 0;
  }
  if (step_agreed(c, ok, "flag round trip: reserve", rc) != 0)
    return 0;
  st = mixcomm__vmm_map(&p->v, c->bs, p->timeout_ms, MIXCOMM_SUCCESS);
  if (st != MIXCOMM_SUCCESS) {
    perf_lib_fail(c, "mapping the ping-pong pages (flag round trip ceiling)", st);
    ok = 0;
  }
  if (ok && p->player) {
    cudaError_t e;
    p->mine = (volatile uint32_t*)(uintptr_t)p->v.va[c->rank];
    p->peer = (volatile uint32_t*)(uintptr_t)p->v.va[1 - c->rank];
    if ((e = cudaMemset((void*)(uintptr_t)p->v.va[c->rank], 0, 4096)) != cudaSuccess ||
        (e = cudaMalloc((void**)&p->d_res, sizeof *p->d_res)) != cudaSuccess ||
        (e = cudaMemset(p->d_res, 0, sizeof *p->d_res)) != cudaSuccess ||
        (e = cudaEventCreate(&p->e0)) != cudaSuccess ||
        (e = cudaEventCreate(&p->e1)) != cudaSuccess ||
        (e = cudaDeviceSynchronize()) != cudaSuccess) {
      perf_cuda_fail(c, "preparing the ping-pong", e);
      ok = 0;
    }
  }
  /* After this agreement both flags are 0 and both pages mapped. */
  return step_agreed(c, ok, "flag round trip: setup", rc) == 0;
}

/* Calibration: 1 + PERF_RTT_WARM_ROUNDS rounds tell rank 0 how many rounds fit the budget (a
 * round trip takes about 1 us under MPS but milliseconds when processes time-slice). 0, or -1
 * reported. */
static int pingpong_calibrate(perf_ctx_t* c, pingpong_t* p, int32_t* rounds) {
  pingpong_result_t res;
  cudaError_t e = (cudaError_t)pingpong_launch(p->mine, p->peer, c->rank == 0, p->seq, 1,
                                               PERF_RTT_WARM_ROUNDS, p->timeout_ns, p->d_res,
                                               c->stream);
  p->seq += 1 + PERF_RTT_WARM_ROUNDS;
  if (e == cudaSuccess)
    e = cudaStreamSynchronize(c->stream);
  if (e == cudaSuccess)
    e = cudaMemcpy(&res, p->d_res, sizeof res, cudaMemcpyDeviceToHost);
  if (e != cudaSuccess) {
    perf_cuda_fail(c, "ping-pong calibration", e);
    return -1;
  }
  if (res.failed_round) {
    perf_msg_fail(c,
                  "ping-pong calibration: no answer from rank %d in round %llu within %d ms "
                  "(flag was %llu); flag round trip not measured",
                  1 - c->rank, res.failed_round - 1, p->timeout_ms, res.last_seen);
    return -1;
  }
  if (c->rank == 0) {
    const double per_round_s = (double)res.elapsed_ns * 1e-9 / PERF_RTT_WARM_ROUNDS;
    if (per_round_s > 0 && per_round_s * RTT_ROUNDS * PERF_RTT_REPS > RTT_BUDGET_S) {
      *rounds = (int32_t)(RTT_BUDGET_S / PERF_RTT_REPS / per_round_s);
      if (*rounds < 100)
        *rounds = 100;
    }
  }
  return 0;
}

/* One timed kernel of `rounds` round trips after the warm ones: *us per round trip from the
 * kernel's clock, *ev_us from events around the kernel. 0, or -1 reported. */
static int pingpong_time(perf_ctx_t* c, pingpong_t* p, int32_t rounds, double* us,
                         double* ev_us) {
  pingpong_result_t res;
  float ms = 0.f;
  cudaError_t e = cudaEventRecord(p->e0, c->stream);
  if (e == cudaSuccess)
    e = (cudaError_t)pingpong_launch(p->mine, p->peer, c->rank == 0, p->seq,
                                     PERF_RTT_WARM_ROUNDS, rounds, p->timeout_ns, p->d_res,
                                     c->stream);
  p->seq += (uint32_t)(PERF_RTT_WARM_ROUNDS + rounds);
  if (e == cudaSuccess)
    e = cudaEventRecord(p->e1, c->stream);
  if (e == cudaSuccess)
    e = cudaEventSynchronize(p->e1);
  if (e == cudaSuccess)
    e = cudaEventElapsedTime(&ms, p->e0, p->e1);
  if (e == cudaSuccess)
    e = cudaMemcpy(&res, p->d_res, sizeof res, cudaMemcpyDeviceToHost);
  if (e != cudaSuccess) {
    perf_cuda_fail(c, "ping-pong", e);
    return -1;
  }
  if (res.failed_round) {
    perf_msg_fail(c, "ping-pong: no answer from rank %d in round %llu within %d ms",
                  1 - c->rank, res.failed_round - 1, p->timeout_ms);
    return -1;
  }
  *us = (double)res.elapsed_ns * 1e-3 / rounds;
  *ev_us = (double)ms * 1e3 / (PERF_RTT_WARM_ROUNDS + rounds);
  return 0;
}

static void pingpong_release(perf_ctx_t* c, pingpong_t* p) {
  if (p->e0)
    cudaEventDestroy(p->e0);
  if (p->e1)
    cudaEventDestroy(p->e1);
  if (p->d_res)
    cudaFree(p->d_res);
  const mixcomm_status_t st = mixcomm__vmm_destroy(&p->v);
  if (st != MIXCOMM_SUCCESS)
    perf_lib_fail(c, "releasing the ping-pong pages", st);
}

int perf_measure_rtt(perf_ctx_t* c) {
  pingpong_t p;
  memset(&p, 0, sizeof p);
  p.player = c->rank < 2;
  p.timeout_ms = c->o->timeout_ms > 0 ? c->o->timeout_ms : 30000;
  p.timeout_ns = (unsigned long long)p.timeout_ms * 1000000ull;
  p.seq = 1; /* the flags start at 0 */
  int32_t rounds = RTT_ROUNDS;
  double us[PERF_RTT_REPS], ev_us[PERF_RTT_REPS], result[3] = {NAN, NAN, 0};
  int ok = 1, rc = 0;
  for (int i = 0; i < PERF_RTT_REPS; i++)
    us[i] = ev_us[i] = NAN;

  if (!pingpong_setup(c, &p, &rc))
    goto out;
  if (p.player && pingpong_calibrate(c, &p, &rounds) != 0)
    ok = 0;
  if (step_agreed(c, ok, "flag round trip: calibration", &rc) != 0)
    goto out;
  if (share(c, &rounds, sizeof rounds, "flag round trip: round count") != 0) {
    rc = -1;
    goto out;
  }
  /* PERF_RTT_REPS timed kernels, back to back (sequence numbers keep growing, so a kernel that
   * starts late still finds its peer's pending flag). */
  for (int rep = 0; p.player && ok && rep < PERF_RTT_REPS; rep++)
    if (pingpong_time(c, &p, rounds, &us[rep], &ev_us[rep]) != 0)
      ok = 0;
  if (step_agreed(c, ok, "flag round trip: timing", &rc) != 0)
    goto out;
  if (c->rank == 0) {
    result[0] = perf_median(us, PERF_RTT_REPS);
    result[1] = perf_median(ev_us, PERF_RTT_REPS);
    result[2] = rounds;
  }
  if (share(c, result, sizeof result, "flag round trip: result") != 0) {
    rc = -1;
    goto out;
  }
  c->rtt_us = result[0];
  c->rtt_event_us = result[1];
  c->rtt_rounds = (int)result[2];
out:
  pingpong_release(c, &p);
  return rc;
}
