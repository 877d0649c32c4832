/* SPDX-License-Identifier: Apache-2.0
 * Fault scenarios of a live peer that does not make the same call: it diverges (op,
 * rows or mode), never calls (one-shot and two-shot), or never calls while a second thread
 * aborts the handler on the others; the rank sides and the judges. */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "gpu/faults/faults.h"

/* (d) One call diverges on one rank: another op, another row count, or another mode. */
enum diverge { DIVERGE_OP, DIVERGE_ROWS, DIVERGE_MODE };

static void rank_diverge(rank_ctx_t* c, enum diverge kind) {
  if (create_or_note(c, c->opt->timeout_ms) != MIXCOMM_SUCCESS)
    return;
  warm_up(c, 3, 200);
  if (c->me->status == 0) {
    mixcomm_op_t op = c->ti->ops[0];
    mixcomm_mode_t mode = MIXCOMM_MODE_FUSED_OPT_WAITS_UC;
    int64_t rows_unit = 8;
    if (my_role(c) == ROLE_DIVERGER) {
      if (kind == DIVERGE_OP)
        op = c->ti->ops[1];
      else if (kind == DIVERGE_ROWS)
        rows_unit = 9;
      else
        mode = MIXCOMM_MODE_FUSED_OPT_BYTES1_UC;
    }
    if (unchecked_call(c, op, mode, rows_in_for(c, op, rows_unit), 1024) == MIXCOMM_SUCCESS)
      notef(c, "the diverging call succeeded");
  }
  report_and_shutdown(c, c->opt->timeout_ms + c->opt->margin_ms);
}
void rank_diverge_op(rank_ctx_t* c) { rank_diverge(c, DIVERGE_OP); }
void rank_diverge_rows(rank_ctx_t* c) { rank_diverge(c, DIVERGE_ROWS); }
void rank_diverge_mode(rank_ctx_t* c) { rank_diverge(c, DIVERGE_MODE); }

/* (e) One rank never makes the call: it waits until the others have reported, then shuts down
 * with them. */
static void sleeper_waits(rank_ctx_t* c, int timeout_ms) {
  report_and_shutdown(c, timeout_ms + c->opt->margin_ms + 2000);
}

static void rank_never_calls(rank_ctx_t* c, mixcomm_mode_t mode) {
  if (create_or_note(c, c->opt->timeout_ms) != MIXCOMM_SUCCESS)
    return;
  if (checked_call(c, c->ti->ops[0], mode, 4, 512, 300) != 0)
    notef(c, "warm-up call failed");
  if (my_role(c) == ROLE_SLEEPER) {
    sleeper_waits(c, c->opt->timeout_ms);
    return;
  }
  if (c->me->status == 0 &&
      unchecked_call(c, c->ti->ops[0], mode, rows_in_for(c, c->ti->ops[0], 8), 1024) ==
          MIXCOMM_SUCCESS)
    notef(c, "the call succeeded although a rank never made it");
  report_and_shutdown(c, c->opt->timeout_ms + c->opt->margin_ms);
}
void rank_never_calls_1shot(rank_ctx_t* c) {
  rank_never_calls(c, MIXCOMM_MODE_FUSED_OPT_WAITS_UC);
}
void rank_never_calls_2shot(rank_ctx_t* c) {
  rank_never_calls(c, MIXCOMM_MODE_FUSED_OPT_BYTES1_UC);
}

/* (f) One rank never calls; on the others a second thread aborts the handler while the main
 * thread waits in cudaStreamSynchronize. */
typedef struct abort_arg {
  mixcomm_handler_t* h;
  double delay_ms;
  mixcomm_status_t st;
  double t_abort;
} abort_arg_t;

static void* abort_thread(void* p) {
  abort_arg_t* a = p;
  sleep_ms(a->delay_ms);
  a->t_abort = now_ms();
  a->st = mixcomm_handler_abort(a->h);
  return NULL;
}

void rank_abort(rank_ctx_t* c) {
  const int timeout = c->opt->abort_timeout_ms;
  if (create_or_note(c, timeout) != MIXCOMM_SUCCESS)
    return;
  if (checked_call(c, c->ti->ops[0], MIXCOMM_MODE_FUSED_OPT_WAITS_UC, 4, 512, 400) != 0)
    notef(c, "warm-up call failed");
  if (my_role(c) == ROLE_SLEEPER) {
    sleeper_waits(c, c->opt->abort_delay_ms + c->opt->abort_limit_ms);
    return;
  }
  if (c->me->status == 0) {
    abort_arg_t a = {c->h, c->opt->abort_delay_ms, MIXCOMM_SUCCESS, 0};
    pthread_t t;
    /* The thread starts first, so the abort comes abort_delay_ms after the call however long
     * mixcomm_run takes to enqueue. */
    const double t0 = now_ms();
    pthread_create(&t, NULL, abort_thread, &a);
    mixcomm_status_t st =
        mixcomm_run(c->h, c->ti->ops[0], c->d_in, c->d_out, rows_in_for(c, c->ti->ops[0], 8),
                    1024, MIXCOMM_MODE_FUSED_OPT_WAITS_UC, c->stream);
    if (st != MIXCOMM_SUCCESS) {
      record_error(c, st, -1, AT_RUN, t0, mixcomm_last_error());
      pthread_join(t, NULL);
    } else {
      cudaError_t e = cudaStreamSynchronize(c->stream);
      const double t_end = now_ms();
      pthread_join(t, NULL);
      if (a.st != MIXCOMM_SUCCESS)
        notef(c, "mixcomm_handler_abort returned %s", short_status(a.st));
      if (e != cudaSuccess) {
        record_error(c, MIXCOMM_ERR_CUDA, -1, AT_SYNC, t0, cudaGetErrorString(e));
      } else {
        observe_async(c, t0, AT_SYNC);
        c->me->detect_ms = t_end - t0; /* how long the kernel ran */
        notef(c, "kernel ended %.0f ms after the abort", t_end - a.t_abort);
        if (c->me->status == 0)
          notef(c, "no error after the abort");
      }
    }
  }
  report_and_shutdown(c, c->opt->abort_delay_ms + c->opt->abort_limit_ms + c->opt->margin_ms);
}

/* Diverging call: every rank fails with TIMEOUT or MISMATCH; the diverger is named in a
 * MISMATCH by every other rank (strict: one-shot, each receives its tags) or by one at least. */
static int judge_diverge(const options_t* o, const topo_info_t* ti, const shared_t* sh,
                         const int* exits, judge_t* j, int strict) {
  judge_exits(ti, sh, exits, j);
  const int d = ti->victim;
  int mismatch_naming = 0;
  for (int r = 0; r < ti->world; r++) {
    const rank_result_t* m = &sh->r[r];
    if (m->status != MIXCOMM_ERR_TIMEOUT && m->status != MIXCOMM_ERR_MISMATCH) {
      jfail(j, "rank %d: %s, expected TIMEOUT or MISMATCH%s%.200s", r,
            m->status ? short_status(m->status) : "no error", m->msg[0] ? ": " : "", m->msg);
      continue;
    }
    const int named = m->peer == d && names_rank(m->msg, d);
    if (r != d && m->status == MIXCOMM_ERR_MISMATCH && named)
      mismatch_naming++;
    else if (r != d && strict)
      jfail(j, "rank %d: %s naming rank %d, expected MISMATCH naming rank %d: %.300s", r,
            short_status(m->status), m->peer, d, m->msg);
    if (m->detect_ms > o->timeout_ms + o->margin_ms)
      jfail(j, "rank %d took %.0f ms", r, m->detect_ms);
    if (m->wrong)
      jfail(j, "rank %d: %lld wrong elements in the warm-up calls", r, m->wrong);
  }
  if (mismatch_naming == 0)
    jfail(j, "no rank reported MISMATCH naming rank %d", d);
  judge_shutdown(o, ti, sh, j, 0);
  return j->ok;
}
int judge_diverge_strict(const options_t* o, const topo_info_t* ti, const shared_t* sh,
                         const int* exits, judge_t* j) {
  return judge_diverge(o, ti, sh, exits, j, 1);
}
int judge_diverge_lenient(const options_t* o, const topo_info_t* ti, const shared_t* sh,
                          const int* exits, judge_t* j) {
  return judge_diverge(o, ti, sh, exits, j, 0);
}

static int judge_never_calls(const options_t* o, const topo_info_t* ti, const shared_t* sh,
                             const int* exits, judge_t* j, int strict) {
  judge_exits(ti, sh, exits, j);
  judge_named(ti, sh, j, ti->victim, strict, BIT(MIXCOMM_ERR_TIMEOUT),
              o->timeout_ms + o->margin_ms);
  judge_shutdown(o, ti, sh, j, 0);
  const rank_result_t* s = &sh->r[ti->victim];
  if (s->status != 0)
    jfail(j, "the sleeper (rank %d) saw %s: %.200s", ti->victim, short_status(s->status), s->msg);
  return j->ok;
}
int judge_never_calls_strict(const options_t* o, const topo_info_t* ti, const shared_t* sh,
                             const int* exits, judge_t* j) {
  return judge_never_calls(o, ti, sh, exits, j, 1);
}
int judge_never_calls_lenient(const options_t* o, const topo_info_t* ti,
                              const shared_t* sh, const int* exits, judge_t* j) {
  return judge_never_calls(o, ti, sh, exits, j, 0);
}

int judge_abort(const options_t* o, const topo_info_t* ti, const shared_t* sh,
                const int* exits, judge_t* j) {
  judge_exits(ti, sh, exits, j);
  for (int r = 0; r < ti->world; r++) {
    const rank_result_t* m = &sh->r[r];
    if (m->role != ROLE_SURVIVOR)
      continue;
    if (m->status != MIXCOMM_ERR_ABORTED)
      jfail(j, "rank %d: %s, expected ABORTED%s%.200s", r,
            m->status ? short_status(m->status) : "no error", m->msg[0] ? ": " : "", m->msg);
    else if (m->next_status != MIXCOMM_ERR_ABORTED)
      jfail(j, "rank %d: the next mixcomm_run returned %s, not ABORTED", r,
            short_status(m->next_status));
    if (m->detect_ms >= o->abort_limit_ms)
      jfail(j, "rank %d: the kernel ran %.0f ms (limit %d ms, timeout %d ms)", r, m->detect_ms,
            o->abort_limit_ms, o->abort_timeout_ms);
    if (m->detect_ms < o->abort_delay_ms * 0.8)
      jfail(j, "rank %d: the kernel ended after %.0f ms, before the abort at %d ms", r,
            m->detect_ms, o->abort_delay_ms);
  }
  judge_shutdown(o, ti, sh, j, 0);
  return j->ok;
}
