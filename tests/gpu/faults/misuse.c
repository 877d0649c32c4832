/* SPDX-License-Identifier: Apache-2.0
 * Misuse scenarios: one handler used from two streams at once, calls after
 * shutdown, and calls while a checkpoint has released the workspace; the rank sides and the
 * judges. */
#include <stdint.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "gpu/harness.h"
#include "gpu/faults/faults.h"

/* (g) Misuse: large calls alternately on two streams with nothing ordering them. */
void rank_two_streams(rank_ctx_t* c) {
  if (create_or_note(c, c->opt->timeout_ms) != MIXCOMM_SUCCESS)
    return;
  cudaStream_t s2 = NULL;
  if (cudaStreamCreateWithFlags(&s2, cudaStreamNonBlocking) != cudaSuccess) {
    notef(c, "creating a second stream failed");
    return;
  }
  const mixcomm_op_t op = c->ti->ops[0];
  const size_t es = mixcomm_dtype_size(c->opt->dtype);
  const int64_t elems = 8192;
  /* Input and each half of the output buffer must hold a call. */
  int64_t unit = 256;
  while (unit > 1 && (size_t)unit * (size_t)c->ti->dp * (size_t)elems * es > DEVICE_BUFFER_BYTES / 2)
    unit /= 2;
  const int64_t rows_in = rows_in_for(c, op, unit);
  char* out[2] = {c->d_out, c->d_out + DEVICE_BUFFER_BYTES / 2};
  cudaStream_t s[2] = {c->stream, s2};
  cudaMemsetAsync(c->d_in, 0x3C, DEVICE_BUFFER_BYTES, c->stream);
  cudaStreamSynchronize(c->stream);
  const double t0 = now_ms();
  int launched = 0;
  for (int i = 0; i < 64; i++) {
    mixcomm_status_t st = mixcomm_run(c->h, op, c->d_in, out[i % 2], rows_in, elems,
                                      MIXCOMM_MODE_FUSED_OPT_WAITS_UC, s[i % 2]);
    if (st != MIXCOMM_SUCCESS) {
      int peer = -1;
      char copy[MSG_BYTES];
      copy_msg(copy, sizeof copy, mixcomm_last_error());
      mixcomm_handler_async_error(c->h, &peer);
      record_error(c, st, peer, AT_RUN, t0, copy);
      break;
    }
    launched++;
  }
  cudaError_t e1 = cudaStreamSynchronize(s[0]);
  cudaError_t e2 = cudaStreamSynchronize(s[1]);
  if (e1 != cudaSuccess || e2 != cudaSuccess)
    record_error(c, MIXCOMM_ERR_CUDA, -1, AT_SYNC, t0,
                 cudaGetErrorString(e1 != cudaSuccess ? e1 : e2));
  else
    observe_async(c, t0, AT_SYNC);
  notef(c, "%d calls launched on two streams", launched);
  report_and_shutdown(c, c->opt->timeout_ms + c->opt->margin_ms);
  cudaStreamDestroy(s2);
}

static void check_misuse(rank_ctx_t* c, const char* what, mixcomm_status_t got,
                         mixcomm_status_t want, const char* needle) {
  const char* msg = mixcomm_last_error();
  if (got == want && (needle == NULL || strstr(msg, needle) != NULL)) {
    c->me->checks_ok++;
    return;
  }
  c->me->checks_failed++;
  notef(c, "%s: got %s \"%.200s\", expected %s%s%s%s", what, short_status(got), msg,
        short_status(want), needle ? " containing \"" : "", needle ? needle : "",
        needle ? "\"" : "");
  if (c->me->status == 0)
    record_error(c, got, -1, AT_RUN, now_ms(), msg);
}

/* (g) Use after shutdown and shutdown twice. */
void rank_after_shutdown(rank_ctx_t* c) {
  if (create_or_note(c, c->opt->timeout_ms) != MIXCOMM_SUCCESS)
    return;
  if (checked_call(c, c->ti->ops[0], MIXCOMM_MODE_FUSED_OPT_WAITS_UC, 4, 512, 500) != 0)
    notef(c, "first call failed");
  mixcomm_handler_t* dead = c->h;
  shutdown_handler(c);
  if (c->me->shutdown_status != MIXCOMM_SUCCESS)
    notef(c, "the first shutdown failed: %s", c->me->shutdown_msg);
  /* No handler may be created before these calls: it could get the same address. */
  const int64_t rows = rows_in_for(c, c->ti->ops[0], 4);
  check_misuse(c, "run after shutdown",
               mixcomm_run(dead, c->ti->ops[0], c->d_in, c->d_out, rows, 512,
                           MIXCOMM_MODE_DEFAULT, c->stream),
               MIXCOMM_ERR_INVALID_USAGE, "not a live handler");
  check_misuse(c, "second shutdown", mixcomm_handler_shutdown(dead), MIXCOMM_ERR_INVALID_USAGE,
               "not a live handler");
  int peer = 0;
  check_misuse(c, "async_error after shutdown", mixcomm_handler_async_error(dead, &peer),
               MIXCOMM_ERR_INVALID_USAGE, "not a live handler");
  check_misuse(c, "abort after shutdown", mixcomm_handler_abort(dead), MIXCOMM_ERR_INVALID_USAGE,
               "not a live handler");
  if (cudaStreamSynchronize(c->stream) != cudaSuccess)
    notef(c, "the stream failed after the misuse");
  c->me->state = ST_REPORTED;
}

/* (g) A call while a checkpoint has released the workspace: refused, nothing written; after
 * restore, calls are correct again. */
void rank_checkpointed(rank_ctx_t* c) {
  if (create_or_note(c, c->opt->timeout_ms) != MIXCOMM_SUCCESS)
    return;
  const mixcomm_op_t op = c->ti->ops[0];
  if (checked_call(c, op, MIXCOMM_MODE_FUSED_OPT_WAITS_UC, 4, 512, 600) != 0)
    notef(c, "first call failed");
  mixcomm_status_t st = mixcomm_checkpoint_prepare(c->h);
  if (st != MIXCOMM_SUCCESS) {
    check_misuse(c, "checkpoint_prepare", st, MIXCOMM_SUCCESS, NULL);
  } else {
    const size_t es = mixcomm_dtype_size(c->opt->dtype);
    const int64_t rows_in = rows_in_for(c, op, 4);
    const size_t out_bytes = (size_t)(is_gather(op) ? 4 * c->ti->dp : 4) * 512 * es;
    cudaMemsetAsync(c->d_out, 0xA5, out_bytes, c->stream);
    cudaStreamSynchronize(c->stream);
    check_misuse(c, "run while checkpointed",
                 mixcomm_run(c->h, op, c->d_in, c->d_out, rows_in, 512,
                             MIXCOMM_MODE_FUSED_OPT_WAITS_UC, c->stream),
                 MIXCOMM_ERR_INVALID_USAGE, "checkpoint");
    check_misuse(c, "run (DEFAULT mode) while checkpointed",
                 mixcomm_run(c->h, op, c->d_in, c->d_out, rows_in, 512, MIXCOMM_MODE_DEFAULT,
                             c->stream),
                 MIXCOMM_ERR_INVALID_USAGE, "checkpoint");
    cudaError_t e = cudaStreamSynchronize(c->stream);
    unsigned char* buf = (unsigned char*)c->h_out;
    if (e == cudaSuccess)
      e = cudaMemcpy(buf, c->d_out, out_bytes, cudaMemcpyDeviceToHost);
    size_t touched = 0;
    for (size_t i = 0; e == cudaSuccess && i < out_bytes; i++)
      touched += buf[i] != 0xA5;
    if (e != cudaSuccess || touched) {
      c->me->checks_failed++;
      notef(c, "the refused call changed the output (%zu bytes) or CUDA failed (%s)", touched,
            cudaGetErrorString(e));
    } else {
      c->me->checks_ok++;
    }
    st = mixcomm_checkpoint_restore(c->h);
    check_misuse(c, "checkpoint_restore", st, MIXCOMM_SUCCESS, NULL);
    if (st == MIXCOMM_SUCCESS) {
      if (checked_call(c, op, MIXCOMM_MODE_FUSED_OPT_WAITS_UC, 4, 512, 601) == 0 &&
          checked_call(c, op, MIXCOMM_MODE_DEFAULT, 17, 64, 602) == 0)
        c->me->checks_ok++;
      else {
        c->me->checks_failed++;
        notef(c, "calls after restore failed");
      }
    }
  }
  report_and_shutdown(c, c->opt->timeout_ms + c->opt->margin_ms);
  if (c->me->shutdown_status != MIXCOMM_SUCCESS) {
    c->me->checks_failed++;
    notef(c, "shutdown failed: %s", c->me->shutdown_msg);
  }
}

int judge_two_streams(const options_t* o, const topo_info_t* ti, const shared_t* sh,
                      const int* exits, judge_t* j) {
  judge_exits(ti, sh, exits, j);
  int flagged = 0;
  for (int r = 0; r < ti->world; r++) {
    const rank_result_t* m = &sh->r[r];
    if (m->status == MIXCOMM_ERR_INVALID_USAGE && strstr(m->msg, "two streams") != NULL)
      flagged++;
    else if (m->status != MIXCOMM_ERR_INVALID_USAGE && m->status != MIXCOMM_ERR_TIMEOUT &&
             m->status != MIXCOMM_ERR_MISMATCH)
      jfail(j, "rank %d: %s%s%.200s", r, m->status ? short_status(m->status) : "no error",
            m->msg[0] ? ": " : "", m->msg);
    if (m->detect_ms > o->timeout_ms + o->margin_ms)
      jfail(j, "rank %d took %.0f ms", r, m->detect_ms);
  }
  if (flagged == 0)
    jfail(j, "no rank reported INVALID_USAGE mentioning \"two streams\"");
  judge_shutdown(o, ti, sh, j, 0);
  return j->ok;
}

int judge_misuse(const options_t* o, const topo_info_t* ti, const shared_t* sh,
                 const int* exits, judge_t* j) {
  judge_exits(ti, sh, exits, j);
  for (int r = 0; r < ti->world; r++) {
    const rank_result_t* m = &sh->r[r];
    if (m->checks_failed || m->checks_ok == 0)
      jfail(j, "rank %d: %d of %d checks failed: %s", r, m->checks_failed,
            m->checks_ok + m->checks_failed, m->note);
    if (m->wrong)
      jfail(j, "rank %d: %lld wrong elements", r, m->wrong);
  }
  judge_shutdown(o, ti, sh, j, 1);
  return j->ok;
}
