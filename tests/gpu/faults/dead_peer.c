/* SPDX-License-Identifier: Apache-2.0
 * Fault scenarios of a peer that dies or is late while the others call: killed
 * between checked calls, killed while the others wait for it (default timeout: the lost
 * connection must be seen), and a peer that starts a call a minute late (it must succeed). */
#include <stdint.h>
#include <stdlib.h>

#include "gpu/faults/faults.h"

/* The sequence of checked calls before a fault: every valid op and fused mode in turn, sizes
 * varying; `i` is the call index, the same on every rank. */
static void stream_call_shape(const rank_ctx_t* c, int i, mixcomm_op_t* op, mixcomm_mode_t* mode,
                              int64_t* rows_unit, int64_t* elems) {
  static const int64_t rows[] = {1, 3, 8, 17, 64};
  static const int64_t els[] = {8, 64, 512, 2048};
  *op = c->ti->ops[i % c->ti->nops];
  *mode = (c->ti->twoshot && (i / c->ti->nops) % 2) ? MIXCOMM_MODE_FUSED_OPT_BYTES1_UC
                                                    : MIXCOMM_MODE_FUSED_OPT_WAITS_UC;
  *rows_unit = rows[i % 5];
  *elems = els[(i / 5) % 4]; /* 16-byte rows for every dtype */
}

/* (c) All ranks run checked calls; the victim dies after `calls` of them (between calls, after
 * its last one completed). Calls from then on are one-shot, so every survivor waits for the
 * victim directly. */
void rank_kill_mid_stream(rank_ctx_t* c) {
  if (create_or_note(c, c->opt->timeout_ms) != MIXCOMM_SUCCESS)
    return;
  const int n = c->opt->calls;
  int i;
  for (i = 0; i < n + 5; i++) {
    if (i == n && my_role(c) == ROLE_VICTIM)
      die_now(c, "between calls");
    mixcomm_op_t op;
    mixcomm_mode_t mode;
    int64_t rows_unit, elems;
    stream_call_shape(c, i, &op, &mode, &rows_unit, &elems);
    if (i >= n)
      mode = MIXCOMM_MODE_FUSED_OPT_WAITS_UC;
    const int r = checked_call(c, op, mode, rows_unit, elems, 100 + (uint64_t)i);
    if (r > 0)
      break;
  }
  if (c->me->status == 0)
    notef(c, "no error in %d calls although the victim died after %d", i, n);
  report_and_shutdown(c, c->opt->timeout_ms + c->opt->margin_ms);
}

/* (h) Dead versus slow peers with the default timeout (10 minutes; MIXCOMM_TIMEOUT_MS is
 * cleared so that it cannot shorten it). */
static mixcomm_status_t create_with_default_timeout(rank_ctx_t* c) {
  unsetenv("MIXCOMM_TIMEOUT_MS");
  return create_or_note(c, 0);
}

/* The victim dies while every other rank waits for it inside a one-shot call. */
void rank_kill_detected(rank_ctx_t* c) {
  if (create_with_default_timeout(c) != MIXCOMM_SUCCESS)
    return;
  warm_up(c, 3, 400);
  if (c->me->status == 0) {
    if (my_role(c) == ROLE_VICTIM) {
      sleep_ms(300); /* the others are in their kernels by now, waiting for this rank */
      c->me->killed_at_ms = now_ms();
      die_now(c, "while the others wait for it in a call");
    }
    if (unchecked_call(c, c->ti->ops[0], MIXCOMM_MODE_FUSED_OPT_WAITS_UC,
                       rows_in_for(c, c->ti->ops[0], 8), 1024) == MIXCOMM_SUCCESS)
      notef(c, "the call succeeded although a rank died");
  }
  report_and_shutdown(c, 5000 + c->opt->margin_ms);
}

/* The sleeper starts a call late_ms after the others; the call must succeed everywhere. */
void rank_late_peer(rank_ctx_t* c) {
  if (create_with_default_timeout(c) != MIXCOMM_SUCCESS)
    return;
  for (int i = 0; i < 2; i++)
    if (checked_call(c, c->ti->ops[0], MIXCOMM_MODE_FUSED_OPT_WAITS_UC, 8, 512, 500 + i) != 0)
      notef(c, "warm-up call %d failed", i);
  if (c->me->status == 0) {
    if (my_role(c) == ROLE_SLEEPER) {
      notef(c, "sleeping %d ms before the call", c->opt->late_ms);
      sleep_ms(c->opt->late_ms);
    }
    const double t0 = now_ms();
    if (checked_call(c, c->ti->ops[0], MIXCOMM_MODE_FUSED_OPT_WAITS_UC, 8, 512, 502) != 0)
      notef(c, "the late call failed");
    c->me->call_ms = now_ms() - t0;
    /* The handler is still healthy: a two-shot call (several waits per kernel) right after. */
    if (c->me->status == 0 && c->ti->twoshot &&
        checked_call(c, c->ti->ops[0], MIXCOMM_MODE_FUSED_OPT_BYTES1_UC, 8, 512, 503) != 0)
      notef(c, "the two-shot call after the late one failed");
  }
  c->me->state = ST_REPORTED;
  shutdown_handler(c);
}

int judge_kill_mid_stream(const options_t* o, const topo_info_t* ti, const shared_t* sh,
                          const int* exits, judge_t* j) {
  judge_exits(ti, sh, exits, j);
  /* The watch on the bootstrap usually sees the death first (PEER_LOST); the timeout is the
   * bound either way. */
  judge_named(ti, sh, j, ti->victim, 1, BIT(MIXCOMM_ERR_TIMEOUT) | BIT(MIXCOMM_ERR_PEER_LOST),
              o->timeout_ms + o->margin_ms);
  for (int r = 0; r < ti->world; r++) {
    const rank_result_t* m = &sh->r[r];
    if (m->calls_ok < o->calls)
      jfail(j, "rank %d: only %d of the %d calls before the kill were correct", r, m->calls_ok,
            o->calls);
    if (m->role == ROLE_SURVIVOR && m->status != 0 && m->next_status != m->status)
      jfail(j, "rank %d: the next mixcomm_run returned %s, not %s", r,
            short_status(m->next_status), short_status(m->status));
  }
  judge_shutdown(o, ti, sh, j, 0);
  return j->ok;
}

int judge_kill_detected(const options_t* o, const topo_info_t* ti, const shared_t* sh,
                        const int* exits, judge_t* j) {
  judge_exits(ti, sh, exits, j);
  judge_named(ti, sh, j, ti->victim, 1, BIT(MIXCOMM_ERR_PEER_LOST), 1e9);
  const double killed = sh->r[ti->victim].killed_at_ms;
  if (killed <= 0)
    jfail(j, "the victim (rank %d) never got to kill itself", ti->victim);
  for (int r = 0; r < ti->world && killed > 0; r++) {
    const rank_result_t* m = &sh->r[r];
    if (m->role != ROLE_SURVIVOR || m->status == 0)
      continue;
    const double after = m->error_at_ms - killed;
    if (after > 2000)
      jfail(j, "rank %d reported the lost peer %.0f ms after its death (limit 2000 ms)", r,
            after);
    if (m->next_status != MIXCOMM_ERR_PEER_LOST)
      jfail(j, "rank %d: the next mixcomm_run returned %s, not PEER_LOST", r,
            short_status(m->next_status));
  }
  judge_shutdown(o, ti, sh, j, 0);
  return j->ok;
}

int judge_late_peer(const options_t* o, const topo_info_t* ti, const shared_t* sh,
                    const int* exits, judge_t* j) {
  judge_exits(ti, sh, exits, j);
  const int want = 3 + (ti->twoshot ? 1 : 0);
  for (int r = 0; r < ti->world; r++) {
    const rank_result_t* m = &sh->r[r];
    if (m->status != 0)
      jfail(j, "rank %d: %s: %.300s", r, short_status(m->status), m->msg);
    else if (m->calls_ok != want || m->wrong != 0)
      jfail(j, "rank %d: %d of %d calls correct (%lld wrong elements)", r, m->calls_ok, want,
            m->wrong);
    /* The others really waited for the late rank (else this proved nothing). */
    if (m->role == ROLE_SURVIVOR && m->status == 0 && m->call_ms < 0.9 * o->late_ms)
      jfail(j, "rank %d's late call took only %.0f ms (the late rank slept %d ms)", r, m->call_ms,
            o->late_ms);
  }
  judge_shutdown(o, ti, sh, j, 1);
  return j->ok;
}
